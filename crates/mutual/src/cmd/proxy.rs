//! `mutual proxy`: the authorizing mTLS reverse proxy, from `--config FILE` or from flags.

use anyhow::Result;
use mutual_proxy::config::{Config, FileConfig, Limits, SingleBackend};
use mutual_proxy::enroll::EnrollConfig;
use mutual_proxy::{Proxy, Source};

use super::backend::Target;

use crate::cli::{LogFormat, ProxyArgs};

/// The proxy that the flags describe, from values clap has already parsed: a bad value was
/// reported by its flag before this runs, so nothing here can fail.
fn from_flags(a: ProxyArgs, enroll: Option<EnrollConfig>) -> Config {
    let limits = Limits {
        handshake_timeout: a.handshake_timeout,
        idle_timeout: a.idle_timeout,
        request_timeout: a.request_timeout,
        max_connections: a.max_connections,
        max_header_bytes: a.max_header_bytes,
        max_body_bytes: a.max_body_bytes,
    };
    let feed = a
        .revocation_feed
        .clone()
        .map(|url| mutual_proxy::revocation::FeedConfig {
            url,
            ca: a.revocation_feed_ca.clone(),
            stale: if a.revocation_feed_stale.as_deref() == Some("fail_closed") {
                mutual_proxy::crlstate::Stale::FailClosed
            } else {
                mutual_proxy::crlstate::Stale::KeepLast
            },
            max_stale: a.revocation_feed_max_stale,
        });
    let mut config = SingleBackend {
        listen: a.listen,
        // clap requires these three and --backend unless --config is given.
        backend: a.backend.unwrap_or_default(),
        ca: a.ca.unwrap_or_default(),
        cert: a.cert.unwrap_or_default(),
        key: a.key.unwrap_or_default(),
        crls: a.crl,
        allow: a.allow,
        deny_at: a.deny_at,
        admin: a.admin,
        json_logs: a.log_format == LogFormat::Json,
        access_log: !a.no_access_log,
        limits,
        client_cert_headers: a.client_cert_headers,
        enroll,
    }
    .config();
    config.listeners[0].revocation_feed = feed;
    config
}

/// Runs the proxy until interrupted.
pub async fn run(target: &Target, a: ProxyArgs) -> Result<()> {
    let enroll = super::enroll_config(&a.enroll, target, &a.cert, &a.key)?;
    let source = match a.config.clone() {
        Some(path) => Source::File(path),
        None => Source::Fixed(Box::new(from_flags(a, enroll))),
    };
    let json = match &source {
        Source::File(p) => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| FileConfig::parse(&t).ok())
            .is_some_and(|f| f.log_format.as_deref() == Some("json")),
        Source::Fixed(c) => c.json_logs,
    };
    super::logging::init(json);
    // Enrolled listeners get their first certificate before anything listens.
    let proxy = Proxy::enroll(source).await?;
    for w in proxy.warnings() {
        eprintln!("warning: {w}");
    }
    let stop = wait_for_shutdown();
    let running = proxy.start().await?;
    for addr in &running.listeners {
        println!("mutual proxy listening on https://{addr}");
    }
    if let Some(admin) = running.admin {
        println!("admin on http://{admin} (/metrics, /ready, /live)");
    }
    stop.await;
    proxy.stop(DRAIN).await;
    Ok(())
}

/// How long connections may take to finish after SIGTERM or SIGINT: under the service
/// managers' kill timeouts (systemd 90 s, Kubernetes 30 s), and bounded at all because a caller
/// may hold a connection (a feed subscriber, an idle keep-alive) as long as it likes.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Completes on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: call it before saying that the process listens, because a service
/// manager (or a test) may send SIGTERM the moment it reads that, and a signal that comes before
/// the handlers ends the process by the default action, without its drain or its clean-up.
pub fn wait_for_shutdown() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    async move {
        tokio::select! {
            _ = next_signal(&mut term) => {}
            _ = next_signal(&mut int) => {}
        }
    }
}

/// Completes on the signal's next delivery; never, when its handler could not be installed.
pub async fn next_signal(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}
