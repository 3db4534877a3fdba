//! An in-memory certificate source for long-running servers and clients: enrolls once, renews
//! in a task, and publishes each new [`Material`] on a `tokio::sync::watch` channel. A server
//! subscribes and calls `ServerTls::swap(material.server_material(..))`: build, validate (done
//! by [`Material::from_pems`]), swap; connections in flight keep what they had.
//!
//! The current chain and key are also kept in a private temporary directory (mode 0700, key
//! 0600): `mutual-tls`'s `ClientTls`, which the renewal over mTLS uses, reads its identity from
//! files.

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{CaClient, ClientError, Request};
use crate::files::OutDir;
use crate::material::Material;
use crate::timing::{CertState, Plan};

/// What a [`Source`] needs.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The CA.
    pub client: CaClient,
    /// What to ask for.
    pub request: Request,
    /// The bootstrap token (and the fallback when the CA has no renewal by certificate).
    pub token: Option<String>,
    /// Renewal and retry timing.
    pub plan: Plan,
}

impl SourceConfig {
    /// The default plan.
    pub fn new(client: CaClient, request: Request, token: Option<String>) -> SourceConfig {
        SourceConfig {
            client,
            request,
            token,
            plan: Plan::default(),
        }
    }
}

/// Fresh material on a watch channel; the renewal task stops when the source is dropped.
#[derive(Debug)]
pub struct Source {
    rx: watch::Receiver<Arc<Material>>,
    task: JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Source {
    /// Enrolls (an error when the first certificate cannot be had: nothing to serve with),
    /// then renews in a task.
    pub async fn enroll(config: SourceConfig) -> Result<Source, ClientError> {
        let dir = tempfile::Builder::new()
            .prefix("mutual-source")
            .tempdir()
            .map_err(|e| ClientError::Local(format!("private directory: {e}")))?;
        let out = OutDir::open(dir.path()).map_err(|e| ClientError::Local(e.to_string()))?;
        let (pems, _) = crate::obtain(
            &config.client,
            &config.request,
            config.token.as_deref(),
            None,
        )
        .await?;
        let first = publishable(&out, pems)?;
        tracing::info!(serial = %first.serial, subject = %first.subject, decision = "enrolled", "certificate source ready");
        let (tx, rx) = watch::channel(Arc::new(first));
        let task = tokio::spawn(renew_loop(config, out, tx, dir));
        Ok(Source { rx, task })
    }

    /// A receiver that sees every new material.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Material>> {
        self.rx.clone()
    }

    /// The material now.
    pub fn current(&self) -> Arc<Material> {
        self.rx.borrow().clone()
    }
}

fn publishable(out: &OutDir, pems: crate::Pems) -> Result<Material, ClientError> {
    let now = OffsetDateTime::now_utc();
    let material = Material::from_pems(pems, Some(now)).map_err(ClientError::Local)?;
    out.write(&material.pems, now)
        .map_err(|e| ClientError::Local(e.to_string()))?;
    Ok(material)
}

async fn renew_loop(
    config: SourceConfig,
    out: OutDir,
    tx: watch::Sender<Arc<Material>>,
    _dir: tempfile::TempDir,
) {
    let plan = config.plan;
    let host = config.request.common_name.clone();
    let mut failures = 0u32;
    loop {
        let held = tx.borrow().clone();
        let seed = held.seed(&host);
        let state = plan.state(&held.validity, OffsetDateTime::now_utc(), seed);
        if let CertState::Fresh { renew_in } = state {
            if failures == 0 {
                tokio::time::sleep(renew_in).await;
            }
        }
        let cert = out.file("cert.pem");
        let key = out.file("key.pem");
        let result = crate::obtain(
            &config.client,
            &config.request,
            config.token.as_deref(),
            Some((&cert, &key)),
        )
        .await
        .and_then(|(pems, via)| Ok((publishable(&out, pems)?, via)));
        match result {
            Ok((m, via)) => {
                failures = 0;
                tracing::info!(serial = %m.serial, via = via.as_str(), decision = "renewed", "certificate renewed");
                if tx.send(Arc::new(m)).is_err() {
                    return; // nobody listens any more
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let now = OffsetDateTime::now_utc();
                let delay: Duration =
                    plan.retry_after(failures, e.permanent(), now, Some(&held.validity), seed);
                let state = plan.state(&held.validity, now, seed);
                tracing::warn!(error = %e, code = e.code(), failures, retry_in_s = delay.as_secs_f64(), state = state.code(), decision = "retry", "renewal failed; keeping the current certificate");
                tokio::time::sleep(delay).await;
            }
        }
    }
}
