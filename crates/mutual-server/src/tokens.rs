//! `auth/token/`: Vault's token store. Children inherit their parent's policies (a parent
//! without sudo may only hand out policies it holds), orphans, TTLs and renewal capped by the
//! max TTLs, `num_uses`, lookups and revocation (a parent takes its children with it). The
//! rules are `mutual-auth`'s; this module reads parameters and writes the store.

use std::time::Duration;

use mutual_auth::{
    token::{child_token, role_child_token, ChildRequest, Lifetime, Parent, TokenRole},
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
pub(crate) fn effective_policies(tok: &TokenRecord) -> Vec<String> {
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
    // A token role's period is the role's in Vault (read from it at renewal), not the
    // token's: its lookup shows none. mutual keeps it on the token, and shows it as Vault does.
    let from_role = t.lease.path.starts_with("auth/token/create/");
    if t.lease.period > 0 && !from_role {
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
                decision.has_sudo(),
                rest == "create-orphan",
                None,
            )
            .await
        }
        (Op::Write, r) if r.starts_with("create/") => {
            let name = &r["create/".len()..];
            let role = token_role(app, name)
                .await?
                .ok_or_else(|| ApiError::bad(format!("unknown role {name}")))?;
            create(app, p, tok, decision.has_sudo(), false, Some((name, role))).await
        }
        (Op::List, "roles") => {
            let keys: Vec<String> = app
                .store
                .list_auth_entries(ROLES)
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            if keys.is_empty() {
                return Err(ApiError::NotFound);
            }
            Ok(Reply::data(json!({ "keys": keys })))
        }
        (op, r) if r.starts_with("roles/") => roles(app, op, &r["roles/".len()..], p).await,
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

/// Vault's `auth/token/create`, `create-orphan` and `create/:role`.
async fn create(
    app: &App,
    p: &Params,
    tok: &TokenRecord,
    sudo: bool,
    create_orphan: bool,
    role: Option<(&str, RoleConfig)>,
) -> Result<Reply, ApiError> {
    let mut parent_policies = effective_policies(tok);
    if tok.policies.is_empty() && !tok.is_root() {
        parent_policies = store_mount_policies(app, &tok.mounts).await?;
    }
    let mut period = secs(p, "period")?;
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
    let mut explicit_max_ttl = secs(p, "explicit_max_ttl")?;
    let mut renewable = p.bool_or("renewable", true)?;
    let child = match &role {
        None => child_token(&parent, &req)?,
        Some((_, r)) => {
            // The role's period and orphan need no sudo: that is what the role grants.
            let plain = ChildRequest {
                period: 0,
                no_parent: false,
                ..req.clone()
            };
            let child = role_child_token(&parent, &plain, &r.rules())?;
            if r.token_period > 0 {
                period = r.token_period;
            } else if period > 0 && !sudo {
                return Err(mutual_auth::token::CreateRefusal::PeriodNeedsSudo.into());
            }
            if r.token_explicit_max_ttl > 0
                && (explicit_max_ttl == 0 || explicit_max_ttl > r.token_explicit_max_ttl)
            {
                explicit_max_ttl = r.token_explicit_max_ttl;
            }
            renewable &= r.renewable;
            child
        }
    };
    let never_expires = child.policies.iter().any(|p| p == "root");
    let inputs = LeaseInputs {
        increment: 0,
        backend_ttl: secs(p, "ttl")?,
        period,
        backend_max_ttl: 0,
        explicit_max_ttl,
    };
    let now = OffsetDateTime::now_utc();
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
            path: match (&role, create_orphan) {
                (Some((name, _)), _) => format!("auth/token/create/{name}"),
                (None, true) => "auth/token/create-orphan".into(),
                (None, false) => "auth/token/create".into(),
            },
            meta: Default::default(),
            bound_cidrs: Vec::new(),
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

/// What a login grants: the token's policies and lease, as an auth method's role or user
/// configures them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grant {
    /// `approle-web`, `userpass-alice`, `cert-web`.
    pub display_name: String,
    /// Final policies (sanitized, `default` included unless refused).
    pub policies: Vec<String>,
    /// `token_ttl`, 0 for the system's.
    pub ttl: u64,
    /// `token_max_ttl`, 0 for the system's.
    pub max_ttl: u64,
    /// `token_period`.
    pub period: u64,
    /// `token_explicit_max_ttl`.
    pub explicit_max_ttl: u64,
    /// `token_num_uses`.
    pub num_uses: u32,
    /// The login path (`auth/userpass/login/alice`).
    pub path: String,
    /// Metadata shown in `lookup` (`username`, `role_name`).
    pub meta: std::collections::BTreeMap<String, String>,
    /// `token_bound_cidrs`: where the token may be used from.
    pub bound_cidrs: Vec<String>,
}

/// Makes the token of a login: renewable, with a real lease (never 0, which makes Vault
/// Agent log in again at once, in a loop), in Vault's `{"auth": …}` answer.
pub(crate) async fn login_token(app: &App, g: Grant) -> Result<Reply, ApiError> {
    let now = OffsetDateTime::now_utc();
    let inputs = LeaseInputs {
        increment: 0,
        backend_ttl: g.ttl,
        period: g.period,
        backend_max_ttl: g.max_ttl,
        explicit_max_ttl: g.explicit_max_ttl,
    };
    let (life, warnings) = Lifetime::create(system(), inputs, true, false, now.unix_timestamp())?;
    let ttl = life.ttl_left(now.unix_timestamp());
    let spec = TokenSpec {
        display_name: g.display_name,
        mounts: Vec::new(),
        role: None,
        num_uses: g.num_uses,
        ttl: life.expires.map(|_| Duration::from_secs(ttl)),
        policies: g.policies,
        parent: None,
        lease: TokenLease {
            ttl: g.ttl,
            max_ttl: g.max_ttl,
            explicit_max_ttl: g.explicit_max_ttl,
            period: g.period,
            renewable: true,
            path: g.path,
            meta: g.meta,
            bound_cidrs: g.bound_cidrs,
        },
    };
    let (token, rec) = app.store.create_token_with(&spec).await?;
    let mut body = json!({ "auth": auth_json(&token, &rec, ttl) });
    if !warnings.is_empty() {
        body["warnings"] = json!(warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>());
    }
    Ok(Reply::Bare(axum::http::StatusCode::OK, body))
}

/// Where token roles are stored.
const ROLES: &str = "token:roles";

/// A token role as stored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub(crate) struct RoleConfig {
    allowed_policies: Vec<String>,
    disallowed_policies: Vec<String>,
    orphan: bool,
    renewable: bool,
    token_period: u64,
    token_explicit_max_ttl: u64,
    token_no_default_policy: bool,
    path_suffix: String,
}

impl Default for RoleConfig {
    fn default() -> Self {
        RoleConfig {
            allowed_policies: Vec::new(),
            disallowed_policies: Vec::new(),
            orphan: false,
            renewable: true,
            token_period: 0,
            token_explicit_max_ttl: 0,
            token_no_default_policy: false,
            path_suffix: String::new(),
        }
    }
}

impl RoleConfig {
    fn rules(&self) -> TokenRole {
        TokenRole {
            allowed_policies: self.allowed_policies.clone(),
            disallowed_policies: self.disallowed_policies.clone(),
            orphan: self.orphan,
            period: self.token_period,
            no_default_policy: self.token_no_default_policy,
        }
    }

    fn json(&self, name: &str) -> Value {
        json!({
            "name": name,
            "allowed_policies": self.allowed_policies,
            "disallowed_policies": self.disallowed_policies,
            "allowed_policies_glob": [],
            "disallowed_policies_glob": [],
            "allowed_entity_aliases": [],
            "orphan": self.orphan,
            "renewable": self.renewable,
            "path_suffix": self.path_suffix,
            "token_period": self.token_period,
            "period": self.token_period,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "explicit_max_ttl": self.token_explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_bound_cidrs": [],
            "token_type": "default-service",
        })
    }
}

fn role_encode(source: serde_json::Error) -> ApiError {
    ApiError::Store(mutual_store::StoreError::Encode {
        what: "token role",
        source,
    })
}

async fn token_role(app: &App, name: &str) -> Result<Option<RoleConfig>, ApiError> {
    match app.store.get_auth_entry(ROLES, name).await? {
        Some(b) => Ok(Some(serde_json::from_str(&b).map_err(role_encode)?)),
        None => Ok(None),
    }
}

/// `auth/token/roles/:name`.
async fn roles(app: &App, op: Op, name: &str, p: &Params) -> Result<Reply, ApiError> {
    if name.is_empty() || name.contains('/') {
        return Err(ApiError::NoRoute(format!("auth/token/roles/{name}")));
    }
    let existing = token_role(app, name).await?;
    match op {
        Op::Read => Ok(Reply::data(existing.ok_or(ApiError::NotFound)?.json(name))),
        Op::Delete => {
            app.store.delete_auth_entry(ROLES, name).await?;
            Ok(Reply::NoContent)
        }
        Op::Write => {
            let mut r = existing.unwrap_or_default();
            if p.has("allowed_policies") {
                r.allowed_policies =
                    mutual_auth::token::sanitize_policies(&p.list("allowed_policies")?, false);
            }
            if p.has("disallowed_policies") {
                r.disallowed_policies =
                    mutual_auth::token::sanitize_policies(&p.list("disallowed_policies")?, false);
            }
            if let Some(b) = p.bool("orphan")? {
                r.orphan = b;
            }
            if let Some(b) = p.bool("renewable")? {
                r.renewable = b;
            }
            if let Some(b) = p.bool("token_no_default_policy")? {
                r.token_no_default_policy = b;
            }
            let period = match p.duration("token_period")? {
                Some(d) => Some(d),
                None => p.duration("period")?,
            };
            if let Some(d) = period {
                r.token_period = d.as_secs();
            }
            let max = match p.duration("token_explicit_max_ttl")? {
                Some(d) => Some(d),
                None => p.duration("explicit_max_ttl")?,
            };
            if let Some(d) = max {
                r.token_explicit_max_ttl = d.as_secs();
            }
            if let Some(s) = p.string("path_suffix") {
                r.path_suffix = s;
            }
            let body = serde_json::to_string(&r).map_err(role_encode)?;
            app.store.put_auth_entry(ROLES, name, &body).await?;
            Ok(Reply::NoContent)
        }
        Op::List => Err(ApiError::MethodNotAllowed),
    }
}
