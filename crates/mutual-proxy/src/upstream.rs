//! Backends: a keep-alive connection pool per upstream, a balancer (round-robin or
//! least-requests) and passive health: a server that fails `eject_after` times in a row rests
//! for `eject_for`, unless every server rests, when all are tried again.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::config::{Balance, Protocol, UpstreamConfig};

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
    client: Client<HttpConnector, UpBody>,
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
    /// A new upstream with an empty pool.
    pub fn new(config: UpstreamConfig) -> Upstream {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let mut b = Client::builder(TokioExecutor::new());
        b.timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .set_host(false);
        if config.protocol == Protocol::H2c {
            b.http2_only(true);
        }
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
                })
                .collect(),
            next: AtomicUsize::new(0),
            epoch: Instant::now(),
            client: b.build(http),
            config,
        }
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

    /// The pooled client.
    pub fn client(&self) -> &Client<HttpConnector, UpBody> {
        &self.client
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
