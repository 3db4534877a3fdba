//! `mutual server`: the CA over HTTP (see `mutual-server`), and `mutual server init`.

use std::{io::Write, path::Path, sync::Arc};

use anyhow::{bail, Context, Result};
use mutual_server::App;
use mutual_store::{Store, TokenRecord, ALL_MOUNTS};

use crate::cli::{ServerArgs, ServerCommand};

/// The prefix of every `--dev` store's directory.
const DEV_PREFIX: &str = "mutual-dev-";

/// Runs `mutual server [init]`.
pub async fn run(data: &Path, args: ServerArgs) -> Result<()> {
    if let Some(ServerCommand::Init) = args.command {
        return init(data).await;
    }
    // One line per decision (renewal, revocation, OCSP, refusal) on stderr.
    super::logging::init(false);
    // Held until the server stops: the --dev store lives in it.
    let mut _dev_dir = None;
    let store = if args.dev {
        // In memory where the system has a tmpfs, as Vault's dev server keeps its storage.
        let dir = super::scratch::Scratch::create(DEV_PREFIX, true)
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
                    role: None,
                    num_uses: 0,
                    uses: 0,
                    expires_at: None,
                    policies: vec!["root".into()],
                    parent: None,
                    lease: Default::default(),
                },
            )
            .await?;
        _dev_dir = Some(dir);
        store
    } else if let Some(url) = super::database() {
        let store = Store::open_postgres(url).await?;
        if !store.list_tokens().await?.iter().any(|t| t.is_root()) {
            bail!(
                "the store in {} has no root token; create it once with `mutual server init --database URL`",
                mutual_store::redact(url)
            );
        }
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
    app.set_acme_validation(mutual_server::AcmeValidation {
        http_port: args.acme_http_port,
        tls_port: args.acme_tls_port,
        exclude: mutual_server::AcmeValidation::parse_exclude(&args.acme_exclude)
            .map_err(|e| anyhow::anyhow!("--acme-exclude: {e}"))?,
        timeout: args.acme_timeout,
        attempts: args.acme_attempts.max(1),
        rate_limit: args.acme_rate_limit,
        ..mutual_server::AcmeValidation::default()
    });
    // Revocations made by other processes on the store reach OCSP, renewal and the feed.
    mutual_server::spawn_catch_up(&app);
    // Tokens, policies and mounts changed by other nodes (or processes) on the same store.
    mutual_server::spawn_cluster_sync(&app);
    // Older revocations go to the keys that signed them before a CRL needs them.
    mutual_server::spawn_attribution(&app);
    if let Some(path) = &args.audit_log {
        app.audit_to_file(path)
            .await
            .map_err(|e| anyhow::anyhow!("--audit-log {}: {e}", path.display()))?;
    }
    // Loaded before binding, so that a bad --tls-cert/--tls-key is reported at once.
    let logins = Arc::new(
        args.cert_login
            .iter()
            .map(|r| parse_cert_login(r))
            .collect::<Result<Vec<_>>>()?,
    );
    let client_ca = match &args.tls_client_ca {
        Some(path) => Some(
            mutual_tls::TrustStore::from_file(path)
                .with_context(|| format!("reading --tls-client-ca {}", path.display()))?,
        ),
        None => None,
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(api_tls(cert, key, client_ca)?),
        _ => None,
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let public = match &args.public_listen {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("--public-listen {a}"))?,
        ),
        None => None,
    };
    // Before the address is printed: see wait_for_shutdown.
    let stop_api = super::proxy::wait_for_shutdown();
    let stop_public = super::proxy::wait_for_shutdown();
    // Written, not println!: a caller that read the address and closed the pipe must not
    // bring the server down.
    let mut out = std::io::stdout();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let _ = writeln!(out, "mutual server listening on {scheme}://{addr}");
    if let Some(p) = &public {
        let _ = writeln!(
            out,
            "mutual server public (CA certificates, CRLs, OCSP) on http://{}",
            p.local_addr()?
        );
    }
    if args.dev {
        let _ = writeln!(
            out,
            "dev mode: throwaway store, nothing is kept; Root Token: {}",
            args.dev_root_token_id
        );
    }
    let _ = out.flush();
    let router = mutual_server::router(Arc::clone(&app));
    let api = async {
        match tls {
            Some(tls) => tls_serve(listener, tls, router, logins, stop_api).await,
            None => axum_serve(listener, router, stop_api).await,
        }
    };
    match public {
        Some(p) => {
            let public = axum_serve(p, mutual_server::public_router(app), stop_public);
            let (api, public) = tokio::join!(api, public);
            api.and(public)
        }
        None => api.await,
    }
}

/// One `--cert-login MATCHER=MOUNT[,MOUNT]` rule.
#[derive(Debug)]
struct CertLogin {
    matcher: mutual_tls::Matcher,
    mounts: Vec<String>,
}

/// Parses `MATCHER=MOUNT[,MOUNT]`; the matcher is everything before the last `=`, since
/// matchers contain `=` themselves and mount paths do not.
fn parse_cert_login(rule: &str) -> Result<CertLogin> {
    let Some((matcher, mounts)) = rule.rsplit_once('=') else {
        bail!("--cert-login \"{rule}\": expected MATCHER=MOUNT[,MOUNT], e.g. cn=alice.example.com=pki");
    };
    let matcher: mutual_tls::Matcher = matcher
        .parse()
        .with_context(|| format!("--cert-login \"{rule}\""))?;
    let mounts: Vec<String> = mounts
        .split(',')
        .map(|m| m.trim().trim_matches('/').to_string())
        .filter(|m| !m.is_empty())
        .collect();
    if mounts.is_empty() {
        bail!("--cert-login \"{rule}\": no mount after the last \"=\"");
    }
    if mounts.iter().any(|m| m == ALL_MOUNTS) {
        bail!("--cert-login \"{rule}\": a certificate login cannot be granted \"*\" (the root token's scope)");
    }
    Ok(CertLogin { matcher, mounts })
}

/// What the listener tells the API about a connection's verified client certificate: its
/// names, its chain, and the mounts of every `--cert-login` rule that matches it.
fn client_cert(
    peer: &mutual_tls::PeerIdentity,
    chain: Vec<Vec<u8>>,
    logins: &[CertLogin],
) -> mutual_server::ClientCert {
    let mut mounts: Vec<String> = Vec::new();
    for rule in logins.iter().filter(|r| r.matcher.matches(peer)) {
        for m in &rule.mounts {
            if !mounts.contains(m) {
                mounts.push(m.clone());
            }
        }
    }
    mutual_server::ClientCert::new(
        peer.common_name.clone().unwrap_or_default(),
        peer.subject.clone(),
        mounts,
        chain,
    )
}

/// The listener's TLS: our chain and key, HTTP/1.1 by ALPN. Callers authenticate with their
/// token; with --tls-client-ca a client certificate is also asked for (not required) and
/// verified as every mutual server does, for `auth/cert/login`.
#[derive(Debug)]
struct ApiTls {
    acceptor: mutual_tls::Acceptor,
    certified: Arc<rustls::sign::CertifiedKey>,
    client_auth: mutual_tls::ClientAuth,
}

fn api_tls(cert: &Path, key: &Path, client_ca: Option<mutual_tls::TrustStore>) -> Result<ApiTls> {
    let identity = mutual_tls::Identity::from_files(cert, key)?;
    let client_auth = match client_ca {
        Some(trust) => mutual_tls::ClientAuth::Optional(Arc::new(mutual_tls::TrustCheck::new(
            trust,
            Vec::new(),
            None,
        ))),
        None => mutual_tls::ClientAuth::Off,
    };
    Ok(ApiTls {
        acceptor: mutual_tls::Acceptor::new(),
        certified: identity.certified,
        client_auth,
    })
}

/// Serves the API over TLS until SIGINT or SIGTERM: one task per connection, each handshake
/// bounded; then lets requests under way finish for up to [`DRAIN`](super::proxy::DRAIN).
async fn tls_serve(
    listener: tokio::net::TcpListener,
    tls: ApiTls,
    router: axum::Router,
    logins: Arc<Vec<CertLogin>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let tls = Arc::new(tls);
    tokio::pin!(shutdown);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, remote)) => (tcp, remote),
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(HANDSHAKE_RETRY).await;
                    continue;
                }
            },
        };
        let (tls, router, logins) = (Arc::clone(&tls), router.clone(), logins.clone());
        // Taken at accept, so a connection still in its handshake at the signal is waited for
        // too, and closes after its first answer.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let terms = |_sni: Option<&str>| mutual_tls::Terms {
                certified: Arc::clone(&tls.certified),
                client_auth: tls.client_auth.clone(),
                alpn: vec![b"http/1.1".to_vec()],
            };
            // A refusal is logged by the acceptor.
            let Ok(established) = tls.acceptor.accept(tcp, HANDSHAKE_TIMEOUT, terms).await else {
                return;
            };
            // The verified client certificate, if any, goes with every request of the
            // connection (the API reads it at `auth/cert/login` and `renew`), shared: each
            // request clones the extension.
            // The caller's address, for AppRole's CIDR bounds and the audit log.
            let router = router.layer(axum::Extension(axum::extract::ConnectInfo(remote)));
            let router = match &established.peer {
                Some(peer) => router.layer(axum::Extension(Arc::new(client_cert(
                    peer,
                    established.chain,
                    &logins,
                )))),
                None => router,
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(established.stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    mutual_tls::http::drain_connections(graceful, super::proxy::DRAIN).await;
    Ok(())
}

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The pause after a failed accept.
const HANDSHAKE_RETRY: std::time::Duration = std::time::Duration::from_millis(50);

async fn axum_serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    use axum::serve::ListenerExt;
    // An answer is written whole; holding its last segment for the client's ACK (Nagle) would
    // only delay it, by up to the client's delayed-ACK timer.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let signalled = Arc::new(tokio::sync::Notify::new());
    let on_signal = Arc::clone(&signalled);
    let serving = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown.await;
        on_signal.notify_one();
    });
    // On SIGTERM new connections are refused and requests under way finish; a feed subscriber
    // (long-poll or event stream) would keep the server up for as long as it likes, so the
    // drain is bounded, as a service manager bounds a stop.
    let drained = async {
        signalled.notified().await;
        tokio::time::sleep(super::proxy::DRAIN).await;
    };
    tokio::select! {
        served = serving => served.context("serving"),
        () = drained => {
            tracing::warn!(after_s = super::proxy::DRAIN.as_secs(), "stopping with connections still open");
            Ok(())
        }
    }
}

async fn init(data: &Path) -> Result<()> {
    let store = if let Some(url) = super::database() {
        Store::open_postgres(url).await?
    } else if data.join("mutual.db").exists() {
        Store::open(data).await?
    } else {
        Store::create(data).await?
    };
    if store.list_tokens().await?.iter().any(|t| t.is_root()) {
        bail!(
            "the store in {} already has a root token; revoke it with `mutual token revoke ACCESSOR` to make a new one",
            match super::database() {
                Some(url) => mutual_store::redact(url),
                None => format!("\"{}\"", data.display()),
            }
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
