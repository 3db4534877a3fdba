//! The server side: a [`ServerTls`] built from files, whose certificate, CAs, CRLs and
//! handshake policy can be swapped while it runs; accepting with a handshake timeout, a bound
//! on concurrent handshakes, and one log line per refused handshake.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::server::TlsStream;

use crate::identity::PeerIdentity;
use crate::load::{crls_from_files, provider, Identity, LoadError, TrustStore};
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::verifier::{ClientChecker, ClientVerifier, HandshakeSlot};

/// The material a server presents and checks with; swapped whole on reload.
#[derive(Debug)]
pub struct ServerMaterial {
    identity: Identity,
    checker: Arc<ClientChecker>,
}

impl ServerMaterial {
    /// Builds material from loaded parts.
    pub fn new(
        identity: Identity,
        trust: TrustStore,
        crls: Vec<Vec<u8>>,
        handshake_policy: Option<Policy>,
    ) -> ServerMaterial {
        ServerMaterial {
            identity,
            checker: Arc::new(ClientChecker::new(
                trust,
                crls,
                handshake_policy.map(Arc::new),
                provider(),
            )),
        }
    }

    /// The trust store clients are checked against.
    pub fn trust(&self) -> &TrustStore {
        &self.checker.trust
    }

    /// The server's own identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

/// Builds a [`ServerTls`] from files.
#[derive(Debug, Clone)]
pub struct ServerTlsBuilder {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    crls: Vec<PathBuf>,
    handshake_policy: Option<Policy>,
    handshake_timeout: Duration,
    max_handshakes: usize,
    alpn: Vec<Vec<u8>>,
}

impl Default for ServerTlsBuilder {
    fn default() -> Self {
        ServerTlsBuilder {
            ca: None,
            cert: None,
            key: None,
            crls: vec![],
            handshake_policy: None,
            handshake_timeout: Duration::from_secs(10),
            max_handshakes: 256,
            alpn: vec![b"http/1.1".to_vec()],
        }
    }
}

impl ServerTlsBuilder {
    /// The CA bundle client certificates must chain to (every certificate is an anchor).
    pub fn ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }
    /// The server's chain, leaf first.
    pub fn cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert = Some(path.into());
        self
    }
    /// The server's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub fn key(mut self, path: impl Into<PathBuf>) -> Self {
        self.key = Some(path.into());
        self
    }
    /// A CRL file; when any is given, every certificate of a client's chain must be covered.
    pub fn crl(mut self, path: impl Into<PathBuf>) -> Self {
        self.crls.push(path.into());
        self
    }
    /// Refuse peers that this policy does not allow in the handshake itself.
    pub fn deny_at_handshake(mut self, policy: Policy) -> Self {
        self.handshake_policy = Some(policy);
        self
    }
    /// How long a client may take to finish the handshake (default 10s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }
    /// The ALPN protocols offered, in order of preference (default `http/1.1`; e.g.
    /// `[b"h2", b"http/1.1"]` for a server that speaks HTTP/2 too, none for raw TCP).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }
    /// How many handshakes may run at once (default 256); more wait.
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.max_handshakes = n.max(1);
        self
    }

    fn load(&self) -> Result<ServerMaterial, LoadError> {
        let need = |p: &Option<PathBuf>, flag: &str| {
            p.clone()
                .ok_or_else(|| LoadError::Config(format!("{flag} is required")))
        };
        let identity =
            Identity::from_files(&need(&self.cert, "--cert")?, &need(&self.key, "--key")?)?;
        let trust = TrustStore::from_file(&need(&self.ca, "--ca")?)?;
        let crls = crls_from_files(&self.crls)?;
        Ok(ServerMaterial::new(
            identity,
            trust,
            crls,
            self.handshake_policy.clone(),
        ))
    }

    /// Reads every file and builds the server; each error is one line naming the file.
    pub fn build(self) -> Result<ServerTls, LoadError> {
        let material = self.load()?;
        Ok(ServerTls {
            inner: Arc::new(Inner {
                material: ArcSwap::from_pointee(material),
                limiter: Semaphore::new(self.max_handshakes),
                sessions: ServerSessionMemoryCache::new(1024),
                source: self,
            }),
        })
    }
}

#[derive(Debug)]
struct Inner {
    material: ArcSwap<ServerMaterial>,
    limiter: Semaphore,
    sessions: Arc<dyn StoresServerSessions>,
    source: ServerTlsBuilder,
}

/// An mTLS server configuration that can be reloaded while it serves. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ServerTls {
    inner: Arc<Inner>,
}

/// A connection whose client was verified (and allowed, with `deny_at_handshake`).
#[derive(Debug)]
pub struct Accepted {
    /// The TLS stream.
    pub stream: TlsStream<TcpStream>,
    /// Who the client is.
    pub peer: Arc<PeerIdentity>,
    /// Where it connected from.
    pub remote: SocketAddr,
}

impl ServerTls {
    /// A builder; give it `ca`, `cert` and `key`.
    pub fn builder() -> ServerTlsBuilder {
        ServerTlsBuilder::default()
    }

    /// The server for a CA bundle, a chain and a key.
    pub fn from_files(
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<ServerTls, LoadError> {
        ServerTls::builder().ca(ca).cert(cert).key(key).build()
    }

    /// The material in use now.
    pub fn material(&self) -> Arc<ServerMaterial> {
        self.inner.material.load_full()
    }

    /// Warnings about the CA file (a CA with its own issuer: trust as wide as the issuer).
    pub fn warnings(&self) -> Vec<String> {
        self.material().trust().warnings.clone()
    }

    /// Replaces the material; connections already open keep theirs.
    pub fn swap(&self, material: ServerMaterial) {
        self.inner.material.store(Arc::new(material));
    }

    /// Reads the files again and swaps them in; on error the old material stays, and the
    /// error says why.
    pub fn reload(&self) -> Result<(), LoadError> {
        match self.inner.source.load() {
            Ok(m) => {
                self.swap(m);
                tracing::info!("reloaded certificates, CAs and CRLs");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "reload failed; keeping the previous certificates");
                Err(e)
            }
        }
    }

    fn config(&self, slot: Arc<Mutex<HandshakeSlot>>) -> Result<Arc<ServerConfig>, rustls::Error> {
        let m = self.material();
        let verifier = Arc::new(ClientVerifier {
            check: Arc::clone(&m.checker),
            slot,
        });
        let mut config = ServerConfig::builder_with_provider(m.checker.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
                (*m.identity.certified).clone(),
            )));
        config.session_storage = Arc::clone(&self.inner.sessions);
        config.alpn_protocols = self.inner.source.alpn.clone();
        Ok(Arc::new(config))
    }

    /// Runs the handshake on an accepted TCP connection. A refusal is logged (one line, with
    /// the peer's address, the presented subject and issuer, and the first failed check) and
    /// returned.
    pub async fn accept(&self, tcp: TcpStream) -> Result<Accepted, Refusal> {
        let remote = tcp
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let result = self.handshake(tcp).await;
        if let Err(refusal) = &result {
            log_refusal(remote, refusal);
        }
        result.map(|(stream, peer)| Accepted {
            stream,
            peer: Arc::new(peer),
            remote,
        })
    }

    async fn handshake(
        &self,
        tcp: TcpStream,
    ) -> Result<(TlsStream<TcpStream>, PeerIdentity), Refusal> {
        let timeout = self.inner.source.handshake_timeout;
        let _permit = self
            .inner
            .limiter
            .acquire()
            .await
            .map_err(|_| Refusal::Handshake {
                detail: "server shutting down".into(),
            })?;
        let slot = Arc::new(Mutex::new(HandshakeSlot::default()));
        let config = self
            .config(Arc::clone(&slot))
            .map_err(|e| Refusal::Handshake {
                detail: e.to_string(),
            })?;
        let accept = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .into_fallible();
        let outcome = match tokio::time::timeout(timeout, accept).await {
            Err(_) => {
                return Err(Refusal::Timeout {
                    seconds: timeout.as_secs(),
                })
            }
            Ok(o) => o,
        };
        let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(stream) => {
                let peer = match slot.peer.take() {
                    Some(p) => p,
                    None => {
                        // A resumed session: the chain comes from the session.
                        let chain: Vec<Vec<u8>> = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .unwrap_or_default()
                            .iter()
                            .map(|c| c.as_ref().to_vec())
                            .collect();
                        PeerIdentity::from_chain(&chain).map_err(|e| Refusal::Handshake {
                            detail: e.to_string(),
                        })?
                    }
                };
                Ok((stream, peer))
            }
            Err((err, tcp)) => {
                linger_close(tcp);
                if let Some(r) = slot.refusal.take() {
                    return Err(r);
                }
                let rustls_err = err
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<rustls::Error>())
                    .cloned();
                Err(match rustls_err {
                    Some(rustls::Error::NoCertificatesPresented) => Refusal::NoCertificate {
                        asked_for: self.material().trust().subjects.clone(),
                    },
                    Some(e) => Refusal::Handshake {
                        detail: e.to_string(),
                    },
                    None => Refusal::Handshake {
                        detail: err.to_string(),
                    },
                })
            }
        }
    }
}

/// Closes a refused connection so that the alert reaches the client: send FIN, then read
/// what the client still sends (its first request, under TLS 1.3) for a moment, so that
/// closing does not answer it with a reset that would destroy the alert.
fn linger_close(mut tcp: TcpStream) {
    tokio::spawn(async move {
        let _ = tcp.shutdown().await;
        let mut buf = [0u8; 4096];
        let drain = async {
            let mut total = 0usize;
            while let Ok(n) = tcp.read(&mut buf).await {
                total += n;
                if n == 0 || total > 256 * 1024 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    });
}

fn log_refusal(remote: SocketAddr, refusal: &Refusal) {
    match refusal {
        Refusal::Handshake { .. } | Refusal::Timeout { .. } => tracing::info!(
            peer.addr = %remote,
            reason.code = refusal.code(),
            reason = %refusal,
            "handshake failed"
        ),
        _ => tracing::warn!(
            peer.addr = %remote,
            peer.subject = refusal.subject().unwrap_or("-"),
            peer.issuer = refusal.issuer().unwrap_or("-"),
            reason.code = refusal.code(),
            reason = %refusal,
            "refused client"
        ),
    }
}
