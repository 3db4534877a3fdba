//! Step 8, the second opinion: rustls-webpki verifies the same path, and its refusal is
//! mapped by [`from_webpki`](super::from_webpki).

use std::time::Duration;

use ::time::OffsetDateTime;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::from_webpki::from_webpki;
use super::parsed::Cert;
use super::VerifyInput;
use crate::diagnosis::{Diagnosis, Purpose};

/// The EKU rule given to webpki: the purpose's, or none at all.
enum Usage {
    Tls(webpki::KeyUsage),
    Any,
}

impl webpki::ExtendedKeyUsageValidator for Usage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self {
            Usage::Tls(usage) => usage.validate(iter),
            Usage::Any => {
                for id in iter {
                    id?;
                }
                Ok(())
            }
        }
    }
}

fn unix_time(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap_or(0),
    ))
}

/// `lenient_constraints`: webpki's name-constraint refusal is ignored, because the path holds a
/// URI or email constraint that webpki does not evaluate and mutual's own step already did.
pub(super) fn webpki_gate(
    input: &VerifyInput<'_>,
    path: &[&Cert<'_>],
    lenient_constraints: bool,
) -> Result<(), Diagnosis> {
    let leaf = path[0];
    if path.len() == 1 || (input.purpose.is_none() && leaf.facts.is_ca) {
        return Ok(());
    }
    let refused = |e: webpki::Error| from_webpki(&e, input);
    let anchor_der = CertificateDer::from(path[path.len() - 1].der);
    let anchors = [webpki::anchor_from_trusted_cert(&anchor_der).map_err(refused)?];
    let intermediates: Vec<CertificateDer<'_>> = path[1..path.len() - 1]
        .iter()
        .map(|c| CertificateDer::from(c.der))
        .collect();
    let leaf_der = CertificateDer::from(leaf.der);
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der).map_err(refused)?;
    let crls: Vec<webpki::CertRevocationList<'static>> = input
        .crls
        .iter()
        .map(|der| webpki::OwnedCertRevocationList::from_der(der).map(Into::into))
        .collect::<Result<_, _>>()
        .map_err(refused)?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let revocation = match webpki::RevocationOptionsBuilder::new(&crl_refs) {
        Ok(builder) => Some(
            builder
                .with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Deny)
                .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
                .build(),
        ),
        Err(_) => None, // no CRL given
    };
    let usage = match input.purpose {
        Some(Purpose::Server) => Usage::Tls(webpki::KeyUsage::server_auth()),
        Some(Purpose::Client) => Usage::Tls(webpki::KeyUsage::client_auth()),
        None => Usage::Any,
    };
    match end_entity.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &intermediates,
        unix_time(input.now),
        usage,
        revocation,
        None,
    ) {
        Err(webpki::Error::NameConstraintViolation) if lenient_constraints => {}
        other => {
            other.map_err(refused)?;
        }
    }
    if let Some(name) = input.name {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare).map_err(|_| Diagnosis::Other {
            detail: format!("\"{name}\" is neither a valid DNS name nor an IP address"),
        })?;
        end_entity
            .verify_is_valid_for_subject_name(&server_name)
            .map_err(refused)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_pki::*;
    use super::super::{verify, VerifyInput};
    use crate::diagnosis::Purpose;
    use rcgen::ExtendedKeyUsagePurpose as Eku;

    #[test]
    fn verify_webpki_is_a_second_gate() {
        // Name constraints are enforced by webpki only: an intermediate limited to example.com
        // that issued for evil.org passes our own checks and is refused by the gate.
        let pki = Pki::new();
        let mut p = ca_params("Constrained Authority", Some(0));
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
        let constrained = signed(p, &pki.root);
        let evil = signed(leaf_params("evil.org", &[Eku::ServerAuth]), &constrained);
        let fine = signed(
            leaf_params("ok.example.com", &[Eku::ServerAuth]),
            &constrained,
        );
        let run = |leaf: &Made| {
            verify(&VerifyInput {
                chain: std::slice::from_ref(&leaf.der),
                trusted: &[constrained.der.clone(), pki.root.der.clone()],
                purpose: Some(Purpose::Server),
                name: None,
                crls: &[],
                now: NOW,
            })
        };
        assert!(run(&fine).is_ok());
        assert_eq!(run(&evil).unwrap_err().code(), "name_constraint_violation");
    }
}
