//! The audit log's entries, in Vault's JSON format (`audit/format_json.go`): one `request`
//! entry before a request is handled and one `response` entry after, each with the caller
//! (`auth`: accessor, policies, token type, display name), the `request` (id, operation, path,
//! remote address, parameters), the `response` and the `error`.
//!
//! Secrets never reach the log in clear: tokens, secret IDs, passwords and private keys are
//! written as `hmac-sha256:<hex>` under the device's salt, so that an operator who holds a
//! token can find its requests (`sys/audit-hash`) and nobody can read one back. Where Vault
//! HMACs every string of `data`, mutual HMACs the secrets and keeps the rest readable (the
//! serial issued or revoked, the names asked for): the log is there to answer "who obtained
//! which certificate", and an HMAC'd serial cannot answer it.
//!
//! Pure: the caller gives the time, the ids and the salt; writing the line is its business.

use serde_json::{json, Map, Value};

use crate::hmac::Hasher;

/// Keys whose string values are secrets wherever they appear (request or response, at any
/// depth): tokens, secret IDs, passwords, private keys.
pub const SECRET_KEYS: &[&str] = &[
    "client_token",
    "token",
    "id",
    "secret_id",
    "password",
    "private_key",
    "key",
    "pem_bundle",
    "wrapping_token",
    "hmac_key",
    // `sys/audit-hash`'s input is a secret by definition.
    "input",
];

/// Keys that hold a token accessor: HMAC'd only when the device says `hmac_accessor=true`.
pub const ACCESSOR_KEYS: &[&str] = &["accessor", "client_token_accessor", "secret_id_accessor"];

/// How a device writes entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// HMAC token accessors too (Vault's default; mutual's is to keep them readable, so that
    /// the log names the token behind each decision).
    pub hmac_accessor: bool,
}

/// Who made a request: the token as it was when the request arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Caller {
    /// The token itself (HMAC'd in the entry).
    pub client_token: String,
    /// Its accessor.
    pub accessor: String,
    /// Its display name.
    pub display_name: String,
    /// Its policies.
    pub policies: Vec<String>,
    /// Its metadata (`role_name` of an AppRole login, …).
    pub metadata: Value,
    /// Seconds it was created for (0: never expires).
    pub token_ttl: u64,
    /// When it was issued (RFC 3339).
    pub token_issue_time: String,
}

/// The ACL decision on a request, as Vault writes it (`policy_results`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyResults {
    /// Whether the ACL allowed the request.
    pub allowed: bool,
    /// The policies whose rules granted it.
    pub granting_policies: Vec<String>,
}

/// What arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// The request's id (the same in its request and response entries).
    pub id: String,
    /// Vault's operation: `read`, `update`, `delete`, `list`.
    pub operation: String,
    /// The path under `/v1/`.
    pub path: String,
    /// The parameters (body and query), before HMAC.
    pub data: Value,
    /// The client's address.
    pub remote_address: String,
    /// The client's port.
    pub remote_port: u16,
    /// The mount it went to (`pki/`), when there is one.
    pub mount_point: String,
    /// The mount's type (`pki`, `approle`, `token`).
    pub mount_type: String,
}

/// What was answered.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The answer's `data`, when it has one.
    pub data: Value,
    /// The answer's `auth` (a login or a new token), when it has one.
    pub auth: Value,
    /// Its warnings.
    pub warnings: Vec<String>,
    /// The error text of a refused or failed request; empty on success.
    pub error: String,
}

/// Replaces every secret string under `v` by its HMAC (and every accessor, when asked): by key
/// (see [`SECRET_KEYS`]), and any string holding a PEM private key whatever its key (a
/// `pem_bundle` certificate, a CA's `pem_bundle` import).
pub fn redact(h: &Hasher, opts: Options, v: &mut Value) {
    redact_at(h, opts, None, v);
}

fn redact_at(h: &Hasher, opts: Options, key: Option<&str>, v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                redact_at(h, opts, Some(k), child);
            }
        }
        Value::Array(items) => {
            for child in items {
                redact_at(h, opts, key, child);
            }
        }
        Value::String(s) if !s.is_empty() && !s.starts_with(crate::hmac::PREFIX) => {
            let secret_key = key.is_some_and(|k| SECRET_KEYS.contains(&k));
            let accessor = key.is_some_and(|k| ACCESSOR_KEYS.contains(&k));
            if secret_key || (accessor && opts.hmac_accessor) || s.contains("PRIVATE KEY") {
                *s = h.hash(s);
            }
        }
        _ => {}
    }
}

fn auth_json(h: &Hasher, opts: Options, c: &Caller, results: Option<&PolicyResults>) -> Value {
    let mut auth = json!({
        "client_token": c.client_token,
        "accessor": c.accessor,
        "display_name": c.display_name,
        "policies": c.policies,
        "token_policies": c.policies,
        "metadata": c.metadata,
        "entity_id": "",
        "token_type": "service",
        "token_ttl": c.token_ttl,
        "token_issue_time": c.token_issue_time,
    });
    if let Some(r) = results {
        auth["policy_results"] = json!({
            "allowed": r.allowed,
            "granting_policies": r.granting_policies.iter().map(|p| json!({
                "name": p, "namespace_id": "root", "type": "acl",
            })).collect::<Vec<_>>(),
        });
    }
    redact(h, opts, &mut auth);
    auth
}

fn request_json(h: &Hasher, opts: Options, c: Option<&Caller>, r: &Request) -> Value {
    let mut data = r.data.clone();
    redact(h, opts, &mut data);
    let mut out = json!({
        "id": r.id,
        "client_id": "",
        "operation": r.operation,
        "mount_point": r.mount_point,
        "mount_type": r.mount_type,
        "namespace": {"id": "root"},
        "path": r.path,
        "remote_address": r.remote_address,
        "remote_port": r.remote_port,
    });
    if let Some(c) = c {
        out["client_token"] = json!(h.hash(&c.client_token));
        let accessor = if opts.hmac_accessor {
            h.hash(&c.accessor)
        } else {
            c.accessor.clone()
        };
        out["client_token_accessor"] = json!(accessor);
    }
    if !data.is_null() && data.as_object().is_none_or(|m| !m.is_empty()) {
        out["data"] = data;
    }
    out
}

fn envelope(kind: &str, time: &str, auth: Value, request: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("time".into(), json!(time));
    m.insert("type".into(), json!(kind));
    m.insert("auth".into(), auth);
    m.insert("request".into(), request);
    m
}

fn caller_auth(h: &Hasher, opts: Options, c: Option<&Caller>, p: Option<&PolicyResults>) -> Value {
    match c {
        Some(c) => auth_json(h, opts, c, p),
        None => {
            let mut a = json!({"token_type": "default"});
            if let Some(r) = p {
                a["policy_results"] = json!({"allowed": r.allowed, "granting_policies": []});
            }
            a
        }
    }
}

/// The `request` entry, written before the request is handled.
pub fn request_entry(
    h: &Hasher,
    opts: Options,
    time: &str,
    caller: Option<&Caller>,
    req: &Request,
) -> Value {
    let mut m = envelope(
        "request",
        time,
        caller_auth(h, opts, caller, None),
        request_json(h, opts, caller, req),
    );
    m.insert("error".into(), json!(""));
    Value::Object(m)
}

/// The `response` entry, written after the request was handled, with the ACL's decision when
/// one was made.
pub fn response_entry(
    h: &Hasher,
    opts: Options,
    time: &str,
    caller: Option<&Caller>,
    results: Option<&PolicyResults>,
    req: &Request,
    resp: &Response,
) -> Value {
    let mut m = envelope(
        "response",
        time,
        caller_auth(h, opts, caller, results),
        request_json(h, opts, caller, req),
    );
    let mut response = json!({
        "mount_point": req.mount_point,
        "mount_type": req.mount_type,
        "status": resp.status,
    });
    let mut data = resp.data.clone();
    redact(h, opts, &mut data);
    if !data.is_null() {
        response["data"] = data;
    }
    if !resp.auth.is_null() {
        let mut auth = resp.auth.clone();
        redact(h, opts, &mut auth);
        response["auth"] = auth;
    }
    if !resp.warnings.is_empty() {
        response["warnings"] = json!(resp.warnings);
    }
    m.insert("response".into(), response);
    m.insert("error".into(), json!(resp.error));
    Value::Object(m)
}

#[cfg(test)]
mod tests;
