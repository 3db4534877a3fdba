//! The ACME server (RFC 8555) of every pki mount, at Vault's paths: `acme/…`,
//! `roles/:role/acme/…`, `issuer/:ref/acme/…` and `issuer/:ref/roles/:role/acme/…`. The
//! protocol's rules (JWS, header checks, state machines, problem documents) are
//! `mutual-acme`'s. Here: the directory, nonces, the stored objects, each request's
//! authentication (JWS, nonce, account) and the answers with their headers; accounts and
//! revocation are `acme_account.rs`, orders, authorizations, challenges and issuance (through
//! the same `sign_csr` as `sign/:role`) `acme_order.rs`, validation `acme_validate.rs`, the
//! operator paths `acme_config.rs`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use axum::{
    body::Body,
    http::{header, Method, StatusCode},
    response::Response,
};
use mutual_acme::{
    AuthzStatus, ChallengeStatus, Expect, Identifier, Jwk, OrderStatus, Problem, ProblemType,
    Signer,
};
use mutual_store::{AcmeObject, CaRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    acme_config::{acme_config, cluster_config, AcmeConfig},
    acme_validate::{AcmeValidation, Validation},
    reply::Reply,
    state::{App, Mount},
};

/// Largest JWS request body accepted.
const BODY_LIMIT: usize = 64 * 1024;
/// Largest CSR (DER) accepted at finalize.
pub(crate) const CSR_LIMIT: usize = 16 * 1024;
/// How long a nonce may wait for its request.
const NONCE_TTL: Duration = Duration::from_secs(300);
/// How long an order and its authorizations live.
pub(crate) const ORDER_TTL: i64 = 24 * 3600;

/// Where nonces live: in memory now; a store-backed one (several nodes on one database)
/// replaces it behind this trait.
pub trait NonceStore: Send + Sync + std::fmt::Debug {
    /// A new nonce.
    fn issue(&self) -> String;
    /// True when `nonce` was issued, not used and not expired; it cannot be used again.
    fn consume(&self, nonce: &str) -> bool;
}

/// Nonces in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryNonces {
    issued: Mutex<HashMap<String, Instant>>,
}

impl NonceStore for MemoryNonces {
    fn issue(&self) -> String {
        let nonce = new_id();
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, at| at.elapsed() < NONCE_TTL);
            // Still full of fresh nonces: someone asks for them faster than requests use them.
            // Forgetting them all costs honest clients one badNonce retry (RFC 8555 §6.5), and
            // bounds the memory.
            if map.len() > 100_000 {
                map.clear();
            }
        }
        map.insert(nonce.clone(), Instant::now());
        nonce
    }

    fn consume(&self, nonce: &str) -> bool {
        let mut map = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(nonce).is_some_and(|at| at.elapsed() < NONCE_TTL)
    }
}

/// The ACME server's state in the [`App`].
#[derive(Debug)]
pub struct AcmeState {
    pub(crate) nonces: Box<dyn NonceStore>,
    rates: Mutex<HashMap<String, mutual_acme::RateWindow>>,
    /// Requests per account per minute (`--acme-rate-limit`); 0: no limit. Read on every
    /// request, so an atomic rather than the validator's lock.
    rate_limit: AtomicU32,
    pub(crate) validation: Validation,
    counts: Mutex<HashMap<(String, &'static str), u64>>,
    pub(crate) issued: AtomicU64,
}

impl Default for AcmeState {
    fn default() -> Self {
        AcmeState {
            nonces: Box::new(MemoryNonces::default()),
            rates: Mutex::new(HashMap::new()),
            rate_limit: AtomicU32::new(AcmeValidation::default().rate_limit),
            validation: Validation::default(),
            counts: Mutex::new(HashMap::new()),
            issued: AtomicU64::new(0),
        }
    }
}

impl AcmeState {
    fn count(&self, op: &str, decision: &'static str) {
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *c.entry((op.to_string(), decision)).or_default() += 1;
    }

    /// Prometheus text of the ACME counters.
    pub fn prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP mutual_acme_requests_total ACME requests, by resource and decision.\n\
             # TYPE mutual_acme_requests_total counter\n",
        );
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let mut rows: Vec<_> = c.iter().collect();
        rows.sort();
        for ((op, decision), n) in rows {
            out.push_str(&format!(
                "mutual_acme_requests_total{{resource=\"{op}\",decision=\"{decision}\"}} {n}\n"
            ));
        }
        out.push_str(&format!(
            "# HELP mutual_acme_certificates_total Certificates issued through ACME.\n\
             # TYPE mutual_acme_certificates_total counter\nmutual_acme_certificates_total {}\n",
            self.issued.load(Ordering::Relaxed)
        ));
        out.push_str(&self.validation.prometheus());
        out
    }

    pub(crate) fn set_rate_limit(&self, per_minute: u32) {
        self.rate_limit.store(per_minute, Ordering::Relaxed);
    }

    fn rate_ok(&self, account: &str) -> Result<(), Problem> {
        let limit = self.rate_limit.load(Ordering::Relaxed);
        if limit == 0 {
            return Ok(());
        }
        let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let w = rates.entry(account.to_string()).or_default();
        if w.allow(now, limit, 60) {
            return Ok(());
        }
        Err(Problem::new(
            ProblemType::RateLimited,
            format!(
                "account {account} made more than {limit} requests this minute; retry in {}s",
                w.retry_after(now, 60)
            ),
        ))
    }
}

/// A random URL-safe ID (128 bits).
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 16];
    // The system generator failing leaves zeros; the store's primary key then refuses reuse.
    let _ = aws_lc_rs::rand::fill(&mut b);
    mutual_acme::b64url(&b)
}

/// Which directory a path is under: its prefix inside the mount, the issuer and role named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DirPath {
    /// `""`, `roles/r/`, `issuer/i/` or `issuer/i/roles/r/`.
    pub prefix: String,
    pub issuer: Option<String>,
    pub role: Option<String>,
}

/// Splits a path inside a mount into its ACME directory and the resource after `acme/`.
pub(crate) fn directory_of(rest: &str) -> Option<(DirPath, &str)> {
    let segs: Vec<&str> = rest.splitn(6, '/').collect();
    let at = |i: usize| segs.get(i).copied().unwrap_or_default();
    let (issuer, role, skip) = match (at(0), at(2), at(4)) {
        ("acme", _, _) => (None, None, 1),
        ("roles", "acme", _) => (None, Some(at(1)), 3),
        ("issuer", "acme", _) => (Some(at(1)), None, 3),
        ("issuer", "roles", "acme") => (Some(at(1)), Some(at(3)), 5),
        _ => return None,
    };
    if issuer.is_some_and(str::is_empty) || role.is_some_and(str::is_empty) {
        return None;
    }
    let head_len: usize = segs[..skip].iter().map(|s| s.len() + 1).sum();
    let resource = rest.get(head_len..).filter(|r| !r.is_empty())?;
    let prefix = rest[..head_len - "acme/".len()].to_string();
    Some((
        DirPath {
            prefix,
            issuer: issuer.map(String::from),
            role: role.map(String::from),
        },
        resource,
    ))
}

/// True for the unauthenticated protocol paths (everything under a directory but `new-eab`).
pub(crate) fn is_protocol(rest: &str) -> bool {
    directory_of(rest).is_some_and(|(_, r)| r != "new-eab")
}

/// The issuer an ACME directory issues with: the mount's default, or `issuer/:ref` resolved
/// among the mount's issuers (by ID or name, as every `issuer/:ref` path does).
pub(crate) async fn resolve_issuer(
    app: &App,
    mount: &Mount,
    reference: Option<&str>,
) -> Result<Arc<CaRecord>, Problem> {
    let no_issuer = || {
        Problem::new(
            ProblemType::ServerInternal,
            format!("mount \"{}\" has no issuer yet", mount.record.path),
        )
    };
    let Some(r) = reference.filter(|r| *r != "default") else {
        return mount.ca.clone().ok_or_else(no_issuer);
    };
    let issuer = crate::issuers::resolve(app, mount, r).await.map_err(|_| {
        Problem::malformed(format!("unable to find issuer \"{r}\" on this mount")).with_status(404)
    })?;
    let with = crate::issuers::mount_with(app, mount, &issuer)
        .await
        .map_err(|e| Problem::malformed(e.to_string()))?;
    with.ca.clone().ok_or_else(no_issuer)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Account {
    pub(crate) status: String,
    pub(crate) contact: Vec<String>,
    pub(crate) jwk: Jwk,
    pub(crate) dir: String,
    pub(crate) created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Order {
    pub(crate) status: OrderStatus,
    pub(crate) expires: i64,
    pub(crate) identifiers: Vec<Identifier>,
    pub(crate) authzs: Vec<String>,
    pub(crate) account: String,
    pub(crate) dir: String,
    pub(crate) serial: Option<String>,
    pub(crate) error: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Challenge {
    #[serde(rename = "type")]
    pub kind: String,
    pub token: String,
    pub status: ChallengeStatus,
    pub validated: Option<i64>,
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Authz {
    pub status: AuthzStatus,
    pub expires: i64,
    pub identifier: Identifier,
    pub wildcard: bool,
    pub challenges: Vec<Challenge>,
    pub account: String,
    pub dir: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IssuedCert {
    pub(crate) chain: String,
    pub(crate) account: String,
}

/// One request's context.
pub(crate) struct Ctx<'a> {
    pub(crate) app: &'a Arc<App>,
    pub(crate) mount: &'a Arc<Mount>,
    pub(crate) dir: DirPath,
    pub(crate) config: AcmeConfig,
    /// `https://…/v1/<mount>/<prefix>acme/`.
    pub(crate) base: String,
}

impl Ctx<'_> {
    pub(crate) fn path(&self) -> &str {
        &self.mount.record.path
    }

    pub(crate) fn url(&self, resource: &str) -> String {
        format!("{}{resource}", self.base)
    }

    pub(crate) async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<(AcmeObject, T), Problem> {
        let missing =
            || Problem::malformed(format!("no {kind} \"{id}\" on this directory")).with_status(404);
        let obj = self
            .app
            .store
            .acme_get(self.path(), kind, id)
            .await
            .map_err(internal)?
            .ok_or_else(missing)?;
        let doc = serde_json::from_str(&obj.body)
            .map_err(|e| internal(format!("stored {kind} {id}: {e}")))?;
        Ok((obj, doc))
    }

    pub(crate) async fn put<T: Serialize>(
        &self,
        kind: &str,
        id: &str,
        account: &str,
        lookup: &str,
        doc: &T,
        expires: i64,
    ) -> Result<(), Problem> {
        let obj = AcmeObject {
            id: id.into(),
            account: account.into(),
            lookup: lookup.into(),
            body: serde_json::to_string(doc).map_err(internal)?,
            expires,
        };
        self.app
            .store
            .acme_put(self.path(), kind, &obj)
            .await
            .map_err(internal)
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Problem {
    Problem::new(ProblemType::ServerInternal, e.to_string())
}

/// What a handler answers: status, JSON or PEM body, Location, extra Links.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: Option<(&'static str, Vec<u8>)>,
    pub(crate) location: Option<String>,
    pub(crate) links: Vec<String>,
    pub(crate) decision: &'static str,
    pub(crate) account: String,
}

impl Answer {
    pub(crate) fn json(status: StatusCode, v: Value) -> Answer {
        Answer {
            status,
            body: Some(("application/json", v.to_string().into_bytes())),
            location: None,
            links: vec![],
            decision: "ok",
            account: String::new(),
        }
    }
    pub(crate) fn located(mut self, url: String) -> Answer {
        self.location = Some(url);
        self
    }
}

/// Serves one ACME protocol request under `mount`.
pub(crate) async fn handle(
    app: &Arc<App>,
    mount: &Arc<Mount>,
    rest: &str,
    method: &Method,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Reply {
    let Some((dir, resource)) = directory_of(rest) else {
        return Reply::Response(problem_response(
            app,
            None,
            Problem::malformed("not an ACME path").with_status(404),
        ));
    };
    let op = resource.split('/').next().unwrap_or_default().to_string();
    let started = Instant::now();
    let (base, answer) = match context(app, mount, dir).await {
        Ok(ctx) => {
            let jose = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/jose+json"));
            let answer = if method == Method::POST && !jose {
                // RFC 8555 §6.2: a JWS request says so; anything else is not one.
                Err(Problem::malformed(
                    "ACME POST requests take Content-Type application/jose+json",
                )
                .with_status(415))
            } else {
                route(&ctx, resource, method, body).await
            };
            (Some(ctx.base.clone()), answer)
        }
        Err(p) => (None, Err(p)),
    };
    let response = match answer {
        Ok(a) => {
            app.acme.count(&op, a.decision);
            tracing::info!(mount = %mount.record.path, acme.resource = %op, account = %a.account, decision = a.decision, status = a.status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "acme");
            ok_response(app, base.as_deref(), a)
        }
        Err(p) => {
            app.acme.count(&op, "refused");
            tracing::info!(mount = %mount.record.path, acme.resource = %op, decision = "refused", problem = p.kind().code(), reason = %p.detail, "acme");
            problem_response(app, base.as_deref(), p)
        }
    };
    Reply::Response(response)
}

async fn context<'a>(
    app: &'a Arc<App>,
    mount: &'a Arc<Mount>,
    dir: DirPath,
) -> Result<Ctx<'a>, Problem> {
    let path = &mount.record.path;
    let config = acme_config(app, path).await.map_err(internal)?;
    if !config.enabled {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            format!("ACME is disabled on mount \"{path}\"; an operator enables it with config/acme enabled=true"),
        ).with_status(403));
    }
    let cluster = cluster_config(app, path).await.map_err(internal)?;
    if cluster.path.is_empty() {
        return Err(Problem::new(
            ProblemType::ServerInternal,
            format!("ACME on mount \"{path}\" needs config/cluster path (the URL clients reach this mount at)"),
        ));
    }
    let allowed = |list: &[String], name: &str| list.iter().any(|a| a == "*" || a == name);
    if let Some(role) = &dir.role {
        if !mount.roles.contains_key(role) {
            return Err(Problem::malformed(format!(
                "role \"{role}\" not found on mount \"{path}\""
            ))
            .with_status(404));
        }
        if !allowed(&config.allowed_roles, role) {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                format!("role \"{role}\" is not in config/acme allowed_roles"),
            ));
        }
    } else if config.default_directory_policy == "forbid" {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            "this mount's default ACME directory is forbidden (default_directory_policy=forbid); use roles/:role/acme/directory",
        ));
    }
    if let Some(issuer) = &dir.issuer {
        resolve_issuer(app, mount, Some(issuer)).await?;
        if !allowed(&config.allowed_issuers, issuer)
            && !allowed(&config.allowed_issuers, &mount.record.uuid)
        {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                format!("issuer \"{issuer}\" is not in config/acme allowed_issuers"),
            ));
        }
    }
    let base = format!("{}/{}acme/", cluster.path, dir.prefix);
    Ok(Ctx {
        app,
        mount,
        dir,
        config,
        base,
    })
}

fn link_index(base: Option<&str>) -> Option<String> {
    base.map(|b| format!("<{b}directory>;rel=\"index\""))
}

fn ok_response(app: &App, base: Option<&str>, a: Answer) -> Response {
    let mut r = Response::builder()
        .status(a.status)
        .header("Replay-Nonce", app.acme.nonces.issue())
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(l) = link_index(base) {
        r = r.header(header::LINK, l);
    }
    for l in a.links {
        r = r.header(header::LINK, l);
    }
    if let Some(loc) = a.location {
        r = r.header(header::LOCATION, loc);
    }
    let body = match a.body {
        Some((ct, bytes)) => {
            r = r.header(header::CONTENT_TYPE, ct);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    r.body(body).unwrap_or_default()
}

fn problem_response(app: &App, base: Option<&str>, p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut r = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/problem+json")
        .header("Replay-Nonce", app.acme.nonces.issue())
        .header(header::CACHE_CONTROL, "no-store");
    if let Some(l) = link_index(base) {
        r = r.header(header::LINK, l);
    }
    if p.kind() == ProblemType::RateLimited {
        r = r.header(header::RETRY_AFTER, "60");
    }
    let body = serde_json::to_vec(&p).unwrap_or_default();
    r.body(Body::from(body)).unwrap_or_default()
}

async fn route(
    ctx: &Ctx<'_>,
    resource: &str,
    method: &Method,
    body: &[u8],
) -> Result<Answer, Problem> {
    match (method.as_str(), resource) {
        ("GET", "directory") => Ok(directory(ctx)),
        ("HEAD", "new-nonce") => Ok(Answer {
            body: None,
            ..Answer::json(StatusCode::OK, Value::Null)
        }),
        ("GET", "new-nonce") => Ok(Answer {
            body: None,
            ..Answer::json(StatusCode::NO_CONTENT, Value::Null)
        }),
        ("POST", _) => post(ctx, resource, body).await,
        (m, _) => Err(Problem::malformed(format!(
            "{m} is not accepted on {resource}; ACME resources take POST"
        ))
        .with_status(405)),
    }
}

fn directory(ctx: &Ctx<'_>) -> Answer {
    Answer::json(
        StatusCode::OK,
        json!({
            "newNonce": ctx.url("new-nonce"),
            "newAccount": ctx.url("new-account"),
            "newOrder": ctx.url("new-order"),
            "revokeCert": ctx.url("revoke-cert"),
            "keyChange": ctx.url("key-change"),
            "meta": { "externalAccountRequired": ctx.config.eab_required() },
        }),
    )
}

/// The verified request: who signed it (the account for `kid`), its payload.
pub(crate) struct Signed {
    pub(crate) req: mutual_acme::Request,
    pub(crate) account: Option<(String, Account)>,
}

async fn authenticate(ctx: &Ctx<'_>, resource: &str, body: &[u8]) -> Result<Signed, Problem> {
    let req = mutual_acme::parse(body, BODY_LIMIT)?;
    let expect = match resource {
        "new-account" => Expect::Jwk,
        "revoke-cert" => Expect::Either,
        _ => Expect::Kid,
    };
    req.check(&ctx.url(resource), expect)?;
    if !ctx.app.acme.nonces.consume(&req.nonce) {
        return Err(Problem::new(
            ProblemType::BadNonce,
            format!(
                "the nonce \"{}\" is unknown, already used or expired",
                req.nonce
            ),
        ));
    }
    match &req.signer {
        Signer::Jwk(jwk) => {
            req.verify(&jwk.public_key()?)?;
            Ok(Signed { req, account: None })
        }
        Signer::Kid(kid) => {
            let id = kid
                .strip_prefix(&ctx.url("account/"))
                .ok_or_else(|| {
                    Problem::new(
                        ProblemType::AccountDoesNotExist,
                        format!("\"{kid}\" is not an account URL of this directory"),
                    )
                })?
                .to_string();
            let id = id.as_str();
            let (_, account): (_, Account) = ctx.get("account", id).await.map_err(|_| {
                Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("account \"{kid}\" does not exist"),
                )
            })?;
            if account.dir != ctx.dir.prefix {
                return Err(Problem::new(
                    ProblemType::AccountDoesNotExist,
                    format!("account \"{kid}\" does not exist on this directory"),
                ));
            }
            req.verify(&account.jwk.public_key()?)?;
            mutual_acme::check_account(kid, &account.status)?;
            ctx.app.acme.rate_ok(id)?;
            let id = id.to_string();
            Ok(Signed {
                req,
                account: Some((id, account)),
            })
        }
    }
}

async fn post(ctx: &Ctx<'_>, resource: &str, body: &[u8]) -> Result<Answer, Problem> {
    let signed = authenticate(ctx, resource, body).await?;
    let mut parts = resource.splitn(3, '/');
    let (head, id, tail) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let mut answer = match (head, tail) {
        ("new-account", _) => crate::acme_account::new_account(ctx, &signed).await?,
        ("revoke-cert", _) => crate::acme_account::revoke(ctx, &signed).await?,
        _ => {
            let Some((acct_id, account)) = &signed.account else {
                return Err(Problem::malformed("this resource takes an account's kid"));
            };
            match (head, tail) {
                ("account", "") => {
                    crate::acme_account::account_update(ctx, &signed, acct_id, id, account.clone())
                        .await?
                }
                ("account", "orders") => crate::acme_account::orders_list(ctx, acct_id, id).await?,
                ("key-change", _) => {
                    crate::acme_account::key_change(ctx, &signed, acct_id, account.clone()).await?
                }
                ("new-order", _) => crate::acme_order::new_order(ctx, &signed, acct_id).await?,
                ("order", "") => crate::acme_order::order_get(ctx, acct_id, id).await?,
                ("order", "finalize") => {
                    crate::acme_order::finalize(ctx, &signed, acct_id, id).await?
                }
                ("order", "cert") => crate::acme_order::cert_get(ctx, acct_id, id).await?,
                ("authorization", "") => {
                    crate::acme_order::authz_post(ctx, &signed, acct_id, id).await?
                }
                ("challenge", t) if !t.is_empty() => {
                    crate::acme_order::challenge_post(ctx, &signed, acct_id, id, t, account).await?
                }
                _ => {
                    return Err(
                        Problem::malformed(format!("no ACME resource \"{resource}\""))
                            .with_status(404),
                    )
                }
            }
        }
    };
    if answer.account.is_empty() {
        answer.account = signed.account.map(|a| a.0).unwrap_or_default();
    }
    Ok(answer)
}

/// Removes the orders and authorizations that expired more than a day before `now`: tidy's
/// `tidy_acme`.
pub(crate) async fn tidy(
    app: &App,
    mount: &str,
    now: OffsetDateTime,
) -> Result<u64, mutual_store::StoreError> {
    app.store
        .acme_tidy(mount, &["order", "authz"], now.unix_timestamp() - ORDER_TTL)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_paths() {
        let d = |p: &str, i: Option<&str>, r: Option<&str>| DirPath {
            prefix: p.into(),
            issuer: i.map(String::from),
            role: r.map(String::from),
        };
        for (rest, want) in [
            ("acme/directory", Some((d("", None, None), "directory"))),
            (
                "acme/order/x/finalize",
                Some((d("", None, None), "order/x/finalize")),
            ),
            (
                "roles/web/acme/new-nonce",
                Some((d("roles/web/", None, Some("web")), "new-nonce")),
            ),
            (
                "roles/acme/acme/directory",
                Some((d("roles/acme/", None, Some("acme")), "directory")),
            ),
            (
                "issuer/default/acme/new-account",
                Some((d("issuer/default/", Some("default"), None), "new-account")),
            ),
            (
                "issuer/default/roles/web/acme/challenge/a/http-01",
                Some((
                    d("issuer/default/roles/web/", Some("default"), Some("web")),
                    "challenge/a/http-01",
                )),
            ),
            ("acme", None),
            ("acme/", None),
            ("roles/web", None),
            ("roles//acme/directory", None),
            ("issue/web", None),
        ] {
            assert_eq!(directory_of(rest), want, "{rest}");
        }
        assert!(is_protocol("acme/directory"));
        assert!(!is_protocol("roles/web/acme/new-eab"));
    }

    #[test]
    fn nonces_are_single_use() {
        let n = MemoryNonces::default();
        let a = n.issue();
        assert!(n.consume(&a));
        assert!(!n.consume(&a));
        assert!(!n.consume("never-issued"));
    }
}
