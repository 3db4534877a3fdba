//! Certificate revocation lists: v2, with CRL number, AKI, reason codes, thisUpdate and
//! nextUpdate.

use std::{fmt, str::FromStr, time::Duration};

use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{ca::SigningCa, serial::Serial, PkiError};

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
}
