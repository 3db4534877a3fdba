//! `mutual server`: the CA over HTTP (see `mutual-server`), and `mutual server init`.

use std::{io::Write, path::Path, sync::Arc};

use anyhow::{bail, Context, Result};
use mutual_server::App;
use mutual_store::{Store, TokenRecord, ALL_MOUNTS};

use crate::cli::{ServerArgs, ServerCommand};

/// Runs `mutual server [init]`.
pub async fn run(data: &Path, args: ServerArgs) -> Result<()> {
    if let Some(ServerCommand::Init) = args.command {
        return init(data).await;
    }
    // Held until the server stops: the --dev store lives in it.
    let mut _dev_dir = None;
    let store = if args.dev {
        let dir = tempfile::Builder::new()
            .prefix("mutual-dev-")
            .tempdir()
            .context("creating the --dev store")?;
        let store = Store::create_ephemeral(&dir.path().join("data")).await?;
        store
            .put_token(
                &args.dev_root_token_id,
                &TokenRecord {
                    accessor: "root".into(),
                    display_name: "root".into(),
                    mounts: vec![ALL_MOUNTS.into()],
                    created_at: time::OffsetDateTime::now_utc(),
                },
            )
            .await?;
        _dev_dir = Some(dir);
        store
    } else {
        let store = Store::open(data).await?;
        if !store.list_tokens().await?.iter().any(|t| t.is_root()) {
            bail!(
                "the store in \"{}\" has no root token; create it once with `mutual server init --data {}`",
                data.display(),
                data.display()
            );
        }
        store
    };
    let app = Arc::new(
        App::load(store)
            .await
            .map_err(|e| anyhow::anyhow!("loading the store: {e}"))?,
    );
    // Loaded before binding, so that a bad --tls-cert/--tls-key is reported at once.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Written, not println!: a caller that read the address and closed the pipe must not
    // bring the server down.
    let mut out = std::io::stdout();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let _ = writeln!(out, "mutual server listening on {scheme}://{addr}");
    if args.dev {
        let _ = writeln!(
            out,
            "dev mode: throwaway store, nothing is kept; Root Token: {}",
            args.dev_root_token_id
        );
    }
    let _ = out.flush();
    let router = mutual_server::router(app);
    match tls {
        Some(acceptor) => tls_serve(listener, acceptor, router).await,
        None => axum_serve(listener, router).await,
    }
}

/// The listener's TLS: our chain and key, no client certificate asked for (callers
/// authenticate with their token), HTTP/1.1 by ALPN.
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor> {
    let identity = mutual_tls::Identity::from_files(cert, key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(mutual_tls::load::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(
            (*identity.certified).clone(),
        )));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Serves the API over TLS until Ctrl-C: one task per connection, each handshake bounded.
async fn tls_serve(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
) -> Result<()> {
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(HANDSHAKE_RETRY).await;
                    continue;
                }
            },
        };
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake timed out");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The pause after a failed accept.
const HANDSHAKE_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

async fn axum_serve(listener: tokio::net::TcpListener, router: axum::Router) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving")
}

async fn init(data: &Path) -> Result<()> {
    let store = if data.join("mutual.db").exists() {
        Store::open(data).await?
    } else {
        Store::create(data).await?
    };
    if store.list_tokens().await?.iter().any(|t| t.is_root()) {
        bail!(
            "the store in \"{}\" already has a root token; revoke it with `mutual token revoke ACCESSOR` to make a new one",
            data.display()
        );
    }
    let (secret, record) = store
        .create_token("root", &[ALL_MOUNTS.to_string()])
        .await?;
    println!("Root Token: {secret}");
    println!("Accessor:   {}", record.accessor);
    println!("The token is shown once and stored hashed; keep it somewhere safe.");
    Ok(())
}
