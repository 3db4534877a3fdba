//! Several nodes on one database: what one node changes is in force on every node within a
//! second. Each node keeps in memory the revoked set (certindex.rs), tokens and parsed
//! policies (briefly), and its mounts with their roles and CA; a change committed anywhere
//! reaches it two ways (docs/high-availability.md):
//!
//! - at once, by PostgreSQL's `NOTIFY` (the store's `listen`): a revocation makes the node
//!   catch its revoked set up, a change of tokens, policies, mounts or CRL configuration
//!   drops or reloads that cache;
//! - within [`RESYNC`], by re-reading the store's change counters (`change_epochs`), for a
//!   notification lost while the listening connection was down, and on SQLite, where there
//!   are no notifications (several processes on one file).
//!
//! Revocations have their own 1 s catch-up already (certindex.rs, `spawn_catch_up`).

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
    time::Duration,
};

use mutual_store::Change;

use crate::state::App;

/// How often the change counters are re-read.
pub const RESYNC: Duration = Duration::from_secs(1);

/// Applies a change of `kind` made elsewhere to this node's caches.
async fn apply(app: &App, kind: &str) {
    match kind {
        "tokens" => app.forget_tokens(),
        "policies" => app.forget_policies(),
        "mounts" => {
            if let Err(e) = app.reload_mounts().await {
                tracing::warn!(error = %e, "reloading mounts changed elsewhere failed");
            }
        }
        crate::crl_config::CONFIG_CHANGE => crate::crl_config::reload_configurations(app).await,
        _ => {}
    }
}

async fn apply_all(app: &App) {
    for kind in [
        "tokens",
        "policies",
        "mounts",
        crate::crl_config::CONFIG_CHANGE,
    ] {
        apply(app, kind).await;
    }
    crate::certindex::catch_up_now(app).await;
}

/// Starts the listener (PostgreSQL) and the periodic re-read of the change counters, for as
/// long as the app lives.
pub fn spawn_cluster_sync(app: &Arc<App>) {
    let weak: Weak<App> = Arc::downgrade(app);
    let store = app.store.clone();
    tokio::spawn({
        let weak = weak.clone();
        async move {
            let mut changes = match store.listen().await {
                Ok(Some(rx)) => rx,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "listening for other nodes' changes failed; re-reading every second instead");
                    return;
                }
            };
            while let Some(change) = changes.recv().await {
                let Some(app) = weak.upgrade() else { return };
                match change {
                    Change::Revoked(_) => crate::certindex::catch_up_now(&app).await,
                    Change::Changed(kind) => apply(&app, &kind).await,
                    Change::Resync => {
                        tracing::info!(
                            "the database connection for notifications is back; re-reading"
                        );
                        apply_all(&app).await;
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut seen: Option<HashMap<String, i64>> = None;
        let mut tick = tokio::time::interval(RESYNC);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            let now: HashMap<String, i64> = match app.store.change_epochs().await {
                Ok(rows) => rows.into_iter().collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "re-reading the change counters failed");
                    continue;
                }
            };
            if let Some(before) = &seen {
                for (kind, epoch) in &now {
                    if before.get(kind) != Some(epoch) {
                        apply(&app, kind).await;
                    }
                }
            }
            seen = Some(now);
        }
    });
}

/// How the database answered a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DbState {
    /// Within [`SLOW`].
    Up,
    /// Later than [`SLOW`] but within [`HEALTH_TIMEOUT`]: serving, but a load balancer may
    /// prefer another node (Vault's 429, "standby").
    Slow,
    /// Not within [`HEALTH_TIMEOUT`], or with an error: nothing that writes can succeed here.
    Down,
}

/// An answer slower than this is [`DbState::Slow`].
const SLOW: Duration = Duration::from_secs(1);
/// An answer later than this (or none) is [`DbState::Down`].
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

/// The database's reachability, as `sys/health` reports it.
pub(crate) struct DbHealth {
    pub state: DbState,
    engine: &'static str,
    millis: u128,
}

impl DbHealth {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "engine": self.engine,
            "reachable": self.state != DbState::Down,
            "latency_ms": self.millis,
        })
    }
}

/// Asks the database one trivial query, bounded by [`HEALTH_TIMEOUT`].
pub(crate) async fn database_health(store: &mutual_store::Store) -> DbHealth {
    let started = std::time::Instant::now();
    let answered = tokio::time::timeout(HEALTH_TIMEOUT, store.reachable())
        .await
        .unwrap_or(false);
    let took = started.elapsed();
    DbHealth {
        state: db_state(answered, took),
        engine: match store.engine() {
            mutual_store::Engine::Sqlite => "sqlite",
            mutual_store::Engine::Postgres => "postgres",
        },
        millis: took.as_millis(),
    }
}

fn db_state(answered: bool, took: Duration) -> DbState {
    match (answered, took > SLOW) {
        (false, _) => DbState::Down,
        (true, true) => DbState::Slow,
        (true, false) => DbState::Up,
    }
}

/// The store's counters in Prometheus' text format: database failures, and the group
/// commit's latency as a histogram.
pub(crate) fn store_prometheus() -> String {
    let m = mutual_store::store_metrics();
    let mut out = String::new();
    out.push_str("# HELP mutual_db_errors_total Database failures met by the store.\n");
    out.push_str("# TYPE mutual_db_errors_total counter\n");
    out.push_str(&format!("mutual_db_errors_total {}\n", m.db_errors));
    out.push_str(
        "# HELP mutual_commit_failures_total Group commits of issued certificates that failed.\n",
    );
    out.push_str("# TYPE mutual_commit_failures_total counter\n");
    out.push_str(&format!(
        "mutual_commit_failures_total {}\n",
        m.commit_failures
    ));
    out.push_str(
        "# HELP mutual_commit_seconds Latency of the group commit of issued certificates.\n",
    );
    out.push_str("# TYPE mutual_commit_seconds histogram\n");
    for (bound, n) in mutual_store::COMMIT_BUCKETS.iter().zip(m.commit_buckets) {
        out.push_str(&format!(
            "mutual_commit_seconds_bucket{{le=\"{bound}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "mutual_commit_seconds_bucket{{le=\"+Inf\"}} {}\n",
        m.commits
    ));
    out.push_str(&format!("mutual_commit_seconds_sum {}\n", m.commit_seconds));
    out.push_str(&format!("mutual_commit_seconds_count {}\n", m.commits));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_health_state_follows_the_answer_and_its_latency() {
        let cases = [
            (true, Duration::from_millis(3), DbState::Up),
            (true, Duration::from_millis(1500), DbState::Slow),
            (false, Duration::from_millis(3), DbState::Down),
            (false, Duration::from_secs(2), DbState::Down),
        ];
        for (answered, took, want) in cases {
            assert_eq!(db_state(answered, took), want, "{answered} {took:?}");
        }
    }

    #[test]
    fn store_metrics_are_prometheus_text() {
        let text = store_prometheus();
        for line in [
            "# TYPE mutual_db_errors_total counter",
            "# TYPE mutual_commit_seconds histogram",
            "mutual_commit_seconds_bucket{le=\"+Inf\"} ",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
