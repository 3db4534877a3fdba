//! The last refusals the proxy made, for the admin dashboard: a bounded ring (the oldest goes
//! when it is full), written only when a caller is refused, so the allowed path never touches
//! it.

use std::{collections::VecDeque, net::SocketAddr, sync::Mutex};

use time::OffsetDateTime;

/// How many refusals are kept.
pub const KEPT: usize = 200;

/// One refused handshake, request or TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// When.
    pub at: OffsetDateTime,
    /// The caller's address.
    pub peer_addr: SocketAddr,
    /// The caller's name (CN or first SAN), when it presented a certificate.
    pub peer: String,
    /// The caller certificate's issuer, when it presented one.
    pub issuer: String,
    /// `handshake`, `request` or `tcp`.
    pub stage: &'static str,
    /// The route, when one was chosen (`-` otherwise).
    pub route: String,
    /// The stable code (`deny`, `no_certificate`, `unknown_issuer`, …).
    pub code: String,
    /// The HTTP status answered, for a request.
    pub status: Option<u16>,
    /// The reason in words: what the caller was told, the doctor's diagnosis.
    pub reason: String,
}

/// The ring of recent refusals.
#[derive(Debug, Default)]
pub struct Recent(Mutex<VecDeque<Refusal>>);

impl Recent {
    /// Notes a refusal, dropping the oldest when [`KEPT`] are held.
    pub fn record(&self, r: Refusal) {
        let mut ring = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() >= KEPT {
            ring.pop_front();
        }
        ring.push_back(r);
    }

    /// The refusals held, newest first.
    pub fn newest_first(&self) -> Vec<Refusal> {
        let ring = self.0.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter().rev().cloned().collect()
    }
}

/// A subject DN as the dashboard names a caller: its CN when the DN is only a CN (as the
/// request stage names callers), the DN otherwise.
pub fn short_name(subject: &str) -> String {
    match subject.strip_prefix("CN=") {
        Some(cn) if !cn.contains(',') => cn.to_string(),
        _ => subject.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_named_by_cn_when_that_is_all_they_have() {
        for (dn, want) in [
            ("CN=alice.example.com", "alice.example.com"),
            ("CN=a, O=Example", "CN=a, O=Example"),
            ("O=Example", "O=Example"),
            ("", ""),
        ] {
            assert_eq!(short_name(dn), want);
        }
    }

    fn refusal(n: usize) -> Refusal {
        Refusal {
            at: OffsetDateTime::UNIX_EPOCH,
            peer_addr: "127.0.0.1:1".parse().unwrap(),
            peer: format!("peer{n}"),
            issuer: String::new(),
            stage: "request",
            route: "-".into(),
            code: "deny".into(),
            status: Some(403),
            reason: String::new(),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let recent = Recent::default();
        assert!(recent.newest_first().is_empty());
        for n in 0..KEPT + 5 {
            recent.record(refusal(n));
        }
        let held = recent.newest_first();
        assert_eq!(held.len(), KEPT);
        assert_eq!(held[0].peer, format!("peer{}", KEPT + 4));
        assert_eq!(held[KEPT - 1].peer, "peer5");
    }
}
