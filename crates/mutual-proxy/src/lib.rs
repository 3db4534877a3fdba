//! `mutual-proxy`: the authorizing mTLS reverse proxy and the mTLS tunnel of `mutual`.
//!
//! The proxy terminates mTLS (HTTP/1.1 and HTTP/2 by ALPN) in front of an unmodified HTTP
//! backend, picks a route by Host and path prefix (the Host held to the TLS server name),
//! authorizes the caller by the route's identity matchers — refusing with a 403 that names the
//! caller and the rule, or in the handshake — strips every identity header a caller sends and
//! forwards the verified identity as Envoy's `x-forwarded-client-cert`. Configuration, routing,
//! XFCC and header rules are pure modules ([`config`], [`route`], [`xfcc`], [`headers`]);
//! sockets live in [`server`], [`service`], [`tcp`], [`admin`] and [`tunnel`]. A listener in
//! `tcp` mode checks the caller's identity in the handshake and then relays raw bytes. Reload is build,
//! validate, swap: a bad new configuration is refused and the old one keeps serving. It is not
//! a CA (`mutual-pki`) nor the verification library (`mutual-tls`), which it uses.
//!
//! ```no_run
//! # async fn run() -> Result<(), mutual_proxy::ProxyError> {
//! let proxy = mutual_proxy::Proxy::load(mutual_proxy::Source::File("proxy.toml".into()))?;
//! let running = proxy.start().await?;
//! println!("listening on {:?}", running.listeners);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod config;
pub mod crlfetch;
pub mod crlstate;
pub mod enroll;
pub mod headers;
pub mod memory;
pub mod metrics;
pub mod refusals;
pub mod reload;
pub mod revocation;
pub mod route;
pub mod server;
pub mod service;
pub mod tcp;
pub mod tls;
pub mod tunnel;
mod ui;
pub mod upstream;
pub mod xfcc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

pub use config::{Config, ConfigError, FileConfig};
use metrics::Metrics;
use tls::TlsMaterial;
use upstream::Upstream;

/// Why the proxy cannot start or reload.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A certificate, key, CA or CRL file cannot be used.
    #[error("listener {listen}: {source}")]
    Load {
        /// The listener.
        listen: SocketAddr,
        /// Why.
        source: mutual_tls::LoadError,
    },
    /// A file or socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The first enrollment of a listener failed.
    #[error("listener {listen}: cannot enroll at {ca}: {reason}")]
    Enroll {
        /// The listener.
        listen: SocketAddr,
        /// The CA's nodes.
        ca: String,
        /// Why.
        reason: String,
    },
    /// The new configuration changes what only a restart can change.
    #[error("{0}; restart the proxy to apply it")]
    NeedsRestart(String),
}

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A TOML file, read again on each reload.
    File(PathBuf),
    /// A configuration built from parsed values (command-line flags, see
    /// [`config::SingleBackend`]); reload reads its files again.
    Fixed(Box<Config>),
}

impl Source {
    fn read(&self) -> Result<Config, ProxyError> {
        match self {
            Source::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ProxyError::Io {
                    what: format!("reading --config {}", path.display()),
                    source,
                })?;
                Ok(FileConfig::parse(&text)?.check()?)
            }
            Source::Fixed(c) => Ok(Config::clone(c)),
        }
    }
}

/// Everything a configuration needs at run time, built off to the side and swapped whole.
#[derive(Debug)]
pub struct Runtime {
    /// The checked configuration.
    pub config: Config,
    /// Per listener (same order): certificate, CAs, CRLs.
    pub listeners: Vec<Arc<TlsMaterial>>,
    /// Per upstream (same order): servers and pools.
    pub upstreams: Vec<Arc<Upstream>>,
    /// Per listener (same order): its fetched CRLs, when it fetches them.
    pub feeds: Vec<Option<Arc<crlfetch::CrlFeed>>>,
    /// Per listener (same order): the revocation feed it follows, when it follows one.
    pub revocations: Vec<Option<Arc<revocation::RevocationFeed>>>,
}

impl Runtime {
    /// Loads every file of `config`; upstreams that did not change keep their pools and health.
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
        enrolled: &[Option<Arc<enroll::Enrolled>>],
    ) -> Result<Runtime, ProxyError> {
        let feeds = config
            .listeners
            .iter()
            .map(|l| {
                let kept = previous.and_then(|p| {
                    p.feeds
                        .iter()
                        .flatten()
                        .find(|f| f.listen == l.listen && f.same_as(l))
                        .cloned()
                });
                match kept {
                    Some(f) => Ok(Some(f)),
                    None => crlfetch::CrlFeed::new(l).map_err(|e| ConfigError::Invalid {
                        at: format!("listener {}", l.listen),
                        reason: e.to_string(),
                    }),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let revocations = config
            .listeners
            .iter()
            .map(|l| {
                let kept = previous.and_then(|p| {
                    p.revocations
                        .iter()
                        .flatten()
                        .find(|f| f.same_as(l))
                        .cloned()
                });
                match kept {
                    Some(f) => Ok(Some(f)),
                    None => {
                        revocation::RevocationFeed::new(l).map_err(|reason| ConfigError::Invalid {
                            at: format!("listener {}", l.listen),
                            reason,
                        })
                    }
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let listeners = config
            .listeners
            .iter()
            .zip(&feeds)
            .zip(&revocations)
            .enumerate()
            .map(|(i, ((l, feed), revoked))| {
                enroll::material(
                    l,
                    enrolled.get(i).cloned().flatten().as_deref(),
                    feed.clone(),
                )
                .map(|m| Arc::new(m.with_revocations(revoked.clone())))
                .map_err(|source| ProxyError::Load {
                    listen: l.listen,
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                previous
                    .and_then(|p| {
                        p.upstreams
                            .iter()
                            .find(|o| o.config.name == u.name && o.same_as(u))
                    })
                    .filter(|o| o.config.balance == u.balance)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Upstream::new(u.clone())))
            })
            .collect();
        Ok(Runtime {
            config,
            listeners,
            upstreams,
            feeds,
            revocations,
        })
    }

    /// This runtime with listener `i`'s material replaced (a renewed certificate).
    fn with_listener(&self, i: usize, material: Arc<TlsMaterial>) -> Runtime {
        let mut listeners = self.listeners.clone();
        if let Some(slot) = listeners.get_mut(i) {
            *slot = material;
        }
        Runtime {
            config: self.config.clone(),
            listeners,
            upstreams: self.upstreams.clone(),
            feeds: self.feeds.clone(),
            revocations: self.revocations.clone(),
        }
    }
}

/// The proxy: its configuration source, the runtime in use, and counters.
#[derive(Debug)]
pub struct Proxy {
    source: Source,
    runtime: ArcSwap<Runtime>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// The addresses the listeners are bound to, once started (port 0 resolved).
    bound: std::sync::OnceLock<Vec<SocketAddr>>,
    /// Per listener: its certificate source, when enrolled.
    enrolled: enroll::Enrollments,
    /// The last refusals, for the admin dashboard.
    pub refusals: refusals::Recent,
    /// Connections that freed memory since it was last given back to the kernel.
    freed: memory::Freed,
    /// Set once by [`Proxy::stop`]: listeners stop accepting and connections close after the
    /// request they are serving.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// Addresses a started proxy listens on.
#[derive(Debug, Clone)]
pub struct Running {
    /// The mTLS listeners, in configuration order.
    pub listeners: Vec<SocketAddr>,
    /// The admin listener.
    pub admin: Option<SocketAddr>,
}

impl Proxy {
    /// Reads and checks the configuration and loads its files.
    pub fn load(source: Source) -> Result<Arc<Proxy>, ProxyError> {
        let config = source.read()?;
        Proxy::assemble(source, config, Vec::new())
    }

    /// Like [`Proxy::load`], and enrolls the listeners that get their certificate from a CA
    /// (see [`enroll`]); their renewals are swapped in once started.
    pub async fn enroll(source: Source) -> Result<Arc<Proxy>, ProxyError> {
        let config = source.read()?;
        let enrolled = enroll::enroll_all(&config).await?;
        Proxy::assemble(source, config, enrolled)
    }

    fn assemble(
        source: Source,
        config: Config,
        enrolled: enroll::Enrollments,
    ) -> Result<Arc<Proxy>, ProxyError> {
        let runtime = Runtime::build(config, None, &enrolled)?;
        Ok(Arc::new(Proxy {
            source,
            runtime: ArcSwap::from_pointee(runtime),
            metrics: Metrics::default(),
            bound: std::sync::OnceLock::new(),
            enrolled,
            refusals: refusals::Recent::default(),
            freed: memory::Freed::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Swaps one listener's material; a reload in between is not undone.
    fn swap_listener(&self, i: usize, material: Arc<TlsMaterial>) {
        self.runtime
            .rcu(|rt| rt.with_listener(i, Arc::clone(&material)));
    }

    /// The runtime in use now.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime.load_full()
    }

    /// The address listener `index` is bound to (its configured address before the start).
    pub fn listen_addr(&self, index: usize) -> Option<SocketAddr> {
        self.bound
            .get()
            .and_then(|b| b.get(index).copied())
            .or_else(|| self.runtime().config.listeners.get(index).map(|l| l.listen))
    }

    /// Whether to write one log line per request.
    pub fn access_log(&self) -> bool {
        self.runtime.load().config.access_log
    }

    /// Warnings about the CA files (a CA with its own issuer widens the trust).
    pub fn warnings(&self) -> Vec<String> {
        self.runtime()
            .listeners
            .iter()
            .flat_map(|m| m.trust.warnings.clone())
            .collect()
    }

    /// Build, validate, swap: on error the old runtime keeps serving and the error says why.
    pub fn reload(&self) -> Result<(), ProxyError> {
        let result = (|| {
            let config = self.source.read()?;
            let old = self.runtime();
            let was: Vec<SocketAddr> = old.config.listeners.iter().map(|l| l.listen).collect();
            let now: Vec<SocketAddr> = config.listeners.iter().map(|l| l.listen).collect();
            if was != now || old.config.admin != config.admin {
                return Err(ProxyError::NeedsRestart(format!(
                    "the listen addresses change from {was:?} to {now:?}"
                )));
            }
            Runtime::build(config, Some(&old), &self.enrolled)
        })();
        match result {
            Ok(rt) => {
                // A feed new with this configuration fetches at once, in the background.
                for f in rt.feeds.iter().flatten() {
                    f.ensure_running(false);
                }
                for r in rt.revocations.iter().flatten() {
                    r.ensure_running();
                }
                self.runtime.store(Arc::new(rt));
                self.metrics.reloads.fetch_add(1, Ordering::Relaxed);
                tracing::info!("configuration reloaded");
                Ok(())
            }
            Err(e) => {
                self.metrics.reload_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "reload refused; the previous configuration keeps serving");
                Err(e)
            }
        }
    }

    /// Binds every listener and the admin listener, and serves in background tasks, with
    /// reload on SIGHUP and on file change.
    pub async fn start(self: &Arc<Self>) -> Result<Running, ProxyError> {
        let rt = self.runtime();
        // Fetched CRLs are in place before the first caller.
        for f in rt.feeds.iter().flatten() {
            f.round().await;
            f.ensure_running(true);
        }
        // So is what the revocation feed has told so far.
        for r in rt.revocations.iter().flatten() {
            r.first().await;
            r.ensure_running();
        }
        let mut listeners = Vec::new();
        for (i, l) in rt.config.listeners.iter().enumerate() {
            let sock =
                listen(l.listen, l.limits.max_connections).map_err(|source| ProxyError::Io {
                    what: format!("listening on {}", l.listen),
                    source,
                })?;
            listeners.push(sock.local_addr().unwrap_or(l.listen));
            tokio::spawn(server::serve_listener(Arc::clone(self), i, sock));
        }
        let _ = self.bound.set(listeners.clone());
        let admin = match rt.config.admin {
            None => None,
            Some(a) => {
                let sock =
                    tokio::net::TcpListener::bind(a)
                        .await
                        .map_err(|source| ProxyError::Io {
                            what: format!("listening on admin {a}"),
                            source,
                        })?;
                let at = sock.local_addr().unwrap_or(a);
                tokio::spawn(admin::serve_admin(Arc::clone(self), sock));
                Some(at)
            }
        };
        reload::watch(Arc::clone(self));
        enroll::watch(self);
        tokio::spawn(memory::trim_when_freed(
            Arc::clone(self),
            memory::Policy::default(),
        ));
        Ok(Running { listeners, admin })
    }

    /// Stops as a service manager's SIGTERM asks: the listeners close (new callers are refused
    /// by the kernel, not queued), each HTTP connection finishes the request it is reading or
    /// answering and closes (HTTP/1.1 with `connection: close`, HTTP/2 with GOAWAY), an idle
    /// one closes at once, and a tcp relay runs on. Returns the connections still open when
    /// all have closed (0) or `drain` has passed.
    pub async fn stop(&self, drain: Duration) -> i64 {
        let open = self.metrics.connections.load(Ordering::Relaxed);
        tracing::info!(
            connections = open,
            drain_s = drain.as_secs_f64(),
            "stopping: draining"
        );
        self.stopping.send_replace(true);
        drained(&self.metrics.connections, drain).await
    }

    /// Completes once [`Proxy::stop`] has been called (at once if it has).
    pub(crate) fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stopping.subscribe();
        async move {
            let _ = rx.wait_for(|stopping| *stopping).await;
        }
    }

    /// The files whose change triggers a reload.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Source::File(p) = &self.source {
            files.push(p.clone());
        }
        for l in &self.runtime().config.listeners {
            files.extend([l.ca.clone(), l.cert.clone(), l.key.clone()]);
            files.extend(l.crls.iter().cloned());
        }
        files
    }
}

/// Waits until `open` connections have closed or `drain` has passed; returns those still open
/// (warned about when any are). Shared by [`Proxy::stop`] and [`tunnel::Tunnel::stop`].
pub(crate) async fn drained(open: &AtomicI64, drain: Duration) -> i64 {
    let deadline = tokio::time::Instant::now() + drain;
    loop {
        let now_open = open.load(Ordering::Relaxed);
        if now_open <= 0 || tokio::time::Instant::now() >= deadline {
            if now_open > 0 {
                tracing::warn!(
                    connections = now_open,
                    after_s = drain.as_secs_f64(),
                    "stopped with connections still open"
                );
            }
            return now_open.max(0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Binds a listener whose accept queue holds as many connections as the listener may serve
/// (as HAProxy sizes its backlog from `maxconn`; the kernel caps it at `net.core.somaxconn`):
/// with the usual 1,024, a burst of callers overflows the queue and the kernel drops their
/// handshakes' last ACK, so a caller that has not spoken yet waits for SYN-ACK retransmits
/// (1, 3, 7, 15 s) before the proxy even sees it.
fn listen(addr: SocketAddr, max_connections: usize) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(u32::try_from(max_connections).unwrap_or(u32::MAX).max(1024))
}
