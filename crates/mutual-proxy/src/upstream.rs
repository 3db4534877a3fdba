//! Backends: keep-alive connections per server, a balancer (round-robin or least-requests) and
//! passive health: a server that fails `eject_after` times in a row rests for `eject_for`,
//! unless every server rests, when all are tried again.
//!
//! The connections are kept here rather than in a general client's pool: the balancer has
//! already chosen the server, so a request takes an idle connection of that server off a list
//! (no pool key to build and hash), and its response body puts the connection back when it ends
//! (no task spawned to wait for that). An HTTP/1.1 connection idle for longer than
//! [`IDLE_TIMEOUT`] is closed instead of reused; HTTP/2 (h2c) shares one connection per server.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::config::{Balance, Protocol, UpstreamConfig};

/// How long an HTTP/1.1 connection may sit idle and still be reused (backends commonly close
/// theirs after 60 s or more, so reuse does not race their close).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(55);

/// The body sent to a backend.
pub type UpBody = UnsyncBoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// One backend server and its health.
#[derive(Debug)]
pub struct Server {
    /// `host:port`.
    pub authority: String,
    /// The same, parsed once for the request target of every request sent to it (`None`
    /// when it does not parse: such a request is refused as unusable).
    pub uri_authority: Option<http::uri::Authority>,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    /// Milliseconds after [`Upstream`]'s epoch until which the server rests; 0 when healthy.
    ejected_until: AtomicU64,
    /// Idle HTTP/1.1 connections, the most recently used last: a request takes the warmest,
    /// and the coldest are closed once idle for longer than [`IDLE_TIMEOUT`].
    idle: Mutex<VecDeque<(http1::SendRequest<UpBody>, Instant)>>,
    /// The shared HTTP/2 connection.
    shared: Mutex<Option<http2::SendRequest<UpBody>>>,
    /// Connections opened to it, for the metrics.
    opened: AtomicU64,
}

/// An upstream: its servers and the pool of connections to them.
#[derive(Debug)]
pub struct Upstream {
    /// The configuration it was built from.
    pub config: UpstreamConfig,
    /// Its servers.
    pub servers: Vec<Server>,
    next: AtomicUsize,
    epoch: Instant,
}

/// Why a request got no answer from the backend.
#[derive(Debug)]
pub enum SendError {
    /// No connection: refused, not accepted within the connect timeout, or the name did not
    /// resolve.
    Connect(std::io::Error),
    /// The connection failed, or the exchange on it did (the request body over its limit
    /// among others: see the source).
    Http(hyper::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Connect(e) => write!(f, "tcp connect error: {e}"),
            SendError::Http(e) => e.fmt(f),
        }
    }
}

impl StdError for SendError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            SendError::Connect(_) => None,
            SendError::Http(e) => e.source(),
        }
    }
}

/// A backend's response body that hands its HTTP/1.1 connection back to the server's idle
/// list once it has been read to the end (a body dropped before its end leaves the connection
/// to close: it cannot carry another exchange).
pub struct PooledBody {
    body: Incoming,
    back: Option<(Arc<Upstream>, usize, http1::SendRequest<UpBody>)>,
}

impl fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBody")
            .field("kept", &self.back.is_some())
            .finish()
    }
}

impl PooledBody {
    fn give_back(&mut self) {
        if let Some((up, i, send)) = self.back.take() {
            up.servers[i].checkin(send);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.give_back(),
            Poll::Ready(Some(Err(_))) => self.back = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    fn drop(&mut self) {
        // A body that ended without being polled to its end (no body, or a Content-Length the
        // last frame met) still leaves a reusable connection.
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

/// Runs a backend connection (HTTP/1.1 or HTTP/2) on its own task until it ends.
fn drive<C>(conn: C)
where
    C: std::future::Future<Output = hyper::Result<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "backend connection ended");
        }
    });
}

impl Server {
    fn checkin(&self, send: http1::SendRequest<UpBody>) {
        if send.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while idle
            .front()
            .is_some_and(|(_, since)| now.duration_since(*since) > IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        idle.push_back((send, now));
    }

    /// The most recently used idle connection still open and within [`IDLE_TIMEOUT`].
    fn checkout(&self) -> Option<http1::SendRequest<UpBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((send, since)) = idle.pop_back() {
            if since.elapsed() > IDLE_TIMEOUT {
                // The rest are older still.
                idle.clear();
                return None;
            }
            if !send.is_closed() {
                return Some(send);
            }
        }
        None
    }

    async fn connect(&self, timeout: Duration) -> Result<TokioIo<TcpStream>, SendError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(self.authority.as_str()))
            .await
            .map_err(|_| {
                SendError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no connection within {}s", timeout.as_secs_f32()),
                ))
            })?
            .map_err(SendError::Connect)?;
        let _ = tcp.set_nodelay(true);
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(TokioIo::new(tcp))
    }
}

/// A server chosen for one request; report the outcome with [`Pick::done`].
#[derive(Debug)]
pub struct Pick {
    upstream: Arc<Upstream>,
    index: usize,
}

impl Pick {
    /// The server's `host:port`.
    pub fn authority(&self) -> &str {
        &self.upstream.servers[self.index].authority
    }

    /// The server's index in [`Upstream::servers`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// Records the outcome: `ok` false for a connect failure, a timeout or a 502/503/504.
    pub fn done(self, ok: bool) {
        let up = &self.upstream;
        let s = &up.servers[self.index];
        s.in_flight.fetch_sub(1, Ordering::Relaxed);
        if ok {
            if s.failures.load(Ordering::Relaxed) != 0 {
                s.failures.store(0, Ordering::Relaxed);
                s.ejected_until.store(0, Ordering::Relaxed);
            }
            return;
        }
        let n = s.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= up.config.eject_after {
            let until = up.now_ms() + up.config.eject_for.as_millis() as u64;
            if s.ejected_until.swap(until, Ordering::Relaxed) < up.now_ms() {
                tracing::warn!(upstream = %up.config.name, server = %s.authority, failures = n, "ejecting failing server");
            }
        }
    }
}

impl Upstream {
    /// A new upstream without connections.
    pub fn new(config: UpstreamConfig) -> Upstream {
        Upstream {
            servers: config
                .servers
                .iter()
                .map(|a| Server {
                    authority: a.clone(),
                    uri_authority: a.parse().ok(),
                    in_flight: AtomicUsize::new(0),
                    failures: AtomicU32::new(0),
                    ejected_until: AtomicU64::new(0),
                    idle: Mutex::new(VecDeque::new()),
                    shared: Mutex::new(None),
                    opened: AtomicU64::new(0),
                })
                .collect(),
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            config,
        }
    }

    /// Per server (by `host:port`): the connections opened to it so far, and how many of
    /// them are idle now.
    pub fn connections(&self) -> impl Iterator<Item = (&str, u64, usize)> {
        self.servers.iter().map(|s| {
            let idle = s.idle.lock().unwrap_or_else(|e| e.into_inner()).len();
            (s.authority.as_str(), s.opened.load(Ordering::Relaxed), idle)
        })
    }

    /// Sends `req` to server `index` on a kept connection, or a new one. A kept HTTP/1.1
    /// connection that turns out closed before the request went out is not an error: the
    /// request is sent again on a new connection (once), the way a pooled client retries a
    /// request that a backend's idle close raced.
    pub async fn send(
        self: &Arc<Self>,
        index: usize,
        req: Request<UpBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let server = &self.servers[index];
        if self.config.protocol == Protocol::H2c {
            return self.send_h2(server, req).await;
        }
        let mut req = req;
        let mut kept = server.checkout();
        loop {
            let fresh = kept.is_none();
            let mut send = match kept.take() {
                Some(s) => s,
                None => {
                    let io = server.connect(self.config.connect_timeout).await?;
                    let (send, conn) = http1::Builder::new()
                        .handshake(io)
                        .await
                        .map_err(SendError::Http)?;
                    drive(conn);
                    send
                }
            };
            if !fresh && send.ready().await.is_err() {
                kept = server.checkout();
                continue;
            }
            match send.try_send_request(req).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let back = Some((Arc::clone(self), index, send));
                    return Ok(Response::from_parts(parts, PooledBody { body, back }));
                }
                Err(mut e) => match e.take_message() {
                    Some(again) if !fresh => {
                        req = again;
                        kept = server.checkout();
                    }
                    _ => return Err(SendError::Http(e.into_error())),
                },
            }
        }
    }

    async fn send_h2(
        &self,
        server: &Server,
        req: Request<UpBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let kept = {
            let shared = server.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.as_ref().filter(|s| !s.is_closed()).cloned()
        };
        let mut send = match kept {
            Some(s) => s,
            None => {
                let io = server.connect(self.config.connect_timeout).await?;
                let (send, conn) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(io)
                    .await
                    .map_err(SendError::Http)?;
                drive(conn);
                *server.shared.lock().unwrap_or_else(|e| e.into_inner()) = Some(send.clone());
                send
            }
        };
        send.ready().await.map_err(SendError::Http)?;
        let resp = send.send_request(req).await.map_err(SendError::Http)?;
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(parts, PooledBody { body, back: None }))
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// True when this upstream can be kept across a reload to `other` (same servers and protocol).
    pub fn same_as(&self, other: &UpstreamConfig) -> bool {
        self.config.servers == other.servers && self.config.protocol == other.protocol
    }

    /// Whether a server is in rotation now.
    pub fn healthy(&self, i: usize) -> bool {
        self.servers[i].ejected_until.load(Ordering::Relaxed) <= self.now_ms()
    }

    /// Picks a server for one request. Nothing is allocated, and the clock is read only
    /// while some server rests.
    pub fn pick(self: &Arc<Self>) -> Pick {
        let n = self.servers.len();
        let resting = |i: usize| self.servers[i].ejected_until.load(Ordering::Relaxed);
        let now = (0..n).any(|i| resting(i) != 0).then(|| self.now_ms());
        let in_rotation = |i: usize| now.is_none_or(|t| resting(i) <= t);
        let healthy = (0..n).filter(|&i| in_rotation(i)).count();
        // With every server resting, all are tried again.
        let candidate = |i: &usize| healthy == 0 || in_rotation(*i);
        let candidates = if healthy == 0 { n } else { healthy };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let index = match self.config.balance {
            Balance::RoundRobin => (0..n)
                .filter(candidate)
                .nth(start % candidates.max(1))
                .unwrap_or(0),
            Balance::LeastRequests => (0..n)
                .map(|j| (start + j) % n)
                .filter(candidate)
                .min_by_key(|i| self.servers[*i].in_flight.load(Ordering::Relaxed))
                .unwrap_or(0),
        };
        self.servers[index]
            .in_flight
            .fetch_add(1, Ordering::Relaxed);
        Pick {
            upstream: Arc::clone(self),
            index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(balance: Balance, n: usize) -> Arc<Upstream> {
        Arc::new(Upstream::new(UpstreamConfig {
            name: "u".into(),
            servers: (0..n).map(|i| format!("127.0.0.1:{}", 1000 + i)).collect(),
            balance,
            protocol: Protocol::H1,
            eject_after: 2,
            eject_for: Duration::from_secs(3600),
            connect_timeout: Duration::from_secs(1),
        }))
    }

    #[tokio::test]
    async fn round_robin_and_ejection() {
        let u = up(Balance::RoundRobin, 3);
        let seq: Vec<String> = (0..4)
            .map(|_| {
                let p = u.pick();
                let a = p.authority().to_string();
                p.done(true);
                a
            })
            .collect();
        assert_eq!(
            seq,
            [
                "127.0.0.1:1000",
                "127.0.0.1:1001",
                "127.0.0.1:1002",
                "127.0.0.1:1000"
            ]
        );
        // Two failures in a row eject 1001.
        for _ in 0..2 {
            let p = loop {
                let p = u.pick();
                if p.authority().ends_with("1001") {
                    break p;
                }
                p.done(true);
            };
            p.done(false);
        }
        assert!(!u.healthy(1));
        for _ in 0..10 {
            let p = u.pick();
            assert_ne!(p.authority(), "127.0.0.1:1001");
            p.done(true);
        }
        // With every server ejected, all are tried again.
        let all = up(Balance::RoundRobin, 1);
        all.pick().done(false);
        all.pick().done(false);
        assert!(!all.healthy(0));
        assert_eq!(all.pick().authority(), "127.0.0.1:1000");
    }

    /// A backend on loopback that answers every request on a connection with `body`, closing
    /// the connection after each answer when `close_after` (without saying so, the way a
    /// backend's idle timeout does), and counts the connections it accepted.
    async fn backend(close_after: bool) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    loop {
                        let n = s.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..end + 4);
                            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
                            if s.write_all(answer).await.is_err() || close_after {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    fn upstream_at(addr: &str) -> Arc<Upstream> {
        Arc::new(Upstream::new(UpstreamConfig {
            name: "u".into(),
            servers: vec![addr.to_string()],
            balance: Balance::RoundRobin,
            protocol: Protocol::H1,
            eject_after: 2,
            eject_for: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
        }))
    }

    fn get(addr: &str) -> Request<UpBody> {
        use http_body_util::{BodyExt, Empty};
        Request::builder()
            .uri("/")
            .header(http::header::HOST, addr)
            .body(Empty::new().map_err(|e| match e {}).boxed_unsync())
            .unwrap()
    }

    async fn read_all(resp: Response<PooledBody>) -> Vec<u8> {
        use http_body_util::BodyExt;
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn a_connection_is_kept_and_reused_once_its_answer_is_read() {
        let (addr, accepted) = backend(false).await;
        let u = upstream_at(&addr);
        for _ in 0..5 {
            let resp = u.send(0, get(&addr)).await.unwrap();
            assert_eq!(read_all(resp).await, b"hello");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let (_, opened, idle) = u.connections().next().unwrap();
        assert_eq!((opened, idle), (1, 1));

        // An answer dropped before its body was read leaves its connection to close: the next
        // request opens another rather than reading the rest of the old answer.
        let unread = u.send(0, get(&addr)).await.unwrap();
        assert_eq!(u.connections().next().unwrap().2, 0);
        let second = u.send(0, get(&addr)).await.unwrap();
        drop(unread);
        assert_eq!(read_all(second).await, b"hello");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_backend_closed_while_idle_is_not_reused() {
        use std::io::{Read, Write};
        // A backend on a thread of its own that answers one request per connection and then
        // closes the connection when told: a backend's idle timeout.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let (close, closing) = std::sync::mpsc::channel::<()>();
        let (closed, is_closed) = std::sync::mpsc::channel::<()>();
        let backend = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = l.accept().unwrap();
                let mut buf = [0u8; 1024];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                    .unwrap();
                if closing.recv().is_err() {
                    return;
                }
                drop(s);
                closed.send(()).unwrap();
            }
        });
        let u = upstream_at(&addr);
        let resp = u.send(0, get(&addr)).await.unwrap();
        assert_eq!(read_all(resp).await, b"hello");
        assert_eq!(u.connections().next().unwrap().2, 1, "kept");
        close.send(()).unwrap();
        is_closed.recv().unwrap();
        // The connection's task sees the close as soon as the runtime polls it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let resp = u.send(0, get(&addr)).await.unwrap();
        assert_eq!(read_all(resp).await, b"hello");
        assert_eq!(u.connections().next().unwrap().0, addr);
        assert_eq!(u.connections().next().unwrap().1, 2, "a second connection");
        drop(close);
        backend.join().unwrap();
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_connect_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let u = upstream_at(&addr);
        let e = u.send(0, get(&addr)).await.unwrap_err();
        assert!(matches!(e, SendError::Connect(_)), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
    }

    #[tokio::test]
    async fn least_requests_prefers_the_idle_server() {
        let u = up(Balance::LeastRequests, 2);
        let busy = u.pick();
        let busy_at = busy.authority().to_string();
        for _ in 0..5 {
            let p = u.pick();
            assert_ne!(p.authority(), busy_at);
            p.done(true);
        }
        busy.done(true);
    }
}
