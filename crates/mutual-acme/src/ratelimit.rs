//! A fixed-window request limit, per account: pure, the clock is an argument.

/// Requests counted in the current window.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    start: u64,
    count: u32,
}

impl RateWindow {
    /// Counts a request at `now` (seconds) against `limit` per `window` seconds: true when it
    /// is allowed. A zero limit allows everything.
    pub fn allow(&mut self, now: u64, limit: u32, window: u64) -> bool {
        if limit == 0 {
            return true;
        }
        if now >= self.start.saturating_add(window.max(1)) {
            self.start = now;
            self.count = 0;
        }
        if self.count >= limit {
            return false;
        }
        self.count += 1;
        true
    }

    /// Seconds until the window opens again, for `Retry-After`.
    pub fn retry_after(&self, now: u64, window: u64) -> u64 {
        self.start.saturating_add(window).saturating_sub(now).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let mut w = RateWindow::default();
        let got: Vec<bool> = [100, 101, 102, 159, 160, 161]
            .iter()
            .map(|&t| w.allow(t, 2, 60))
            .collect();
        assert_eq!(got, [true, true, false, false, true, true]);
        assert_eq!(w.retry_after(161, 60), 59);
        let mut unlimited = RateWindow::default();
        assert!((0..1000).all(|_| unlimited.allow(5, 0, 60)));
    }
}
