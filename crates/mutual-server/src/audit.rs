//! `sys/audit`: audit devices (Vault's `file` type) and the writing of every request and
//! response to them. What an entry holds and what is HMAC'd is `mutual_auth::audit`'s; this
//! module only gathers the facts of a request, asks for the lines and appends them.
//!
//! As in Vault, a request is logged before it is handled and fails with a 500 when no device
//! can take its entry (it is then not handled at all); a response that cannot be logged turns
//! into a 500 as well. With no device enabled nothing is buffered and nothing is written.

use std::{
    fs::{File, OpenOptions},
    io::Write,
    net::SocketAddr,
    os::unix::fs::OpenOptionsExt,
    sync::{Arc, Mutex, RwLock},
};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request},
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use mutual_auth::{
    audit::{self, Caller, Options, PolicyResults},
    hmac::Hasher,
};
use mutual_store::{AuditDevice, TokenRecord};
use serde_json::{json, Map, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{error::ApiError, params::Params, reply::Reply, state::App, Op};

/// Paths Vault answers outside its router, and so never audits.
const UNAUDITED: &[&str] = &["sys/health", "sys/seal-status", "sys/leader"];

/// Where a device writes.
#[derive(Debug)]
enum Sink {
    File(Mutex<Option<File>>),
    Stdout,
    Discard,
}

/// An enabled device.
#[derive(Debug)]
pub(crate) struct Device {
    record: AuditDevice,
    file_path: String,
    mode: u32,
    hasher: Hasher,
    opts: Options,
    sink: Sink,
}

/// Every enabled device.
#[derive(Debug, Default)]
pub(crate) struct Devices(RwLock<Vec<Arc<Device>>>);

fn open(path: &str, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(mode)
        .open(path)
}

impl Device {
    fn new(record: AuditDevice) -> Result<Device, ApiError> {
        let options: Map<String, Value> = serde_json::from_str(&record.options).unwrap_or_default();
        let get = |k: &str| options.get(k).and_then(Value::as_str).unwrap_or("");
        let file_path = get("file_path").to_string();
        if file_path.is_empty() {
            return Err(ApiError::bad("file_path is required"));
        }
        let mode = match get("mode") {
            "" => 0o600,
            m => u32::from_str_radix(m, 8).map_err(|_| {
                ApiError::bad(format!("invalid mode \"{m}\" (expected octal, e.g. 0600)"))
            })?,
        };
        let hmac_accessor = match get("hmac_accessor") {
            "" | "false" => false,
            "true" => true,
            v => {
                return Err(ApiError::bad(format!(
                    "invalid hmac_accessor \"{v}\" (expected true or false)"
                )))
            }
        };
        for (k, v) in &options {
            let known = ["file_path", "mode", "hmac_accessor", "format"].contains(&k.as_str());
            if !known || (k == "format" && v.as_str() != Some("json")) {
                return Err(ApiError::bad(format!(
                    "audit option \"{k}\" = {v} is not supported by mutual (file_path, mode, hmac_accessor and format=json are)"
                )));
            }
        }
        let sink = match file_path.as_str() {
            "stdout" => Sink::Stdout,
            "discard" => Sink::Discard,
            path => Sink::File(Mutex::new(Some(open(path, mode).map_err(|e| {
                ApiError::bad(format!(
                    "sanity check failed; unable to open \"{path}\" for writing: {e}"
                ))
            })?))),
        };
        Ok(Device {
            hasher: Hasher::new(&record.salt),
            opts: Options { hmac_accessor },
            file_path,
            mode,
            record,
            sink,
        })
    }

    fn write(&self, line: &str) -> std::io::Result<()> {
        match &self.sink {
            Sink::Discard => Ok(()),
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()
            }
            Sink::File(f) => {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(file) = f.as_mut() {
                    if file.write_all(line.as_bytes()).is_ok() {
                        return Ok(());
                    }
                }
                // Moved away by a rotation, or the disk was full: one fresh open, as Vault
                // reopens on failure, then give up on this entry.
                let mut file = open(&self.file_path, self.mode)?;
                let written = file.write_all(line.as_bytes());
                *f = Some(file);
                written
            }
        }
    }

    fn json(&self) -> Value {
        json!({
            "type": self.record.kind,
            "description": self.record.description,
            "options": serde_json::from_str::<Value>(&self.record.options).unwrap_or(json!({})),
            "path": format!("{}/", self.record.path),
            "local": false,
        })
    }
}

impl Devices {
    fn all(&self) -> Vec<Arc<Device>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Writes one entry (made per device, with its salt) to every device: Ok when at least
    /// one took it, as Vault's broker does.
    fn log(&self, entry: impl Fn(&Hasher, Options) -> Value) -> Result<(), ApiError> {
        let devices = self.all();
        if devices.is_empty() {
            // The last device was disabled by this very request.
            return Ok(());
        }
        let mut failures = Vec::new();
        for d in &devices {
            let line = format!("{}\n", entry(&d.hasher, d.opts));
            match d.write(&line) {
                Ok(()) => return self.log_rest(&devices, d, &entry),
                Err(e) => failures.push(format!("{}: {e}", d.record.path)),
            }
        }
        tracing::error!(failures = ?failures, "no audit device could write an entry");
        Err(ApiError::Audit)
    }

    fn log_rest(
        &self,
        devices: &[Arc<Device>],
        done: &Arc<Device>,
        entry: &impl Fn(&Hasher, Options) -> Value,
    ) -> Result<(), ApiError> {
        for d in devices.iter().filter(|d| !Arc::ptr_eq(d, done)) {
            let line = format!("{}\n", entry(&d.hasher, d.opts));
            if let Err(e) = d.write(&line) {
                tracing::warn!(device = %d.record.path, error = %e, "audit device failed");
            }
        }
        Ok(())
    }
}

impl App {
    /// Loads the stored audit devices (at startup).
    pub(crate) async fn load_audit(&self) -> Result<(), ApiError> {
        let mut all = Vec::new();
        for record in self.store.list_audit_devices().await? {
            let path = record.path.clone();
            match Device::new(record) {
                Ok(d) => all.push(Arc::new(d)),
                // Refusing to start would lock the operator out of `sys/audit` itself: the
                // device is left out, loudly, and requests fail only if no device remains.
                Err(e) => tracing::error!(device = %path, error = %e, "audit device not loaded"),
            }
        }
        *self.audit.0.write().unwrap_or_else(|e| e.into_inner()) = all;
        Ok(())
    }

    /// `mutual server --audit-log FILE`: a `file` device at `file/` writing to `path`
    /// (enabled once; a stored one pointing elsewhere is pointed at `path`).
    pub async fn audit_to_file(&self, path: &std::path::Path) -> Result<(), ApiError> {
        let file_path = path.to_string_lossy().into_owned();
        let existing = self
            .audit
            .all()
            .into_iter()
            .find(|d| d.record.path == "file");
        if existing.as_ref().is_some_and(|d| d.file_path == file_path) {
            return Ok(());
        }
        if existing.is_some() {
            self.store.disable_audit_device("file").await?;
        }
        enable(self, "file", "file", "", json!({ "file_path": file_path })).await
    }

    /// True when at least one audit device is enabled.
    pub(crate) fn audited(&self) -> bool {
        !self
            .audit
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

fn salt() -> Result<Vec<u8>, ApiError> {
    let mut b = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut b)
        .map_err(|_| ApiError::bad("the system random generator failed"))?;
    Ok(b)
}

async fn enable(
    app: &App,
    path: &str,
    kind: &str,
    description: &str,
    options: Value,
) -> Result<(), ApiError> {
    if kind != "file" {
        return Err(ApiError::bad(format!(
            "mutual has the \"file\" audit device only, not \"{kind}\""
        )));
    }
    let options: Map<String, Value> = match options {
        Value::Object(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(_) => (k, v),
                other => (k, json!(other.to_string())),
            })
            .collect(),
        _ => Map::new(),
    };
    let record = AuditDevice {
        path: path.to_string(),
        kind: kind.to_string(),
        description: description.to_string(),
        options: Value::Object(options).to_string(),
        salt: salt()?,
    };
    let device = Device::new(record.clone())?;
    app.store
        .enable_audit_device(&record)
        .await
        .map_err(|e| match e {
            mutual_store::StoreError::Duplicate { .. } => {
                ApiError::bad(format!("path already in use at \"{path}/\""))
            }
            other => other.into(),
        })?;
    app.audit
        .0
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::new(device));
    Ok(())
}

/// `sys/audit`, `sys/audit/:path`, `sys/audit-hash/:path` (the caller is authorized, sudo
/// included).
pub(crate) async fn handle(app: &App, op: Op, path: &str, p: &Params) -> Result<Reply, ApiError> {
    if let Some(name) = path.strip_prefix("sys/audit-hash/") {
        let name = name.trim_matches('/');
        let d = app
            .audit
            .all()
            .into_iter()
            .find(|d| d.record.path == name)
            .ok_or_else(|| ApiError::bad(format!("unknown audit backend \"{name}/\"")))?;
        let input = p.string("input").unwrap_or_default();
        return Ok(Reply::Sys(json!({ "hash": d.hasher.hash(&input) })));
    }
    let name = path.trim_start_matches("sys/audit").trim_matches('/');
    match (op, name) {
        (Op::Read, "") => {
            let mut all = Map::new();
            for d in app.audit.all() {
                all.insert(format!("{}/", d.record.path), d.json());
            }
            Ok(Reply::Sys(Value::Object(all)))
        }
        (Op::Write, name) if !name.is_empty() => {
            let options = p.to_map().remove("options").unwrap_or(Value::Null);
            enable(
                app,
                name,
                &p.str_or("type", ""),
                &p.str_or("description", ""),
                options,
            )
            .await?;
            Ok(Reply::NoContent)
        }
        (Op::Delete, name) if !name.is_empty() => {
            app.store.disable_audit_device(name).await?;
            app.audit
                .0
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|d| d.record.path != name);
            Ok(Reply::NoContent)
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

tokio::task_local! {
    /// The ACL decision of the request being handled, for its response entry.
    static DECISION: Arc<Mutex<Option<PolicyResults>>>;
}

/// Records the ACL's decision on the current request (nothing when it is not audited).
pub(crate) fn note_decision(allowed: bool, granting: Vec<String>) {
    let _ = DECISION.try_with(|d| {
        *d.lock().unwrap_or_else(|e| e.into_inner()) = Some(PolicyResults {
            allowed,
            granting_policies: granting,
        })
    });
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn request_id() -> String {
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

fn caller(t: &TokenRecord, secret: &str) -> Caller {
    Caller {
        client_token: secret.to_string(),
        accessor: t.accessor.clone(),
        display_name: t.display_name.clone(),
        policies: crate::tokens::effective_policies(t),
        metadata: if t.lease.meta.is_empty() {
            Value::Null
        } else {
            json!(t.lease.meta)
        },
        token_ttl: t.lease.ttl,
        token_issue_time: t.created_at.format(&Rfc3339).unwrap_or_default(),
    }
}

/// Which mount a path goes to, as Vault names it in entries (`pki/`, `auth/approle/`).
async fn mount_of(app: &App, path: &str) -> (String, String) {
    if let Some((m, _)) = app.route(path) {
        return (format!("{}/", m.record.path), m.record.kind.clone());
    }
    if path.starts_with("sys/") {
        return ("sys/".into(), "system".into());
    }
    if let Some(rest) = path.strip_prefix("auth/") {
        if rest.starts_with("token/") {
            return ("auth/token/".into(), "token".into());
        }
        if rest.starts_with("cert/") {
            return ("auth/cert/".into(), "cert".into());
        }
        if let Ok(mounts) = app.store.list_auth_mounts().await {
            for m in mounts {
                if rest == m.path || rest.starts_with(&format!("{}/", m.path)) {
                    return (format!("auth/{}/", m.path), m.kind);
                }
            }
        }
    }
    (String::new(), String::new())
}

fn failure(e: ApiError) -> Response {
    e.into_response()
}

/// Handles `req` with `next`, writing its request entry first and its response entry after,
/// when audit devices are enabled.
pub(crate) async fn around<F, Fut>(app: &Arc<App>, req: Request<Body>, next: F) -> Response
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    // Without a device, nothing is read twice and nothing is buffered.
    if !app.audited() {
        return next(req).await;
    }
    let raw = req.uri().path();
    let path = crate::params::percent_decode(
        raw.strip_prefix("/v1/")
            .unwrap_or(raw)
            .trim_end_matches('/'),
        false,
    );
    if UNAUDITED.contains(&path.as_str()) || !raw.starts_with("/v1/") {
        return next(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, app.body_limit).await else {
        return failure(ApiError::TooLarge);
    };
    let params = Params::parse(&bytes, parts.uri.query())
        .map(|p| Value::Object(p.to_map().into_iter().collect()))
        .unwrap_or(Value::Null);
    let listing = params
        .get("list")
        .and_then(|v| v.as_str().map(|s| s == "true").or(v.as_bool()));
    let operation = match parts.method.as_str() {
        "GET" | "HEAD" if listing == Some(true) => "list",
        "GET" | "HEAD" => "read",
        "DELETE" => "delete",
        "LIST" => "list",
        _ => "update",
    };
    let secret = crate::token_of(&parts.headers);
    let who = match secret.as_deref() {
        Some(s) if !s.is_empty() => app.token(Some(s)).await.ok().map(|t| caller(&t, s)),
        _ => None,
    };
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let (mount_point, mount_type) = mount_of(app, &path).await;
    let request = audit::Request {
        id: request_id(),
        operation: operation.into(),
        path,
        data: params,
        remote_address: remote.map(|r| r.ip().to_string()).unwrap_or_default(),
        remote_port: remote.map_or(0, |r| r.port()),
        mount_point,
        mount_type,
    };
    let time = now();
    if let Err(e) = app
        .audit
        .log(|h, o| audit::request_entry(h, o, &time, who.as_ref(), &request))
    {
        return failure(e);
    }
    let decision = Arc::new(Mutex::new(None));
    let req = Request::from_parts(parts, Body::from(bytes));
    let response = DECISION.scope(decision.clone(), next(req)).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let (resp_parts, body) = response.into_parts();
    let (body, answer) = if is_json {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(b) => {
                let v: Value = serde_json::from_slice(&b).unwrap_or(Value::Null);
                (Body::from(b), v)
            }
            Err(_) => return failure(ApiError::Audit),
        }
    } else {
        (body, Value::Null)
    };
    let mut data = answer.get("data").cloned().unwrap_or(Value::Null);
    if data.is_null() && answer.get("auth").is_none() && answer.get("errors").is_none() {
        data = answer.clone();
    }
    let outcome = audit::Response {
        status: resp_parts.status.as_u16(),
        data,
        auth: answer.get("auth").cloned().unwrap_or(Value::Null),
        warnings: answer
            .get("warnings")
            .and_then(Value::as_array)
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        error: answer
            .get("errors")
            .and_then(Value::as_array)
            .map(|e| {
                let text: Vec<&str> = e.iter().filter_map(Value::as_str).collect();
                if text.is_empty() && resp_parts.status == StatusCode::NOT_FOUND {
                    "not found".to_string()
                } else {
                    text.join("; ")
                }
            })
            .unwrap_or_default(),
    };
    let results = decision.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let time = now();
    if let Err(e) = app.audit.log(|h, o| {
        audit::response_entry(
            h,
            o,
            &time,
            who.as_ref(),
            results.as_ref(),
            &request,
            &outcome,
        )
    }) {
        return failure(e);
    }
    Response::from_parts(resp_parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(options: Value) -> Result<Device, String> {
        Device::new(AuditDevice {
            path: "file".into(),
            kind: "file".into(),
            description: String::new(),
            options: options.to_string(),
            salt: vec![7; 32],
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn device_options_are_checked_when_enabled() {
        let cases: Vec<(Value, Result<(), &str>)> = vec![
            (json!({"file_path": "discard"}), Ok(())),
            (json!({"file_path": "stdout", "hmac_accessor": "true", "format": "json"}), Ok(())),
            (json!({}), Err("file_path is required")),
            (
                json!({"file_path": "discard", "mode": "rw"}),
                Err("invalid mode \"rw\" (expected octal, e.g. 0600)"),
            ),
            (
                json!({"file_path": "discard", "hmac_accessor": "maybe"}),
                Err("invalid hmac_accessor \"maybe\" (expected true or false)"),
            ),
            (
                json!({"file_path": "discard", "log_raw": "true"}),
                Err("audit option \"log_raw\" = \"true\" is not supported by mutual (file_path, mode, hmac_accessor and format=json are)"),
            ),
            (
                json!({"file_path": "/nonexistent-dir/audit.log"}),
                Err("sanity check failed; unable to open \"/nonexistent-dir/audit.log\" for writing: No such file or directory (os error 2)"),
            ),
        ];
        for (options, want) in cases {
            let got = device(options.clone()).map(|_| ());
            assert_eq!(got, want.map_err(String::from), "{options}");
        }
        assert!(
            device(json!({"file_path": "discard", "hmac_accessor": "true"}))
                .unwrap()
                .opts
                .hmac_accessor
        );
    }

    #[test]
    fn a_device_appends_lines_and_a_failing_one_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let d = device(json!({ "file_path": path.to_str().unwrap() })).unwrap();
        d.write("one\n").unwrap();
        d.write("two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let full = device(json!({"file_path": "/dev/full"})).unwrap();
        assert!(full.write("x\n").is_err());
    }
}
