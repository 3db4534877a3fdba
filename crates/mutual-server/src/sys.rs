//! `sys/` and `auth/token/`: health, mounts (enable, tune, list, disable), the UI preflight the
//! CLI asks for, and tokens.

use std::time::Duration;

use axum::http::StatusCode;
use mutual_store::{MountRecord, TokenRecord, SYSTEM_MAX_TTL};
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
        (Op::Read, "sys/health") => return Ok(health(&p)),
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
    if let Some(rest) = path.strip_prefix("auth/token/") {
        return token_op(app, op, rest, &p, &tok, token.unwrap_or_default()).await;
    }
    if let Some(rest) = path.strip_prefix("sys/internal/ui/mounts/") {
        let (mount, _) = app
            .route(rest.trim_matches('/'))
            .filter(|(m, _)| tok.allows(&m.record.path))
            .ok_or(ApiError::PermissionDenied)?;
        let mut info = mount_json(&mount);
        info["path"] = json!(format!("{}/", mount.record.path));
        return Ok(Reply::data(info));
    }
    if !tok.is_root() {
        return Err(ApiError::PermissionDenied);
    }
    match (op, path) {
        (Op::Read, "sys/metrics") => Ok(Reply::Raw {
            content_type: "text/plain; version=0.0.4",
            body: app.counters.prometheus().into_bytes(),
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
                    Ok(Reply::NoContent)
                }
                Op::List => Err(ApiError::MethodNotAllowed),
            }
        }
        _ => Err(ApiError::NoRoute(path.to_string())),
    }
}

fn health(p: &Params) -> Reply {
    let status = p
        .string("activecode")
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    Reply::Bare(
        status,
        json!({
            "initialized": true,
            "sealed": false,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": OffsetDateTime::now_utc().unix_timestamp(),
            "version": VERSION,
            "cluster_name": "mutual",
            "cluster_id": "mutual",
        }),
    )
}

fn seal_status() -> Value {
    json!({
        "type": "shamir", "initialized": true, "sealed": false, "t": 1, "n": 1, "progress": 0,
        "nonce": "", "version": VERSION, "migration": false, "recovery_seal": false,
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
fn check_bootstrap(app: &App, mounts: &[String], role: &str) -> Result<(), ApiError> {
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

fn token_json(t: &TokenRecord, id: Option<&str>) -> Value {
    json!({
        "accessor": t.accessor,
        "creation_time": t.created_at.unix_timestamp(),
        "creation_ttl": 0,
        "display_name": t.display_name,
        "entity_id": "",
        "expire_time": t.expires_at.map(|at| at.unix_timestamp()),
        "explicit_max_ttl": 0,
        "id": id.unwrap_or(""),
        "meta": null,
        "num_uses": t.num_uses,
        "orphan": true,
        "path": "auth/token/create",
        "policies": if t.is_root() { vec!["root".to_string()] } else { t.mounts.clone() },
        "mounts": t.mounts,
        "renewable": false,
        "ttl": 0,
        "type": "service",
    })
}

async fn token_op(
    app: &App,
    op: Op,
    rest: &str,
    p: &Params,
    tok: &TokenRecord,
    secret: &str,
) -> Result<Reply, ApiError> {
    match (op, rest) {
        (Op::Read, "lookup-self") => Ok(Reply::data(token_json(tok, Some(secret)))),
        (Op::Write, "revoke-self") => {
            app.store.revoke_token(secret).await?;
            app.forget_token(secret);
            Ok(Reply::NoContent)
        }
        (Op::Write, "create") if tok.is_root() => {
            let mut mounts = p.list("mounts")?;
            if mounts.is_empty() {
                mounts = p.list("policies")?;
            }
            if let Some(m) = p.string("mount").filter(|m| !m.trim().is_empty()) {
                mounts = vec![m.trim().trim_matches('/').to_string()];
            }
            if mounts.iter().any(|m| m == "root") {
                mounts = vec![mutual_store::ALL_MOUNTS.to_string()];
            }
            let role = p.string("role").filter(|r| !r.trim().is_empty());
            let num_uses = p.u32("num_uses")?;
            if role.is_none() && num_uses.is_some_and(|n| n > 0) {
                return Err(ApiError::bad(
                    "num_uses limits a bootstrap token: give a role (and one mount) with it",
                ));
            }
            if let Some(role) = &role {
                check_bootstrap(app, &mounts, role)?;
            }
            let spec = mutual_store::TokenSpec {
                display_name: p.str_or(
                    "display_name",
                    if role.is_some() { "bootstrap" } else { "token" },
                ),
                mounts,
                // A join token is one-time unless told otherwise.
                num_uses: if role.is_some() {
                    num_uses.unwrap_or(1)
                } else {
                    0
                },
                role,
                ttl: p.duration("ttl")?.filter(|t| !t.is_zero()),
            };
            let (secret, rec) = app.store.create_token_with(&spec).await?;
            Ok(Reply::Auth(json!({
                "client_token": secret,
                "accessor": rec.accessor,
                "policies": rec.mounts,
                "token_policies": rec.mounts,
                "metadata": rec.role.as_ref().map(|r| json!({ "role": r })),
                "lease_duration": spec.ttl.map_or(0, |t| t.as_secs()),
                "num_uses": rec.num_uses,
                "expire_time": rec.expires_at.map(|at| at.unix_timestamp()),
                "renewable": false,
                "entity_id": "",
                "token_type": "service",
                "orphan": true,
            })))
        }
        (Op::Write, "revoke") | (Op::Write, "revoke-accessor") if tok.is_root() => {
            let target = p
                .string("token")
                .or_else(|| p.string("accessor"))
                .ok_or_else(|| ApiError::bad("missing token"))?;
            app.store.revoke_token(&target).await?;
            app.forget_tokens();
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::PermissionDenied),
    }
}
