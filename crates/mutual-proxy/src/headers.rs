//! What the proxy does to request headers before forwarding: strip every identity header a
//! caller could forge and every hop-by-hop header, then set `x-forwarded-*` and the verified
//! identity. Pure: a function of a header map and the connection's facts.

use std::net::IpAddr;

use http::header::{
    HeaderMap, HeaderName, HeaderValue, CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};

/// Headers that carry a client identity; a caller's copies are always removed.
pub const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-client-cert",
    "client-cert",
    "client-cert-chain",
    "l5d-client-id",
];

/// Prefixes of identity headers set by other proxies (Traefik, nginx/Apache conventions).
pub const IDENTITY_PREFIXES: &[&str] = &["x-forwarded-tls-client-cert", "ssl-client-"];

// Names made once: removing by a &str would parse and hash the name on every request.
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// True when a header name carries a client identity.
pub fn is_identity(name: &str) -> bool {
    IDENTITY_HEADERS.contains(&name) || IDENTITY_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Removes hop-by-hop headers and those named by `Connection` (for responses).
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    remove_where(headers, |_| false);
}

/// Removes identity headers, hop-by-hop headers and those named by `Connection`.
pub fn strip(headers: &mut HeaderMap) {
    remove_where(headers, |k| is_identity(k.as_str()));
}

/// Removes the hop-by-hop headers, those named by `Connection`, and those `also` picks: one
/// pass over the names a message has (a handful) instead of a hashed lookup for every name
/// that could be there, and nothing allocated when, as usual, none is.
fn remove_where(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| HOP_BY_HOP.contains(k) || also(k))
        .cloned()
        .collect();
    if doomed.contains(&CONNECTION) {
        doomed.extend(
            headers
                .get_all(CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
        );
    }
    for n in doomed {
        headers.remove(n);
    }
}

/// The facts about the connection that go to the backend.
#[derive(Debug, Clone)]
pub struct Forwarded<'a> {
    /// The caller's address.
    pub client: IpAddr,
    /// The host the caller asked for.
    pub host: Option<&'a str>,
    /// The XFCC element, when forwarding identity.
    pub xfcc: Option<&'a str>,
    /// RFC 9440 `Client-Cert` and `Client-Cert-Chain`.
    pub client_cert: Option<(&'a str, &'a str)>,
}

/// Strips, then sets `x-forwarded-for`, `-proto`, `-host` and the identity headers. Values
/// that are not valid header text are left out rather than failing the request.
pub fn prepare(headers: &mut HeaderMap, f: &Forwarded<'_>) {
    let host = f.host.and_then(|h| HeaderValue::from_str(h).ok());
    ConnHeaders::new(f.client, f.xfcc, f.client_cert).apply(headers, host, true);
}

/// The headers a connection sets on each of its requests, made once when it is accepted:
/// a request then clones them (a reference count) instead of formatting and copying its
/// caller's address and identity again. Values that are not valid header text are left out.
#[derive(Debug, Clone)]
pub struct ConnHeaders {
    forwarded_for: Option<HeaderValue>,
    xfcc: Option<HeaderValue>,
    client_cert: Option<(HeaderValue, Option<HeaderValue>)>,
}

fn value(text: &str) -> Option<HeaderValue> {
    // The String's buffer becomes the value's: no copy.
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text.to_owned())).ok()
}

impl ConnHeaders {
    /// The headers of a connection from `client` with its XFCC element and RFC 9440 headers.
    pub fn new(
        client: IpAddr,
        xfcc: Option<&str>,
        client_cert: Option<(&str, &str)>,
    ) -> ConnHeaders {
        ConnHeaders {
            forwarded_for: value(&client.to_string()),
            xfcc: xfcc.and_then(value),
            client_cert: client_cert.and_then(|(cert, chain)| {
                Some((
                    value(cert)?,
                    (!chain.is_empty()).then(|| value(chain)).flatten(),
                ))
            }),
        }
    }

    /// Strips `headers` (see [`strip`]), then sets `x-forwarded-for`, `-proto`, `-host` (to
    /// `host`) and the identity headers; `Client-Cert` and `Client-Cert-Chain` only when
    /// `client_cert` (the listener sends them).
    pub fn apply(&self, headers: &mut HeaderMap, host: Option<HeaderValue>, client_cert: bool) {
        // `te: trailers` is hop-by-hop by name but end to end in meaning: it says the caller
        // takes trailers, the only value HTTP/2 allows, and gRPC servers refuse a call without
        // it.
        let te_trailers = headers
            .get(TE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
        strip(headers);
        if te_trailers {
            headers.insert(TE, HeaderValue::from_static("trailers"));
        }
        if let Some(v) = &self.forwarded_for {
            headers.insert(X_FORWARDED_FOR.clone(), v.clone());
        }
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("https"));
        if let Some(h) = host {
            headers.insert(X_FORWARDED_HOST.clone(), h);
        }
        if let Some(x) = &self.xfcc {
            headers.insert(X_FORWARDED_CLIENT_CERT.clone(), x.clone());
        }
        if let (true, Some((cert, chain))) = (client_cert, &self.client_cert) {
            headers.insert(CLIENT_CERT.clone(), cert.clone());
            if let Some(chain) = chain {
                headers.insert(CLIENT_CERT_CHAIN.clone(), chain.clone());
            }
        }
    }
}

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");
static CLIENT_CERT: HeaderName = HeaderName::from_static("client-cert");
static CLIENT_CERT_CHAIN: HeaderName = HeaderName::from_static("client-cert-chain");

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn forged_identity_never_passes() {
        let cases: &[(&str, bool)] = &[
            ("x-forwarded-client-cert", true),
            ("X-Forwarded-Client-Cert", true),
            ("client-cert", true),
            ("client-cert-chain", true),
            ("x-forwarded-tls-client-cert", true),
            ("x-forwarded-tls-client-cert-info", true),
            ("ssl-client-subject-dn", true),
            ("ssl-client-verify", true),
            ("l5d-client-id", true),
            ("x-request-id", false),
            ("client-certainty", false),
        ];
        for (name, stripped) in cases {
            let mut m = map(&[(name, "By=evil;Subject=\"CN=admin\"")]);
            strip(&mut m);
            assert_eq!(m.is_empty(), *stripped, "{name}");
        }
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_go() {
        let mut m = map(&[
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("accept", "*/*"),
        ]);
        strip(&mut m);
        assert_eq!(m.len(), 1);
        assert!(m.contains_key("accept"));
    }

    #[test]
    fn te_trailers_alone_goes_on() {
        let f = Forwarded {
            client: "127.0.0.1".parse().unwrap(),
            host: None,
            xfcc: None,
            client_cert: None,
        };
        for (te, kept) in [("trailers", true), ("Trailers", true), ("gzip", false)] {
            let mut m = map(&[("te", te)]);
            prepare(&mut m, &f);
            let got = m.get("te").map(|v| v.to_str().unwrap().to_string());
            assert_eq!(got.as_deref(), kept.then_some("trailers"), "{te}");
        }
    }

    #[test]
    fn prepare_sets_forwarded_and_identity() {
        let mut m = map(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "http"),
            ("x-forwarded-client-cert", "Subject=\"CN=admin\""),
        ]);
        prepare(
            &mut m,
            &Forwarded {
                client: "127.0.0.1".parse().unwrap(),
                host: Some("www.example.com"),
                xfcc: Some("Hash=ab;Subject=\"CN=alice.example.com\""),
                client_cert: Some((":AQ==:", "")),
            },
        );
        assert_eq!(m["x-forwarded-for"], "127.0.0.1");
        assert_eq!(m["x-forwarded-proto"], "https");
        assert_eq!(m["x-forwarded-host"], "www.example.com");
        assert_eq!(m.get_all("x-forwarded-client-cert").iter().count(), 1);
        assert_eq!(
            m["x-forwarded-client-cert"],
            "Hash=ab;Subject=\"CN=alice.example.com\""
        );
        assert_eq!(m["client-cert"], ":AQ==:");
        assert!(!m.contains_key("client-cert-chain"));
    }

    /// The values a connection made once go on every request: the client certificate only
    /// where the listener sends it now, a value that is not header text never (nor the forged
    /// copy the caller sent), and each request's own host.
    #[test]
    fn connection_headers_on_each_request() {
        let conn = ConnHeaders::new(
            "::1".parse().unwrap(),
            Some("Hash=ab;Subject=\"CN=alice\""),
            Some((":AQ==:", ":Ag==:")),
        );
        for (client_cert, host) in [(true, Some("a.example.com")), (false, None)] {
            let mut m = map(&[("client-cert", ":forged:")]);
            conn.apply(&mut m, host.map(HeaderValue::from_static), client_cert);
            assert_eq!(m["x-forwarded-for"], "::1");
            assert_eq!(m["x-forwarded-client-cert"], "Hash=ab;Subject=\"CN=alice\"");
            assert_eq!(m.get("x-forwarded-host").map(|v| v.to_str().unwrap()), host);
            let cert = m.get("client-cert").map(|v| v.to_str().unwrap());
            assert_eq!(cert, client_cert.then_some(":AQ==:"));
            let chain = m.get("client-cert-chain").map(|v| v.to_str().unwrap());
            assert_eq!(chain, client_cert.then_some(":Ag==:"));
        }
        let bad = ConnHeaders::new("127.0.0.1".parse().unwrap(), Some("CN=a\nb"), None);
        let mut m = map(&[("x-forwarded-client-cert", "Subject=\"CN=admin\"")]);
        bad.apply(&mut m, None, true);
        assert!(!m.contains_key("x-forwarded-client-cert"));
    }
}
