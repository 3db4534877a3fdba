//! The ACME server's configuration and its operator paths: `config/acme` and `config/cluster`
//! (OpenBao's fields and defaults), `acme/new-eab` (on every directory), `LIST eab` and
//! `DELETE eab/:key_id`. These are token-authenticated Vault paths; the protocol itself is
//! `acme.rs`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    acme::{directory_of, new_id},
    error::ApiError,
    params::Params,
    pki::rfc3339,
    reply::Reply,
    state::{App, Mount},
    Op,
};

/// `config/acme`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct AcmeConfig {
    pub enabled: bool,
    pub allowed_issuers: Vec<String>,
    pub allowed_roles: Vec<String>,
    pub allow_role_ext_key_usage: bool,
    /// `sign-verbatim`, `forbid` or `role:NAME`: what `acme/directory` (no role) issues with.
    pub default_directory_policy: String,
    /// `not-required`, `new-account-required` or `always-required`.
    pub eab_policy: String,
    /// `host:port` of the DNS server that resolves names for validation; empty: the system's.
    pub dns_resolver: String,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        AcmeConfig {
            enabled: false,
            allowed_issuers: vec!["*".into()],
            allowed_roles: vec!["*".into()],
            allow_role_ext_key_usage: false,
            default_directory_policy: "sign-verbatim".into(),
            eab_policy: "not-required".into(),
            dns_resolver: String::new(),
        }
    }
}

impl AcmeConfig {
    fn updated(&self, p: &Params) -> Result<AcmeConfig, ApiError> {
        let mut c = self.clone();
        if let Some(b) = p.bool("enabled")? {
            c.enabled = b;
        }
        if let Some(b) = p.bool("allow_role_ext_key_usage")? {
            c.allow_role_ext_key_usage = b;
        }
        if p.has("allowed_issuers") {
            c.allowed_issuers = p.list("allowed_issuers")?;
        }
        if p.has("allowed_roles") {
            c.allowed_roles = p.list("allowed_roles")?;
        }
        if let Some(v) = p.string("default_directory_policy") {
            let ok = matches!(v.as_str(), "sign-verbatim" | "forbid")
                || v.strip_prefix("role:").is_some_and(|r| !r.is_empty());
            if !ok {
                return Err(ApiError::bad(format!(
                    "invalid default_directory_policy \"{v}\": use sign-verbatim, forbid or role:NAME"
                )));
            }
            c.default_directory_policy = v;
        }
        if let Some(v) = p.string("eab_policy") {
            if !matches!(
                v.as_str(),
                "not-required" | "new-account-required" | "always-required"
            ) {
                return Err(ApiError::bad(format!(
                    "invalid eab_policy \"{v}\": use not-required, new-account-required or always-required"
                )));
            }
            c.eab_policy = v;
        }
        if let Some(v) = p.string("dns_resolver") {
            if !v.is_empty() && v.parse::<std::net::SocketAddr>().is_err() {
                return Err(ApiError::bad(format!(
                    "invalid dns_resolver \"{v}\": an IP address and port (127.0.0.1:53) is expected"
                )));
            }
            c.dns_resolver = v;
        }
        Ok(c)
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// True when new accounts must carry an external account binding.
    pub fn eab_required(&self) -> bool {
        self.eab_policy != "not-required"
    }
}

/// `config/cluster`: the externally visible URL of this mount, what ACME's URLs start with.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct ClusterConfig {
    pub path: String,
    pub aia_path: String,
}

/// The mount's `config/acme`.
pub(crate) async fn acme_config(app: &App, mount: &str) -> Result<AcmeConfig, ApiError> {
    Ok(match app.store.mount_config(mount, "acme").await? {
        Some(body) => serde_json::from_str(&body).unwrap_or_default(),
        None => AcmeConfig::default(),
    })
}

/// The mount's `config/cluster`.
pub(crate) async fn cluster_config(app: &App, mount: &str) -> Result<ClusterConfig, ApiError> {
    Ok(match app.store.mount_config(mount, "cluster").await? {
        Some(body) => serde_json::from_str(&body).unwrap_or_default(),
        None => ClusterConfig::default(),
    })
}

/// The EAB key stored under kind `eab`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EabKey {
    /// The HMAC key, base64url.
    pub key: String,
    /// The directory prefix it was made for (`""`, `roles/x/`, …).
    pub dir: String,
    pub created: i64,
}

/// Answers the operator paths of this module, or None when `op rest` is not one.
pub(crate) async fn handle(
    app: &App,
    mount: &Mount,
    op: Op,
    rest: &str,
    p: &Params,
) -> Result<Option<Reply>, ApiError> {
    let path = mount.record.path.as_str();
    Ok(Some(match (op, rest) {
        (Op::Read, "config/acme") => Reply::data(acme_config(app, path).await?.to_json()),
        (Op::Write, "config/acme") => {
            let _guard = app.admin.lock().await;
            let c = acme_config(app, path).await?.updated(p)?;
            let body = serde_json::to_string(&c).unwrap_or_default();
            app.store.put_mount_config(path, "acme", &body).await?;
            tracing::info!(mount = %path, enabled = c.enabled, eab_policy = %c.eab_policy, "acme configured");
            Reply::data(c.to_json())
        }
        (Op::Read, "config/cluster") => {
            Reply::data(serde_json::to_value(cluster_config(app, path).await?).unwrap_or_default())
        }
        (Op::Write, "config/cluster") => {
            let _guard = app.admin.lock().await;
            let mut c = cluster_config(app, path).await?;
            for (key, field) in [("path", &mut c.path), ("aia_path", &mut c.aia_path)] {
                if let Some(v) = p.string(key) {
                    let v = v.trim_end_matches('/').to_string();
                    if !v.is_empty() && !v.starts_with("https://") && !v.starts_with("http://") {
                        return Err(ApiError::bad(format!(
                            "invalid {key} \"{v}\": a URL such as https://ca.example.com:8200/v1/{path} is expected"
                        )));
                    }
                    *field = v;
                }
            }
            let body = serde_json::to_string(&c).unwrap_or_default();
            app.store.put_mount_config(path, "cluster", &body).await?;
            Reply::data(serde_json::to_value(c).unwrap_or_default())
        }
        (Op::List, "eab") => list_eab(app, path).await?,
        (Op::Delete, r) if r.starts_with("eab/") => {
            app.store
                .acme_delete(path, "eab", &r["eab/".len()..])
                .await?;
            Reply::NoContent
        }
        (Op::Write, r) => match directory_of(r) {
            Some((dir, "new-eab")) => new_eab(app, mount, &dir).await?,
            _ => return Ok(None),
        },
        _ => return Ok(None),
    }))
}

async fn new_eab(app: &App, mount: &Mount, dir: &crate::acme::DirPath) -> Result<Reply, ApiError> {
    if let Some(role) = &dir.role {
        crate::pki::find_role(mount, role)?;
    }
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| ApiError::bad("the system random generator failed"))?;
    let key = mutual_acme::b64url(&key);
    let id = new_id();
    let now = OffsetDateTime::now_utc();
    let eab = EabKey {
        key: key.clone(),
        dir: dir.prefix.clone(),
        created: now.unix_timestamp(),
    };
    let obj = mutual_store::AcmeObject {
        id: id.clone(),
        account: String::new(),
        lookup: String::new(),
        body: serde_json::to_string(&eab).unwrap_or_default(),
        expires: 0,
    };
    app.store.acme_put(&mount.record.path, "eab", &obj).await?;
    tracing::info!(mount = %mount.record.path, eab = %id, directory = %dir.prefix, "acme eab key created");
    Ok(Reply::data(json!({
        "id": id,
        "key_type": "hs",
        "key": key,
        "acme_directory": format!("{}acme/directory", dir.prefix),
        "created_on": rfc3339(now),
    })))
}

async fn list_eab(app: &App, mount: &str) -> Result<Reply, ApiError> {
    let all = app.store.acme_list(mount, "eab", None).await?;
    let mut info = serde_json::Map::new();
    for o in &all {
        let Ok(e) = serde_json::from_str::<EabKey>(&o.body) else {
            continue;
        };
        let created = OffsetDateTime::from_unix_timestamp(e.created)
            .map(rfc3339)
            .unwrap_or_default();
        info.insert(
            o.id.clone(),
            json!({"key_type": "hs", "acme_directory": format!("{}acme/directory", e.dir), "created_on": created}),
        );
    }
    Ok(Reply::data(json!({
        "keys": all.iter().map(|o| o.id.clone()).collect::<Vec<_>>(),
        "key_info": info,
    })))
}
