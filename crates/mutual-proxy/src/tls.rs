//! The TLS side of a listener: its certificate, CAs and CRLs loaded from files, a rustls
//! server configuration per connection (ALPN `h2` and `http/1.1`, the handshake policy of the
//! name the client asked for), and client certificates verified by `mutual_pki::verify`, the
//! same checks as `mutual-tls` and `openssl verify`.

use std::sync::{Arc, Mutex};

use mutual_pki::diagnosis::{Diagnosis, Purpose};
use mutual_pki::verify::{verify, VerifyInput};
use mutual_tls::load::{crls_from_files, provider};
use mutual_tls::{Identity, LoadError, PeerIdentity, Policy, Refusal, TrustStore};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;

use crate::config::ListenerConfig;

/// A listener's certificate, CAs and CRLs, loaded; swapped whole on reload.
#[derive(Debug)]
pub struct TlsMaterial {
    /// Our chain and key.
    pub identity: Identity,
    /// CAs that callers must chain to.
    pub trust: TrustStore,
    /// CRLs (DER).
    pub crls: Vec<Vec<u8>>,
    /// The first URI SAN of our certificate: XFCC's `By`.
    pub by: Option<String>,
    /// Seconds since the epoch when our certificate expires.
    pub not_after: i64,
    hints: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl TlsMaterial {
    /// Reads the listener's files.
    pub fn load(l: &ListenerConfig) -> Result<TlsMaterial, LoadError> {
        let identity = Identity::from_files(&l.cert, &l.key)?;
        let trust = TrustStore::from_file(&l.ca)?;
        let crls = crls_from_files(&l.crls)?;
        let facts = mutual_pki::cert::facts(&identity.chain[0]).map_err(|e| LoadError::Invalid {
            what: "--cert",
            path: l.cert.clone(),
            reason: e.to_string(),
        })?;
        Ok(TlsMaterial {
            by: facts.uris.first().cloned(),
            not_after: facts.not_after.unix_timestamp(),
            hints: trust.roots.subjects(),
            identity,
            trust,
            crls,
            provider: provider(),
        })
    }

    /// The configuration for one connection: `policy` is enforced in the handshake when given,
    /// and the outcome lands in `slot`.
    pub fn config(
        self: &Arc<Self>,
        policy: Option<Policy>,
        slot: Arc<Mutex<Slot>>,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let verifier = Arc::new(Verifier {
            material: Arc::clone(self),
            policy,
            slot,
        });
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                (*self.identity.certified).clone(),
            )));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // No resumption: every connection proves its certificate against the current CAs,
        // CRLs and policy.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }
}

/// What the verifier of one connection found.
#[derive(Debug, Default)]
pub struct Slot {
    /// The verified caller.
    pub peer: Option<PeerIdentity>,
    /// Its chain (DER), for RFC 9440 headers.
    pub chain: Vec<Vec<u8>>,
    /// Why it was refused.
    pub refusal: Option<Refusal>,
}

#[derive(Debug)]
struct Verifier {
    material: Arc<TlsMaterial>,
    policy: Option<Policy>,
    slot: Arc<Mutex<Slot>>,
}

fn check(m: &TlsMaterial, policy: Option<&Policy>, chain: &[Vec<u8>], now: OffsetDateTime) -> Result<PeerIdentity, Refusal> {
    let (subject, issuer) = mutual_pki::cert::facts(&chain[0])
        .map(|f| (f.subject, f.issuer))
        .unwrap_or_else(|_| ("<unreadable>".into(), "<unreadable>".into()));
    let input = VerifyInput {
        chain,
        trusted: &m.trust.anchors,
        purpose: Some(Purpose::Client),
        name: None,
        crls: &m.crls,
        now,
    };
    if let Err(diagnosis) = verify(&input) {
        return Err(Refusal::Certificate {
            subject,
            issuer,
            diagnosis,
        });
    }
    let peer = PeerIdentity::from_chain(chain).map_err(|e| Refusal::Certificate {
        subject,
        issuer,
        diagnosis: Diagnosis::CertificateUnparsable { detail: e.0 },
    })?;
    if let Some(p) = policy {
        let peer = Arc::new(peer);
        p.authorize(&peer).map_err(Refusal::NotAllowed)?;
        return Ok(Arc::unwrap_or_clone(peer));
    }
    Ok(peer)
}

impl ClientCertVerifier for Verifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.material.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain: Vec<Vec<u8>> = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.as_ref().to_vec())
            .collect();
        let now = OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
            .unwrap_or_else(|_| OffsetDateTime::now_utc());
        let result = check(&self.material, self.policy.as_ref(), &chain, now);
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(peer) => {
                slot.peer = Some(peer);
                slot.chain = chain;
                Ok(ClientCertVerified::assertion())
            }
            Err(refusal) => {
                let err = refusal.to_rustls();
                slot.refusal = Some(refusal);
                Err(err)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.material.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.material.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.material
            .provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
