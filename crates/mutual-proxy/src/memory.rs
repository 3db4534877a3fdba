//! Gives memory freed by connections back to the kernel. The allocator returns free pages on
//! its own only while the process keeps allocating: the buffers a parked HTTP/1.1 connection
//! freed, and the transients of every handshake, stay resident once the callers go quiet. With
//! 10,000 idle callers that is more than half of the proxy's RSS. A background task asks the
//! allocator to give those pages back ([`mutual_alloc::release_free_memory`]) when enough
//! connections freed memory since it last did, never on a connection's own path: the trim
//! takes milliseconds on a large heap (22 ms after 10,000 handshakes), during which the worker
//! it runs on serves nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Proxy;

/// When a trim pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How often the task looks (one atomic load): at most one trim per look. Connections
    /// park 1 s after their last request; their memory is back with the kernel a second later.
    pub every: Duration,
    /// Connections that freed their memory (handshake done, parked or closed) since the last
    /// trim that make one worth it.
    pub min_connections: u64,
    /// The time between two trims is at least this many times the last one took: trims cost
    /// at most 1/`spacing` of a worker however large the heap. (50: at most 2%, and what
    /// 10,000 callers free when they park is back a second after their handshakes' was.)
    pub spacing: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            every: Duration::from_secs(1),
            min_connections: 64,
            spacing: 50,
        }
    }
}

/// What happened since the last trim, as the task sees it at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since {
    /// Connections that freed their memory since the last trim.
    pub connections: u64,
    /// Time since the last trim.
    pub elapsed: Duration,
    /// How long the last trim took (zero before the first).
    pub last_took: Duration,
}

/// Whether to trim now. Polling the allocator's free bytes instead would cost as much as a
/// trim (glibc's `mallinfo2` walks the same free lists): connections are what frees memory
/// here, and counting them is one atomic add.
pub fn decide(policy: &Policy, since: &Since) -> bool {
    since.connections >= policy.min_connections
        && since.elapsed >= since.last_took.saturating_mul(policy.spacing)
}

/// Counts the connections that freed memory; shared by every listener.
#[derive(Debug, Default)]
pub struct Freed {
    connections: AtomicU64,
}

impl Freed {
    /// One connection freed memory: its handshake is done, it was parked, or it closed. One
    /// relaxed add: cheap enough for every connection.
    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }
}

/// Looks every [`Policy::every`] and trims when [`decide`] says so; runs until the process
/// ends.
pub(crate) async fn trim_when_freed(proxy: Arc<Proxy>, policy: Policy) {
    let mut tick = tokio::time::interval(policy.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    let mut last_took = Duration::ZERO;
    loop {
        tick.tick().await;
        let connections = proxy.freed.connections.load(Ordering::Relaxed);
        let since = Since {
            connections,
            elapsed: last.elapsed(),
            last_took,
        };
        if !decide(&policy, &since) {
            continue;
        }
        // Those freed while it runs count for the next one.
        proxy
            .freed
            .connections
            .fetch_sub(connections, Ordering::Relaxed);
        let rss_before = tracing::enabled!(tracing::Level::DEBUG)
            .then(rss_bytes)
            .flatten();
        let started = Instant::now();
        // On this worker, not a blocking thread: the allocator's lock would stall the worker's
        // allocations as long anyway, and a thread of its own would get an arena of its own.
        let released = mutual_alloc::release_free_memory();
        last_took = started.elapsed();
        last = Instant::now();
        proxy.metrics.memory_trim(last_took);
        if let Some(before) = rss_before {
            let after = rss_bytes().unwrap_or(before);
            tracing::debug!(
                connections,
                released,
                took_us = u64::try_from(last_took.as_micros()).unwrap_or(u64::MAX),
                rss_before = before,
                rss_after = after,
                rss_released = before.saturating_sub(after),
                "gave freed memory back to the kernel"
            );
        }
    }
}

/// The process's resident set in bytes, for the debug log.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_when_enough_was_freed_and_rarely() {
        let p = Policy::default();
        let ms = Duration::from_millis;
        // (connections, since the last trim, the last took, trim?)
        let cases = [
            (0, ms(1_000), ms(0), false),
            (63, ms(1_000), ms(0), false),
            (64, ms(1_000), ms(0), true),
            (10_000, ms(1_000), ms(0), true),
            // A trim of 22 ms waits 1.1 s for the next one, however much was freed.
            (10_000, ms(1_000), ms(22), false),
            (10_000, ms(1_099), ms(22), false),
            (10_000, ms(1_100), ms(22), true),
            (63, ms(60_000), ms(22), false),
            // Cheap trims are only held to the interval.
            (64, ms(1_000), ms(1), true),
            // A trim that took absurdly long does not overflow, it just never comes back
            // before its spacing.
            (64, Duration::MAX, Duration::MAX, true),
            (64, ms(2_000), Duration::MAX, false),
        ];
        for (connections, elapsed, last_took, want) in cases {
            let since = Since {
                connections,
                elapsed,
                last_took,
            };
            assert_eq!(decide(&p, &since), want, "{since:?}");
        }
    }
}
