//! Lease arithmetic as Vault does it (`sdk/framework/lease.go` `CalculateTTL`): every TTL in
//! whole seconds, a request's increment over the backend's TTL over the system default, capped
//! by the lowest of the system, backend and explicit maxima counted from the token's creation;
//! a periodic token renews to its period and is capped only by an explicit max.

use std::fmt;

/// Seconds, the precision of every TTL in Vault.
pub type Secs = u64;

/// The system's lease limits (a mount's `default_lease_ttl` / `max_lease_ttl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemTtl {
    /// Used when neither the request nor the backend gives a TTL.
    pub default_ttl: Secs,
    /// No lease outlives this from its creation.
    pub max_ttl: Secs,
}

impl SystemTtl {
    /// Vault's and OpenBao's defaults: 768h for both.
    pub const VAULT: SystemTtl = SystemTtl {
        default_ttl: 768 * 3600,
        max_ttl: 768 * 3600,
    };
}

/// Everything that bounds one lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseInputs {
    /// The TTL the request asks for (a renewal's `increment`), 0 for none.
    pub increment: Secs,
    /// The backend's TTL (the token's `ttl`, a role's `token_ttl`), 0 for none.
    pub backend_ttl: Secs,
    /// A periodic token's period, 0 for none.
    pub period: Secs,
    /// The backend's max (a role's `token_max_ttl`), 0 for none.
    pub backend_max_ttl: Secs,
    /// The token's `explicit_max_ttl`, 0 for none; binds even periodic tokens.
    pub explicit_max_ttl: Secs,
}

/// A TTL value that was lowered, reported as a warning as Vault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TtlWarning {
    /// The period was above the effective max.
    PeriodCapped {
        /// Asked.
        period: Secs,
        /// The effective max.
        max: Secs,
    },
    /// The TTL would have outlived the max counted from creation.
    TtlCapped {
        /// Asked.
        ttl: Secs,
        /// What is left.
        left: Secs,
    },
}

impl fmt::Display for TtlWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlWarning::PeriodCapped { period, max } => write!(
                f,
                "period of \"{}\" exceeded the effective max_ttl of \"{}\"; period value is capped accordingly",
                human(*period),
                human(*max)
            ),
            TtlWarning::TtlCapped { ttl, left } => write!(
                f,
                "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                human(*ttl),
                human(*left)
            ),
        }
    }
}

/// Why no TTL could be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TtlError {
    /// Every max is zero.
    #[error("max TTL must be greater than zero")]
    NoMax,
    /// The lease has reached its max TTL; it cannot be renewed (and expires at its current
    /// expiry).
    #[error("past the max TTL, cannot renew (the max TTL ended at unix time {max_end})")]
    PastMaxTtl {
        /// When the max TTL ended.
        max_end: i64,
    },
}

/// The TTL to give a lease created (or last renewed) at `now`, for a lease issued at `start`.
pub fn calculate_ttl(
    system: SystemTtl,
    inputs: LeaseInputs,
    start: i64,
    now: i64,
) -> Result<(Secs, Vec<TtlWarning>), TtlError> {
    let mut warnings = Vec::new();
    let mut max = system.max_ttl;
    if inputs.backend_max_ttl > 0 && inputs.backend_max_ttl < max {
        max = inputs.backend_max_ttl;
    }
    if inputs.explicit_max_ttl > 0 && inputs.explicit_max_ttl < max {
        max = inputs.explicit_max_ttl;
    }
    if max == 0 {
        return Err(TtlError::NoMax);
    }
    let (mut ttl, max_end) = if inputs.period > 0 {
        let mut period = inputs.period;
        if period > max {
            warnings.push(TtlWarning::PeriodCapped { period, max });
            period = max;
        }
        let end = (inputs.explicit_max_ttl > 0)
            .then(|| start.saturating_add(inputs.explicit_max_ttl as i64));
        (period, end)
    } else {
        let ttl = [inputs.increment, inputs.backend_ttl, system.default_ttl]
            .into_iter()
            .find(|t| *t > 0)
            .unwrap_or(0);
        (ttl, Some(start.saturating_add(max as i64)))
    };
    if let Some(end) = max_end {
        let left = end - now;
        if left <= 0 {
            return Err(TtlError::PastMaxTtl { max_end: end });
        }
        if (left as u64) < ttl {
            warnings.push(TtlWarning::TtlCapped {
                ttl,
                left: left as u64,
            });
            ttl = left as u64;
        }
    }
    Ok((ttl, warnings))
}

/// A duration as Go prints it with Vault's trimming: `1h`, `1h30m`, `2m30s`, `45s`.
pub fn human(secs: Secs) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, 0, s) => format!("{h}h{s}s"),
        (h, m, 0) => format!("{h}h{m}m"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// Parses a duration as Vault's `ParseDurationSecond` does: a bare number of seconds, or Go's
/// form with `h`, `m`, `s` (and mutual's `d`), such as `1h30m`.
pub fn parse_duration(s: &str) -> Option<Secs> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0);
    }
    if let Ok(n) = s.parse::<u64>() {
        return Some(n);
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    num.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYS: SystemTtl = SystemTtl {
        default_ttl: 3600,
        max_ttl: 10 * 3600,
    };

    #[test]
    #[allow(clippy::type_complexity)]
    fn ttl_table() {
        let i = |increment, backend_ttl, period, backend_max_ttl, explicit_max_ttl| LeaseInputs {
            increment,
            backend_ttl,
            period,
            backend_max_ttl,
            explicit_max_ttl,
        };
        // (what, inputs, start, now, ttl, warnings)
        let cases: &[(&str, LeaseInputs, i64, i64, Result<Secs, TtlError>, usize)] = &[
            ("system default", i(0, 0, 0, 0, 0), 0, 0, Ok(3600), 0),
            ("backend ttl", i(0, 600, 0, 0, 0), 0, 0, Ok(600), 0),
            ("increment first", i(120, 600, 0, 0, 0), 0, 0, Ok(120), 0),
            (
                "capped by system max",
                i(20 * 3600, 0, 0, 0, 0),
                0,
                0,
                Ok(36000),
                1,
            ),
            (
                "capped by backend max",
                i(0, 7200, 0, 1800, 0),
                0,
                0,
                Ok(1800),
                1,
            ),
            (
                "explicit max lowest",
                i(0, 7200, 0, 3600, 900),
                0,
                0,
                Ok(900),
                1,
            ),
            (
                "renew near max",
                i(3600, 0, 0, 7200, 0),
                0,
                7000,
                Ok(200),
                1,
            ),
            (
                "renew past max",
                i(3600, 0, 0, 7200, 0),
                0,
                7200,
                Err(TtlError::PastMaxTtl { max_end: 7200 }),
                0,
            ),
            (
                "period renews to period",
                i(99, 0, 600, 1800, 0),
                0,
                5000,
                Ok(600),
                0,
            ),
            (
                "period capped",
                i(0, 0, 99 * 3600, 0, 0),
                0,
                0,
                Ok(36000),
                1,
            ),
            (
                "period bound by explicit",
                i(0, 0, 600, 0, 1000),
                0,
                800,
                Ok(200),
                1,
            ),
        ];
        for (what, inputs, start, now, want, nwarn) in cases {
            let got = calculate_ttl(SYS, *inputs, *start, *now);
            match (got, want) {
                (Ok((ttl, w)), Ok(want)) => {
                    assert_eq!((ttl, w.len()), (*want, *nwarn), "{what}: {w:?}")
                }
                (Err(e), Err(want)) => assert_eq!(&e, want, "{what}"),
                (got, want) => panic!("{what}: got {got:?}, want {want:?}"),
            }
        }
        let none = SystemTtl {
            default_ttl: 0,
            max_ttl: 0,
        };
        assert_eq!(
            calculate_ttl(none, LeaseInputs::default(), 0, 0),
            Err(TtlError::NoMax)
        );
    }

    #[test]
    fn messages_and_durations() {
        let w = TtlWarning::TtlCapped {
            ttl: 7200,
            left: 5400,
        };
        assert_eq!(
            w.to_string(),
            "TTL of \"2h\" exceeded the effective max_ttl of \"1h30m\"; TTL value is capped accordingly"
        );
        for (secs, s) in [
            (0, "0s"),
            (45, "45s"),
            (120, "2m"),
            (150, "2m30s"),
            (3601, "1h1s"),
            (3661, "1h1m1s"),
        ] {
            assert_eq!(human(secs), s);
        }
        for (s, want) in [
            ("", Some(0)),
            ("90", Some(90)),
            ("1h30m", Some(5400)),
            ("30d", Some(30 * 86400)),
            ("10x", None),
            ("h", None),
            ("5m3", None),
        ] {
            assert_eq!(parse_duration(s), want, "{s}");
        }
    }
}
