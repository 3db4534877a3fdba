//! Leaf certificates: a checked request (see [`crate::role`]) becomes a signed certificate with
//! the profile every client and server accepts.

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};

use crate::{
    ca::{PreparedCa, SigningCa},
    key::KeyKind,
    role::Checked,
    serial::Serial,
    PkiError,
};

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
    ca: &PreparedCa,
    checked: &Checked,
    public_key_der: &[u8],
    key: &KeyKind,
    serial: &Serial,
) -> Result<Vec<u8>, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(checked);
    params.is_ca = IsCa::ExplicitNoCa;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
    params.not_before = checked.not_before;
    params.not_after = checked.not_after;
    params.key_usages = key_usages(key);
    params.extended_key_usages = extended_key_usages(checked);
    params.subject_alt_names = subject_alt_names(checked)?;
    params.use_authority_key_identifier_extension = true;
    ca.urls.stamp(&mut params);
    let spki = rcgen::SubjectPublicKeyInfo::from_der(public_key_der).map_err(|e| {
        PkiError::UnusablePublicKey {
            detail: e.to_string(),
        }
    })?;
    let cert = params.signed_by(&spki, &ca.issuer)?;
    Ok(cert.der().to_vec())
}

/// O, then OU, then the CN when there is one; or the request's whole subject when it gave one.
fn subject(checked: &Checked) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if !checked.subject.is_empty() {
        for (oid, value) in &checked.subject {
            let arcs: Result<Vec<u64>, _> = oid.split('.').map(str::parse::<u64>).collect();
            // An OID that does not parse (or has fewer than two arcs) cannot be encoded.
            let Some(arcs) = arcs.ok().filter(|a| a.len() >= 2) else {
                continue;
            };
            let ty = DnType::from_oid(&arcs);
            // Country and serial number are PrintableString in RFC 5280; the rest UTF8String.
            let printable = matches!(ty, DnType::CountryName) || arcs == [2, 5, 4, 5];
            match rcgen::string::PrintableString::try_from(value.as_str()) {
                Ok(p) if printable => dn.push(ty, rcgen::DnValue::PrintableString(p)),
                _ => dn.push(ty, value.as_str()),
            }
        }
        return dn;
    }
    for o in &checked.organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    for u in &checked.ou {
        dn.push(DnType::OrganizationalUnitName, u.as_str());
    }
    if !checked.common_name.is_empty() {
        dn.push(DnType::CommonName, checked.common_name.as_str());
    }
    dn
}

/// digitalSignature, and keyEncipherment for RSA keys (TLS 1.2's RSA key exchange).
fn key_usages(key: &KeyKind) -> Vec<KeyUsagePurpose> {
    let mut usages = vec![KeyUsagePurpose::DigitalSignature];
    if matches!(key, KeyKind::Rsa { .. }) {
        usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    usages
}

/// serverAuth and clientAuth, as the role's flags say.
fn extended_key_usages(checked: &Checked) -> Vec<ExtendedKeyUsagePurpose> {
    let mut usages = Vec::new();
    if checked.server {
        usages.push(ExtendedKeyUsagePurpose::ServerAuth);
    }
    if checked.client {
        usages.push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    usages
}

/// DNS, email, IP and URI SANs, in that order.
fn subject_alt_names(checked: &Checked) -> Result<Vec<SanType>, PkiError> {
    let ia5 = |s: &str| -> Result<rcgen::string::Ia5String, PkiError> {
        s.try_into().map_err(|_| PkiError::NotAscii {
            name: s.to_string(),
        })
    };
    let mut sans = Vec::new();
    for d in &checked.dns_sans {
        sans.push(SanType::DnsName(ia5(d)?));
    }
    for e in &checked.email_sans {
        sans.push(SanType::Rfc822Name(ia5(e)?));
    }
    for ip in &checked.ip_sans {
        sans.push(SanType::IpAddress(*ip));
    }
    for u in &checked.uri_sans {
        sans.push(SanType::URI(ia5(u)?));
    }
    Ok(sans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ca::{self, RootRequest, Urls},
        cert,
        key::KeyType,
    };

    #[test]
    fn a_given_subject_is_written_whole_and_a_bad_oid_is_left_out() {
        let now = time::OffsetDateTime::now_utc();
        let root = ca::generate_root(
            &RootRequest {
                common_name: "Subject Root".into(),
                key_type: KeyType::EcP256,
                ..RootRequest::default()
            },
            now,
        )
        .unwrap();
        let urls = Urls::default();
        let signer = SigningCa {
            cert_der: &root.cert_der,
            key: &root.key,
            urls: &urls,
        };
        let leaf = KeyType::EcP256.generate().unwrap();
        let attr = |oid: &str, v: &str| (oid.to_string(), v.to_string());
        let checked = Checked {
            common_name: "x.example.com".into(),
            dns_sans: vec!["x.example.com".into()],
            email_sans: vec![],
            ip_sans: vec![],
            uri_sans: vec![],
            not_before: now,
            not_after: now + std::time::Duration::from_secs(3600),
            server: true,
            client: true,
            ou: vec![],
            organization: vec![],
            warnings: vec![],
            subject: vec![
                attr("2.5.4.6", "NL"),
                attr("2.5.4.8", "Zuid-Holland"),
                attr("2.5.4.7", "Delft"),
                attr("2.5.4.10", "Acme"),
                attr("2.5.4.11", "Ops"),
                attr("not.an.oid", "dropped"),
                attr("2", "dropped"),
                attr("2.5.4.3", "X.example.com"),
            ],
        };
        let der = sign_leaf(
            &signer,
            &checked,
            &leaf.public_key_der(),
            &leaf.key_type().key_kind(),
            &Serial::random(),
        )
        .unwrap();
        let facts = cert::facts(&der).unwrap();
        assert_eq!(
            facts.subject,
            "CN=X.example.com,OU=Ops,O=Acme,L=Delft,ST=Zuid-Holland,C=NL"
        );
    }
}
