//! What the hot lifecycle paths (OCSP answers, renewals) need to know of an issued certificate,
//! without a store round trip for every request: which revoked certificates exist (all of
//! them, kept current), and a bounded memory of recently looked-up certificates.
//!
//! An issued certificate never changes except by revocation, so remembering its facts is safe
//! as long as revocation is asked of the revoked set, never of the remembered facts. That set
//! is loaded whole at start, updated before a revocation through this server is answered, and
//! caught up once a second from the store's revocation sequence (`revocations_after`), so that
//! a revocation made by another process on the same store (`mutual ca revoke`, another node)
//! is in force here within [`CATCH_UP`]. The catch-up also wakes the feed's subscribers and
//! drops the mount's cached CRL, which a revocation through this server does directly.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, RwLock, Weak,
    },
    time::Duration,
};

use aws_lc_rs::digest;
use mutual_pki::{crl::Reason, serial::Serial};
use mutual_store::{CertRecord, FeedEntry, Store, StoreError};
use time::OffsetDateTime;

use crate::state::App;

/// How often the revoked set is caught up from the store.
pub const CATCH_UP: Duration = Duration::from_secs(1);
/// Entries per generation of the remembered certificates (two generations are kept).
const GENERATION: usize = 16 * 1024;
/// Revocations read from the store per query while catching up.
const PAGE: u32 = 10_000;

/// A revoked certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The CA (mount) that issued it.
    pub ca: String,
    /// When it was revoked.
    pub at: OffsetDateTime,
    /// Why.
    pub reason: Reason,
}

/// The unchanging facts of an issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The CA (mount) that issued it.
    pub ca: String,
    /// The role it was issued under.
    pub role: Option<String>,
    /// SHA-256 of its DER: a presented certificate is this one only if the digests agree.
    pub sha256: [u8; 32],
}

impl Issued {
    fn from_record(rec: &CertRecord) -> Issued {
        let der = mutual_pki::cert::pem_certs(rec.cert_pem.as_bytes())
            .ok()
            .and_then(|mut c| (!c.is_empty()).then(|| c.swap_remove(0)))
            .unwrap_or_default();
        Issued {
            ca: rec.ca.clone(),
            role: rec.role.clone(),
            sha256: sha256(&der),
        }
    }

    /// True when `der` is the very certificate recorded.
    pub fn is(&self, der: &[u8]) -> bool {
        self.sha256 == sha256(der)
    }
}

fn sha256(der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, der).as_ref());
    out
}

/// The revoked set and the remembered certificates of one server.
#[derive(Debug, Default)]
pub struct CertIndex {
    revoked: RwLock<Revocations>,
    recent: Mutex<Recent>,
    /// Bumped by every revocation applied: what was derived from the revoked set before (a
    /// signed OCSP answer) is stale once it moves.
    generation: AtomicU64,
}

#[derive(Debug, Default)]
struct Revocations {
    by_serial: HashMap<Serial, Revoked>,
    /// The highest revocation sequence number applied.
    seen: u64,
}

/// Two generations of remembered certificates: when the young one is full it becomes the old
/// one and the previous old one is dropped, so that memory stays bounded and a certificate
/// asked about often stays (it is copied forward when found in the old generation).
#[derive(Debug, Default)]
struct Recent {
    young: HashMap<Serial, Arc<Issued>>,
    old: HashMap<Serial, Arc<Issued>>,
}

impl Recent {
    fn get(&mut self, serial: &Serial) -> Option<Arc<Issued>> {
        if let Some(i) = self.young.get(serial) {
            return Some(i.clone());
        }
        let found = self.old.remove(serial)?;
        self.put(serial.clone(), found.clone());
        Some(found)
    }

    fn put(&mut self, serial: Serial, issued: Arc<Issued>) {
        if self.young.len() >= GENERATION {
            self.old = std::mem::take(&mut self.young);
        }
        self.young.insert(serial, issued);
    }
}

/// What a lookup found.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Not a certificate of this store.
    Unknown,
    /// Issued, and revoked if `revoked` says so.
    Found {
        /// Its facts.
        issued: Arc<Issued>,
        /// Its revocation, if revoked.
        revoked: Option<Revoked>,
    },
}

impl CertIndex {
    /// Loads every revocation of the store.
    pub async fn load(store: &Store) -> Result<CertIndex, StoreError> {
        let index = CertIndex::default();
        index.catch_up(store).await?;
        Ok(index)
    }

    /// Applies the store's revocations made since the last catch-up; returns how many.
    pub async fn catch_up(&self, store: &Store) -> Result<usize, StoreError> {
        let mut applied = 0;
        loop {
            let since = self.read().seen;
            let page = store.revocations_after(since, PAGE).await?;
            let full = page.len() >= PAGE as usize;
            let mut w = self.revoked.write().unwrap_or_else(|e| e.into_inner());
            for (ca, e) in page {
                w.seen = w.seen.max(e.seq);
                if w.by_serial
                    .insert(e.serial.clone(), revoked(ca, &e))
                    .is_none()
                {
                    applied += 1;
                    self.generation.fetch_add(1, Ordering::AcqRel);
                }
            }
            if !full {
                return Ok(applied);
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Revocations> {
        self.revoked.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a revocation made through this server (before it is answered).
    pub fn note_revoked(&self, serial: &Serial, revoked: Revoked) {
        let mut w = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        if w.by_serial.insert(serial.clone(), revoked).is_none() {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Moves with every revocation applied; equal values mean the revoked set is unchanged.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The revocation of `serial`, if it is revoked.
    pub fn revocation(&self, serial: &Serial) -> Option<Revoked> {
        self.read().by_serial.get(serial).cloned()
    }

    /// The certificate with `serial`: remembered, or read from the store and remembered.
    pub async fn lookup(&self, store: &Store, serial: &Serial) -> Result<Lookup, StoreError> {
        let remembered = self
            .recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(serial);
        let issued = match remembered {
            Some(i) => i,
            None => {
                let rec = match store.get_cert(serial).await {
                    Ok(r) => r,
                    Err(StoreError::NotFound { .. }) => return Ok(Lookup::Unknown),
                    Err(e) => return Err(e),
                };
                // The row may be newer than the last catch-up: its revocation counts now.
                if let (Some(at), reason) = (rec.revoked_at, rec.reason) {
                    let r = Revoked {
                        ca: rec.ca.clone(),
                        at,
                        reason: reason.unwrap_or_default(),
                    };
                    self.note_revoked(serial, r);
                }
                let issued = Arc::new(Issued::from_record(&rec));
                self.recent
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .put(serial.clone(), issued.clone());
                issued
            }
        };
        Ok(Lookup::Found {
            revoked: self.revocation(serial),
            issued,
        })
    }
}

fn revoked(ca: String, e: &FeedEntry) -> Revoked {
    Revoked {
        ca,
        at: e.revoked_at,
        reason: e.reason,
    }
}

/// Catches the index up every `CATCH_UP` while the app lives; a catch-up that finds new
/// revocations wakes the feed and drops the cached CRLs of the mounts concerned.
pub fn spawn_catch_up(app: &Arc<App>) {
    let weak: Weak<App> = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CATCH_UP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else { return };
            catch_up_now(&app).await;
        }
    });
}

/// Catches the index up once, now (also when another node says it revoked something); new
/// revocations wake the feed and drop the cached CRLs.
pub(crate) async fn catch_up_now(app: &App) {
    match app.certs.catch_up(&app.store).await {
        Ok(0) => {}
        Ok(n) => {
            app.crls.lock().unwrap_or_else(|e| e.into_inner()).clear();
            app.revocations.send_modify(|v| *v += 1);
            tracing::info!(revocations = n, "revocations made elsewhere applied");
        }
        Err(e) => tracing::warn!(error = %e, "catching up revocations failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(n: u8) -> Arc<Issued> {
        Arc::new(Issued {
            ca: "pki".into(),
            role: None,
            sha256: [n; 32],
        })
    }

    #[test]
    fn recent_memory_is_bounded_and_keeps_what_is_asked_for() {
        let mut r = Recent::default();
        let keep = Serial::from_bytes(&[0xAA]);
        r.put(keep.clone(), issued(1));
        for i in 0..(3 * GENERATION) as u32 {
            r.put(Serial::from_bytes(&i.to_be_bytes()), issued(2));
            // Asked for now and then, it is carried from generation to generation.
            if i % 1000 == 0 {
                assert!(r.get(&keep).is_some(), "lost after {i} insertions");
            }
        }
        assert!(r.young.len() + r.old.len() <= 2 * GENERATION);
        let forgotten = Serial::from_bytes(&0u32.to_be_bytes());
        assert!(
            r.get(&forgotten).is_none(),
            "an old entry outlived two generations"
        );
    }

    #[test]
    fn a_certificate_is_itself_only_byte_for_byte() {
        let i = Issued {
            ca: "pki".into(),
            role: None,
            sha256: sha256(b"certificate"),
        };
        assert!(i.is(b"certificate"));
        assert!(!i.is(b"certificatf"));
        assert!(!i.is(b""));
    }
}
