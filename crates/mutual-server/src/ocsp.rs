//! `<mount>/ocsp`: the OCSP responder (RFC 6960), as Vault and OpenBao serve it: POST with the
//! DER request as the body, or GET with it base64-encoded (and URL-encoded) in the path. The
//! answer is signed by the mount's CA itself; the encoding lives in `mutual_pki::ocsp`.
//!
//! A request with a nonce gets an answer signed for it, echoing the nonce. A request without
//! one (RFC 5019's profile: what TLS stacks, stapling servers and Go send) may get an answer
//! signed earlier for the same request, as RFC 6960 allows pre-produced responses: for at most
//! [`REUSE`], and never across a revocation (the revoked set's generation must not have moved).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine;
use mutual_pki::ocsp::{self, OcspRequest, Status};
use time::OffsetDateTime;

use crate::{
    certindex::Lookup,
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

/// How long a signed answer to a request without a nonce is served again (its thisUpdate is
/// then at most this old, against a nextUpdate an hour ahead).
const REUSE: Duration = Duration::from_secs(60);
/// Signed answers kept at most (the map is emptied when full).
const KEPT: usize = 4096;

/// Signed answers to requests without a nonce, by mount and request bytes.
#[derive(Debug, Default)]
pub(crate) struct Answers {
    kept: Mutex<HashMap<(String, Vec<u8>), Kept>>,
}

#[derive(Debug, Clone)]
struct Kept {
    der: Arc<Vec<u8>>,
    /// The statuses it carries, as counter indices.
    statuses: Vec<usize>,
    signed: Instant,
    generation: u64,
}

impl Answers {
    fn get(&self, mount: &str, request: &[u8], generation: u64) -> Option<Kept> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let k = kept.get(&(mount.to_string(), request.to_vec()))?;
        (k.generation == generation && k.signed.elapsed() < REUSE).then(|| k.clone())
    }

    fn put(&self, mount: &str, request: Vec<u8>, kept: Kept) {
        let mut all = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() >= KEPT {
            all.clear();
        }
        all.insert((mount.to_string(), request), kept);
    }
}

fn counter_index(s: &Status) -> usize {
    match s {
        Status::Good => 0,
        Status::Revoked { .. } => 1,
        Status::Unknown => 2,
    }
}

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
    // Read before the statuses: a revocation after this point makes the answer not reusable.
    let generation = app.certs.generation();
    let reusable = req.nonce().is_none();
    if reusable {
        if let Some(k) = app.answers.get(&mount.record.path, &der, generation) {
            for i in &k.statuses {
                Counters::bump(&app.counters.ocsp[*i]);
            }
            Counters::bump(&app.counters.ocsp_reused);
            return Ok(answer(k.der.to_vec()));
        }
    }
    let Some(mut issuer) = mount.ocsp_issuer() else {
        return Ok(answer(ocsp::internal_error()));
    };
    let mut ca = ca;
    // A query about another issuer of the mount (the old one after a rotation) is answered,
    // and signed, by that issuer.
    if let Some(q) = req.queries.first().filter(|q| !issuer.issued(q)) {
        if let Some((other, other_ca)) = mount.other_ocsp_signer(q) {
            issuer = other;
            ca = other_ca;
        }
    }
    let statuses = statuses(app, mount, &issuer, &req).await?;
    let counted: Vec<usize> = statuses.iter().map(counter_index).collect();
    for i in &counted {
        Counters::bump(&app.counters.ocsp[*i]);
        let name = ["good", "revoked", "unknown"][*i];
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
        Ok(signed) => {
            if reusable {
                let kept = Kept {
                    der: Arc::new(signed.clone()),
                    statuses: counted,
                    signed: Instant::now(),
                    generation,
                };
                app.answers.put(&mount.record.path, der, kept);
            }
            Ok(answer(signed))
        }
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
        let status = match app.certs.lookup(&app.store, &q.serial).await? {
            Lookup::Found { issued, revoked } if issued.ca == mount.record.path => match revoked {
                Some(r) => Status::Revoked {
                    at: r.at,
                    reason: r.reason,
                },
                None => Status::Good,
            },
            Lookup::Found { .. } | Lookup::Unknown => Status::Unknown,
        };
        out.push(status);
    }
    Ok(out)
}
