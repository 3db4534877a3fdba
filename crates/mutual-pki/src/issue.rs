//! Leaf certificates: a checked request (see [`crate::role`]) becomes a signed certificate with
//! the profile every client and server accepts.

use rcgen::{
    CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
};

use crate::{
    ca::{PreparedCa, SigningCa, Urls},
    key::KeyKind,
    role::Checked,
    serial::Serial,
    PkiError,
};

const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
const OID_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];

/// Stamps a CA's AIA (OCSP and caIssuers) and CRL distribution point URLs into certificate
/// parameters.
pub(crate) fn add_urls(params: &mut CertificateParams, urls: &Urls) {
    if !urls.crl_distribution_points.is_empty() {
        params.crl_distribution_points = vec![CrlDistributionPoint {
            uris: urls.crl_distribution_points.clone(),
        }];
    }
    if !urls.issuing_certificates.is_empty() || !urls.ocsp_servers.is_empty() {
        // rcgen has no AIA field; the extension is a SEQUENCE OF AccessDescription, encoded
        // with yasna rather than by hand. OCSP first, as Vault and OpenBao write it.
        let access = urls.ocsp_servers.iter().map(|u| (OID_OCSP, u)).chain(
            urls.issuing_certificates
                .iter()
                .map(|u| (OID_CA_ISSUERS, u)),
        );
        let content = yasna::construct_der(|w| {
            w.write_sequence(|w| {
                for (method, url) in access {
                    w.next().write_sequence(|w| {
                        w.next()
                            .write_oid(&yasna::models::ObjectIdentifier::from_slice(method));
                        w.next().write_tagged_implicit(yasna::Tag::context(6), |w| {
                            w.write_ia5_string(url)
                        });
                    });
                }
            })
        });
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(OID_AIA, content));
    }
}

/// Signs a leaf for `public_key_der` (a DER SubjectPublicKeyInfo) with everything the role
/// check decided. Returns the certificate's DER.
pub fn sign_leaf(
    ca: &SigningCa<'_>,
    checked: &Checked,
    public_key_der: &[u8],
    key: &KeyKind,
    serial: &Serial,
) -> Result<Vec<u8>, PkiError> {
    sign_leaf_prepared(&ca.prepare()?, checked, public_key_der, key, serial)
}

/// [`sign_leaf`] with a CA whose certificate was parsed once ([`SigningCa::prepare`]).
pub fn sign_leaf_prepared(
    ca: &PreparedCa<'_>,
    checked: &Checked,
    public_key_der: &[u8],
    key: &KeyKind,
    serial: &Serial,
) -> Result<Vec<u8>, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    for o in &checked.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    for u in &checked.ou {
        dn.push(DnType::OrganizationalUnitName, u.as_str());
    }
    if !checked.common_name.is_empty() {
        dn.push(DnType::CommonName, checked.common_name.as_str());
    }
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
    params.not_before = checked.not_before;
    params.not_after = checked.not_after;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if matches!(key, KeyKind::Rsa { .. }) {
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    if checked.server {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if checked.client {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let ia5 = |s: &str| -> Result<rcgen::string::Ia5String, PkiError> {
        s.try_into()
            .map_err(|_| PkiError::invalid(format!("\"{s}\" is not an ASCII name")))
    };
    for d in &checked.dns_sans {
        params.subject_alt_names.push(SanType::DnsName(ia5(d)?));
    }
    for e in &checked.email_sans {
        params.subject_alt_names.push(SanType::Rfc822Name(ia5(e)?));
    }
    for ip in &checked.ip_sans {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    for u in &checked.uri_sans {
        params.subject_alt_names.push(SanType::URI(ia5(u)?));
    }
    params.use_authority_key_identifier_extension = true;
    add_urls(&mut params, ca.urls);
    let spki = rcgen::SubjectPublicKeyInfo::from_der(public_key_der)
        .map_err(|e| PkiError::invalid(format!("public key unusable: {e}")))?;
    let cert = params.signed_by(&spki, &ca.issuer)?;
    Ok(cert.der().to_vec())
}
