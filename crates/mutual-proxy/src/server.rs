//! The accept loop of one listener: a bound on open connections, the handshake under a time
//! limit with the policy of the name the client asked for, then HTTP/1.1 or HTTP/2 (by ALPN)
//! with bounded headers, and closed after `idle_timeout` without a request in flight.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use mutual_tls::Refusal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;

use crate::service::{self, Conn};
use crate::tls::Slot;
use crate::{xfcc, Proxy};

/// Accepts connections until the process ends.
pub async fn serve_listener(proxy: Arc<Proxy>, index: usize, listener: TcpListener) {
    let max = proxy.runtime().config.listeners[index]
        .limits
        .max_connections;
    let limiter = Arc::new(Semaphore::new(max));
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
        tokio::spawn(async move {
            proxy.metrics.connections.fetch_add(1, Ordering::Relaxed);
            connection(&proxy, index, tcp, remote).await;
            proxy.metrics.connections.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

async fn connection(proxy: &Arc<Proxy>, index: usize, tcp: TcpStream, remote: SocketAddr) {
    let _ = tcp.set_nodelay(true);
    let rt = proxy.runtime();
    let lc = &rt.config.listeners[index];
    let limits = lc.limits;
    let material = Arc::clone(&rt.listeners[index]);
    let slot = Arc::new(Mutex::new(Slot::default()));
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
            .await
            .map_err(|e| {
                (
                    Refusal::Handshake {
                        detail: e.to_string(),
                    },
                    None,
                )
            })?;
        let sni = start
            .client_hello()
            .server_name()
            .map(|s| s.to_ascii_lowercase());
        // A tcp listener relays bytes: no HTTP protocol to agree on.
        let (policy, alpn) = (lc.handshake.for_sni(sni.as_deref()), lc.tcp.is_none());
        let config = material
            .config(policy, alpn, Arc::clone(&slot))
            .map_err(|e| {
                (
                    Refusal::Handshake {
                        detail: e.to_string(),
                    },
                    None,
                )
            })?;
        match start.into_stream(config).into_fallible().await {
            Ok(stream) => Ok((stream, sni)),
            Err((err, tcp)) => {
                let refusal = slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .refusal
                    .take();
                let refusal = refusal.unwrap_or_else(|| {
                    match err
                        .get_ref()
                        .and_then(|e| e.downcast_ref::<rustls::Error>())
                    {
                        Some(rustls::Error::NoCertificatesPresented) => Refusal::NoCertificate {
                            asked_for: material.trust.subjects.clone(),
                        },
                        Some(e) => Refusal::Handshake {
                            detail: e.to_string(),
                        },
                        None => Refusal::Handshake {
                            detail: err.to_string(),
                        },
                    }
                });
                Err((refusal, Some(tcp)))
            }
        }
    };
    let result = tokio::time::timeout(limits.handshake_timeout, handshake).await;
    let tcp_route = lc.tcp.clone();
    drop(rt);
    let (stream, sni) = match result {
        Err(_) => {
            let r = Refusal::Timeout {
                seconds: limits.handshake_timeout.as_secs(),
            };
            refused(proxy, remote, &r);
            return;
        }
        Ok(Err((r, tcp))) => {
            refused(proxy, remote, &r);
            if let Some(tcp) = tcp {
                linger_close(tcp).await;
            }
            return;
        }
        Ok(Ok(x)) => x,
    };
    proxy.metrics.handshake("ok", "ok");
    let (peer, chain) = {
        let mut s = slot.lock().unwrap_or_else(|p| p.into_inner());
        (s.peer.take(), std::mem::take(&mut s.chain))
    };
    let Some(peer) = peer else {
        // Cannot happen without a verified certificate; refuse rather than serve anonymously.
        refused(
            proxy,
            remote,
            &Refusal::Handshake {
                detail: "no verified client certificate".into(),
            },
        );
        return;
    };
    if let Some(route) = tcp_route {
        crate::tcp::relay(
            proxy,
            &route,
            limits.idle_timeout,
            stream,
            Arc::new(peer),
            remote,
        )
        .await;
        return;
    }
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let client_cert = Some((
        xfcc::client_cert(&chain[0]),
        xfcc::client_cert_chain(&chain[1..]),
    ));
    let conn = Arc::new(Conn {
        proxy: Arc::clone(proxy),
        listener: index,
        xfcc: xfcc::element(material.by.as_deref(), &peer),
        peer: Arc::new(peer),
        remote,
        sni,
        client_cert,
    });
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

fn refused(proxy: &Proxy, remote: SocketAddr, r: &Refusal) {
    proxy.metrics.handshake("refused", r.code());
    match r {
        Refusal::Handshake { .. } | Refusal::Timeout { .. } => tracing::info!(
            peer.addr = %remote,
            reason.code = r.code(),
            reason = %r,
            "handshake failed"
        ),
        _ => tracing::warn!(
            peer.addr = %remote,
            peer.subject = r.subject().unwrap_or("-"),
            peer.issuer = r.issuer().unwrap_or("-"),
            reason.code = r.code(),
            reason = %r,
            "refused client"
        ),
    }
}

/// Closes a refused connection so that the alert reaches the client: FIN first, then read
/// what it still sends for a moment, so that closing does not answer with a reset that would
/// destroy the alert.
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
