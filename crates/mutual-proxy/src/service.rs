//! One request through the proxy: route by Host and path (Host held to the SNI), authorize the
//! caller by the route's matchers, forward with the identity headers set and forged ones
//! stripped, and turn every failure into a status with a reason: 400, 403, 404, 413, 421, 502,
//! 504.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use mutual_tls::PeerIdentity;

use crate::config::Protocol;
use crate::headers::{self, Forwarded};
use crate::route::{self, NoRoute};
use crate::upstream::UpBody;
use crate::Proxy;

/// Largest refused body still read before the 413 is sent (see `handle`).
const DRAIN_LIMIT: u64 = 1024 * 1024;
/// How long reading a refused body may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// What is known of a connection once its handshake is done.
#[derive(Debug)]
pub struct Conn {
    /// The proxy.
    pub proxy: Arc<Proxy>,
    /// Index of the listener.
    pub listener: usize,
    /// The verified caller.
    pub peer: Arc<PeerIdentity>,
    /// Its address.
    pub remote: SocketAddr,
    /// The server name it asked for.
    pub sni: Option<String>,
    /// Its XFCC element, made once per connection.
    pub xfcc: String,
    /// RFC 9440 `Client-Cert` and `Client-Cert-Chain`, when the listener sends them.
    pub client_cert: Option<(String, String)>,
}

fn local(status: StatusCode, body: String) -> Response<UpBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// The error and its causes on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn is_body_limit(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cur = c.source();
    }
    false
}

struct Outcome {
    status: StatusCode,
    route: String,
    decision: &'static str,
    reason: Option<String>,
    server: Option<String>,
}

/// Handles one request.
pub async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<UpBody> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let (resp, out) = forward(&conn, req).await;
    let proxy = &conn.proxy;
    proxy
        .metrics
        .request(&out.route, out.status.as_u16(), out.decision);
    if proxy.access_log() {
        tracing::info!(
            target: "mutual::access",
            method = %method,
            peer.cn = conn.peer.name(),
            peer.issuer = conn.peer.issuer_name(),
            peer.addr = %conn.remote,
            path = %path,
            route = %out.route,
            decision = out.decision,
            status = out.status.as_u16(),
            reason = out.reason.as_deref().unwrap_or(""),
            upstream = out.server.as_deref().unwrap_or(""),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
    }
    resp
}

async fn forward(conn: &Conn, req: Request<Incoming>) -> (Response<UpBody>, Outcome) {
    let rt = conn.proxy.runtime();
    let lc = &rt.config.listeners[conn.listener];
    let mut out = Outcome {
        status: StatusCode::OK,
        route: "-".into(),
        decision: "allow",
        reason: None,
        server: None,
    };
    let refuse = |mut out: Outcome, status: StatusCode, decision: &'static str, reason: String| {
        out.status = status;
        out.decision = decision;
        out.reason = Some(reason.clone());
        (local(status, format!("{reason}\n")), out)
    };
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(String::from)
        });
    let Some(authority) = authority else {
        return refuse(
            out,
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request has no Host".into(),
        );
    };
    let host = route::host_of(&authority);
    let (_, route) = match route::select(&lc.routes, conn.sni.as_deref(), &host, req.uri().path()) {
        Ok(r) => r,
        Err(e) => {
            let (status, decision) = match e {
                NoRoute::NotFound { .. } => (StatusCode::NOT_FOUND, "no_route"),
                _ => (StatusCode::MISDIRECTED_REQUEST, "misdirected"),
            };
            return refuse(out, status, decision, e.to_string());
        }
    };
    out.route = route.name.clone();
    if let Err(denial) = route.policy.authorize(&conn.peer) {
        return refuse(
            out,
            StatusCode::FORBIDDEN,
            "deny",
            format!(
                "{denial} (route {}, issued by {})",
                route.name,
                conn.peer.issuer_name()
            ),
        );
    }
    let max_body = lc.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        // Read and drop a modest body before answering: closing with the upload unread makes
        // the kernel reset the connection, and the client sees a reset instead of the 413
        // (nginx's lingering close exists for the same reason). Bounded in size and time.
        if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
            let mut body = req.into_body();
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        break;
                    }
                }
            })
            .await;
        }
        return refuse(
            out,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {max_body} bytes"),
        );
    }
    let upstream = Arc::clone(&rt.upstreams[route.upstream]);
    let timeout = lc.limits.request_timeout;
    let client_cert_headers = lc.client_cert_headers;
    drop(rt);

    let pick = upstream.pick();
    let server = pick.authority().to_string();
    out.server = Some(server.clone());
    let (mut parts, body) = req.into_parts();
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = match format!("http://{server}{pq}").parse() {
        Ok(u) => u,
        Err(_) => {
            return refuse(
                out,
                StatusCode::BAD_REQUEST,
                "bad_request",
                "unusable request target".into(),
            )
        }
    };
    parts.version = match upstream.config.protocol {
        Protocol::H1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    headers::prepare(
        &mut parts.headers,
        &Forwarded {
            client: conn.remote.ip(),
            host: Some(&authority),
            xfcc: Some(&conn.xfcc),
            client_cert: client_cert_headers
                .then_some(conn.client_cert.as_ref())
                .flatten()
                .map(|(a, b)| (a.as_str(), b.as_str())),
        },
    );
    if upstream.config.protocol == Protocol::H1 && !parts.headers.contains_key(HOST) {
        if let Ok(v) = HeaderValue::from_str(&authority) {
            parts.headers.insert(HOST, v);
        }
    }
    let body = Limited::new(body, max_body as usize).boxed_unsync();
    let call = upstream.client().request(Request::from_parts(parts, body));
    match tokio::time::timeout(timeout, call).await {
        Err(_) => {
            pick.done(false);
            refuse(
                out,
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "the backend {server} did not answer within {}s",
                    timeout.as_secs()
                ),
            )
        }
        Ok(Err(e)) => {
            if e.source().is_some_and(is_body_limit) {
                pick.done(true);
                return refuse(
                    out,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("the request body is larger than {max_body} bytes"),
                );
            }
            pick.done(false);
            let why = if e.is_connect() {
                format!("the backend {server} is unreachable: {}", chain(&e))
            } else {
                format!("the backend {server} failed: {}", chain(&e))
            };
            refuse(out, StatusCode::BAD_GATEWAY, "upstream_error", why)
        }
        Ok(Ok(resp)) => {
            let status = resp.status();
            pick.done(!matches!(status.as_u16(), 502..=504));
            out.status = status;
            let (mut parts, body) = resp.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers);
            let body = body
                .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
                .boxed_unsync();
            (Response::from_parts(parts, body), out)
        }
    }
}
