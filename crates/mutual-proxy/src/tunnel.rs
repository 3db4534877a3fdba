//! Client mode: plaintext in on a local port, mTLS out to one upstream with our certificate,
//! so that an application that cannot do mTLS calls mTLS services. The identity is read again
//! on SIGHUP and when its files change; an enrolled tunnel (`enroll`) gets it from the CA and
//! swaps in each renewal instead.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mutual_tls::ClientTls;
use tokio::net::TcpListener;

use crate::ProxyError;

/// What the tunnel needs.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    /// Local plaintext address.
    pub listen: SocketAddr,
    /// Upstream host (also the TLS server name).
    pub host: String,
    /// Upstream port.
    pub port: u16,
    /// CAs the upstream's certificate must chain to.
    pub ca: PathBuf,
    /// Our chain.
    pub cert: PathBuf,
    /// Our key.
    pub key: PathBuf,
    /// Enrollment at a CA instead of `cert` and `key` (and of `ca`, when it is empty).
    pub enroll: Option<crate::enroll::EnrollConfig>,
}

/// Parses `https://HOST:PORT` (port 443 when absent).
pub fn parse_upstream(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("\"{url}\": the upstream is https://HOST:PORT"))?;
    let auth = rest.trim_end_matches('/');
    if auth.contains('/') || auth.is_empty() {
        return Err(format!("\"{url}\": the upstream has no path"));
    }
    if auth.starts_with(':') || auth.starts_with("[]") {
        return Err(format!("\"{url}\": the upstream has no host"));
    }
    if let Some(v6) = auth.strip_prefix('[') {
        let (h, p) = v6
            .split_once(']')
            .ok_or_else(|| format!("\"{url}\": unclosed ["))?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("\"{url}\": bad port"))?,
            None if p.is_empty() => 443,
            None => return Err(format!("\"{url}\": bad port")),
        };
        return Ok((h.to_string(), port));
    }
    match auth.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            p.parse().map_err(|_| format!("\"{url}\": bad port"))?,
        )),
        None => Ok((auth.to_string(), 443)),
    }
}

/// A running tunnel.
#[derive(Debug)]
pub struct Tunnel {
    config: TunnelConfig,
    client: ArcSwap<ClientTls>,
    source: Option<mutual_agent::Source>,
    /// Relays open now (each an accepted connection and its upstream).
    open: Arc<AtomicI64>,
    /// Set once by [`Tunnel::stop`]: the listener closes.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Tunnel {
    /// Loads the identity and CAs.
    pub fn load(config: TunnelConfig) -> Result<Arc<Tunnel>, ProxyError> {
        let client = Self::client(&config)?;
        Ok(Arc::new(Tunnel {
            config,
            client: ArcSwap::from_pointee(client),
            source: None,
            open: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    /// Like [`Tunnel::load`]; with `enroll`, enrolls first (a CA unreachable for
    /// [`crate::enroll::PATIENCE`], or a refusal, is an error naming the CA).
    pub async fn enroll(config: TunnelConfig) -> Result<Arc<Tunnel>, ProxyError> {
        let Some(e) = config.enroll.clone() else {
            return Tunnel::load(config);
        };
        let fail = |reason: String| ProxyError::Enroll {
            listen: config.listen,
            ca: e.urls.clone(),
            reason,
        };
        let sc = e.source_config().map_err(|err| fail(err.to_string()))?;
        let source = mutual_agent::Source::enroll_within(sc, crate::enroll::PATIENCE)
            .await
            .map_err(|err| fail(err.to_string()))?;
        let client = Self::enrolled_client(&config, &source.current())?;
        Ok(Arc::new(Tunnel {
            config,
            client: ArcSwap::from_pointee(client),
            source: Some(source),
            open: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }))
    }

    fn enrolled_client(
        c: &TunnelConfig,
        m: &mutual_agent::Material,
    ) -> Result<ClientTls, ProxyError> {
        let trust = if c.ca.as_os_str().is_empty() {
            m.trust.clone()
        } else {
            mutual_tls::TrustStore::from_file(&c.ca).map_err(|source| ProxyError::Load {
                listen: c.listen,
                source,
            })?
        };
        Ok(ClientTls::from_parts(trust, m.identity.clone()))
    }

    /// Swaps each renewal in; connections already open keep the identity they had.
    fn swap_renewals(self: &Arc<Self>, source: &mutual_agent::Source) {
        let mut updates = source.subscribe();
        let t = Arc::clone(self);
        tokio::spawn(async move {
            while updates.changed().await.is_ok() {
                let m = updates.borrow_and_update().clone();
                match Self::enrolled_client(&t.config, &m) {
                    Ok(c) => {
                        let old = t.client.load_full();
                        let old_serial = old
                            .identity()
                            .and_then(|i| mutual_pki::cert::facts(&i.chain[0]).ok())
                            .map(|f| f.serial.to_string())
                            .unwrap_or_default();
                        t.client.store(Arc::new(c));
                        let not_after = m
                            .validity
                            .not_after
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default();
                        tracing::info!(old_serial = %old_serial, serial = %m.serial, not_after = %not_after, "certificate swapped: {old_serial} -> {}", m.serial);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "renewed certificate refused; the current one stays");
                    }
                }
            }
        });
    }

    fn client(c: &TunnelConfig) -> Result<ClientTls, ProxyError> {
        ClientTls::from_files(&c.ca, &c.cert, &c.key).map_err(|source| ProxyError::Load {
            listen: c.listen,
            source,
        })
    }

    /// Reads the identity again; on error the old one stays.
    pub fn reload(&self) -> Result<(), ProxyError> {
        match Self::client(&self.config) {
            Ok(c) => {
                self.client.store(Arc::new(c));
                tracing::info!("tunnel identity reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "reload refused; keeping the previous identity");
                Err(e)
            }
        }
    }

    /// Binds and serves in a background task; returns the bound address.
    pub async fn start(self: &Arc<Self>) -> Result<SocketAddr, ProxyError> {
        let listener = TcpListener::bind(self.config.listen)
            .await
            .map_err(|source| ProxyError::Io {
                what: format!("listening on {}", self.config.listen),
                source,
            })?;
        let addr = listener.local_addr().unwrap_or(self.config.listen);
        let t = Arc::clone(self);
        tokio::spawn(async move { t.accept_loop(listener).await });
        if let Some(source) = &self.source {
            self.swap_renewals(source);
            crate::reload::sighup_with_nothing_to_reload();
            return Ok(addr);
        }
        let (t, files) = (Arc::clone(self), Arc::clone(self));
        crate::reload::watch_files(
            move || {
                let c = &files.config;
                vec![c.ca.clone(), c.cert.clone(), c.key.clone()]
            },
            move || {
                let _ = t.reload();
            },
        );
        Ok(addr)
    }

    /// Stops as a service manager's SIGTERM asks: the listener closes (new callers are refused
    /// by the kernel) and the relays open run on until either side closes them or `drain` has
    /// passed; the tunnel sees bytes, not requests, so it cannot close them between two.
    /// Returns the relays still open then.
    pub async fn stop(&self, drain: Duration) -> i64 {
        tracing::info!(
            connections = self.open.load(Ordering::Relaxed),
            drain_s = drain.as_secs_f64(),
            "stopping: draining"
        );
        self.stopping.send_replace(true);
        crate::drained(&self.open, drain).await
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener) {
        let mut stopping = self.stopping.subscribe();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopping.wait_for(|s| *s) => return,
            };
            let (mut tcp, remote) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let client = self.client.load_full();
            let (host, port) = (self.config.host.clone(), self.config.port);
            let open = Open::count(&self.open);
            tokio::spawn(async move {
                let _open = open;
                match client.connect(&host, port).await {
                    Ok(mut conn) => {
                        if let Err(e) =
                            tokio::io::copy_bidirectional(&mut tcp, &mut conn.stream).await
                        {
                            tracing::info!(peer.addr = %remote, upstream = %format!("{host}:{port}"), error = %e, "tunnel closed with an error");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(peer.addr = %remote, upstream = %format!("{host}:{port}"), error = %e, "cannot reach the upstream");
                    }
                }
            });
        }
    }
}

/// One relay counted open for as long as it lives.
struct Open(Arc<AtomicI64>);

impl Open {
    fn count(open: &Arc<AtomicI64>) -> Open {
        open.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(open))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        assert_eq!(
            parse_upstream("https://localhost:3000").unwrap(),
            ("localhost".into(), 3000)
        );
        assert_eq!(
            parse_upstream("https://www.example.com/").unwrap(),
            ("www.example.com".into(), 443)
        );
        assert_eq!(
            parse_upstream("https://[::1]:8443").unwrap(),
            ("::1".into(), 8443)
        );
        for bad in ["http://x:1", "https://x:y", "https://x:1/path", "https://"] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }
}
