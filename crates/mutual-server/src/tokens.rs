//! `auth/token/`: Vault's token store. Children inherit their parent's policies (a parent
//! without sudo may only hand out policies it holds), orphans, TTLs and renewal capped by the
//! max TTLs, `num_uses`, lookups and revocation (a parent takes its children with it). The
//! rules are `mutual-auth`'s; this module reads parameters and writes the store.

use std::time::Duration;

use mutual_auth::{
    token::{child_token, ChildRequest, Lifetime, Parent},
    ttl::{LeaseInputs, SystemTtl},
};
use mutual_store::{TokenLease, TokenRecord, TokenSpec, TokenUse, SYSTEM_MAX_TTL};
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    acl::{capability, mount_policy_name, mount_policy_text},
    error::ApiError,
    params::Params,
    reply::Reply,
    state::App,
    Op,
};

pub(crate) fn system() -> SystemTtl {
    SystemTtl {
        default_ttl: SYSTEM_MAX_TTL.as_secs(),
        max_ttl: SYSTEM_MAX_TTL.as_secs(),
    }
}

/// Counts one use of a token created with `num_uses` (bootstrap tokens count their issuances
/// elsewhere); the last use revokes it, as Vault does.
pub(crate) async fn count_use(app: &App, tok: &TokenRecord, secret: &str) -> Result<(), ApiError> {
    if tok.num_uses == 0 || tok.role.is_some() {
        return Ok(());
    }
    match app
        .store
        .take_token_use(secret, OffsetDateTime::now_utc())
        .await?
    {
        TokenUse::Taken { used, of } => {
            if used >= of {
                app.store.revoke_token(secret).await?;
                app.forget_token(secret);
            }
            Ok(())
        }
        _ => {
            app.forget_token(secret);
            Err(ApiError::PermissionDenied)
        }
    }
}

/// The policies a token acts with (its mounts' policies for a token made before policies).
fn effective_policies(tok: &TokenRecord) -> Vec<String> {
    if tok.is_root() {
        return vec!["root".into()];
    }
    if tok.policies.is_empty() {
        return tok.mounts.iter().map(|m| mount_policy_name(m)).collect();
    }
    tok.policies.clone()
}

fn rfc3339(t: OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

/// `lookup`'s `data`, as Vault shapes it.
fn lookup_json(t: &TokenRecord, id: &str) -> Value {
    let now = OffsetDateTime::now_utc();
    let ttl = t
        .expires_at
        .map_or(0, |at| (at - now).whole_seconds().max(0));
    let meta = if t.lease.meta.is_empty() {
        Value::Null
    } else {
        json!(t.lease.meta)
    };
    let mut v = json!({
        "accessor": t.accessor,
        "creation_time": t.created_at.unix_timestamp(),
        "creation_ttl": t.lease.ttl,
        "display_name": t.display_name,
        "entity_id": "",
        "expire_time": t.expires_at.map_or(Value::Null, rfc3339),
        "explicit_max_ttl": t.lease.explicit_max_ttl,
        "id": id,
        "issue_time": rfc3339(t.created_at),
        "meta": meta,
        "num_uses": t.num_uses.saturating_sub(t.uses),
        "orphan": t.parent.is_none(),
        "path": if t.lease.path.is_empty() { "auth/token/create" } else { &t.lease.path },
        "policies": effective_policies(t),
        "renewable": t.lease.renewable && t.expires_at.is_some(),
        "ttl": ttl,
        "type": "service",
    });
    if t.lease.period > 0 {
        v["period"] = json!(t.lease.period);
    }
    if !t.mounts.is_empty() {
        v["mounts"] = json!(t.mounts);
    }
    v
}

/// Vault's `{"auth": …}` for a token just made or renewed.
pub(crate) fn auth_json(secret: &str, t: &TokenRecord, warnings_ttl: u64) -> Value {
    let policies = effective_policies(t);
    json!({
        "client_token": secret,
        "accessor": t.accessor,
        "policies": policies,
        "token_policies": policies,
        "metadata": if t.lease.meta.is_empty() { Value::Null } else { json!(t.lease.meta) },
        "lease_duration": warnings_ttl,
        "renewable": t.lease.renewable && t.expires_at.is_some(),
        "entity_id": "",
        "token_type": "service",
        "orphan": t.parent.is_none(),
        "num_uses": t.num_uses,
        "mfa_requirement": null,
    })
}

fn lifetime(t: &TokenRecord) -> Lifetime {
    Lifetime {
        issued: t.created_at.unix_timestamp(),
        expires: t.expires_at.map(|e| e.unix_timestamp()),
        ttl: t.lease.ttl,
        max_ttl: t.lease.max_ttl,
        explicit_max_ttl: t.lease.explicit_max_ttl,
        period: t.lease.period,
        renewable: t.lease.renewable,
    }
}

fn secs(p: &Params, key: &str) -> Result<u64, ApiError> {
    Ok(p.duration(key)?.map_or(0, |d| d.as_secs()))
}

/// Answers `auth/token/<rest>` for the caller `tok` (whose secret is `secret`).
pub(crate) async fn handle(
    app: &App,
    op: Op,
    rest: &str,
    p: &Params,
    tok: &TokenRecord,
    secret: &str,
) -> Result<Reply, ApiError> {
    let path = format!("auth/token/{rest}");
    let decision = app
        .authorize(tok, &path, capability(op, true), p, None)
        .await?;
    count_use(app, tok, secret).await?;
    match (op, rest) {
        (Op::Read | Op::Write, "lookup-self") => Ok(Reply::data(lookup_json(tok, secret))),
        (Op::Write, "lookup") => {
            let target = p
                .string("token")
                .ok_or_else(|| ApiError::bad("missing token to look up"))?;
            let t = app
                .store
                .lookup_token(&target)
                .await?
                .ok_or_else(|| ApiError::bad("bad token"))?;
            Ok(Reply::data(lookup_json(&t, &target)))
        }
        (Op::Write, "lookup-accessor") => {
            let accessor = p
                .string("accessor")
                .ok_or_else(|| ApiError::bad("missing accessor"))?;
            let t = app
                .store
                .lookup_token_accessor(&accessor)
                .await?
                .ok_or_else(|| ApiError::bad("invalid accessor"))?;
            Ok(Reply::data(lookup_json(&t, "")))
        }
        (Op::Write, "create" | "create-orphan") => {
            if p.has("mounts") || p.has("mount") || p.has("role") {
                return create_scoped(app, p, tok).await;
            }
            create(
                app,
                p,
                tok,
                secret,
                decision.has_sudo(),
                rest == "create-orphan",
            )
            .await
        }
        (Op::Write, "renew-self") => renew(app, p, tok.clone(), secret).await,
        (Op::Write, "renew") => {
            let target = p
                .string("token")
                .ok_or_else(|| ApiError::bad("missing token to renew"))?;
            let t = app
                .store
                .lookup_token(&target)
                .await?
                .ok_or_else(|| ApiError::bad("invalid token"))?;
            renew(app, p, t, &target).await
        }
        (Op::Write, "revoke-self") => {
            app.store.revoke_token(secret).await?;
            app.forget_tokens();
            Ok(Reply::NoContent)
        }
        (Op::Write, "revoke" | "revoke-accessor") => {
            let target = p
                .string("token")
                .or_else(|| p.string("accessor"))
                .ok_or_else(|| ApiError::bad("missing token"))?;
            app.store.revoke_token(&target).await?;
            app.forget_tokens();
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::NoRoute(path)),
    }
}

async fn renew(app: &App, p: &Params, t: TokenRecord, secret: &str) -> Result<Reply, ApiError> {
    let now = OffsetDateTime::now_utc();
    let (life, ttl, warnings) =
        lifetime(&t).renew(system(), secs(p, "increment")?, now.unix_timestamp())?;
    let expires = life
        .expires
        .and_then(|e| OffsetDateTime::from_unix_timestamp(e).ok());
    if let Some(at) = expires {
        app.store.renew_token(&t.accessor, at).await?;
    }
    app.forget_token(secret);
    let renewed = TokenRecord {
        expires_at: expires,
        ..t
    };
    let mut body = json!({ "auth": auth_json(secret, &renewed, ttl) });
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>());
    }
    Ok(Reply::Bare(axum::http::StatusCode::OK, body))
}

/// Makes sure the mount policies a token stands for are stored, so that its children can
/// inherit them by name.
async fn store_mount_policies(app: &App, mounts: &[String]) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    for m in mounts {
        let name = mount_policy_name(m);
        if app.store.get_policy(&name).await?.is_none() {
            app.store.put_policy(&name, &mount_policy_text(m)).await?;
            app.forget_policy(&name);
        }
        names.push(name);
    }
    Ok(names)
}

/// Vault's `auth/token/create` and `create-orphan`.
async fn create(
    app: &App,
    p: &Params,
    tok: &TokenRecord,
    parent_secret: &str,
    sudo: bool,
    create_orphan: bool,
) -> Result<Reply, ApiError> {
    let _ = parent_secret;
    let mut parent_policies = effective_policies(tok);
    if tok.policies.is_empty() && !tok.is_root() {
        parent_policies = store_mount_policies(app, &tok.mounts).await?;
    }
    let period = secs(p, "period")?;
    let req = ChildRequest {
        policies: p.list("policies")?,
        no_default_policy: p.bool_or("no_default_policy", false)?,
        no_parent: p.bool_or("no_parent", false)?,
        create_orphan,
        period,
    };
    let parent = Parent {
        policies: &parent_policies,
        sudo,
        num_uses: tok.num_uses,
    };
    let child = child_token(&parent, &req)?;
    let never_expires = child.policies.iter().any(|p| p == "root");
    let inputs = LeaseInputs {
        increment: 0,
        backend_ttl: secs(p, "ttl")?,
        period,
        backend_max_ttl: 0,
        explicit_max_ttl: secs(p, "explicit_max_ttl")?,
    };
    let now = OffsetDateTime::now_utc();
    let renewable = p.bool_or("renewable", true)?;
    let (mut life, warnings) = Lifetime::create(
        system(),
        inputs,
        renewable,
        never_expires,
        now.unix_timestamp(),
    )?;
    if life.expires.is_none() && tok.expires_at.is_some() {
        return Err(ApiError::bad(
            "expiring root tokens cannot create non-expiring root tokens",
        ));
    }
    // A child never outlives its parent.
    let mut warnings: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    if let (false, Some(parent_end)) = (child.orphan, tok.expires_at.map(|e| e.unix_timestamp())) {
        if life.expires.is_some_and(|e| e > parent_end) {
            warnings.push(format!(
                "TTL of the token is capped to its parent's remaining {}s",
                parent_end - now.unix_timestamp()
            ));
            life.expires = Some(parent_end);
        }
    }
    let ttl = life.ttl_left(now.unix_timestamp());
    let display = p
        .string("display_name")
        .filter(|d| !d.is_empty())
        .map_or("token".to_string(), |d| format!("token-{d}"));
    let spec = TokenSpec {
        display_name: display,
        mounts: Vec::new(),
        role: None,
        num_uses: p.u32("num_uses")?.unwrap_or(0),
        ttl: life.expires.map(|_| Duration::from_secs(ttl)),
        policies: child.policies.clone(),
        parent: (!child.orphan).then(|| tok.accessor.clone()),
        lease: TokenLease {
            ttl: if life.ttl > 0 { life.ttl } else { ttl },
            max_ttl: 0,
            explicit_max_ttl: life.explicit_max_ttl,
            period: life.period,
            renewable: life.renewable,
            path: if create_orphan {
                "auth/token/create-orphan".into()
            } else {
                "auth/token/create".into()
            },
            meta: Default::default(),
        },
    };
    let (secret, rec) = app.store.create_token_with(&spec).await?;
    for name in &rec.policies {
        if name != "root" && app.policy(name).await?.is_none() {
            warnings.push(format!("Policy \"{name}\" does not exist"));
        }
    }
    let mut body = json!({ "auth": auth_json(&secret, &rec, ttl) });
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings);
    }
    Ok(Reply::Bare(axum::http::StatusCode::OK, body))
}

/// mutual's own form (`mutual token create --mount M [--role R]`): a root token makes a token
/// scoped to mounts (through the policies written for them) or a bootstrap token.
async fn create_scoped(app: &App, p: &Params, tok: &TokenRecord) -> Result<Reply, ApiError> {
    if !tok.is_root() {
        return Err(ApiError::PermissionDenied);
    }
    let mut mounts = p.list("mounts")?;
    if let Some(m) = p.string("mount").filter(|m| !m.trim().is_empty()) {
        mounts = vec![m.trim().trim_matches('/').to_string()];
    }
    if mounts
        .iter()
        .any(|m| m == "root" || m == mutual_store::ALL_MOUNTS)
    {
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
        crate::sys::check_bootstrap(app, &mounts, role)?;
    }
    let policies = if role.is_none() && mounts.iter().all(|m| m != mutual_store::ALL_MOUNTS) {
        let mut names = store_mount_policies(app, &mounts).await?;
        names.push("default".into());
        names.sort();
        names
    } else {
        Vec::new()
    };
    let spec = TokenSpec {
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
        policies,
        parent: None,
        lease: TokenLease {
            path: "auth/token/create".into(),
            ..TokenLease::default()
        },
    };
    let (secret, rec) = app.store.create_token_with(&spec).await?;
    let policies = if rec.policies.is_empty() {
        rec.mounts.clone()
    } else {
        rec.policies.clone()
    };
    Ok(Reply::Auth(json!({
        "client_token": secret,
        "accessor": rec.accessor,
        "policies": policies,
        "token_policies": policies,
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
