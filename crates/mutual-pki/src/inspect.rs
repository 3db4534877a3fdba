//! A readable report of a certificate or a chain: what `mutual inspect` prints.
//!
//! [`describe`] reads each certificate's facts and computes, against the time passed in, how
//! long it is still valid; [`CertReport`]'s `Display` is the human form, its serde form the
//! `--json` one.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{facts, CertFacts};
use crate::diagnosis::{format_time, span};
use crate::PkiError;

/// One certificate of a chain, with its validity computed at a given time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertReport {
    /// Position in the chain, from 1 (the leaf).
    pub position: usize,
    /// Number of certificates in the chain.
    pub count: usize,
    /// What the certificate says.
    #[serde(flatten)]
    pub facts: CertFacts,
    /// Time left until notAfter (`29d 23h`), or `None` when expired.
    pub time_left: Option<String>,
    /// Seconds until notAfter; negative once expired.
    pub seconds_left: i64,
    /// notAfter is in the past.
    pub expired: bool,
    /// notBefore is in the future.
    pub not_yet_valid: bool,
    /// The time the report was made for.
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// Reports on each certificate of a chain (DER, leaf first), at `now`.
pub fn describe(chain: &[Vec<u8>], now: OffsetDateTime) -> Result<Vec<CertReport>, PkiError> {
    if chain.is_empty() {
        return Err(PkiError::NothingToDescribe);
    }
    let count = chain.len();
    chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            let facts = facts(der).map_err(|e| PkiError::BundleCertificate {
                index: i + 1,
                count,
                detail: e.to_string(),
            })?;
            let expired = facts.not_after < now;
            Ok(CertReport {
                position: i + 1,
                count,
                time_left: (!expired).then(|| span(now, facts.not_after)),
                seconds_left: (facts.not_after - now).whole_seconds(),
                expired,
                not_yet_valid: facts.not_before > now,
                facts,
                now,
            })
        })
        .collect()
}

/// The reports of a chain, one block each, separated by a blank line.
pub fn render(reports: &[CertReport]) -> String {
    reports
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n\n")
}

impl CertReport {
    /// The name a human calls the certificate by: its CN, else its first DNS name, else its
    /// subject.
    pub fn name(&self) -> &str {
        let f = &self.facts;
        f.common_name
            .as_deref()
            .or(f.dns_names.first().map(String::as_str))
            .filter(|n| !n.is_empty())
            .unwrap_or(if f.subject.is_empty() {
                "(no name)"
            } else {
                &f.subject
            })
    }

    fn sans(&self) -> String {
        let f = &self.facts;
        let all: Vec<String> = f
            .dns_names
            .iter()
            .map(|d| format!("DNS:{d}"))
            .chain(f.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
            .chain(f.uris.iter().map(|u| format!("URI:{u}")))
            .chain(f.emails.iter().map(|e| format!("email:{e}")))
            .collect();
        if all.is_empty() {
            "none".into()
        } else {
            all.join(", ")
        }
    }

    fn validity(&self) -> String {
        let f = &self.facts;
        let range = format!(
            "{} → {}",
            format_time(f.not_before),
            format_time(f.not_after)
        );
        if self.expired {
            format!("{range} (EXPIRED {} ago)", span(f.not_after, self.now))
        } else if self.not_yet_valid {
            format!(
                "{range} (NOT YET VALID: starts in {})",
                span(self.now, f.not_before)
            )
        } else {
            format!("{range} ({} left)", span(self.now, f.not_after))
        }
    }

    fn usage(&self) -> String {
        let f = &self.facts;
        let mut parts = Vec::new();
        if !f.key_usage.is_empty() {
            parts.push(f.key_usage.join(", "));
        }
        if f.has_extended_key_usage {
            parts.push(if f.extended_key_usage.is_empty() {
                "no extended usage".to_string()
            } else {
                f.extended_key_usage.join(", ")
            });
        }
        if parts.is_empty() {
            "unrestricted (no keyUsage, no extendedKeyUsage)".into()
        } else {
            parts.join("; ")
        }
    }

    fn ca(&self) -> String {
        match (self.facts.is_ca, self.facts.path_len) {
            (false, _) => "no".into(),
            (true, None) => "yes".into(),
            (true, Some(n)) => format!("yes, pathlen {n}"),
        }
    }
}

impl fmt::Display for CertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let facts = &self.facts;
        write!(
            f,
            "certificate {} of {}: {}",
            self.position,
            self.count,
            self.name()
        )?;
        let mut line = |label: &str, value: &str| write!(f, "\n  {label:<13}{value}");
        line("subject", &facts.subject)?;
        line("issuer", &facts.issuer)?;
        line("SANs", &self.sans())?;
        line("valid", &self.validity())?;
        line("key", &facts.key.to_string())?;
        line("usage", &self.usage())?;
        line("CA", &self.ca())?;
        line("serial", &facts.serial.to_string())?;
        line("sha256", &facts.sha256_fingerprint)?;
        if !facts.crl_urls.is_empty() {
            line("crl", &facts.crl_urls.join(", "))?;
        }
        if !facts.issuing_urls.is_empty() {
            line("issuing", &facts.issuing_urls.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_pki::{leaf_params, signed, Pki, NOW};
    use rcgen::{
        CrlDistributionPoint, CustomExtension, ExtendedKeyUsagePurpose, SanType, SerialNumber,
    };
    use time::Duration;

    #[test]
    fn inspect_report_is_pinned() {
        let pki = Pki::new();
        let mut p = leaf_params(
            "alice.example.com",
            &[
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        );
        p.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        p.subject_alt_names.push(SanType::URI(
            "spiffe://example.org/ns/default/sa/alice"
                .try_into()
                .unwrap(),
        ));
        p.serial_number = Some(SerialNumber::from(vec![0x3a, 0x9f, 0x01]));
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://127.0.0.1:8200/v1/pki/crl".into()],
        }];
        // AIA caIssuers: SEQUENCE { SEQUENCE { 1.3.6.1.5.5.7.48.2, [6] URI } }
        let uri = b"http://127.0.0.1:8200/v1/pki/ca";
        let mut aia = vec![
            0x30, 0, 0x30, 0, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02,
        ];
        aia.push(0x86);
        aia.push(uri.len() as u8);
        aia.extend_from_slice(uri);
        aia[3] = (aia.len() - 4) as u8;
        aia[1] = (aia.len() - 2) as u8;
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            aia,
        )];
        let leaf = signed(p, &pki.root);

        let chain = vec![leaf.der.clone(), pki.root.der.clone()];
        let reports = describe(&chain, NOW - Duration::minutes(30)).unwrap();
        let sha = &reports[0].facts.sha256_fingerprint;
        let want = format!(
            "certificate 1 of 2: alice.example.com
  subject      CN=alice.example.com
  issuer       CN=Local Root CA
  SANs         DNS:alice.example.com, IP:127.0.0.1, URI:spiffe://example.org/ns/default/sa/alice
  valid        2026-12-02 00:00:00 UTC → 2027-01-31 00:00:00 UTC (30d left)
  key          EC P-256
  usage        digitalSignature; serverAuth, clientAuth
  CA           no
  serial       3a:9f:01
  sha256       {sha}
  crl          http://127.0.0.1:8200/v1/pki/crl
  issuing      http://127.0.0.1:8200/v1/pki/ca"
        );
        assert_eq!(reports[0].to_string(), want);
        assert!(reports[1]
            .to_string()
            .starts_with("certificate 2 of 2: Local Root CA\n  subject      CN=Local Root CA\n  issuer       CN=Local Root CA\n  SANs         none\n"));
        assert!(reports[1]
            .to_string()
            .contains("\n  usage        keyCertSign, cRLSign\n  CA           yes\n"));
        assert!(!reports[1].to_string().contains("  crl "));
        assert_eq!(
            render(&reports),
            format!("{}\n\n{}", reports[0], reports[1])
        );

        let json = serde_json::to_value(&reports[0]).unwrap();
        assert_eq!(json["subject"], "CN=alice.example.com");
        assert_eq!(json["serial"], "3a:9f:01");
        assert_eq!(json["expired"], false);
        assert_eq!(json["time_left"], "30d");
        assert_eq!(json["position"], 1);
    }

    #[test]
    fn inspect_validity_states() {
        let pki = Pki::new();
        let der = vec![pki.alice.der.clone()];
        let line = |now| {
            describe(&der, now).unwrap()[0]
                .to_string()
                .lines()
                .find(|l| l.starts_with("  valid"))
                .unwrap()
                .to_string()
        };
        let range = "2026-12-02 00:00:00 UTC → 2027-01-31 00:00:00 UTC";
        let cases = [
            (NOW, format!("  valid        {range} (30d left)")),
            (
                NOW + Duration::days(33),
                format!("  valid        {range} (EXPIRED 3d ago)"),
            ),
            (
                NOW - Duration::days(30) - Duration::hours(2),
                format!("  valid        {range} (NOT YET VALID: starts in 2h)"),
            ),
        ];
        for (now, want) in cases {
            assert_eq!(line(now), want);
        }
        let expired = &describe(&der, NOW + Duration::days(33)).unwrap()[0];
        assert!(expired.expired && expired.time_left.is_none());
        assert_eq!(expired.seconds_left, -3 * 86_400);
        let ca = &describe(std::slice::from_ref(&pki.alice_int.der), NOW).unwrap()[0];
        assert!(ca.to_string().contains("\n  CA           yes, pathlen 0\n"));
    }

    #[test]
    fn inspect_refuses_garbage() {
        assert!(describe(&[], NOW).is_err());
        let err = describe(&[Pki::new().root.der, b"junk".to_vec()], NOW).unwrap_err();
        assert!(err.to_string().starts_with("certificate 2 of 2: "), "{err}");
    }
}
