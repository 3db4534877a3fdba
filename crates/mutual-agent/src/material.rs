//! One generation of material — chain, key, trust bundle — checked once: the chain parses, the
//! key is the leaf's, the bundle holds at least one CA. Built from what the CA returned or
//! from what is on disk; everything downstream (files, ServerTls, ClientTls) takes it whole.

use std::sync::Arc;

use mutual_tls::{Identity, Policy, ServerMaterial, TrustStore};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use crate::files::Pems;
use crate::timing::{seed_of, Validity};

/// A checked certificate chain, its key and the trust bundle.
#[derive(Debug, Clone)]
pub struct Material {
    /// The PEM texts as written to disk.
    pub pems: Pems,
    /// Chain and key as rustls presents them.
    pub identity: Identity,
    /// The trust bundle.
    pub trust: TrustStore,
    /// The leaf's serial, colon hex.
    pub serial: String,
    /// The leaf's subject.
    pub subject: String,
    /// The leaf's validity.
    pub validity: Validity,
}

impl Material {
    /// Checks PEM texts and builds the material; the error is one line saying what is wrong.
    pub fn from_pems(
        pems: Pems,
        received: Option<time::OffsetDateTime>,
    ) -> Result<Material, String> {
        let chain = mutual_pki::cert::pem_certs(pems.cert.as_bytes())
            .map_err(|e| format!("cert.pem: {e}"))?;
        let leaf = chain.first().ok_or("cert.pem: no certificate found")?;
        let facts = mutual_pki::cert::facts(leaf).map_err(|e| format!("cert.pem: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(pems.key.as_bytes())
            .map_err(|_| "key.pem: no private key found in PEM".to_string())?;
        let ders: Vec<CertificateDer<'static>> = chain
            .iter()
            .map(|d| CertificateDer::from(d.clone()))
            .collect();
        let certified = CertifiedKey::from_der(ders, key, &mutual_tls::load::provider()).map_err(
            |e| match e {
                rustls::Error::InconsistentKeys(_) => {
                    "key.pem does not match cert.pem (their public keys differ)".to_string()
                }
                other => format!("key.pem: unusable private key: {other}"),
            },
        )?;
        let anchors =
            mutual_pki::cert::pem_certs(pems.ca.as_bytes()).map_err(|e| format!("ca.pem: {e}"))?;
        let trust = TrustStore::from_ders(anchors).map_err(|e| format!("ca.pem: {e}"))?;
        Ok(Material {
            identity: Identity {
                chain,
                certified: Arc::new(certified),
            },
            trust,
            serial: facts.serial.to_string(),
            subject: facts.subject,
            validity: Validity {
                not_before: facts.not_before,
                not_after: facts.not_after,
                received,
            },
            pems,
        })
    }

    /// Material for [`mutual_tls::ServerTls::swap`]: our chain and key, clients checked
    /// against the trust bundle (and CRLs, and a handshake policy, when given).
    pub fn server_material(&self, crls: Vec<Vec<u8>>, policy: Option<Policy>) -> ServerMaterial {
        ServerMaterial::new(self.identity.clone(), self.trust.clone(), crls, policy)
    }

    /// A seed for the renewal jitter: this certificate on this host.
    pub fn seed(&self, host: &str) -> u64 {
        seed_of(&[self.serial.as_bytes(), host.as_bytes()])
    }
}
