//! Vault's CRL and tidy configuration of a mount: `config/crl` (expiry, disable, auto-rebuild
//! with its grace period, delta CRLs with their rebuild interval), the complete and delta CRLs
//! it shapes (`crl`, `crl/delta`, their PEM and JSON forms), `config/auto-tidy`, `tidy` and
//! `tidy-status`. Configuration is kept in the store (`mount_config`) and cached here; the CRLs
//! built and the state of the last tidy live in memory, as in Vault.
//!
//! A tidy runs on its own task: issuance goes on while it deletes, and `tidy-status` tells how
//! far it got. Auto-tidy is a loop started with the first request, checking each second which
//! mount is due.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use mutual_pki::{crl, duration};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    params::Params,
    pki::{blocking, rfc3339},
    reply::Reply,
    state::{App, CachedCrl, Mount},
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

/// What one tidy does: Vault's tidy parameters (the ones mutual acts on, and the others it
/// echoes so that `tidy-status` and `config/auto-tidy` answer with every field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct TidyParams {
    tidy_cert_store: bool,
    tidy_revoked_certs: bool,
    tidy_revoked_cert_issuer_associations: bool,
    tidy_expired_issuers: bool,
    tidy_move_legacy_ca_bundle: bool,
    tidy_acme: bool,
    tidy_invalid_certs: bool,
    /// Seconds past notAfter before an expired certificate goes.
    safety_buffer: u64,
    /// Seconds past notAfter before an expired revoked certificate goes (default: the
    /// safety buffer).
    revoked_safety_buffer: Option<u64>,
    issuer_safety_buffer: u64,
    acme_account_safety_buffer: u64,
    pause_duration: String,
    page_size: u64,
}

impl Default for TidyParams {
    fn default() -> Self {
        TidyParams {
            tidy_cert_store: false,
            tidy_revoked_certs: false,
            tidy_revoked_cert_issuer_associations: false,
            tidy_expired_issuers: false,
            tidy_move_legacy_ca_bundle: false,
            tidy_acme: false,
            tidy_invalid_certs: false,
            safety_buffer: 72 * 3600,
            revoked_safety_buffer: None,
            issuer_safety_buffer: 365 * 24 * 3600,
            acme_account_safety_buffer: 30 * 24 * 3600,
            pause_duration: "0s".into(),
            page_size: 1000,
        }
    }
}

impl TidyParams {
    fn updated(&self, p: &Params) -> Result<TidyParams, ApiError> {
        let mut t = self.clone();
        for (key, field) in [
            ("tidy_cert_store", &mut t.tidy_cert_store),
            ("tidy_revoked_certs", &mut t.tidy_revoked_certs),
            (
                "tidy_revoked_cert_issuer_associations",
                &mut t.tidy_revoked_cert_issuer_associations,
            ),
            ("tidy_expired_issuers", &mut t.tidy_expired_issuers),
            (
                "tidy_move_legacy_ca_bundle",
                &mut t.tidy_move_legacy_ca_bundle,
            ),
            ("tidy_acme", &mut t.tidy_acme),
            ("tidy_invalid_certs", &mut t.tidy_invalid_certs),
        ] {
            if let Some(b) = p.bool(key)? {
                *field = b;
            }
        }
        let secs = |key: &str| -> Result<Option<u64>, ApiError> {
            Ok(p.duration(key)?.map(|d| d.as_secs()))
        };
        if let Some(s) = secs("safety_buffer")? {
            t.safety_buffer = s;
        }
        if let Some(s) = secs("revoked_safety_buffer")? {
            t.revoked_safety_buffer = Some(s);
        }
        if let Some(s) = secs("issuer_safety_buffer")? {
            t.issuer_safety_buffer = s;
        }
        if let Some(s) = secs("acme_account_safety_buffer")? {
            t.acme_account_safety_buffer = s;
        }
        if let Some(d) = p.duration("pause_duration")? {
            t.pause_duration = duration::format(d);
            if d.is_zero() {
                t.pause_duration = "0s".into();
            }
        }
        if let Some(n) = p.u32("page_size")? {
            t.page_size = u64::from(n);
        }
        // Refused here rather than on the tidy's task: a buffer reaching before year one
        // cannot be subtracted from the clock.
        for (key, secs) in [
            ("safety_buffer", t.safety_buffer),
            ("revoked_safety_buffer", t.revoked_buffer()),
        ] {
            cutoff(OffsetDateTime::now_utc(), secs, key)?;
        }
        Ok(t)
    }

    fn revoked_buffer(&self) -> u64 {
        self.revoked_safety_buffer.unwrap_or(self.safety_buffer)
    }

    /// The fields as `config/auto-tidy` and `tidy-status` show them.
    fn fields(&self) -> serde_json::Map<String, Value> {
        let mut v = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        v["revoked_safety_buffer"] = json!(self.revoked_buffer());
        v.as_object().cloned().unwrap_or_default()
    }
}

/// Vault's `config/auto-tidy`: a tidy's parameters, whether it runs, and how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct AutoTidy {
    enabled: bool,
    /// Seconds between two runs.
    interval_duration: u64,
    maintain_stored_certificate_counts: bool,
    publish_stored_certificate_count_metrics: bool,
    #[serde(flatten)]
    tidy: TidyParams,
}

impl Default for AutoTidy {
    fn default() -> Self {
        AutoTidy {
            enabled: false,
            interval_duration: 12 * 3600,
            maintain_stored_certificate_counts: false,
            publish_stored_certificate_count_metrics: false,
            tidy: TidyParams::default(),
        }
    }
}

impl AutoTidy {
    fn updated(&self, p: &Params) -> Result<AutoTidy, ApiError> {
        let mut a = self.clone();
        a.tidy = a.tidy.updated(p)?;
        for (key, field) in [
            ("enabled", &mut a.enabled),
            (
                "maintain_stored_certificate_counts",
                &mut a.maintain_stored_certificate_counts,
            ),
            (
                "publish_stored_certificate_count_metrics",
                &mut a.publish_stored_certificate_count_metrics,
            ),
        ] {
            if let Some(b) = p.bool(key)? {
                *field = b;
            }
        }
        if let Some(d) = p.duration("interval_duration")? {
            a.interval_duration = d.as_secs();
        }
        if a.enabled && a.interval_duration == 0 {
            return Err(ApiError::bad(
                "interval_duration must be at least one second when auto-tidy is enabled",
            ));
        }
        Ok(a)
    }

    fn to_json(&self) -> Value {
        let mut m = self.tidy.fields();
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("interval_duration".into(), json!(self.interval_duration));
        m.insert(
            "maintain_stored_certificate_counts".into(),
            json!(self.maintain_stored_certificate_counts),
        );
        m.insert(
            "publish_stored_certificate_count_metrics".into(),
            json!(self.publish_stored_certificate_count_metrics),
        );
        Value::Object(m)
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

/// The last tidy of a mount.
#[derive(Debug, Clone)]
struct TidyRun {
    params: TidyParams,
    state: &'static str,
    error: Option<String>,
    started: OffsetDateTime,
    finished: Option<OffsetDateTime>,
    cert_store_deleted: u64,
    revoked_cert_deleted: u64,
}

#[derive(Debug, Default)]
struct MountCrl {
    /// The mount's UUID: a mount disabled and enabled again at the same path starts afresh.
    uuid: String,
    config: Option<CrlConfig>,
    auto_tidy: Option<AutoTidy>,
    base: Option<Built>,
    delta: Option<Built>,
    tidy: Option<TidyRun>,
    last_auto_tidy_finished: Option<OffsetDateTime>,
}

/// The CRL and tidy state of every mount, kept by the [`App`].
#[derive(Debug, Default)]
pub struct CrlState {
    mounts: Mutex<HashMap<String, MountCrl>>,
    background: OnceLock<()>,
}

impl CrlState {
    fn with<T>(&self, mount: &str, f: impl FnOnce(&mut MountCrl) -> T) -> T {
        let mut all = self.mounts.lock().unwrap_or_else(|e| e.into_inner());
        f(all.entry(mount.to_string()).or_default())
    }

    /// Forgets what was kept for an earlier mount at the same path.
    fn check_mount(&self, mount: &Mount) {
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
    let c = match app.store.mount_config(mount, "crl").await? {
        Some(body) => serde_json::from_str(&body).unwrap_or_default(),
        None => CrlConfig::default(),
    };
    app.crl.with(mount, |m| m.config = Some(c.clone()));
    Ok(c)
}

async fn auto_tidy(app: &App, mount: &str) -> Result<AutoTidy, ApiError> {
    if let Some(a) = app.crl.with(mount, |m| m.auto_tidy.clone()) {
        return Ok(a);
    }
    let a = match app.store.mount_config(mount, "auto-tidy").await? {
        Some(body) => serde_json::from_str(&body).unwrap_or_default(),
        None => AutoTidy::default(),
    };
    app.crl.with(mount, |m| m.auto_tidy = Some(a.clone()));
    Ok(a)
}

/// Forgets the CRLs built for a mount, so that the next read builds them again.
fn forget_crls(app: &App, mount: &str) {
    app.crl.with(mount, |m| {
        m.base = None;
        m.delta = None;
    });
    app.crls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(mount);
}

/// The mount's complete CRL: cached until a revocation (or, with auto-rebuild, until the grace
/// period before its nextUpdate), empty when the CRL is disabled, valid for `expiry`.
pub(crate) async fn complete_crl(
    app: &App,
    mount: &Mount,
    rotate: bool,
) -> Result<Arc<Vec<u8>>, ApiError> {
    app.crl.check_mount(mount);
    let path = mount.record.path.clone();
    let cfg = crl_config(app, &path).await?;
    let now = OffsetDateTime::now_utc();
    if !rotate {
        if cfg.auto_rebuild {
            let grace = dur(&cfg.auto_rebuild_grace_period);
            if let Some(b) = app.crl.with(&path, |m| m.base.clone()) {
                if now + grace < b.next_update && *b.ca == mount.ca()?.cert_der {
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
                .cloned();
            if let Some(c) = cached.filter(|c| now - c.built < refresh) {
                return Ok(c.der);
            }
        }
    }
    let ca = mount.ca()?.clone();
    let ca_cert = Arc::new(ca.cert_der.clone());
    let seq = app.store.revocation_seq().await?;
    let entries = if cfg.disable {
        vec![]
    } else {
        app.store.revoked(&path).await?
    };
    let number = app.store.next_crl_number(&path).await?;
    let expiry = cfg.expiry();
    let der = Arc::new(
        blocking(move || Ok(crl::build(&ca.signer(), number, &entries, now, expiry)?)).await?,
    );
    app.crl.with(&path, |m| {
        m.base = Some(Built {
            der: der.clone(),
            number,
            built: now,
            next_update: now + expiry,
            seq,
            ca: ca_cert,
        });
        m.delta = None;
    });
    app.crls.lock().unwrap_or_else(|e| e.into_inner()).insert(
        path,
        CachedCrl {
            der: der.clone(),
            built: now,
        },
    );
    Ok(der)
}

/// The mount's delta CRL: the revocations since the complete CRL it names (Delta CRL
/// Indicator), rebuilt at most once per `delta_rebuild_interval` when revocations came.
async fn delta_crl(app: &App, mount: &Mount) -> Result<Arc<Vec<u8>>, ApiError> {
    let path = mount.record.path.clone();
    let cfg = crl_config(app, &path).await?;
    complete_crl(app, mount, false).await?;
    let Some(base) = app.crl.with(&path, |m| m.base.clone()) else {
        return Err(ApiError::bad("no complete CRL to base a delta CRL on"));
    };
    let now = OffsetDateTime::now_utc();
    let seq = app.store.revocation_seq().await?;
    if let Some(d) = app.crl.with(&path, |m| m.delta.clone()) {
        let due = now - d.built >= dur(&cfg.delta_rebuild_interval);
        if d.seq == seq || !due {
            return Ok(d.der);
        }
    }
    let ca = mount.ca()?.clone();
    let ca_cert = base.ca.clone();
    let entries = if cfg.disable || !cfg.enable_delta {
        vec![]
    } else {
        app.store.revoked_after(&path, base.seq).await?
    };
    let number = app.store.next_crl_number(&path).await?;
    let expiry = cfg.expiry();
    let base_number = base.number;
    let der = Arc::new(
        blocking(move || {
            Ok(crl::build_delta(
                &ca.signer(),
                number,
                base_number,
                &entries,
                now,
                expiry,
            )?)
        })
        .await?,
    );
    app.crl.with(&path, |m| {
        // A complete CRL built meanwhile makes this delta stale: it is served once, not kept.
        if m.base.as_ref().is_some_and(|b| b.number == base_number) {
            m.delta = Some(Built {
                der: der.clone(),
                number,
                built: now,
                next_update: now + expiry,
                seq,
                ca: ca_cert,
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

fn tidy_status(app: &App, mount: &Mount) -> Value {
    let path = &mount.record.path;
    let (run, last_auto) = app
        .crl
        .with(path, |m| (m.tidy.clone(), m.last_auto_tidy_finished));
    let mut m = serde_json::Map::new();
    let null_fields = TidyParams::default().fields();
    for k in null_fields.keys() {
        m.insert(k.clone(), Value::Null);
    }
    for k in [
        "acme_account_deleted_count",
        "acme_account_revoked_count",
        "acme_orders_deleted_count",
        "cert_store_deleted_count",
        "current_cert_store_count",
        "current_revoked_cert_count",
        "error",
        "message",
        "missing_issuer_cert_count",
        "revoked_cert_deleted_count",
        "time_finished",
        "time_started",
        "total_acme_account_count",
    ] {
        m.insert(k.into(), Value::Null);
    }
    m.insert("internal_backend_uuid".into(), json!(mount.record.uuid));
    m.insert("state".into(), json!("Inactive"));
    let Some(run) = run else {
        return Value::Object(m);
    };
    m.extend(run.params.fields());
    for k in [
        "acme_account_deleted_count",
        "acme_account_revoked_count",
        "acme_orders_deleted_count",
        "missing_issuer_cert_count",
        "total_acme_account_count",
    ] {
        m.insert(k.into(), json!(0));
    }
    m.insert(
        "cert_store_deleted_count".into(),
        json!(run.cert_store_deleted),
    );
    m.insert(
        "revoked_cert_deleted_count".into(),
        json!(run.revoked_cert_deleted),
    );
    m.insert("state".into(), json!(run.state));
    m.insert("error".into(), json!(run.error));
    m.insert("time_started".into(), json!(rfc3339(run.started)));
    m.insert("time_finished".into(), json!(run.finished.map(rfc3339)));
    if let Some(t) = last_auto {
        m.insert("last_auto_tidy_finished".into(), json!(rfc3339(t)));
    }
    Value::Object(m)
}

/// Starts a tidy of `mount` on its own task; false when one is already running.
fn start_tidy(app: &Arc<App>, mount: &str, params: TidyParams, auto: bool) -> bool {
    let started = OffsetDateTime::now_utc();
    let fresh = app.crl.with(mount, |m| {
        if m.tidy.as_ref().is_some_and(|t| t.state == "Running") {
            return false;
        }
        m.tidy = Some(TidyRun {
            params: params.clone(),
            state: "Running",
            error: None,
            started,
            finished: None,
            cert_store_deleted: 0,
            revoked_cert_deleted: 0,
        });
        true
    });
    if !fresh {
        return false;
    }
    let app = app.clone();
    let mount = mount.to_string();
    tokio::spawn(async move {
        let result = tidy(&app, &mount, &params, started).await;
        let finished = OffsetDateTime::now_utc();
        if matches!(result, Ok((_, revoked)) if revoked > 0) {
            forget_crls(&app, &mount);
        }
        app.crl.with(&mount, |m| {
            if let Some(run) = m.tidy.as_mut() {
                run.finished = Some(finished);
                match &result {
                    Ok((certs, revoked)) => {
                        run.state = "Finished";
                        run.cert_store_deleted = *certs;
                        run.revoked_cert_deleted = *revoked;
                    }
                    Err(e) => {
                        run.state = "Error";
                        run.error = Some(e.to_string());
                    }
                }
            }
            m.last_auto_tidy_finished = Some(finished);
        });
        match result {
            Ok((certs, revoked)) => tracing::info!(
                mount = %mount, auto, certs_deleted = certs, revoked_deleted = revoked,
                "tidy finished"
            ),
            Err(e) => tracing::warn!(mount = %mount, auto, error = %e, "tidy failed"),
        }
    });
    true
}

/// `now` minus a safety buffer of `secs`, or Vault's 400 naming `key` when that is before the
/// clock can say.
fn cutoff(now: OffsetDateTime, secs: u64, key: &str) -> Result<OffsetDateTime, ApiError> {
    time::Duration::try_from(Duration::from_secs(secs))
        .ok()
        .and_then(|b| now.checked_sub(b))
        .ok_or_else(|| ApiError::bad(format!("invalid value for \"{key}\": too large")))
}

/// Deletes what the tidy asks for: expired certificates past the safety buffer, and expired
/// revoked ones past theirs (which leave the CRL with them).
async fn tidy(
    app: &App,
    mount: &str,
    params: &TidyParams,
    now: OffsetDateTime,
) -> Result<(u64, u64), ApiError> {
    let mut certs = 0;
    let mut revoked = 0;
    if params.tidy_cert_store {
        let before = cutoff(now, params.safety_buffer, "safety_buffer")?;
        certs = app.store.tidy_certs(mount, before, true, false).await?;
    }
    if params.tidy_revoked_certs {
        let before = cutoff(now, params.revoked_buffer(), "revoked_safety_buffer")?;
        revoked = app.store.tidy_certs(mount, before, false, true).await?;
    }
    Ok((certs, revoked))
}

/// Starts, once per [`App`], the loop that runs each mount's auto-tidy when it is due. The loop
/// holds the app weakly and ends with it.
fn start_background(app: &Arc<App>) {
    if app.crl.background.set(()).is_err() {
        return;
    }
    let weak: Weak<App> = Arc::downgrade(app);
    let since = OffsetDateTime::now_utc();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let Some(app) = weak.upgrade() else {
                return;
            };
            for mount in app.mounts() {
                app.crl.check_mount(&mount);
                let path = mount.record.path.clone();
                let Ok(cfg) = auto_tidy(&app, &path).await else {
                    continue;
                };
                if !cfg.enabled {
                    continue;
                }
                let last = app
                    .crl
                    .with(&path, |m| m.last_auto_tidy_finished)
                    .unwrap_or(since);
                let interval = time::Duration::seconds(cfg.interval_duration as i64);
                if OffsetDateTime::now_utc() - last >= interval {
                    start_tidy(&app, &path, cfg.tidy.clone(), true);
                }
            }
        }
    });
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

    #[test]
    fn auto_tidy_defaults_and_revoked_buffer() {
        let a = AutoTidy::default()
            .updated(&params(
                r#"{"enabled":true,"interval_duration":"1h","safety_buffer":"1s","tidy_cert_store":true}"#,
            ))
            .unwrap();
        let j = a.to_json();
        assert_eq!(j["interval_duration"], 3600);
        assert_eq!(j["safety_buffer"], 1);
        assert_eq!(
            j["revoked_safety_buffer"], 1,
            "defaults to the safety buffer"
        );
        assert_eq!(j["pause_duration"], "0s");
        assert_eq!(j["issuer_safety_buffer"], 31_536_000);
        assert!(AutoTidy::default()
            .updated(&params(r#"{"enabled":true,"interval_duration":0}"#))
            .is_err());
    }
}
