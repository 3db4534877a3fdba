//! Vault's tidy of a mount: `tidy` (run on its own task, so that issuance goes on while it
//! deletes), `tidy-status` (OpenBao's fields, with the counts of the last run), and
//! `config/auto-tidy` (kept in the store) with the loop that runs it when due.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use mutual_pki::duration;

use crate::{
    crl_config::forget_crls,
    error::ApiError,
    params::Params,
    pki::rfc3339,
    state::{App, Mount},
};

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
    pub(crate) fn updated(&self, p: &Params) -> Result<TidyParams, ApiError> {
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
    pub(crate) fn updated(&self, p: &Params) -> Result<AutoTidy, ApiError> {
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

    pub(crate) fn to_json(&self) -> Value {
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

/// The last tidy of a mount.
#[derive(Debug, Clone)]
pub(crate) struct TidyRun {
    params: TidyParams,
    state: &'static str,
    error: Option<String>,
    started: OffsetDateTime,
    finished: Option<OffsetDateTime>,
    cert_store_deleted: u64,
    revoked_cert_deleted: u64,
}

pub(crate) async fn auto_tidy(app: &App, mount: &str) -> Result<AutoTidy, ApiError> {
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

pub(crate) fn tidy_status(app: &App, mount: &Mount) -> Value {
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
pub(crate) fn start_tidy(app: &Arc<App>, mount: &str, params: TidyParams, auto: bool) -> bool {
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
    if params.tidy_acme {
        let orders = crate::acme::tidy(app, mount, now).await?;
        tracing::info!(mount = %mount, acme_deleted = orders, "tidy: stale acme orders");
    }
    Ok((certs, revoked))
}

/// Starts, once per [`App`], the loop that runs each mount's auto-tidy when it is due. The loop
/// holds the app weakly and ends with it.
pub(crate) fn start_background(app: &Arc<App>) {
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
