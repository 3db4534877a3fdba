//! Certificate revocation lists: v2, with CRL number, AKI, reason codes, thisUpdate and
//! nextUpdate.

use std::{fmt, str::FromStr, time::Duration};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ca::SigningCa, serial::Serial, PkiError};

mod delta;
pub use delta::{base_number, build_delta};

/// RFC 5280 revocation reasons, named as openssl prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// No reason given.
    #[default]
    Unspecified,
    /// The key leaked.
    KeyCompromise,
    /// The CA's key leaked.
    CaCompromise,
    /// The subject's affiliation changed.
    AffiliationChanged,
    /// Replaced by a newer certificate.
    Superseded,
    /// No longer needed.
    CessationOfOperation,
    /// Temporarily on hold.
    CertificateHold,
    /// Privileges withdrawn.
    PrivilegeWithdrawn,
}

const REASONS: &[(Reason, &str, i64)] = &[
    (Reason::Unspecified, "unspecified", 0),
    (Reason::KeyCompromise, "keyCompromise", 1),
    (Reason::CaCompromise, "cACompromise", 2),
    (Reason::AffiliationChanged, "affiliationChanged", 3),
    (Reason::Superseded, "superseded", 4),
    (Reason::CessationOfOperation, "cessationOfOperation", 5),
    (Reason::CertificateHold, "certificateHold", 6),
    (Reason::PrivilegeWithdrawn, "privilegeWithdrawn", 9),
];

impl Reason {
    /// The RFC 5280 reason code.
    pub fn code(self) -> i64 {
        REASONS.iter().find(|r| r.0 == self).map_or(0, |r| r.2)
    }

    /// From an RFC 5280 reason code.
    pub fn from_code(code: i64) -> Reason {
        REASONS
            .iter()
            .find(|r| r.2 == code)
            .map_or(Reason::Unspecified, |r| r.0)
    }

    fn rcgen(self) -> RevocationReason {
        match self {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::CaCompromise => RevocationReason::CaCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
            Reason::CertificateHold => RevocationReason::CertificateHold,
            Reason::PrivilegeWithdrawn => RevocationReason::PrivilegeWithdrawn,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = REASONS
            .iter()
            .find(|r| r.0 == *self)
            .map_or("unspecified", |r| r.1);
        f.write_str(name)
    }
}

impl FromStr for Reason {
    type Err = String;
    /// Case-insensitive, with or without separators: `keyCompromise`, `key-compromise`,
    /// `key_compromise`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        REASONS
            .iter()
            .find(|r| r.1.to_ascii_lowercase() == norm)
            .map(|r| r.0)
            .ok_or_else(|| {
                let names: Vec<&str> = REASONS.iter().map(|r| r.1).collect();
                format!(
                    "unknown revocation reason \"{s}\" (use one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// One revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial of the revoked certificate.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: Reason,
}

/// Builds and signs a CRL for `ca`. `number` must grow with each CRL of the same CA.
pub fn build(
    ca: &SigningCa<'_>,
    number: u64,
    entries: &[RevokedEntry],
    now: OffsetDateTime,
    validity: Duration,
) -> Result<Vec<u8>, PkiError> {
    let issuer = ca.issuer()?;
    let facts = crate::cert::facts(ca.cert_der)?;
    let key_identifier_method = match facts.subject_key_id.and_then(|h| hex::decode(h).ok()) {
        Some(ski) => KeyIdMethod::PreSpecified(ski),
        None => KeyIdMethod::Sha256,
    };
    let params = CertificateRevocationListParams {
        this_update: now,
        next_update: now + validity,
        crl_number: rcgen::SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: entries
            .iter()
            .map(|e| RevokedCertParams {
                serial_number: rcgen::SerialNumber::from_slice(e.serial.as_bytes()),
                revocation_time: e.revoked_at,
                reason_code: Some(e.reason.rcgen()),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method,
    };
    Ok(params.signed_by(&issuer)?.der().to_vec())
}

/// PEM text of a DER CRL.
pub fn to_pem(der: &[u8]) -> String {
    pem::encode_config(
        &pem::Pem::new("X509 CRL", der.to_vec()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// What a CRL says about itself, once its signature was checked against the CA that issued it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFacts {
    /// The issuing CA's subject (RFC 2253 order, as [`crate::cert::dn_string`]).
    pub issuer: String,
    /// thisUpdate.
    pub this_update: OffsetDateTime,
    /// nextUpdate, when the CRL has one.
    pub next_update: Option<OffsetDateTime>,
    /// How many certificates it revokes.
    pub revoked: usize,
}

/// Why a CRL fetched from somewhere cannot be used with a set of CAs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlRejected {
    /// The bytes are not a CRL.
    #[error("not a CRL: {0}")]
    Unreadable(String),
    /// No CA of the set has the CRL's issuer as its subject.
    #[error("the CRL is issued by \"{issuer}\", which is not one of the trusted CAs")]
    UnknownIssuer {
        /// The CRL's issuer.
        issuer: String,
    },
    /// A CA with that name exists, but the signature does not verify with its key, or its
    /// keyUsage lacks cRLSign.
    #[error("the CRL of \"{issuer}\" is not signed by that CA (bad signature, or no cRLSign)")]
    BadSignature {
        /// The CRL's issuer.
        issuer: String,
    },
}

/// Checks that `crl` (DER) is signed by one of `cas` (DER certificates: the CA whose subject
/// is the CRL's issuer, with cRLSign when it has a keyUsage) and returns its facts. Pure.
pub fn check_issued_by(crl: &[u8], cas: &[Vec<u8>]) -> Result<CrlFacts, CrlRejected> {
    use x509_parser::prelude::*;
    let (_, x) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl)
        .map_err(|e| CrlRejected::Unreadable(e.to_string()))?;
    let issuer = crate::cert::dn_string(x.issuer());
    let mut named = false;
    for der in cas {
        let Ok((_, ca)) = X509Certificate::from_der(der) else {
            continue;
        };
        if ca.subject().as_raw() != x.issuer().as_raw()
            && !crate::cert::dn_string(ca.subject()).eq_ignore_ascii_case(&issuer)
        {
            continue;
        }
        named = true;
        let may_sign = match ca.key_usage() {
            Ok(Some(ku)) => ku.value.crl_sign(),
            Ok(None) => true,
            Err(_) => false,
        };
        if may_sign && x.verify_signature(ca.public_key()).is_ok() {
            return Ok(CrlFacts {
                issuer,
                this_update: x.last_update().to_datetime(),
                next_update: x.next_update().map(|t| t.to_datetime()),
                revoked: x.iter_revoked_certificates().count(),
            });
        }
    }
    Err(if named {
        CrlRejected::BadSignature { issuer }
    } else {
        CrlRejected::UnknownIssuer { issuer }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_in_every_spelling() {
        let cases = [
            ("keyCompromise", Reason::KeyCompromise, 1),
            ("key-compromise", Reason::KeyCompromise, 1),
            ("KEY_COMPROMISE", Reason::KeyCompromise, 1),
            ("superseded", Reason::Superseded, 4),
            ("cessation_of_operation", Reason::CessationOfOperation, 5),
            ("privilegeWithdrawn", Reason::PrivilegeWithdrawn, 9),
        ];
        for (s, r, code) in cases {
            assert_eq!(s.parse::<Reason>(), Ok(r), "{s}");
            assert_eq!(r.code(), code);
            assert_eq!(Reason::from_code(code), r);
        }
        assert!("stolen"
            .parse::<Reason>()
            .unwrap_err()
            .contains("keyCompromise"));
    }

    #[test]
    fn fetched_crls_are_checked_against_their_ca() {
        use crate::verify::test_pki::{crl, crl_by, Pki, NOW};
        let pki = Pki::new();
        let week = time::Duration::days(7);
        let good = crl(&pki.root, &[(&pki.bob_int, None)], NOW, NOW + week);
        let cas = vec![pki.root.der.clone(), pki.alice_int.der.clone()];
        let f = check_issued_by(&good, &cas).unwrap();
        assert_eq!(f.issuer, "CN=Local Root CA");
        assert_eq!(f.next_update, Some(NOW + week));
        assert_eq!(f.revoked, 1);
        // Alice's intermediate's CRL, offered where only the root is trusted.
        let forged = crl_by(
            &pki.alice_int.issuer(),
            rcgen::KeyIdMethod::Sha256,
            &[],
            NOW,
            NOW + week,
        );
        type Case = (Vec<u8>, Vec<Vec<u8>>, &'static str);
        let cases: Vec<Case> = vec![
            (b"nope".to_vec(), cas.clone(), "not a CRL"),
            (
                good.clone(),
                vec![pki.alice_int.der.clone()],
                "\"CN=Local Root CA\", which is not one of the trusted CAs",
            ),
            (
                forged,
                vec![pki.root.der.clone()],
                "\"CN=Alice Intermediate Authority\", which is not one of the trusted CAs",
            ),
        ];
        for (der, cas, want) in cases {
            let e = check_issued_by(&der, &cas).unwrap_err().to_string();
            assert!(e.contains(want), "{e} !~ {want}");
        }
        // A CA named like the issuer but with another key.
        let mut other = crate::verify::test_pki::ca_params("Local Root CA", None);
        other.serial_number = None;
        let other = crate::verify::test_pki::make_root(other);
        let e = check_issued_by(&good, &[other.der]).unwrap_err();
        assert_eq!(
            e,
            CrlRejected::BadSignature {
                issuer: "CN=Local Root CA".into()
            }
        );
    }
}
