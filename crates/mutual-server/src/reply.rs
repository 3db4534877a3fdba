//! What a handler answers, and Vault's envelope around it: `{"request_id", "lease_id",
//! "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"}`.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

/// A successful answer.
#[derive(Debug)]
pub enum Reply {
    /// `{"data": …}` in Vault's envelope, with warnings.
    Data {
        /// The `data` object.
        data: Value,
        /// The `warnings` list (null when empty).
        warnings: Vec<String>,
    },
    /// `sys/` answers, whose fields Vault repeats at the top level beside `data`.
    Sys(Value),
    /// A bare JSON document (`sys/health`, `sys/seal-status`).
    Bare(StatusCode, Value),
    /// Bytes with a content type (`ca`, `crl`, `ca/pem`, `crl/pem`).
    Raw {
        /// Content-Type.
        content_type: &'static str,
        /// Body.
        body: Vec<u8>,
    },
    /// `{"auth": …}` for token creation.
    Auth(Value),
    /// 202 with warnings only (`tidy`).
    Accepted(Vec<String>),
    /// 204 No Content.
    NoContent,
    /// A response built by its handler (a server-sent event stream).
    Response(Response),
}

impl Reply {
    /// `data` without warnings.
    pub fn data(data: Value) -> Reply {
        Reply::Data {
            data,
            warnings: vec![],
        }
    }
}

static SEQ: AtomicU64 = AtomicU64::new(0);

fn request_id() -> String {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).expect("the system random generator failed");
        u64::from_le_bytes(b)
    });
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let h = format!("{seed:016x}{n:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn envelope(data: Value, warnings: Vec<String>, auth: Value) -> Value {
    json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": if warnings.is_empty() { Value::Null } else { json!(warnings) },
        "auth": auth,
    })
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Data { data, warnings } => {
                Json(envelope(data, warnings, Value::Null)).into_response()
            }
            Reply::Sys(data) => {
                let mut body = envelope(data.clone(), vec![], Value::Null);
                if let (Value::Object(top), Value::Object(fields)) = (&mut body, data) {
                    for (k, v) in fields {
                        top.entry(k).or_insert(v);
                    }
                }
                Json(body).into_response()
            }
            Reply::Bare(status, v) => (status, Json(v)).into_response(),
            Reply::Raw { content_type, body } => {
                ([(header::CONTENT_TYPE, content_type)], body).into_response()
            }
            Reply::Auth(auth) => Json(envelope(Value::Null, vec![], auth)).into_response(),
            Reply::Accepted(warnings) => (
                StatusCode::ACCEPTED,
                Json(envelope(Value::Null, warnings, Value::Null)),
            )
                .into_response(),
            Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
            Reply::Response(r) => r,
        }
    }
}
