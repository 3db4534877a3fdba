//! `mutual-server`: mutual's certificate authority over HTTP, wire-compatible with the PKI
//! secrets engine of Vault / OpenBao, so that the `vault`/`bao` CLI, `hvac` and cert-manager's
//! Vault issuer work against it unchanged.
//!
//! It speaks Vault's paths (`/v1/sys/...`, `/v1/<mount>/...`), parameters (strings for every
//! type, as the CLI sends them), JSON envelopes and status codes, with `X-Vault-Token` auth.
//! It is not a general secrets store: only `pki` mounts are served. Persistence and the CA's
//! operations live in `mutual-store`, the rules in `mutual-pki`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = mutual_store::Store::open(std::path::Path::new("./mutual-data")).await?;
//! let app = std::sync::Arc::new(mutual_server::App::load(store).await?);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8200").await?;
//! mutual_server::serve(listener, app).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acl;
mod acme;
mod acme_account;
mod acme_config;
mod acme_order;
mod acme_validate;
mod approle;
mod audit;
mod cert_auth;
mod certindex;
mod cluster;
mod conditional;
mod constraints;
mod crl_config;
mod error;
mod feed;
mod fields;
mod inventory;
mod issuer_admin;
mod issuers;
mod lifecycle;
mod ocsp;
mod params;
mod pki;
mod policies;
mod renew;
mod reply;
mod roles;
mod rotation;
mod state;
mod sys;
mod tidy;
mod tokens;
mod ui;
mod userpass;

use std::sync::Arc;

use axum::{
    body::Body,
    extract::{Request, State},
    http::HeaderMap,
    response::{IntoResponse, Response},
    Router,
};

pub use acme::{AcmeState, MemoryNonces, NonceStore};
pub use acme_validate::{AcmeValidation, DEFAULT_EXCLUDE};
pub use cert_auth::ClientCert;
pub use certindex::spawn_catch_up;
pub use cluster::spawn_cluster_sync;
pub use crl_config::spawn_attribution;
pub use error::ApiError;
pub use inventory::search_from;
pub use lifecycle::Counters;
pub use params::Params;
pub use reply::Reply;
pub use roles::from_params as role_from_params;
pub use rotation::to_json as rotation_json;
pub use state::{App, Mount};

/// mutual's own version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Vault API generation mutual speaks: the release whose PKI and auth paths it serves
/// (OpenBao forked from Vault 1.14, and mutual answers the 1.11+ issuer paths). Clients such as
/// the Terraform provider and the bao CLI choose their code paths by this number.
pub const API_VERSION: &str = "1.14.0";

/// The version `sys/health` and `sys/seal-status` report: the API generation, with mutual's
/// own version as build metadata (`1.14.0+mutual.0.1.0`), which semver-aware clients ignore
/// when they compare.
pub fn reported_version() -> String {
    format!("{API_VERSION}+mutual.{VERSION}")
}

/// What a request does, in Vault's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// GET / HEAD.
    Read,
    /// POST / PUT / PATCH.
    Write,
    /// DELETE.
    Delete,
    /// LIST, or GET with `list=true`.
    List,
}

/// The HTTP service: every path goes through one dispatcher, as Vault's router does, because
/// mount paths may themselves contain slashes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(ui::router(app.clone()))
        .fallback(dispatch)
        .with_state(app)
}

/// The router of `mutual server --public-listen`: plain HTTP for what Vault serves without a
/// token and TLS stacks fetch from the URLs in a certificate (RFC 5280 asks for `http` there, and
/// nginx's and many devices' OCSP clients speak nothing else): the CA certificates and trust
/// bundle, the CRLs and the revocation feed, OCSP and certificates by serial. Everything else
/// is refused, and a token sent is dropped before the request is read, so a token never works
/// over plaintext.
pub fn public_router(app: Arc<App>) -> Router {
    Router::new()
        .fallback(dispatch)
        .with_state(app)
        .layer(axum::middleware::map_request(mark_public))
}

/// A request that came in on the public listener.
#[derive(Debug, Clone, Copy)]
struct Public;

async fn mark_public(mut req: Request<Body>) -> Request<Body> {
    req.headers_mut().remove("x-vault-token");
    req.headers_mut().remove(axum::http::header::AUTHORIZATION);
    req.extensions_mut().insert(Public);
    req
}

/// Whether the public listener answers `method` on `rest` of a mount: reads of what
/// [`pki::is_unauthenticated`] lets anyone read, and OCSP (GET or POST).
fn is_public(method: &axum::http::Method, rest: &str) -> bool {
    use axum::http::Method;
    if rest == "ocsp" || rest.starts_with("ocsp/") {
        return method == Method::GET || method == Method::POST;
    }
    (method == Method::GET || method == Method::HEAD) && pki::is_unauthenticated(Op::Read, rest)
}

/// Serves `app` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, app: Arc<App>) -> std::io::Result<()> {
    // The caller's address: AppRole's CIDR bounds and the audit log need it.
    let service = router(app).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).await
}

/// The caller's IP address, when the listener recorded it (`ConnectInfo`).
fn remote_ip(parts: &axum::http::request::Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

tokio::task_local! {
    /// The caller's address during a request: a token bound to CIDR blocks is checked
    /// against it wherever the token is looked up.
    static REMOTE: Option<std::net::IpAddr>;
}

tokio::task_local! {
    /// True while a PATCH is handled: Vault merges a PATCH into what is stored, where a POST
    /// replaces every field (`issuer/:ref`).
    static PATCH: bool;
}

/// True when the request being handled is a PATCH.
pub(crate) fn is_patch() -> bool {
    PATCH.try_with(|p| *p).unwrap_or(false)
}

/// The caller of the request being handled, when known.
pub(crate) fn current_remote() -> Option<std::net::IpAddr> {
    REMOTE.try_with(|ip| *ip).ok().flatten()
}

async fn dispatch(State(app): State<Arc<App>>, req: Request<Body>) -> Response {
    let inner = Arc::clone(&app);
    let remote = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let handled = audit::around(&app, req, |req| async move {
        match handle(&inner, req).await {
            Ok(reply) => reply.into_response(),
            Err(e) => e.into_response(),
        }
    });
    REMOTE.scope(remote, handled).await
}

async fn handle(app: &Arc<App>, req: Request<Body>) -> Result<Reply, ApiError> {
    // Read before `answer` takes the request apart: a GET of a CRL or a CA certificate may
    // be answered 304 once its bytes are known (conditional.rs).
    let conditional = conditional::Asked::of(&req);
    let reply = answer(app, req).await?;
    Ok(match conditional {
        Some(asked) => asked.apply(app, reply),
        None => reply,
    })
}

async fn answer(app: &Arc<App>, req: Request<Body>) -> Result<Reply, ApiError> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let Some(path) = path.strip_prefix("/v1/") else {
        return Err(ApiError::NoRoute(path.trim_start_matches('/').to_string()));
    };
    let path = params::percent_decode(path.trim_end_matches('/'), false);
    // A declared length over the limit is refused before the body is read: reading it would
    // first answer `100 Continue` to a client that asked (curl does for large bodies), and the
    // 413 could then be lost to the close that follows.
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > app.body_limit) {
        return Err(ApiError::TooLarge);
    }
    let body = axum::body::to_bytes(body, app.body_limit)
        .await
        .map_err(|_| ApiError::TooLarge)?;
    let routed = app.route(&path);
    if parts.extensions.get::<Public>().is_some() {
        let served = routed
            .as_ref()
            .is_some_and(|(_, rest)| is_public(&parts.method, rest));
        lifecycle::Counters::bump(&app.counters.public[usize::from(!served)]);
        if !served {
            tracing::info!(method = %parts.method, path = %path, listener = "public", decision = "refused", "not served on the public listener");
            return Err(ApiError::Forbidden(format!(
                "{} /v1/{path} is not served on the public listener, which answers only CA certificates, CRLs, OCSP and certificates by serial, without a token; use the API listener",
                parts.method
            )));
        }
    }
    // OCSP bodies are DER, not JSON: answered before parameters are parsed.
    if let Some((mount, rest)) = &routed {
        if *rest == "ocsp" || rest.starts_with("ocsp/") {
            return ocsp::handle(app, mount, &parts.method, parts.uri.path(), &body).await;
        }
        // ACME requests are JWS, signed by accounts, not tokens: answered before parameters
        // are parsed or a token is asked for.
        if acme::is_protocol(rest) {
            let handled = acme::handle(app, mount, rest, &parts.method, &parts.headers, &body);
            return Ok(Box::pin(handled).await);
        }
    }
    // Boxed: the API's state machine holds every engine's request (some 13 KiB), and a
    // request's future is copied whole into the box axum gives it; OCSP, answered above, is
    // the hottest request and needs none of it.
    Box::pin(api(app, parts, &body, &path, routed)).await
}

/// The Vault API proper: parameters parsed, token checked, engine asked.
async fn api(
    app: &Arc<App>,
    parts: axum::http::request::Parts,
    body: &[u8],
    path: &str,
    routed: Option<(Arc<state::Mount>, &str)>,
) -> Result<Reply, ApiError> {
    let params = Params::parse(body, parts.uri.query())?;
    let op = match parts.method.as_str() {
        "GET" | "HEAD" if params.bool("list").ok().flatten() == Some(true) => Op::List,
        "GET" | "HEAD" => Op::Read,
        "POST" | "PUT" | "PATCH" => Op::Write,
        "DELETE" => Op::Delete,
        "LIST" => Op::List,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    if path == "auth/cert/login" {
        return cert_auth::login(app, op, ClientCert::of(&parts.extensions), &params).await;
    }
    let token = token_of(&parts.headers);
    if let Some((method, rest)) = approle::method_of(app, path).await? {
        match (method.kind.as_str(), rest) {
            ("approle", "login") => {
                return approle::login(app, op, &method.path, &params, remote_ip(&parts)).await
            }
            ("userpass", r) if r.starts_with("login/") => {
                let user = &r["login/".len()..];
                return userpass::login(app, op, &method.path, user, &params, remote_ip(&parts))
                    .await;
            }
            _ => {}
        }
    }
    if path.starts_with("sys/") || path.starts_with("auth/") {
        return sys::handle(app, op, path, params, token.as_deref()).await;
    }
    let Some((mount, rest)) = routed else {
        // As Vault: a caller without a valid token learns nothing about which mounts exist.
        app.token(token.as_deref()).await?;
        return Err(ApiError::NoRoute(path.to_string()));
    };
    // A rotation step that has fallen due (the switch, the retirement) is made first.
    let mount = rotation::catch_up(app, mount).await?;
    match (op, rest) {
        (Op::Read, "trust-bundle") => return lifecycle::trust_bundle(&mount),
        (Op::Read, "revocations") => {
            return feed::handle(app, mount, &parts.headers, &params).await
        }
        (Op::Write, "renew") => {
            let client = ClientCert::of(&parts.extensions);
            return renew::handle(app, &mount, client, &params).await;
        }
        _ => {}
    }
    let mut accessor = None;
    if !pki::is_unauthenticated(op, rest) {
        let tok = app.token(token.as_deref()).await?;
        if tok.role.is_some() {
            let secret = token.as_deref().unwrap_or_default();
            let rest = rest.to_string();
            let by = Some(tok.accessor.clone());
            let request = format!("{}/{rest} (bootstrap token)", mount.record.path);
            let answer = lifecycle::bootstrap(app, mount, op, &rest, params, &tok, secret);
            return inventory::on_behalf_of(by, request, answer).await;
        }
        if tok.expired(time::OffsetDateTime::now_utc()) {
            return Err(ApiError::PermissionDenied);
        }
        // A write to a role that does not exist yet is a create, as Vault's existence check
        // makes it; every other write is an update.
        let exists = match rest.strip_prefix("roles/") {
            Some(name) if op == Op::Write => mount.roles.contains_key(name),
            _ => true,
        };
        let full = format!("{}/{}", mount.record.path, rest);
        app.authorize(
            &tok,
            &full,
            acl::capability(op, exists),
            &params,
            Some(rest),
        )
        .await?;
        tokens::count_use(app, &tok, token.as_deref().unwrap_or_default()).await?;
        if rest == "inventory" && matches!(op, Op::Read | Op::List) {
            return inventory::handle(app, &mount, &params).await;
        }
        accessor = Some(tok.accessor);
    }
    let rest = rest.to_string();
    if let Some(reply) = crl_config::handle(app, &mount, op, &rest, &params).await? {
        return Ok(reply);
    }
    if let Some(reply) = acme_config::handle(app, &mount, op, &rest, &params).await? {
        return Ok(reply);
    }
    let request = format!("{}/{rest}", mount.record.path);
    let patch = parts.method == axum::http::Method::PATCH;
    PATCH
        .scope(
            patch,
            inventory::on_behalf_of(
                accessor,
                request,
                pki::handle(app, mount, op, &rest, params),
            ),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::is_public;
    use axum::http::Method;

    #[test]
    fn the_public_listener_answers_reads_of_public_material_and_ocsp_only() {
        let cases = [
            (Method::GET, "ca", true),
            (Method::GET, "ca/pem", true),
            (Method::HEAD, "ca_chain", true),
            (Method::GET, "crl", true),
            (Method::GET, "crl/delta/pem", true),
            (Method::GET, "cert/1a:2b", true),
            (Method::GET, "issuer/default/crl/pem", true),
            (Method::GET, "ocsp/MEMwQTA%2F", true),
            (Method::POST, "ocsp", true),
            // Writes, configuration and everything that takes a token.
            (Method::POST, "ca", false),
            (Method::DELETE, "crl", false),
            (Method::PUT, "ocsp", false),
            (Method::POST, "issue/web", false),
            (Method::POST, "sign/web", false),
            (Method::POST, "revoke", false),
            (Method::POST, "renew", false),
            (Method::GET, "roles/web", false),
            (Method::GET, "certs", false),
            (Method::GET, "config/urls", false),
            (Method::GET, "issuer/default", false),
            (Method::GET, "cert/1a/raw/extra", false),
            // The revocation feed and the trust bundle are as public as the CRL and the CA.
            (Method::GET, "revocations", true),
            (Method::GET, "trust-bundle", true),
            // ACME is HTTPS only (RFC 8555 §6.1).
            (Method::GET, "acme/directory", false),
        ];
        for (method, rest, want) in cases {
            assert_eq!(is_public(&method, rest), want, "{method} {rest}");
        }
    }
}
