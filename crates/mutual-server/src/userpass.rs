//! The `userpass` auth method, for people: users with a password (stored as a PBKDF2 hash,
//! `mutual_auth::password`), token policies and lease; `login/:name` returns a renewable
//! token. Usernames are case-insensitive, as in Vault.

use mutual_auth::{approle::parse_cidrs, password, token::sanitize_policies};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::{error::ApiError, params::Params, reply::Reply, state::App, tokens::Grant, Op};

/// A user as stored (the password only as its hash).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct User {
    password_hash: String,
    token_policies: Vec<String>,
    token_ttl: u64,
    token_max_ttl: u64,
    token_period: u64,
    token_explicit_max_ttl: u64,
    token_num_uses: u32,
    token_bound_cidrs: Vec<String>,
    token_no_default_policy: bool,
}

impl User {
    fn json(&self) -> serde_json::Value {
        json!({
            "token_policies": self.token_policies,
            "policies": self.token_policies,
            "token_ttl": self.token_ttl,
            "ttl": self.token_ttl,
            "token_max_ttl": self.token_max_ttl,
            "max_ttl": self.token_max_ttl,
            "token_period": self.token_period,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_num_uses": self.token_num_uses,
            "token_bound_cidrs": self.token_bound_cidrs,
            "bound_cidrs": self.token_bound_cidrs,
            "token_no_default_policy": self.token_no_default_policy,
            "token_type": "default",
        })
    }
}

/// The entries of a userpass mount are kept under this key in the store.
fn entries(mount: &str) -> String {
    format!("userpass:{mount}")
}

fn encode(source: serde_json::Error) -> ApiError {
    ApiError::Store(mutual_store::StoreError::Encode {
        what: "userpass user",
        source,
    })
}

/// Hashes a password off the async workers (PBKDF2 is deliberately slow).
async fn hash(pw: String) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt)
        .map_err(|_| ApiError::bad("the system random generator failed"))?;
    Ok(
        tokio::task::spawn_blocking(move || password::hash(&pw, &salt, password::ITERATIONS))
            .await?,
    )
}

fn secs(p: &Params, new: &str, old: &str) -> Result<Option<u64>, ApiError> {
    let d = match p.duration(new)? {
        Some(d) => Some(d),
        None => p.duration(old)?,
    };
    Ok(d.map(|d| d.as_secs()))
}

async fn user(app: &App, mount: &str, name: &str) -> Result<Option<User>, ApiError> {
    match app.store.get_auth_entry(&entries(mount), name).await? {
        Some(body) => Ok(Some(serde_json::from_str(&body).map_err(encode)?)),
        None => Ok(None),
    }
}

/// `auth/<userpass mount>/…` except `login` (the caller is authorized).
pub(crate) async fn handle(
    app: &App,
    op: Op,
    mount: &str,
    rest: &str,
    p: &Params,
) -> Result<Reply, ApiError> {
    if rest == "users" && op == Op::List {
        let keys: Vec<String> = app
            .store
            .list_auth_entries(&entries(mount))
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Err(ApiError::NotFound);
        }
        return Ok(Reply::data(json!({ "keys": keys })));
    }
    let Some(r) = rest.strip_prefix("users/") else {
        return Err(ApiError::NoRoute(format!("auth/{mount}/{rest}")));
    };
    let (name, sub) = r.split_once('/').unwrap_or((r, ""));
    let name = name.to_lowercase();
    let existing = user(app, mount, &name).await?;
    match (op, sub) {
        (Op::Read, "") => Ok(Reply::data(existing.ok_or(ApiError::NotFound)?.json())),
        (Op::Delete, "") => {
            app.store.delete_auth_entry(&entries(mount), &name).await?;
            Ok(Reply::NoContent)
        }
        (Op::Write, "" | "password" | "policies") => {
            let creating = existing.is_none();
            if creating && !sub.is_empty() {
                return Err(ApiError::bad(format!("username \"{name}\" does not exist")));
            }
            let mut u = existing.unwrap_or_default();
            match p.string("password").filter(|s| !s.is_empty()) {
                Some(pw) if sub != "policies" => u.password_hash = hash(pw).await?,
                None if creating || sub == "password" => {
                    return Err(ApiError::bad("missing password"))
                }
                _ => {}
            }
            if sub != "password" {
                if p.has("token_policies") {
                    u.token_policies = sanitize_policies(&p.list("token_policies")?, false);
                } else if p.has("policies") {
                    u.token_policies = sanitize_policies(&p.list("policies")?, false);
                }
            }
            if sub.is_empty() {
                if let Some(t) = secs(p, "token_ttl", "ttl")? {
                    u.token_ttl = t;
                }
                if let Some(t) = secs(p, "token_max_ttl", "max_ttl")? {
                    u.token_max_ttl = t;
                }
                if let Some(t) = secs(p, "token_period", "period")? {
                    u.token_period = t;
                }
                if let Some(t) = secs(p, "token_explicit_max_ttl", "explicit_max_ttl")? {
                    u.token_explicit_max_ttl = t;
                }
                if let Some(n) = p.u32("token_num_uses")? {
                    u.token_num_uses = n;
                }
                if let Some(b) = p.bool("token_no_default_policy")? {
                    u.token_no_default_policy = b;
                }
                if p.has("token_bound_cidrs") || p.has("bound_cidrs") {
                    let key = if p.has("token_bound_cidrs") {
                        "token_bound_cidrs"
                    } else {
                        "bound_cidrs"
                    };
                    let list = p.list(key)?;
                    parse_cidrs(&list)?;
                    u.token_bound_cidrs = list;
                }
                if u.token_max_ttl > 0 && u.token_ttl > u.token_max_ttl {
                    return Err(ApiError::bad(
                        "\"token_ttl\" value must be less than \"token_max_ttl\" value",
                    ));
                }
            }
            let body = serde_json::to_string(&u).map_err(encode)?;
            app.store
                .put_auth_entry(&entries(mount), &name, &body)
                .await?;
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::NoRoute(format!("auth/{mount}/{rest}"))),
    }
}

/// A hash to verify against when the user does not exist, so that an unknown name costs the
/// same time as a wrong password and the answer does not tell which it was.
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| password::hash("", b"mutual-decoy-salt", password::ITERATIONS))
}

/// `auth/<userpass mount>/login/:name`.
pub(crate) async fn login(
    app: &App,
    op: Op,
    mount: &str,
    name: &str,
    p: &Params,
    ip: Option<std::net::IpAddr>,
) -> Result<Reply, ApiError> {
    if op != Op::Write {
        return Err(ApiError::MethodNotAllowed);
    }
    let name = name.to_lowercase();
    let pw = p
        .string("password")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad("missing password"))?;
    let u = user(app, mount, &name).await?;
    let stored = u.as_ref().map(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || {
        let stored = stored.as_deref().unwrap_or_else(|| decoy());
        password::verify(&pw, stored)
    })
    .await?;
    let Some(u) = u.filter(|_| matches) else {
        return Err(ApiError::bad("invalid username or password"));
    };
    let cidrs = parse_cidrs(&u.token_bound_cidrs)?;
    if !cidrs.is_empty() && !ip.is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip))) {
        return Err(ApiError::Forbidden(format!(
            "login request originated from invalid CIDR: {}",
            ip.map(|i| i.to_string()).unwrap_or_default()
        )));
    }
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("username".to_string(), name.clone());
    crate::tokens::login_token(
        app,
        Grant {
            display_name: format!("{mount}-{name}"),
            policies: sanitize_policies(&u.token_policies, !u.token_no_default_policy),
            ttl: u.token_ttl,
            max_ttl: u.token_max_ttl,
            period: u.token_period,
            explicit_max_ttl: u.token_explicit_max_ttl,
            num_uses: u.token_num_uses,
            path: format!("auth/{mount}/login/{name}"),
            meta,
            bound_cidrs: u.token_bound_cidrs.clone(),
        },
    )
    .await
}
