//! The revocation feed subscriber: follows `GET /v1/<mount>/revocations?since=SEQ&wait=30` on
//! the CA's nodes (tried in order, as [`CaClient`] does), and keeps the revoked
//! (issuer, serial) pairs in an [`ArcSwap`] so that a handshake or a request reads them without
//! a lock. After an error it backs off and asks again from its last sequence number, so it gets
//! what it missed. The contract is in docs/lifecycle-api.md.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use mutual_pki::serial::Serial;
use serde_json::Value;
use time::OffsetDateTime;

use crate::client::{CaClient, ClientError};

/// How long the server is asked to hold a poll open.
const WAIT: Duration = Duration::from_secs(30);

/// One revocation the feed reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// When the CA revoked it.
    pub revoked_at: OffsetDateTime,
    /// The RFC 5280 reason name.
    pub reason: String,
}

/// What the feed has told so far; swapped whole.
#[derive(Debug, Default)]
pub struct Revoked {
    /// The sequence number to ask from next.
    pub next: u64,
    /// Revoked certificates by issuer DN and serial.
    pub entries: HashMap<(String, Serial), Revocation>,
}

impl Revoked {
    /// The revocation of this certificate, if the feed reported one.
    pub fn get(&self, issuer: &str, serial: &Serial) -> Option<&Revocation> {
        self.entries.get(&(issuer.to_string(), serial.clone()))
    }
}

/// A subscription to one mount's revocation feed.
#[derive(Debug)]
pub struct Feed {
    client: CaClient,
    mount: String,
    /// The URLs as given, for logs.
    pub urls: String,
    wait: Duration,
    state: ArcSwap<Revoked>,
    /// Grows with each change of `state`: readers compare it before looking anything up.
    generation: AtomicU64,
    /// Unix seconds of the last answer from a node; 0 before the first.
    last_contact: AtomicI64,
    changed: tokio::sync::watch::Sender<u64>,
}

/// Splits `https://ca:8200/v1/pki` (comma-separated) into the nodes' base URLs and the mount.
pub fn split_urls(urls: &str) -> Result<(String, String), String> {
    let mut bases = Vec::new();
    let mut mount: Option<String> = None;
    for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let trimmed = url.trim_end_matches('/');
        let (base, m) = trimmed
            .rsplit_once("/v1/")
            .filter(|(b, m)| !b.is_empty() && !m.is_empty())
            .ok_or_else(|| {
                format!("revocation feed \"{url}\": expected http(s)://HOST:PORT/v1/MOUNT")
            })?;
        match &mount {
            Some(prev) if prev != m => {
                return Err(format!(
                    "revocation feed: every URL must name the same mount (\"{prev}\" and \"{m}\")"
                ))
            }
            _ => mount = Some(m.to_string()),
        }
        bases.push(base.to_string());
    }
    let mount = mount.ok_or_else(|| "revocation feed: no URL given".to_string())?;
    Ok((bases.join(","), mount))
}

/// The entries of one answer, merged into a copy of `old`; `None` when it adds nothing new.
pub fn merge(old: &Revoked, data: &Value) -> Result<Option<Revoked>, String> {
    let next = data
        .get("next")
        .and_then(Value::as_u64)
        .ok_or("the answer has no \"next\"")?;
    let listed = data
        .get("revoked")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if listed.is_empty() && next <= old.next {
        return Ok(None);
    }
    let mut entries = old.entries.clone();
    for e in listed {
        let text = |k: &str| e.get(k).and_then(Value::as_str);
        let (Some(serial), Some(issuer)) = (text("serial"), text("issuer")) else {
            return Err(format!("an entry without serial or issuer: {e}"));
        };
        let serial = Serial::parse(serial).map_err(|e| e.to_string())?;
        let revoked_at = e
            .get("revoked_at")
            .and_then(Value::as_i64)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let reason = text("reason").unwrap_or("unspecified").to_string();
        entries.insert(
            (issuer.to_string(), serial),
            Revocation { revoked_at, reason },
        );
    }
    Ok(Some(Revoked {
        next: next.max(old.next),
        entries,
    }))
}

impl Feed {
    /// A subscription to `urls` (`https://ca:8200/v1/pki`, comma-separated for several
    /// nodes of one CA); `cacert` is the CA's TLS root for https. Nothing is fetched until
    /// [`Feed::run`].
    pub fn new(urls: &str, cacert: Option<&Path>) -> Result<Arc<Feed>, ClientError> {
        Feed::with_wait(urls, cacert, WAIT)
    }

    /// [`Feed::new`] with another long-poll wait (at most 60 s, the server's limit): a
    /// subscriber that must hear from the CA every N seconds asks with less than N.
    pub fn with_wait(
        urls: &str,
        cacert: Option<&Path>,
        wait: Duration,
    ) -> Result<Arc<Feed>, ClientError> {
        let (bases, mount) = split_urls(urls).map_err(ClientError::Local)?;
        let client = CaClient::new(&bases, cacert)?;
        Ok(Arc::new(Feed {
            client,
            mount,
            urls: urls.to_string(),
            wait: wait.min(Duration::from_secs(60)),
            state: ArcSwap::from_pointee(Revoked::default()),
            generation: AtomicU64::new(0),
            last_contact: AtomicI64::new(0),
            changed: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// What is known now.
    pub fn revoked(&self) -> arc_swap::Guard<Arc<Revoked>> {
        self.state.load()
    }

    /// Grows with each change; cheap to compare on every request.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The sequence number to ask from next.
    pub fn seq(&self) -> u64 {
        self.state.load().next
    }

    /// Unix seconds of the last answer from the CA; `None` before the first.
    pub fn last_contact(&self) -> Option<i64> {
        Some(self.last_contact.load(Ordering::Acquire)).filter(|t| *t > 0)
    }

    /// Wakes on each change of the generation (for holders of connections that see no
    /// requests, such as tcp relays).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// One poll: asks from the last sequence number, waiting up to `wait` for news.
    pub async fn poll(&self, wait: Duration) -> Result<(), ClientError> {
        let since = self.seq();
        let path = format!(
            "{}/revocations?since={since}&wait={}",
            self.mount,
            wait.as_secs()
        );
        let (node, data) = self
            .client
            .get_json(&path, wait + Duration::from_secs(10))
            .await?;
        self.last_contact.store(
            OffsetDateTime::now_utc().unix_timestamp(),
            Ordering::Release,
        );
        let old = self.state.load_full();
        match merge(&old, &data).map_err(|message| ClientError::Invalid { node, message })? {
            None => {}
            Some(new) => {
                let added = new.entries.len() - old.entries.len();
                self.state.store(Arc::new(new));
                let g = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
                self.changed.send_replace(g);
                if added > 0 {
                    tracing::info!(feed = %self.urls, added, seq = self.seq(), "revocations received");
                }
            }
        }
        Ok(())
    }

    /// Follows the feed until the process ends: a poll after each answer, a capped backoff
    /// after each failure (the next poll asks from where the last good one ended).
    pub async fn run(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            match self.poll(self.wait).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let pause = backoff(failures, Duration::from_secs(30));
                    tracing::warn!(feed = %self.urls, error = %e, retry_in_ms = pause.as_millis() as u64, "revocation feed unreachable; keeping what it told so far");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

/// The pause after `failures` failures in a row: 1 s doubling up to `cap`.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(16);
    Duration::from_secs(1u64 << exp).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls() {
        assert_eq!(
            split_urls("https://127.0.0.1:8200/v1/pki, https://127.0.0.1:8201/v1/pki/").unwrap(),
            (
                "https://127.0.0.1:8200,https://127.0.0.1:8201".to_string(),
                "pki".to_string()
            )
        );
        let bad = [
            (
                "https://ca:8200",
                "revocation feed \"https://ca:8200\": expected http(s)://HOST:PORT/v1/MOUNT",
            ),
            ("", "revocation feed: no URL given"),
            (
                "http://a/v1/pki,http://b/v1/other",
                "revocation feed: every URL must name the same mount (\"pki\" and \"other\")",
            ),
        ];
        for (u, msg) in bad {
            assert_eq!(split_urls(u).unwrap_err(), msg);
        }
    }

    #[test]
    fn backoffs() {
        let cap = Duration::from_secs(30);
        let got: Vec<u64> = [1, 2, 3, 5, 6, 40]
            .iter()
            .map(|n| backoff(*n, cap).as_secs())
            .collect();
        assert_eq!(got, [1, 2, 4, 16, 30, 30]);
    }

    #[test]
    fn merges() {
        let empty = Revoked::default();
        let one = json!({"next": 3, "revoked": [
            {"seq": 3, "serial": "3a:9f", "issuer": "CN=Root", "revoked_at": 1764480000, "reason": "keyCompromise"}
        ]});
        let r = merge(&empty, &one).unwrap().unwrap();
        assert_eq!(r.next, 3);
        let got = r.get("CN=Root", &Serial::parse("3a9f").unwrap()).unwrap();
        assert_eq!(got.reason, "keyCompromise");
        assert!(r.get("CN=Other", &Serial::parse("3a9f").unwrap()).is_none());
        // Nothing new: no swap, the generation stays.
        assert!(merge(&r, &json!({"next": 3, "revoked": []}))
            .unwrap()
            .is_none());
        // Other mounts' entries moved `next` on without entries.
        let moved = merge(&r, &json!({"next": 5, "revoked": []}))
            .unwrap()
            .unwrap();
        assert_eq!((moved.next, moved.entries.len()), (5, 1));
        for bad in [
            json!({"revoked": []}),
            json!({"next": 4, "revoked": [{"serial": "zz", "issuer": "CN=R"}]}),
            json!({"next": 4, "revoked": [{"issuer": "CN=R"}]}),
        ] {
            assert!(merge(&r, &bad).is_err(), "{bad}");
        }
    }
}
