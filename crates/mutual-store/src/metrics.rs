//! Counters of the store's database work, for the server's `/metrics`: failures met (every
//! one that went through the store's translation point) and the latency of the group commit.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

static DB_ERRORS: AtomicU64 = AtomicU64::new(0);
static COMMITS: AtomicU64 = AtomicU64::new(0);
static COMMIT_FAILURES: AtomicU64 = AtomicU64::new(0);
static COMMIT_MICROS: AtomicU64 = AtomicU64::new(0);
/// Upper bounds (seconds) of the commit latency histogram's buckets.
pub const COMMIT_BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0];
static BUCKETS: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// What the store's counters say now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreMetrics {
    /// Database failures (any engine), since the process started.
    pub db_errors: u64,
    /// Group commits (batches of issued certificates) that committed.
    pub commits: u64,
    /// Group commits that failed.
    pub commit_failures: u64,
    /// Total seconds spent committing.
    pub commit_seconds: f64,
    /// Commits at most as long as each bound of [`COMMIT_BUCKETS`] (cumulative).
    pub commit_buckets: [u64; 8],
}

/// The counters now.
pub fn store_metrics() -> StoreMetrics {
    let mut buckets = [0; 8];
    for (b, a) in buckets.iter_mut().zip(BUCKETS.iter()) {
        *b = a.load(Ordering::Relaxed);
    }
    StoreMetrics {
        db_errors: DB_ERRORS.load(Ordering::Relaxed),
        commits: COMMITS.load(Ordering::Relaxed),
        commit_failures: COMMIT_FAILURES.load(Ordering::Relaxed),
        commit_seconds: COMMIT_MICROS.load(Ordering::Relaxed) as f64 / 1e6,
        commit_buckets: buckets,
    }
}

pub(crate) fn db_error() {
    DB_ERRORS.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn commit_done(took: Duration, ok: bool) {
    if !ok {
        COMMIT_FAILURES.fetch_add(1, Ordering::Relaxed);
        return;
    }
    COMMITS.fetch_add(1, Ordering::Relaxed);
    COMMIT_MICROS.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    let secs = took.as_secs_f64();
    for (bound, bucket) in COMMIT_BUCKETS.iter().zip(BUCKETS.iter()) {
        if secs <= *bound {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
    }
}
