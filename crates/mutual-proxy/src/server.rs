//! The accept loop of one listener: a bound on open connections, mutual-tls's handshake with
//! the policy of the name the client asked for, then HTTP/1.1 or HTTP/2 (by ALPN) with bounded
//! headers, and closed after `idle_timeout` without a request in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use mutual_tls::{Acceptor, Established};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::service::{self, Conn};
use crate::{xfcc, Proxy};

/// Accepts connections until the process ends.
pub async fn serve_listener(proxy: Arc<Proxy>, index: usize, listener: TcpListener) {
    let max = proxy.runtime().config.listeners[index]
        .limits
        .max_connections;
    let limiter = Arc::new(Semaphore::new(max));
    // One for the life of the listener: its TLS sessions outlive reloads, and mutual-tls
    // checks each resumed one against the material and policy of the moment.
    let acceptor = Acceptor::new();
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
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
        let proxy = Arc::clone(&proxy);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            proxy.metrics.connections.fetch_add(1, Ordering::Relaxed);
            connection(&proxy, &acceptor, index, tcp, remote).await;
            proxy.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn connection(
    proxy: &Arc<Proxy>,
    acceptor: &Acceptor,
    index: usize,
    tcp: TcpStream,
    remote: SocketAddr,
) {
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
            return;
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
        let Some(peer) = peer else {
            return;
        };
        let peer = Arc::new(peer);
        let relay = crate::tcp::relay(
            proxy,
            &route,
            limits.idle_timeout,
            stream,
            Arc::clone(&peer),
            remote,
        );
        match &material.revocations {
            None => relay.await,
            Some(feed) => {
                tokio::select! {
                    _ = relay => {}
                    // Dropping the relay closes both sides.
                    r = feed.until_refused(&peer) => feed.refused(&peer, remote, "tcp", &r),
                }
            }
        }
        return;
    }
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    // No peer only on a listener with `client_certificate = "optional"`: its requests are
    // answered with what is missing, and nothing of the caller is forwarded.
    let (xfcc, client_cert) = match (&peer, chain.split_first()) {
        (Some(peer), Some((leaf, issuers))) => (
            xfcc::element(material.by.as_deref(), peer),
            // Only for a listener that sends them: they are the largest thing a connection
            // would keep (the chain in base64), and most listeners never do. A reload that
            // turns them on applies to connections made after it.
            client_cert_headers
                .then(|| (xfcc::client_cert(leaf), xfcc::client_cert_chain(issuers))),
        ),
        (None, _) => (String::new(), None),
        // A verified caller without the chain it was verified by: never forward it.
        (Some(_), None) => return,
    };
    let conn = Arc::new(Conn {
        proxy: Arc::clone(proxy),
        listener: index,
        xfcc,
        peer: peer.map(Arc::new),
        remote,
        sni,
        client_cert,
        revocation_seen: std::sync::atomic::AtomicU64::new(u64::MAX),
        close: tokio::sync::Notify::new(),
        closing: std::sync::atomic::AtomicBool::new(false),
    });
    let closer = Arc::clone(&conn);
    let activity = Arc::new(Activity::new());
    let act = Arc::clone(&activity);
    let svc = hyper::service::service_fn(move |req| {
        let conn = Arc::clone(&conn);
        let busy = act.begin();
        async move {
            let resp = service::handle(conn, req).await;
            drop(busy);
            Ok::<_, Infallible>(resp)
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(limits.idle_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let served = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(served);
    let idle = limits.idle_timeout;
    let mut deadline = tokio::time::Instant::now() + idle;
    let result = loop {
        tokio::select! {
            r = served.as_mut() => break r,
            _ = closer.close.notified() => {
                // A revoked caller: the answer in flight is finished, then the connection ends.
                served.as_mut().graceful_shutdown();
                break tokio::time::timeout(Duration::from_secs(5), served.as_mut())
                    .await
                    .unwrap_or(Ok(()));
            }
            _ = tokio::time::sleep_until(deadline) => match activity.idle_until(idle) {
                Some(later) => deadline = later,
                None => {
                    // HTTP/2 keeps a connection open as long as the client answers pings, and a
                    // keep-alive HTTP/1.1 client may never send again: close either once it has
                    // had no request in flight for idle_timeout (GOAWAY first on HTTP/2).
                    tracing::debug!(peer.addr = %remote, "closing an idle connection");
                    served.as_mut().graceful_shutdown();
                    break tokio::time::timeout(Duration::from_secs(5), served.as_mut())
                        .await
                        .unwrap_or(Ok(()));
                }
            },
        }
    };
    if let Err(e) = result {
        tracing::debug!(peer.addr = %remote, error = %e, "connection ended with an error");
    }
}

/// Requests in flight on one connection and when the last one ended, for the idle timeout.
struct Activity {
    in_flight: AtomicUsize,
    last: Mutex<tokio::time::Instant>,
}

/// Marks a request in flight until dropped (also when the client goes away mid-request).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: Mutex::new(tokio::time::Instant::now()),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(self))
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
