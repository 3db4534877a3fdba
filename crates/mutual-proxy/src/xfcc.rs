//! The caller's identity for the backend, in Envoy's `x-forwarded-client-cert` format
//! (`By=…;Hash=…;Subject="…";URI=…;DNS=…`) and RFC 9440's `Client-Cert` /
//! `Client-Cert-Chain`. Pure.

use base64::Engine as _;
use mutual_tls::PeerIdentity;

/// Quotes a value when it holds a character that separates XFCC elements or pairs
/// (`,` `;` `=` `"`) or space, escaping `"` and `\` inside.
fn value(v: &str, always: bool) -> String {
    if !always && !v.contains([',', ';', '=', '"', ' ', '\\']) {
        return v.to_string();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The lower-case hex SHA-256 of the leaf, from the `AB:CD:…` fingerprint.
pub fn hash_hex(fingerprint: &str) -> String {
    fingerprint
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One XFCC element for a verified peer. `by` is the proxy's own URI SAN, when it has one.
/// Subject is always quoted (as Envoy writes it); the other values when they need it.
pub fn element(by: Option<&str>, peer: &PeerIdentity) -> String {
    let mut parts = Vec::with_capacity(4 + peer.dns_names.len());
    if let Some(by) = by {
        parts.push(format!("By={}", value(by, false)));
    }
    parts.push(format!("Hash={}", hash_hex(&peer.fingerprint)));
    parts.push(format!("Subject={}", value(&peer.subject, true)));
    if let Some(uri) = peer.uris.first() {
        parts.push(format!("URI={}", value(uri, false)));
    }
    for dns in &peer.dns_names {
        parts.push(format!("DNS={}", value(dns, false)));
    }
    parts.join(";")
}

/// RFC 9440 `Client-Cert`: the leaf as a byte sequence (`:BASE64:`).
pub fn client_cert(der: &[u8]) -> String {
    format!(
        ":{}:",
        base64::engine::general_purpose::STANDARD.encode(der)
    )
}

/// RFC 9440 `Client-Cert-Chain`: the certificates above the leaf, comma separated.
pub fn client_cert_chain<C: AsRef<[u8]>>(above_leaf: &[C]) -> String {
    above_leaf
        .iter()
        .map(|c| client_cert(c.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mutual_pki::serial::Serial;

    fn peer(subject: &str, uris: &[&str], dns: &[&str]) -> PeerIdentity {
        PeerIdentity {
            subject: subject.into(),
            common_name: None,
            dns_names: dns.iter().map(|s| s.to_string()).collect(),
            ip_addresses: vec![],
            uris: uris.iter().map(|s| s.to_string()).collect(),
            spiffe_id: None,
            organizational_units: vec![],
            serial: Serial::from_bytes(&[1]),
            issuer: "CN=Local Root CA".into(),
            issuer_chain: vec![],
            issuer_names: vec![],
            fingerprint: "AB:CD:EF:01".into(),
        }
    }

    #[test]
    fn elements_in_envoy_format() {
        let cases: &[(Option<&str>, PeerIdentity, &str)] = &[
            (
                None,
                peer("CN=alice.example.com", &[], &["alice.example.com"]),
                r#"Hash=abcdef01;Subject="CN=alice.example.com";DNS=alice.example.com"#,
            ),
            (
                Some("spiffe://example.org/proxy"),
                peer(
                    "CN=a,O=Acme\\, Inc.",
                    &["spiffe://example.org/ns/x/sa/a", "https://b"],
                    &["a.example.com", "b.example.com"],
                ),
                r#"By=spiffe://example.org/proxy;Hash=abcdef01;Subject="CN=a,O=Acme\\, Inc.";URI=spiffe://example.org/ns/x/sa/a;DNS=a.example.com;DNS=b.example.com"#,
            ),
            (
                None,
                peer(r#"CN=say "hi""#, &["urn:x;y=z"], &[]),
                r#"Hash=abcdef01;Subject="CN=say \"hi\"";URI="urn:x;y=z""#,
            ),
        ];
        for (by, p, want) in cases {
            assert_eq!(element(*by, p), *want);
        }
    }

    #[test]
    fn rfc9440_headers() {
        assert_eq!(client_cert(b"\x01\x02\x03"), ":AQID:");
        assert_eq!(client_cert_chain(&[b"\x01", b"\x02"]), ":AQ==:, :Ag==:");
        assert_eq!(client_cert_chain::<&[u8]>(&[]), "");
    }
}
