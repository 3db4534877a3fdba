//! Certificate authorities: self-signed roots, intermediates in one step, and Vault's
//! three-step intermediate flow (generate a CSR, sign it with the parent, set the signed
//! certificate).

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CrlDistributionPoint, CustomExtension, DistinguishedName,
    DnType, IsCa, Issuer, KeyUsagePurpose,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{
    cert,
    constraints::NameConstraints,
    csr::ParsedCsr,
    key::{KeyType, PrivateKey},
    serial::Serial,
    PkiError,
};

/// URLs put into certificates a CA issues (Vault's `config/urls`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Urls {
    /// AIA caIssuers: where the issuing CA's certificate can be fetched.
    pub issuing_certificates: Vec<String>,
    /// CRL distribution points.
    pub crl_distribution_points: Vec<String>,
    /// AIA OCSP: where the status of an issued certificate can be asked.
    pub ocsp_servers: Vec<String>,
}

const OID_AIA: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 1, 1];
const OID_CA_ISSUERS: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 2];
const OID_OCSP: &[u64] = &[1, 3, 6, 1, 5, 5, 7, 48, 1];

impl Urls {
    /// Stamps these AIA (OCSP and caIssuers) and CRL distribution point URLs into the
    /// parameters of a certificate the CA signs (a leaf or an intermediate).
    pub(crate) fn stamp(&self, params: &mut CertificateParams) {
        if !self.crl_distribution_points.is_empty() {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: self.crl_distribution_points.clone(),
            }];
        }
        if !self.issuing_certificates.is_empty() || !self.ocsp_servers.is_empty() {
            // rcgen has no AIA field; the extension is a SEQUENCE OF AccessDescription, encoded
            // with yasna rather than by hand. OCSP first, as Vault and OpenBao write it.
            let access = self.ocsp_servers.iter().map(|u| (OID_OCSP, u)).chain(
                self.issuing_certificates
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
}

/// What a new CA's certificate should say.
#[derive(Debug, Clone)]
pub struct RootRequest {
    /// Subject CN, e.g. `Local Root CA`.
    pub common_name: String,
    /// Subject O values.
    pub organization: Vec<String>,
    /// Subject OU values.
    pub ou: Vec<String>,
    /// Key type and size.
    pub key_type: KeyType,
    /// Lifetime.
    pub ttl: Duration,
    /// pathLenConstraint, when wanted.
    pub path_len: Option<u8>,
    /// Name constraints put into the CA certificate (for an intermediate, into the certificate
    /// its parent signs, as Vault does on `root/sign-intermediate`).
    pub name_constraints: NameConstraints,
}

impl Default for RootRequest {
    fn default() -> Self {
        RootRequest {
            common_name: String::new(),
            organization: vec![],
            ou: vec![],
            key_type: KeyType::EcP256,
            ttl: Duration::from_secs(87_600 * 3600),
            path_len: None,
            name_constraints: NameConstraints::default(),
        }
    }
}

/// A CA's certificate and key.
#[derive(Debug)]
pub struct CaMaterial {
    /// The CA certificate, DER.
    pub cert_der: Vec<u8>,
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's private key.
    pub key: PrivateKey,
}

/// A CA able to sign: its certificate, key and the URLs it stamps into what it signs.
pub struct SigningCa<'a> {
    /// DER of the CA certificate.
    pub cert_der: &'a [u8],
    /// The CA's key.
    pub key: &'a PrivateKey,
    /// URLs for AIA and CRL distribution points.
    pub urls: &'a Urls,
}

/// A CA ready to sign many certificates: its certificate parsed once, owning what it signs
/// with, so that a CA loaded once (a store's CA record) keeps it for every leaf it signs.
pub struct PreparedCa {
    pub(crate) issuer: Issuer<'static, crate::key::SharedPair>,
    pub(crate) urls: Urls,
}

impl std::fmt::Debug for PreparedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedCa").finish_non_exhaustive()
    }
}

impl<'a> SigningCa<'a> {
    /// Parses the CA certificate once, for signing many leaves.
    pub fn prepare(&self) -> Result<PreparedCa, PkiError> {
        Ok(PreparedCa {
            issuer: Issuer::from_ca_cert_der(&self.cert_der.into(), self.key.shared()).map_err(
                |e| PkiError::UnreadableCaCertificate {
                    detail: e.to_string(),
                },
            )?,
            urls: self.urls.clone(),
        })
    }

    pub(crate) fn issuer(&self) -> Result<Issuer<'static, &'a rcgen::KeyPair>, PkiError> {
        Issuer::from_ca_cert_der(&self.cert_der.into(), self.key.pair()).map_err(|e| {
            PkiError::UnreadableCaCertificate {
                detail: e.to_string(),
            }
        })
    }

    /// notAfter of the CA certificate.
    pub fn not_after(&self) -> Result<OffsetDateTime, PkiError> {
        Ok(cert::facts(self.cert_der)?.not_after)
    }
}

pub(crate) fn ca_params(
    subject: DistinguishedName,
    ttl: Duration,
    path_len: Option<u8>,
    now: OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    // Vault backdates by 30 s so that clocks a little behind still accept the certificate.
    params.not_before = now - Duration::from_secs(30);
    // A TTL past what X.509 can say ends at 9999-12-31, RFC 5280's "no expiration", instead of
    // overflowing the clock.
    params.not_after = time::Duration::try_from(ttl)
        .ok()
        .and_then(|t| now.checked_add(t))
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC));
    params.serial_number = Some(rcgen::SerialNumber::from_slice(Serial::random().as_bytes()));
    params
}

pub(crate) fn subject(cn: &str, organization: &[String], ou: &[String]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for o in organization {
        dn.push(DnType::OrganizationName, o.as_str());
    }
    for u in ou {
        dn.push(DnType::OrganizationalUnitName, u.as_str());
    }
    dn.push(DnType::CommonName, cn);
    dn
}

/// Creates a self-signed root CA.
pub fn generate_root(req: &RootRequest, now: OffsetDateTime) -> Result<CaMaterial, PkiError> {
    if req.common_name.trim().is_empty() {
        return Err(PkiError::CaWithoutCommonName);
    }
    let key = req.key_type.generate()?;
    let mut params = ca_params(
        subject(&req.common_name, &req.organization, &req.ou),
        req.ttl,
        req.path_len,
        now,
    );
    req.name_constraints.stamp(&mut params)?;
    let cert = params.self_signed(key.pair())?;
    Ok(CaMaterial {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key,
    })
}

/// Step 1 of Vault's flow: a new key and a CSR for an intermediate CA.
pub fn generate_intermediate_csr(req: &RootRequest) -> Result<(String, PrivateKey), PkiError> {
    if req.common_name.trim().is_empty() {
        return Err(PkiError::CaWithoutCommonName);
    }
    let key = req.key_type.generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject(&req.common_name, &req.organization, &req.ou);
    let csr = params.serialize_request(key.pair())?;
    let pem = csr.pem()?;
    Ok((pem, key))
}

/// Step 2 of Vault's flow: the parent signs an intermediate's CSR. The subject is taken from
/// the CSR; the lifetime never exceeds the parent's.
pub fn sign_intermediate(
    parent: &SigningCa<'_>,
    csr: &ParsedCsr,
    ttl: Duration,
    path_len: Option<u8>,
    now: OffsetDateTime,
) -> Result<CaMaterialCert, PkiError> {
    sign_intermediate_constrained(parent, csr, ttl, path_len, &NameConstraints::default(), now)
}

/// [`sign_intermediate`] with name constraints put into the signed certificate (Vault's
/// `permitted_dns_domains` and the other constraint fields of `root/sign-intermediate`).
pub fn sign_intermediate_constrained(
    parent: &SigningCa<'_>,
    csr: &ParsedCsr,
    ttl: Duration,
    path_len: Option<u8>,
    constraints: &NameConstraints,
    now: OffsetDateTime,
) -> Result<CaMaterialCert, PkiError> {
    let mut dn = DistinguishedName::new();
    for (short, value) in &csr.subject_attrs {
        let t = match short.as_str() {
            "CN" => DnType::CommonName,
            "C" => DnType::CountryName,
            "L" => DnType::LocalityName,
            "ST" => DnType::StateOrProvinceName,
            "O" => DnType::OrganizationName,
            "OU" => DnType::OrganizationalUnitName,
            _ => continue,
        };
        dn.push(t, value.as_str());
    }
    if csr.common_name.is_empty() {
        return Err(PkiError::IntermediateWithoutCommonName);
    }
    let mut params = ca_params(dn, ttl, path_len, now);
    let parent_not_after = parent.not_after()?;
    if params.not_after > parent_not_after {
        params.not_after = parent_not_after;
    }
    params.use_authority_key_identifier_extension = true;
    parent.urls.stamp(&mut params);
    constraints.stamp(&mut params)?;
    let spki = rcgen::SubjectPublicKeyInfo::from_der(&csr.public_key_der).map_err(|e| {
        PkiError::CsrPublicKeyUnusable {
            detail: e.to_string(),
        }
    })?;
    let cert = params.signed_by(&spki, &parent.issuer()?)?;
    Ok(CaMaterialCert {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
    })
}

/// A signed CA certificate without its key (the key stays with whoever made the CSR).
#[derive(Debug, Clone)]
pub struct CaMaterialCert {
    /// DER.
    pub cert_der: Vec<u8>,
    /// PEM.
    pub cert_pem: String,
}

/// Step 3 of Vault's flow: accept a signed certificate for a key generated in step 1, after
/// checking that it is a CA certificate for that very key.
pub fn set_signed(cert_pem: &str, key: PrivateKey) -> Result<CaMaterial, PkiError> {
    let ders = cert::pem_certs(cert_pem.as_bytes())?;
    let der = ders[0].clone();
    let facts = cert::facts(&der)?;
    if !facts.is_ca {
        return Err(PkiError::NotACa {
            subject: facts.subject,
        });
    }
    check_key_matches(&der, &key)?;
    Ok(CaMaterial {
        cert_pem: cert::to_pem(&der),
        cert_der: der,
        key,
    })
}

/// Checks that a certificate carries the public half of `key`.
pub fn check_key_matches(cert_der: &[u8], key: &PrivateKey) -> Result<(), PkiError> {
    use x509_parser::prelude::FromDer;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(cert_der).map_err(|e| {
        PkiError::UnreadableCertificate {
            detail: e.to_string(),
        }
    })?;
    if c.public_key().raw != key.public_key_der().as_slice() {
        return Err(PkiError::KeyMismatch {
            subject: cert::dn_string(c.subject()),
        });
    }
    Ok(())
}

/// Creates an intermediate signed by `parent` in one step.
pub fn generate_intermediate(
    parent: &SigningCa<'_>,
    req: &RootRequest,
    now: OffsetDateTime,
) -> Result<CaMaterial, PkiError> {
    let (csr_pem, key) = generate_intermediate_csr(req)?;
    let csr = crate::csr::parse(csr_pem.as_bytes())?;
    let signed = sign_intermediate_constrained(
        parent,
        &csr,
        req.ttl,
        req.path_len,
        &req.name_constraints,
        now,
    )?;
    set_signed(&signed.cert_pem, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_intermediates_have_ca_profiles() {
        let now = OffsetDateTime::now_utc();
        let root = generate_root(
            &RootRequest {
                common_name: "Local Root CA".into(),
                ..RootRequest::default()
            },
            now,
        )
        .unwrap();
        let f = cert::facts(&root.cert_der).unwrap();
        assert!(f.is_ca && f.self_issued);
        assert_eq!(f.key_usage, ["keyCertSign", "cRLSign"]);
        assert!(f.subject_key_id.is_some());
        let urls = Urls {
            issuing_certificates: vec!["http://127.0.0.1:8200/v1/pki/ca".into()],
            crl_distribution_points: vec!["http://127.0.0.1:8200/v1/pki/crl".into()],
            ocsp_servers: vec![],
        };
        let parent = SigningCa {
            cert_der: &root.cert_der,
            key: &root.key,
            urls: &urls,
        };
        let alice = generate_intermediate(
            &parent,
            &RootRequest {
                common_name: "Alice Intermediate Authority".into(),
                key_type: KeyType::EcP384,
                ttl: Duration::from_secs(100 * 87_600 * 3600),
                ..RootRequest::default()
            },
            now,
        )
        .unwrap();
        let fa = cert::facts(&alice.cert_der).unwrap();
        assert_eq!(fa.issuer, "CN=Local Root CA");
        assert_eq!(fa.authority_key_id, f.subject_key_id);
        assert_eq!(fa.not_after, f.not_after, "capped at the parent's notAfter");
        assert_eq!(fa.crl_urls, urls.crl_distribution_points);
        assert_eq!(fa.issuing_urls, urls.issuing_certificates);
    }

    #[test]
    fn set_signed_refuses_a_foreign_key() {
        let now = OffsetDateTime::now_utc();
        let req = RootRequest {
            common_name: "X".into(),
            ..RootRequest::default()
        };
        let root = generate_root(&req, now).unwrap();
        let other = KeyType::EcP256.generate().unwrap();
        let err = set_signed(&root.cert_pem, other).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }
}
