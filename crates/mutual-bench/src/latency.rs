//! Latencies of the measured requests, and their percentiles. Every sample is kept (a
//! microsecond each, four bytes): at the rates measured here that is a few megabytes, and the
//! percentiles are exact rather than a histogram's bucket bounds.

use std::time::Duration;

/// The latencies of one worker's requests, or of all workers' once merged.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    us: Vec<u32>,
}

/// Percentiles of a set of latencies, in microseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The median.
    pub p50: u32,
    /// 90th percentile.
    pub p90: u32,
    /// 99th percentile.
    pub p99: u32,
    /// 99.9th percentile.
    pub p999: u32,
    /// The slowest.
    pub max: u32,
}

impl Latencies {
    /// Room for `n` samples, so that the measuring loop does not grow the vector.
    pub fn with_capacity(n: usize) -> Latencies {
        Latencies {
            us: Vec::with_capacity(n),
        }
    }

    /// Records one request's latency (saturating at about 71 minutes).
    pub fn record(&mut self, d: Duration) {
        self.us.push(d.as_micros().min(u32::MAX as u128) as u32);
    }

    /// Adds another worker's samples.
    pub fn merge(&mut self, other: Latencies) {
        self.us.extend(other.us);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.us.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.us.is_empty()
    }

    /// The percentiles (all zero without samples). Percentile `p` is the sample at rank
    /// `round((n - 1) * p)` of the sorted samples.
    pub fn summary(&self) -> Summary {
        let mut sorted = self.us.clone();
        sorted.sort_unstable();
        let at = |p: f64| -> u32 {
            if sorted.is_empty() {
                return 0;
            }
            let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
            sorted[i.min(sorted.len() - 1)]
        };
        Summary {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: sorted.last().copied().unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(us: impl IntoIterator<Item = u64>) -> Latencies {
        let mut l = Latencies::default();
        for u in us {
            l.record(Duration::from_micros(u));
        }
        l
    }

    #[test]
    fn percentiles_are_ranks_of_the_sorted_samples() {
        let table: &[(Latencies, Summary)] = &[
            (Latencies::default(), Summary::default()),
            (
                of([7]),
                Summary {
                    p50: 7,
                    p90: 7,
                    p99: 7,
                    p999: 7,
                    max: 7,
                },
            ),
            // Unsorted input; rank round(0.5 * 4) = 2.
            (
                of([50, 10, 40, 20, 30]),
                Summary {
                    p50: 30,
                    p90: 50,
                    p99: 50,
                    p999: 50,
                    max: 50,
                },
            ),
            // 1..=1000: rank round(999 * p).
            (
                of(1..=1000),
                Summary {
                    p50: 501,
                    p90: 900,
                    p99: 990,
                    p999: 999,
                    max: 1000,
                },
            ),
        ];
        for (i, (l, want)) in table.iter().enumerate() {
            assert_eq!(l.summary(), *want, "row {i}");
        }
    }

    #[test]
    fn merged_workers_count_every_sample_and_long_ones_saturate() {
        let mut a = of([1, 2]);
        a.merge(of([3]));
        assert_eq!(a.len(), 3);
        assert_eq!(a.summary().max, 3);
        let mut long = Latencies::default();
        long.record(Duration::from_secs(u64::MAX / 4));
        assert_eq!(long.summary().max, u32::MAX);
    }
}
