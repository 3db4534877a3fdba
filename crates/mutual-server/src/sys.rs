//! `sys/` and `auth/token/`: health, mounts (enable, tune, list, disable), the UI preflight the
//! CLI asks for, and tokens.

use std::time::Duration;

use axum::http::StatusCode;
use mutual_store::{MountRecord, SYSTEM_MAX_TTL};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    params::Params,
    reply::Reply,
    state::{App, Mount},
    Op, VERSION,
};

/// Paths Vault reserves and no mount may take.
const RESERVED: &[&str] = &["sys", "auth", "identity", "cubbyhole"];

/// Answers a request under `sys/` or `auth/`.
pub async fn handle(
    app: &App,
    op: Op,
    path: &str,
    p: Params,
    token: Option<&str>,
) -> Result<Reply, ApiError> {
    match (op, path) {
        (Op::Read, "sys/health") => return Ok(health(app, &p).await),
        (Op::Read, "sys/seal-status") => return Ok(Reply::Bare(StatusCode::OK, seal_status())),
        (Op::Read, "sys/leader") => {
            return Ok(Reply::Bare(
                StatusCode::OK,
                json!({"ha_enabled": false, "is_self": false, "leader_address": "", "leader_cluster_address": ""}),
            ))
        }
        _ => {}
    }
    let tok = app.token(token).await?;
    if tok.role.is_some() {
        return Err(crate::lifecycle::out_of_scope(&tok));
    }
    if tok.expired(OffsetDateTime::now_utc()) {
        return Err(ApiError::PermissionDenied);
    }
    if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts/") {
        let acl = app.acl(&tok).await?;
        let (mount, _) = app
            .route(rest.trim_matches('/'))
            .filter(|(m, _)| acl.any_under(&m.record.path))
            .ok_or(ApiError::PermissionDenied)?;
        let mut info = mount_json(&mount);
        info["path"] = json!(format!("{}/", mount.record.path));
        return Ok(Reply::data(info));
    }
    if let Some(rest) = path.strip_prefix("auth/token/") {
        return crate::tokens::handle(app, op, rest, &p, &tok, token.unwrap_or_default()).await;
    }
    app.authorize(&tok, path, crate::acl::capability(op, true), &p, None)
        .await?;
    crate::tokens::count_use(app, &tok, token.unwrap_or_default()).await?;
    if path == "sys/policy"
        || path.starts_with("sys/policy/")
        || path.starts_with("sys/policies/acl")
    {
        return crate::policies::handle(app, op, path, &p).await;
    }
    if path == "sys/auth" || path.starts_with("sys/auth/") {
        return crate::approle::sys_auth(app, op, path, &p).await;
    }
    if path == "sys/audit" || path.starts_with("sys/audit/") || path.starts_with("sys/audit-hash/")
    {
        return crate::audit::handle(app, op, path, &p).await;
    }
    if let Some(rest) = path.strip_prefix("auth/cert/") {
        return crate::cert_auth::handle(app, op, rest, &p).await;
    }
    if let Some((method, rest)) = crate::approle::method_of(app, path).await? {
        return match method.kind.as_str() {
            "userpass" => crate::userpass::handle(app, op, &method.path, rest, &p).await,
            _ => crate::approle::handle(app, op, &method.path, rest, &p).await,
        };
    }
    match (op, path) {
        (Op::Read, "sys/metrics") => Ok(Reply::Raw {
            content_type: "text/plain; version=0.0.4",
            body: (app.counters.prometheus()
                + &crate::cluster::store_prometheus()
                + &app.acme.prometheus())
                .into_bytes(),
        }),
        (Op::Read, "sys/mounts") => {
            let mut all = Map::new();
            for m in app.mounts() {
                all.insert(format!("{}/", m.record.path), mount_json(&m));
            }
            Ok(Reply::Sys(Value::Object(all)))
        }
        (op, p2) if p2.starts_with("sys/mounts/") => {
            let rest = p2["sys/mounts/".len()..].trim_matches('/');
            if let Some(mount) = rest.strip_suffix("/tune") {
                return tune(app, op, mount.trim_matches('/'), &p).await;
            }
            match op {
                Op::Write => enable(app, rest, &p).await,
                Op::Read => {
                    let m = app.mount(rest).ok_or(ApiError::NotFound)?;
                    Ok(Reply::Sys(mount_json(&m)))
                }
                Op::Delete => {
                    let _guard = app.admin.lock().await;
                    app.store.delete_mount(rest).await?;
                    app.set_mount(rest, None);
                    app.store.note_change("mounts").await?;
                    Ok(Reply::NoContent)
                }
                Op::List => Err(ApiError::MethodNotAllowed),
            }
        }
        _ => Err(ApiError::NoRoute(path.to_string())),
    }
}

/// Vault's health answer, with the database's reachability deciding the status
/// (cluster.rs, `database_health`): 200 (`activecode`) when it answers, 429 (`standbycode`)
/// when it answers slowly, 503 (`sealedcode`) when it does not.
async fn health(app: &App, p: &Params) -> Reply {
    let db = crate::cluster::database_health(&app.store).await;
    let code = |name: &str, default: StatusCode| {
        p.string(name)
            .and_then(|c| c.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(default)
    };
    let status = match db.state {
        crate::cluster::DbState::Up => code("activecode", StatusCode::OK),
        // Vault's `standbyok`: a standby (here, a slow database) counts as healthy.
        crate::cluster::DbState::Slow if p.string("standbyok").as_deref() == Some("true") => {
            code("activecode", StatusCode::OK)
        }
        crate::cluster::DbState::Slow => code("standbycode", StatusCode::TOO_MANY_REQUESTS),
        crate::cluster::DbState::Down => code("sealedcode", StatusCode::SERVICE_UNAVAILABLE),
    };
    Reply::Bare(
        status,
        json!({
            "database": db.json(),
            "initialized": true,
            "sealed": false,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": OffsetDateTime::now_utc().unix_timestamp(),
            "version": crate::reported_version(),
            "cluster_name": "mutual",
            "cluster_id": "mutual",
        }),
    )
}

fn seal_status() -> Value {
    json!({
        "type": "shamir", "initialized": true, "sealed": false, "t": 1, "n": 1, "progress": 0,
        "nonce": "", "version": crate::reported_version(), "migration": false, "recovery_seal": false,
        "storage_type": "mutual", "cluster_name": "mutual", "cluster_id": "mutual",
    })
}

fn mount_json(m: &Mount) -> Value {
    json!({
        "accessor": m.record.accessor,
        "config": {
            "default_lease_ttl": m.record.default_lease_ttl.as_secs(),
            "force_no_cache": false,
            "max_lease_ttl": m.record.max_lease_ttl.as_secs(),
        },
        "description": m.record.description,
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{VERSION}+builtin.mutual"),
        "running_sha256": "",
        "seal_wrap": false,
        "type": m.record.kind,
        "uuid": m.record.uuid,
    })
}

/// A TTL of a mount's config: absent, empty, `0`/`0s` or `system` all mean "the system's".
fn lease_ttl(p: &Params, key: &str) -> Result<Option<Duration>, ApiError> {
    if matches!(p.string(key).as_deref(), Some("system")) {
        return Ok(Some(Duration::ZERO));
    }
    p.duration(key)
}

async fn enable(app: &App, path: &str, p: &Params) -> Result<Reply, ApiError> {
    let kind = p.str_or("type", "");
    if kind != "pki" {
        return Err(ApiError::bad(format!(
            "mutual serves the pki secrets engine only, not \"{kind}\""
        )));
    }
    if path.is_empty()
        || RESERVED
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}/")))
    {
        return Err(ApiError::bad(format!(
            "cannot mount at \"{path}/\": reserved path"
        )));
    }
    let _guard = app.admin.lock().await;
    for m in app.mounts() {
        let existing = &m.record.path;
        if existing == path
            || path.starts_with(&format!("{existing}/"))
            || existing.starts_with(&format!("{path}/"))
        {
            return Err(ApiError::bad(format!(
                "path is already in use at {existing}/"
            )));
        }
    }
    let config = p.object("config");
    let mut record = MountRecord::new(path, &kind);
    record.description = p.str_or("description", "");
    record.max_lease_ttl = lease_ttl(&config, "max_lease_ttl")?.unwrap_or_default();
    record.default_lease_ttl = lease_ttl(&config, "default_lease_ttl")?.unwrap_or_default();
    app.store.create_mount(&record).await.map_err(|e| match e {
        mutual_store::StoreError::Duplicate { .. } => {
            ApiError::bad(format!("path is already in use at {path}/"))
        }
        other => other.into(),
    })?;
    app.reload_mount(path).await?;
    Ok(Reply::NoContent)
}

async fn tune(app: &App, op: Op, path: &str, p: &Params) -> Result<Reply, ApiError> {
    match op {
        Op::Read => {
            let m = app.mount(path).ok_or_else(|| {
                ApiError::bad(format!("cannot fetch sysview for path \"{path}/\""))
            })?;
            let or_system = |d: Duration| if d.is_zero() { SYSTEM_MAX_TTL } else { d };
            Ok(Reply::Sys(json!({
                "description": m.record.description,
                "default_lease_ttl": or_system(m.record.default_lease_ttl).as_secs(),
                "max_lease_ttl": or_system(m.record.max_lease_ttl).as_secs(),
                "force_no_cache": false,
            })))
        }
        Op::Write => {
            let _guard = app.admin.lock().await;
            if app.mount(path).is_none() {
                return Err(ApiError::bad(format!("no mount at \"{path}/\"")));
            }
            app.store
                .tune_mount(
                    path,
                    lease_ttl(p, "max_lease_ttl")?,
                    lease_ttl(p, "default_lease_ttl")?,
                    p.string("description").as_deref(),
                )
                .await?;
            app.reload_mount(path).await?;
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// A bootstrap token names one mount and one of its roles.
pub(crate) fn check_bootstrap(app: &App, mounts: &[String], role: &str) -> Result<(), ApiError> {
    let [mount] = mounts else {
        return Err(ApiError::bad(
            "a bootstrap token (one with a role) names exactly one mount",
        ));
    };
    let m = app
        .mount(mount)
        .ok_or_else(|| ApiError::bad(format!("no mount at \"{mount}/\"")))?;
    if !m.roles.contains_key(role) {
        return Err(ApiError::bad(format!(
            "mount \"{mount}\" has no role \"{role}\""
        )));
    }
    Ok(())
}
