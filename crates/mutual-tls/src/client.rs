//! The client side: a [`ClientTls`] built from files that connects, sends HTTP requests, and
//! explains a refusal — of the server's certificate by us, or of ours by the server, including
//! the TLS 1.3 refusal that only arrives at the first read.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mutual_pki::diagnosis::Diagnosis;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::explain::{is_certificate_alert, CertificateRefused};
use crate::load::{crls_from_files, provider, Identity, LoadError, TrustStore};
use crate::verifier::{ConnServerVerifier, Observed, RecordingResolver};

/// Builds a [`ClientTls`] from files (or an identity already in memory).
#[derive(Debug, Clone, Default)]
pub struct ClientTlsBuilder {
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    identity: Option<Identity>,
    crls: Vec<PathBuf>,
    accept_any_server: bool,
    tls12_only: bool,
    tls13_only: bool,
    alpn: Option<Vec<Vec<u8>>>,
}

impl ClientTlsBuilder {
    /// The CAs the server's certificate must chain to.
    pub fn ca(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(path.into());
        self
    }
    /// Our chain, leaf first.
    pub fn cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.cert = Some(path.into());
        self
    }
    /// Our private key.
    pub fn key(mut self, path: impl Into<PathBuf>) -> Self {
        self.key = Some(path.into());
        self
    }
    /// Our chain and key already in memory (a certificate source's), instead of `cert` and
    /// `key`: a process that renews in memory never writes its key to disk.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }
    /// A CRL for the server's chain; when any is given, every certificate must be covered.
    pub fn crl(mut self, path: impl Into<PathBuf>) -> Self {
        self.crls.push(path.into());
        self
    }
    /// Offer TLS 1.2 only.
    pub fn tls12_only(mut self) -> Self {
        self.tls12_only = true;
        self
    }
    /// Offer TLS 1.3 only.
    pub fn tls13_only(mut self) -> Self {
        self.tls13_only = true;
        self
    }
    /// The ALPN protocols offered, in order of preference (default `http/1.1`): `[b"h2"]` for
    /// an HTTP/2 or gRPC client driven over [`ClientTls::connect`]'s stream. [`ClientTls::get`]
    /// and [`ClientTls::request`] speak HTTP/1.1 whatever this says.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = Some(protocols.iter().map(|p| p.to_vec()).collect());
        self
    }
    // The way in is `dangerous()`, defined beside the other risky switches.
    pub(crate) fn set_accept_any_server(mut self) -> Self {
        self.accept_any_server = true;
        self
    }

    /// Reads the files and builds the client.
    pub fn build(self) -> Result<ClientTls, LoadError> {
        let trust = match (&self.ca, self.accept_any_server) {
            (Some(ca), false) => Some(TrustStore::from_file(ca)?),
            (_, true) => None,
            (None, false) => return Err(LoadError::Config("--ca is required".into())),
        };
        let identity = match (&self.cert, &self.key, self.identity) {
            (Some(c), Some(k), None) => Some(Identity::from_files(c, k)?),
            (None, None, given) => given,
            (Some(_), Some(_), Some(_)) => {
                return Err(LoadError::Config(
                    "an identity in memory and --cert/--key are two identities: give one".into(),
                ))
            }
            _ => {
                return Err(LoadError::Config(
                    "--cert and --key go together: give both or neither".into(),
                ))
            }
        };
        let versions: Vec<&'static rustls::SupportedProtocolVersion> =
            match (self.tls12_only, self.tls13_only) {
                (true, false) => vec![&rustls::version::TLS12],
                (false, true) => vec![&rustls::version::TLS13],
                _ => vec![&rustls::version::TLS13, &rustls::version::TLS12],
            };
        Ok(ClientTls {
            trust,
            identity,
            crls: crls_from_files(&self.crls)?,
            versions,
            alpn: self.alpn.unwrap_or_else(default_alpn),
        })
    }
}

/// An mTLS client configuration. Cheap to share.
#[derive(Debug, Clone)]
pub struct ClientTls {
    trust: Option<TrustStore>,
    identity: Option<Identity>,
    crls: Vec<Vec<u8>>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    alpn: Vec<Vec<u8>>,
}

fn default_alpn() -> Vec<Vec<u8>> {
    vec![b"http/1.1".to_vec()]
}

/// Why a call failed, said so that a human can act on it.
#[derive(Debug)]
pub enum CallError {
    /// The URL is not `https://HOST[:PORT][/PATH]`.
    BadUrl(String),
    /// No TCP connection.
    Connect {
        /// `host:port`.
        addr: String,
        /// The socket error.
        source: io::Error,
    },
    /// We refused the server's certificate.
    ServerCertificate(Box<Diagnosis>),
    /// The server refused our certificate (or our lack of one).
    CertificateRefused(Box<CertificateRefused>),
    /// Another TLS failure.
    Handshake(String),
    /// The HTTP exchange failed after the handshake.
    Http(String),
}

impl CallError {
    /// A stable code for `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::BadUrl(_) => "bad_url",
            CallError::Connect { .. } => "connect",
            CallError::ServerCertificate(d) => d.code(),
            CallError::CertificateRefused(_) => "certificate_refused",
            CallError::Handshake(_) => "handshake",
            CallError::Http(_) => "http",
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::BadUrl(u) => {
                write!(f, "bad URL \"{u}\": expected https://HOST[:PORT][/PATH]")
            }
            CallError::Connect { addr, source } => write!(f, "cannot connect to {addr}: {source}"),
            CallError::ServerCertificate(d) => {
                write!(f, "the server's certificate is not trusted: {d}")
            }
            CallError::CertificateRefused(c) => write!(f, "{c}"),
            CallError::Handshake(d) => write!(f, "TLS handshake failed: {d}"),
            CallError::Http(d) => write!(f, "HTTP exchange failed: {d}"),
        }
    }
}

impl std::error::Error for CallError {}

/// `https://host:port/path` taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or IP address (no brackets).
    pub host: String,
    /// Port (443 by default).
    pub port: u16,
    /// Path and query, `/` by default.
    pub path: String,
}

impl Target {
    /// Parses `https://HOST[:PORT][/PATH]`.
    pub fn parse(url: &str) -> Result<Target, CallError> {
        let bad = || CallError::BadUrl(url.to_string());
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad())?,
            None => 443,
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Target { host, port, path })
    }
}

/// An HTTP answer with what the TLS layer saw.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: http::StatusCode,
    /// Headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The negotiated TLS version (`TLSv1_3`, …).
    pub version: String,
    /// What the handshake showed.
    pub observed: Observed,
}

/// An open mTLS connection and what its handshake showed.
pub struct Connection {
    /// The TLS stream.
    pub stream: tokio_rustls::client::TlsStream<TcpStream>,
    observed: Arc<Mutex<Observed>>,
}

impl Connection {
    /// What the handshake showed: the server's chain, the CAs it asked for.
    pub fn observed(&self) -> Observed {
        self.observed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The stream, for a protocol that other code drives over it (an HTTP/2 or gRPC client),
    /// and what explains a failure of it later: under TLS 1.3 the server refuses our
    /// certificate (or our lack of one) after the handshake, with an alert that arrives at the
    /// first read and that the protocol above reports only as "connection error".
    pub fn into_explained(
        self,
        tls: &ClientTls,
    ) -> (
        RecordingIo<tokio_rustls::client::TlsStream<TcpStream>>,
        Explainer,
    ) {
        let error = Arc::new(Mutex::new(None));
        let io = RecordingIo {
            inner: self.stream,
            error: Arc::clone(&error),
        };
        let explainer = Explainer {
            tls: tls.clone(),
            observed: self.observed,
            error,
        };
        (io, explainer)
    }

    /// The negotiated TLS version.
    pub fn version(&self) -> String {
        self.stream
            .get_ref()
            .1
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default()
    }
}

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl ClientTls {
    /// A builder; give it at least `ca`, and `cert` + `key` to present an identity.
    pub fn builder() -> ClientTlsBuilder {
        ClientTlsBuilder::default()
    }

    /// The client for a CA bundle, a chain and a key.
    pub fn from_files(
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Result<ClientTls, LoadError> {
        ClientTls::builder().ca(ca).cert(cert).key(key).build()
    }

    /// The client for parts already in memory (a certificate source's trust bundle, chain
    /// and key): TLS 1.3 and 1.2, no CRLs.
    pub fn from_parts(trust: TrustStore, identity: Identity) -> ClientTls {
        ClientTls {
            trust: Some(trust),
            identity: Some(identity),
            crls: Vec::new(),
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            alpn: default_alpn(),
        }
    }

    /// Warnings about the CA file.
    pub fn warnings(&self) -> Vec<String> {
        self.trust
            .as_ref()
            .map(|t| t.warnings.clone())
            .unwrap_or_default()
    }

    /// Our identity, if any.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    fn config(&self, observed: Arc<Mutex<Observed>>) -> Result<ClientConfig, CallError> {
        let provider = provider();
        let verifier = Arc::new(ConnServerVerifier {
            trust: self.trust.clone(),
            crls: self.crls.clone(),
            provider: provider.clone(),
            observed: observed.clone(),
        });
        let resolver = Arc::new(RecordingResolver {
            certified: self.identity.as_ref().map(|i| i.certified.clone()),
            observed,
        });
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&self.versions)
            .map_err(|e| CallError::Handshake(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(resolver);
        config.alpn_protocols = self.alpn.clone();
        config.resumption = rustls::client::Resumption::disabled();
        Ok(config)
    }

    /// Connects and completes the handshake. Under TLS 1.3 the server may still refuse our
    /// certificate after this returns: that refusal surfaces at the first read (see
    /// [`ClientTls::get`] and friends, which explain it).
    pub async fn connect(&self, host: &str, port: u16) -> Result<Connection, CallError> {
        self.connect_observed(host, port).await.1
    }

    /// Connects and completes the handshake, and returns what the handshake showed (the
    /// server's chain, the CAs it asked for) even when it failed. For `doctor` and `inspect`.
    pub async fn probe(&self, host: &str, port: u16) -> (Observed, Result<Connection, CallError>) {
        let (observed, result) = self.connect_observed(host, port).await;
        let seen = observed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        (seen, result)
    }

    async fn connect_observed(
        &self,
        host: &str,
        port: u16,
    ) -> (Arc<Mutex<Observed>>, Result<Connection, CallError>) {
        let observed = Arc::new(Mutex::new(Observed::default()));
        let result = self.connect_with(host, port, observed.clone()).await;
        (observed, result)
    }

    async fn connect_with(
        &self,
        host: &str,
        port: u16,
        observed: Arc<Mutex<Observed>>,
    ) -> Result<Connection, CallError> {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(t)) => t,
            Ok(Err(source)) => return Err(CallError::Connect { addr, source }),
            Err(_) => {
                return Err(CallError::Connect {
                    addr,
                    source: io::Error::new(io::ErrorKind::TimedOut, "timed out"),
                })
            }
        };
        let config = self.config(observed.clone())?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| CallError::BadUrl(host.to_string()))?;
        let connect = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp);
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Err(_) => Err(CallError::Handshake(
                "the server did not finish the handshake in time".into(),
            )),
            Ok(Ok(stream)) => Ok(Connection { stream, observed }),
            Ok(Err(e)) => Err(self.classify(&e, &observed)),
        }
    }

    /// Turns an IO error of the handshake or of the first exchange into the explanation.
    fn classify(&self, err: &io::Error, observed: &Arc<Mutex<Observed>>) -> CallError {
        let seen = observed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(d) = seen.server_refused {
            return CallError::ServerCertificate(Box::new(d));
        }
        let rustls_err = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>());
        match rustls_err {
            Some(rustls::Error::AlertReceived(alert))
                if seen.asked_for.is_some() && is_certificate_alert(*alert) =>
            {
                let sent = self
                    .identity
                    .as_ref()
                    .map(|i| i.chain.clone())
                    .unwrap_or_default();
                CallError::CertificateRefused(Box::new(CertificateRefused::new(
                    *alert,
                    &sent,
                    seen.asked_for,
                    OffsetDateTime::now_utc(),
                )))
            }
            Some(e) => CallError::Handshake(e.to_string()),
            None => CallError::Handshake(err.to_string()),
        }
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Reply, CallError> {
        self.request(url, http::Method::GET, &[], Bytes::new())
            .await
    }

    /// Sends one HTTP/1.1 request over a new connection and reads the whole answer.
    pub async fn request(
        &self,
        url: &str,
        method: http::Method,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<Reply, CallError> {
        let target = Target::parse(url)?;
        let conn = self.connect(&target.host, target.port).await?;
        let version = conn.version();
        let observed = conn.observed.clone();
        let (io, explainer) = conn.into_explained(self);
        let late = |e: &dyn fmt::Display| {
            explainer
                .explain()
                .unwrap_or_else(|| CallError::Http(e.to_string()))
        };
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
                .await
                .map_err(|e| late(&e))?;
        let driver = tokio::spawn(connection);
        let host_header = if target.port == 443 {
            target.host.clone()
        } else {
            format!("{}:{}", target.host, target.port)
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(&target.path)
            .header(http::header::HOST, host_header);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| CallError::Http(e.to_string()))?;
        let response = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                let _ = driver.await;
                return Err(late(&e));
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| late(&e))?.to_bytes();
        drop(sender);
        driver.abort();
        let observed = observed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(Reply {
            status: parts.status,
            headers: parts.headers,
            body,
            version,
            observed,
        })
    }
}

/// Explains the failure of a connection handed to other code with
/// [`Connection::into_explained`].
#[derive(Debug, Clone)]
pub struct Explainer {
    tls: ClientTls,
    observed: Arc<Mutex<Observed>>,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl Explainer {
    /// Why the connection failed, as its TLS layer saw it: the server refused our certificate
    /// ([`CallError::CertificateRefused`], with the CAs it asked for), or another TLS or IO
    /// error; `None` while its stream has seen no error (a failure of the protocol's own).
    pub fn explain(&self) -> Option<CallError> {
        let recorded = self.error.lock().unwrap_or_else(|p| p.into_inner());
        recorded
            .as_ref()
            .map(|err| self.tls.classify(err, &self.observed))
    }
}

/// A stream that remembers its first IO error, so that a TLS alert that hyper reports as
/// "connection closed" can still be explained (by [`Explainer::explain`]).
pub struct RecordingIo<T> {
    inner: T,
    error: Arc<Mutex<Option<io::Error>>>,
}

impl<T> RecordingIo<T> {
    fn record<R>(&self, r: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        if let Poll::Ready(Err(e)) = &r {
            let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                let copy = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(re) => io::Error::new(e.kind(), re.clone()),
                    None => io::Error::new(e.kind(), e.to_string()),
                };
                *slot = Some(copy);
            }
        }
        r
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for RecordingIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.record(r)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for RecordingIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.record(r)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.record(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let t = Target::parse("https://localhost:3000/?name=Alice").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("localhost", 3000, "/?name=Alice")
        );
        let t = Target::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("::1", 8443, "/")
        );
        let t = Target::parse("https://example.com?x=1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (443, "/?x=1"));
        assert!(Target::parse("http://x").is_err());
        assert!(Target::parse("https://x:notaport/").is_err());
    }

    #[test]
    fn an_identity_comes_from_files_or_memory_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let req = mutual_pki::ca::RootRequest {
            common_name: "Builder Root".into(),
            ..Default::default()
        };
        let root = mutual_pki::ca::generate_root(&req, time::OffsetDateTime::now_utc()).unwrap();
        let (ca, cert, key) = (
            dir.path().join("ca.pem"),
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
        );
        std::fs::write(&ca, &root.cert_pem).unwrap();
        std::fs::write(&cert, &root.cert_pem).unwrap();
        std::fs::write(&key, root.key.to_pem().as_bytes()).unwrap();
        let held = Identity::from_files(&cert, &key).unwrap();
        // (cert file, key file, identity in memory) -> the identity presented, or the error's start
        let cases: [(bool, bool, bool, Result<bool, &str>); 6] = [
            (false, false, false, Ok(false)),
            (true, true, false, Ok(true)),
            (false, false, true, Ok(true)),
            (
                true,
                true,
                true,
                Err("an identity in memory and --cert/--key"),
            ),
            (true, false, true, Err("--cert and --key go together")),
            (false, true, false, Err("--cert and --key go together")),
        ];
        for (with_cert, with_key, in_memory, want) in cases {
            let mut b = ClientTls::builder().ca(&ca);
            if with_cert {
                b = b.cert(&cert);
            }
            if with_key {
                b = b.key(&key);
            }
            if in_memory {
                b = b.identity(held.clone());
            }
            let case = (with_cert, with_key, in_memory);
            match (b.build(), want) {
                (Ok(c), Ok(present)) => {
                    assert_eq!(c.identity().is_some(), present, "{case:?}");
                    if let Some(id) = c.identity() {
                        assert_eq!(id.chain, held.chain, "{case:?}");
                    }
                }
                (Err(e), Err(start)) => {
                    assert!(e.to_string().starts_with(start), "{case:?}: {e}")
                }
                (got, want) => panic!("{case:?}: got {:?}, want {want:?}", got.map(|_| ())),
            }
        }
    }
}
