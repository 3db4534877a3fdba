//! Identifiers (RFC 8555 §7.1.4, RFC 8738 for IP addresses), the challenges each may use, key
//! authorizations and the CSR's names against the order's.

use std::net::IpAddr;

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::{
    b64::b64url,
    problem::{Problem, ProblemType},
};

/// An order's identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
pub struct Identifier {
    /// `dns` or `ip`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The name or address.
    pub value: String,
}

fn label_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Checks an identifier's syntax: a DNS name of lowercase-insensitive LDH labels (a leading
/// `*.` allowed), or an IP address in its canonical form.
pub fn check_identifier(id: &Identifier) -> Result<(), Problem> {
    let rejected = |why: &str| {
        Problem::new(
            ProblemType::RejectedIdentifier,
            format!("identifier \"{}\" {why}", id.value),
        )
    };
    match id.kind.as_str() {
        "dns" => {
            let name = id.value.strip_prefix("*.").unwrap_or(&id.value);
            if name.len() > 253 || !name.split('.').all(label_ok) {
                return Err(rejected("is not a valid DNS name"));
            }
            if name.parse::<IpAddr>().is_ok() {
                return Err(rejected(
                    "is an IP address; use an identifier of type \"ip\"",
                ));
            }
            Ok(())
        }
        "ip" => match id.value.parse::<IpAddr>() {
            Ok(ip) if ip.to_string() == id.value => Ok(()),
            _ => Err(rejected("is not an IP address in canonical form")),
        },
        other => Err(Problem::new(
            ProblemType::UnsupportedIdentifier,
            format!("identifier type \"{other}\" is not supported (dns, ip)"),
        )),
    }
}

/// The challenge types offered for an identifier: a wildcard only by DNS, an IP address not by
/// DNS.
pub fn challenge_types(id: &Identifier) -> &'static [&'static str] {
    if id.kind == "ip" {
        &["http-01", "tls-alpn-01"]
    } else if id.value.starts_with("*.") {
        &["dns-01"]
    } else {
        &["http-01", "dns-01", "tls-alpn-01"]
    }
}

/// The key authorization of a challenge token for an account key's thumbprint.
pub fn key_authorization(token: &str, thumbprint: &str) -> String {
    format!("{token}.{thumbprint}")
}

/// The TXT record value dns-01 expects: base64url(SHA-256(key authorization)).
pub fn dns01_txt(key_authorization: &str) -> String {
    b64url(digest::digest(&digest::SHA256, key_authorization.as_bytes()).as_ref())
}

/// The acmeIdentifier extension value tls-alpn-01 expects: SHA-256(key authorization).
pub fn tls_alpn01_digest(key_authorization: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, key_authorization.as_bytes())
        .as_ref()
        .to_vec()
}

/// Checks that a CSR asks for exactly the order's identifiers: its DNS names and IP
/// addresses, and its CN (when present) among them.
pub fn check_csr_names(
    order: &[Identifier],
    common_name: &str,
    dns: &[String],
    ips: &[IpAddr],
) -> Result<(), Problem> {
    let mut asked: Vec<Identifier> = dns
        .iter()
        .map(|d| Identifier {
            kind: "dns".into(),
            value: d.to_ascii_lowercase(),
        })
        .chain(ips.iter().map(|ip| Identifier {
            kind: "ip".into(),
            value: ip.to_string(),
        }))
        .collect();
    if !common_name.is_empty() {
        let cn = match common_name.parse::<IpAddr>() {
            Ok(ip) => Identifier {
                kind: "ip".into(),
                value: ip.to_string(),
            },
            Err(_) => Identifier {
                kind: "dns".into(),
                value: common_name.to_ascii_lowercase(),
            },
        };
        if !asked.contains(&cn) {
            asked.push(cn);
        }
    }
    asked.sort();
    asked.dedup();
    let mut want: Vec<Identifier> = order
        .iter()
        .map(|i| Identifier {
            kind: i.kind.clone(),
            value: i.value.to_ascii_lowercase(),
        })
        .collect();
    want.sort();
    want.dedup();
    if asked == want {
        return Ok(());
    }
    let show = |v: &[Identifier]| {
        v.iter()
            .map(|i| i.value.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Problem::new(
        ProblemType::BadCsr,
        format!(
            "the CSR asks for [{}] but the order is for [{}]",
            show(&asked),
            show(&want)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: &str, value: &str) -> Identifier {
        Identifier {
            kind: kind.into(),
            value: value.into(),
        }
    }

    #[test]
    fn identifiers_checked() {
        for (kind, value, err) in [
            ("dns", "www.example.com", None),
            ("dns", "*.example.com", None),
            (
                "dns",
                "a..example.com",
                Some("identifier \"a..example.com\" is not a valid DNS name"),
            ),
            (
                "dns",
                "-a.example.com",
                Some("identifier \"-a.example.com\" is not a valid DNS name"),
            ),
            (
                "dns",
                "a_b.example.com",
                Some("identifier \"a_b.example.com\" is not a valid DNS name"),
            ),
            (
                "dns",
                "127.0.0.1",
                Some("identifier \"127.0.0.1\" is an IP address; use an identifier of type \"ip\""),
            ),
            ("ip", "127.0.0.1", None),
            ("ip", "::1", None),
            (
                "ip",
                "0:0::1",
                Some("identifier \"0:0::1\" is not an IP address in canonical form"),
            ),
            (
                "email",
                "a@b",
                Some("identifier type \"email\" is not supported (dns, ip)"),
            ),
        ] {
            let got = check_identifier(&id(kind, value)).err().map(|p| p.detail);
            assert_eq!(got.as_deref(), err, "{kind} {value}");
        }
    }

    #[test]
    fn challenge_types_and_key_authorizations() {
        assert_eq!(challenge_types(&id("dns", "*.a.b")), ["dns-01"]);
        assert_eq!(
            challenge_types(&id("ip", "::1")),
            ["http-01", "tls-alpn-01"]
        );
        assert_eq!(
            challenge_types(&id("dns", "a.b")),
            ["http-01", "dns-01", "tls-alpn-01"]
        );
        // Checked against Python's hashlib and base64.urlsafe_b64encode.
        assert_eq!(
            dns01_txt("a.b"),
            "LnM23I66h-9HLfVow1SCq_JXXcPl6sDFxiuP-urCyTQ"
        );
        assert_eq!(tls_alpn01_digest("a.b").len(), 32);
    }

    #[test]
    fn csr_names_match_the_order() {
        let order = [id("dns", "a.example.com"), id("dns", "b.example.com")];
        let ok = check_csr_names(
            &order,
            "a.example.com",
            &["A.example.com".into(), "b.example.com".into()],
            &[],
        );
        assert!(ok.is_ok());
        let no_cn = check_csr_names(
            &order,
            "",
            &["a.example.com".into(), "b.example.com".into()],
            &[],
        );
        assert!(no_cn.is_ok());
        for (cn, dns, detail) in [
            ("", vec!["a.example.com"], "the CSR asks for [a.example.com] but the order is for [a.example.com, b.example.com]"),
            ("evil.com", vec!["a.example.com", "b.example.com"], "the CSR asks for [a.example.com, b.example.com, evil.com] but the order is for [a.example.com, b.example.com]"),
        ] {
            let dns: Vec<String> = dns.into_iter().map(String::from).collect();
            let p = check_csr_names(&order, cn, &dns, &[]).unwrap_err();
            assert_eq!((p.kind(), p.detail.as_str()), (ProblemType::BadCsr, detail));
        }
        let ip_order = [id("ip", "127.0.0.1")];
        assert!(check_csr_names(&ip_order, "", &[], &["127.0.0.1".parse().unwrap()]).is_ok());
    }
}
