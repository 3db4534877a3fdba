//! Delta CRLs (RFC 5280 5.2.4): the revocations since a complete CRL, marked with a critical
//! Delta CRL Indicator that names the complete CRL's number. rcgen has no field for that
//! extension, so the CRL rcgen builds is decoded with `x509-cert`, given the one extension, and
//! signed again with the CA's key.

use std::time::Duration;

use der::{
    asn1::{BitString, ObjectIdentifier, OctetString},
    Decode, Encode,
};
use rcgen::SigningKey;
use time::OffsetDateTime;
use x509_cert::{crl::CertificateList, ext::Extension};

use super::{build, RevokedEntry};
use crate::{ca::SigningCa, PkiError};

/// id-ce-deltaCRLIndicator.
const DELTA_CRL_INDICATOR: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.27");

fn encoding(e: der::Error) -> PkiError {
    PkiError::Signing(format!("delta CRL: {e}"))
}

/// Builds and signs a delta CRL for `ca`: `entries` are the revocations since the complete CRL
/// numbered `base_number`; `number` comes from the same sequence as the complete CRLs' and is
/// larger than `base_number`.
pub fn build_delta(
    ca: &SigningCa<'_>,
    number: u64,
    base_number: u64,
    entries: &[RevokedEntry],
    now: OffsetDateTime,
    validity: Duration,
) -> Result<Vec<u8>, PkiError> {
    let complete = build(ca, number, entries, now, validity)?;
    let mut list = CertificateList::from_der(&complete).map_err(encoding)?;
    let indicator = Extension {
        extn_id: DELTA_CRL_INDICATOR,
        critical: true,
        extn_value: OctetString::new(base_number.to_der().map_err(encoding)?).map_err(encoding)?,
    };
    list.tbs_cert_list
        .crl_extensions
        .get_or_insert_with(Vec::new)
        .push(indicator);
    let tbs = list.tbs_cert_list.to_der().map_err(encoding)?;
    let signature = ca.key.pair().sign(&tbs)?;
    list.signature = BitString::from_bytes(&signature).map_err(encoding)?;
    list.to_der().map_err(encoding)
}

/// The base CRL number of a delta CRL, or None for a complete CRL.
pub fn base_number(crl: &[u8]) -> Result<Option<u64>, PkiError> {
    let list = CertificateList::from_der(crl).map_err(encoding)?;
    for ext in list.tbs_cert_list.crl_extensions.iter().flatten() {
        if ext.extn_id == DELTA_CRL_INDICATOR {
            return Ok(Some(
                u64::from_der(ext.extn_value.as_bytes()).map_err(encoding)?,
            ));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ca::{generate_root, RootRequest, Urls},
        crl::{check_issued_by, Reason},
        key::KeyType,
        serial::Serial,
    };

    /// Each key type signs a delta CRL that verifies with the CA's key and names its base.
    #[test]
    fn delta_crls_verify_and_name_their_base() {
        let now = OffsetDateTime::now_utc();
        for kt in [KeyType::EcP256, KeyType::Ed25519, KeyType::Rsa(2048)] {
            let root = generate_root(
                &RootRequest {
                    common_name: "Delta Root".into(),
                    key_type: kt,
                    ..RootRequest::default()
                },
                now,
            )
            .unwrap();
            let urls = Urls::default();
            let ca = SigningCa {
                cert_der: &root.cert_der,
                key: &root.key,
                urls: &urls,
            };
            let entry = RevokedEntry {
                serial: Serial::random(),
                revoked_at: now,
                reason: Reason::KeyCompromise,
            };
            let der = build_delta(&ca, 8, 7, &[entry], now, Duration::from_secs(3600)).unwrap();
            let facts = check_issued_by(&der, std::slice::from_ref(&root.cert_der)).unwrap();
            assert_eq!(facts.revoked, 1, "{kt:?}");
            assert_eq!(base_number(&der).unwrap(), Some(7));
            let full = build(&ca, 7, &[], now, Duration::from_secs(3600)).unwrap();
            assert_eq!(base_number(&full).unwrap(), None);
        }
    }
}
