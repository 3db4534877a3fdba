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
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => f.dns_names.push(d.to_string()),
                        GeneralName::URI(u) => f.uris.push(u.to_string()),
                        GeneralName::RFC822Name(e) => f.emails.push(e.to_string()),
                        GeneralName::IPAddress(b) => {
                            if let Some(ip) = ip_from_bytes(b) {
                                f.ip_addresses.push(ip)
                            }
                        }
                        _ => {}
                    }
                }
            }
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
    f
}

/// SHA-256 fingerprint as openssl prints it: `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
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
    let mut parts = Vec::new();
    for rdn in name.iter_rdn() {
        let attrs: Vec<String> = rdn
            .iter()
            .map(|atv| {
                let oid = atv.attr_type().to_id_string();
                let key = match oid.as_str() {
                    "2.5.4.3" => "CN".to_string(),
                    "2.5.4.6" => "C".to_string(),
                    "2.5.4.7" => "L".to_string(),
                    "2.5.4.8" => "ST".to_string(),
                    "2.5.4.10" => "O".to_string(),
                    "2.5.4.11" => "OU".to_string(),
                    "2.5.4.9" => "STREET".to_string(),
                    "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                    "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                    "2.5.4.5" => "serialNumber".to_string(),
                    "1.2.840.113549.1.9.1" => "emailAddress".to_string(),
                    other => other.to_string(),
                };
                let value = atv
                    .as_str()
                    .map(escape_dn_value)
                    .unwrap_or_else(|_| format!("#{}", hex::encode(atv.attr_value().data)));
                format!("{key}={value}")
            })
            .collect();
        parts.push(attrs.join("+"));
    }
    parts.reverse();
    parts.join(",")
}

fn escape_dn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == v.chars().count() - 1 && c == ' ');
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
    out
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
        assert_eq!(escape_dn_value("a,b"), "a\\,b");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert_eq!(escape_dn_value("plain"), "plain");
    }
}
