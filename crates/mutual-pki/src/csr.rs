//! Certificate signing requests: parsed with x509-parser, signature checked with aws-lc-rs.

use std::net::IpAddr;

use x509_parser::{
    certification_request::X509CertificationRequest,
    extensions::{GeneralName, ParsedExtension},
    prelude::FromDer,
};

use crate::{cert::dn_string, key::KeyKind, PkiError};

/// What a CSR asks for, after its self-signature was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCsr {
    /// Subject DN in RFC 2253 order.
    pub subject: String,
    /// Subject attributes as (short name, value), most general first (C, O, OU, CN order as
    /// encoded).
    pub subject_attrs: Vec<(String, String)>,
    /// Every subject attribute with a string value as (dotted OID, value), in encoded order:
    /// what `sign-verbatim` copies into the certificate.
    pub subject_oids: Vec<(String, String)>,
    /// Subject common name (empty when none).
    pub common_name: String,
    /// Requested DNS SANs.
    pub dns_names: Vec<String>,
    /// Requested email SANs.
    pub emails: Vec<String>,
    /// Requested IP SANs.
    pub ip_addresses: Vec<IpAddr>,
    /// Requested URI SANs.
    pub uris: Vec<String>,
    /// The public key, DER SubjectPublicKeyInfo.
    pub public_key_der: Vec<u8>,
    /// The public key's kind.
    pub key: KeyKind,
}

/// Parses a PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER CSR and verifies
/// that it is signed by the key it carries.
pub fn parse(input: &[u8]) -> Result<ParsedCsr, PkiError> {
    let der = if input.first() == Some(&0x30) {
        input.to_vec()
    } else {
        let block = ::pem::parse_many(input)
            .map_err(|e| PkiError::CsrNotPem {
                detail: e.to_string(),
            })?
            .into_iter()
            .find(|b| b.tag().ends_with("CERTIFICATE REQUEST"))
            .ok_or(PkiError::NoCsr)?;
        block.into_contents()
    };
    let (_, csr) =
        X509CertificationRequest::from_der(&der).map_err(|e| PkiError::CsrUnparsable {
            detail: e.to_string(),
        })?;
    csr.verify_signature().map_err(|_| PkiError::CsrSignature)?;
    let info = &csr.certification_request_info;
    let key = KeyKind::from_spki(&info.subject_pki);
    let mut out = ParsedCsr {
        subject: dn_string(&info.subject),
        subject_attrs: vec![],
        subject_oids: vec![],
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or_default()
            .to_string(),
        dns_names: vec![],
        emails: vec![],
        ip_addresses: vec![],
        uris: vec![],
        public_key_der: info.subject_pki.raw.to_vec(),
        key,
    };
    for rdn in info.subject.iter_rdn() {
        for atv in rdn.iter() {
            if let Ok(v) = atv.as_str() {
                out.subject_oids
                    .push((atv.attr_type().to_id_string(), v.to_string()));
            }
            let short = match atv.attr_type().to_id_string().as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                _ => continue,
            };
            if let Ok(v) = atv.as_str() {
                out.subject_attrs.push((short.to_string(), v.to_string()));
            }
        }
    }
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                        GeneralName::RFC822Name(e) => out.emails.push(e.to_string()),
                        GeneralName::URI(u) => out.uris.push(u.to_string()),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => out
                                .ip_addresses
                                .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                            16 => out
                                .ip_addresses
                                .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(out)
}
