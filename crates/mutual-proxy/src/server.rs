//! The accept loop of one listener: a bound on open connections, mutual-tls's handshake with
//! the policy of the name the client asked for, then HTTP/1.1 or HTTP/2 (by ALPN) with bounded
//! headers, and closed after `idle_timeout` without a request in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use mutual_tls::{Acceptor, Established};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::headers::ConnHeaders;
use crate::service::{self, Conn};
use crate::upstream::UpBody;
use crate::{xfcc, Proxy};

/// Accepts connections until the proxy stops ([`Proxy::stop`]) or the process ends.
pub async fn serve_listener(proxy: Arc<Proxy>, index: usize, listener: TcpListener) {
    let max = proxy.runtime().config.listeners[index]
        .limits
        .max_connections;
    let limiter = Arc::new(Semaphore::new(max));
    // One for the life of the listener: its TLS sessions outlive reloads, and mutual-tls
    // checks each resumed one against the material and policy of the moment.
    let acceptor = Acceptor::new();
    let stopped = proxy.stopped();
    tokio::pin!(stopped);
    loop {
        let (tcp, remote) = tokio::select! {
            // Dropping the listener closes the port.
            () = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&limiter).try_acquire_owned() else {
            proxy
                .metrics
                .connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer.addr = %remote, max, "connection refused: too many open connections");
            drop(tcp);
            continue;
        };
        // A task keeps room for the largest state of its future for as long as it lives, and
        // most connections live long and idle: the task holds two pointers, the handshake
        // and then the serving each in a box of its own, freed when done.
        let establish = Box::pin(connection(
            Arc::clone(&proxy),
            acceptor.clone(),
            index,
            tcp,
            remote,
        ));
        let metrics = Arc::clone(&proxy);
        tokio::spawn(async move {
            metrics.metrics.connections.fetch_add(1, Ordering::Relaxed);
            // The handshake's transients are freed once it is done, the rest once it closes.
            if let Some(serving) = establish.await {
                metrics.freed.connection();
                serving.await;
            }
            metrics.freed.connection();
            metrics.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// What a connection does once its handshake is done, boxed.
type Serving = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The handshake of one connection and what follows it; `None` when there is nothing to
/// serve (refused, or a caller a listener cannot serve).
async fn connection(
    proxy: Arc<Proxy>,
    acceptor: Acceptor,
    index: usize,
    tcp: TcpStream,
    remote: SocketAddr,
) -> Option<Serving> {
    let proxy = &proxy;
    let rt = proxy.runtime();
    let lc = &rt.config.listeners[index];
    let limits = lc.limits;
    let material = Arc::clone(&rt.listeners[index]);
    let tcp_route = lc.tcp.clone();
    let client_cert_headers = lc.client_cert_headers;
    let hello = |sni: Option<&str>| {
        // A tcp listener relays bytes: no HTTP protocol to agree on.
        material.terms(lc.handshake.for_sni(sni), lc.tcp.is_none())
    };
    let result = acceptor.accept(tcp, limits.handshake_timeout, hello).await;
    drop(rt);
    let established = match result {
        Ok(e) => e,
        Err(refusal) => {
            proxy.metrics.handshake("refused", refusal.code());
            proxy.refusals.record(crate::refusals::Refusal {
                at: time::OffsetDateTime::now_utc(),
                peer_addr: remote,
                peer: crate::refusals::short_name(refusal.subject().unwrap_or_default()),
                issuer: crate::refusals::short_name(refusal.issuer().unwrap_or_default()),
                stage: "handshake",
                route: "-".into(),
                code: refusal.code().to_string(),
                status: None,
                reason: refusal.to_string(),
            });
            return None;
        }
    };
    proxy.metrics.handshake("ok", "ok");
    let Established {
        stream,
        peer,
        chain,
        sni,
        ..
    } = established;
    if let Some(route) = tcp_route {
        // A tcp listener's terms require a certificate: the acceptor refused a client without
        // a verified one.
        let peer = Arc::new(peer?);
        let proxy = Arc::clone(proxy);
        let feed = material.revocations.clone();
        return Some(Box::pin(async move {
            let relay = crate::tcp::relay(
                &proxy,
                &route,
                limits.idle_timeout,
                stream,
                Arc::clone(&peer),
                remote,
            );
            match &feed {
                None => relay.await,
                Some(feed) => {
                    tokio::select! {
                        _ = relay => {}
                        // Dropping the relay closes both sides.
                        r = feed.until_refused(&peer) => feed.refused(&peer, remote, "tcp", &r),
                    }
                }
            }
        }));
    }
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    // No peer only on a listener with `client_certificate = "optional"`: its requests are
    // answered with what is missing, and nothing of the caller is forwarded.
    let headers = match (&peer, chain.split_first()) {
        (Some(peer), Some((leaf, issuers))) => {
            // Only for a listener that sends them: they are the largest thing a connection
            // would keep (the chain in base64), and most listeners never do. A reload that
            // turns them on applies to connections made after it.
            let client_cert = client_cert_headers
                .then(|| (xfcc::client_cert(leaf), xfcc::client_cert_chain(issuers)));
            ConnHeaders::new(
                remote.ip(),
                Some(&xfcc::element(material.by.as_deref(), peer)),
                client_cert
                    .as_ref()
                    .map(|(c, ch)| (c.as_str(), ch.as_str())),
            )
        }
        (None, _) => ConnHeaders::new(remote.ip(), None, None),
        // A verified caller without the chain it was verified by: never forward it.
        (Some(_), None) => return None,
    };
    // Neither is needed again; the connection may live for hours.
    drop((chain, material));
    let conn = Arc::new(Conn {
        proxy: Arc::clone(proxy),
        listener: index,
        headers,
        peer: peer.map(Arc::new),
        remote,
        sni,
        revocation_seen: std::sync::atomic::AtomicU64::new(u64::MAX),
        close: tokio::sync::Notify::new(),
        closing: std::sync::atomic::AtomicBool::new(false),
    });
    let activity = Arc::new(Activity::new());
    Some(if h2 {
        Box::pin(serve_h2(conn, activity, limits, stream))
    } else {
        Box::pin(serve_h1(conn, activity, limits, stream))
    })
}

/// What a request becomes: boxed, so that an idle connection keeps no room for one (hyper
/// keeps a slot the size of the service's future per connection) and hyper can hand the
/// connection back when it is parked (that needs an `Unpin` future).
type Answer = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<hyper::Response<UpBody>, Infallible>> + Send>,
>;

/// The service of one connection: every request is handled with the connection's caller,
/// counted in flight while it is.
fn service(
    conn: &Arc<Conn>,
    activity: &Arc<Activity>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = hyper::Response<UpBody>,
    Error = Infallible,
    Future = Answer,
> + Clone
       + Unpin {
    let (conn, act) = (Arc::clone(conn), Arc::clone(activity));
    hyper::service::service_fn(move |req| -> Answer {
        let conn = Arc::clone(&conn);
        let busy = act.begin();
        Box::pin(async move {
            let resp = service::handle(conn, req).await;
            drop(busy);
            Ok::<_, Infallible>(resp)
        })
    })
}

/// Why hyper stopped serving an HTTP/1.1 connection.
enum Ended {
    /// The connection is over: the caller closed it, or keep-alive ended.
    Over(hyper::Result<()>),
    /// The caller was revoked.
    Revoked,
    /// No request for a while: the connection is parked.
    Idle,
}

/// How long an HTTP/1.1 connection waits without a request before it is parked.
const PARK_AFTER: Duration = Duration::from_secs(1);

/// HTTP/1.1 keep-alive, parked while idle: after [`PARK_AFTER`] without a request, hyper's
/// connection (its 8 KiB read and write buffers, the service's state) is ended without closing
/// the socket, and the connection waits for the caller's next bytes holding only the TLS
/// stream; they start a new one. nginx and HAProxy release the buffers of idle connections
/// likewise: with thousands of idle callers, those buffers are most of a proxy's memory.
///
/// Not an `async fn`: its arguments would stay in the future for its whole life, the stream
/// twice over once moved into [`Rewind`].
fn serve_h1(
    conn: Arc<Conn>,
    activity: Arc<Activity>,
    limits: crate::config::Limits,
    stream: mutual_tls::ServerStream,
) -> impl std::future::Future<Output = ()> + Send {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_header_bytes);
    let idle = limits.idle_timeout;
    let park_after = PARK_AFTER.min(idle);
    let mut io = Rewind::new(stream);
    // What this future keeps while the connection is parked is the stream and little else:
    // each stage is a boxed future of its own, alive only while it runs.
    async move {
        loop {
            if !io.has_prefix() && !Box::pin(parked(&mut io, &conn, &activity, idle)).await {
                return;
            }
            match Box::pin(serve_until_idle(&builder, io, &conn, &activity, park_after)).await {
                Some(back) => {
                    // Parked: hyper's buffers are freed.
                    conn.proxy.freed.connection();
                    io = back;
                }
                None => return,
            }
        }
    }
}

/// Parked: nothing but the TLS stream, without its read buffer, is held until the caller's
/// next byte (read through TLS, so that a request rustls has already decrypted counts too),
/// which is put back for hyper. False when the connection is over: the caller closed, it
/// failed, it was revoked, or it stayed idle for `idle` (then closed with close_notify and FIN).
async fn parked(
    io: &mut Rewind<mutual_tls::ServerStream>,
    conn: &Conn,
    activity: &Activity,
    idle: Duration,
) -> bool {
    let mut first = [0u8; 1];
    let woke = async {
        loop {
            let until = activity.idle_until(idle)?;
            // Both cancel-safe: a timer that fires before the caller speaks costs nothing.
            let next = async {
                until_peer_sends(io.inner_mut()).await?;
                io.inner_mut().read(&mut first).await
            };
            tokio::select! {
                r = next => return Some(r),
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    };
    let woke = tokio::select! {
        r = woke => r,
        _ = conn.close.notified() => return false,
        () = conn.proxy.stopped() => return false,
    };
    match woke {
        Some(Ok(1..)) => io.prepend(bytes::Bytes::copy_from_slice(&first)),
        // The caller closed, or the connection failed.
        Some(_) => return false,
        None => {
            tracing::debug!(peer.addr = %conn.remote, "closing an idle connection");
            let _ = tokio::time::timeout(Duration::from_secs(5), io.shutdown()).await;
            return false;
        }
    }
    activity.touch();
    true
}

/// Waits until the peer of an idle connection sends something, holding no buffer for it
/// meanwhile: rustls keeps the 4 KiB buffer of its last read for the life of a connection
/// (a third of what a parked mTLS connection cost with it), so it is freed and only the
/// socket's readiness is awaited; the read that follows makes a new one. Returns at once when
/// rustls already holds bytes or plaintext to read, or has nothing more to read (the peer
/// closed).
/// Cancel-safe. Here and not in mutual-tls: `release_read_buffer` is the method our copy of
/// rustls adds (`vendor/README.md`), and the library builds on rustls as published.
async fn until_peer_sends(stream: &mut mutual_tls::ServerStream) -> std::io::Result<()> {
    let (io, conn) = stream.get_mut();
    if conn.wants_read() && conn.release_read_buffer() {
        io.tcp().readable().await?;
    }
    Ok(())
}

/// Serves requests with hyper until the connection has been idle for `park_after`; gives the
/// stream back to be parked, or `None` when the connection is over.
async fn serve_until_idle(
    builder: &hyper::server::conn::http1::Builder,
    io: Rewind<mutual_tls::ServerStream>,
    conn: &Arc<Conn>,
    activity: &Arc<Activity>,
    park_after: Duration,
) -> Option<Rewind<mutual_tls::ServerStream>> {
    let begun_before = activity.begun();
    let mut served = builder.serve_connection(TokioIo::new(io), service(conn, activity));
    let done = std::future::poll_fn(|cx| served.poll_without_shutdown(cx));
    let ended = tokio::select! {
        r = done => Ended::Over(r),
        _ = conn.close.notified() => Ended::Revoked,
        // Stopping ends the connection as a revocation does: after the answer in flight.
        () = conn.proxy.stopped() => Ended::Revoked,
        _ = activity.parkable(park_after, begun_before) => Ended::Idle,
    };
    let begun = activity.begun();
    match ended {
        Ended::Over(Err(e)) => {
            tracing::debug!(peer.addr = %conn.remote, error = %e, "connection ended with an error");
            return None;
        }
        // The caller closed, or keep-alive ended: so does the connection.
        Ended::Over(Ok(())) => {}
        // A revoked caller: the answer in flight is finished, then the connection ends.
        // Idle: hyper hands the connection back.
        Ended::Revoked | Ended::Idle => {
            std::pin::Pin::new(&mut served).graceful_shutdown();
            let done = std::future::poll_fn(|cx| served.poll_without_shutdown(cx));
            if !matches!(
                tokio::time::timeout(Duration::from_secs(5), done).await,
                Ok(Ok(()))
            ) {
                return None;
            }
        }
    }
    let parts = served.into_parts();
    let mut io = parts.io.into_inner();
    // Parked only if no request came meanwhile: one that did was answered with
    // `connection: close`, a promise kept.
    if !matches!(ended, Ended::Idle) || activity.begun() != begun || !activity.is_idle() {
        let _ = tokio::time::timeout(Duration::from_secs(5), io.shutdown()).await;
        return None;
    }
    // Bytes of a next request that came in as it was parked: served at once.
    io.prepend(parts.read_buf);
    Some(io)
}

/// Completes when the connection must close after what is in flight: its caller was revoked,
/// or the proxy is stopping.
async fn closing(
    conn: &Conn,
    stopped: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) {
    tokio::select! {
        _ = conn.close.notified() => {}
        () = stopped.as_mut() => {}
    }
}

/// HTTP/2: streams share the connection, which closes once it has had no stream in flight for
/// `idle_timeout`. Not an `async fn`, for the reason [`serve_h1`] gives.
fn serve_h2(
    conn: Arc<Conn>,
    activity: Arc<Activity>,
    limits: crate::config::Limits,
    stream: mutual_tls::ServerStream,
) -> impl std::future::Future<Output = ()> + Send {
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(limits.idle_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    let mut served =
        Box::pin(builder.serve_connection(TokioIo::new(stream), service(&conn, &activity)));
    let idle = limits.idle_timeout;
    async move {
        let mut deadline = tokio::time::Instant::now() + idle;
        let stopped = conn.proxy.stopped();
        tokio::pin!(stopped);
        let result = loop {
            tokio::select! {
                r = served.as_mut() => break r,
                // A revoked caller, or the proxy stopping: the answers in flight are finished
                // (GOAWAY first), then the connection ends.
                () = closing(&conn, &mut stopped) => {
                    served.as_mut().graceful_shutdown();
                    break tokio::time::timeout(Duration::from_secs(5), served.as_mut())
                        .await
                        .unwrap_or(Ok(()));
                }
                _ = tokio::time::sleep_until(deadline) => match activity.idle_until(idle) {
                    Some(later) => deadline = later,
                    None => {
                        // HTTP/2 keeps a connection open as long as the client answers pings: close
                        // it once it has had no stream in flight for idle_timeout (GOAWAY first).
                        tracing::debug!(peer.addr = %conn.remote, "closing an idle connection");
                        served.as_mut().graceful_shutdown();
                        break tokio::time::timeout(Duration::from_secs(5), served.as_mut())
                            .await
                            .unwrap_or(Ok(()));
                    }
                },
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer.addr = %conn.remote, error = %e, "connection ended with an error");
        }
    }
}

/// A stream that first gives back bytes already read from it: those hyper had buffered when
/// an idle HTTP/1.1 connection was parked.
struct Rewind<T> {
    prefix: bytes::Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    fn new(inner: T) -> Rewind<T> {
        Rewind {
            prefix: bytes::Bytes::new(),
            inner,
        }
    }

    fn prepend(&mut self, mut bytes: bytes::Bytes) {
        // An empty `Bytes` frozen from hyper's read buffer still holds the whole buffer: keep
        // none of it.
        if bytes.is_empty() {
            return;
        }
        if !self.prefix.is_empty() {
            let mut joined = bytes::BytesMut::from(&bytes[..]);
            joined.extend_from_slice(&self.prefix);
            bytes = joined.freeze();
        }
        self.prefix = bytes;
    }

    fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }

    fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix.split_to(n));
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
struct Activity {
    in_flight: AtomicUsize,
    /// Requests begun on the connection, ever.
    begun: std::sync::atomic::AtomicU64,
    last: Mutex<tokio::time::Instant>,
}

/// Marks a request in flight until dropped (also when the client goes away mid-request).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            begun: std::sync::atomic::AtomicU64::new(0),
            last: Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.begun.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
    }

    fn touch(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
    }

    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }

    /// Returns once hyper's connection can be parked: it has answered a request since
    /// `begun_before` (a fresh hyper connection is busy until its first request is done, and
    /// would answer it with `connection: close`) and had none in flight for `idle`.
    async fn parkable(&self, idle: Duration, begun_before: u64) {
        let mut deadline = tokio::time::Instant::now() + idle;
        loop {
            tokio::time::sleep_until(deadline).await;
            match self.idle_until(idle) {
                Some(later) => deadline = later,
                None if self.begun() > begun_before => return,
                None => deadline += idle,
            }
        }
    }

    fn begun(&self) -> u64 {
        self.begun.load(Ordering::Relaxed)
    }

    /// None when the connection has been idle for `idle`; otherwise when to look again.
    fn idle_until(&self, idle: Duration) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::now();
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Some(now + idle);
        }
        let until = *self.last.lock().unwrap_or_else(|p| p.into_inner()) + idle;
        (until > now).then_some(until)
    }
}

#[cfg(test)]
mod tests {
    /// Returns the size of the future an HTTP connection's serving is (its stream included).
    fn future_size<A, B, C, D, R>(_: fn(A, B, C, D) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn a_parked_connection_keeps_little_more_than_its_stream() {
        // The serving future lives as long as the connection, most of it idle: its arguments
        // (the stream once more) or a stage's locals kept in it would be paid per connection.
        let stream = std::mem::size_of::<mutual_tls::ServerStream>();
        let h1 = future_size(super::serve_h1);
        let h2 = future_size(super::serve_h2);
        assert!(
            h1 <= stream + 512,
            "serve_h1's future is {h1} bytes, its stream {stream}"
        );
        assert!(
            h2 <= 512,
            "serve_h2's future is {h2} bytes (its stream is boxed)"
        );
    }
}
