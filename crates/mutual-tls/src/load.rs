//! Reading certificates, keys, CA bundles and CRLs from files into what rustls needs. Every
//! error names the file and the flag it came from, on one line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// A file could not be used: which one, for what, and why.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("reading {what} {path}: {source}")]
    Read {
        /// What the file is for (`--cert`, `--ca`, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file was read but does not hold what it should.
    #[error("reading {what} {path}: {reason}")]
    Invalid {
        /// What the file is for.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The private key is not the key of the certificate.
    #[error("the key {key} does not match the certificate {cert} (their public keys differ)")]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The CA file was read but its certificates cannot all be trust anchors.
    #[error("reading --ca {path}: {source}")]
    Trust {
        /// The CA file.
        path: PathBuf,
        /// Which certificate, and why (boxed: the rustls error inside is large).
        source: Box<TrustError>,
    },
    /// A configuration that cannot be built (no CA given, bad matcher, …).
    #[error("{0}")]
    Config(String),
}

/// Why a set of CA certificates cannot be a [`TrustStore`]: which certificate, and why.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Not one certificate.
    #[error("no certificate found")]
    Empty,
    /// A certificate that does not parse.
    #[error("certificate {number}: {source}")]
    Unreadable {
        /// Its position, counted from 1 as a reader of the file counts.
        number: usize,
        /// Why it does not parse.
        source: mutual_pki::PkiError,
    },
    /// A certificate that rustls refuses as a trust anchor.
    #[error("certificate {number} ({subject}): {source}")]
    NotAnAnchor {
        /// Its position, counted from 1.
        number: usize,
        /// Its subject.
        subject: String,
        /// Why rustls refuses it.
        source: rustls::Error,
    },
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn invalid(path: &Path, what: &'static str, reason: impl Into<String>) -> LoadError {
    LoadError::Invalid {
        what,
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The crypto provider mutual uses: aws-lc-rs, with its default (strict, AEAD-only) suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Our own certificate chain and key, ready to present.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The chain, leaf first, as DER.
    pub chain: Vec<Vec<u8>>,
    /// The key and chain as rustls uses them.
    pub certified: Arc<CertifiedKey>,
}

impl Identity {
    /// Reads a chain (`CN.crt`: leaf then its issuing CAs) and its key (PKCS#8, PKCS#1 or SEC1
    /// PEM), and checks that the key belongs to the leaf.
    pub fn from_files(cert: &Path, key: &Path) -> Result<Identity, LoadError> {
        let chain = mutual_pki::cert::certs_from_bytes(&read(cert, "--cert")?)
            .map_err(|e| invalid(cert, "--cert", e.to_string()))?;
        let key_bytes = read(key, "--key")?;
        let key_der = {
            use rustls_pki_types::pem::PemObject;
            PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|_| {
                invalid(
                    key,
                    "--key",
                    "no private key found in PEM (PKCS#8, PKCS#1 or SEC1)",
                )
            })?
        };
        let ders: Vec<CertificateDer<'static>> = chain
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect();
        let certified =
            CertifiedKey::from_der(ders, key_der, &provider()).map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => LoadError::KeyMismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                },
                other => invalid(key, "--key", format!("unusable private key: {other}")),
            })?;
        Ok(Identity {
            chain,
            certified: Arc::new(certified),
        })
    }

    /// The leaf's subject, for messages.
    pub fn subject(&self) -> String {
        mutual_pki::cert::facts(&self.chain[0])
            .map(|f| f.subject)
            .unwrap_or_default()
    }
}

/// The CAs we trust: every certificate of the file is a trust anchor (an intermediate alone
/// is one too, as Go and nginx users expect).
#[derive(Debug, Clone)]
pub struct TrustStore {
    /// The CA certificates, DER.
    pub anchors: Vec<Vec<u8>>,
    /// Their subjects, for messages and the CertificateRequest.
    pub subjects: Vec<String>,
    /// The same as a rustls root store.
    pub roots: Arc<RootCertStore>,
    /// Warnings about the file: a CA together with its own issuer widens the trust.
    pub warnings: Vec<String>,
}

impl TrustStore {
    /// Reads a CA bundle (PEM, or one DER certificate).
    pub fn from_file(path: &Path) -> Result<TrustStore, LoadError> {
        let bytes = read(path, "--ca")?;
        let anchors = mutual_pki::cert::certs_from_bytes(&bytes)
            .map_err(|e| invalid(path, "--ca", e.to_string()))?;
        TrustStore::from_ders(anchors).map_err(|source| LoadError::Trust {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Builds a trust store from DER certificates.
    pub fn from_ders(anchors: Vec<Vec<u8>>) -> Result<TrustStore, TrustError> {
        if anchors.is_empty() {
            return Err(TrustError::Empty);
        }
        let mut roots = RootCertStore::empty();
        let mut subjects = Vec::new();
        for (i, der) in anchors.iter().enumerate() {
            let number = i + 1;
            let facts = mutual_pki::cert::facts(der)
                .map_err(|source| TrustError::Unreadable { number, source })?;
            if let Err(source) = roots.add(CertificateDer::from(der.clone())) {
                return Err(TrustError::NotAnAnchor {
                    number,
                    subject: facts.subject,
                    source,
                });
            }
            subjects.push(facts.subject);
        }
        let warnings = mutual_pki::trust::wide_trust_warnings(&anchors);
        for w in &warnings {
            tracing::warn!(warning = %w, "wide trust file");
        }
        Ok(TrustStore {
            anchors,
            subjects,
            roots: Arc::new(roots),
            warnings,
        })
    }
}

/// Reads CRL files (PEM `X509 CRL` blocks, or one DER CRL each).
pub fn crls_from_files(paths: &[PathBuf]) -> Result<Vec<Vec<u8>>, LoadError> {
    let mut out = Vec::new();
    for path in paths {
        let bytes = read(path, "--crl")?;
        if bytes.first() == Some(&0x30) {
            check_crl(path, &bytes)?;
            out.push(bytes);
            continue;
        }
        let blocks = pem::parse_many(&bytes).map_err(|e| invalid(path, "--crl", e.to_string()))?;
        let before = out.len();
        for b in blocks.into_iter().filter(|b| b.tag() == "X509 CRL") {
            check_crl(path, b.contents())?;
            out.push(b.into_contents());
        }
        if out.len() == before {
            return Err(invalid(path, "--crl", "no X509 CRL found"));
        }
    }
    Ok(out)
}

fn check_crl(path: &Path, der: &[u8]) -> Result<(), LoadError> {
    webpki::OwnedCertRevocationList::from_der(der)
        .map(|_| ())
        .map_err(|e| invalid(path, "--crl", format!("unreadable CRL: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(cn: &str) -> Vec<u8> {
        let req = mutual_pki::ca::RootRequest {
            common_name: cn.into(),
            ..Default::default()
        };
        mutual_pki::ca::generate_root(&req, time::OffsetDateTime::now_utc())
            .unwrap()
            .cert_der
    }

    #[test]
    fn a_trust_store_names_the_certificate_it_cannot_use() {
        let good = root("Local Root CA");
        let junk = vec![0x30, 0x03, 0x02, 0x01, 0x01];
        // (anchors, Ok(subjects) or the start of the error's Display)
        type Case = (Vec<Vec<u8>>, Result<Vec<&'static str>, &'static str>);
        let cases: Vec<Case> = vec![
            (vec![], Err("no certificate found")),
            (vec![good.clone()], Ok(vec!["CN=Local Root CA"])),
            (
                vec![good.clone(), junk.clone()],
                Err("certificate 2: unreadable certificate: "),
            ),
            (
                vec![junk.clone()],
                Err("certificate 1: unreadable certificate: "),
            ),
        ];
        for (anchors, want) in cases {
            let n = anchors.len();
            match (TrustStore::from_ders(anchors), want) {
                (Ok(t), Ok(subjects)) => assert_eq!(t.subjects, subjects),
                (Err(e), Err(start)) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with(start), "{n} anchors: {msg:?}");
                }
                (got, want) => panic!("{n} anchors: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn a_ca_file_error_names_the_flag_the_file_and_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        let pem = mutual_pki::cert::to_pem(&root("Local Root CA"))
            + &mutual_pki::cert::to_pem(&[0x30, 0x03, 0x02, 0x01, 0x01]);
        std::fs::write(&path, pem).unwrap();
        let err = TrustStore::from_file(&path).unwrap_err();
        assert!(
            matches!(&err, LoadError::Trust { source, .. }
                if matches!(**source, TrustError::Unreadable { number: 2, .. })),
            "{err:?}"
        );
        let want = format!(
            "reading --ca {}: certificate 2: unreadable certificate: ",
            path.display()
        );
        assert!(err.to_string().starts_with(&want), "{err}");
    }
}
