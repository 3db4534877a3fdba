//! Vault's CRL and tidy configuration of a mount: `config/crl` (expiry, disable, auto-rebuild
//! with its grace period, delta CRLs with their rebuild interval), the complete and delta CRLs
//! it shapes (`crl`, `crl/delta`, their PEM and JSON forms), `config/auto-tidy`, `tidy` and
//! `tidy-status`. Configuration is kept in the store (`mount_config`) and cached here; the CRLs
//! built and the state of the last tidy live in memory, as in Vault.
//!
//! The tidy paths are routed here too; what they do is in [`crate::tidy`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock},
    time::Duration,
};

use mutual_pki::{crl, duration};
use mutual_store::CaRecord;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    params::Params,
    pki::blocking,
    reply::Reply,
    state::{App, CachedCrl, Mount},
    tidy::{auto_tidy, start_background, start_tidy, tidy_status, AutoTidy, TidyParams, TidyRun},
    Op,
};

/// A complete CRL served without auto-rebuild is rebuilt after this even without a revocation.
const CRL_REFRESH: Duration = Duration::from_secs(3600);

/// Vault's `config/crl`, as stored. Durations keep the text they were given in, as Vault does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct CrlConfig {
    expiry: String,
    disable: bool,
    ocsp_disable: bool,
    ocsp_expiry: String,
    auto_rebuild: bool,
    auto_rebuild_grace_period: String,
    enable_delta: bool,
    delta_rebuild_interval: String,
    allow_expired_cert_revocation: bool,
    cross_cluster_revocation: bool,
    unified_crl: bool,
    unified_crl_on_existing_paths: bool,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            expiry: "72h".into(),
            disable: false,
            ocsp_disable: false,
            ocsp_expiry: "12h".into(),
            auto_rebuild: false,
            auto_rebuild_grace_period: "12h".into(),
            enable_delta: false,
            delta_rebuild_interval: "15m".into(),
            allow_expired_cert_revocation: false,
            cross_cluster_revocation: false,
            unified_crl: false,
            unified_crl_on_existing_paths: false,
        }
    }
}

fn dur(text: &str) -> Duration {
    duration::parse(text).unwrap_or_default()
}

impl CrlConfig {
    fn expiry(&self) -> Duration {
        dur(&self.expiry).max(Duration::from_secs(1))
    }

    /// A write of `config/crl`: the fields given replace the stored ones, then Vault's rules
    /// between them are checked.
    fn updated(&self, p: &Params) -> Result<CrlConfig, ApiError> {
        let mut c = self.clone();
        for (key, field) in [
            ("expiry", &mut c.expiry),
            ("ocsp_expiry", &mut c.ocsp_expiry),
            (
                "auto_rebuild_grace_period",
                &mut c.auto_rebuild_grace_period,
            ),
            ("delta_rebuild_interval", &mut c.delta_rebuild_interval),
        ] {
            if let Some(text) = p.string(key).filter(|t| !t.trim().is_empty()) {
                duration::parse(text.trim())
                    .map_err(|e| ApiError::bad(format!("given {key} could not be decoded: {e}")))?;
                *field = text.trim().to_string();
            }
        }
        for (key, field) in [
            ("disable", &mut c.disable),
            ("ocsp_disable", &mut c.ocsp_disable),
            ("auto_rebuild", &mut c.auto_rebuild),
            ("enable_delta", &mut c.enable_delta),
            (
                "allow_expired_cert_revocation",
                &mut c.allow_expired_cert_revocation,
            ),
            ("cross_cluster_revocation", &mut c.cross_cluster_revocation),
            ("unified_crl", &mut c.unified_crl),
            (
                "unified_crl_on_existing_paths",
                &mut c.unified_crl_on_existing_paths,
            ),
        ] {
            if let Some(b) = p.bool(key)? {
                *field = b;
            }
        }
        if c.enable_delta && !c.auto_rebuild {
            return Err(ApiError::bad("Delta CRLs cannot be enabled when auto rebuilding is disabled as the complete CRL is always regenerated!"));
        }
        if c.auto_rebuild && dur(&c.auto_rebuild_grace_period) >= dur(&c.expiry) {
            return Err(ApiError::bad(format!(
                "CRL auto-rebuilding grace period ({}) must be strictly shorter than CRL expiry ({}) value when auto-rebuilding of CRLs is enabled",
                c.auto_rebuild_grace_period, c.expiry
            )));
        }
        Ok(c)
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({}))
    }
}

/// A CRL built and served until it is due again.
#[derive(Debug, Clone)]
struct Built {
    der: Arc<Vec<u8>>,
    number: u64,
    built: OffsetDateTime,
    next_update: OffsetDateTime,
    /// The store's revocation sequence when it was built: a delta holds what came after.
    seq: u64,
    /// The certificate of the CA that signed it: a CRL of a replaced CA is never served.
    ca: Arc<Vec<u8>>,
}

/// The complete CRL of one signing key and the delta CRL over it.
#[derive(Debug, Default)]
struct KeyCrls {
    base: Option<Built>,
    delta: Option<Built>,
}

#[derive(Debug, Default)]
pub(crate) struct MountCrl {
    /// The mount's UUID: a mount disabled and enabled again at the same path starts afresh.
    pub(crate) uuid: String,
    pub(crate) config: Option<CrlConfig>,
    pub(crate) auto_tidy: Option<AutoTidy>,
    /// By signing key ([`mutual_pki::issuers::signing_key_id`]): each issuer's CRL, issuers
    /// sharing a key sharing one, as Vault's.
    built: HashMap<String, KeyCrls>,
    pub(crate) tidy: Option<TidyRun>,
    pub(crate) last_auto_tidy_finished: Option<OffsetDateTime>,
}

/// The CRL and tidy state of every mount, kept by the [`App`].
#[derive(Debug, Default)]
pub struct CrlState {
    mounts: Mutex<HashMap<String, MountCrl>>,
    pub(crate) background: OnceLock<()>,
}

impl CrlState {
    pub(crate) fn with<T>(&self, mount: &str, f: impl FnOnce(&mut MountCrl) -> T) -> T {
        let mut all = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(mount.to_string()).or_default())
    }

    /// Forgets every mount's auto-tidy configuration (read again at its next use).
    fn forget_auto_tidy(&self) {
        let mut all = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        for m in all.values_mut() {
            m.auto_tidy = None;
        }
    }

    /// The mounts whose CRL configuration is kept in memory.
    fn configured(&self) -> Vec<(String, CrlConfig)> {
        let all = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        all.iter()
            .filter_map(|(path, m)| Some((path.clone(), m.config.clone()?)))
            .collect()
    }

    /// Forgets what was kept for an earlier mount at the same path.
    pub(crate) fn check_mount(&self, mount: &Mount) {
        self.with(&mount.record.path, |m| {
            if m.uuid != mount.record.uuid {
                *m = MountCrl {
                    uuid: mount.record.uuid.clone(),
                    ..MountCrl::default()
                };
            }
        });
    }
}

async fn crl_config(app: &App, mount: &str) -> Result<CrlConfig, ApiError> {
    if let Some(c) = app.crl.with(mount, |m| m.config.clone()) {
        return Ok(c);
    }
    let c = stored_crl_config(app, mount).await?;
    app.crl.with(mount, |m| m.config = Some(c.clone()));
    Ok(c)
}

/// The mount's CRL configuration as stored (Vault's defaults when none was written).
async fn stored_crl_config(app: &App, mount: &str) -> Result<CrlConfig, ApiError> {
    Ok(match app.store.mount_config(mount, "crl").await? {
        Some(body) => serde_json::from_str(&body).unwrap_or_default(),
        None => CrlConfig::default(),
    })
}

/// The kind of change (cluster.rs) other nodes hear when a CRL or auto-tidy configuration
/// changes: they take up the stored one, where they would otherwise keep theirs until they
/// restart.
pub(crate) const CONFIG_CHANGE: &str = "crl_config";

/// Tells the other nodes that a configuration of this module changed (see [`CONFIG_CHANGE`]).
async fn tell_other_nodes(app: &App) {
    if let Err(e) = app.store.note_change(CONFIG_CHANGE).await {
        tracing::warn!(error = %e, "telling other nodes of a CRL configuration change failed");
    }
}

/// Takes up the configurations another node changed: each mount's auto-tidy configuration
/// is read again at its next use, and a mount whose CRL configuration differs from the
/// store's takes the store's and builds its CRLs again. The node that made the change hears
/// it too and finds nothing different, so its CRLs (a delta's base among them) stay.
pub(crate) async fn reload_configurations(app: &App) {
    for (path, kept) in app.crl.configured() {
        let stored = match stored_crl_config(app, &path).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(mount = %path, error = %e, "re-reading a CRL configuration changed elsewhere failed");
                continue;
            }
        };
        if stored != kept {
            app.crl.with(&path, |m| m.config = Some(stored));
            forget_crls(app, &path);
            tracing::info!(mount = %path, "CRL configuration changed elsewhere applied");
        }
    }
    app.crl.forget_auto_tidy();
}

/// Forgets the CRLs built for a mount, so that the next read builds them again.
pub(crate) fn forget_crls(app: &App, mount: &str) {
    app.crl.with(mount, |m| m.built.clear());
    app.crls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(mount);
}

/// A CA of a mount that signs a CRL, and the id of its key.
struct Signer {
    ca: Arc<CaRecord>,
    key: String,
}

impl Signer {
    fn of(ca: &Arc<CaRecord>) -> Result<Signer, ApiError> {
        Ok(Signer {
            key: mutual_pki::issuers::signing_key_id(&ca.cert_der)?,
            ca: ca.clone(),
        })
    }
}

/// The revoked certificates on `signer`'s CRL (with `after`, those revoked after that point of
/// the revocation sequence): those the signer's key signed, found by index once each
/// revocation is attributed to its key (mutual_store's signers.rs).
async fn revoked_for(
    app: &App,
    path: &str,
    signer: &Signer,
    after: Option<u64>,
) -> Result<Vec<crl::RevokedEntry>, ApiError> {
    attribute(app, path).await?;
    Ok(app
        .store
        .revoked_signed_by(path, &signer.key, after)
        .await?)
}

/// Attributes the revocations of a mount that name no signing key (a store from before
/// per-issuer CRLs, or revocations imported), counting and logging what it did.
async fn attribute(app: &App, path: &str) -> Result<u64, ApiError> {
    let started = std::time::Instant::now();
    let n = app.store.attribute_revoked(path).await?;
    if n > 0 {
        app.counters
            .revocations_attributed
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(mount = %path, certificates = n, secs = started.elapsed().as_secs_f64(),
            "revoked certificates attributed to the keys that signed them");
    }
    Ok(n)
}

/// Runs `attribute` for every mount in the background: work of seconds per 100,000
/// revocations done once, at start, rather than by the first CRL request after an upgrade.
pub fn spawn_attribution(app: &Arc<App>) {
    let app = app.clone();
    tokio::spawn(async move {
        for mount in app.mounts() {
            if let Err(e) = attribute(&app, &mount.record.path).await {
                tracing::warn!(mount = %mount.record.path, error = %e, "attributing revoked certificates failed; the next CRL build tries again");
            }
        }
    });
}

/// The mount's complete CRL, of its default issuer (see [`complete_crl_of`]).
pub(crate) async fn complete_crl(
    app: &App,
    mount: &Mount,
    rotate: bool,
) -> Result<Arc<Vec<u8>>, ApiError> {
    complete_crl_of(app, mount, mount.ca()?, rotate).await
}

/// The complete CRL of the issuer `ca` of a mount: cached until a revocation (or, with
/// auto-rebuild, until the grace period before its nextUpdate), empty when the CRL is
/// disabled, valid for `expiry`.
pub(crate) async fn complete_crl_of(
    app: &App,
    mount: &Mount,
    ca: &Arc<CaRecord>,
    rotate: bool,
) -> Result<Arc<Vec<u8>>, ApiError> {
    app.crl.check_mount(mount);
    let path = mount.record.path.clone();
    let signer = Signer::of(ca)?;
    let cfg = crl_config(app, &path).await?;
    let now = OffsetDateTime::now_utc();
    if !rotate {
        if cfg.auto_rebuild {
            let grace = dur(&cfg.auto_rebuild_grace_period);
            let base = app.crl.with(&path, |m| {
                m.built.get(&signer.key).and_then(|k| k.base.clone())
            });
            if let Some(b) = base {
                if now + grace < b.next_update && *b.ca == ca.cert_der {
                    return Ok(b.der);
                }
            }
        } else {
            let refresh = CRL_REFRESH.min(cfg.expiry() / 2);
            let cached = app
                .crls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&path)
                .and_then(|by_key| by_key.get(&signer.key))
                .cloned();
            if let Some(c) = cached.filter(|c| {
                now - c.built < refresh && *c.ca == ca.cert_der && c.mount == mount.record.uuid
            }) {
                return Ok(c.der);
            }
        }
    }
    let started = std::time::Instant::now();
    let ca_cert = Arc::new(ca.cert_der.clone());
    let seq = app.store.revocation_seq().await?;
    let entries = if cfg.disable {
        vec![]
    } else {
        revoked_for(app, &path, &signer, None).await?
    };
    let number = app.store.next_crl_number(&path).await?;
    let expiry = cfg.expiry();
    let signing = signer.ca.clone();
    let der = Arc::new(
        blocking(move || {
            Ok(crl::build(
                &signing.signer(),
                number,
                &entries,
                now,
                expiry,
            )?)
        })
        .await?,
    );
    app.counters.crl_built(false, started.elapsed());
    app.crl.with(&path, |m| {
        let k = m.built.entry(signer.key.clone()).or_default();
        k.base = Some(Built {
            der: der.clone(),
            number,
            built: now,
            next_update: now + expiry,
            seq,
            ca: ca_cert.clone(),
        });
        k.delta = None;
    });
    app.crls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path)
        .or_default()
        .insert(
            signer.key,
            CachedCrl {
                der: der.clone(),
                built: now,
                ca: ca_cert,
                mount: mount.record.uuid.clone(),
            },
        );
    Ok(der)
}

/// The delta CRL of the mount's default issuer (see [`delta_crl_of`]).
pub(crate) async fn delta_crl(app: &App, mount: &Mount) -> Result<Arc<Vec<u8>>, ApiError> {
    delta_crl_of(app, mount, mount.ca()?, false).await
}

/// Every CRL-signing CA of the mount: its default issuer, then the others that hold a key.
fn signing_cas(mount: &Mount) -> Result<Vec<Arc<CaRecord>>, ApiError> {
    let mut all = vec![mount.ca()?.clone()];
    all.extend(mount.other_signers.iter().cloned());
    Ok(all)
}

/// `crl/rotate`: every issuer's complete CRL built again now, as Vault's.
pub(crate) async fn rotate_crls(app: &App, mount: &Mount) -> Result<(), ApiError> {
    for ca in signing_cas(mount)? {
        complete_crl_of(app, mount, &ca, true).await?;
    }
    Ok(())
}

/// `crl/rotate-delta`: every issuer's delta CRL built again now, whatever its interval.
async fn rotate_deltas(app: &App, mount: &Mount) -> Result<(), ApiError> {
    for ca in signing_cas(mount)? {
        delta_crl_of(app, mount, &ca, true).await?;
    }
    Ok(())
}

/// The delta CRL of the issuer `ca` of a mount: the revocations since the complete CRL it names
/// (Delta CRL Indicator), rebuilt at most once per `delta_rebuild_interval` when revocations
/// came (`force`: now, whatever the interval).
pub(crate) async fn delta_crl_of(
    app: &App,
    mount: &Mount,
    ca: &Arc<CaRecord>,
    force: bool,
) -> Result<Arc<Vec<u8>>, ApiError> {
    let path = mount.record.path.clone();
    let cfg = crl_config(app, &path).await?;
    complete_crl_of(app, mount, ca, false).await?;
    let signer = Signer::of(ca)?;
    let (base, delta) = app.crl.with(&path, |m| {
        let k = m.built.get(&signer.key);
        (
            k.and_then(|k| k.base.clone()),
            k.and_then(|k| k.delta.clone()),
        )
    });
    let Some(base) = base else {
        return Err(ApiError::bad("no complete CRL to base a delta CRL on"));
    };
    let now = OffsetDateTime::now_utc();
    let seq = app.store.revocation_seq().await?;
    if let Some(d) = delta.filter(|_| !force) {
        let due = now - d.built >= dur(&cfg.delta_rebuild_interval);
        if d.seq == seq || !due {
            return Ok(d.der);
        }
    }
    let started = std::time::Instant::now();
    let entries = if cfg.disable || !cfg.enable_delta {
        vec![]
    } else {
        revoked_for(app, &path, &signer, Some(base.seq)).await?
    };
    let number = app.store.next_crl_number(&path).await?;
    let expiry = cfg.expiry();
    let base_number = base.number;
    let signing = signer.ca.clone();
    let der = Arc::new(
        blocking(move || {
            Ok(crl::build_delta(
                &signing.signer(),
                number,
                base_number,
                &entries,
                now,
                expiry,
            )?)
        })
        .await?,
    );
    app.counters.crl_built(true, started.elapsed());
    app.crl.with(&path, |m| {
        // A complete CRL built meanwhile makes this delta stale: it is served once, not kept.
        let k = m.built.entry(signer.key).or_default();
        if k.base.as_ref().is_some_and(|b| b.number == base_number) {
            k.delta = Some(Built {
                der: der.clone(),
                number,
                built: now,
                next_update: now + expiry,
                seq,
                ca: base.ca.clone(),
            });
        }
    });
    Ok(der)
}

fn raw(content_type: &'static str, body: Vec<u8>) -> Reply {
    Reply::Raw { content_type, body }
}

/// Answers the paths of this module; `None` leaves the request to [`crate::pki::handle`].
pub(crate) async fn handle(
    app: &Arc<App>,
    mount: &Arc<Mount>,
    op: Op,
    rest: &str,
    p: &Params,
) -> Result<Option<Reply>, ApiError> {
    start_background(app);
    app.crl.check_mount(mount);
    let path = mount.record.path.as_str();
    Ok(Some(match (op, rest) {
        (Op::Read, "config/crl") => Reply::data(crl_config(app, path).await?.to_json()),
        (Op::Write, "config/crl") => {
            let _guard = app.admin.lock().await;
            let c = crl_config(app, path).await?.updated(p)?;
            let body = serde_json::to_string(&c).unwrap_or_default();
            app.store.put_mount_config(path, "crl", &body).await?;
            app.crl.with(path, |m| m.config = Some(c.clone()));
            forget_crls(app, path);
            tell_other_nodes(app).await;
            Reply::data(c.to_json())
        }
        (Op::Read, "crl/delta") => raw(
            "application/pkix-crl",
            delta_crl(app, mount).await?.to_vec(),
        ),
        (Op::Read, "crl/delta/pem") => raw(
            "application/x-pem-file",
            crl::to_pem(&delta_crl(app, mount).await?).into_bytes(),
        ),
        (Op::Read, "crl/rotate-delta") => {
            rotate_deltas(app, mount).await?;
            Reply::data(json!({ "success": true }))
        }
        (Op::Read, "cert/delta-crl") => Reply::data(json!({
            "certificate": crl::to_pem(&delta_crl(app, mount).await?),
            "revocation_time": 0,
            "revocation_time_rfc3339": "",
        })),
        (Op::Read, "config/auto-tidy") => Reply::data(auto_tidy(app, path).await?.to_json()),
        (Op::Write, "config/auto-tidy") => {
            let _guard = app.admin.lock().await;
            let a = auto_tidy(app, path).await?.updated(p)?;
            let body = serde_json::to_string(&a).unwrap_or_default();
            app.store.put_mount_config(path, "auto-tidy", &body).await?;
            app.crl.with(path, |m| m.auto_tidy = Some(a.clone()));
            tell_other_nodes(app).await;
            Reply::data(a.to_json())
        }
        (Op::Write, "tidy") => {
            let params = TidyParams::default().updated(p)?;
            if start_tidy(app, path, params, false) {
                Reply::Accepted(vec!["Tidy operation successfully started. Any information from the operation will be printed to mutual's server log.".into()])
            } else {
                Reply::Data {
                    data: Value::Null,
                    warnings: vec!["Tidy operation already in progress.".into()],
                }
            }
        }
        (Op::Read, "tidy-status") => Reply::data(tidy_status(app, mount)),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        Params::parse(body.as_bytes(), None).unwrap()
    }

    /// Vault's rules between the `config/crl` fields, and partial writes.
    #[test]
    fn crl_config_writes() {
        let base = CrlConfig::default();
        let cases: Vec<(&str, Result<&str, &str>)> = vec![
            (r#"{"expiry":"48h"}"#, Ok("48h")),
            (
                r#"{"expiry":"bogus"}"#,
                Err("given expiry could not be decoded"),
            ),
            (
                r#"{"enable_delta":true}"#,
                Err("Delta CRLs cannot be enabled when auto rebuilding is disabled"),
            ),
            (
                r#"{"auto_rebuild":true,"expiry":"1h"}"#,
                Err("grace period (12h) must be strictly shorter than CRL expiry (1h)"),
            ),
            (
                r#"{"auto_rebuild":true,"enable_delta":true,"delta_rebuild_interval":"1s"}"#,
                Ok("72h"),
            ),
        ];
        for (body, want) in cases {
            match (base.updated(&params(body)), want) {
                (Ok(c), Ok(expiry)) => assert_eq!(c.expiry, expiry, "{body}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{body}: {e}"),
                (got, _) => panic!("{body}: {got:?}"),
            }
        }
        let c = base
            .updated(&params(r#"{"disable":"true"}"#))
            .unwrap()
            .updated(&params(r#"{"expiry":"24h"}"#))
            .unwrap();
        assert!(c.disable, "a later write keeps the fields it does not name");
        assert_eq!(c.to_json()["expiry"], "24h");
    }
}
