//! Live revocation: a listener with `revocation_feed` follows the CA's revocation feed
//! ([`mutual_agent::feed`]) and refuses a revoked caller at its next handshake, at its next
//! request on a connection already open (403, then the connection is closed), and, on a `tcp`
//! listener, by closing its relay. When the feed cannot be reached the listener's policy
//! applies, as for fetched CRLs: `keep_last` serves with what the feed told so far,
//! `fail_closed` refuses every caller once the last contact is older than `max_stale`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mutual_agent::feed::Feed;
use mutual_pki::diagnosis::Diagnosis;
use mutual_tls::PeerIdentity;
use time::OffsetDateTime;

use crate::config::ListenerConfig;
use crate::crlstate::Stale;

/// How a listener follows a revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// `https://ca:8200/v1/pki` (comma-separated nodes of one CA).
    pub url: String,
    /// The CA's TLS root, for https.
    pub ca: Option<PathBuf>,
    /// What an unreachable feed does.
    pub stale: Stale,
    /// Under `fail_closed`: how old the last contact may be.
    pub max_stale: Duration,
}

/// One listener's subscription; kept across reloads while its settings stay the same.
#[derive(Debug)]
pub struct RevocationFeed {
    /// The settings.
    pub config: FeedConfig,
    /// The subscriber.
    pub feed: Arc<Feed>,
    /// Callers refused because the feed reported their certificate revoked.
    pub refusals: AtomicU64,
    started: AtomicBool,
}

/// Why a caller is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The feed reported this certificate revoked.
    Revoked {
        /// When.
        at: OffsetDateTime,
        /// The RFC 5280 reason.
        reason: String,
    },
    /// `fail_closed` and no contact with the feed for too long.
    Stale {
        /// The feed.
        url: String,
        /// Unix seconds of the last contact, if any.
        last: Option<i64>,
        /// The limit.
        max_stale: Duration,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Revoked { at, reason } => write!(
                f,
                "certificate revoked at {} ({reason}) (feed)",
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|_| at.unix_timestamp().to_string())
            ),
            Refusal::Stale {
                url,
                last,
                max_stale,
            } => {
                let since = last
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "the start".into());
                write!(
                    f,
                    "the revocation feed {url} has not answered since {since} (revocation_feed_stale = \"fail_closed\", limit {}s)",
                    max_stale.as_secs()
                )
            }
        }
    }
}

impl Refusal {
    /// The diagnosis a handshake is refused with.
    pub fn diagnosis(&self, peer: &PeerIdentity) -> Diagnosis {
        match self {
            Refusal::Revoked { at, reason } => Diagnosis::Revoked {
                subject: peer.subject.clone(),
                serial: peer.serial.clone(),
                revoked_at: Some(*at),
                reason: Some(format!("{reason}, from the revocation feed")),
            },
            Refusal::Stale { .. } => Diagnosis::Other {
                detail: self.to_string(),
            },
        }
    }
}

impl RevocationFeed {
    /// The subscription of a listener with `revocation_feed`.
    pub fn new(l: &ListenerConfig) -> Result<Option<Arc<RevocationFeed>>, String> {
        let Some(config) = &l.revocation_feed else {
            return Ok(None);
        };
        // Under fail_closed a healthy feed must answer well within the limit, so the long
        // poll is held for half of it at most.
        let wait = match config.stale {
            Stale::FailClosed => {
                (config.max_stale / 2).clamp(Duration::from_secs(1), Duration::from_secs(30))
            }
            Stale::KeepLast => Duration::from_secs(30),
        };
        let feed =
            Feed::with_wait(&config.url, config.ca.as_deref(), wait).map_err(|e| e.to_string())?;
        Ok(Some(Arc::new(RevocationFeed {
            config: config.clone(),
            feed,
            refusals: AtomicU64::new(0),
            started: AtomicBool::new(false),
        })))
    }

    /// Whether `l` asks for this very subscription.
    pub fn same_as(&self, l: &ListenerConfig) -> bool {
        l.revocation_feed.as_ref() == Some(&self.config)
    }

    /// Asks the feed once (without waiting for news), so that the state is in place before
    /// the first caller; a failure is logged and the policy decides.
    pub async fn first(&self) {
        if let Err(e) = self.feed.poll(Duration::ZERO).await {
            tracing::warn!(feed = %self.config.url, error = %e, "revocation feed unreachable at start");
        }
    }

    /// Starts following the feed in the background, once.
    pub fn ensure_running(&self) {
        if !self.started.swap(true, Ordering::AcqRel) {
            tokio::spawn(Arc::clone(&self.feed).run());
        }
    }

    fn stale(&self, now: OffsetDateTime) -> Option<Refusal> {
        if self.config.stale != Stale::FailClosed {
            return None;
        }
        let last = self.feed.last_contact();
        let fresh = last
            .is_some_and(|t| now.unix_timestamp() - t <= self.config.max_stale.as_secs() as i64);
        (!fresh).then(|| Refusal::Stale {
            url: self.config.url.clone(),
            last,
            max_stale: self.config.max_stale,
        })
    }

    /// The full check: staleness, then the revoked set (a handshake, a tcp relay).
    pub fn check(&self, peer: &PeerIdentity, now: OffsetDateTime) -> Result<(), Refusal> {
        if let Some(r) = self.stale(now) {
            return Err(r);
        }
        match self.feed.revoked().get(&peer.issuer, &peer.serial) {
            Some(r) => Err(Refusal::Revoked {
                at: r.revoked_at,
                reason: r.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The check of one request: the set is looked up only when its generation moved since
    /// `seen` (the connection's last look).
    pub fn check_request(
        &self,
        peer: &PeerIdentity,
        seen: &AtomicU64,
        now: OffsetDateTime,
    ) -> Result<(), Refusal> {
        if let Some(r) = self.stale(now) {
            return Err(r);
        }
        let generation = self.feed.generation();
        if seen.load(Ordering::Relaxed) == generation {
            return Ok(());
        }
        self.check(peer, now)?;
        seen.store(generation, Ordering::Relaxed);
        Ok(())
    }

    /// Returns when a held connection of `peer` must be closed (the feed reported it revoked,
    /// or fail_closed went stale).
    pub async fn until_refused(&self, peer: &PeerIdentity) -> Refusal {
        let mut changes = self.feed.subscribe();
        loop {
            if let Err(r) = self.check(peer, OffsetDateTime::now_utc()) {
                return r;
            }
            // Staleness has no event: look again each second as well.
            let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
        }
    }

    /// `mutual_proxy_revocation_feed_seq`, `…_last_contact_seconds` (seconds since the last
    /// answer; -1 before the first) and `…_revoked_refusals_total`, for `/metrics`.
    pub fn gauges(&self, listener: &str, now: i64) -> Vec<crate::metrics::Gauge> {
        let labels = vec![("listener", listener.to_string())];
        let gauge = |name, value| crate::metrics::Gauge {
            name,
            labels: labels.clone(),
            value,
        };
        vec![
            gauge("mutual_proxy_revocation_feed_seq", self.feed.seq() as f64),
            gauge(
                "mutual_proxy_revocation_feed_last_contact_seconds",
                self.feed.last_contact().map_or(-1.0, |t| (now - t) as f64),
            ),
            gauge(
                "mutual_proxy_revocation_feed_revoked_refusals_total",
                self.refusals.load(Ordering::Relaxed) as f64,
            ),
        ]
    }

    /// Counts and logs one refusal of a revoked caller.
    pub fn refused(
        &self,
        peer: &PeerIdentity,
        remote: std::net::SocketAddr,
        how: &str,
        r: &Refusal,
    ) {
        if matches!(r, Refusal::Revoked { .. }) {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
        tracing::warn!(
            peer.cn = peer.name(),
            peer.issuer = peer.issuer_name(),
            peer.serial = %peer.serial,
            peer.addr = %remote,
            decision = "revoked",
            at = how,
            reason = %r,
            "refused a caller by the revocation feed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn messages() {
        let r = Refusal::Revoked {
            at: datetime!(2026-11-30 06:00 UTC),
            reason: "keyCompromise".into(),
        };
        assert_eq!(
            r.to_string(),
            "certificate revoked at 2026-11-30T06:00:00Z (keyCompromise) (feed)"
        );
        let s = Refusal::Stale {
            url: "http://127.0.0.1:8200/v1/pki".into(),
            last: Some(datetime!(2026-11-30 06:00 UTC).unix_timestamp()),
            max_stale: Duration::from_secs(60),
        };
        assert_eq!(
            s.to_string(),
            "the revocation feed http://127.0.0.1:8200/v1/pki has not answered since 2026-11-30T06:00:00Z (revocation_feed_stale = \"fail_closed\", limit 60s)"
        );
    }
}
