//! `tcp` listeners: once the handshake has verified the caller and its identity passed the
//! listener's matchers, bytes are copied both ways between the TLS stream and one server of
//! the upstream, until both sides close, an error, or `idle_timeout` without a byte either way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mutual_tls::{PeerIdentity, Permit};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::TcpRoute;
use crate::Proxy;

/// How a relay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both sides closed.
    Closed,
    /// No byte either way for the idle time.
    Idle,
    /// A read or write failed.
    Error,
}

impl End {
    /// The `result` label of `mutual_proxy_tcp_connections_total`.
    pub fn label(self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Idle => "idle_timeout",
            End::Error => "error",
        }
    }
}

/// Bytes moved by one relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    /// From the caller to the upstream.
    pub up: u64,
    /// From the upstream to the caller.
    pub down: u64,
}

/// Copies `a` ⇄ `b` until both have closed, one fails, or nothing moves for `idle`. A side that
/// closes has its peer's write half shut down (a half-close is passed on).
pub async fn copy_both<A, B>(a: A, b: B, idle: Duration) -> (End, Moved)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut ar, mut aw) = tokio::io::split(a);
    let (mut br, mut bw) = tokio::io::split(b);
    let mut abuf = vec![0u8; 16 * 1024];
    let mut bbuf = vec![0u8; 16 * 1024];
    let (mut a_open, mut b_open) = (true, true);
    let mut moved = Moved::default();
    while a_open || b_open {
        let step = async {
            tokio::select! {
                r = ar.read(&mut abuf), if a_open => (true, r),
                r = br.read(&mut bbuf), if b_open => (false, r),
            }
        };
        let (from_a, read) = match tokio::time::timeout(idle, step).await {
            Err(_) => return (End::Idle, moved),
            Ok(x) => x,
        };
        let n = match read {
            Ok(n) => n,
            Err(_) => return (End::Error, moved),
        };
        if n == 0 {
            if from_a {
                a_open = false;
            } else {
                b_open = false;
            }
        }
        let wrote = if from_a {
            pass(&mut bw, &abuf[..n], idle).await
        } else {
            pass(&mut aw, &bbuf[..n], idle).await
        };
        match wrote {
            Err(_) => return (End::Idle, moved),
            // The other side may have gone already; its own read will say so.
            Ok(Err(_)) if n == 0 => {}
            Ok(Err(_)) => return (End::Error, moved),
            Ok(Ok(())) => {}
        }
        if from_a {
            moved.up += n as u64;
        } else {
            moved.down += n as u64;
        }
    }
    (End::Closed, moved)
}

/// Writes `buf` to `w`, or shuts `w` down when `buf` is empty (the reader saw the end).
async fn pass<W: AsyncWrite + Unpin>(
    w: &mut W,
    buf: &[u8],
    idle: Duration,
) -> Result<std::io::Result<()>, tokio::time::error::Elapsed> {
    if buf.is_empty() {
        tokio::time::timeout(idle, w.shutdown()).await
    } else {
        tokio::time::timeout(idle, w.write_all(buf)).await
    }
}

/// Relays one verified connection of a `tcp` listener to a server of its upstream, once the
/// listener's policy has given the caller a [`Permit`].
pub async fn relay<S>(
    proxy: &Arc<Proxy>,
    route: &TcpRoute,
    idle: Duration,
    stream: S,
    peer: Arc<PeerIdentity>,
    remote: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // The handshake held the caller to this policy already; asking again yields the permit
    // that connecting to the upstream takes (a matcher check, no signature).
    match route.policy.authorize(&peer) {
        Ok(permit) => connect(proxy, route, &permit, idle, stream, remote).await,
        Err(denial) => {
            proxy.metrics.tcp(&route.name, "denied", Moved::default());
            proxy.refusals.record(crate::refusals::Refusal {
                at: time::OffsetDateTime::now_utc(),
                peer_addr: remote,
                peer: peer.name().to_string(),
                issuer: peer.issuer_name().to_string(),
                stage: "tcp",
                route: route.name.clone(),
                code: "deny".into(),
                status: None,
                reason: denial.to_string(),
            });
            tracing::warn!(peer.addr = %remote, peer.cn = peer.name(), route = %route.name, reason = %denial, "tcp: refused client");
        }
    }
}

async fn connect<S>(
    proxy: &Arc<Proxy>,
    route: &TcpRoute,
    permit: &Permit,
    idle: Duration,
    stream: S,
    remote: SocketAddr,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let peer = permit.peer();
    let upstream = Arc::clone(&proxy.runtime().upstreams[route.upstream]);
    let pick = upstream.pick();
    let target = pick.authority().to_string();
    let connect = tokio::time::timeout(
        upstream.config.connect_timeout,
        TcpStream::connect(target.as_str()),
    )
    .await;
    let tcp = match connect {
        Ok(Ok(tcp)) => {
            pick.done(true);
            tcp
        }
        Ok(Err(e)) => {
            pick.done(false);
            proxy
                .metrics
                .tcp(&route.name, "connect_failed", Moved::default());
            tracing::warn!(peer.addr = %remote, peer.cn = peer.name(), route = %route.name, upstream.server = %target, error = %e, "tcp: cannot reach the upstream");
            return;
        }
        Err(_) => {
            pick.done(false);
            proxy
                .metrics
                .tcp(&route.name, "connect_timeout", Moved::default());
            tracing::warn!(peer.addr = %remote, peer.cn = peer.name(), route = %route.name, upstream.server = %target, "tcp: the upstream did not accept in time");
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let (end, moved) = copy_both(stream, tcp, idle).await;
    proxy.metrics.tcp(&route.name, end.label(), moved);
    if proxy.access_log() {
        tracing::info!(
            peer.addr = %remote,
            peer.cn = peer.name(),
            route = %route.name,
            rule = permit.rule(),
            upstream.server = %target,
            decision = "allow",
            end = end.label(),
            bytes.up = moved.up,
            bytes.down = moved.down,
            "tcp connection"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn copies_both_ways_and_passes_half_closes() {
        let (client, proxy_a) = tokio::io::duplex(64);
        let (proxy_b, server) = tokio::io::duplex(64);
        let relay = tokio::spawn(copy_both(proxy_a, proxy_b, Duration::from_secs(30)));
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut sr, mut sw) = tokio::io::split(server);
        cw.write_all(b"ping").await.unwrap();
        cw.shutdown().await.unwrap();
        let mut got = Vec::new();
        sr.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ping");
        sw.write_all(b"pong!").await.unwrap();
        sw.shutdown().await.unwrap();
        let mut got = Vec::new();
        cr.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"pong!");
        let (end, moved) = relay.await.unwrap();
        assert_eq!(end, End::Closed);
        assert_eq!(moved, Moved { up: 4, down: 5 });
    }

    #[tokio::test(start_paused = true)]
    async fn ends_when_idle() {
        let (_client, proxy_a) = tokio::io::duplex(64);
        let (proxy_b, _server) = tokio::io::duplex(64);
        let (end, _) = copy_both(proxy_a, proxy_b, Duration::from_secs(5)).await;
        assert_eq!(end, End::Idle);
    }
}
