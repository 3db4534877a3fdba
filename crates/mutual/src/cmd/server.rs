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
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    // Written, not println!: a caller that read the address and closed the pipe must not
    // bring the server down.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "mutual server listening on http://{addr}");
    if args.dev {
        let _ = writeln!(
            out,
            "dev mode: throwaway store, nothing is kept; Root Token: {}",
            args.dev_root_token_id
        );
    }
    let _ = out.flush();
    let router = mutual_server::router(app);
    axum_serve(listener, router).await
}

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
