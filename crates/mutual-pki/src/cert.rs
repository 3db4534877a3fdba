//! Reading certificates back: PEM bundles to DER, and the facts mutual needs from a
//! certificate (names, validity, key, CA flags), read with x509-parser.

use std::net::IpAddr;

use ::time::OffsetDateTime;
use serde::Serialize;
use x509_parser::prelude::*;

use crate::{key::KeyKind, serial::Serial, PkiError};

/// Splits PEM text into the DER of each `CERTIFICATE` block, in order. Other blocks (keys)
/// are skipped; text with no certificate is an error.
pub fn pem_certs(text: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    let blocks = ::pem::parse_many(text).map_err(|e| PkiError::BadPem {
        detail: e.to_string(),
    })?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "CERTIFICATE")
        .map(|b| b.into_contents())
        .collect();
    if certs.is_empty() {
        return Err(PkiError::NoCertificate);
    }
    Ok(certs)
}

/// Certificates from a file's bytes, PEM or a single DER certificate.
pub fn certs_from_bytes(bytes: &[u8]) -> Result<Vec<Vec<u8>>, PkiError> {
    if bytes.first() == Some(&0x30) {
        X509Certificate::from_der(bytes).map_err(|e| PkiError::NotDer {
            detail: e.to_string(),
        })?;
        return Ok(vec![bytes.to_vec()]);
    }
    pem_certs(bytes)
}

/// PEM text of one DER certificate.
pub fn to_pem(der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new("CERTIFICATE", der.to_vec()),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// The facts about a certificate that policy, inventory and diagnosis need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CertFacts {
    /// Subject DN in RFC 2253 order (most specific first), e.g. `CN=alice.example.com`.
    pub subject: String,
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// Subject organizational units.
    pub organizational_units: Vec<String>,
    /// Issuer DN in RFC 2253 order.
    pub issuer: String,
    /// Issuer common name, if any.
    pub issuer_common_name: Option<String>,
    /// Serial number.
    #[serde(serialize_with = "ser_display")]
    pub serial: Serial,
    /// Start of validity.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(with = "::time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// Email SANs.
    pub emails: Vec<String>,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// pathLenConstraint, when set.
    pub path_len: Option<u32>,
    /// The key.
    pub key: KeyKind,
    /// Subject key identifier, hex.
    pub subject_key_id: Option<String>,
    /// Authority key identifier, hex.
    pub authority_key_id: Option<String>,
    /// keyUsage names (`digitalSignature`, `keyCertSign`, …); empty when absent.
    pub key_usage: Vec<String>,
    /// extendedKeyUsage names (`serverAuth`, `clientAuth`, …); empty when absent.
    pub extended_key_usage: Vec<String>,
    /// Whether the extendedKeyUsage extension is present at all.
    pub has_extended_key_usage: bool,
    /// Signature algorithm, readable (`ecdsa-with-SHA256`, `sha256WithRSAEncryption`, …).
    pub signature_algorithm: String,
    /// CRL distribution point URLs.
    pub crl_urls: Vec<String>,
    /// AIA caIssuers URLs.
    pub issuing_urls: Vec<String>,
    /// Subject equals issuer.
    pub self_issued: bool,
    /// SHA-256 fingerprint of the DER, colon hex uppercase as openssl prints it.
    pub sha256_fingerprint: String,
}

fn ser_display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The subject alternative names of a certificate, by kind, in the certificate's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AltNames {
    /// DNS names.
    pub dns_names: Vec<String>,
    /// IP addresses.
    pub ip_addresses: Vec<IpAddr>,
    /// URIs.
    pub uris: Vec<String>,
    /// Email addresses.
    pub emails: Vec<String>,
}

impl AltNames {
    fn add(&mut self, san: &SubjectAlternativeName<'_>) {
        for name in &san.general_names {
            match name {
                GeneralName::DNSName(d) => self.dns_names.push(d.to_string()),
                GeneralName::URI(u) => self.uris.push(u.to_string()),
                GeneralName::RFC822Name(e) => self.emails.push(e.to_string()),
                GeneralName::IPAddress(b) => {
                    if let Some(ip) = ip_from_bytes(b) {
                        self.ip_addresses.push(ip)
                    }
                }
                _ => {}
            }
        }
    }
}

/// Only the subject alternative names of one DER certificate: what the inventory indexes for
/// every certificate issued, without the DNs, fingerprint and extensions that [`facts`] reads.
pub fn alt_names(der: &[u8]) -> Result<AltNames, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::UnreadableCertificate {
            detail: e.to_string(),
        })?;
    let mut names = AltNames::default();
    for ext in cert.extensions() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() {
            names.add(san);
        }
    }
    Ok(names)
}

/// Reads the facts of one DER certificate.
pub fn facts(der: &[u8]) -> Result<CertFacts, PkiError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PkiError::UnreadableCertificate {
            detail: e.to_string(),
        })?;
    Ok(facts_of(&cert, der))
}

/// Reads the facts of an already parsed certificate (its DER is needed for the fingerprint).
pub fn facts_of(cert: &X509Certificate<'_>, der: &[u8]) -> CertFacts {
    let mut f = CertFacts {
        subject: dn_string(cert.subject()),
        common_name: first_cn(cert.subject()),
        organizational_units: cert
            .subject()
            .iter_organizational_unit()
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect(),
        issuer: dn_string(cert.issuer()),
        issuer_common_name: first_cn(cert.issuer()),
        serial: Serial::from_bytes(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
        dns_names: vec![],
        ip_addresses: vec![],
        uris: vec![],
        emails: vec![],
        is_ca: false,
        path_len: None,
        key: KeyKind::from_spki(cert.public_key()),
        subject_key_id: None,
        authority_key_id: None,
        key_usage: vec![],
        extended_key_usage: vec![],
        has_extended_key_usage: false,
        signature_algorithm: sig_alg_name(&cert.signature_algorithm.algorithm.to_id_string()),
        crl_urls: vec![],
        issuing_urls: vec![],
        self_issued: cert.subject().as_raw() == cert.issuer().as_raw(),
        sha256_fingerprint: fingerprint(der),
    };
    let mut sans = AltNames::default();
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => sans.add(san),
            ParsedExtension::BasicConstraints(bc) => {
                f.is_ca = bc.ca;
                f.path_len = bc.path_len_constraint;
            }
            ParsedExtension::SubjectKeyIdentifier(k) => f.subject_key_id = Some(hex::encode(k.0)),
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                f.authority_key_id = k.key_identifier.as_ref().map(|k| hex::encode(k.0))
            }
            ParsedExtension::KeyUsage(ku) => {
                let names = [
                    (ku.digital_signature(), "digitalSignature"),
                    (ku.non_repudiation(), "nonRepudiation"),
                    (ku.key_encipherment(), "keyEncipherment"),
                    (ku.data_encipherment(), "dataEncipherment"),
                    (ku.key_agreement(), "keyAgreement"),
                    (ku.key_cert_sign(), "keyCertSign"),
                    (ku.crl_sign(), "cRLSign"),
                    (ku.encipher_only(), "encipherOnly"),
                    (ku.decipher_only(), "decipherOnly"),
                ];
                f.key_usage = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                f.has_extended_key_usage = true;
                let names = [
                    (eku.any, "anyExtendedKeyUsage"),
                    (eku.server_auth, "serverAuth"),
                    (eku.client_auth, "clientAuth"),
                    (eku.code_signing, "codeSigning"),
                    (eku.email_protection, "emailProtection"),
                    (eku.time_stamping, "timeStamping"),
                    (eku.ocsp_signing, "OCSPSigning"),
                ];
                f.extended_key_usage = names
                    .iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, n)| n.to_string())
                    .collect();
                f.extended_key_usage
                    .extend(eku.other.iter().map(|o| o.to_id_string()));
            }
            ParsedExtension::CRLDistributionPoints(points) => {
                for p in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &p.distribution_point {
                        for n in names {
                            if let GeneralName::URI(u) = n {
                                f.crl_urls.push(u.to_string());
                            }
                        }
                    }
                }
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                for d in &aia.accessdescs {
                    if d.access_method.to_id_string() == "1.3.6.1.5.5.7.48.2" {
                        if let GeneralName::URI(u) = &d.access_location {
                            f.issuing_urls.push(u.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
    }
    f.dns_names = sans.dns_names;
    f.ip_addresses = sans.ip_addresses;
    f.uris = sans.uris;
    f.emails = sans.emails;
    f
}

/// SHA-256 fingerprint as openssl prints it: `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let digest = sha2::Sha256::digest(der);
    // Built in place: it is read for every certificate the server issues or is shown.
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, b) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(b).ok()?)),
        _ => None,
    }
}

fn first_cn(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok().map(str::to_string))
}

/// A distinguished name in RFC 2253 order (last RDN first), e.g.
/// `CN=alice.example.com,O=Example`. Values are escaped as RFC 4514 asks.
pub fn dn_string(name: &X509Name<'_>) -> String {
    // Written into one string: every request through the proxy and every certificate issued
    // reads a DN or two.
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::with_capacity(name.as_raw().len());
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match attr_short_name(atv.attr_type()) {
                Some(key) => out.push_str(key),
                None => out.push_str(&atv.attr_type().to_id_string()),
            }
            out.push('=');
            match atv.as_str() {
                Ok(v) => escape_dn_value(v, &mut out),
                Err(_) => {
                    out.push('#');
                    out.push_str(&hex::encode(atv.attr_value().data));
                }
            }
        }
    }
    out
}

/// The RFC 4514 short name of a DN attribute, where it has one.
fn attr_short_name(oid: &x509_parser::der_parser::oid::Oid<'_>) -> Option<&'static str> {
    use x509_parser::oid_registry as o;
    let known: [(&x509_parser::der_parser::oid::Oid<'static>, &'static str); 11] = [
        (&o::OID_X509_COMMON_NAME, "CN"),
        (&o::OID_X509_COUNTRY_NAME, "C"),
        (&o::OID_X509_LOCALITY_NAME, "L"),
        (&o::OID_X509_STATE_OR_PROVINCE_NAME, "ST"),
        (&o::OID_X509_ORGANIZATION_NAME, "O"),
        (&o::OID_X509_ORGANIZATIONAL_UNIT, "OU"),
        (&o::OID_X509_STREET_ADDRESS, "STREET"),
        (&o::OID_DOMAIN_COMPONENT, "DC"),
        (&o::OID_USERID, "UID"),
        (&o::OID_X509_SERIALNUMBER, "serialNumber"),
        (&o::OID_PKCS9_EMAIL_ADDRESS, "emailAddress"),
    ];
    known.iter().find(|(k, _)| *k == oid).map(|(_, n)| *n)
}

/// Appends `v` escaped as RFC 4514 asks.
fn escape_dn_value(v: &str, out: &mut String) {
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if c.is_control() {
            // RFC 4514's hex form: a newline in a peer's name must not split a log line or
            // an error message.
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\{b:02X}"));
            }
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

fn sig_alg_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.3.101.112" => "ED25519",
        other => other,
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_refused() {
        assert!(pem_certs(b"").is_err());
        assert!(
            pem_certs(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err()
        );
        assert!(certs_from_bytes(b"\x30\x03\x02\x01\x00").is_err());
    }

    #[test]
    fn dn_values_are_escaped() {
        let escape = |v: &str| {
            let mut out = String::new();
            escape_dn_value(v, &mut out);
            out
        };
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" x "), "\\ x\\ ");
        assert_eq!(escape("plain"), "plain");
    }

    /// RFC 2253 order (last RDN first), short names where RFC 4514 has them, the numeric
    /// OID otherwise, values escaped; and the fingerprint as openssl prints it.
    #[test]
    fn dn_strings_and_fingerprints() {
        use rcgen::{CertificateParams, DnType, DnValue, KeyPair};
        let cases: Vec<(Vec<(DnType, &str)>, &str)> = vec![
            (vec![(DnType::CommonName, "alice")], "CN=alice"),
            (
                vec![
                    (DnType::CountryName, "US"),
                    (DnType::OrganizationName, "Example, Inc"),
                    (DnType::OrganizationalUnitName, "Dev"),
                    (DnType::CommonName, "#bob "),
                ],
                "CN=\\#bob\\ ,OU=Dev,O=Example\\, Inc,C=US",
            ),
            (
                vec![
                    (
                        DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 25]),
                        "example",
                    ),
                    (DnType::CustomDnType(vec![1, 2, 3, 4]), "x=y"),
                ],
                "1.2.3.4=x\\=y,DC=example",
            ),
        ];
        for (attrs, want) in cases {
            let mut params = CertificateParams::default();
            params.distinguished_name = rcgen::DistinguishedName::new();
            for (t, v) in attrs {
                params
                    .distinguished_name
                    .push(t, DnValue::Utf8String(v.into()));
            }
            let key = KeyPair::generate().unwrap();
            let der = params.self_signed(&key).unwrap().der().to_vec();
            let f = facts(&der).unwrap();
            assert_eq!(f.subject, want);
            assert_eq!(f.issuer, want);
            let fp = &f.sha256_fingerprint;
            assert_eq!(fp.len(), 32 * 3 - 1, "{fp}");
            let digest = <sha2::Sha256 as sha2::Digest>::digest(&der);
            assert_eq!(fp.replace(':', ""), hex::encode_upper(digest));
        }
    }
}
