//! The server's state: the store, its group-commit writer, and an in-memory copy of every
//! mount (its record, CA and roles) so that the hot path (`issue`, `sign`) reads no database
//! row. Writes go to the store first and then replace the mount's copy.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, RwLock},
    time::{Duration, Instant},
};

use mutual_pki::role::Role;
use mutual_store::{CaRecord, CertWriter, MountRecord, Store, TokenRecord};
use time::OffsetDateTime;

use crate::error::ApiError;

/// How long a token looked up in the store is trusted before it is looked up again (a token
/// revoked by `mutual token revoke` in another process stops working within this).
const TOKEN_FRESH: Duration = Duration::from_secs(2);

/// A mount as the server serves it.
#[derive(Debug, Clone)]
pub struct Mount {
    /// The stored record.
    pub record: MountRecord,
    /// Its CA, once generated or set.
    pub ca: Option<Arc<CaRecord>>,
    /// Its roles by name.
    pub roles: HashMap<String, Arc<Role>>,
    /// Its CA rotation, the latest (over or not): a due switch is made at the next request.
    pub rotation: Option<mutual_pki::rotation::Rotation>,
    /// Roots its trust bundle carries besides its CA's while a rotation is under way.
    pub rotation_roots: Vec<String>,
    /// True for the copy `issuer/:ref/…` runs on: its CA is the one the path names, which a
    /// role's `issuer_ref` does not override.
    pub issuer_fixed: bool,
    /// Its CA's (issuer's) `leaf_not_after_behavior`, which Vault 1.11+ applies to a leaf
    /// that would outlive the issuer.
    pub issuer_not_after: mutual_pki::role::NotAfterBehavior,
    /// Its other issuers that hold a key, as CAs: each answers OCSP for the leaves it signed
    /// (after a rotation, the old issuer's leaves until they expire).
    pub other_signers: Vec<Arc<CaRecord>>,
    /// The CertID hashes of its CA for OCSP, computed on first use.
    ocsp_issuer: OnceLock<Option<Arc<mutual_pki::ocsp::Issuer>>>,
    /// The same for `other_signers`, in their order, computed on first use.
    other_ocsp_issuers: OnceLock<Vec<(Arc<mutual_pki::ocsp::Issuer>, Arc<CaRecord>)>>,
    /// The mount as each issuer reference issues on it (a role's `issuer_ref`,
    /// `issuer/:ref/issue/…`), opened once: every change to issuers, keys or roles replaces the
    /// served mount, and this with it.
    pub(crate) by_issuer: IssuerMounts,
}

/// See [`Mount::by_issuer`]. A copy of a mount starts empty: what it caches belongs to the copy
/// it was made from.
#[derive(Debug, Default)]
pub(crate) struct IssuerMounts(Mutex<HashMap<String, Arc<Mount>>>);

impl Clone for IssuerMounts {
    fn clone(&self) -> Self {
        IssuerMounts::default()
    }
}

impl IssuerMounts {
    pub(crate) fn get(&self, reference: &str) -> Option<Arc<Mount>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(reference)
            .cloned()
    }

    pub(crate) fn put(&self, reference: &str, mount: Arc<Mount>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reference.to_string(), mount);
    }
}

impl Mount {
    /// A served mount.
    pub fn new(
        record: MountRecord,
        ca: Option<Arc<CaRecord>>,
        roles: HashMap<String, Arc<Role>>,
    ) -> Mount {
        Mount {
            record,
            ca,
            roles,
            rotation: None,
            rotation_roots: Vec::new(),
            issuer_fixed: false,
            issuer_not_after: Default::default(),
            other_signers: Vec::new(),
            ocsp_issuer: OnceLock::new(),
            other_ocsp_issuers: OnceLock::new(),
            by_issuer: IssuerMounts::default(),
        }
    }

    /// Its CA as an OCSP issuer (None without a CA or when its certificate does not parse).
    pub fn ocsp_issuer(&self) -> Option<Arc<mutual_pki::ocsp::Issuer>> {
        self.ocsp_issuer
            .get_or_init(|| {
                let ca = self.ca.as_ref()?;
                mutual_pki::ocsp::Issuer::new(&ca.cert_der)
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    }

    /// The first of `other_signers` that `q` names, as an OCSP issuer, with its CA: it answers,
    /// and signs, a query about a leaf it issued.
    pub fn other_ocsp_signer(
        &self,
        q: &mutual_pki::ocsp::CertQuery,
    ) -> Option<(Arc<mutual_pki::ocsp::Issuer>, Arc<CaRecord>)> {
        self.other_ocsp_issuers
            .get_or_init(|| {
                self.other_signers
                    .iter()
                    .filter_map(|ca| {
                        let issuer = mutual_pki::ocsp::Issuer::new(&ca.cert_der).ok()?;
                        Some((Arc::new(issuer), Arc::clone(ca)))
                    })
                    .collect()
            })
            .iter()
            .find(|(i, _)| i.issued(q))
            .cloned()
    }

    /// The mount's CA, or Vault's 400 when it has none yet.
    pub fn ca(&self) -> Result<&Arc<CaRecord>, ApiError> {
        self.ca.as_ref().ok_or_else(|| {
            ApiError::bad(format!(
                "no default issuer currently configured on mount \"{}\"; generate a root or set a signed intermediate first",
                self.record.path
            ))
        })
    }
}

/// A CRL built once and served until a revocation or a rotation makes it stale.
#[derive(Debug, Clone)]
pub struct CachedCrl {
    /// DER.
    pub der: Arc<Vec<u8>>,
    /// When it was built.
    pub built: OffsetDateTime,
    /// The certificate of the CA that signed it: a CRL of a replaced CA is never served.
    pub ca: Arc<Vec<u8>>,
    /// The UUID of the mount it was built for: nor is a CRL of a mount since deleted and
    /// mounted again at the same path.
    pub mount: String,
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct App {
    /// The store.
    pub store: Store,
    /// Group commit of issued certificates.
    pub writer: CertWriter,
    mounts: RwLock<HashMap<String, Arc<Mount>>>,
    /// Serialises configuration writes (mounts, CAs, roles) so that read-modify-write of a
    /// mount's copy never races.
    pub admin: tokio::sync::Mutex<()>,
    /// CRLs by mount, then by signing key.
    pub crls: Mutex<HashMap<String, HashMap<String, CachedCrl>>>,
    tokens: Mutex<HashMap<String, (TokenRecord, Instant)>>,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// Bumped by every revocation made through this server: what the feed's long-polls and
    /// event streams wait on (a watch: waiting costs a receiver, not a task).
    pub revocations: tokio::sync::watch::Sender<u64>,
    /// The feed's answers shared by the subscribers one revocation wakes.
    pub(crate) woken: crate::feed::Woken,
    /// Counters of the lifecycle endpoints (renewals, OCSP answers).
    pub counters: crate::lifecycle::Counters,
    /// Parsed ACL policies, briefly cached.
    pub(crate) policies: crate::acl::PolicyCache,
    /// Revoked certificates and recently looked-up ones, for OCSP and renewal.
    pub(crate) certs: crate::certindex::CertIndex,
    /// Signed OCSP answers to requests without a nonce, served again for a while.
    pub(crate) answers: crate::ocsp::Answers,
    /// Enabled audit devices.
    pub(crate) audit: crate::audit::Devices,
    /// CRL and tidy configuration, the CRLs built under it, the last tidy.
    pub(crate) crl: crate::crl_config::CrlState,
    /// The ACME server: nonces, rate limits, the validator, counters.
    pub acme: crate::acme::AcmeState,
}

impl App {
    /// Loads every mount of the store and starts the certificate writer (call inside a tokio
    /// runtime).
    pub async fn load(store: Store) -> Result<App, ApiError> {
        let mut mounts = HashMap::new();
        for record in store.list_mounts().await? {
            let mount = load_mount(&store, record).await?;
            mounts.insert(mount.record.path.clone(), Arc::new(mount));
        }
        let app = App {
            writer: store.cert_writer()?,
            certs: crate::certindex::CertIndex::load(&store).await?,
            answers: crate::ocsp::Answers::default(),
            store,
            mounts: RwLock::new(mounts),
            admin: tokio::sync::Mutex::new(()),
            crls: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            body_limit: 1 << 20,
            revocations: tokio::sync::watch::Sender::new(0),
            woken: crate::feed::Woken::default(),
            counters: crate::lifecycle::Counters::default(),
            policies: crate::acl::PolicyCache::default(),
            audit: crate::audit::Devices::default(),
            crl: crate::crl_config::CrlState::default(),
            acme: crate::acme::AcmeState::default(),
        };
        app.load_audit().await?;
        Ok(app)
    }

    /// The mount whose path is the longest prefix of `path`, with the rest of the path.
    pub fn route<'p>(&self, path: &'p str) -> Option<(Arc<Mount>, &'p str)> {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        let mut end = path.len();
        loop {
            let prefix = &path[..end];
            if let Some(m) = mounts.get(prefix) {
                let rest = path[end..].trim_start_matches('/');
                return Some((m.clone(), rest));
            }
            end = prefix.rfind('/')?;
        }
    }

    /// The mount at exactly `path`.
    pub fn mount(&self, path: &str) -> Option<Arc<Mount>> {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        mounts.get(path).cloned()
    }

    /// Every mount, by path.
    pub fn mounts(&self) -> Vec<Arc<Mount>> {
        let mounts = self.mounts.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = mounts.values().cloned().collect();
        all.sort_by(|a, b| a.record.path.cmp(&b.record.path));
        all
    }

    /// Replaces (or with `None` removes) the served copy of a mount.
    pub fn set_mount(&self, path: &str, mount: Option<Mount>) {
        let mut mounts = self.mounts.write().unwrap_or_else(|e| e.into_inner());
        match mount {
            // Its CRLs stay: a role or URL write changes nothing in them, and one built by a
            // CA since replaced, or for an earlier mount at this path, is never served
            // (`CachedCrl::ca` and `mount`). Dropping them gave every such write a new CRL
            // number, a new ETag and a download by every poller.
            Some(m) => {
                mounts.insert(path.to_string(), Arc::new(m));
            }
            None => {
                mounts.remove(path);
                self.crls
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(path);
            }
        }
    }

    /// Re-reads a mount from the store into the served copy.
    pub async fn reload_mount(&self, path: &str) -> Result<Arc<Mount>, ApiError> {
        let record = self
            .store
            .list_mounts()
            .await?
            .into_iter()
            .find(|m| m.path == path)
            .ok_or_else(|| ApiError::NoRoute(path.to_string()))?;
        let mount = load_mount(&self.store, record).await?;
        self.set_mount(path, Some(mount));
        // The other nodes on the database reload their copies (cluster.rs).
        if let Err(e) = self.store.note_change("mounts").await {
            tracing::warn!(error = %e, "telling other nodes of a mount change failed");
        }
        self.mount(path)
            .ok_or_else(|| ApiError::NoRoute(path.to_string()))
    }

    /// Re-reads every mount from the store (a change made by another node), without telling
    /// the others again.
    pub(crate) async fn reload_mounts(&self) -> Result<(), ApiError> {
        // After any configuration write of this node, so that an older read never replaces
        // the copy that write has just set.
        let _guard = self.admin.lock().await;
        let mut fresh = HashMap::new();
        for record in self.store.list_mounts().await? {
            let mount = load_mount(&self.store, record).await?;
            fresh.insert(mount.record.path.clone(), Arc::new(mount));
        }
        // The CRLs of mounts that remain stay, as in `set_mount`.
        self.crls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|path, _| fresh.contains_key(path));
        *self.mounts.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The token behind a secret, or 403.
    pub async fn token(&self, secret: Option<&str>) -> Result<TokenRecord, ApiError> {
        let secret = secret
            .filter(|s| !s.is_empty())
            .ok_or(ApiError::PermissionDenied)?;
        let hash = mutual_store::token_hash(secret);
        if let Some((rec, at)) = self
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
        {
            if at.elapsed() < TOKEN_FRESH {
                return bound(rec.clone());
            }
        }
        match self.store.lookup_token(secret).await? {
            Some(rec) => {
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(hash, (rec.clone(), Instant::now()));
                bound(rec)
            }
            None => {
                self.forget_token(secret);
                Err(ApiError::PermissionDenied)
            }
        }
    }

    /// Drops a token from the cache (after a revocation through the API).
    pub fn forget_token(&self, secret: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&mutual_store::token_hash(secret));
    }

    /// Drops every cached token (after a revocation by accessor).
    pub fn forget_tokens(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A token bound to CIDR blocks (`token_bound_cidrs`) works only from inside them: from
/// elsewhere it is as if it did not exist (403), as in Vault.
fn bound(rec: TokenRecord) -> Result<TokenRecord, ApiError> {
    if rec.lease.bound_cidrs.is_empty() {
        return Ok(rec);
    }
    let cidrs = mutual_auth::approle::parse_cidrs(&rec.lease.bound_cidrs)?;
    match crate::current_remote() {
        Some(ip) if cidrs.iter().any(|c| c.contains(ip)) => Ok(rec),
        _ => Err(ApiError::PermissionDenied),
    }
}

async fn load_mount(store: &Store, record: MountRecord) -> Result<Mount, ApiError> {
    // A CA set by a single-issuer path (or by a release before issuers) becomes the mount's
    // default issuer, under the ID the mount always answered for it.
    store.adopt_ca(&record.path, Some(&record.uuid)).await?;
    let rotation = store.rotation(&record.path).await?;
    let rotation_roots = store.rotation_roots(&record.path).await?;
    let ca = match store.get_ca(&record.path).await {
        Ok(ca) => Some(Arc::new(ca)),
        Err(mutual_store::StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let roles = store
        .list_mount_roles(&record.path)
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), Arc::new(r)))
        .collect();
    let defaults = store.issuer_defaults(&record.path).await?;
    let issuers = store.list_issuers(&record.path).await?;
    let mut other_signers = Vec::new();
    for i in issuers.iter().filter(|i| i.id != defaults.default) {
        if mutual_pki::issuers::has_usage(&i.usage, "ocsp-signing") {
            if let Some(ca) = store.issuer_ca(i).await? {
                other_signers.push(Arc::new(ca));
            }
        }
    }
    let not_after = issuers
        .into_iter()
        .find(|i| i.id == defaults.default)
        .map(|i| crate::issuers::not_after_behavior(&i.leaf_not_after_behavior))
        .unwrap_or_default();
    let mut mount = Mount::new(record, ca, roles);
    mount.issuer_not_after = not_after;
    mount.other_signers = other_signers;
    mount.rotation = rotation;
    mount.rotation_roots = rotation_roots;
    Ok(mount)
}
