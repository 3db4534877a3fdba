//! The TLS side of a listener: its certificate, CAs and CRLs loaded from files, and the
//! [`Terms`] of one connection for mutual-tls's handshake (ALPN `h2` and `http/1.1`, the
//! handshake policy of the name the client asked for): client certificates verified by
//! [`mutual_tls::verify_client_chain`], the one client check of every mutual server, behind a
//! cache and the gate of fetched CRLs. mutual-tls asks the same check of resumed sessions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mutual_tls::load::crls_from_files;
use mutual_tls::{
    ClientAuth, ClientCheck, Identity, LoadError, PeerIdentity, Policy, Refusal, Terms, TrustStore,
};
use rustls::DistinguishedName;
use time::OffsetDateTime;

use crate::config::{ClientCertificate, ListenerConfig};
use crate::crlfetch::{CrlFeed, Snapshot};
use crate::revocation::RevocationFeed;

/// A listener's certificate, CAs and CRLs, loaded; swapped whole on reload.
#[derive(Debug)]
pub struct TlsMaterial {
    /// Our chain and key.
    pub identity: Identity,
    /// CAs that callers must chain to.
    pub trust: TrustStore,
    /// CRLs (DER).
    pub crls: Vec<Vec<u8>>,
    /// The first URI SAN of our certificate: XFCC's `By`.
    pub by: Option<String>,
    /// Seconds since the epoch when our certificate expires.
    pub not_after: i64,
    /// CRLs fetched over HTTP, when the listener fetches them.
    pub feed: Option<Arc<CrlFeed>>,
    /// The revocation feed followed, when the listener follows one.
    pub revocations: Option<Arc<RevocationFeed>>,
    /// Whether a client without a certificate completes the handshake.
    pub client_certificate: ClientCertificate,
    hints: Vec<DistinguishedName>,
    verified: Mutex<HashMap<[u8; 32], Cached>>,
}

/// A chain that passed verification with this material, until `until` (its earliest
/// notAfter). The proof of possession (CertificateVerify) is still checked by every handshake;
/// the cache only spares verifying the same chain bytes against the same CAs and CRLs again.
#[derive(Debug, Clone)]
struct Cached {
    peer: PeerIdentity,
    until: i64,
    /// The fetched CRLs' generation it was verified with.
    generation: u64,
}

/// Entries kept at most; the cache is emptied when full (a reload empties it too).
const CACHE_MAX: usize = 4096;
/// A cached verdict is re-checked after this long, so a CRL that goes stale is noticed.
const CACHE_SECONDS: i64 = 60;

fn chain_key(chain: &[Vec<u8>]) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for c in chain {
        ctx.update(&(c.len() as u64).to_be_bytes());
        ctx.update(c);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

fn earliest_not_after(chain: &[Vec<u8>]) -> Option<i64> {
    chain
        .iter()
        .map(|c| {
            mutual_pki::cert::facts(c)
                .ok()
                .map(|f| f.not_after.unix_timestamp())
        })
        .try_fold(i64::MAX, |m, t| t.map(|t| m.min(t)))
}

impl TlsMaterial {
    /// Reads the listener's files.
    pub fn load(l: &ListenerConfig, feed: Option<Arc<CrlFeed>>) -> Result<TlsMaterial, LoadError> {
        let identity = Identity::from_files(&l.cert, &l.key)?;
        let trust = TrustStore::from_file(&l.ca)?;
        let crls = crls_from_files(&l.crls)?;
        mutual_pki::cert::facts(&identity.chain[0]).map_err(|e| LoadError::Invalid {
            what: "--cert",
            path: l.cert.clone(),
            reason: e.to_string(),
        })?;
        TlsMaterial::from_parts(l, identity, trust, crls, feed)
    }

    /// Builds the material of listener `l` from parts already in memory (an enrolled
    /// listener's certificate).
    pub fn from_parts(
        l: &ListenerConfig,
        identity: Identity,
        trust: TrustStore,
        crls: Vec<Vec<u8>>,
        feed: Option<Arc<CrlFeed>>,
    ) -> Result<TlsMaterial, LoadError> {
        let leaf = identity
            .chain
            .first()
            .ok_or_else(|| LoadError::Config("our certificate chain is empty".into()))?;
        let facts = mutual_pki::cert::facts(leaf)
            .map_err(|e| LoadError::Config(format!("our certificate: {e}")))?;
        Ok(TlsMaterial {
            by: facts.uris.first().cloned(),
            not_after: facts.not_after.unix_timestamp(),
            feed,
            revocations: None,
            client_certificate: l.client_certificate,
            hints: trust.roots.subjects(),
            identity,
            trust,
            crls,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The same material, checking callers against `revocations` too.
    pub fn with_revocations(mut self, revocations: Option<Arc<RevocationFeed>>) -> TlsMaterial {
        self.revocations = revocations;
        self
    }

    /// The terms of one connection: `policy` is enforced in the handshake when given, ALPN
    /// offers `h2` and `http/1.1` when `alpn`.
    pub fn terms(self: &Arc<Self>, policy: Option<Arc<Policy>>, alpn: bool) -> Terms {
        let check = Arc::new(ProxyCheck {
            material: Arc::clone(self),
            policy,
        });
        Terms {
            certified: Arc::clone(&self.identity.certified),
            client_auth: match self.client_certificate {
                ClientCertificate::Required => ClientAuth::Required(check),
                ClientCertificate::Optional => ClientAuth::Optional(check),
            },
            alpn: if alpn {
                vec![b"h2".to_vec(), b"http/1.1".to_vec()]
            } else {
                Vec::new()
            },
        }
    }
}

/// The proxy's decision on a chain: the listener's material (through its cache and the gate
/// of fetched CRLs) and the handshake policy of the name the client asked for.
#[derive(Debug)]
struct ProxyCheck {
    material: Arc<TlsMaterial>,
    policy: Option<Arc<Policy>>,
}

impl ClientCheck for ProxyCheck {
    fn hints(&self) -> &[DistinguishedName] {
        &self.material.hints
    }

    fn asked_for(&self) -> Vec<String> {
        self.material.trust.subjects.clone()
    }

    fn check(&self, chain: &[Vec<u8>], now: OffsetDateTime) -> Result<PeerIdentity, Refusal> {
        check(&self.material, self.policy.as_deref(), chain, now)
    }
}

// `Refusal` is mutual-tls's type, built once per refused handshake.
#[allow(clippy::result_large_err)]
fn check(
    m: &TlsMaterial,
    policy: Option<&Policy>,
    chain: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<PeerIdentity, Refusal> {
    let fetched = m.feed.as_ref().map(|f| f.snapshot());
    if let Some(Err(diagnosis)) = fetched.as_ref().map(|s| &s.verdict) {
        let (subject, issuer) = names(chain);
        return Err(Refusal::Certificate {
            subject,
            issuer,
            diagnosis: diagnosis.clone(),
        });
    }
    let generation = fetched.as_ref().map_or(0, |s| s.generation);
    let key = chain_key(chain);
    let hit = {
        let cache = m.verified.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(&key)
            .filter(|c| now.unix_timestamp() < c.until && c.generation == generation)
            .map(|c| c.peer.clone())
    };
    let peer = match hit {
        Some(peer) => peer,
        None => {
            let peer = verify_chain(m, fetched.as_deref(), chain, now)?;
            if let Some(until) = earliest_not_after(chain) {
                let until = until.min(now.unix_timestamp() + CACHE_SECONDS);
                let mut cache = m.verified.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_MAX {
                    cache.clear();
                }
                cache.insert(
                    key,
                    Cached {
                        peer: peer.clone(),
                        until,
                        generation,
                    },
                );
            }
            peer
        }
    };
    // After the cache, not inside it: a revocation the feed reports takes effect at the very
    // next handshake or resumption, whatever the cache holds (one hash lookup).
    if let Some(r) = &m.revocations {
        if let Err(refusal) = r.check(&peer, now) {
            let diagnosis = refusal.diagnosis(&peer);
            if matches!(refusal, crate::revocation::Refusal::Revoked { .. }) {
                r.refusals
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            tracing::warn!(peer.cn = peer.name(), peer.issuer = peer.issuer_name(), peer.serial = %peer.serial, decision = "revoked", at = "handshake", reason = %refusal, "refused a caller by the revocation feed");
            return Err(Refusal::Certificate {
                subject: peer.subject.clone(),
                issuer: peer.issuer.clone(),
                diagnosis,
            });
        }
    }
    if let Some(p) = policy {
        let peer = Arc::new(peer);
        p.authorize(&peer).map_err(Refusal::NotAllowed)?;
        return Ok(Arc::unwrap_or_clone(peer));
    }
    Ok(peer)
}

#[allow(clippy::result_large_err)]
fn names(chain: &[Vec<u8>]) -> (String, String) {
    chain
        .first()
        .and_then(|c| mutual_pki::cert::facts(c).ok())
        .map(|f| (f.subject, f.issuer))
        .unwrap_or_else(|| ("<unreadable>".into(), "<unreadable>".into()))
}

#[allow(clippy::result_large_err)]
fn verify_chain(
    m: &TlsMaterial,
    fetched: Option<&Snapshot>,
    chain: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<PeerIdentity, Refusal> {
    let with_fetched;
    let crls = match fetched {
        Some(s) if !s.crls.is_empty() => {
            with_fetched = m.crls.iter().chain(&s.crls).cloned().collect::<Vec<_>>();
            &with_fetched
        }
        _ => &m.crls,
    };
    mutual_tls::verify_client_chain(&m.trust, crls, chain, now)
}
