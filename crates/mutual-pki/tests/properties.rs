//! Property tests: whatever a peer or a user sends as a certificate, chain, CRL, CSR, key,
//! duration or serial is refused with an error, never a panic; and what we write reads back.
//!
//! The inputs are arbitrary bytes and, more usefully, real DER made here with rcgen and then
//! mangled (bits flipped, bytes set, lengths spliced in, tails cut, pieces copied), so the
//! parsers get past their first byte.
//!
//! Cases per property: `MUTUAL_PROPTEST_CASES` (default 256, a few seconds in debug). The long
//! run: `MUTUAL_PROPTEST_CASES=100000 cargo test --release -p mutual-pki --test properties`.

use std::sync::OnceLock;

use mutual_pki::{
    ca, cert, crl, csr, diagnosis::Purpose, duration, inspect, key::PrivateKey, serial::Serial,
    trust, verify,
};
use proptest::prelude::*;
use proptest::sample::Index;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevocationReason,
    RevokedCertParams, SanType, SerialNumber,
};
use time::{macros::datetime, Duration, OffsetDateTime};

fn config() -> ProptestConfig {
    let cases = std::env::var("MUTUAL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures are kept as named regression tests below, not as files beside the source.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOW: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

/// A root, an intermediate, a leaf with every kind of name, a CRL and a CSR, made once.
struct Pki {
    root: Vec<u8>,
    int: Vec<u8>,
    leaf: Vec<u8>,
    crl: Vec<u8>,
    /// The root's CRL, so that a chain with CRLs is covered at every level.
    root_crl: Vec<u8>,
    csr: Vec<u8>,
    key_pem: String,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.distinguished_name
        .push(DnType::OrganizationName, "Acme, \"Inc\"; =");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = NOW - Duration::days(365);
    p.not_after = NOW + Duration::days(365);
    p.use_authority_key_identifier_extension = true;
    p
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_key = KeyPair::generate().unwrap();
        let mut root_params = ca_params("Local Root CA");
        root_params.serial_number = Some(SerialNumber::from(1u64));
        let root = root_params.self_signed(&root_key).unwrap().der().to_vec();
        let root_issuer = Issuer::from_params(&root_params, &root_key);

        let int_key = KeyPair::generate().unwrap();
        let mut int_params = ca_params("Alice Intermediate Authority");
        int_params.serial_number = Some(SerialNumber::from(2u64));
        let int = int_params
            .signed_by(&int_key, &root_issuer)
            .unwrap()
            .der()
            .to_vec();
        let int_issuer = Issuer::from_params(&int_params, &int_key);

        let leaf_key = KeyPair::generate().unwrap();
        let mut lp = CertificateParams::default();
        lp.distinguished_name
            .push(DnType::CommonName, "alice.example.com");
        lp.distinguished_name
            .push(DnType::OrganizationalUnitName, "payments");
        lp.subject_alt_names = vec![
            SanType::DnsName("alice.example.com".try_into().unwrap()),
            SanType::URI("spiffe://example.org/ns/prod/sa/alice".try_into().unwrap()),
            SanType::IpAddress("127.0.0.1".parse().unwrap()),
            SanType::Rfc822Name("alice@example.com".try_into().unwrap()),
        ];
        lp.is_ca = IsCa::ExplicitNoCa;
        lp.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        lp.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        lp.not_before = NOW - Duration::days(30);
        lp.not_after = NOW + Duration::days(30);
        lp.use_authority_key_identifier_extension = true;
        lp.serial_number = Some(SerialNumber::from(vec![0x3a, 0x9f, 0x01]));
        let leaf = lp.signed_by(&leaf_key, &int_issuer).unwrap().der().to_vec();

        let crl_params = |number: u64| CertificateRevocationListParams {
            this_update: NOW - Duration::days(1),
            next_update: NOW + Duration::days(1),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(99u64),
                revocation_time: NOW - Duration::days(2),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = crl_params(7).signed_by(&int_issuer).unwrap().der().to_vec();
        let root_crl = crl_params(8)
            .signed_by(&root_issuer)
            .unwrap()
            .der()
            .to_vec();

        let mut cp = CertificateParams::default();
        cp.distinguished_name = lp.distinguished_name.clone();
        cp.subject_alt_names = lp.subject_alt_names.clone();
        let csr = cp.serialize_request(&leaf_key).unwrap().der().to_vec();
        Pki {
            root,
            int,
            leaf,
            crl,
            root_crl,
            csr,
            key_pem: leaf_key.serialize_pem(),
        }
    })
}

/// One way to damage DER.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    /// Overwrite with a DER length form (short, long, indefinite, absurd).
    Length(Index, Vec<u8>),
    Insert(Index, Vec<u8>),
    Delete(Index, u8),
    /// Copy a piece of the input over another place, e.g. a TLV where another was.
    Splice(Index, Index, u8),
}

fn length_form() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<u8>().prop_map(|n| vec![n & 0x7f]),
        Just(vec![0x80]),
        any::<u8>().prop_map(|n| vec![0x81, n]),
        any::<[u8; 2]>().prop_map(|[a, b]| vec![0x82, a, b]),
        Just(vec![0x84, 0xff, 0xff, 0xff, 0xff]),
        Just(vec![
            0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
        ]),
        Just(vec![0xff]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        3 => (any::<Index>(), length_form()).prop_map(|(i, l)| Mutation::Length(i, l)),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1..16u8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1..64u8)
            .prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..4)
}

fn apply(input: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut v = input.to_vec();
    for m in ms {
        if v.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, mask) => {
                let i = i.index(v.len());
                v[i] ^= mask;
            }
            Mutation::Set(i, b) => {
                let i = i.index(v.len());
                v[i] = *b;
            }
            Mutation::Truncate(i) => v.truncate(i.index(v.len())),
            Mutation::Length(i, l) => {
                let i = i.index(v.len());
                let end = (i + l.len()).min(v.len());
                v.splice(i..end, l.iter().copied());
            }
            Mutation::Insert(i, b) => {
                let i = i.index(v.len() + 1);
                v.splice(i..i, b.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let i = i.index(v.len());
                let end = (i + *n as usize).min(v.len());
                v.drain(i..end);
            }
            Mutation::Splice(from, to, n) => {
                let from = from.index(v.len());
                let piece: Vec<u8> = v[from..(from + *n as usize).min(v.len())].to_vec();
                let to = to.index(v.len());
                let end = (to + piece.len()).min(v.len());
                v.splice(to..end, piece);
            }
        }
    }
    v
}

fn pem_of(tag: &str, der: &[u8]) -> Vec<u8> {
    pem::encode(&pem::Pem::new(tag, der.to_vec())).into_bytes()
}

fn one_line(msg: &str, what: &str) {
    assert!(
        !msg.is_empty() && !msg.contains('\n'),
        "{what}: not one line: {msg:?}"
    );
}

/// Every certificate reader over the same bytes.
fn read_cert_everywhere(der: &[u8], now: OffsetDateTime) {
    if let Ok(f) = cert::facts(der) {
        // A certificate that parses has a fingerprint and can be described.
        assert!(!cert::fingerprint(der).is_empty());
        let reports = inspect::describe(&[der.to_vec()], now).expect("facts parsed, so describe");
        let _ = inspect::render(&reports);
        let _ = verify::names_host(&f, "alice.example.com");
        let _ = verify::names_host(&f, "127.0.0.1");
    }
    if let Err(e) = cert::certs_from_bytes(der) {
        one_line(&e.to_string(), "certs_from_bytes");
    }
    let _ = trust::wide_trust_warnings(&[der.to_vec()]);
    let _ = trust::summarize_anchors(&[der.to_vec()]);
    let pem = pem_of("CERTIFICATE", der);
    match cert::pem_certs(&pem) {
        Ok(certs) => assert_eq!(certs, vec![der.to_vec()], "PEM carries the bytes"),
        Err(e) => one_line(&e.to_string(), "pem_certs"),
    }
}

fn time_strategy() -> impl Strategy<Value = OffsetDateTime> {
    prop_oneof![
        3 => Just(NOW),
        1 => (-62_000_000_000i64..253_000_000_000i64)
            .prop_map(|t| OffsetDateTime::from_unix_timestamp(t).unwrap()),
        1 => prop_oneof![
            Just(OffsetDateTime::new_utc(time::Date::MIN, time::Time::MIDNIGHT)),
            Just(OffsetDateTime::new_utc(time::Date::MAX, time::Time::from_hms(23, 59, 59).unwrap())),
        ],
    ]
}

fn purpose() -> impl Strategy<Value = Option<Purpose>> {
    prop_oneof![
        Just(None),
        Just(Some(Purpose::Client)),
        Just(Some(Purpose::Server))
    ]
}

fn name() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("alice.example.com".to_string())),
        Just(Some("127.0.0.1".to_string())),
        Just(Some("::1".to_string())),
        ".{0,20}".prop_map(Some),
    ]
}

#[test]
fn the_unmutated_chain_verifies() {
    // Otherwise every mutated chain would fail for the same dull reason.
    let p = pki();
    let chain = [p.leaf.clone(), p.int.clone()];
    let input = verify::VerifyInput {
        chain: &chain,
        trusted: std::slice::from_ref(&p.root),
        purpose: Some(Purpose::Client),
        name: Some("alice.example.com"),
        crls: &[p.crl.clone(), p.root_crl.clone()],
        now: NOW,
    };
    let v = verify::verify(&input).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(v.path().len(), 3);
    assert!(csr::parse(&p.csr).is_ok());
    assert!(crl::check_issued_by(&p.crl, std::slice::from_ref(&p.int)).is_ok());
}

#[test]
fn a_ca_ttl_past_year_9999_ends_there() {
    // Regression: `now + ttl` overflowed the clock and panicked (a TTL from the API, capped
    // only by a mount maximum that the API sets too).
    for secs in [u64::MAX, 400_000_000_000, 360_000_000_000] {
        let root = ca::generate_root(
            &ca::RootRequest {
                common_name: "Forever Root".into(),
                ttl: std::time::Duration::from_secs(secs),
                ..ca::RootRequest::default()
            },
            NOW,
        )
        .unwrap();
        let facts = cert::facts(&root.cert_der).unwrap();
        assert_eq!(facts.not_after.year(), 9999, "{secs}");
    }
}

#[test]
fn control_characters_in_names_are_escaped() {
    // Regression (found by mangled_crls_never_panic): a newline in a peer's DN reached error
    // messages verbatim and split them over two lines.
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name
        .push(DnType::CommonName, "evil\nCN=admin\u{0}");
    let der = p.self_signed(&key).unwrap().der().to_vec();
    let f = cert::facts(&der).unwrap();
    assert_eq!(f.subject, "CN=evil\\0ACN\\=admin\\00");
}

#[test]
fn many_duration_parts_never_wrap_around() {
    // Regression: the sum was cut to 64 bits, so enough large parts made a short duration.
    let text = "999999999999s".repeat(20_000);
    let e = duration::parse(&text).unwrap_err();
    assert_eq!(e.why, "too large");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ca_lifetimes_never_panic(secs in prop_oneof![any::<u64>(), 0u64..1_000_000_000]) {
        let root = ca::generate_root(
            &ca::RootRequest {
                common_name: "Root".into(),
                ttl: std::time::Duration::from_secs(secs),
                ..ca::RootRequest::default()
            },
            NOW,
        )
        .unwrap();
        let facts = cert::facts(&root.cert_der).unwrap();
        prop_assert!(facts.not_after > NOW || secs < 30);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_cert_everywhere(&bytes, NOW);
        if let Err(e) = csr::parse(&bytes) {
            one_line(&e.to_string(), "csr");
        }
        let _ = crl::check_issued_by(&bytes, &[pki().int.clone()]);
        let _ = PrivateKey::from_pkcs8_der(&bytes);
        let _ = PrivateKey::from_pem(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mangled_certificates_never_panic(
        which in 0..3usize,
        ms in mutations(),
        now in time_strategy(),
    ) {
        let p = pki();
        let der = apply([&p.root, &p.int, &p.leaf][which], &ms);
        read_cert_everywhere(&der, now);
        let _ = crl::check_issued_by(&p.crl, &[der]);
    }

    #[test]
    fn mangled_chains_never_panic(
        which in 0..4usize,
        ms in mutations(),
        now in time_strategy(),
        purpose in purpose(),
        name in name(),
        with_crl in any::<bool>(),
        with_int in any::<bool>(),
    ) {
        let p = pki();
        let mut parts = [p.leaf.clone(), p.int.clone(), p.root.clone(), p.crl.clone()];
        parts[which] = apply(&parts[which], &ms);
        let [leaf, int, root, crl] = parts;
        let mut chain = vec![leaf];
        if with_int {
            chain.push(int);
        }
        let crls = if with_crl { vec![crl, p.root_crl.clone()] } else { vec![] };
        let input = verify::VerifyInput {
            chain: &chain,
            trusted: std::slice::from_ref(&root),
            purpose,
            name: name.as_deref(),
            crls: &crls,
            now,
        };
        match verify::verify(&input) {
            Ok(v) => {
                prop_assert_eq!(&v.path()[0], &chain[0]);
                prop_assert_eq!(v.path().last().unwrap(), &root);
            }
            Err(d) => {
                prop_assert!(!d.code().is_empty());
                prop_assert!(!d.to_string().is_empty());
            }
        }
    }

    #[test]
    fn mangled_crls_never_panic(ms in mutations()) {
        let p = pki();
        let der = apply(&p.crl, &ms);
        if let Err(e) = crl::check_issued_by(&der, &[p.root.clone(), p.int.clone()]) {
            one_line(&e.to_string(), "crl");
        }
        let _ = cert::pem_certs(crl::to_pem(&der).as_bytes());
    }

    #[test]
    fn mangled_csrs_never_panic(ms in mutations(), as_pem in any::<bool>()) {
        let der = apply(&pki().csr, &ms);
        let input = if as_pem { pem_of("CERTIFICATE REQUEST", &der) } else { der };
        match csr::parse(&input) {
            // Whatever still verifies asks for what the original asked for or less damage
            // than a signature can hide: the key is the one that signed it.
            Ok(c) => prop_assert!(!c.public_key_der.is_empty()),
            Err(e) => one_line(&e.to_string(), "csr"),
        }
    }

    #[test]
    fn mangled_pem_text_never_panics(ms in mutations(), which in 0..3usize) {
        let p = pki();
        let text = match which {
            0 => p.key_pem.clone().into_bytes(),
            1 => cert::to_pem(&p.leaf).into_bytes(),
            _ => pem_of("CERTIFICATE REQUEST", &p.csr),
        };
        let text = apply(&text, &ms);
        let _ = cert::pem_certs(&text);
        let _ = cert::certs_from_bytes(&text);
        let _ = csr::parse(&text);
        if let Ok(s) = std::str::from_utf8(&text) {
            if let Err(e) = PrivateKey::from_pem(s) {
                one_line(&e.to_string(), "key");
            }
        }
    }

    #[test]
    fn mangled_pkcs8_never_panics(ms in mutations()) {
        let key = PrivateKey::from_pem(&pki().key_pem).unwrap();
        let der = apply(&key.to_der(), &ms);
        if let Ok(k) = PrivateKey::from_pkcs8_der(&der) {
            // A key that still reads writes itself back.
            prop_assert!(PrivateKey::from_pem(&k.to_pem()).is_ok());
        }
    }

    #[test]
    fn durations_round_trip(secs in 0u64..1_000_000_000_000) {
        let d = std::time::Duration::from_secs(secs);
        prop_assert_eq!(duration::parse(&duration::format(d)), Ok(d));
        prop_assert_eq!(duration::parse(&secs.to_string()), Ok(d));
    }

    #[test]
    fn go_durations_add_up(h in 0u64..100_000, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
        let text = format!("{h}h{m}m{s}s{ms}ms");
        let want = std::time::Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
        prop_assert_eq!(duration::parse(&text), Ok(want));
    }

    #[test]
    fn duration_garbage_never_panics(s in "[0-9.hmsd \\-+e]{0,24}|\\PC{0,24}") {
        if let Err(e) = duration::parse(&s) {
            prop_assert!(!e.why.is_empty());
        }
    }

    #[test]
    fn serials_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..=21)) {
        let s = Serial::from_bytes(&bytes);
        prop_assert_eq!(Serial::parse(&s.to_string()), Ok(s.clone()));
        prop_assert_eq!(Serial::parse(&s.to_hex()), Ok(s.clone()));
        prop_assert_eq!(Serial::parse(&s.to_hex().to_uppercase()), Ok(s.clone()));
        prop_assert_eq!(Serial::parse(&s.to_string().replace(':', "-")), Ok(s.clone()));
        prop_assert_eq!(Serial::parse(&format!("0x{}", s.to_hex())), Ok(s));
    }

    #[test]
    fn serial_garbage_never_panics(s in "[0-9a-fA-FxX:\\- ]{0,50}|\\PC{0,50}") {
        if let Ok(serial) = Serial::parse(&s) {
            // Whatever parses displays as something that parses to the same serial.
            prop_assert_eq!(Serial::parse(&serial.to_string()), Ok(serial));
        }
    }

    #[test]
    fn small_text_parsers_never_panic(s in "\\PC{0,30}", bits in any::<u32>()) {
        let _ = s.parse::<crl::Reason>();
        let _ = s.parse::<Purpose>();
        let _ = mutual_pki::key::KeyType::from_parts(&s, bits);
    }
}
