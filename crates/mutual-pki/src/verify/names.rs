//! Step 4, the name (OpenSSL's `check_id`): a DNS name against DNS SANs, an IP address
//! against IP SANs; the CN is never consulted.

use std::net::IpAddr;

use super::parsed::Cert;
use crate::cert::CertFacts;
use crate::diagnosis::Diagnosis;

/// The names a certificate presents, as messages print them: `DNS:…`, `IP:…`.
pub(super) fn presented_names(f: &CertFacts) -> Vec<String> {
    f.dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(f.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect()
}

fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => {
            !rest.contains('*')
                && rest.contains('.')
                && name
                    .split_once('.')
                    .is_some_and(|(first, tail)| !first.is_empty() && tail == rest)
        }
        None => !pattern.contains('*') && !pattern.is_empty() && pattern == name,
    }
}

/// Whether the certificate names `name`: an IP address against IP SANs, a DNS name against DNS
/// SANs (wildcard only as the whole leftmost label). The CN is never consulted.
pub fn names_host(f: &CertFacts, name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return f.ip_addresses.contains(&ip);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.is_empty() && f.dns_names.iter().any(|p| dns_matches(p, &name))
}

pub(super) fn check_name(leaf: &Cert<'_>, name: &str) -> Result<(), Diagnosis> {
    if names_host(&leaf.facts, name) {
        return Ok(());
    }
    Err(Diagnosis::NameMismatch {
        subject: leaf.facts.subject.clone(),
        name: name.to_string(),
        presented: presented_names(&leaf.facts),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;
    use super::super::test_pki::Pki;
    use super::{dns_matches, names_host};
    use crate::cert::facts;
    use crate::diagnosis::Purpose;

    /// DNS names and IP addresses against the SANs.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        let server = Some(Purpose::Server);
        vec![
            case("server name", vec![a(&s.www)], vec![a(&s.root)])
                .purpose(server)
                .host("www.example.com"),
            case("server name, other SAN", vec![a(&s.www)], vec![a(&s.root)])
                .purpose(server)
                .host("LOCALHOST"),
            case("server IP", vec![a(&s.www)], vec![a(&s.root)])
                .purpose(server)
                .host("127.0.0.1"),
            case("wildcard", vec![a(&s.wildcard)], vec![a(&s.root)])
                .purpose(server)
                .host("api.example.com"),
            case("name mismatch", vec![a(&s.www)], vec![a(&s.root)])
                .purpose(server)
                .host("evil.example.com")
                .fails("name_mismatch", "CN=www.example.com"),
            case("IP mismatch", vec![a(&s.www)], vec![a(&s.root)])
                .purpose(server)
                .host("10.0.0.1")
                .fails("name_mismatch", "CN=www.example.com"),
            case(
                "wildcard covers one label only",
                vec![a(&s.wildcard)],
                vec![a(&s.root)],
            )
            .purpose(server)
            .host("a.b.example.com")
            .fails("name_mismatch", "CN=wild.example.com"),
            case(
                "wildcard does not cover the bare domain",
                vec![a(&s.wildcard)],
                vec![a(&s.root)],
            )
            .purpose(server)
            .host("example.com")
            .fails("name_mismatch", "CN=wild.example.com"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }

    #[test]
    fn verify_names() {
        let pki = Pki::new();
        let www = facts(&pki.www.der).unwrap();
        for (name, ok) in [
            ("www.example.com", true),
            ("WWW.Example.COM.", true),
            ("localhost", true),
            ("127.0.0.1", true),
            ("[127.0.0.1]", true),
            ("::1", false),
            ("example.com", false),
            ("", false),
            ("www.example.com.evil", false),
        ] {
            assert_eq!(names_host(&www, name), ok, "{name}");
        }
        for (pattern, name, ok) in [
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", ".example.com", false),
            ("*.com", "example.com", false),
            ("a*.example.com", "ab.example.com", false),
            ("*", "localhost", false),
        ] {
            assert_eq!(dns_matches(pattern, name), ok, "{pattern} {name}");
        }
    }
}
