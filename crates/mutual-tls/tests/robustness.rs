//! Matcher strings come from users' config files and flags: parsing never panics, and a bad one
//! is a one-line error.

use mutual_tls::Policy;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn matcher_strings_never_panic() {
    let pieces = [
        "cn=",
        "cn~",
        "dns=",
        "uri=",
        "issuer=",
        "ou=",
        "serial=",
        "any",
        "*",
        "**",
        "?",
        "[",
        "]",
        "(",
        ")",
        "\\",
        "^",
        "$",
        "alice",
        ".example.com",
        "spiffe://",
        "/",
        ":",
        "{",
        "}",
        "é",
        "\u{0}",
        " ",
        ",",
        "=",
        "~",
    ];
    let mut rng = Lcg(7);
    let mut errors = 0;
    for _ in 0..5000 {
        let n = 1 + rng.next() % 6;
        let s: String = (0..n)
            .map(|_| pieces[(rng.next() as usize) % pieces.len()])
            .collect();
        if let Err(e) = Policy::parse(std::slice::from_ref(&s)) {
            errors += 1;
            let msg = e.to_string();
            assert!(!msg.is_empty() && !msg.contains('\n'), "{s:?}: {msg:?}");
        }
    }
    assert!(errors > 0, "some of these strings must be refused");
}
