//! Step 7, name constraints (OpenSSL's `check_name_constraints`, after `internal_verify`):
//! every certificate below a CA that carries nameConstraints must name only what the CA may
//! certify. The leaf is checked with its CN when it has no DNS SAN; a self-issued CA below is
//! skipped (RFC 5280 6.1.3). The matching rules are [`crate::constraints`]'.

use super::parsed::Cert;
use crate::constraints::{names_of, NameConstraints};
use crate::diagnosis::Diagnosis;

/// The constraints of each certificate of the path, parsed once.
pub(super) fn path_constraints(path: &[&Cert<'_>]) -> Vec<Option<NameConstraints>> {
    path.iter().map(|c| NameConstraints::of(&c.x)).collect()
}

pub(super) fn check_name_constraints(
    path: &[&Cert<'_>],
    constraints: &[Option<NameConstraints>],
) -> Result<(), Diagnosis> {
    // The top of the path first, as OpenSSL walks it: the refusal names the highest CA broken.
    for i in (0..path.len()).rev() {
        let c = path[i];
        if i > 0 && c.facts.self_issued {
            continue;
        }
        let names = names_of(&c.x, i == 0);
        for j in (i + 1..path.len()).rev() {
            let Some(nc) = &constraints[j] else {
                continue;
            };
            nc.check_all(&names, &path[j].facts.subject).map_err(|v| {
                Diagnosis::OutsideNameConstraints {
                    subject: c.facts.subject.clone(),
                    name: v.name,
                    ca: v.ca,
                    rule: v.rule,
                }
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_pki::*;
    use super::super::{verify, VerifyInput};
    use crate::diagnosis::{Diagnosis, Purpose};
    use rcgen::ExtendedKeyUsagePurpose as Eku;

    fn constrained(pki: &Pki, f: impl FnOnce(&mut crate::constraints::NameConstraints)) -> Made {
        let mut nc = crate::constraints::NameConstraints::default();
        f(&mut nc);
        let mut p = ca_params("Constrained Authority", Some(0));
        nc.stamp(&mut p).unwrap();
        signed(p, &pki.root)
    }

    fn leaf_with(cn: &str, sans: Vec<rcgen::SanType>, ca: &Made) -> Made {
        let mut p = leaf_params(cn, &[Eku::ServerAuth]);
        if !sans.is_empty() {
            p.subject_alt_names = sans;
        }
        signed(p, ca)
    }

    fn run(leaf: &Made, ca: &Made, pki: &Pki) -> Result<(), Diagnosis> {
        verify(&VerifyInput {
            chain: &[leaf.der.clone(), ca.der.clone()],
            trusted: std::slice::from_ref(&pki.root.der),
            purpose: Some(Purpose::Server),
            name: None,
            crls: &[],
            now: NOW,
        })
        .map(|_| ())
    }

    /// URI and email constraints, which webpki refuses wholesale, are decided by mutual's own
    /// check: inside passes, outside is refused with the rule and the CA.
    #[test]
    fn every_form_is_decided_with_the_rule() {
        use rcgen::SanType;
        let pki = Pki::new();
        let ca = constrained(&pki, |n| {
            n.permitted_dns_domains = vec!["example.com".into()];
            n.permitted_uri_domains = vec!["example.org".into()];
            n.permitted_email_addresses = vec!["example.com".into()];
            n.excluded_ip_ranges = vec!["10.9.0.0/16".parse().unwrap()];
        });
        let dns = |s: &str| SanType::DnsName(s.try_into().unwrap());
        let uri = |s: &str| SanType::URI(s.try_into().unwrap());
        let mail = |s: &str| SanType::Rfc822Name(s.try_into().unwrap());
        let ip = |s: &str| SanType::IpAddress(s.parse().unwrap());
        // (CN, SANs, the refused name and rule, or None when accepted)
        type Case<'a> = (&'a str, Vec<SanType>, Option<(&'a str, &'a str)>);
        let cases: Vec<Case> = vec![
            ("a.example.com", vec![], None),
            (
                "svc.example.com",
                vec![
                    dns("svc.example.com"),
                    uri("spiffe://example.org/ns/a/sa/b"),
                ],
                None,
            ),
            (
                "m.example.com",
                vec![dns("m.example.com"), mail("ops@example.com")],
                None,
            ),
            (
                "evil.org",
                vec![],
                Some(("DNS:evil.org", "permitted_dns_domains: example.com")),
            ),
            (
                "u.example.com",
                vec![dns("u.example.com"), uri("spiffe://evil.org/x")],
                Some((
                    "URI:spiffe://evil.org/x",
                    "permitted_uri_domains: example.org",
                )),
            ),
            (
                "i.example.com",
                vec![dns("i.example.com"), ip("10.9.3.4")],
                Some(("IP:10.9.3.4", "excluded_ip_ranges: 10.9.0.0/16")),
            ),
            // A CN that is not a host name is no DNS name; the SAN decides.
            ("Alice", vec![dns("alice.example.com")], None),
        ];
        for (cn, sans, want) in cases {
            let leaf = leaf_with(cn, sans, &ca);
            match (run(&leaf, &ca, &pki), want) {
                (Ok(()), None) => {}
                (Err(Diagnosis::OutsideNameConstraints { name, ca, rule, .. }), Some((n, r))) => {
                    assert_eq!((name.as_str(), rule.as_str()), (n, r), "{cn}");
                    assert_eq!(ca, "CN=Constrained Authority");
                }
                (got, _) => panic!("{cn}: {got:?}"),
            }
        }
    }
}
