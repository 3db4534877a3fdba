//! Parsers that take outside input never panic: every truncation and many bit flips of real
//! certificates, CSRs, keys and CRLs, and arbitrary strings for the text parsers. (A cheap
//! stand-in for the fuzz targets, run on every `cargo test`.)

use mutual_pki::{
    ca::{self, RootRequest, SigningCa, Urls},
    cert, crl, csr, duration,
    key::{KeyType, PrivateKey},
    serial::Serial,
};
use time::OffsetDateTime;

/// A small deterministic generator so failures reproduce.
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

fn mutations(input: &[u8], rng: &mut Lcg) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for cut in (0..input.len()).step_by((input.len() / 64).max(1)) {
        out.push(input[..cut].to_vec());
    }
    for _ in 0..300 {
        let mut v = input.to_vec();
        if v.is_empty() {
            break;
        }
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % v.len();
            v[i] ^= 1 << (rng.next() % 8);
        }
        out.push(v);
    }
    out
}

#[test]
fn binary_parsers_survive_mangled_input() {
    let now = OffsetDateTime::now_utc();
    let root = ca::generate_root(
        &RootRequest {
            common_name: "Local Root CA".into(),
            ..RootRequest::default()
        },
        now,
    )
    .unwrap();
    let urls = Urls {
        issuing_certificates: vec!["http://127.0.0.1:8200/v1/pki/ca".into()],
        crl_distribution_points: vec!["http://127.0.0.1:8200/v1/pki/crl".into()],
        ocsp_servers: vec![],
    };
    let signer = SigningCa {
        cert_der: &root.cert_der,
        key: &root.key,
        urls: &urls,
    };
    let (csr_pem, key) = ca::generate_intermediate_csr(&RootRequest {
        common_name: "Alice Intermediate Authority".into(),
        ..RootRequest::default()
    })
    .unwrap();
    let csr_der = ::pem::parse(&csr_pem).unwrap().into_contents();
    let crl_der = crl::build(
        &signer,
        1,
        &[crl::RevokedEntry {
            serial: Serial::random(),
            revoked_at: now,
            reason: crl::Reason::KeyCompromise,
        }],
        now,
        std::time::Duration::from_secs(3600),
    )
    .unwrap();
    let mut rng = Lcg(0x5eed);
    for m in mutations(&root.cert_der, &mut rng) {
        let _ = cert::facts(&m);
        let _ = cert::certs_from_bytes(&m);
        let _ = mutual_pki::inspect::describe(std::slice::from_ref(&m), now);
        let _ = mutual_pki::trust::wide_trust_warnings(&[m]);
    }
    for m in mutations(root.cert_pem.as_bytes(), &mut rng) {
        let _ = cert::pem_certs(&m);
    }
    for m in mutations(&csr_der, &mut rng)
        .into_iter()
        .chain(mutations(csr_pem.as_bytes(), &mut rng))
    {
        if let Ok(parsed) = csr::parse(&m) {
            // Whatever still parses and verifies can be signed without a panic.
            let _ = ca::sign_intermediate(
                &signer,
                &parsed,
                std::time::Duration::from_secs(60),
                None,
                now,
            );
        }
    }
    for m in mutations(key.to_pem().as_bytes(), &mut rng) {
        if let Ok(text) = std::str::from_utf8(&m) {
            let _ = PrivateKey::from_pem(text);
        }
    }
    for m in mutations(&key.to_der(), &mut rng) {
        let _ = PrivateKey::from_pkcs8_der(&m);
    }
    for m in mutations(&crl_der, &mut rng) {
        let input = mutual_pki::verify::VerifyInput {
            chain: std::slice::from_ref(&root.cert_der),
            trusted: std::slice::from_ref(&root.cert_der),
            purpose: None,
            name: None,
            crls: std::slice::from_ref(&m),
            now,
        };
        let _ = mutual_pki::verify::verify(&input);
    }
}

#[test]
fn text_parsers_survive_arbitrary_strings() {
    let mut rng = Lcg(42);
    let alphabet: Vec<char> = "0123456789abcdefxyzhmsd:.-_ *@/\\\u{0}\u{7f}é漢\n"
        .chars()
        .collect();
    for _ in 0..5000 {
        let len = (rng.next() % 24) as usize;
        let s: String = (0..len)
            .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
            .collect();
        let _ = duration::parse(&s);
        let _ = Serial::parse(&s);
        let _ = s.parse::<crl::Reason>();
        let _ = KeyType::from_parts(&s, (rng.next() % 5000) as u32);
    }
    // Numbers at the edges.
    for s in [
        "18446744073709551615",
        "99999999999999999999h",
        "1e308s",
        "NaNh",
        "infh",
        "-0s",
    ] {
        let _ = duration::parse(s);
    }
}
