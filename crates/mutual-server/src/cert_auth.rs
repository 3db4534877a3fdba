//! Vault's `cert` auth method. The TLS listener verifies the caller's client certificate
//! against `--tls-client-ca` and puts a [`ClientCert`] into the request's extensions; a login
//! then turns it into a renewable token with a real lease:
//!
//! - through the roles configured by the API (`auth/cert/certs/:name`: the `certificate` the
//!   chain must lead to, `allowed_common_names`, `allowed_dns_sans`, `allowed_email_sans`,
//!   `allowed_uri_sans`, `allowed_organizational_units`, `token_policies`, `token_ttl`, …);
//! - else through the server's `--cert-login MATCHER=MOUNTS` flags (a token standing for
//!   those mounts).

use mutual_auth::token::sanitize_policies;
use mutual_pki::{
    cert::{facts, pem_certs, CertFacts},
    diagnosis::Purpose,
    verify::{verify, VerifyInput},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    params::Params,
    reply::Reply,
    state::App,
    tokens::{login_token, Grant},
    Op,
};

/// A client certificate that the TLS listener verified against its client CA, with the mounts
/// that the server's configuration grants to it. The listener makes one per connection and
/// inserts it, as an `Arc<ClientCert>`, into the extensions of every request of the
/// connection; a request without one presented no certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate's common name (empty when it has none).
    pub common_name: String,
    /// The certificate's subject, as text.
    pub subject: String,
    /// The mounts a login with this certificate may use; empty when no rule grants any.
    pub mounts: Vec<String>,
    /// The chain as the listener verified it, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
    /// The leaf, parsed once for the connection (`None` only for a leaf x509-parser cannot
    /// read, which the listener's verification would have refused): a keep-alive client that
    /// renews or logs in many times is not parsed again for each request.
    pub leaf: Option<CertFacts>,
}

impl ClientCert {
    /// The certificate of a verified `chain` (leaf first) and the mounts granted to it.
    pub fn new(
        common_name: String,
        subject: String,
        mounts: Vec<String>,
        chain: Vec<Vec<u8>>,
    ) -> ClientCert {
        let leaf = chain.first().and_then(|der| facts(der).ok());
        ClientCert {
            common_name,
            subject,
            mounts,
            chain,
            leaf,
        }
    }

    /// The certificate of a request's connection, if it presented one.
    pub fn of(extensions: &axum::http::Extensions) -> Option<&ClientCert> {
        extensions.get::<std::sync::Arc<ClientCert>>().map(|c| &**c)
    }
}

/// Where the certificate roles are stored.
const ENTRIES: &str = "cert:cert";

/// The lease of a login when its role sets none: Vault's system default (768h).
fn default_ttl() -> u64 {
    mutual_store::SYSTEM_MAX_TTL.as_secs()
}

/// A certificate role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct CertRole {
    certificate: String,
    display_name: String,
    allowed_common_names: Vec<String>,
    allowed_dns_sans: Vec<String>,
    allowed_email_sans: Vec<String>,
    allowed_uri_sans: Vec<String>,
    allowed_organizational_units: Vec<String>,
    token_policies: Vec<String>,
    token_ttl: u64,
    token_max_ttl: u64,
    token_period: u64,
    token_no_default_policy: bool,
}

impl CertRole {
    fn json(&self) -> serde_json::Value {
        json!({
            "certificate": self.certificate,
            "display_name": self.display_name,
            "allowed_common_names": self.allowed_common_names,
            "allowed_names": self.allowed_common_names,
            "allowed_dns_sans": self.allowed_dns_sans,
            "allowed_email_sans": self.allowed_email_sans,
            "allowed_uri_sans": self.allowed_uri_sans,
            "allowed_organizational_units": self.allowed_organizational_units,
            "token_policies": self.token_policies,
            "policies": self.token_policies,
            "token_ttl": self.token_ttl,
            "ttl": self.token_ttl,
            "token_max_ttl": self.token_max_ttl,
            "max_ttl": self.token_max_ttl,
            "token_period": self.token_period,
            "token_no_default_policy": self.token_no_default_policy,
            "token_type": "default",
        })
    }

    /// True when `chain` (leaf first) leads to this role's certificate and the leaf's names
    /// pass its constraints.
    fn admits(&self, chain: &[Vec<u8>], leaf: &CertFacts, now: OffsetDateTime) -> bool {
        let Ok(trusted) = pem_certs(self.certificate.as_bytes()) else {
            return false;
        };
        let input = VerifyInput {
            chain,
            trusted: &trusted,
            purpose: Some(Purpose::Client),
            name: None,
            crls: &[],
            now,
        };
        if verify(&input).is_err() {
            return false;
        }
        let any = |globs: &[String], values: &[String]| {
            globs.is_empty() || values.iter().any(|v| globs.iter().any(|g| glob(g, v)))
        };
        let cn: Vec<String> = leaf.common_name.iter().cloned().collect();
        any(&self.allowed_common_names, &cn)
            && any(&self.allowed_dns_sans, &leaf.dns_names)
            && any(&self.allowed_email_sans, &leaf.emails)
            && any(&self.allowed_uri_sans, &leaf.uris)
            && any(
                &self.allowed_organizational_units,
                &leaf.organizational_units,
            )
    }
}

/// Vault's globs for certificate names: `*` matches any run of characters.
fn glob(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !value.starts_with(first) || value.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    if !value.ends_with(last) {
        return false;
    }
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

fn encode(source: serde_json::Error) -> ApiError {
    ApiError::Store(mutual_store::StoreError::Encode {
        what: "cert role",
        source,
    })
}

/// `auth/cert/…` except `login` (the caller is authorized): the certificate roles.
pub(crate) async fn handle(app: &App, op: Op, rest: &str, p: &Params) -> Result<Reply, ApiError> {
    if rest == "certs" && op == Op::List {
        let keys: Vec<String> = app
            .store
            .list_auth_entries(ENTRIES)
            .await?
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return Err(ApiError::NotFound);
        }
        return Ok(Reply::data(json!({ "keys": keys })));
    }
    let Some(name) = rest.strip_prefix("certs/").filter(|n| !n.contains('/')) else {
        return Err(ApiError::NoRoute(format!("auth/cert/{rest}")));
    };
    let existing: Option<CertRole> = match app.store.get_auth_entry(ENTRIES, name).await? {
        Some(b) => Some(serde_json::from_str(&b).map_err(encode)?),
        None => None,
    };
    match op {
        Op::Read => Ok(Reply::data(existing.ok_or(ApiError::NotFound)?.json())),
        Op::Delete => {
            app.store.delete_auth_entry(ENTRIES, name).await?;
            Ok(Reply::NoContent)
        }
        Op::Write => {
            let mut r = existing.unwrap_or_default();
            if let Some(c) = p.string("certificate") {
                let certs = pem_certs(c.as_bytes())
                    .map_err(|e| ApiError::bad(format!("failed to parse certificate: {e}")))?;
                for der in &certs {
                    facts(der)
                        .map_err(|e| ApiError::bad(format!("failed to parse certificate: {e}")))?;
                }
                r.certificate = c;
            }
            if r.certificate.is_empty() {
                return Err(ApiError::bad("missing certificate"));
            }
            let list = |new: &str, old: &str| -> Result<Option<Vec<String>>, ApiError> {
                if p.has(new) {
                    Ok(Some(p.list(new)?))
                } else if !old.is_empty() && p.has(old) {
                    Ok(Some(p.list(old)?))
                } else {
                    Ok(None)
                }
            };
            if let Some(v) = list("allowed_common_names", "allowed_names")? {
                r.allowed_common_names = v;
            }
            if let Some(v) = list("allowed_dns_sans", "")? {
                r.allowed_dns_sans = v;
            }
            if let Some(v) = list("allowed_email_sans", "")? {
                r.allowed_email_sans = v;
            }
            if let Some(v) = list("allowed_uri_sans", "")? {
                r.allowed_uri_sans = v;
            }
            if let Some(v) = list("allowed_organizational_units", "")? {
                r.allowed_organizational_units = v;
            }
            if let Some(v) = list("token_policies", "policies")? {
                r.token_policies = sanitize_policies(&v, false);
            }
            let secs = |new: &str, old: &str| -> Result<Option<u64>, ApiError> {
                Ok(match p.duration(new)? {
                    Some(d) => Some(d.as_secs()),
                    None => p.duration(old)?.map(|d| d.as_secs()),
                })
            };
            if let Some(t) = secs("token_ttl", "ttl")? {
                r.token_ttl = t;
            }
            if let Some(t) = secs("token_max_ttl", "max_ttl")? {
                r.token_max_ttl = t;
            }
            if let Some(t) = secs("token_period", "period")? {
                r.token_period = t;
            }
            if let Some(b) = p.bool("token_no_default_policy")? {
                r.token_no_default_policy = b;
            }
            if let Some(d) = p.string("display_name") {
                r.display_name = d;
            }
            if r.token_max_ttl > 0 && r.token_ttl > r.token_max_ttl {
                return Err(ApiError::bad(
                    "\"token_ttl\" value must be less than \"token_max_ttl\" value",
                ));
            }
            let body = serde_json::to_string(&r).map_err(encode)?;
            app.store.put_auth_entry(ENTRIES, name, &body).await?;
            Ok(Reply::NoContent)
        }
        Op::List => Err(ApiError::MethodNotAllowed),
    }
}

/// Answers `auth/cert/login`: 400 without a verified certificate; the first certificate role
/// (or the one named by `name`) that admits it, else the `--cert-login` mounts; 403 when
/// nothing grants it anything.
pub(crate) async fn login(
    app: &App,
    op: Op,
    cert: Option<&ClientCert>,
    p: &Params,
) -> Result<Reply, ApiError> {
    if op != Op::Write {
        return Err(ApiError::MethodNotAllowed);
    }
    let cert = cert.ok_or_else(|| ApiError::bad("client certificate required"))?;
    let wanted = p.string("name").filter(|n| !n.is_empty());
    if let Some(leaf) = &cert.leaf {
        let now = OffsetDateTime::now_utc();
        for (name, body) in app.store.list_auth_entries(ENTRIES).await? {
            if wanted.as_ref().is_some_and(|w| *w != name) {
                continue;
            }
            let Ok(role) = serde_json::from_str::<CertRole>(&body) else {
                continue;
            };
            if !role.admits(&cert.chain, leaf, now) {
                continue;
            }
            let mut meta = std::collections::BTreeMap::new();
            meta.insert("cert_name".to_string(), name.clone());
            meta.insert("common_name".to_string(), cert.common_name.clone());
            let display = if role.display_name.is_empty() {
                name.clone()
            } else {
                role.display_name.clone()
            };
            return login_token(
                app,
                Grant {
                    display_name: format!("cert-{display}"),
                    policies: sanitize_policies(
                        &role.token_policies,
                        !role.token_no_default_policy,
                    ),
                    ttl: if role.token_ttl > 0 {
                        role.token_ttl
                    } else {
                        default_ttl()
                    },
                    max_ttl: role.token_max_ttl,
                    period: role.token_period,
                    explicit_max_ttl: 0,
                    num_uses: 0,
                    path: "auth/cert/login".into(),
                    meta,
                    bound_cidrs: Vec::new(),
                },
            )
            .await;
        }
    }
    if wanted.is_some()
        || cert.mounts.is_empty()
        || cert.mounts.iter().any(|m| m == mutual_store::ALL_MOUNTS)
    {
        return Err(ApiError::PermissionDenied);
    }
    let name = if cert.common_name.is_empty() {
        &cert.subject
    } else {
        &cert.common_name
    };
    // A token standing for the granted mounts, with a lease Agent can renew (a lease of 0
    // made it log in again at once, in a loop).
    let ttl = default_ttl();
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("common_name".to_string(), cert.common_name.clone());
    meta.insert("subject".to_string(), cert.subject.clone());
    let spec = mutual_store::TokenSpec {
        display_name: format!("cert-{name}"),
        mounts: cert.mounts.clone(),
        ttl: Some(std::time::Duration::from_secs(ttl)),
        lease: mutual_store::TokenLease {
            ttl,
            renewable: true,
            path: "auth/cert/login".into(),
            meta,
            ..Default::default()
        },
        ..Default::default()
    };
    let (secret, rec) = app.store.create_token_with(&spec).await?;
    let mut auth = crate::tokens::auth_json(&secret, &rec, ttl);
    auth["metadata"] = json!({"common_name": cert.common_name, "subject": cert.subject});
    auth["orphan"] = json!(true);
    // As before policies existed: the mounts the token stands for.
    auth["policies"] = json!(rec.mounts);
    auth["token_policies"] = json!(rec.mounts);
    Ok(Reply::Auth(auth))
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_vaults_do() {
        for (pattern, value, want) in [
            ("web.example.com", "web.example.com", true),
            ("web.example.com", "db.example.com", false),
            ("*.example.com", "web.example.com", true),
            ("*.example.com", "example.com", false),
            ("web-*", "web-1", true),
            ("*", "anything", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxcyyb", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(glob(pattern, value), want, "{pattern} vs {value}");
        }
    }
}
