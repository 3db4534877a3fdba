//! One OCSP answer per core, taken apart: the P-256 signature alone (the floor every answer
//! with a nonce pays), decoding a request, and decoding plus a signed answer. Prints one
//! `name ops_per_sec us_per_op` line per figure, for `bench/lifecycle.sh`'s OCSP row.
//!
//! Run: `cargo bench -p mutual-pki --bench ocsp` (pin it: `taskset -c 0 …`).

use std::time::{Duration, Instant};

use der::{
    asn1::{Null, ObjectIdentifier, OctetString},
    Encode,
};
use mutual_pki::{
    ca::{self, RootRequest},
    key::KeyType,
    ocsp::{self, Issuer, Status},
};
use rcgen::SigningKey;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_ocsp::{CertId, Request, TbsRequest, Version};
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

fn rate(name: &str, budget: Duration, mut op: impl FnMut()) {
    // Warm up, then run until the budget is spent (bounded in time and count).
    for _ in 0..100 {
        op();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget && n < 10_000_000 {
        op();
        n += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{name} {:.0} {:.2}", n as f64 / secs, secs * 1e6 / n as f64);
}

/// A request as `openssl ocsp` sends it: one SHA-1 CertID and an 18-byte nonce extension.
fn request(ca_der: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY as SHA1};
    let (_, cert) = X509Certificate::from_der(ca_der).expect("CA certificate");
    let id = CertId {
        hash_algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.3.14.3.2.26"),
            parameters: Some(Null.into()),
        },
        issuer_name_hash: OctetString::new(digest(&SHA1, cert.subject().as_raw()).as_ref())
            .expect("hash"),
        issuer_key_hash: OctetString::new(
            digest(&SHA1, &cert.public_key().subject_public_key.data).as_ref(),
        )
        .expect("hash"),
        serial_number: x509_cert::serial_number::SerialNumber::new(&[0x4a; 20]).expect("serial"),
    };
    let mut nonce = vec![4, 16];
    nonce.extend_from_slice(&[0x5c; 16]);
    x509_ocsp::OcspRequest {
        tbs_request: TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![Request {
                req_cert: id,
                single_request_extensions: None,
            }],
            request_extensions: Some(vec![x509_cert::ext::Extension {
                extn_id: ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2"),
                critical: false,
                extn_value: OctetString::new(nonce).expect("nonce"),
            }]),
        },
        optional_signature: None,
    }
    .to_der()
    .expect("request")
}

fn main() {
    let budget = Duration::from_millis(
        std::env::var("BENCH_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3000),
    );
    let now = OffsetDateTime::now_utc();
    let ca = ca::generate_root(
        &RootRequest {
            common_name: "Bench Root".into(),
            key_type: KeyType::EcP256,
            ttl: Duration::from_secs(3600),
            ..RootRequest::default()
        },
        now,
    )
    .expect("root");
    let der = request(&ca.cert_der);
    let issuer = Issuer::new(&ca.cert_der).expect("issuer");
    let tbs = [0x30u8; 180];
    rate("sign_p256", budget, || {
        ca.key.pair().sign(&tbs).expect("sign");
    });
    rate("parse_request", budget, || {
        ocsp::parse_request(&der).expect("parse");
    });
    rate("parse_and_respond_p256", budget, || {
        let req = ocsp::parse_request(&der).expect("parse");
        assert!(issuer.issued(&req.queries[0]));
        let statuses = [Status::Good];
        ocsp::respond(
            &issuer,
            &ca.key,
            &req,
            &statuses,
            now,
            Duration::from_secs(3600),
        )
        .expect("respond");
    });
}
