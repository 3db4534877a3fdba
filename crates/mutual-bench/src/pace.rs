//! A fixed total request rate: when each connection's requests are due, and waiting until then
//! precisely (from a tokio task or a thread). Latency under a fixed rate is measured from the
//! due time, not from the send, so a stalled server is not hidden by coordinated omission.

use std::time::{Duration, Instant};

/// When one connection's requests are due, when `workers` connections share a total rate.
#[derive(Debug, Clone)]
pub struct Schedule {
    next: Instant,
    interval: Duration,
}

impl Schedule {
    /// The schedule of connection `worker` (of `workers`) sharing `rate` requests per second
    /// from `start`. Each connection sends every `workers / rate` seconds; their first sends
    /// are spread over that interval, so the server sees an even stream, not bursts.
    pub fn new(start: Instant, rate: f64, worker: usize, workers: usize) -> Schedule {
        let workers = workers.max(1);
        let interval = Duration::from_secs_f64(workers as f64 / rate);
        Schedule {
            next: start + interval.mul_f64(worker as f64 / workers as f64),
            interval,
        }
    }

    /// The due time of the next request; each call is one interval after the previous.
    pub fn next_due(&mut self) -> Instant {
        let due = self.next;
        self.next += self.interval;
        due
    }
}

/// How long before a due time the timer hands over to yielding: tokio's timer rounds up to
/// whole milliseconds and a thread's sleep overshoots by tens of microseconds, either of which
/// would be added to every latency measured from the schedule. The load generator has a core
/// of its own to yield on.
const PRECISE: Duration = Duration::from_millis(2);

/// Waits, in a tokio task, until `due`.
pub async fn until(due: Instant) {
    if due > Instant::now() + PRECISE {
        tokio::time::sleep_until((due - PRECISE).into()).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

/// Waits, on a thread of its own, until `due`.
pub fn until_blocking(due: Instant) {
    let now = Instant::now();
    if due > now + PRECISE {
        std::thread::sleep(due - now - PRECISE);
    }
    while Instant::now() < due {
        std::thread::yield_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_share_the_rate_evenly() {
        let start = Instant::now();
        let ms = |d: Instant| (d - start).as_secs_f64() * 1000.0;
        // (rate, worker, workers, first three due times in ms)
        let table: &[(f64, usize, usize, [f64; 3])] = &[
            (1000.0, 0, 1, [0.0, 1.0, 2.0]),
            (1000.0, 0, 4, [0.0, 4.0, 8.0]),
            (1000.0, 1, 4, [1.0, 5.0, 9.0]),
            (1000.0, 3, 4, [3.0, 7.0, 11.0]),
            (2000.0, 8, 16, [4.0, 12.0, 20.0]),
        ];
        for (rate, worker, workers, want) in table {
            let mut s = Schedule::new(start, *rate, *worker, *workers);
            let got = [ms(s.next_due()), ms(s.next_due()), ms(s.next_due())];
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() < 1e-6,
                    "{rate}/s worker {worker}/{workers}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn waiting_reaches_the_due_time_and_not_much_later() {
        for wait in [Duration::ZERO, Duration::from_millis(3)] {
            let due = Instant::now() + wait;
            until_blocking(due);
            let now = Instant::now();
            assert!(now >= due, "returned early");
            // Generous bound: the machine is shared.
            assert!(
                now - due < Duration::from_millis(200),
                "{:?} late",
                now - due
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let due = Instant::now() + Duration::from_millis(3);
        rt.block_on(until(due));
        assert!(Instant::now() >= due);
    }
}
