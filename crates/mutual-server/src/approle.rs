//! `sys/auth` (enable, list, disable auth methods; `approle` is the one mutual adds beside
//! `token` and `cert`) and the AppRole method: roles, role IDs, secret IDs (stored as their
//! HMAC) and `login`, which returns a token with the role's policies and a real lease.

use mutual_auth::{
    approle::{login as check_login, parse_cidrs, AfterLogin, SecretIdPolicy, SecretIdState},
    hmac::Hasher,
    token::sanitize_policies,
};
use mutual_store::{AuthMount, SecretIdRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::{error::ApiError, params::Params, reply::Reply, state::App, Op};

/// A role's configuration, stored as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
struct RoleConfig {
    bind_secret_id: bool,
    secret_id_num_uses: u32,
    secret_id_ttl: u64,
    secret_id_bound_cidrs: Vec<String>,
    token_policies: Vec<String>,
    token_ttl: u64,
    token_max_ttl: u64,
    token_num_uses: u32,
    token_period: u64,
    token_explicit_max_ttl: u64,
    token_bound_cidrs: Vec<String>,
    token_no_default_policy: bool,
}

impl Default for RoleConfig {
    fn default() -> Self {
        RoleConfig {
            bind_secret_id: true,
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            secret_id_bound_cidrs: Vec::new(),
            token_policies: Vec::new(),
            token_ttl: 0,
            token_max_ttl: 0,
            token_num_uses: 0,
            token_period: 0,
            token_explicit_max_ttl: 0,
            token_bound_cidrs: Vec::new(),
            token_no_default_policy: false,
        }
    }
}

impl RoleConfig {
    fn secret_id_policy(&self) -> Result<SecretIdPolicy, ApiError> {
        Ok(SecretIdPolicy {
            bind_secret_id: self.bind_secret_id,
            secret_id_num_uses: self.secret_id_num_uses,
            secret_id_ttl: self.secret_id_ttl,
            secret_id_bound_cidrs: parse_cidrs(&self.secret_id_bound_cidrs)?,
            token_bound_cidrs: parse_cidrs(&self.token_bound_cidrs)?,
        })
    }

    fn json(&self) -> Value {
        json!({
            "bind_secret_id": self.bind_secret_id,
            "local_secret_ids": false,
            "secret_id_bound_cidrs": self.secret_id_bound_cidrs,
            "secret_id_num_uses": self.secret_id_num_uses,
            "secret_id_ttl": self.secret_id_ttl,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_max_ttl": self.token_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_policies": self.token_policies,
            "policies": self.token_policies,
            "token_ttl": self.token_ttl,
            "token_type": "default",
        })
    }
}

fn encode(source: serde_json::Error) -> ApiError {
    ApiError::Store(mutual_store::StoreError::Encode {
        what: "approle role",
        source,
    })
}

fn random_id() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).unwrap_or_default();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn secs(p: &Params, key: &str) -> Result<Option<u64>, ApiError> {
    Ok(p.duration(key)?.map(|d| d.as_secs()))
}

/// The auth method (enabled through `sys/auth`) a path under `auth/` belongs to, with the
/// rest of the path.
pub(crate) async fn method_of<'p>(
    app: &App,
    path: &'p str,
) -> Result<Option<(AuthMount, &'p str)>, ApiError> {
    let Some(rest) = path.strip_prefix("auth/") else {
        return Ok(None);
    };
    for m in app.store.list_auth_mounts().await? {
        if rest == m.path {
            return Ok(Some((m, "")));
        }
        if let Some(r) = rest.strip_prefix(&format!("{}/", m.path)) {
            return Ok(Some((m, r)));
        }
    }
    Ok(None)
}

fn mount_json(kind: &str, accessor: &str, description: &str) -> Value {
    json!({
        "accessor": accessor,
        "config": {"default_lease_ttl": 0, "max_lease_ttl": 0, "force_no_cache": false, "token_type": "default-service"},
        "description": description,
        "external_entropy_access": false,
        "local": false,
        "options": null,
        "plugin_version": "",
        "running_plugin_version": format!("v{}+builtin.mutual", crate::VERSION),
        "running_sha256": "",
        "seal_wrap": false,
        "type": kind,
        "uuid": accessor,
    })
}

/// `sys/auth` and `sys/auth/:path` (the caller is authorized, sudo included).
pub(crate) async fn sys_auth(app: &App, op: Op, path: &str, p: &Params) -> Result<Reply, ApiError> {
    let name = path.trim_start_matches("sys/auth").trim_matches('/');
    if name.is_empty() {
        if op != Op::Read {
            return Err(ApiError::MethodNotAllowed);
        }
        let mut all = Map::new();
        all.insert(
            "token/".into(),
            mount_json("token", "auth_token_mutual", "token based credentials"),
        );
        for m in app.store.list_auth_mounts().await? {
            all.insert(
                format!("{}/", m.path),
                mount_json(&m.kind, &m.accessor, &m.description),
            );
        }
        return Ok(Reply::Sys(Value::Object(all)));
    }
    match op {
        Op::Write => {
            let kind = p.str_or("type", "");
            if !["approle", "userpass", "cert"].contains(&kind.as_str()) {
                return Err(ApiError::bad(format!(
                    "mutual serves the approle, userpass and cert auth methods, not \"{kind}\""
                )));
            }
            // The TLS listener answers client certificates at `auth/cert/login` only.
            if (kind == "cert") != (name == "cert") || name == "token" {
                return Err(ApiError::bad(format!(
                    "mutual serves the cert auth method at auth/cert/ only (and nothing else there); \"{kind}\" cannot be enabled at auth/{name}/"
                )));
            }
            let accessor = format!("auth_{kind}_{}", &random_id()[..8]);
            app.store
                .enable_auth(&AuthMount {
                    path: name.to_string(),
                    kind,
                    accessor,
                    description: p.str_or("description", ""),
                })
                .await
                .map_err(|e| match e {
                    mutual_store::StoreError::Duplicate { .. } => {
                        ApiError::bad(format!("path is already in use at auth/{name}/"))
                    }
                    other => other.into(),
                })?;
            Ok(Reply::NoContent)
        }
        Op::Delete => {
            app.store.disable_auth(name).await?;
            app.store.delete_auth_entries(name).await?;
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

async fn role(app: &App, mount: &str, name: &str) -> Result<(String, RoleConfig), ApiError> {
    let rec = app
        .store
        .get_approle(mount, name)
        .await?
        .ok_or_else(|| ApiError::bad(format!("role \"{name}\" does not exist")))?;
    let cfg = serde_json::from_str(&rec.body).map_err(encode)?;
    Ok((rec.role_id, cfg))
}

/// `auth/<approle mount>/…` except `login` (the caller is authorized).
pub(crate) async fn handle(
    app: &App,
    op: Op,
    mount: &str,
    rest: &str,
    p: &Params,
) -> Result<Reply, ApiError> {
    if rest == "role" && op == Op::List {
        let keys = app.store.list_approles(mount).await?;
        if keys.is_empty() {
            return Err(ApiError::NotFound);
        }
        return Ok(Reply::data(json!({ "keys": keys })));
    }
    let Some(r) = rest.strip_prefix("role/") else {
        return Err(ApiError::NoRoute(format!("auth/{mount}/{rest}")));
    };
    let (name, sub) = r.split_once('/').unwrap_or((r, ""));
    match (op, sub) {
        (Op::Write, "") => {
            let existing = app.store.get_approle(mount, name).await?;
            let (role_id, mut cfg) = match &existing {
                Some(rec) => (
                    rec.role_id.clone(),
                    serde_json::from_str(&rec.body).unwrap_or_default(),
                ),
                None => (random_id(), RoleConfig::default()),
            };
            if let Some(b) = p.bool("bind_secret_id")? {
                cfg.bind_secret_id = b;
            }
            if let Some(n) = p.u32("secret_id_num_uses")? {
                cfg.secret_id_num_uses = n;
            }
            if let Some(t) = secs(p, "secret_id_ttl")? {
                cfg.secret_id_ttl = t;
            }
            if p.has("secret_id_bound_cidrs") {
                cfg.secret_id_bound_cidrs = p.list("secret_id_bound_cidrs")?;
            } else if p.has("bound_cidr_list") {
                // The name Vault used before 0.10, still accepted by it.
                cfg.secret_id_bound_cidrs = p.list("bound_cidr_list")?;
            }
            if p.has("token_bound_cidrs") {
                cfg.token_bound_cidrs = p.list("token_bound_cidrs")?;
            }
            if p.has("token_policies") {
                cfg.token_policies = p.list("token_policies")?;
            } else if p.has("policies") {
                cfg.token_policies = p.list("policies")?;
            }
            cfg.token_policies = sanitize_policies(&cfg.token_policies, false);
            if let Some(t) = secs(p, "token_ttl")? {
                cfg.token_ttl = t;
            }
            if let Some(t) = secs(p, "token_max_ttl")? {
                cfg.token_max_ttl = t;
            }
            if let Some(n) = p.u32("token_num_uses")? {
                cfg.token_num_uses = n;
            }
            if let Some(t) = secs(p, "token_period")? {
                cfg.token_period = t;
            }
            if let Some(t) = secs(p, "token_explicit_max_ttl")? {
                cfg.token_explicit_max_ttl = t;
            }
            if let Some(b) = p.bool("token_no_default_policy")? {
                cfg.token_no_default_policy = b;
            }
            if cfg.token_max_ttl > 0 && cfg.token_ttl > cfg.token_max_ttl {
                return Err(ApiError::bad(
                    "\"token_ttl\" value must be less than \"token_max_ttl\" value",
                ));
            }
            cfg.secret_id_policy()?.check()?;
            let body = serde_json::to_string(&cfg).map_err(encode)?;
            app.store.put_approle(mount, name, &role_id, &body).await?;
            Ok(Reply::NoContent)
        }
        (Op::Read, "") => {
            let (_, cfg) = role(app, mount, name)
                .await
                .map_err(|_| ApiError::NotFound)?;
            Ok(Reply::data(cfg.json()))
        }
        (Op::Delete, "") => {
            app.store.delete_approle(mount, name).await?;
            Ok(Reply::NoContent)
        }
        (Op::Read, "role-id") => {
            let (role_id, _) = role(app, mount, name).await?;
            Ok(Reply::data(json!({ "role_id": role_id })))
        }
        (Op::Write, "role-id") => {
            let (_, cfg) = role(app, mount, name).await?;
            let role_id = p
                .string("role_id")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ApiError::bad("missing role_id"))?;
            let body = serde_json::to_string(&cfg).map_err(encode)?;
            app.store.put_approle(mount, name, &role_id, &body).await?;
            Ok(Reply::NoContent)
        }
        (Op::Write, "secret-id" | "custom-secret-id") => {
            let (_, cfg) = role(app, mount, name).await?;
            let policy = cfg.secret_id_policy()?;
            let cidrs = parse_cidrs(&p.list("cidr_list")?)?;
            let now = OffsetDateTime::now_utc().unix_timestamp();
            let state = policy.new_secret_id(
                p.u32("num_uses")?.unwrap_or(0),
                secs(p, "ttl")?.unwrap_or(0),
                cidrs,
                now,
            )?;
            let secret = match sub {
                "custom-secret-id" => p
                    .string("secret_id")
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| ApiError::bad("missing secret_id"))?,
                _ => random_id(),
            };
            let hasher = Hasher::new(&app.store.auth_hmac_key().await?);
            let accessor = random_id();
            app.store
                .put_secret_id(
                    mount,
                    &SecretIdRecord {
                        hmac: hasher.hex(&format!("{mount}/{name}/{secret}")),
                        role: name.to_string(),
                        accessor: accessor.clone(),
                        uses_left: state.uses_left,
                        created_at: state.created,
                        expires_at: state.expires,
                        cidrs: state.cidrs.iter().map(|c| c.to_string()).collect(),
                    },
                )
                .await?;
            Ok(Reply::data(json!({
                "secret_id": secret,
                "secret_id_accessor": accessor,
                "secret_id_num_uses": state.uses_left,
                "secret_id_ttl": state.expires.map_or(0, |e| e - state.created),
            })))
        }
        (Op::List, "secret-id") => {
            let keys = app.store.list_secret_id_accessors(mount, name).await?;
            if keys.is_empty() {
                return Err(ApiError::NotFound);
            }
            Ok(Reply::data(json!({ "keys": keys })))
        }
        (Op::Write, "secret-id-accessor/destroy") => {
            let accessor = p
                .string("secret_id_accessor")
                .ok_or_else(|| ApiError::bad("missing secret_id_accessor"))?;
            app.store.destroy_secret_id(mount, &accessor).await?;
            Ok(Reply::NoContent)
        }
        (Op::Write, "secret-id/destroy") => {
            let secret = p
                .string("secret_id")
                .ok_or_else(|| ApiError::bad("missing secret_id"))?;
            let hasher = Hasher::new(&app.store.auth_hmac_key().await?);
            app.store
                .destroy_secret_id(mount, &hasher.hex(&format!("{mount}/{name}/{secret}")))
                .await?;
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::NoRoute(format!("auth/{mount}/{rest}"))),
    }
}

/// `auth/<approle mount>/login`: a token with the role's policies and lease, the secret ID
/// counted down (and deleted at its last use).
pub(crate) async fn login(
    app: &App,
    op: Op,
    mount: &str,
    p: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<Reply, ApiError> {
    if op != Op::Write {
        return Err(ApiError::MethodNotAllowed);
    }
    let role_id = p
        .string("role_id")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad("missing role_id"))?;
    let rec = app
        .store
        .approle_by_role_id(mount, &role_id)
        .await?
        .ok_or_else(|| ApiError::bad("invalid role or secret ID"))?;
    let cfg: RoleConfig = serde_json::from_str(&rec.body).map_err(encode)?;
    let policy = cfg.secret_id_policy()?;
    let secret = p.string("secret_id").filter(|s| !s.is_empty());
    let now = OffsetDateTime::now_utc();
    let stored = match &secret {
        Some(s) => {
            let hasher = Hasher::new(&app.store.auth_hmac_key().await?);
            app.store
                .get_secret_id(
                    mount,
                    &rec.name,
                    &hasher.hex(&format!("{mount}/{}/{s}", rec.name)),
                )
                .await?
        }
        None => None,
    };
    let state = stored
        .as_ref()
        .map(|s| -> Result<SecretIdState, ApiError> {
            Ok(SecretIdState {
                uses_left: s.uses_left,
                created: s.created_at,
                expires: s.expires_at,
                cidrs: parse_cidrs(&s.cidrs)?,
            })
        })
        .transpose()?;
    // Without the client's address (a listener that does not record it) a CIDR-bound role
    // or secret ID refuses the login rather than guess.
    let after = check_login(
        &policy,
        secret.is_some(),
        state.as_ref(),
        ip,
        now.unix_timestamp(),
    )?;
    if let Some(s) = &stored {
        let applied = match after {
            AfterLogin::Keep => true,
            AfterLogin::Decrement { uses_left } => {
                app.store
                    .use_secret_id(&s.hmac, s.uses_left, Some(uses_left))
                    .await?
            }
            AfterLogin::Delete => app.store.use_secret_id(&s.hmac, s.uses_left, None).await?,
        };
        if !applied {
            return Err(ApiError::bad("invalid role or secret ID"));
        }
    }
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("role_name".to_string(), rec.name.clone());
    crate::tokens::login_token(
        app,
        crate::tokens::Grant {
            display_name: format!("approle-{}", rec.name),
            policies: sanitize_policies(&cfg.token_policies, !cfg.token_no_default_policy),
            ttl: cfg.token_ttl,
            max_ttl: cfg.token_max_ttl,
            period: cfg.token_period,
            explicit_max_ttl: cfg.token_explicit_max_ttl,
            num_uses: cfg.token_num_uses,
            path: format!("auth/{mount}/login"),
            meta,
            bound_cidrs: cfg.token_bound_cidrs.clone(),
        },
    )
    .await
}
