//! Step 5, revocation (`-crl_check_all`): every certificate below the anchor covered by a
//! current CRL of its issuer, signed by its key, and not listed in it.

use ::time::OffsetDateTime;
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use super::parsed::{key_usage_allows, names_equal, Cert, Crl};
use crate::diagnosis::{CrlProblem, Diagnosis};
use crate::serial::Serial;

fn crl_akid(crl: &CertificateRevocationList<'_>) -> Option<String> {
    crl.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| hex::encode(k.0))
            }
            _ => None,
        })
}

/// Whether `crl` is a full CRL of `issuer` whose scope covers `cert`.
fn crl_covers(crl: &Crl<'_>, cert: &Cert<'_>, issuer: &Cert<'_>) -> bool {
    if !names_equal(crl.x.issuer(), cert.x.issuer())
        || !names_equal(crl.x.issuer(), issuer.x.subject())
    {
        return false;
    }
    if let (Some(akid), Some(skid)) = (crl_akid(&crl.x), &issuer.facts.subject_key_id) {
        if &akid != skid {
            return false;
        }
    }
    for ext in crl.x.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::IssuingDistributionPoint(idp) => {
                let out_of_scope = idp.only_contains_attribute_certs
                    || idp.indirect_crl
                    || idp.only_some_reasons.is_some()
                    || (idp.only_contains_user_certs && cert.facts.is_ca)
                    || (idp.only_contains_ca_certs && !cert.facts.is_ca);
                if out_of_scope {
                    return false;
                }
                if let Some(DistributionPointName::FullName(names)) = &idp.distribution_point {
                    let uris: Vec<&str> = names
                        .iter()
                        .filter_map(|n| match n {
                            GeneralName::URI(u) => Some(*u),
                            _ => None,
                        })
                        .collect();
                    if !uris.is_empty()
                        && !cert
                            .facts
                            .crl_urls
                            .iter()
                            .any(|u| uris.contains(&u.as_str()))
                    {
                        return false;
                    }
                }
            }
            // a delta CRL
            _ if ext.oid.to_id_string() == "2.5.29.27" => return false,
            _ => {}
        }
    }
    true
}

fn crl_current(crl: &Crl<'_>, now: OffsetDateTime) -> bool {
    crl.x.last_update().to_datetime() <= now
        && crl.x.next_update().is_none_or(|n| n.to_datetime() >= now)
}

pub(super) fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}

/// Every certificate below the anchor needs a CRL of its issuer that is usable and does not
/// list it.
pub(super) fn check_revocation(
    path: &[&Cert<'_>],
    crls: &[Crl<'_>],
    now: OffsetDateTime,
) -> Result<(), Diagnosis> {
    for pair in path.windows(2) {
        let (cert, issuer) = (pair[0], pair[1]);
        let crl = best_crl(crls, cert, issuer, now).ok_or_else(|| Diagnosis::CrlMissing {
            subject: cert.facts.subject.clone(),
            issuer: cert.facts.issuer.clone(),
        })?;
        check_crl(crl, issuer, now)?;
        check_not_listed(crl, cert)?;
    }
    Ok(())
}

/// Among the CRLs of `issuer` that cover `cert`, a current one is preferred, then the newest
/// (OpenSSL's CRL scoring, simplified).
fn best_crl<'c, 'a>(
    crls: &'c [Crl<'a>],
    cert: &Cert<'_>,
    issuer: &Cert<'_>,
    now: OffsetDateTime,
) -> Option<&'c Crl<'a>> {
    crls.iter()
        .filter(|c| crl_covers(c, cert, issuer))
        .max_by_key(|c| (crl_current(c, now), c.x.last_update().to_datetime()))
}

/// The issuer may sign CRLs, the CRL is current and its signature verifies.
fn check_crl(crl: &Crl<'_>, issuer: &Cert<'_>, now: OffsetDateTime) -> Result<(), Diagnosis> {
    let invalid = |problem| Diagnosis::CrlInvalid {
        issuer: crl.issuer.clone(),
        problem,
    };
    if !key_usage_allows(issuer, "cRLSign") {
        return Err(invalid(CrlProblem::IssuerMayNotSignCrls));
    }
    if crl.x.last_update().to_datetime() > now {
        return Err(invalid(CrlProblem::NotYetValid));
    }
    if let Some(next) = crl.x.next_update() {
        if next.to_datetime() < now {
            return Err(Diagnosis::CrlStale {
                issuer: crl.issuer.clone(),
                next_update: next.to_datetime(),
                now,
            });
        }
    }
    // An algorithm x509-parser cannot check is left to the webpki gate.
    if let Err(X509Error::SignatureVerificationError) =
        crl.x.verify_signature(issuer.x.public_key())
    {
        return Err(invalid(CrlProblem::BadSignature));
    }
    Ok(())
}

/// The CRL does not list the certificate's serial (or lists it as removeFromCRL).
fn check_not_listed(crl: &Crl<'_>, cert: &Cert<'_>) -> Result<(), Diagnosis> {
    let entry = crl
        .x
        .iter_revoked_certificates()
        .find(|r| Serial::from_bytes(r.raw_serial()) == cert.facts.serial);
    let Some(entry) = entry else {
        return Ok(());
    };
    let reason = entry.reason_code().map(|(_, code)| code.0);
    if reason == Some(8) {
        return Ok(());
    }
    Err(Diagnosis::Revoked {
        subject: cert.facts.subject.clone(),
        serial: cert.facts.serial.clone(),
        revoked_at: Some(entry.revocation_date.to_datetime()),
        reason: reason.map(|r| reason_name(r).to_string()),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;
    use super::super::test_pki::*;
    use super::super::{verify, VerifyInput};
    use crate::diagnosis::{Diagnosis, Purpose};
    use ::time::Duration;
    use rcgen::RevocationReason;

    /// Coverage, freshness, signature and entries of CRLs.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        vec![
            case(
                "CRLs for every certificate",
                vec![a(&s.alice), a(&s.alice_int)],
                vec![a(&s.root)],
            )
            .crls(vec![s.alice_crl.clone(), s.root_crl.clone()]),
            case(
                "CRL with distribution point",
                vec![a(&s.with_dp)],
                vec![a(&s.alice_int)],
            )
            .crls(vec![s.alice_crl.clone()]),
            case(
                "anchor's own revocation is not checked",
                vec![a(&s.alice)],
                vec![a(&s.alice_int)],
            )
            .crls(vec![s.alice_crl.clone()]),
            case("revoked", vec![a(&s.alice)], vec![a(&s.alice_int)])
                .crls(vec![s.alice_revoked.clone()])
                .fails("revoked", "CN=alice.example.com"),
            case(
                "revoked intermediate",
                vec![a(&s.alice), a(&s.alice_int)],
                vec![a(&s.root)],
            )
            .crls(vec![s.alice_crl.clone(), s.alice_int_revoked.clone()])
            .fails("revoked", "CN=Alice Intermediate Authority"),
            case(
                "CRL of the root only",
                vec![a(&s.alice), a(&s.alice_int)],
                vec![a(&s.root)],
            )
            .crls(vec![s.root_crl.clone()])
            .fails("crl_missing", "CN=Alice Intermediate Authority"),
            case("another CA's CRL", vec![a(&s.alice)], vec![a(&s.alice_int)])
                .crls(vec![s.bob_crl_for_alice.clone()])
                .fails("crl_missing", "CN=Alice Intermediate Authority"),
            case("stale CRL", vec![a(&s.alice)], vec![a(&s.alice_int)])
                .crls(vec![s.alice_stale.clone()])
                .fails("crl_stale", "CN=Alice Intermediate Authority"),
            case(
                "CRL signed by another key",
                vec![a(&s.alice)],
                vec![a(&s.alice_int)],
            )
            .crls(vec![s.forged_crl.clone()])
            .fails("crl_invalid", "does not verify"),
            case(
                "CRL of a CA without cRLSign",
                vec![a(&s.under_no_crl_sign)],
                vec![a(&s.no_crl_sign)],
            )
            .crls(vec![s.no_crl_sign_crl.clone()])
            .fails("crl_invalid", "lacks cRLSign"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }

    #[test]
    fn verify_revocation_says_when_and_why() {
        let pki = Pki::new();
        let crls = vec![crl(
            &pki.alice_int,
            &[(&pki.alice, Some(RevocationReason::KeyCompromise))],
            NOW - Duration::days(1),
            NOW + Duration::days(7),
        )];
        let d = verify(&VerifyInput {
            chain: std::slice::from_ref(&pki.alice.der),
            trusted: std::slice::from_ref(&pki.alice_int.der),
            purpose: Some(Purpose::Client),
            name: None,
            crls: &crls,
            now: NOW,
        })
        .unwrap_err();
        match &d {
            Diagnosis::Revoked {
                revoked_at, reason, ..
            } => {
                assert_eq!(*revoked_at, Some(NOW - Duration::days(2)));
                assert_eq!(reason.as_deref(), Some("keyCompromise"));
            }
            other => panic!("{other}"),
        }
        assert!(d
            .to_string()
            .ends_with("was revoked at 2026-12-30 00:00:00 UTC (keyCompromise); issue a new one"));
    }
}
