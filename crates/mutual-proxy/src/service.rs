//! One request through the proxy: route by Host and path (Host held to the SNI), authorize the
//! caller by the route's matchers, forward with the identity headers set and forged ones
//! stripped, and turn every failure into a status with a reason: 400, 401, 403, 404, 413, 421,
//! 502, 504; for a gRPC call, the same reason as gRPC's status and `grpc-message`.

use std::error::Error as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use mutual_tls::{grpc, PeerIdentity, Permit};

use crate::config::Protocol;

use crate::headers::{self, ConnHeaders};
use crate::route::{self, NoRoute};
use crate::upstream::{Pick, PooledBody, SendError, UpBody, Upstream};
use crate::{Proxy, Runtime};

/// Largest refused body still read before the 413 is sent (see `handle`).
const DRAIN_LIMIT: u64 = 1024 * 1024;
/// How long reading a refused body may take.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// What is known of a connection once its handshake is done.
#[derive(Debug)]
pub struct Conn {
    /// The proxy.
    pub proxy: Arc<Proxy>,
    /// Index of the listener.
    pub listener: usize,
    /// The verified caller; `None` for a client without a certificate on a listener with
    /// `client_certificate = "optional"`, which no route admits.
    pub peer: Option<Arc<PeerIdentity>>,
    /// Its address.
    pub remote: SocketAddr,
    /// The server name it asked for.
    pub sni: Option<String>,
    /// Its `x-forwarded-for`, XFCC element (none without a peer) and, when the listener sent
    /// them as the connection was made, RFC 9440 `Client-Cert` and `Client-Cert-Chain`: made
    /// once per connection.
    pub headers: ConnHeaders,
    /// The revocation feed's generation this caller was last looked up at.
    pub revocation_seen: std::sync::atomic::AtomicU64,
    /// Notified when the connection must close after the response in flight (a revoked
    /// caller): HTTP/1.1 ends with `connection: close`, HTTP/2 with GOAWAY.
    pub close: tokio::sync::Notify,
    /// Set with the first refusal that closes the connection.
    pub closing: std::sync::atomic::AtomicBool,
}

impl Conn {
    /// Whether a close was already asked for (a permit is stored by an earlier `notify_one`).
    fn close_requested(&self) -> bool {
        self.closing.swap(true, std::sync::atomic::Ordering::AcqRel)
    }
}

/// The proxy's answer to a refused request, over HTTP or, for a gRPC call, as gRPC's own
/// answer: HTTP 200 with no body and `grpc-status` / `grpc-message` (a "Trailers-Only"
/// response), since gRPC clients report any other HTTP status as a transport failure.
fn refusal(r: &Refused, grpc: bool) -> Response<UpBody> {
    if !grpc {
        return local(r.status, format!("{}\n", r.reason));
    }
    grpc::refusal(
        r.status,
        &r.reason,
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync(),
    )
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

/// What the access log and the metrics say of one request.
/// It borrows from the runtime the request was routed by: nothing is copied on the way.
struct Outcome<'a> {
    status: StatusCode,
    route: &'a str,
    decision: &'static str,
    reason: Option<String>,
    server: Option<&'a str>,
    /// The matcher that allowed the caller, as written.
    rule: Option<Arc<str>>,
}

/// A request the proxy answers itself: its status, the `decision` label, and the reason, which
/// is also the body.
struct Refused {
    status: StatusCode,
    decision: &'static str,
    reason: String,
}

impl Refused {
    fn new(status: StatusCode, decision: &'static str, reason: impl Into<String>) -> Refused {
        Refused {
            status,
            decision,
            reason: reason.into(),
        }
    }

    fn too_large(max_body: u64) -> Refused {
        Refused::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is larger than {max_body} bytes"),
        )
    }
}

/// Handles one request.
pub async fn handle(conn: Arc<Conn>, req: Request<Incoming>) -> Response<UpBody> {
    let started = Instant::now();
    let proxy = &conn.proxy;
    // The runtime of this request: a reload meanwhile applies to the next one.
    let rt = proxy.runtime();
    let logged = proxy
        .access_log()
        .then(|| (req.method().clone(), req.uri().path().to_owned()));
    let version = req.version();
    let (mut resp, out) = forward(&conn, &rt, req).await;
    if out.decision == "revoked" && version < Version::HTTP_2 {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    let peer = conn.peer.as_deref();
    proxy
        .metrics
        .request(out.route, out.status.as_u16(), out.decision);
    if out.decision != "allow" {
        proxy.refusals.record(crate::refusals::Refusal {
            at: time::OffsetDateTime::now_utc(),
            peer_addr: conn.remote,
            peer: peer.map(|p| p.name().to_string()).unwrap_or_default(),
            issuer: peer
                .map(|p| p.issuer_name().to_string())
                .unwrap_or_default(),
            stage: "request",
            route: out.route.to_string(),
            code: out.decision.to_string(),
            status: Some(out.status.as_u16()),
            reason: out.reason.clone().unwrap_or_default(),
        });
    }
    if let Some((method, path)) = logged {
        tracing::info!(
            target: "mutual::access",
            method = %method,
            peer.cn = peer.map(|p| p.name()).unwrap_or(""),
            peer.issuer = peer.map(|p| p.issuer_name()).unwrap_or(""),
            peer.addr = %conn.remote,
            path = %path,
            route = %out.route,
            rule = out.rule.as_deref().unwrap_or(""),
            decision = out.decision,
            status = out.status.as_u16(),
            reason = out.reason.as_deref().unwrap_or(""),
            upstream = out.server.unwrap_or(""),
            micros = started.elapsed().as_micros() as u64,
            "request"
        );
    }
    resp
}

/// The story of one request: admitted by a route's policy, held to the body limit, turned into
/// the backend's request (forged identity stripped, the verified one set), sent, and the
/// backend's answer passed back; or answered by the proxy with the reason it stopped.
async fn forward<'a>(
    conn: &Conn,
    rt: &'a Runtime,
    req: Request<Incoming>,
) -> (Response<UpBody>, Outcome<'a>) {
    let mut out = Outcome {
        status: StatusCode::OK,
        route: "-",
        decision: "allow",
        reason: None,
        server: None,
        rule: None,
    };
    let grpc = grpc::is_grpc_request(&req);
    match steps(conn, rt, req, &mut out).await {
        Ok(resp) => {
            out.status = resp.status();
            (resp, out)
        }
        Err(r) => {
            out.status = r.status;
            out.decision = r.decision;
            // The log and metrics keep the HTTP status the refusal stands for, also when a gRPC
            // caller gets it as a grpc-status over HTTP 200.
            let resp = refusal(&r, grpc);
            out.reason = Some(r.reason);
            (resp, out)
        }
    }
}

async fn steps<'a>(
    conn: &Conn,
    rt: &'a Runtime,
    req: Request<Incoming>,
    out: &mut Outcome<'a>,
) -> Result<Response<UpBody>, Refused> {
    let admitted = admit(conn, rt, &req, out)?;
    out.rule = Some(admitted.permit.rule_shared());
    let req = within_body_limit(req, admitted.max_body).await?;
    // A gRPC caller's deadline bounds the wait too; the header itself goes on to the backend.
    let deadline = req
        .headers()
        .get("grpc-timeout")
        .and_then(|v| grpc::timeout(v.as_bytes()))
        .filter(|d| *d < admitted.timeout);
    let pick = admitted.upstream.pick();
    let server = &admitted.upstream.servers[pick.index()];
    out.server = Some(&server.authority);
    let req = match upstream_request(conn, &admitted, server, req) {
        Ok(req) => req,
        Err(r) => {
            pick.done(true);
            return Err(r);
        }
    };
    let resp = send(&admitted, deadline, pick, &server.authority, req).await?;
    Ok(map_response(resp))
}

/// A request that a route's policy admitted, with what forwarding it needs. Only [`admit`]
/// makes one, and it holds the [`Permit`] the route's policy gave the caller: no request
/// reaches a backend without one.
struct Admitted<'a> {
    permit: Permit,
    /// The `Host` (or `:authority`) the caller asked for.
    authority: HeaderValue,
    upstream: &'a Arc<Upstream>,
    max_body: u64,
    timeout: Duration,
    client_cert_headers: bool,
}

/// Finds the request's route (by Host, held to the SNI, and path) and asks its policy.
fn admit<'a>(
    conn: &Conn,
    rt: &'a Runtime,
    req: &Request<Incoming>,
    out: &mut Outcome<'a>,
) -> Result<Admitted<'a>, Refused> {
    let lc = &rt.config.listeners[conn.listener];
    // A caller without a certificate (an optional listener) has nothing to revoke; it is
    // refused below for what is missing.
    if let (Some(feed), Some(peer)) = (&rt.listeners[conn.listener].revocations, &conn.peer) {
        let now = time::OffsetDateTime::now_utc();
        if let Err(r) = feed.check_request(peer, &conn.revocation_seen, now) {
            // Logged once: the connection closes after this answer.
            if !conn.close_requested() {
                feed.refused(peer, conn.remote, "request", &r);
            }
            conn.close.notify_one();
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "revoked",
                r.to_string(),
            ));
        }
    }
    // HTTP/2's :authority, else HTTP/1's Host (whose value is only shared, not copied).
    let authority = match req.uri().authority() {
        Some(a) => HeaderValue::from_str(a.as_str()).ok(),
        None => req.headers().get(HOST).cloned(),
    };
    let no_host = || {
        Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request has no Host",
        )
    };
    let authority = authority.ok_or_else(no_host)?;
    let host = route::host_of(authority.to_str().map_err(|_| no_host())?);
    let (_, route) = route::select(&lc.routes, conn.sni.as_deref(), &host, req.uri().path())
        .map_err(|e| {
            let (status, decision) = match e {
                NoRoute::NotFound { .. } => (StatusCode::NOT_FOUND, "no_route"),
                _ => (StatusCode::MISDIRECTED_REQUEST, "misdirected"),
            };
            Refused::new(status, decision, e.to_string())
        })?;
    out.route = &route.name;
    let Some(peer) = conn.peer.as_ref() else {
        return Err(Refused::new(
            StatusCode::UNAUTHORIZED,
            "no_certificate",
            format!(
                "you sent no client certificate: route {} admits only callers with one issued by {}",
                route.name,
                rt.listeners[conn.listener].trust.subjects.join(" or ")
            ),
        ));
    };
    let permit = route.policy.authorize(peer).map_err(|denial| {
        Refused::new(
            StatusCode::FORBIDDEN,
            "deny",
            format!(
                "{denial} (route {}, issued by {})",
                route.name,
                peer.issuer_name()
            ),
        )
    })?;
    Ok(Admitted {
        permit,
        authority,
        upstream: &rt.upstreams[route.upstream],
        max_body: lc.limits.max_body_bytes,
        timeout: lc.limits.request_timeout,
        client_cert_headers: lc.client_cert_headers,
    })
}

/// Refuses a request whose declared body is over the limit (a body without a length is held
/// to it as it streams, see [`send`]).
async fn within_body_limit(
    req: Request<Incoming>,
    max_body: u64,
) -> Result<Request<Incoming>, Refused> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(declared) = declared.filter(|n| *n > max_body) else {
        return Ok(req);
    };
    // Read and drop a modest body before answering: closing with the upload unread makes the
    // kernel reset the connection, and the client sees a reset instead of the 413 (nginx's
    // lingering close exists for the same reason). Bounded in size and time.
    if declared <= DRAIN_LIMIT {
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
    Err(Refused::too_large(max_body))
}

/// The backend's request: the caller's, aimed at `server`, in the upstream's HTTP version,
/// with every identity header the caller sent stripped and the verified identity set.
fn upstream_request(
    conn: &Conn,
    admitted: &Admitted<'_>,
    server: &crate::upstream::Server,
    req: Request<Incoming>,
) -> Result<Request<UpBody>, Refused> {
    let unusable = || {
        Refused::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "unusable request target",
        )
    };
    let authority = server.uri_authority.as_ref().ok_or_else(unusable)?;
    let protocol = admitted.upstream.config.protocol;
    let (mut parts, body) = req.into_parts();
    // The caller's path and query (shared, not copied): alone for HTTP/1.1 (the origin form),
    // under the server's parsed authority for HTTP/2 (its :scheme and :authority).
    let mut target = std::mem::take(&mut parts.uri).into_parts();
    (target.scheme, target.authority) = match protocol {
        Protocol::H1 => (None, None),
        Protocol::H2c => (Some(http::uri::Scheme::HTTP), Some(authority.clone())),
    };
    if target.path_and_query.is_none() {
        target.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    parts.uri = http::Uri::from_parts(target).map_err(|_| unusable())?;
    parts.version = match protocol {
        Protocol::H1 => Version::HTTP_11,
        Protocol::H2c => Version::HTTP_2,
    };
    conn.headers.apply(
        &mut parts.headers,
        Some(admitted.authority.clone()),
        admitted.client_cert_headers,
    );
    if protocol == Protocol::H1 && !parts.headers.contains_key(HOST) {
        parts.headers.insert(HOST, admitted.authority.clone());
    }
    let body = Limited::new(body, admitted.max_body as usize).boxed_unsync();
    Ok(Request::from_parts(parts, body))
}

/// Sends to the picked server under the request time limit (or the caller's shorter gRPC
/// `deadline`), and tells the pick how it went (a timeout, a failure to connect and a
/// 502/503/504 count against the server; a caller's deadline does not).
async fn send(
    admitted: &Admitted<'_>,
    deadline: Option<Duration>,
    pick: Pick,
    server: &str,
    req: Request<UpBody>,
) -> Result<Response<PooledBody>, Refused> {
    let timeout = deadline.unwrap_or(admitted.timeout);
    let call = admitted.upstream.send(pick.index(), req);
    match tokio::time::timeout(timeout, call).await {
        Err(_) if deadline.is_some() => {
            pick.done(true);
            Err(Refused::new(
                StatusCode::GATEWAY_TIMEOUT,
                "deadline",
                format!(
                    "the backend {server} did not answer within the caller's grpc-timeout of {}ms",
                    timeout.as_millis()
                ),
            ))
        }
        Err(_) => {
            pick.done(false);
            Err(Refused::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!(
                    "the backend {server} did not answer within {}s",
                    timeout.as_secs()
                ),
            ))
        }
        Ok(Err(e)) if e.source().is_some_and(is_body_limit) => {
            pick.done(true);
            Err(Refused::too_large(admitted.max_body))
        }
        Ok(Err(e)) => {
            pick.done(false);
            let why = if matches!(e, SendError::Connect(_)) {
                format!("the backend {server} is unreachable: {}", chain(&e))
            } else {
                format!("the backend {server} failed: {}", chain(&e))
            };
            Err(Refused::new(StatusCode::BAD_GATEWAY, "upstream_error", why))
        }
        Ok(Ok(resp)) => {
            pick.done(!matches!(resp.status().as_u16(), 502..=504));
            Ok(resp)
        }
    }
}

/// The backend's answer for the caller: hop-by-hop headers removed, the body streamed.
fn map_response(resp: Response<PooledBody>) -> Response<UpBody> {
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let body = body
        .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        .boxed_unsync();
    Response::from_parts(parts, body)
}
