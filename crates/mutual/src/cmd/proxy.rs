//! `mutual proxy`: the authorizing mTLS reverse proxy, from `--config FILE` or from flags.

use anyhow::Result;
use mutual_proxy::config::{FileConfig, FileListener, FileRoute, FileUpstream};
use mutual_proxy::{Proxy, ProxyError, Source};

use crate::cli::{DenyAt, LogFormat, ProxyArgs};
use crate::cmd::UsageError;

/// Logs to stderr as text or JSON; `MUTUAL_LOG` sets the filter (default `info`).
pub fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MUTUAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if json {
        b.json().flatten_event(true).try_init()
    } else {
        b.try_init()
    };
}

fn from_flags(a: &ProxyArgs) -> FileConfig {
    let backend = a.backend.clone().unwrap_or_default();
    FileConfig {
        admin: a
            .admin
            .clone()
            .map(|listen| mutual_proxy::config::FileAdmin { listen }),
        log_format: Some(
            if a.log_format == LogFormat::Json {
                "json"
            } else {
                "human"
            }
            .into(),
        ),
        access_log: Some(!a.no_access_log),
        listeners: vec![FileListener {
            listen: a.listen.clone(),
            ca: a.ca.clone().unwrap_or_default(),
            cert: a.cert.clone().unwrap_or_default(),
            key: a.key.clone().unwrap_or_default(),
            crl: a.crl.clone(),
            handshake_timeout: Some(a.handshake_timeout.clone()),
            idle_timeout: Some(a.idle_timeout.clone()),
            request_timeout: Some(a.request_timeout.clone()),
            max_connections: Some(a.max_connections),
            max_header_bytes: Some(a.max_header_bytes),
            max_body_bytes: Some(a.max_body_bytes),
            client_cert_headers: a.client_cert_headers,
            routes: vec![FileRoute {
                host: "*".into(),
                path: "/".into(),
                upstream: "backend".into(),
                allow: if a.allow.is_empty() {
                    vec!["any".into()]
                } else {
                    a.allow.clone()
                },
                deny_at: Some(
                    if a.deny_at == DenyAt::Handshake {
                        "handshake"
                    } else {
                        "http"
                    }
                    .into(),
                ),
            }],
            ..FileListener::default()
        }],
        upstreams: vec![FileUpstream {
            name: "backend".into(),
            servers: vec![backend],
            balance: None,
            protocol: None,
            eject_after: None,
            eject_for: None,
            connect_timeout: None,
        }],
    }
}

/// Runs the proxy until interrupted.
pub async fn run(a: ProxyArgs) -> Result<()> {
    let source = match &a.config {
        Some(path) => Source::File(path.clone()),
        None => {
            let f = from_flags(&a);
            // A bad flag value is a usage error (exit 2), not a refused operation.
            f.check().map_err(|e| UsageError(e.to_string()))?;
            Source::Fixed(Box::new(f))
        }
    };
    let json = match &source {
        Source::File(p) => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| FileConfig::parse(&t).ok())
            .is_some_and(|f| f.log_format.as_deref() == Some("json")),
        Source::Fixed(_) => a.log_format == LogFormat::Json,
    };
    init_logging(json);
    let proxy = Proxy::load(source).map_err(|e| match e {
        ProxyError::Config(c) if a.config.is_none() => {
            anyhow::Error::new(UsageError(c.to_string()))
        }
        other => anyhow::Error::new(other),
    })?;
    for w in proxy.warnings() {
        eprintln!("warning: {w}");
    }
    let running = proxy.start().await?;
    for addr in &running.listeners {
        println!("mutual proxy listening on https://{addr}");
    }
    if let Some(admin) = running.admin {
        println!("admin on http://{admin} (/metrics, /ready, /live)");
    }
    wait_for_shutdown().await;
    Ok(())
}

/// Returns on SIGINT or SIGTERM.
pub async fn wait_for_shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
