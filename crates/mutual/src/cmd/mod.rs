//! One function per command; each opens the store, calls the library, prints.

mod agent;
mod backend;
mod ca;
mod ca_info;
mod ca_server;
mod certs;
mod curl;
mod demo;
mod doctor;
mod import_vault;
mod inspect;
mod issue;
mod logging;
mod proxy;
mod remote;
mod role;
mod rotate;
mod scratch;
mod services;
mod token;
mod tunnel;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use anyhow::Result;
use mutual_store::Store;

use crate::cli::{Cli, Command};

/// An error in how the command was called (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `--database` (or `MUTUAL_DATABASE`), set once when the command line is read: the store
/// is then that PostgreSQL database rather than `--data`.
static DATABASE: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

/// The PostgreSQL URL of `--database`, if given.
pub fn database() -> Option<&'static str> {
    DATABASE.get().and_then(|d| d.as_deref())
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> Result<()> {
    if let Some(url) = &cli.database {
        if !mutual_store::is_postgres_url(url) {
            return Err(UsageError(format!(
                "--database {}: not a PostgreSQL URL (postgres://USER@HOST:PORT/DB)",
                mutual_store::redact(url)
            ))
            .into());
        }
    }
    let _ = DATABASE.set(cli.database.clone());
    let json = cli.json;
    let target = backend::Target {
        data: cli.data.clone(),
        addr: cli.addr.clone(),
        token: cli.token.clone(),
        cacert: cli.cacert.clone(),
    };
    let data = cli.data.as_path();
    // Each command's future behind its own pointer and vtable: awaited in place, every
    // command's state machine would be inlined into this one, hundreds of KiB of code that
    // each command then touches in pieces, resident for as long as a long-running command
    // (the agent) lives.
    let command: Pin<Box<dyn Future<Output = Result<()>> + '_>> = match cli.command {
        Command::Ca(c) => Box::pin(ca::run(&target, json, c.0)),
        Command::Role(c) => Box::pin(role::run(&target, json, c.0)),
        Command::Issue(a) => Box::pin(issue::issue(&target, json, a.0)),
        Command::Sign(a) => Box::pin(issue::sign(&target, json, a.0)),
        Command::Revoke(a) => Box::pin(certs::revoke(&target, json, a.0)),
        Command::Crl(a) => Box::pin(certs::crl(&target, json, a.0)),
        Command::Certs(a) => Box::pin(certs::list(&target, json, a.0)),
        Command::Server(a) => Box::pin(ca_server::run(data, a.0)),
        Command::Token(c) => Box::pin(token::run(&target, json, c.0)),
        Command::Inspect(a) => Box::pin(inspect::inspect(json, a.0)),
        Command::Verify(a) => Box::pin(inspect::verify(json, a.0)),
        Command::Demo(a) => Box::pin(demo::run(a.0)),
        Command::Serve(c) => Box::pin(services::run(&target, c.0)),
        Command::Curl(a) => Box::pin(curl::run(json, a.0)),
        Command::Doctor(a) => Box::pin(doctor::run(json, a.0)),
        Command::Proxy(a) => Box::pin(proxy::run(&target, *a.0)),
        Command::Tunnel(a) => Box::pin(tunnel::run(&target, a.0)),
        Command::Agent(a) => Box::pin(agent::run(&target, json, a.0)),
    };
    command.await
}

/// The enrollment that `--enroll` and its companions describe, with the global `--token`
/// (or `MUTUAL_TOKEN`) and `--cacert`; `None` without `--enroll`. `--cert`/`--key` with
/// `--enroll` is one line and exit 1.
pub fn enroll_config(
    e: &crate::cli::EnrollArgs,
    target: &backend::Target,
    cert: &Option<std::path::PathBuf>,
    key: &Option<std::path::PathBuf>,
) -> Result<Option<mutual_proxy::enroll::EnrollConfig>> {
    let Some(urls) = &e.enroll else {
        return Ok(None);
    };
    if cert.is_some() || key.is_some() {
        anyhow::bail!(
            "--enroll cannot go with --cert/--key: the certificate comes from the CA {urls}"
        );
    }
    Ok(Some(mutual_proxy::enroll::EnrollConfig {
        urls: urls.clone(),
        mount: e.mount.clone(),
        // clap requires --role and --cn with --enroll.
        role: e.role.clone().unwrap_or_default(),
        cn: e.cn.clone().unwrap_or_default(),
        san: e.san.clone(),
        ip: e.ip.clone(),
        uri: e.uri.clone(),
        token: target.token.clone(),
        ttl: e.ttl,
        cacert: target.cacert.clone(),
    }))
}

/// Opens the store of `--data`, or the PostgreSQL database of `--database`.
pub async fn open(data: &Path) -> Result<Store> {
    match database() {
        Some(url) => Ok(Store::open_postgres(url).await?),
        None => Ok(Store::open(data).await?),
    }
}
