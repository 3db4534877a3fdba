//! The inputs, parsed once: certificates with their facts, CRLs with their issuer, and the
//! relations between certificates that path building and the checks ask about.

use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::cert::{dn_string, facts_of, CertFacts};
use crate::diagnosis::Diagnosis;

/// A certificate of the chain or the CA file, parsed.
pub(super) struct Cert<'a> {
    pub(super) der: &'a [u8],
    pub(super) x: X509Certificate<'a>,
    pub(super) facts: CertFacts,
}

/// A CRL, parsed, with its issuer as messages print it.
pub(super) struct Crl<'a> {
    pub(super) x: CertificateRevocationList<'a>,
    pub(super) issuer: String,
}

pub(super) fn parse_certs<'a>(ders: &'a [Vec<u8>], what: &str) -> Result<Vec<Cert<'a>>, Diagnosis> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            match X509Certificate::from_der(der) {
                Ok(([], x)) => Ok(Cert {
                    der,
                    facts: facts_of(&x, der),
                    x,
                }),
                Ok(_) => Err("trailing bytes after the certificate".to_string()),
                Err(e) => Err(e.to_string()),
            }
            .map_err(|e| Diagnosis::CertificateUnparsable {
                detail: format!("certificate {} of {} in {what}: {e}", i + 1, ders.len()),
            })
        })
        .collect()
}

pub(super) fn parse_crls(ders: &[Vec<u8>]) -> Result<Vec<Crl<'_>>, Diagnosis> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| match CertificateRevocationList::from_der(der) {
            Ok((_, x)) => Ok(Crl {
                issuer: dn_string(x.issuer()),
                x,
            }),
            Err(e) => Err(Diagnosis::CertificateUnparsable {
                detail: format!("CRL {} of {}: {e}", i + 1, ders.len()),
            }),
        })
        .collect()
}

pub(super) fn names_equal(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || dn_string(a).eq_ignore_ascii_case(&dn_string(b))
}

/// The authorityKeyIdentifier of `subject` names the key of `issuer`, or one of them is absent.
pub(super) fn key_ids_agree(issuer: &Cert<'_>, subject: &Cert<'_>) -> bool {
    match (
        &subject.facts.authority_key_id,
        &issuer.facts.subject_key_id,
    ) {
        (Some(akid), Some(skid)) => akid == skid,
        _ => true,
    }
}

/// The issuer's key type can have made the subject's signature (OpenSSL's
/// `check_sig_alg_match`).
fn key_fits_signature(issuer: &Cert<'_>, subject: &Cert<'_>) -> bool {
    let sig = subject.x.signature_algorithm.algorithm.to_id_string();
    let key = issuer.x.public_key().algorithm.algorithm.to_id_string();
    let rsa_key = key == "1.2.840.113549.1.1.1" || key == "1.2.840.113549.1.1.10";
    if sig.starts_with("1.2.840.113549.1.1.") || sig.starts_with("1.3.14.3.2.") {
        rsa_key
    } else if sig.starts_with("1.2.840.10045.4.") {
        key == "1.2.840.10045.2.1"
    } else if sig == "1.3.101.112" {
        key == "1.3.101.112"
    } else {
        true
    }
}

pub(super) fn likely_issued(issuer: &Cert<'_>, subject: &Cert<'_>) -> bool {
    names_equal(issuer.x.subject(), subject.x.issuer())
        && key_ids_agree(issuer, subject)
        && key_fits_signature(issuer, subject)
}

pub(super) fn has_key_usage(c: &Cert<'_>) -> bool {
    matches!(c.x.key_usage(), Ok(Some(_)))
}

pub(super) fn key_usage_allows(c: &Cert<'_>, name: &str) -> bool {
    !has_key_usage(c) || c.facts.key_usage.iter().any(|k| k == name)
}

/// OpenSSL's EXFLAG_SS: self-issued, key identifiers agree, and keyCertSign when keyUsage is
/// present.
pub(super) fn self_signed(c: &Cert<'_>) -> bool {
    c.facts.self_issued && key_ids_agree(c, c) && key_usage_allows(c, "keyCertSign")
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;

    /// Bytes that are no certificate or CRL.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        vec![
            case(
                "garbage",
                vec![b"not a certificate".to_vec()],
                vec![a(&s.root)],
            )
            .fails("certificate_unparsable", ""),
            case("garbage CRL", vec![a(&s.alice)], vec![a(&s.alice_int)])
                .crls(vec![b"junk".to_vec()])
                .fails("certificate_unparsable", ""),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }
}
