//! Property tests: matcher strings and allow-lists (from users' config and flags), call URLs,
//! and the certificate chains a peer sends are refused with an error, never a panic; a valid
//! matcher's text parses back to a matcher that decides the same.
//!
//! Cases per property: `MUTUAL_PROPTEST_CASES` (default 256, a few seconds in debug). The long
//! run: `MUTUAL_PROPTEST_CASES=100000 cargo test --release -p mutual-tls --test properties`.

use std::sync::{Arc, OnceLock};

use mutual_pki::serial::Serial;
use mutual_tls::{verify_client_chain, Matcher, PeerIdentity, Policy, Target, TrustStore};
use proptest::prelude::*;
use proptest::sample::Index;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{macros::datetime, Duration, OffsetDateTime};

fn config() -> ProptestConfig {
    let cases = std::env::var("MUTUAL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures are kept as named regression tests, not as files beside the source.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const KINDS: &[&str] = &[
    "cn", "dns", "uri", "issuer", "ou", "serial", "any", "CN", "Dns",
];

/// Strings shaped like matchers: a kind (or not), `=` / `~` (or not), then anything.
fn matcher_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,24}",
        any::<String>(),
        (
            prop::sample::select(KINDS),
            prop::sample::select(&["=", "~", "", "=="][..]),
            "[ -~]{0,16}|[*?\\[\\]{}()\\\\^$.,|+]{0,10}|\\PC{0,8}",
            "[ \t]{0,2}",
        )
            .prop_map(|(k, op, v, ws)| format!("{ws}{k}{op}{v}{ws}")),
    ]
}

/// Matchers that must parse.
fn valid_matcher() -> impl Strategy<Value = String> {
    let label = "[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?";
    prop_oneof![
        Just("any".to_string()),
        "[a-zA-Z0-9 .@_-]{1,20}".prop_map(|v| format!("cn={}", v.trim_start())),
        prop::sample::select(
            &[
                r"^alice\.",
                r"example\.com$",
                r"^(a|b)+$",
                r".*",
                r"[a-c]{2,3}"
            ][..]
        )
        .prop_map(|r| format!("cn~{r}")),
        (
            prop_oneof![Just("*".to_string()), label.prop_map(|l| l)],
            prop::collection::vec(label, 1..3)
        )
            .prop_map(|(first, rest)| format!("dns={first}.{}", rest.join("."))),
        "[a-z0-9/.:-]{1,20}(\\*[a-z0-9/.-]{0,8})?".prop_map(|v| format!("uri=spiffe://{v}")),
        "[A-Za-z0-9 ,=\"]{1,20}".prop_map(|v| format!("issuer={}", v.trim_start())),
        "[A-Za-z0-9 ]{1,12}".prop_map(|v| format!("ou={}", v.trim_start())),
        prop::collection::vec(any::<u8>(), 1..=20)
            .prop_map(|b| format!("serial={}", Serial::from_bytes(&b))),
    ]
    .prop_filter("a value that is only blanks trims to nothing", |m| {
        !m.ends_with('=') && m.trim() == m
    })
}

fn peer() -> impl Strategy<Value = PeerIdentity> {
    let names = prop::sample::select(
        &[
            "alice.example.com",
            "bob.example.com",
            "ALICE.example.com",
            "a.b.example.com",
            "",
            "x",
        ][..],
    );
    (
        names.clone(),
        prop::collection::vec(names.clone(), 0..3),
        prop::collection::vec(
            prop::sample::select(
                &[
                    "spiffe://example.org/ns/prod/sa/a",
                    "spiffe://x/y",
                    "https://b",
                ][..],
            ),
            0..2,
        ),
        prop::collection::vec(prop::sample::select(&["payments", "ops", "A B"][..]), 0..2),
        prop::collection::vec(any::<u8>(), 1..4),
        prop::collection::vec(
            prop::sample::select(
                &[
                    "Local Root CA",
                    "Alice Intermediate Authority",
                    "Acme, \"Inc\"",
                ][..],
            ),
            0..3,
        ),
    )
        .prop_map(|(cn, dns, uris, ous, serial, issuers)| PeerIdentity {
            subject: format!("CN={cn}"),
            common_name: (!cn.is_empty()).then(|| cn.to_string()),
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addresses: vec![],
            uris: uris.iter().map(|s| s.to_string()).collect(),
            spiffe_id: None,
            organizational_units: ous.iter().map(|s| s.to_string()).collect(),
            serial: Serial::from_bytes(&serial),
            issuer: issuers
                .first()
                .map(|i| format!("CN={i}"))
                .unwrap_or_default(),
            issuer_chain: issuers.iter().map(|i| format!("CN={i}")).collect(),
            issuer_names: issuers.iter().map(|i| i.to_string()).collect(),
            fingerprint: "AB:CD".into(),
        })
}

const NOW: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

/// A root and a client leaf under it, made once.
fn chain() -> &'static (Vec<u8>, Vec<u8>) {
    static CHAIN: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let root_key = KeyPair::generate().unwrap();
        let mut rp = CertificateParams::default();
        rp.distinguished_name
            .push(DnType::CommonName, "Local Root CA");
        rp.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        rp.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        rp.not_before = NOW - Duration::days(365);
        rp.not_after = NOW + Duration::days(365);
        let root = rp.self_signed(&root_key).unwrap().der().to_vec();
        let leaf_key = KeyPair::generate().unwrap();
        let mut lp = CertificateParams::default();
        lp.distinguished_name
            .push(DnType::CommonName, "alice.example.com");
        lp.subject_alt_names = vec![
            SanType::DnsName("alice.example.com".try_into().unwrap()),
            SanType::URI("spiffe://example.org/ns/prod/sa/a".try_into().unwrap()),
        ];
        lp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        lp.use_authority_key_identifier_extension = true;
        lp.not_before = NOW - Duration::days(30);
        lp.not_after = NOW + Duration::days(30);
        let leaf = lp
            .signed_by(&leaf_key, &Issuer::from_params(&rp, &root_key))
            .unwrap()
            .der()
            .to_vec();
        (root, leaf)
    })
}

/// Flips, sets, cuts and length bytes at random places of real DER.
fn mangle(der: &[u8], edits: &[(Index, u8, u8)]) -> Vec<u8> {
    let mut v = der.to_vec();
    for (i, op, b) in edits {
        if v.is_empty() {
            break;
        }
        let i = i.index(v.len());
        match op % 4 {
            0 => v[i] ^= b | 1,
            1 => v[i] = *b,
            2 => v.truncate(i),
            _ => {
                v.splice(i..(i + 2).min(v.len()), [0x82, *b]);
            }
        }
    }
    v
}

#[test]
fn the_unmangled_chain_is_alice() {
    let (root, leaf) = chain();
    let trust = TrustStore::from_ders(vec![root.clone()]).unwrap();
    let peer = verify_client_chain(&trust, &[], std::slice::from_ref(leaf), NOW).unwrap();
    assert_eq!(peer.common_name.as_deref(), Some("alice.example.com"));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn matcher_strings_never_panic(s in matcher_like()) {
        match s.parse::<Matcher>() {
            Ok(m) => {
                // What parsed displays as its trimmed self and parses again.
                prop_assert_eq!(m.to_string(), s.trim());
                prop_assert!(m.to_string().parse::<Matcher>().is_ok());
            }
            Err(e) => {
                prop_assert!(e.column >= 1);
                prop_assert!(!e.reason.is_empty() && !e.reason.contains('\n'), "{:?}", e.reason);
                prop_assert_eq!(e.input, s);
            }
        }
    }

    #[test]
    fn valid_matchers_round_trip_through_display(
        m in valid_matcher(),
        pad in "[ \t]{0,2}",
        peers in prop::collection::vec(peer(), 1..6),
    ) {
        let parsed: Matcher = format!("{pad}{m}{pad}")
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{m:?}: {e}")))?;
        prop_assert_eq!(parsed.to_string(), m.clone());
        let again: Matcher = parsed.to_string().parse().unwrap();
        prop_assert_eq!(again.to_string(), parsed.to_string());
        for p in &peers {
            prop_assert_eq!(again.matches(p), parsed.matches(p), "{} on {:?}", m, p);
        }
    }

    #[test]
    fn policies_decide_by_their_matchers(
        allow in prop::collection::vec(valid_matcher(), 0..4),
        garbage in prop::collection::vec(matcher_like(), 0..3),
        peer in peer(),
    ) {
        let _ = Policy::parse(&garbage);
        let policy = Policy::parse(&allow).unwrap();
        let peer = Arc::new(peer);
        let any = policy.matchers().iter().any(|m| m.matches(&peer));
        match policy.authorize(&peer) {
            Ok(permit) => {
                prop_assert!(any);
                prop_assert!(allow.iter().any(|a| a == permit.rule()));
            }
            Err(denial) => {
                prop_assert!(!any);
                prop_assert_eq!(&denial.allowed, &allow);
                prop_assert!(!denial.to_string().is_empty());
            }
        }
    }

    #[test]
    fn call_urls_never_panic(s in "https://\\PC{0,30}|\\PC{0,30}|https://\\[[0-9a-f:]{0,8}\\]?:?[0-9]{0,6}/?") {
        if let Ok(t) = Target::parse(&s) {
            prop_assert!(!t.host.is_empty());
            prop_assert!(t.path.starts_with('/'));
        }
    }

    #[test]
    fn call_urls_round_trip(
        host in "[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?|\\[[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}\\]",
        port in any::<Option<u16>>(),
        path in "(/[a-zA-Z0-9._~%!$&'()*+,;=:@-]{0,8}){0,3}(\\?[a-z=&]{0,10})?",
    ) {
        let url = match port {
            Some(p) => format!("https://{host}:{p}{path}"),
            None => format!("https://{host}{path}"),
        };
        let t = Target::parse(&url).map_err(|e| TestCaseError::fail(format!("{url}: {e}")))?;
        prop_assert_eq!(t.host, host.trim_start_matches('[').trim_end_matches(']'));
        prop_assert_eq!(t.port, port.unwrap_or(443));
        let want_path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path
        };
        prop_assert_eq!(t.path, want_path);
    }

    #[test]
    fn peer_chains_never_panic(
        leaf_edits in prop::collection::vec((any::<Index>(), any::<u8>(), any::<u8>()), 0..4),
        root_edits in prop::collection::vec((any::<Index>(), any::<u8>(), any::<u8>()), 0..2),
        extra in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let (root, leaf) = chain();
        let leaf = mangle(leaf, &leaf_edits);
        let sent = vec![leaf, extra];
        let _ = PeerIdentity::from_chain(&sent);
        let _ = PeerIdentity::from_chain(&sent[..1]);
        let _ = mutual_tls::explain::dn_from_der(&sent[0]);
        if let Ok(trust) = TrustStore::from_ders(vec![mangle(root, &root_edits)]) {
            for chain in [&sent[..1], &sent[..]] {
                match verify_client_chain(&trust, &[], chain, NOW) {
                    Ok(peer) => prop_assert!(!peer.fingerprint.is_empty()),
                    Err(refusal) => prop_assert!(!refusal.to_string().is_empty()),
                }
            }
        }
    }
}

#[test]
fn a_matcher_error_names_the_input_column_and_reason() {
    // Pinned shape the property relies on (one line for a one-line input).
    let e = "dns=[a".parse::<Matcher>().unwrap_err();
    assert_eq!((e.column, e.input.as_str()), (5, "dns=[a"));
}
