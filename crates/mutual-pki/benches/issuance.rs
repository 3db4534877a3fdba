//! In-process issuance per core: key generation and certificate signing measured apart, for
//! EC P-256 and RSA 2048. Prints one `name ops_per_sec` line per figure, which
//! `bench/pki.sh` sets beside `openssl speed`.
//!
//! Run: `cargo bench -p mutual-pki --bench issuance` (pin it: `taskset -c 0 …`).

use std::time::{Duration, Instant};

use mutual_pki::{
    ca::{self, RootRequest, SigningCa, Urls},
    issue,
    key::KeyType,
    role::Checked,
    serial::Serial,
};
use time::OffsetDateTime;

fn rate(name: &str, budget: Duration, mut op: impl FnMut()) -> f64 {
    // Warm up, then run until the budget is spent (bounded in time and count).
    for _ in 0..3 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget && n < 10_000_000 {
        op();
        n += 1;
    }
    let per_sec = n as f64 / start.elapsed().as_secs_f64();
    println!("{name} {per_sec:.1}");
    per_sec
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000),
    );
    let now = OffsetDateTime::now_utc();
    rate("keygen_ec_p256", budget, || {
        KeyType::EcP256.generate().expect("keygen");
    });
    rate("keygen_rsa_2048", budget, || {
        KeyType::Rsa(2048).generate().expect("keygen");
    });
    for (label, kt) in [
        ("ec_p256", KeyType::EcP256),
        ("rsa_2048", KeyType::Rsa(2048)),
    ] {
        let root = ca::generate_root(
            &RootRequest {
                common_name: "Bench Root".into(),
                key_type: kt,
                ..RootRequest::default()
            },
            now,
        )
        .expect("root");
        let urls = Urls::default();
        let signer = SigningCa {
            cert_der: &root.cert_der,
            key: &root.key,
            urls: &urls,
        };
        let leaf_key = kt.generate().expect("leaf key");
        let spki = leaf_key.public_key_der();
        let checked = Checked {
            common_name: "alice.example.com".into(),
            dns_sans: vec!["alice.example.com".into()],
            email_sans: vec![],
            ip_sans: vec![],
            uri_sans: vec![],
            not_before: now,
            not_after: now + Duration::from_secs(720 * 3600),
            server: true,
            client: true,
            ou: vec![],
            organization: vec![],
            warnings: vec![],
            subject: vec![],
        };
        {
            use rcgen::SigningKey;
            let msg = [7u8; 256];
            rate(&format!("raw_sign_{label}"), budget, || {
                root.key.pair().sign(&msg).expect("raw sign");
            });
        }
        let prepared = signer.prepare().expect("prepare");
        rate(&format!("sign_cert_{label}"), budget, || {
            issue::sign_leaf_prepared(
                &prepared,
                &checked,
                &spki,
                &kt.key_kind(),
                &Serial::random(),
            )
            .expect("sign");
        });
    }
}
