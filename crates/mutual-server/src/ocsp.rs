//! `<mount>/ocsp`: the OCSP responder (RFC 6960), as Vault and OpenBao serve it: POST with the
//! DER request as the body, or GET with it base64-encoded (and URL-encoded) in the path. The
//! answer is signed by the mount's CA itself; the encoding lives in `mutual_pki::ocsp`.

use std::time::Duration;

use base64::Engine;
use mutual_pki::ocsp::{self, OcspRequest, Status};
use mutual_store::StoreError;
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    lifecycle::Counters,
    params,
    pki::{cpu, is_rsa},
    reply::Reply,
    state::{App, Mount},
};

/// nextUpdate − thisUpdate of every answer: how long a client may cache it. Short, because
/// the revocation feed is the fast path and OCSP the one every TLS stack understands.
pub(crate) const VALIDITY: Duration = Duration::from_secs(3600);

const CONTENT_TYPE: &str = "application/ocsp-response";

fn answer(body: Vec<u8>) -> Reply {
    Reply::Raw {
        content_type: CONTENT_TYPE,
        body,
    }
}

/// The DER request of a GET: the path after `ocsp/`, URL-decoded, then base64 (standard or
/// URL-safe alphabet, padded or not, as clients differ).
fn get_request(raw_path: &str, mount: &str) -> Option<Vec<u8>> {
    let encoded = raw_path.strip_prefix(&format!("/v1/{mount}/ocsp/"))?;
    let text = params::percent_decode(encoded, false);
    let text = text.trim().trim_end_matches('=');
    let engines = [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines.iter().find_map(|e| e.decode(text).ok())
}

/// Answers one OCSP request; every failure of the request itself is an OCSP
/// `malformedRequest`, never an HTTP error, because OCSP clients read only the OCSP status.
pub(crate) async fn handle(
    app: &App,
    mount: &Mount,
    method: &axum::http::Method,
    raw_path: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let der = match *method {
        axum::http::Method::POST => Some(body.to_vec()),
        axum::http::Method::GET => get_request(raw_path, &mount.record.path),
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let malformed = |why: &str| {
        Counters::bump(&app.counters.ocsp[3]);
        tracing::info!(mount = %mount.record.path, decision = "malformed", reason = why, "ocsp");
        answer(ocsp::malformed_request())
    };
    let Some(der) = der else {
        return Ok(malformed("the path holds no base64 request"));
    };
    let req = match ocsp::parse_request(&der) {
        Ok(r) => r,
        Err(e) => return Ok(malformed(&e.to_string())),
    };
    let Some(ca) = mount.ca.clone() else {
        return Ok(answer(ocsp::internal_error()));
    };
    let issuer = match ocsp::Issuer::new(&ca.cert_der) {
        Ok(i) => i,
        Err(_) => return Ok(answer(ocsp::internal_error())),
    };
    let statuses = statuses(app, mount, &issuer, &req).await?;
    for s in &statuses {
        let (i, name) = match s {
            Status::Good => (0, "good"),
            Status::Revoked { .. } => (1, "revoked"),
            Status::Unknown => (2, "unknown"),
        };
        Counters::bump(&app.counters.ocsp[i]);
        tracing::debug!(mount = %mount.record.path, status = name, "ocsp");
    }
    let heavy = is_rsa(ca.key.key_type().kind());
    let signed = cpu(heavy, move || {
        Ok(ocsp::respond(
            &issuer,
            &ca.key,
            &req,
            &statuses,
            OffsetDateTime::now_utc(),
            VALIDITY,
        )?)
    })
    .await;
    match signed {
        Ok(der) => Ok(answer(der)),
        Err(e) => {
            tracing::error!(error = %e, "ocsp: signing the answer failed");
            Ok(answer(ocsp::internal_error()))
        }
    }
}

/// Good, revoked or unknown for each query: unknown when the CertID names another issuer or
/// the serial is not one this mount issued.
async fn statuses(
    app: &App,
    mount: &Mount,
    issuer: &ocsp::Issuer,
    req: &OcspRequest,
) -> Result<Vec<Status>, ApiError> {
    let mut out = Vec::with_capacity(req.queries.len());
    for q in &req.queries {
        if !issuer.issued(q) {
            out.push(Status::Unknown);
            continue;
        }
        let status = match app.store.get_cert(&q.serial).await {
            Ok(rec) if rec.ca == mount.record.path => match (rec.revoked_at, rec.reason) {
                (Some(at), reason) => Status::Revoked {
                    at,
                    reason: reason.unwrap_or_default(),
                },
                _ => Status::Good,
            },
            Ok(_) | Err(StoreError::NotFound { .. }) => Status::Unknown,
            Err(e) => return Err(e.into()),
        };
        out.push(status);
    }
    Ok(out)
}
