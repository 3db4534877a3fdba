//! Passwords of `userpass` users, stored as PBKDF2-HMAC-SHA256 (aws-lc-rs, FIPS-validated)
//! with a random salt and OWASP's iteration count, in one self-describing string
//! (`pbkdf2-sha256$ITERATIONS$SALT$HASH`, hex): a copy of the store does not give the
//! passwords away, and a later release can raise the count without breaking stored users.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;

/// Iterations for new hashes (OWASP's figure for PBKDF2-HMAC-SHA256).
pub const ITERATIONS: u32 = 600_000;

const SCHEME: &str = "pbkdf2-sha256";

/// Hashes `password` with `salt` (16 random bytes from the caller) at `iterations`.
pub fn hash(password: &str, salt: &[u8], iterations: u32) -> String {
    let n = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!("{SCHEME}${}${}${}", n, hex::encode(salt), hex::encode(out))
}

/// True when `password` is the one `stored` was made from (constant time); false for a
/// stored string that does not parse.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(n), Some(salt), Some(h), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(n), Ok(salt), Ok(h)) = (
        n.parse::<u32>().ok().and_then(NonZeroU32::new),
        hex::decode(salt),
        hex::decode(h),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &salt,
        password.as_bytes(),
        &h,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_and_nothing_else_does() {
        let stored = hash("correct horse", b"0123456789abcdef", 1000);
        assert!(stored.starts_with("pbkdf2-sha256$1000$30313233"));
        assert!(!stored.contains("correct horse"));
        assert!(verify("correct horse", &stored));
        for (password, stored) in [
            ("wrong horse", stored.as_str()),
            ("correct horse", ""),
            ("correct horse", "pbkdf2-sha256$1000$zz$00"),
            ("correct horse", "pbkdf2-sha256$0$00$00"),
            ("correct horse", "bcrypt$2a$10$abc"),
            ("correct horse", &format!("{stored}$extra")),
        ] {
            assert!(!verify(password, stored), "{password} vs {stored}");
        }
        // Same password, another salt: another hash.
        assert_ne!(stored, hash("correct horse", b"fedcba9876543210", 1000));
    }

    #[test]
    fn pbkdf2_sha256_known_answer() {
        // RFC 7914 section 11, PBKDF2-HMAC-SHA256 with c = 1, first 32 bytes.
        let h = hash("passwd", b"salt", 1);
        assert_eq!(
            h,
            "pbkdf2-sha256$1$73616c74$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
    }
}
