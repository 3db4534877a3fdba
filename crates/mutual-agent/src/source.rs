//! An in-memory certificate source for long-running servers and clients: enrolls once, renews
//! in a task, and publishes each new [`Material`] on a `tokio::sync::watch` channel. A server
//! subscribes and calls `ServerTls::swap(material.server_material(..))`: build, validate (done
//! by [`Material::from_pems`]), swap; connections in flight keep what they had.
//!
//! The key lives in memory only: the renewal over mTLS presents the current [`Material`]'s
//! identity as it is, so a process that is killed leaves no key behind on disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{CaClient, ClientError, Request};
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
    stats: Arc<Stats>,
}

/// What the renewal task has done, for metrics: a failed attempt shows here while the
/// current certificate keeps serving.
#[derive(Debug, Default)]
pub struct Stats {
    /// Renewals that gave a new certificate.
    pub renewed: AtomicU64,
    /// Attempts that failed.
    pub failed: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Stats {
    /// The last failure's text, until the next success.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }
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
        Source::enroll_within(config, Duration::ZERO).await
    }

    /// Like [`Source::enroll`], but a CA that cannot be reached is tried again (once a second)
    /// until `patience` has passed: a service started together with its CA waits for it. A
    /// refusal (the role refuses the name, a bad token) is an error at once.
    pub async fn enroll_within(
        config: SourceConfig,
        patience: Duration,
    ) -> Result<Source, ClientError> {
        let deadline = Instant::now() + patience;
        let pems = loop {
            match crate::obtain(
                &config.client,
                &config.request,
                config.token.as_deref(),
                None,
            )
            .await
            {
                Ok((pems, _)) => break pems,
                Err(e) if !e.permanent() && Instant::now() < deadline => {
                    tracing::warn!(error = %e, "enrollment failed; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let first = publishable(pems)?;
        tracing::info!(serial = %first.serial, subject = %first.subject, decision = "enrolled", "certificate source ready");
        let (tx, rx) = watch::channel(Arc::new(first));
        let stats = Arc::new(Stats::default());
        let task = tokio::spawn(renew_loop(config, tx, Arc::clone(&stats)));
        Ok(Source { rx, task, stats })
    }

    /// A receiver that sees every new material.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Material>> {
        self.rx.clone()
    }

    /// Counts of renewals and failed attempts.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// The material now.
    pub fn current(&self) -> Arc<Material> {
        self.rx.borrow().clone()
    }
}

fn publishable(pems: crate::Pems) -> Result<Material, ClientError> {
    Material::from_pems(pems, Some(OffsetDateTime::now_utc())).map_err(ClientError::Local)
}

async fn renew_loop(config: SourceConfig, tx: watch::Sender<Arc<Material>>, stats: Arc<Stats>) {
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
        let result = crate::obtain(
            &config.client,
            &config.request,
            config.token.as_deref(),
            Some(&held.identity),
        )
        .await
        .and_then(|(pems, via)| Ok((publishable(pems)?, via)));
        match result {
            Ok((m, via)) => {
                failures = 0;
                stats.renewed.fetch_add(1, Ordering::Relaxed);
                stats.set_error(None);
                tracing::info!(serial = %m.serial, via = via.as_str(), decision = "renewed", "certificate renewed");
                if tx.send(Arc::new(m)).is_err() {
                    return; // nobody listens any more
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                stats.failed.fetch_add(1, Ordering::Relaxed);
                stats.set_error(Some(e.to_string()));
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
