//! The rustls verifiers: client certificates checked by a [`ClientCheck`] (by default
//! `mutual_pki::verify`: OpenSSL's checks in OpenSSL's order, then webpki's), server
//! certificates likewise, and a per-connection slot where the caller or the reason of a
//! refusal waits for the code that logs or explains it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mutual_pki::diagnosis::{Diagnosis, Purpose};
use mutual_pki::verify::{verify, VerifyInput};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;

use crate::identity::PeerIdentity;
use crate::load::TrustStore;
use crate::policy::Policy;
use crate::refusal::Refusal;

/// The three signature methods that rustls asks of every verifier, client or server: each
/// checks with the algorithms of `self.provider`. One definition for both verifiers, since a
/// trait's methods cannot be shared through a default without a second trait. The optional
/// argument runs (with `self`) after a TLS 1.3 handshake signature passed.
macro_rules! handshake_signatures_by_provider {
    () => {
        handshake_signatures_by_provider!(|_: &Self| {});
    };
    ($after_tls13:expr) => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let valid = rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )?;
            ($after_tls13)(self);
            Ok(valid)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

pub(crate) fn to_time(now: UnixTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
}

fn chain_of(end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> Vec<Vec<u8>> {
    std::iter::once(end_entity)
        .chain(intermediates)
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// The check of a server built from files ([`crate::ServerTls`], `mutual server`): a chain
/// verified against CAs and CRLs, then, when given, the handshake policy.
#[derive(Debug)]
pub struct TrustCheck {
    /// The CAs a client must chain to.
    pub trust: TrustStore,
    /// CRLs (DER); when any is given, every certificate of the chain must be covered.
    pub crls: Vec<Vec<u8>>,
    /// Who may connect at all, when the refusal is at the handshake.
    pub handshake_policy: Option<Arc<Policy>>,
    hints: Vec<DistinguishedName>,
}

impl TrustCheck {
    /// The check for these CAs, CRLs and handshake policy.
    pub fn new(
        trust: TrustStore,
        crls: Vec<Vec<u8>>,
        handshake_policy: Option<Arc<Policy>>,
    ) -> TrustCheck {
        let hints = trust.roots.subjects();
        TrustCheck {
            trust,
            crls,
            handshake_policy,
            hints,
        }
    }
}

impl ClientCheck for TrustCheck {
    fn hints(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn asked_for(&self) -> Vec<String> {
        self.trust.subjects.clone()
    }

    fn check(&self, chain: &[Vec<u8>], now: OffsetDateTime) -> Result<PeerIdentity, Refusal> {
        let peer = verify_client_chain(&self.trust, &self.crls, chain, now)?;
        if let Some(policy) = &self.handshake_policy {
            let peer = Arc::new(peer);
            policy.authorize(&peer).map_err(Refusal::NotAllowed)?;
            return Ok(Arc::unwrap_or_clone(peer));
        }
        Ok(peer)
    }
}

/// Verifies a client's chain (leaf first, DER) against `trust` and `crls` as every mutual
/// server does — `mutual_pki::verify` for a client purpose, OpenSSL's checks in OpenSSL's
/// order then webpki's — and reads the caller's identity from it. The refusal names the
/// presented subject and issuer and the first failed check. No policy is applied.
#[allow(clippy::result_large_err)] // a refusal is rare and carries its whole reason
pub fn verify_client_chain(
    trust: &TrustStore,
    crls: &[Vec<u8>],
    chain: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<PeerIdentity, Refusal> {
    let (subject, issuer) = chain
        .first()
        .and_then(|c| mutual_pki::cert::facts(c).ok())
        .map(|f| (f.subject, f.issuer))
        .unwrap_or_else(|| ("<unreadable>".into(), "<unreadable>".into()));
    let input = VerifyInput {
        chain,
        trusted: &trust.anchors,
        purpose: Some(Purpose::Client),
        name: None,
        crls,
        now,
    };
    if let Err(diagnosis) = verify(&input) {
        return Err(Refusal::Certificate {
            subject,
            issuer,
            diagnosis,
        });
    }
    PeerIdentity::from_chain(chain).map_err(|e| Refusal::Certificate {
        subject,
        issuer,
        diagnosis: Diagnosis::CertificateUnparsable { detail: e.0 },
    })
}

/// A server's decision on a client's chain, asked in a full handshake and again for every
/// resumed session (see [`crate::accept`]). It must be a pure function of the chain, the time
/// and the server's current material: a resumed session is admitted on its word alone.
pub trait ClientCheck: Send + Sync + std::fmt::Debug {
    /// The CAs named in the CertificateRequest.
    fn hints(&self) -> &[DistinguishedName];
    /// The same CAs as text, for the refusal of a client that sent no certificate.
    fn asked_for(&self) -> Vec<String> {
        self.hints()
            .iter()
            .map(|d| crate::explain::dn_from_der(d.as_ref()))
            .collect()
    }
    /// The verified caller of a chain (leaf first, DER) at `now`, or why it is refused.
    #[allow(clippy::result_large_err)] // a refusal is rare and carries its whole reason
    fn check(&self, chain: &[Vec<u8>], now: OffsetDateTime) -> Result<PeerIdentity, Refusal>;
}

/// What rustls told one connection's verifier and session store, read after the handshake:
/// rustls only carries an alert, the code that logs needs the reason and the caller.
#[derive(Debug, Default)]
pub(crate) struct HandshakeSlot {
    /// The caller the verifier verified in a full handshake, with its chain.
    pub verified: Option<(PeerIdentity, Vec<Vec<u8>>)>,
    /// Why the verifier refused the presented chain.
    pub refusal: Option<Refusal>,
    /// A stored session admitted for resumption: its caller (none without a certificate) and
    /// its chain. rustls may still not resume it (another suite, name or key-exchange mode).
    pub admitted: Option<(Option<PeerIdentity>, Vec<Vec<u8>>)>,
    /// Why a stored session was not admitted: its chain no longer passes the check.
    pub declined: Option<Refusal>,
    /// A CertificateRequest went out, which a resumed handshake never sends: this handshake is
    /// a full one, whatever session was admitted before.
    pub full: bool,
}

/// The rustls client-certificate verifier of one connection: the chain goes to a
/// [`ClientCheck`], the outcome to the connection's [`HandshakeSlot`], the handshake signature
/// to the server's provider.
#[derive(Debug)]
pub(crate) struct ClientVerifier {
    pub check: Arc<dyn ClientCheck>,
    /// Whether a client without a certificate is refused.
    pub mandatory: bool,
    pub provider: Arc<CryptoProvider>,
    pub slot: Arc<Mutex<HandshakeSlot>>,
    /// Set once the client's TLS 1.3 CertificateVerify passed: from then on the only server
    /// write of the handshake is the session ticket, which [`crate::io::ServerIo`] holds.
    pub arm_ticket_hold: Arc<AtomicBool>,
}

impl ClientCertVerifier for ClientVerifier {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // rustls asks for the names only to write a CertificateRequest.
        self.slot.lock().unwrap_or_else(|p| p.into_inner()).full = true;
        self.check.hints()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let chain = chain_of(end_entity, intermediates);
        let result = self.check.check(&chain, to_time(now));
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(peer) => {
                slot.verified = Some((peer, chain));
                Ok(ClientCertVerified::assertion())
            }
            Err(refusal) => {
                let err = refusal.to_rustls();
                slot.refusal = Some(refusal);
                Err(err)
            }
        }
    }

    handshake_signatures_by_provider!(|this: &Self| this
        .arm_ticket_hold
        .store(true, Ordering::Release));
}

/// What the client saw of one connection: the server's chain, the CAs it asked for, and why
/// we refused its certificate, if we did.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// The chain the server presented, leaf first (DER).
    pub server_chain: Vec<Vec<u8>>,
    /// The CAs named in the server's CertificateRequest; `None` when it asked for no
    /// certificate.
    pub asked_for: Option<Vec<String>>,
    /// Why we refused the server's certificate, if we did.
    pub server_refused: Option<Diagnosis>,
}

/// The server-certificate verifier of one client connection. Without a trust store it accepts
/// any certificate (used only by `inspect` and `doctor` to see what a server presents).
#[derive(Debug)]
pub(crate) struct ConnServerVerifier {
    pub trust: Option<TrustStore>,
    pub crls: Vec<Vec<u8>>,
    pub provider: Arc<CryptoProvider>,
    pub observed: Arc<Mutex<Observed>>,
}

impl ServerCertVerifier for ConnServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = chain_of(end_entity, intermediates);
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        observed.server_chain = chain.clone();
        let Some(trust) = &self.trust else {
            return Ok(ServerCertVerified::assertion());
        };
        let name = match server_name {
            ServerName::DnsName(d) => d.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        let input = VerifyInput {
            chain: &chain,
            trusted: &trust.anchors,
            purpose: Some(Purpose::Server),
            name: (!name.is_empty()).then_some(name.as_str()),
            crls: &self.crls,
            now: to_time(now),
        };
        match verify(&input) {
            Ok(_) => Ok(ServerCertVerified::assertion()),
            Err(d) => {
                let err = Refusal::Certificate {
                    subject: String::new(),
                    issuer: String::new(),
                    diagnosis: d.clone(),
                }
                .to_rustls();
                observed.server_refused = Some(d);
                Err(err)
            }
        }
    }

    handshake_signatures_by_provider!();
}

/// The client-certificate resolver of one client connection: records the CAs the server asks
/// for, and always presents our certificate (as curl does), so the server can say why it is
/// refused instead of seeing none.
#[derive(Debug)]
pub(crate) struct RecordingResolver {
    pub certified: Option<Arc<rustls::sign::CertifiedKey>>,
    pub observed: Arc<Mutex<Observed>>,
}

impl rustls::client::ResolvesClientCert for RecordingResolver {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        let names = root_hint_subjects
            .iter()
            .map(|d| crate::explain::dn_from_der(d))
            .collect();
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .asked_for = Some(names);
        self.certified.clone()
    }

    fn has_certs(&self) -> bool {
        true
    }
}
