//! Property tests: what a caller or an operator hands the proxy — identity headers to forge or
//! strip, names that end up in XFCC, the TOML config, upstream and CRL URLs, Host values — is
//! refused or handled, never a panic; the XFCC we write reads back, through an independent
//! parser in Envoy's grammar, to the names we put in.
//!
//! Cases per property: `MUTUAL_PROPTEST_CASES` (default 256, a few seconds in debug). The long
//! run: `MUTUAL_PROPTEST_CASES=100000 cargo test --release -p mutual-proxy --test properties`.

use std::collections::HashSet;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use mutual_pki::serial::Serial;
use mutual_proxy::{config, crlstate::HttpUrl, headers, route, tunnel, xfcc, FileConfig};
use mutual_tls::PeerIdentity;
use proptest::prelude::*;

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

/// An XFCC header as Envoy reads it: elements split on `,`, pairs on `;`, key and value on
/// the first `=`, all outside double quotes; a quoted value loses its quotes and its `\`
/// escapes. Written here from the grammar, not from our writer.
fn parse_xfcc(header: &str) -> Vec<Vec<(String, String)>> {
    let mut elements = vec![vec![]];
    let (mut key, mut val) = (String::new(), String::new());
    let (mut in_key, mut quoted, mut escaped) = (true, false, false);
    let flush = |elements: &mut Vec<Vec<(String, String)>>, k: &mut String, v: &mut String| {
        elements
            .last_mut()
            .unwrap()
            .push((std::mem::take(k), std::mem::take(v)));
    };
    for c in header.chars() {
        if escaped {
            val.push(c);
            escaped = false;
        } else if quoted {
            match c {
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => val.push(c),
            }
        } else if in_key {
            match c {
                '=' => in_key = false,
                _ => key.push(c),
            }
        } else {
            match c {
                '"' if val.is_empty() => quoted = true,
                ';' => {
                    flush(&mut elements, &mut key, &mut val);
                    in_key = true;
                }
                ',' => {
                    flush(&mut elements, &mut key, &mut val);
                    elements.push(vec![]);
                    in_key = true;
                }
                _ => val.push(c),
            }
        }
    }
    flush(&mut elements, &mut key, &mut val);
    elements
}

/// Names with every character that separates XFCC parts, and some that do not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .:/*@_;,=\"\\\\-]{0,24}",
        "[ -~]{0,24}",
        "\\PC{0,12}",
    ]
}

fn peer() -> impl Strategy<Value = PeerIdentity> {
    (
        name(),
        prop::collection::vec(name(), 0..3),
        prop::collection::vec(name(), 0..3),
        prop::collection::vec(any::<u8>(), 32),
    )
        .prop_map(|(subject, uris, dns, hash)| PeerIdentity {
            subject,
            common_name: None,
            dns_names: dns,
            ip_addresses: vec![],
            uris,
            spiffe_id: None,
            organizational_units: vec![],
            serial: Serial::from_bytes(&[1]),
            issuer: "CN=Local Root CA".into(),
            issuer_chain: vec![],
            issuer_names: vec![],
            fingerprint: hash
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
        })
}

/// Header names a caller may send: identity headers in any case, hop-by-hop ones, others.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(headers::IDENTITY_HEADERS).prop_map(str::to_string),
        (
            prop::sample::select(headers::IDENTITY_PREFIXES),
            "[a-z-]{0,8}"
        )
            .prop_map(|(p, s)| format!("{p}{s}")),
        prop::sample::select(
            &[
                "connection",
                "keep-alive",
                "proxy-connection",
                "te",
                "trailer",
                "transfer-encoding",
                "upgrade",
                "proxy-authorization",
            ][..]
        )
        .prop_map(str::to_string),
        "x-[a-z0-9-]{1,10}",
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}",
    ]
    .prop_map(|n| {
        // Any case on the wire; one spelling in a HeaderMap.
        n.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    })
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[ -~]{0,30}".prop_map(String::into_bytes),
        "By=evil;Subject=\"CN=admin\"".prop_map(String::into_bytes),
        "[a-zA-Z0-9-]{1,10}(, ?[a-zA-Z0-9-]{1,10}){0,3}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..30),
    ]
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
    .contains(&name)
}

/// TOML values of every type, right and wrong, for the keys of the proxy's config.
fn toml_value() -> impl Strategy<Value = toml::Value> {
    let text = prop_oneof![
        prop::sample::select(
            &[
                "127.0.0.1:0",
                "[::1]:8443",
                "127.0.0.1:99999",
                "localhost:80",
                "http://127.0.0.1:8080",
                "tcp://127.0.0.1:9",
                "http://[::1]:80/",
                "http://a@b:1",
                "http://127.0.0.1:80/crl",
                "10s",
                "2160h0m0s",
                "1e308h",
                "99999999999999999999d",
                "cn=alice.example.com",
                "cn~^(",
                "dns=[a",
                "serial=zz",
                "any",
                "*",
                "/",
                "",
                "tcp",
                "http",
                "json",
                "h2c",
                "least_requests",
                "fail_closed",
                "handshake",
                "a",
            ][..]
        )
        .prop_map(str::to_string),
        "\\PC{0,12}",
    ];
    let leaf = prop_oneof![
        4 => text.prop_map(toml::Value::String),
        1 => any::<i64>().prop_map(toml::Value::Integer),
        1 => (0i64..100_000).prop_map(toml::Value::Integer),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => any::<f64>().prop_map(toml::Value::Float),
    ];
    leaf.prop_recursive(1, 4, 3, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(toml::Value::Array)
    })
}

const TOP_KEYS: &[&str] = &["log_format", "access_log"];
const LISTENER_KEYS: &[&str] = &[
    "listen",
    "ca",
    "cert",
    "key",
    "crl",
    "handshake_timeout",
    "idle_timeout",
    "request_timeout",
    "max_connections",
    "max_header_bytes",
    "max_body_bytes",
    "client_cert_headers",
    "mode",
    "upstream",
    "allow",
    "crl_fetch",
    "crl_refresh",
    "crl_stale",
    "crl_urls",
    "no_such_key",
];
const ROUTE_KEYS: &[&str] = &["host", "path", "upstream", "allow", "deny_at"];
const UPSTREAM_KEYS: &[&str] = &[
    "name",
    "servers",
    "balance",
    "protocol",
    "eject_after",
    "eject_for",
    "connect_timeout",
];

fn table(keys: &'static [&'static str]) -> impl Strategy<Value = toml::Table> {
    prop::collection::vec((prop::sample::select(keys), toml_value()), 0..8)
        .prop_map(|kv| kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A config that is structurally TOML of the right shape, with random values; half the time
/// the required keys hold plausible values so `check` gets past the first field.
fn file_config() -> impl Strategy<Value = String> {
    (
        table(TOP_KEYS),
        prop::collection::vec(
            (
                table(LISTENER_KEYS),
                prop::collection::vec(table(ROUTE_KEYS), 0..3),
            ),
            0..3,
        ),
        prop::collection::vec(table(UPSTREAM_KEYS), 0..3),
        any::<bool>(),
    )
        .prop_map(|(mut top, listeners, upstreams, plausible)| {
            let s = |v: &str| toml::Value::String(v.into());
            let listeners: Vec<toml::Value> = listeners
                .into_iter()
                .map(|(mut l, routes)| {
                    if plausible {
                        for (k, v) in [
                            ("listen", "127.0.0.1:0"),
                            ("ca", "ca.pem"),
                            ("cert", "c.pem"),
                            ("key", "k.pem"),
                        ] {
                            l.entry(k).or_insert_with(|| s(v));
                        }
                    }
                    let routes: Vec<toml::Value> = routes
                        .into_iter()
                        .map(|mut r| {
                            if plausible {
                                r.entry("upstream").or_insert_with(|| s("a"));
                            }
                            toml::Value::Table(r)
                        })
                        .collect();
                    if !routes.is_empty() {
                        l.insert("route".into(), toml::Value::Array(routes));
                    }
                    toml::Value::Table(l)
                })
                .collect();
            let upstreams: Vec<toml::Value> = upstreams
                .into_iter()
                .map(|mut u| {
                    if plausible {
                        u.entry("name").or_insert_with(|| s("a"));
                        u.entry("servers").or_insert_with(|| {
                            toml::Value::Array(vec![s("http://127.0.0.1:8080")])
                        });
                    }
                    toml::Value::Table(u)
                })
                .collect();
            if !listeners.is_empty() {
                top.insert("listener".into(), toml::Value::Array(listeners));
            }
            if !upstreams.is_empty() {
                top.insert("upstream".into(), toml::Value::Array(upstreams));
            }
            toml::to_string(&top).expect("a table serializes")
        })
}

fn check_error(e: &mutual_proxy::ConfigError) {
    match e {
        mutual_proxy::ConfigError::Toml(m) => assert!(!m.contains('\n'), "{m:?}"),
        mutual_proxy::ConfigError::Invalid { at, reason } => {
            assert!(!at.is_empty() && !reason.is_empty(), "{e:?}")
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn xfcc_round_trips_through_an_independent_parser(
        by in prop::option::of(name()),
        peer in peer(),
    ) {
        let header = xfcc::element(by.as_deref(), &peer);
        let elements = parse_xfcc(&header);
        prop_assert_eq!(elements.len(), 1, "one element: {}", header);
        let pairs = &elements[0];
        let get = |k: &str| pairs.iter().filter(|(key, _)| key == k).map(|(_, v)| v.clone()).collect::<Vec<_>>();
        prop_assert_eq!(get("By"), by.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(get("Hash"), vec![xfcc::hash_hex(&peer.fingerprint)]);
        prop_assert_eq!(get("Subject"), vec![peer.subject.clone()]);
        prop_assert_eq!(get("URI"), peer.uris.first().cloned().into_iter().collect::<Vec<_>>());
        prop_assert_eq!(get("DNS"), peer.dns_names.clone());
        prop_assert_eq!(pairs.len(), get("By").len() + 2 + get("URI").len() + get("DNS").len());
    }

    #[test]
    fn xfcc_survives_the_header_map(peer in peer(), host in "[ -~]{0,20}") {
        // Printable names reach the backend as one header that parses back to them.
        let element = xfcc::element(None, &peer);
        let mut h = HeaderMap::new();
        h.append("x-forwarded-client-cert", HeaderValue::from_static("By=evil"));
        headers::prepare(&mut h, &headers::Forwarded {
            client: "127.0.0.1".parse().unwrap(),
            host: Some(&host),
            xfcc: Some(&element),
            client_cert: Some((&xfcc::client_cert(b"\x01"), "")),
        });
        let got: Vec<&HeaderValue> = h.get_all("x-forwarded-client-cert").iter().collect();
        if HeaderValue::from_str(&element).is_ok() {
            prop_assert_eq!(got.len(), 1);
            let text = String::from_utf8(got[0].as_bytes().to_vec()).unwrap();
            prop_assert_eq!(&parse_xfcc(&text), &parse_xfcc(&element));
        } else {
            // A name that is not header text drops the header, never forwards the forged one.
            prop_assert!(got.is_empty());
        }
    }

    #[test]
    fn forged_identity_and_hop_by_hop_headers_never_pass(
        sent in prop::collection::vec((header_name(), header_value()), 0..12),
    ) {
        let mut h = HeaderMap::new();
        for (n, v) in &sent {
            let (Ok(n), Ok(v)) = (HeaderName::from_bytes(n.as_bytes()), HeaderValue::from_bytes(v)) else {
                continue;
            };
            h.append(n, v);
        }
        let named_by_connection: HashSet<String> = h
            .get_all("connection")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let before = h.clone();
        headers::strip(&mut h);
        for name in h.keys() {
            prop_assert!(!headers::is_identity(name.as_str()), "{} passed", name);
            prop_assert!(!is_hop_by_hop(name.as_str()), "{} passed", name);
            prop_assert!(!named_by_connection.contains(name.as_str()), "{} passed", name);
        }
        // Everything else passes untouched.
        for name in before.keys() {
            let n = name.as_str();
            if !headers::is_identity(n) && !is_hop_by_hop(n) && !named_by_connection.contains(n) {
                prop_assert_eq!(
                    before.get_all(name).iter().collect::<Vec<_>>(),
                    h.get_all(name).iter().collect::<Vec<_>>()
                );
            }
        }
    }

    #[test]
    fn config_text_never_panics(text in "\\PC{0,200}|[\\[\\]a-z_=\"0-9.:, \n{}#]{0,200}") {
        match FileConfig::parse(&text) {
            Ok(f) => {
                if let Err(e) = f.check() {
                    check_error(&e);
                }
            }
            Err(e) => check_error(&e),
        }
    }

    #[test]
    fn config_of_random_values_never_panics(text in file_config()) {
        match FileConfig::parse(&text) {
            Ok(f) => match f.check() {
                Ok(c) => {
                    prop_assert!(!c.listeners.is_empty());
                    for l in &c.listeners {
                        prop_assert!(l.routes.iter().all(|r| r.upstream < c.upstreams.len()));
                        prop_assert!(l.tcp.iter().all(|t| t.upstream < c.upstreams.len()));
                    }
                }
                Err(e) => check_error(&e),
            },
            Err(e) => check_error(&e),
        }
    }

    #[test]
    fn url_parsers_never_panic(
        s in "(https?|tcp)://\\PC{0,24}|\\PC{0,24}|(https?|tcp)://\\[[0-9a-f:]{0,8}\\]?:?[0-9]{0,6}/?\\PC{0,4}"
    ) {
        if let Ok((host, _)) = tunnel::parse_upstream(&s) {
            prop_assert!(!host.is_empty() && !host.contains('/'), "{:?}", host);
        }
        if let Ok(u) = HttpUrl::parse(&s) {
            prop_assert!(u.path.starts_with('/'));
            prop_assert!(u.authority.rsplit_once(':').is_some());
        }
        if let Ok(a) = config::backend_authority(&s) {
            prop_assert!(!a.contains('/') && !a.contains('@'));
        }
        let _ = route::host_of(&s);
    }

    #[test]
    fn upstream_urls_round_trip(
        host in "[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?|\\[[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}\\]",
        port in any::<u16>(),
        slash in any::<bool>(),
        path in "(/[a-zA-Z0-9._~%-]{0,8}){1,3}",
    ) {
        let slash = if slash { "/" } else { "" };
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        prop_assert_eq!(
            tunnel::parse_upstream(&format!("https://{host}:{port}{slash}")),
            Ok((bare.to_string(), port))
        );
        prop_assert_eq!(
            tunnel::parse_upstream(&format!("https://{host}{slash}")),
            Ok((bare.to_string(), 443))
        );
        prop_assert_eq!(
            config::backend_authority(&format!("http://{host}:{port}{slash}")),
            Ok(format!("{host}:{port}"))
        );
        let u = HttpUrl::parse(&format!("http://{host}:{port}{path}")).unwrap();
        prop_assert_eq!(u.authority, format!("{host}:{port}"));
        prop_assert_eq!(u.path, path.clone());
        let u = HttpUrl::parse(&format!("http://{host}{path}")).unwrap();
        prop_assert_eq!(u.authority, format!("{host}:80"));
        prop_assert_eq!(u.host, host.clone());
        // The Host a caller sends names the same host, whatever the case and port.
        prop_assert_eq!(route::host_of(&format!("{}:{port}", host.to_ascii_uppercase())).into_owned(), bare.to_string());
    }
}

#[test]
fn a_crl_url_with_an_ipv6_host_and_no_port_parses() {
    // Regression: the last `:` inside `[::1]` was taken for the port separator, and the URL
    // refused as "bad host or port".
    let u = HttpUrl::parse("http://[::1]/crl").unwrap();
    assert_eq!(
        (u.authority.as_str(), u.host.as_str(), u.path.as_str()),
        ("[::1]:80", "[::1]", "/crl")
    );
}

#[test]
fn an_upstream_without_a_host_or_with_junk_after_the_brackets_is_refused() {
    // Regression: these were taken as host "" (or the junk ignored) and port 443.
    for url in [
        "https://:443",
        "https://[]",
        "https://[]:8443",
        "https://[::1]x",
    ] {
        assert!(tunnel::parse_upstream(url).is_err(), "{url}");
    }
    assert_eq!(
        tunnel::parse_upstream("https://[::1]"),
        Ok(("::1".to_string(), 443))
    );
}
