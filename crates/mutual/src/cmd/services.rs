//! `mutual serve hello` (the hello service over mTLS) and `mutual serve echo` (a plain HTTP
//! backend that reflects request headers).

use std::convert::Infallible;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use std::path::{Path, PathBuf};

use mutual_agent::{Material, Source};
use mutual_proxy::enroll::EnrollConfig;
use mutual_tls::load::crls_from_files;
use mutual_tls::{
    http as mhttp, AuthorizeLayer, DenyAt, Policy, ServerMaterial, ServerTls, ServerTlsBuilder,
    TrustStore,
};

use super::backend::Target;
use tokio::net::TcpListener;

use crate::cli::{ServeCommand, ServeEchoArgs, ServeHelloArgs};

pub async fn run(target: &Target, c: ServeCommand) -> Result<()> {
    super::logging::init(false);
    match c {
        ServeCommand::Hello(a) => hello(target, *a).await,
        ServeCommand::Echo(a) => echo(a).await,
    }
}

async fn bind(listen: &str) -> Result<TcpListener> {
    TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))
}

async fn hello(target: &Target, a: ServeHelloArgs) -> Result<()> {
    let enroll = super::enroll_config(&a.enroll, target, &a.cert, &a.key)?;
    let policy = (!a.allow.is_empty()).then(|| Policy::new(a.allow));
    let mut builder = ServerTls::builder()
        .handshake_timeout(a.handshake_timeout)
        .max_handshakes(a.max_handshakes);
    for (path, set) in [(&a.ca, 0), (&a.cert, 1), (&a.key, 2)] {
        if let Some(p) = path {
            builder = match set {
                0 => builder.ca(p),
                1 => builder.cert(p),
                _ => builder.key(p),
            };
        }
    }
    for crl in &a.crl {
        builder = builder.crl(crl);
    }
    if let (Some(p), DenyAt::Handshake) = (&policy, a.deny_at) {
        builder = builder.deny_at_handshake(p.clone());
    }
    let tls = match &enroll {
        None => {
            let tls = builder.build()?;
            reload_on_sighup(tls.clone());
            tls
        }
        Some(e) => {
            let tls = enrolled(e, builder, a.ca.as_deref(), &a.crl).await?;
            mutual_proxy::reload::sighup_with_nothing_to_reload();
            tls
        }
    };
    for w in tls.warnings() {
        eprintln!("warning: {w}");
    }
    // SIGTERM or Ctrl-C: the port closes, requests under way finish (for at most DRAIN), exit 0.
    let stop = super::proxy::wait_for_shutdown();
    let listener = bind(&a.listen).await?;
    let addr = listener.local_addr()?;
    let trust = tls.material().trust().subjects.join(", ");
    eprintln!("mutual: serving hello on https://{addr} (client certificates from: {trust})");
    if let Some(p) = &policy {
        eprintln!("mutual: allowing {p} (refused at {:?})", a.deny_at);
    }

    let hello = mhttp::service_fn(|req: Request<Incoming>| async move {
        let name = query_param(req.uri().query().unwrap_or(""), "name")
            .unwrap_or_else(|| "World".to_string());
        Ok::<_, Infallible>(mhttp::text(StatusCode::OK, format!("Hello {name}\n")))
    });
    let drain = super::proxy::DRAIN;
    match (policy, a.deny_at) {
        (Some(p), DenyAt::Http) => {
            let svc = tower::ServiceBuilder::new()
                .layer(AuthorizeLayer::new(p))
                .service(hello);
            mhttp::serve_with_shutdown(listener, tls, svc, stop, drain).await?
        }
        _ => mhttp::serve_with_shutdown(listener, tls, hello, stop, drain).await?,
    }
    Ok(())
}

/// Enrolls, builds the server on the first certificate, and swaps each renewal in (build,
/// validate, swap: connections in flight keep theirs). Without --ca the CA's trust bundle,
/// renewed with the certificate, says who may call.
async fn enrolled(
    e: &EnrollConfig,
    builder: ServerTlsBuilder,
    ca: Option<&Path>,
    crl: &[PathBuf],
) -> Result<ServerTls> {
    let source = e.source_config()?;
    let source = Source::enroll_within(source, mutual_proxy::enroll::PATIENCE)
        .await
        .map_err(|err| anyhow::anyhow!("cannot enroll at {}: {err}", e.urls))?;
    let crls = crls_from_files(crl)?;
    let fixed_trust = ca.map(TrustStore::from_file).transpose()?;
    let policy = builder.handshake_policy().cloned();
    let material = move |m: &Material| {
        let trust = fixed_trust.clone().unwrap_or_else(|| m.trust.clone());
        ServerMaterial::new(m.identity.clone(), trust, crls.clone(), policy.clone())
    };
    let tls = builder.build_with(material(&source.current()));
    let mut updates = source.subscribe();
    let swapping = tls.clone();
    tokio::spawn(async move {
        // The source renews for as long as this task holds it.
        let source = source;
        while updates.changed().await.is_ok() {
            let m = updates.borrow_and_update().clone();
            let old = swapping.material();
            let old_serial = mutual_pki::cert::facts(&old.identity().chain[0])
                .map(|f| f.serial.to_string())
                .unwrap_or_default();
            swapping.swap(material(&m));
            let not_after = m
                .validity
                .not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            tracing::info!(old_serial = %old_serial, serial = %m.serial, not_after = %not_after, "certificate swapped: {old_serial} -> {}", m.serial);
        }
        drop(source);
    });
    Ok(tls)
}

/// Reloads the files on SIGHUP (the handler installed before the "serving" line).
fn reload_on_sighup(tls: ServerTls) {
    let reloading = mutual_proxy::reload::on_sighup(move || {
        let _ = tls.reload();
    });
    if let Err(e) = reloading {
        tracing::warn!(error = %e, "cannot listen for SIGHUP; one would end the process");
    }
}

/// The first value of a query parameter, percent-decoded (`+` is a space).
fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves echo until SIGINT or SIGTERM, then stops as `serve hello` does: the port closes, the
/// requests under way are answered (for at most DRAIN), exit 0.
async fn echo(a: ServeEchoArgs) -> Result<()> {
    let shutdown = super::proxy::wait_for_shutdown();
    let listener = bind(&a.listen).await?;
    eprintln!("mutual: serving echo on http://{}", listener.local_addr()?);
    tokio::pin!(shutdown);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let tcp = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|req: Request<Incoming>| async move {
                Ok::<_, Infallible>(reflect(&req))
            });
            // HTTP/1.1, or HTTP/2 with prior knowledge (h2c), as a proxy's upstream may speak.
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    mhttp::drain_connections(graceful, super::proxy::DRAIN).await;
    Ok(())
}

/// The request's method, HTTP version, path and headers as JSON; repeated headers are joined with `, `.
fn reflect<B>(req: &Request<B>) -> Response<Full<Bytes>> {
    let mut headers = serde_json::Map::new();
    for (name, value) in req.headers() {
        let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers
            .entry(name.as_str().to_string())
            .and_modify(|old| {
                if let serde_json::Value::String(s) = old {
                    s.push_str(", ");
                    s.push_str(&v);
                }
            })
            .or_insert(serde_json::Value::String(v));
    }
    let body = serde_json::json!({
        "method": req.method().as_str(),
        "version": format!("{:?}", req.version()),
        "path": req.uri().to_string(),
        "headers": headers,
    });
    let mut res = Response::new(Full::new(Bytes::from(format!("{body:#}\n"))));
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names() {
        assert_eq!(query_param("name=Alice", "name").as_deref(), Some("Alice"));
        assert_eq!(
            query_param("x=1&name=Jo+Doe", "name").as_deref(),
            Some("Jo Doe")
        );
        assert_eq!(
            query_param("name=%41l%69ce", "name").as_deref(),
            Some("Alice")
        );
        assert_eq!(query_param("name=100%", "name").as_deref(), Some("100%"));
        assert_eq!(query_param("", "name"), None);
    }
}
