//! `<mount>/ocsp`: the OCSP responder (RFC 6960), as Vault and OpenBao serve it: POST with the
//! DER request as the body, or GET with it base64-encoded (and URL-encoded) in the path. The
//! answer is signed by the mount's CA itself; the encoding lives in `mutual_pki::ocsp`.
//!
//! A request with a nonce gets an answer signed for it, echoing the nonce. A request without
//! one (RFC 5019's profile: what TLS stacks, stapling servers and Go send) may get an answer
//! signed earlier for the same request, as RFC 6960 allows pre-produced responses: for at most
//! [`REUSE`], and never across a revocation (the revoked set's generation must not have moved).
//!
//! A GET of such an answer carries RFC 5019's caching headers (§6.2), so that an HTTP cache in
//! front of the responder (nginx, a CDN before `--public-listen`) may serve it: `ETag`,
//! `Last-Modified` (thisUpdate), `Expires` (nextUpdate) and a `max-age` of what is left of
//! [`REUSE`], no longer, so that a cache serves an answer no longer than the responder would.
//! (A cache, unlike the responder, does not see a revocation: it may serve the old answer for
//! what is left of that minute. OCSP clients themselves may keep it until its nextUpdate.)
//! Any other answer to a GET (one bound to a nonce, or an error) is `no-store`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    http::{header, HeaderValue, Method},
    response::IntoResponse,
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
    /// Its thisUpdate.
    this_update: OffsetDateTime,
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

/// How an answer may be cached by HTTP caches.
enum Caching {
    /// An answer to a request without a nonce, signed at this thisUpdate.
    Reusable(OffsetDateTime),
    /// Anything else.
    Never,
}

/// The answer as sent: to a GET with its caching headers (POST answers are not cached by HTTP
/// caches, and clients that POST send none of the conditional headers).
fn reply(method: &Method, body: Vec<u8>, caching: Caching) -> Reply {
    if *method != Method::GET {
        return Reply::Raw {
            content_type: CONTENT_TYPE,
            body,
        };
    }
    let mut headers = vec![(header::CONTENT_TYPE, CONTENT_TYPE.to_string())];
    match caching {
        Caching::Reusable(this_update) => {
            let age = OffsetDateTime::now_utc() - this_update;
            headers.extend([
                (header::ETAG, crate::conditional::etag(&body)),
                (header::LAST_MODIFIED, http_date(this_update)),
                (header::EXPIRES, http_date(this_update + VALIDITY)),
                (
                    header::CACHE_CONTROL,
                    format!(
                        "max-age={}, public, no-transform, must-revalidate",
                        fresh_for(age)
                    ),
                ),
            ]);
        }
        Caching::Never => headers.push((header::CACHE_CONTROL, "no-store".to_string())),
    }
    let mut response = body.into_response();
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::try_from(value) {
            response.headers_mut().insert(name, v);
        }
    }
    Reply::Response(response)
}

/// Whole seconds an answer of this age may still be served from a cache: what is left of
/// [`REUSE`] (none for an answer from the future, whose clock cannot be trusted).
fn fresh_for(age: time::Duration) -> u64 {
    if age.is_negative() {
        return 0;
    }
    let reuse = REUSE.as_secs() as i64;
    (reuse - age.whole_seconds()).clamp(0, reuse) as u64
}

/// An HTTP date (RFC 9110 §5.6.7's IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
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
    method: &Method,
    raw_path: &str,
    body: &[u8],
) -> Result<Reply, ApiError> {
    let der = match *method {
        Method::POST => Some(body.to_vec()),
        Method::GET => get_request(raw_path, &mount.record.path),
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let malformed = |why: &str| {
        Counters::bump(&app.counters.ocsp[3]);
        tracing::info!(mount = %mount.record.path, decision = "malformed", reason = why, "ocsp");
        reply(method, ocsp::malformed_request(), Caching::Never)
    };
    let Some(der) = der else {
        return Ok(malformed("the path holds no base64 request"));
    };
    let req = match ocsp::parse_request(&der) {
        Ok(r) => r,
        Err(e) => return Ok(malformed(&e.to_string())),
    };
    let Some(ca) = mount.ca.clone() else {
        return Ok(reply(method, ocsp::internal_error(), Caching::Never));
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
            return Ok(reply(
                method,
                k.der.to_vec(),
                Caching::Reusable(k.this_update),
            ));
        }
    }
    let Some(mut issuer) = mount.ocsp_issuer() else {
        return Ok(reply(method, ocsp::internal_error(), Caching::Never));
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
    let this_update = OffsetDateTime::now_utc();
    let signed = cpu(heavy, move || {
        Ok(ocsp::respond(
            &issuer,
            &ca.key,
            &req,
            &statuses,
            this_update,
            VALIDITY,
        )?)
    })
    .await;
    match signed {
        Ok(signed) if reusable => {
            let kept = Kept {
                der: Arc::new(signed.clone()),
                statuses: counted,
                signed: Instant::now(),
                this_update,
                generation,
            };
            app.answers.put(&mount.record.path, der, kept);
            Ok(reply(method, signed, Caching::Reusable(this_update)))
        }
        Ok(signed) => Ok(reply(method, signed, Caching::Never)),
        Err(e) => {
            tracing::error!(error = %e, "ocsp: signing the answer failed");
            Ok(reply(method, ocsp::internal_error(), Caching::Never))
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

#[cfg(test)]
mod tests {
    use super::{fresh_for, http_date};
    use time::{macros::datetime, Duration};

    #[test]
    fn a_cache_may_serve_an_answer_for_what_is_left_of_the_reuse_window() {
        // (age of the answer, max-age)
        let cases = [
            (Duration::ZERO, 60),
            (Duration::milliseconds(999), 60),
            (Duration::seconds(1), 59),
            (Duration::seconds(59), 1),
            (Duration::seconds(60), 0),
            (Duration::hours(2), 0),
            (Duration::seconds(-5), 0),
        ];
        for (age, want) in cases {
            assert_eq!(fresh_for(age), want, "{age}");
        }
    }

    #[test]
    fn http_dates_are_imf_fixdates_in_gmt() {
        // RFC 9110 §5.6.7's example, and one given in another offset.
        assert_eq!(
            http_date(datetime!(1994-11-06 08:49:37 UTC)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            http_date(datetime!(2026-12-02 07:05:09 +02:00)),
            "Wed, 02 Dec 2026 05:05:09 GMT"
        );
    }
}
