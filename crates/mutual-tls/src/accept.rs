//! The server side of the handshake, written once for every mutual server ([`crate::ServerTls`],
//! the proxy, `mutual server`): read the ClientHello, ask the server for the [`Terms`] of this
//! connection (certificate, who decides on client certificates, ALPN) by the name the client
//! asked for, run the handshake under a time limit, and return the stream with the verified
//! caller, its chain and the name. A refusal is logged here, once, with the same fields
//! everywhere, and the connection is closed so that the alert reaches the client.
//!
//! Resumption is on (it spares a handshake, and the tickets that TLS 1.3 sends right after the
//! client's Finished carry the ACK that a client without TCP_NODELAY waits for before it sends
//! its request); a resumed session passes the same check as a full handshake, see
//! [`crate::sessions`].

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ServerConfig};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::identity::PeerIdentity;
use crate::io::ServerIo;
use crate::refusal::Refusal;
use crate::sessions::Sessions;
use crate::verifier::{ClientCheck, ClientVerifier, HandshakeSlot};

/// A server's TLS stream over TCP.
pub type ServerStream = TlsStream<ServerIo>;

/// How a server asks for client certificates, and what decides on them.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// Ask for a certificate; refuse a client without one that passes the check.
    Required(Arc<dyn ClientCheck>),
    /// Ask for a certificate and refuse one that fails the check, but serve a client that
    /// presents none (`mutual server`: a token is enough, a certificate can log in).
    Optional(Arc<dyn ClientCheck>),
    /// Do not ask.
    Off,
}

impl ClientAuth {
    /// The caller of a chain (leaf first, DER; empty when the client presented none) by this
    /// mode's rules at `now`: `None` for a client without a certificate where that is allowed.
    #[allow(clippy::result_large_err)] // a refusal is rare and carries its whole reason
    pub fn judge(
        &self,
        chain: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> Result<Option<PeerIdentity>, Refusal> {
        match self {
            ClientAuth::Off => Ok(None),
            ClientAuth::Optional(_) if chain.is_empty() => Ok(None),
            ClientAuth::Required(check) if chain.is_empty() => Err(Refusal::NoCertificate {
                asked_for: check.asked_for(),
            }),
            ClientAuth::Required(check) | ClientAuth::Optional(check) => {
                check.check(chain, now).map(Some)
            }
        }
    }
}

/// What one connection is served with, chosen once its ClientHello has arrived.
#[derive(Debug, Clone)]
pub struct Terms {
    /// The chain and key presented.
    pub certified: Arc<CertifiedKey>,
    /// Whether a client certificate is asked for, and what decides on it.
    pub client_auth: ClientAuth,
    /// The ALPN protocols offered, in order of preference (none for raw TCP).
    pub alpn: Vec<Vec<u8>>,
}

/// A connection whose handshake completed, and whose client passed.
#[derive(Debug)]
pub struct Established {
    /// The TLS stream.
    pub stream: ServerStream,
    /// The verified caller: always there with [`ClientAuth::Required`], `None` for a client
    /// that presented no certificate otherwise.
    pub peer: Option<PeerIdentity>,
    /// Its chain as verified, leaf first (DER); empty without a caller.
    pub chain: Vec<Vec<u8>>,
    /// The server name the client asked for, lower-cased.
    pub sni: Option<String>,
    /// Where the client connected from.
    pub remote: SocketAddr,
    /// Whether a stored session was resumed (after its chain passed the check again).
    pub resumed: bool,
}

/// The handshake of one server: its crypto provider and the sessions that all its connections
/// share. Cheap to clone; keep one for the life of the server, so that reloads keep sessions
/// (they are checked again on resumption, not trusted).
#[derive(Debug, Clone)]
pub struct Acceptor {
    provider: Arc<CryptoProvider>,
    sessions: Sessions,
}

impl Default for Acceptor {
    fn default() -> Self {
        Acceptor::new()
    }
}

/// Sessions a server keeps by default.
const SESSIONS: usize = 1024;

impl Acceptor {
    /// An acceptor with aws-lc-rs (AES-128-GCM first) and room for 1024 sessions.
    pub fn new() -> Acceptor {
        Acceptor {
            provider: server_provider(),
            sessions: Sessions::new(SESSIONS),
        }
    }

    /// Runs the handshake of an accepted TCP connection. `hello` gets the server name the
    /// client asked for and returns the terms of this connection. A refusal is logged (one
    /// line with the peer's address, the presented subject and issuer, and the first failed
    /// check), the alert is flushed to the client, and the refusal returned for counting.
    pub async fn accept<F>(
        &self,
        tcp: TcpStream,
        timeout: Duration,
        hello: F,
    ) -> Result<Established, Refusal>
    where
        F: FnOnce(Option<&str>) -> Terms,
    {
        let remote = tcp
            .peer_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        // The server's flights are written whole; nothing is gained by waiting to coalesce.
        let _ = tcp.set_nodelay(true);
        let outcome = match tokio::time::timeout(timeout, self.handshake(tcp, remote, hello)).await
        {
            Ok(o) => o,
            Err(_) => Err((
                Refusal::Timeout {
                    seconds: timeout.as_secs(),
                },
                None,
            )),
        };
        match outcome {
            Ok(established) => Ok(established),
            Err((refusal, tcp)) => {
                log_refusal(remote, &refusal);
                if let Some(tcp) = tcp {
                    linger_close(tcp).await;
                }
                Err(refusal)
            }
        }
    }

    async fn handshake<F>(
        &self,
        tcp: TcpStream,
        remote: SocketAddr,
        hello: F,
    ) -> Result<Established, (Refusal, Option<TcpStream>)>
    where
        F: FnOnce(Option<&str>) -> Terms,
    {
        let arm = Arc::new(AtomicBool::new(false));
        let io = ServerIo::new(tcp, Arc::clone(&arm));
        let mut lazy = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io);
        let start = match (&mut lazy).await {
            Ok(start) => start,
            Err(e) => return Err((handshake_failed(e), lazy.take_io().map(ServerIo::into_tcp))),
        };
        let sni = start
            .client_hello()
            .server_name()
            .map(|s| s.to_ascii_lowercase());
        let terms = hello(sni.as_deref());
        let slot = Arc::new(Mutex::new(HandshakeSlot::default()));
        let auth = terms.client_auth.clone();
        let config = match self.config(terms, &slot, arm) {
            Ok(c) => c,
            Err(e) => return Err((handshake_failed(e), Some(start.io.into_tcp()))),
        };
        match start.into_stream(config).into_fallible().await {
            Ok(mut stream) => {
                send_ticket_unless_answering(&mut stream).await;
                established(stream, sni, remote, &auth, &slot)
            }
            Err((err, io)) => Err((refusal_of(err, &auth, &slot), Some(io.into_tcp()))),
        }
    }

    fn config(
        &self,
        terms: Terms,
        slot: &Arc<Mutex<HandshakeSlot>>,
        arm: Arc<AtomicBool>,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let builder = ServerConfig::builder_with_provider(Arc::clone(&self.provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let builder = match &terms.client_auth {
            ClientAuth::Off => builder.with_no_client_auth(),
            ClientAuth::Required(check) | ClientAuth::Optional(check) => builder
                .with_client_cert_verifier(Arc::new(ClientVerifier {
                    check: Arc::clone(check),
                    mandatory: matches!(terms.client_auth, ClientAuth::Required(_)),
                    provider: Arc::clone(&self.provider),
                    slot: Arc::clone(slot),
                    arm_ticket_hold: arm,
                })),
        };
        let mut config = builder.with_cert_resolver(Arc::new(Presented(terms.certified)));
        config.alpn_protocols = terms.alpn;
        config.ignore_client_order = true;
        config.session_storage = Arc::new(
            self.sessions
                .for_connection(terms.client_auth, Arc::clone(slot)),
        );
        // One ticket, not rustls' default two: one is enough to resume and to carry the ACK
        // that a client without TCP_NODELAY waits for, and each costs a session stored and a
        // record written on every full handshake.
        config.send_tls13_tickets = 1;
        Ok(Arc::new(config))
    }
}

/// Decides where a TLS 1.3 ticket held back by [`ServerIo`] goes: with the first response when
/// the client's request is already here (one write and one segment fewer per connection), at
/// once when it is not, because then the client may be waiting for the acknowledgement the
/// ticket carries (Nagle's algorithm holds a request behind an unacknowledged Finished).
async fn send_ticket_unless_answering(stream: &mut ServerStream) {
    let (io, conn) = stream.get_mut();
    let held = io.held() > 0;
    io.stop_holding();
    if !held {
        return;
    }
    let request_here = conn
        .process_new_packets()
        .map_or(true, |state| state.plaintext_bytes_to_read() > 0)
        || io.peer_sent_more();
    if !request_here {
        let _ = io.send_held().await;
    }
}

/// The caller of a completed handshake: the one the verifier passed in a full handshake, or
/// the one of the resumed session, whose chain passed the check when it was admitted.
#[allow(clippy::result_large_err)] // a refusal is rare and carries its whole reason
fn established(
    stream: ServerStream,
    sni: Option<String>,
    remote: SocketAddr,
    auth: &ClientAuth,
    slot: &Mutex<HandshakeSlot>,
) -> Result<Established, (Refusal, Option<TcpStream>)> {
    let conn = stream.get_ref().1;
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    let presented: Vec<Vec<u8>> = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    let found = {
        let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
        if resumed {
            s.admitted.take()
        } else {
            s.verified.take().map(|(peer, chain)| (Some(peer), chain))
        }
    };
    let (peer, chain) = match found {
        Some((peer, chain)) if chain == presented => (peer, chain),
        // Not what the verifier or the session store saw (a client that presented none in
        // optional mode, or none at all): decide on what rustls holds.
        _ => match auth.judge(&presented, OffsetDateTime::now_utc()) {
            Ok(peer) => (peer, presented),
            Err(r) => return Err((r, Some(stream.into_inner().0.into_tcp()))),
        },
    };
    let chain = if peer.is_some() { chain } else { Vec::new() };
    Ok(Established {
        stream,
        peer,
        chain,
        sni,
        remote,
        resumed,
    })
}

/// The one translation of a failed handshake into a [`Refusal`]: the verifier's reason when
/// it refused the chain; for a client that sent no certificate, why its stored session was
/// not resumed if it offered one, else the CAs that were asked for; else what rustls said.
fn refusal_of(err: std::io::Error, auth: &ClientAuth, slot: &Mutex<HandshakeSlot>) -> Refusal {
    let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = s.refusal.take() {
        return r;
    }
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::NoCertificatesPresented) => match (s.declined.take(), auth) {
            (Some(r), _) => r,
            (None, ClientAuth::Required(c) | ClientAuth::Optional(c)) => Refusal::NoCertificate {
                asked_for: c.asked_for(),
            },
            (None, ClientAuth::Off) => Refusal::NoCertificate { asked_for: vec![] },
        },
        Some(e) => Refusal::Handshake {
            detail: e.to_string(),
        },
        None => Refusal::Handshake {
            detail: err.to_string(),
        },
    }
}

fn handshake_failed(e: impl std::fmt::Display) -> Refusal {
    Refusal::Handshake {
        detail: e.to_string(),
    }
}

/// Presents one chain to every client.
#[derive(Debug)]
struct Presented(Arc<CertifiedKey>);

impl ResolvesServerCert for Presented {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// aws-lc-rs with AES-128-GCM / SHA-256 first (and the server's order, not the client's): as
/// strong for TLS and cheaper than AES-256 / SHA-384, whose SHA-512 core has no CPU
/// instructions on common x86 parts.
fn server_provider() -> Arc<CryptoProvider> {
    let mut p = (*crate::load::provider()).clone();
    p.cipher_suites.sort_by_key(|s| match s.suite() {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        _ => 3,
    });
    Arc::new(p)
}

/// Closes a refused connection so that the alert reaches the client: send FIN, then read what
/// the client still sends (its first request, under TLS 1.3) for a moment, so that closing
/// does not answer it with a reset that would destroy the alert.
async fn linger_close(mut tcp: TcpStream) {
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
}

/// The one log line of a refused handshake.
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
