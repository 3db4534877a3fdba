//! `mutual tunnel`: plaintext in on a local port, mTLS out to one upstream.

use anyhow::Result;
use mutual_proxy::tunnel::{parse_upstream, Tunnel, TunnelConfig};

use crate::cli::TunnelArgs;
use crate::cmd::UsageError;

use super::backend::Target;

/// Runs the tunnel until SIGTERM or SIGINT, then drains it (for at most [`super::proxy::DRAIN`]).
pub async fn run(target: &Target, a: TunnelArgs) -> Result<()> {
    let enroll = super::enroll_config(&a.enroll, target, &a.cert, &a.key)?;
    super::logging::init(false);
    let (host, port) = parse_upstream(&a.upstream).map_err(UsageError)?;
    let listen = a
        .listen
        .parse()
        .map_err(|_| UsageError(format!("--listen \"{}\" is not HOST:PORT", a.listen)))?;
    // clap requires --ca, --cert and --key unless --enroll is given.
    let tunnel = Tunnel::enroll(TunnelConfig {
        listen,
        host: host.clone(),
        port,
        ca: a.ca.unwrap_or_default(),
        cert: a.cert.unwrap_or_default(),
        key: a.key.unwrap_or_default(),
        enroll,
    })
    .await?;
    let stop = super::proxy::wait_for_shutdown();
    let addr = tunnel.start().await?;
    println!("mutual tunnel listening on http://{addr} -> https://{host}:{port}");
    stop.await;
    tunnel.stop(super::proxy::DRAIN).await;
    Ok(())
}
