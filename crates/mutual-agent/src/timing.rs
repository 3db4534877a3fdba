//! When to renew, when to retry, and what state a certificate is in: pure functions of the
//! certificate's validity, the time, and a seed. No IO, no clock: the caller passes `now`.
//!
//! The rules, after step-ca (`--daemon`: renew at 2/3 of the lifetime, jittered) and
//! cert-manager (`renewBefore` = 1/3 of the lifetime by default):
//!
//! - **Renew** at 2/3 of the lifetime, minus a jitter of up to [`Plan::jitter`] of the lifetime
//!   drawn from a seed (a fleet issued in the same second spreads its renewals instead of
//!   hitting the CA in step). Jitter only moves renewal earlier, never past 2/3.
//! - The lifetime starts at notBefore, or at the moment we received the certificate when that
//!   is later: CAs backdate notBefore (Vault and mutual by 30 s, step by 1 min) against clock
//!   skew, and for a 30 s certificate a 30 s backdate would put 2/3 of the "lifetime" before
//!   the certificate even arrived, and renew in a loop.
//! - **Retry** after a failure with exponential backoff from [`Plan::min_retry`], capped at
//!   [`Plan::max_retry`] and at a tenth of the lifetime (a 30 s certificate retries every few
//!   seconds, a 90-day one every few minutes). A retry is never scheduled past the point where
//!   10% of the life is left (it is pulled in to that point), and once inside the last 10% it
//!   retries at least twice before expiry.
//! - A **permanent** refusal (the role refuses the name, the token is wrong) is retried at the
//!   cap, not in a storm: it stays refused until the configuration changes.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

/// A certificate's validity window, and when we received it if known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// When this host received the certificate (the generation's time on disk), if known.
    pub received: Option<OffsetDateTime>,
}

impl Validity {
    /// Where the useful lifetime starts: notBefore, or the receipt when later (backdating).
    pub fn start(&self) -> OffsetDateTime {
        match self.received {
            Some(r) if r > self.not_before && r < self.not_after => r,
            _ => self.not_before,
        }
    }

    /// The useful lifetime (zero for a window that is empty or inverted).
    pub fn lifetime(&self) -> Duration {
        to_std(self.not_after - self.start())
    }

    /// The moment at which only `fraction` of the lifetime is left.
    fn left(&self, fraction: f64) -> OffsetDateTime {
        self.not_after - self.lifetime().mul_f64(fraction)
    }
}

/// The knobs of renewal and retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The fraction of the lifetime after which to renew (2/3).
    pub renew_fraction: f64,
    /// The largest jitter, as a fraction of the lifetime (0.05).
    pub jitter: f64,
    /// The fraction of the lifetime left under which a certificate is critical (0.10).
    pub critical_fraction: f64,
    /// The first retry delay (1 s).
    pub min_retry: Duration,
    /// The largest retry delay (5 min).
    pub max_retry: Duration,
}

impl Default for Plan {
    fn default() -> Plan {
        Plan {
            renew_fraction: 2.0 / 3.0,
            jitter: 0.05,
            critical_fraction: 0.10,
            min_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
        }
    }
}

/// A number in `[0, 1)` from a seed (splitmix64): deterministic for tests, different per host
/// and per certificate when seeded with both.
pub fn unit(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A seed from bytes (the serial, the host name): FNV-1a.
pub fn seed_of(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl Plan {
    /// When to renew this certificate.
    pub fn renew_at(&self, v: &Validity, seed: u64) -> OffsetDateTime {
        let fraction = self.renew_fraction - self.jitter * unit(seed);
        v.start() + v.lifetime().mul_f64(fraction.max(0.0))
    }

    /// The moment under which less than 10% of the life is left.
    pub fn critical_at(&self, v: &Validity) -> OffsetDateTime {
        v.left(self.critical_fraction)
    }

    /// How long to wait before attempt `failures + 1` after `failures` failed attempts in a
    /// row (`failures >= 1`), at `now`, for the certificate we hold (`None`: we hold none).
    pub fn retry_after(
        &self,
        failures: u32,
        permanent: bool,
        now: OffsetDateTime,
        held: Option<&Validity>,
        seed: u64,
    ) -> Duration {
        let mut cap = self.max_retry;
        if let Some(v) = held {
            cap = cap.min(v.lifetime() / 10).max(self.min_retry);
        }
        let delay = if permanent {
            cap
        } else {
            let exp = failures.saturating_sub(1).min(30);
            let base = self.min_retry.saturating_mul(1u32 << exp).min(cap);
            // Up to 10% shorter, so that agents that failed together do not retry together.
            base.mul_f64(1.0 - 0.1 * unit(seed ^ u64::from(failures)))
        };
        let Some(v) = held else {
            return delay.max(self.min_retry);
        };
        let critical = self.critical_at(v);
        let delay = if now < critical {
            // Never sleep past the last 10%: pull the retry in to that point.
            delay.min(to_std(critical - now))
        } else if now < v.not_after {
            // Inside the last 10%: at least two more tries before expiry.
            delay.min(to_std(v.not_after - now) / 3)
        } else {
            delay
        };
        delay.max(self.min_retry)
    }

    /// The state of a certificate at `now`.
    pub fn state(&self, v: &Validity, now: OffsetDateTime, seed: u64) -> CertState {
        if now < v.not_before {
            return CertState::NotYetValid {
                not_before: v.not_before,
                ahead: to_std(v.not_before - now),
            };
        }
        if now >= v.not_after {
            return CertState::Expired {
                not_after: v.not_after,
                ago: to_std(now - v.not_after),
            };
        }
        let renew_at = self.renew_at(v, seed);
        let left = to_std(v.not_after - now);
        if now >= self.critical_at(v) {
            CertState::Critical { left }
        } else if now >= renew_at {
            CertState::Due { left }
        } else {
            CertState::Fresh {
                renew_in: to_std(renew_at - now),
            }
        }
    }
}

/// What a certificate's validity means at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertState {
    /// Before the renewal point.
    Fresh {
        /// Time until the renewal point.
        renew_in: Duration,
    },
    /// Past the renewal point (warn once).
    Due {
        /// Time until expiry.
        left: Duration,
    },
    /// Less than 10% of the life left (error).
    Critical {
        /// Time until expiry.
        left: Duration,
    },
    /// Past notAfter.
    Expired {
        /// notAfter.
        not_after: OffsetDateTime,
        /// How long ago.
        ago: Duration,
    },
    /// notBefore is in the future: the clock of this host or of the CA is wrong.
    NotYetValid {
        /// notBefore.
        not_before: OffsetDateTime,
        /// How far ahead of our clock.
        ahead: Duration,
    },
}

impl CertState {
    /// A stable code for logs, metrics and `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            CertState::Fresh { .. } => "fresh",
            CertState::Due { .. } => "due",
            CertState::Critical { .. } => "critical",
            CertState::Expired { .. } => "expired",
            CertState::NotYetValid { .. } => "clock_skew",
        }
    }

    /// True when a renewal should be attempted now.
    pub fn needs_renewal(&self) -> bool {
        !matches!(self, CertState::Fresh { .. })
    }

    /// True when the certificate can be presented now.
    pub fn usable(&self) -> bool {
        matches!(
            self,
            CertState::Fresh { .. } | CertState::Due { .. } | CertState::Critical { .. }
        )
    }
}

impl fmt::Display for CertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertState::Fresh { renew_in } => {
                write!(f, "valid; renewal due in {}", secs(*renew_in))
            }
            CertState::Due { left } => write!(
                f,
                "past its renewal point (2/3 of its lifetime); expires in {}",
                secs(*left)
            ),
            CertState::Critical { left } => write!(
                f,
                "less than 10% of its lifetime left; expires in {}",
                secs(*left)
            ),
            CertState::Expired { not_after, ago } => write!(
                f,
                "expired {} ago (notAfter {})",
                secs(*ago),
                rfc3339(*not_after)
            ),
            CertState::NotYetValid { not_before, ahead } => write!(
                f,
                "not valid until {} ({} ahead of this host's clock): clock skew between this \
                 host and the CA; check NTP on both",
                rfc3339(*not_before),
                secs(*ahead)
            ),
        }
    }
}

fn secs(d: Duration) -> String {
    mutual_pki::duration::human(d)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn to_std(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).unwrap()
    }

    fn window(nb: i64, na: i64, received: Option<i64>) -> Validity {
        Validity {
            not_before: at(nb),
            not_after: at(na),
            received: received.map(at),
        }
    }

    fn no_jitter() -> Plan {
        Plan {
            jitter: 0.0,
            ..Plan::default()
        }
    }

    #[test]
    fn renewal_point() {
        // (notBefore, notAfter, received, jitter, seed) -> renew within [lo, hi] (seconds)
        type Case = (i64, i64, Option<i64>, f64, u64, i64, i64);
        let cases: &[Case] = &[
            // 90 days, no jitter: exactly 60 days in.
            (0, 90 * 86400, None, 0.0, 1, 60 * 86400, 60 * 86400),
            // 30 s certificate backdated by 30 s, received at 30: renew at 30 + 20.
            (0, 60, Some(30), 0.0, 1, 50, 50),
            // received before notBefore (CA clock ahead): notBefore counts.
            (100, 130, Some(50), 0.0, 1, 120, 120),
            // received after notAfter (nonsense): notBefore counts.
            (0, 30, Some(99), 0.0, 1, 20, 20),
            // jitter 5% of 300 s moves the point into [185, 200].
            (0, 300, None, 0.05, 7, 185, 200),
            (0, 300, None, 0.05, 8, 185, 200),
        ];
        for &(nb, na, rec, jitter, seed, lo, hi) in cases {
            let plan = Plan {
                jitter,
                ..Plan::default()
            };
            let got = plan.renew_at(&window(nb, na, rec), seed);
            assert!(
                got >= at(lo) && got <= at(hi),
                "{nb}..{na} rec {rec:?}: {got} not in [{lo}, {hi}]"
            );
        }
    }

    #[test]
    fn jitter_is_deterministic_and_spread() {
        let plan = Plan::default();
        let v = window(0, 3000, None);
        assert_eq!(plan.renew_at(&v, 42), plan.renew_at(&v, 42));
        let points: std::collections::BTreeSet<_> =
            (0..50u64).map(|s| plan.renew_at(&v, s)).collect();
        assert!(points.len() > 40, "a fleet spreads: {}", points.len());
        assert!(points.iter().all(|p| *p <= at(2000) && *p >= at(1850)));
    }

    #[test]
    fn states() {
        let plan = no_jitter();
        let v = window(0, 300, None);
        // (now, code, message)
        let cases: &[(i64, &str, &str)] = &[
            (-90, "clock_skew", "not valid until 2027-01-15T08:00:00Z (1m 30s ahead of this host's clock): clock skew between this host and the CA; check NTP on both"),
            (0, "fresh", "valid; renewal due in 3m 20s"),
            (199, "fresh", "valid; renewal due in 1s"),
            (200, "due", "past its renewal point (2/3 of its lifetime); expires in 1m 40s"),
            (269, "due", "past its renewal point (2/3 of its lifetime); expires in 31s"),
            (270, "critical", "less than 10% of its lifetime left; expires in 30s"),
            (300, "expired", "expired 0s ago (notAfter 2027-01-15T08:05:00Z)"),
            (400, "expired", "expired 1m 40s ago (notAfter 2027-01-15T08:05:00Z)"),
        ];
        for &(now, code, msg) in cases {
            let s = plan.state(&v, at(now), 0);
            assert_eq!(s.code(), code, "at {now}");
            assert_eq!(s.to_string(), msg, "at {now}");
            assert_eq!(s.needs_renewal(), code != "fresh");
            assert_eq!(s.usable(), !matches!(code, "expired" | "clock_skew"));
        }
    }

    #[test]
    fn backoff() {
        let plan = Plan {
            min_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(300),
            ..no_jitter()
        };
        let day = window(0, 86400, None); // critical at 77760
        let short = window(0, 30, None); // critical at 27, cap 3 s
                                         // (failures, permanent, now, held) -> delay within [lo, hi] (seconds)
        type Case<'a> = (u32, bool, i64, Option<&'a Validity>, f64, f64);
        let cases: &[Case] = &[
            (1, false, 60000, Some(&day), 0.9, 1.0),
            (2, false, 60000, Some(&day), 1.8, 2.0),
            (5, false, 60000, Some(&day), 14.4, 16.0),
            (12, false, 60000, Some(&day), 270.0, 300.0), // capped
            (40, false, 60000, Some(&day), 270.0, 300.0), // no overflow
            (1, true, 60000, Some(&day), 300.0, 300.0),   // permanent: the cap, at once
            // never scheduled past the last 10%: pulled in to it
            (12, false, 77700, Some(&day), 60.0, 60.0),
            // inside the last 10%: a third of what is left
            (12, false, 86100, Some(&day), 100.0, 100.0),
            // short certificate: cap is a tenth of the lifetime
            (9, false, 20, Some(&short), 2.7, 3.0),
            (9, true, 20, Some(&short), 3.0, 3.0),
            // never below min_retry, even with seconds left
            (9, false, 29, Some(&short), 1.0, 1.0),
            // expired: plain backoff
            (3, false, 40, Some(&short), 1.0, 3.0),
            // nothing held (first enrollment): plain backoff to the cap
            (3, false, 0, None, 3.6, 4.0),
            (20, true, 0, None, 300.0, 300.0),
        ];
        for &(failures, permanent, now, held, lo, hi) in cases {
            let d = plan
                .retry_after(failures, permanent, at(now), held, 99)
                .as_secs_f64();
            assert!(
                d >= lo - 1e-9 && d <= hi + 1e-9,
                "failures {failures} permanent {permanent} now {now}: {d} not in [{lo}, {hi}]"
            );
        }
    }

    #[test]
    fn unit_is_in_range() {
        for s in 0..1000u64 {
            let u = unit(s);
            assert!((0.0..1.0).contains(&u));
        }
        assert_ne!(seed_of(&[b"a", b"bc"]), seed_of(&[b"ab", b"c"]));
    }
}
