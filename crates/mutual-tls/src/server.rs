//! The server side: a [`ServerTls`] built from files, whose certificate, CAs, CRLs and
//! handshake policy can be swapped while it runs; accepting through the one handshake of
//! [`crate::accept`] (time limit, one log line per refusal, resumption re-checked), with a
//! bound on concurrent handshakes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::accept::{Acceptor, ClientAuth, Terms};
use crate::identity::PeerIdentity;
use crate::load::{crls_from_files, Identity, LoadError, TrustStore};
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::verifier::{ClientCheck, TrustCheck};

/// The material a server presents and checks with; swapped whole on reload.
#[derive(Debug)]
pub struct ServerMaterial {
    identity: Identity,
    checker: Arc<TrustCheck>,
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
            checker: Arc::new(TrustCheck::new(trust, crls, handshake_policy.map(Arc::new))),
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
        Ok(self.build_with(material))
    }

    /// Builds the server on material from memory (a certificate source such as
    /// `mutual_agent::Source`); the builder's files are ignored, so renew with
    /// [`ServerTls::swap`], not [`ServerTls::reload`].
    pub fn build_with(self, material: ServerMaterial) -> ServerTls {
        ServerTls {
            inner: Arc::new(Inner {
                material: ArcSwap::from_pointee(material),
                limiter: Semaphore::new(self.max_handshakes),
                acceptor: Acceptor::new(),
                source: self,
            }),
        }
    }

    /// The policy given to [`ServerTlsBuilder::deny_at_handshake`], for material built
    /// elsewhere.
    pub fn handshake_policy(&self) -> Option<&Policy> {
        self.handshake_policy.as_ref()
    }
}

#[derive(Debug)]
struct Inner {
    material: ArcSwap<ServerMaterial>,
    limiter: Semaphore,
    /// One for the life of the server: its sessions outlive reloads and are checked again.
    acceptor: Acceptor,
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
    pub stream: crate::ServerStream,
    /// Who the client is.
    pub peer: Arc<PeerIdentity>,
    /// Where it connected from.
    pub remote: SocketAddr,
    /// The client's chain as verified, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    /// The server name the client asked for, lower-cased.
    pub sni: Option<String>,
    /// Whether a stored session was resumed (its chain passed the check again).
    pub resumed: bool,
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

    /// Runs the handshake on an accepted TCP connection with the material in use now. A
    /// refusal is logged (one line, with the peer's address, the presented subject and
    /// issuer, and the first failed check) and returned.
    pub async fn accept(&self, tcp: TcpStream) -> Result<Accepted, Refusal> {
        let _permit = self
            .inner
            .limiter
            .acquire()
            .await
            .map_err(|_| Refusal::Handshake {
                detail: "server shutting down".into(),
            })?;
        let source = &self.inner.source;
        let established = self
            .inner
            .acceptor
            .accept(tcp, source.handshake_timeout, |_sni| {
                let m = self.material();
                Terms {
                    certified: Arc::clone(&m.identity.certified),
                    client_auth: ClientAuth::Required(
                        Arc::clone(&m.checker) as Arc<dyn ClientCheck>
                    ),
                    alpn: source.alpn.clone(),
                }
            })
            .await?;
        // Required: the acceptor refuses a client without a verified certificate.
        let Some(peer) = established.peer else {
            return Err(Refusal::Handshake {
                detail: "no verified client certificate".into(),
            });
        };
        Ok(Accepted {
            stream: established.stream,
            peer: Arc::new(peer),
            remote: established.remote,
            chain: established.chain,
            sni: established.sni,
            resumed: established.resumed,
        })
    }
}
