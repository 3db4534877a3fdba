//! A CA rotation as one operation, after SPIRE's prepare/activate/taint: the next issuer is
//! staged (new key, new certificate, and the new certificate cross-signed by the old key so
//! that old trust verifies new leaves), the trust bundle carries old and new side by side,
//! issuance switches to the new issuer at a chosen time, and the old issuer is retired only
//! once its last leaf has expired. This module is the state and its timing, without IO: the
//! store persists a [`Rotation`] and performs the [`Step`]s it asks for.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Where a rotation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The next issuer exists and is published; the old one still issues.
    Staged,
    /// The new issuer issues; the old one's leaves are still valid, so it stays trusted.
    Switched,
    /// The old issuer's last leaf has expired; it is no longer published. Done.
    Retired,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Staged => "staged",
            Phase::Switched => "switched",
            Phase::Retired => "retired",
        })
    }
}

/// A rotation of one CA scope, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// The issuer being replaced.
    pub old: String,
    /// The issuer replacing it.
    pub new: String,
    /// The new issuer's certificate signed by the old key (old trust → new leaves).
    pub cross: String,
    /// Where it stands.
    pub phase: Phase,
    /// When it was staged (Unix seconds).
    pub staged_at: i64,
    /// When issuance switches to the new issuer (Unix seconds).
    pub switch_at: i64,
    /// When it switched, once it has.
    #[serde(default)]
    pub switched_at: Option<i64>,
    /// When the old issuer was retired, once it has been.
    #[serde(default)]
    pub retired_at: Option<i64>,
    /// The notAfter of the old issuer's last leaf, fixed when issuance switched (no leaf of
    /// it is issued after): the old issuer is retired then.
    #[serde(default)]
    pub retire_after: Option<i64>,
}

/// What the store must do to bring a rotation up to `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make the new issuer the default (issuance moves to it).
    Switch,
    /// Stop publishing the old issuer (and the cross-signed certificate).
    Retire,
}

/// Why a rotation cannot start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RotationRefusal {
    /// One is already under way.
    #[error("a rotation of \"{scope}\" is in progress ({phase} since {since}); it ends when the old issuer's last certificate expires, and a new one can start then")]
    InProgress {
        /// The CA scope.
        scope: String,
        /// Its phase.
        phase: Phase,
        /// When it entered it (RFC 3339).
        since: String,
    },
    /// The switch time is before the staging time.
    #[error("the switch time {switch_at} is in the past; choose now or later")]
    SwitchInPast {
        /// The time asked for (RFC 3339).
        switch_at: String,
    },
}

fn rfc3339(t: i64) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

impl Rotation {
    /// Checks that a rotation may start at `now` with issuance switching at `switch_at`,
    /// given the scope's current one.
    pub fn may_start(
        scope: &str,
        current: Option<&Rotation>,
        now: OffsetDateTime,
        switch_at: OffsetDateTime,
    ) -> Result<(), RotationRefusal> {
        if let Some(r) = current.filter(|r| r.phase != Phase::Retired) {
            let since = match r.phase {
                Phase::Switched => r.switched_at.unwrap_or(r.switch_at),
                _ => r.staged_at,
            };
            return Err(RotationRefusal::InProgress {
                scope: scope.to_string(),
                phase: r.phase,
                since: rfc3339(since),
            });
        }
        if switch_at.unix_timestamp() < now.unix_timestamp() - 1 {
            return Err(RotationRefusal::SwitchInPast {
                switch_at: rfc3339(switch_at.unix_timestamp()),
            });
        }
        Ok(())
    }

    /// The next step due at `now`, given the notAfter of the old issuer's last unexpired,
    /// unrevoked leaf (None: it has none left). The old issuer is never retired while one of
    /// its leaves is still valid, nor before issuance has switched away from it.
    pub fn due(&self, now: OffsetDateTime, last_old_leaf: Option<OffsetDateTime>) -> Option<Step> {
        let now = now.unix_timestamp();
        match self.phase {
            Phase::Staged if now >= self.switch_at => Some(Step::Switch),
            Phase::Switched if last_old_leaf.is_none_or(|t| t.unix_timestamp() <= now) => {
                Some(Step::Retire)
            }
            _ => None,
        }
    }

    /// Records that `step` was done at `now`.
    pub fn apply(&mut self, step: Step, now: OffsetDateTime) {
        match step {
            Step::Switch => {
                self.phase = Phase::Switched;
                self.switched_at = Some(now.unix_timestamp());
            }
            Step::Retire => {
                self.phase = Phase::Retired;
                self.retired_at = Some(now.unix_timestamp());
            }
        }
    }

    /// When the next step falls due without a new fact (the switch time, or the old issuer's
    /// last leaf's expiry once switched); None when it is over.
    pub fn next_step_at(&self) -> Option<i64> {
        match self.phase {
            Phase::Staged => Some(self.switch_at),
            Phase::Switched => Some(self.retire_after.unwrap_or(self.switch_at)),
            Phase::Retired => None,
        }
    }

    /// True while the old issuer (and the cross-signed certificate) must stay published.
    pub fn publishes_old(&self) -> bool {
        self.phase != Phase::Retired
    }

    /// True when `id` is one of the rotation's issuers and it is not over.
    pub fn involves(&self, id: &str) -> bool {
        self.phase != Phase::Retired && (self.old == id || self.new == id || self.cross == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn staged(switch_at: i64) -> Rotation {
        Rotation {
            old: "o".into(),
            new: "n".into(),
            cross: "x".into(),
            phase: Phase::Staged,
            staged_at: 1000,
            switch_at,
            switched_at: None,
            retired_at: None,
            retire_after: None,
        }
    }

    fn at(t: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(t).unwrap()
    }

    #[test]
    fn steps_come_in_order_and_never_early() {
        let mut r = staged(2000);
        // (now, last old leaf, expected step)
        let table: &[(i64, Option<i64>, Option<Step>)] = &[
            (1500, Some(5000), None),
            (1999, None, None),
            (2000, Some(5000), Some(Step::Switch)),
        ];
        for (now, last, want) in table {
            assert_eq!(r.due(at(*now), last.map(at)), *want, "staged at {now}");
        }
        r.apply(Step::Switch, at(2000));
        assert_eq!(r.phase, Phase::Switched);
        let table: &[(i64, Option<i64>, Option<Step>)] = &[
            (2500, Some(5000), None),
            (4999, Some(5000), None),
            (5000, Some(5000), Some(Step::Retire)),
            (2500, None, Some(Step::Retire)),
        ];
        for (now, last, want) in table {
            assert_eq!(r.due(at(*now), last.map(at)), *want, "switched at {now}");
        }
        assert!(r.publishes_old() && r.involves("o") && r.involves("x"));
        r.retire_after = Some(5000);
        assert_eq!(r.next_step_at(), Some(5000));
        r.apply(Step::Retire, at(5000));
        assert_eq!(r.due(at(9999), None), None);
        assert!(!r.publishes_old() && !r.involves("o"));
    }

    #[test]
    fn a_second_rotation_is_refused_until_the_first_is_over() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let r = staged(now.unix_timestamp());
        assert_eq!(
            Rotation::may_start("pki", Some(&r), now, now).unwrap_err().to_string(),
            "a rotation of \"pki\" is in progress (staged since 1970-01-01T00:16:40Z); it ends when the old issuer's last certificate expires, and a new one can start then"
        );
        let mut done = r.clone();
        done.apply(Step::Switch, now);
        done.apply(Step::Retire, now);
        assert!(Rotation::may_start("pki", Some(&done), now, now).is_ok());
        assert!(Rotation::may_start("pki", None, now, now).is_ok());
        assert_eq!(
            Rotation::may_start("pki", None, now, datetime!(2025-01-01 00:00 UTC))
                .unwrap_err()
                .to_string(),
            "the switch time 2025-01-01T00:00:00Z is in the past; choose now or later"
        );
    }
}
