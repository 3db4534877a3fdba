//! Resumption, with one rule: a stored session is resumed only when its client's chain passes
//! the server's check as it is now (CAs, CRLs, fetched CRLs, the handshake policy of the name
//! asked for). rustls resumes a TLS 1.2 session ID or a TLS 1.3 ticket without asking the
//! client-certificate verifier, so a session saved before a revocation, a CRL reload or a
//! policy change would otherwise be served on the old verdict.
//!
//! Every connection of a server goes through one [`Sessions`] store. Next to rustls' own
//! session value it keeps the chain the session was established with; a connection's view of
//! the store (`ConnSessions`) checks that chain again before it hands the session to rustls.
//! Re-checking a chain costs no signature of the client (the session's secret proves it is the
//! same client). A session that fails is dropped and rustls falls back to a full handshake, in
//! which the client must present a certificate that passes; if it presents none, it is refused
//! with the reason its session failed (`revoked`, `not_allowed`, …).

use std::sync::{Arc, Mutex};

use rustls::server::{ServerSessionMemoryCache, StoresServerSessions};
use time::OffsetDateTime;

use crate::accept::ClientAuth;
use crate::verifier::HandshakeSlot;

/// The sessions of one server, shared by all its connections and kept across reloads.
#[derive(Debug, Clone)]
pub struct Sessions {
    cache: Arc<ServerSessionMemoryCache>,
}

impl Sessions {
    /// A store that keeps at most `size` sessions, the least recently stored dropped first.
    pub fn new(size: usize) -> Sessions {
        Sessions {
            cache: ServerSessionMemoryCache::new(size.max(1)),
        }
    }

    /// One connection's view of the store, checking with that connection's rules.
    pub(crate) fn for_connection(
        &self,
        auth: ClientAuth,
        slot: Arc<Mutex<HandshakeSlot>>,
    ) -> ConnSessions {
        ConnSessions {
            cache: Arc::clone(&self.cache),
            auth,
            slot,
        }
    }
}

/// The session store as one connection sees it: sessions are stored with the chain this
/// connection verified or resumed, and admitted only when that chain passes the check.
#[derive(Debug)]
pub(crate) struct ConnSessions {
    cache: Arc<ServerSessionMemoryCache>,
    auth: ClientAuth,
    slot: Arc<Mutex<HandshakeSlot>>,
}

impl ConnSessions {
    fn slot(&self) -> std::sync::MutexGuard<'_, HandshakeSlot> {
        self.slot.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session stored under `key` when its chain still passes; else `None`, and the
    /// entry is gone.
    fn admit(&self, key: &[u8], entry: Vec<u8>, taken: bool) -> Option<Vec<u8>> {
        let Some((chain, value)) = decode(&entry) else {
            if !taken {
                self.cache.take(key);
            }
            return None;
        };
        match self.auth.judge(&chain, OffsetDateTime::now_utc()) {
            Ok(peer) => {
                self.slot().admitted = Some((peer, chain));
                Some(value.to_vec())
            }
            Err(refusal) => {
                tracing::debug!(reason.code = refusal.code(), reason = %refusal, "stored session not resumed");
                if !taken {
                    self.cache.take(key);
                }
                self.slot().declined = Some(refusal);
                None
            }
        }
    }
}

impl StoresServerSessions for ConnSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        // rustls stores a session once the handshake has succeeded: its client is the one the
        // verifier passed, else (no CertificateRequest: resumed) the one the session had.
        let chain = {
            let slot = self.slot();
            match (&slot.verified, &slot.admitted) {
                (Some((_, chain)), _) => chain.clone(),
                (None, Some((_, chain))) if !slot.full => chain.clone(),
                _ => Vec::new(),
            }
        };
        self.cache.put(key, encode(&chain, &value))
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entry = self.cache.get(key)?;
        self.admit(key, entry, false)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let entry = self.cache.take(key)?;
        self.admit(key, entry, true)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// `count, (len, der)…, value`, lengths as 4-byte big-endian.
fn encode(chain: &[Vec<u8>], value: &[u8]) -> Vec<u8> {
    let size = 4 + chain.iter().map(|c| 4 + c.len()).sum::<usize>() + value.len();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(chain.len() as u32).to_be_bytes());
    for c in chain {
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(value);
    out
}

fn decode(entry: &[u8]) -> Option<(Vec<Vec<u8>>, &[u8])> {
    fn u32_at(b: &[u8]) -> Option<(usize, &[u8])> {
        let (n, rest) = b.split_first_chunk::<4>()?;
        Some((u32::from_be_bytes(*n) as usize, rest))
    }
    let (count, mut rest) = u32_at(entry)?;
    let mut chain = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let (len, after) = u32_at(rest)?;
        let (der, after) = (after.get(..len)?, after.get(len..)?);
        chain.push(der.to_vec());
        rest = after;
    }
    Some((chain, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_truncation_is_no_session() {
        let table: Vec<(Vec<Vec<u8>>, Vec<u8>)> = vec![
            (vec![], b"rustls value".to_vec()),
            (vec![b"leaf".to_vec(), b"ca".to_vec()], b"v".to_vec()),
            (vec![vec![]], vec![]),
        ];
        for (chain, value) in table {
            let e = encode(&chain, &value);
            let (c, v) = decode(&e).expect("decodes");
            assert_eq!((c, v), (chain.clone(), &value[..]));
            if !chain.is_empty() {
                assert!(decode(&e[..e.len() - value.len() - 1]).is_none());
            }
        }
        assert!(decode(&[0, 0, 0]).is_none());
        assert!(decode(&[0, 0, 0, 9, 0, 0, 0, 1]).is_none());
    }
}
