//! `mutual tunnel`: plaintext in on a local port, mTLS out to one upstream.

use anyhow::Result;
use mutual_proxy::tunnel::{parse_upstream, Tunnel, TunnelConfig};

use crate::cli::TunnelArgs;
use crate::cmd::UsageError;

/// Runs the tunnel until interrupted.
pub async fn run(a: TunnelArgs) -> Result<()> {
    super::proxy::init_logging(false);
    let (host, port) = parse_upstream(&a.upstream).map_err(UsageError)?;
    let listen = a
        .listen
        .parse()
        .map_err(|_| UsageError(format!("--listen \"{}\" is not HOST:PORT", a.listen)))?;
    let tunnel = Tunnel::load(TunnelConfig {
        listen,
        host: host.clone(),
        port,
        ca: a.ca,
        cert: a.cert,
        key: a.key,
    })?;
    let addr = tunnel.start().await?;
    println!("mutual tunnel listening on http://{addr} -> https://{host}:{port}");
    super::proxy::wait_for_shutdown().await;
    Ok(())
}
