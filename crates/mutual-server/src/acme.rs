//! The ACME server (RFC 8555) of every pki mount, at Vault's paths: `acme/…`,
//! `roles/:role/acme/…`, `issuer/:ref/acme/…` and `issuer/:ref/roles/:role/acme/…`. The
//! protocol's rules (JWS, header checks, state machines, problem documents) are
//! `mutual-acme`'s; here are the requests, the stored objects, issuance through the same
//! `sign_csr` as `sign/:role` and the answers with their headers. Challenges are validated by
//! `acme_validate.rs`, the operator paths are `acme_config.rs`.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
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
    AuthzStatus, ChallengeEvent, ChallengeStatus, Expect, Identifier, Jwk, OrderStatus, Problem,
    ProblemType, Signer,
};
use mutual_pki::role::{CheckContext, IssueRequest, RequestKey, Role};
use mutual_store::{AcmeObject, CaRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    acme_config::{acme_config, cluster_config, AcmeConfig, EabKey},
    acme_validate::Validation,
    pki::rfc3339,
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
const ORDER_TTL: i64 = 24 * 3600;
/// Requests per account per minute.
const RATE_PER_MINUTE: u32 = 300;

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
    pub(crate) validation: Validation,
    counts: Mutex<HashMap<(String, &'static str), u64>>,
    pub(crate) issued: AtomicU64,
}

impl Default for AcmeState {
    fn default() -> Self {
        AcmeState {
            nonces: Box::new(MemoryNonces::default()),
            rates: Mutex::new(HashMap::new()),
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

    fn rate_ok(&self, account: &str) -> Result<(), Problem> {
        let now = OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
        let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
        let w = rates.entry(account.to_string()).or_default();
        if w.allow(now, RATE_PER_MINUTE, 60) {
            return Ok(());
        }
        Err(Problem::new(
            ProblemType::RateLimited,
            format!(
                "account {account} made more than {RATE_PER_MINUTE} requests this minute; retry in {}s",
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

/// The issuer an ACME directory issues with: `issuer/:ref` resolved through what the mount
/// offers. One function so that many issuers per mount can re-point it.
pub(crate) fn resolve_issuer(
    mount: &Mount,
    reference: Option<&str>,
) -> Result<Arc<CaRecord>, Problem> {
    match reference {
        None | Some("default") => {}
        Some(r) if r == mount.record.uuid => {}
        Some(r) => {
            return Err(
                Problem::malformed(format!("unable to find issuer \"{r}\" on this mount"))
                    .with_status(404),
            )
        }
    }
    mount.ca.clone().ok_or_else(|| {
        Problem::new(
            ProblemType::ServerInternal,
            format!("mount \"{}\" has no issuer yet", mount.record.path),
        )
    })
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    status: String,
    contact: Vec<String>,
    jwk: Jwk,
    dir: String,
    created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    status: OrderStatus,
    expires: i64,
    identifiers: Vec<Identifier>,
    authzs: Vec<String>,
    account: String,
    dir: String,
    serial: Option<String>,
    error: Option<Value>,
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
struct IssuedCert {
    chain: String,
    account: String,
}

/// One request's context.
struct Ctx<'a> {
    app: &'a Arc<App>,
    mount: &'a Arc<Mount>,
    dir: DirPath,
    config: AcmeConfig,
    /// `https://…/v1/<mount>/<prefix>acme/`.
    base: String,
}

impl Ctx<'_> {
    fn path(&self) -> &str {
        &self.mount.record.path
    }

    fn url(&self, resource: &str) -> String {
        format!("{}{resource}", self.base)
    }

    async fn get<T: for<'de> Deserialize<'de>>(
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

    async fn put<T: Serialize>(
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

fn internal(e: impl std::fmt::Display) -> Problem {
    Problem::new(ProblemType::ServerInternal, e.to_string())
}

/// What a handler answers: status, JSON or PEM body, Location, extra Links.
struct Answer {
    status: StatusCode,
    body: Option<(&'static str, Vec<u8>)>,
    location: Option<String>,
    links: Vec<String>,
    decision: &'static str,
    account: String,
}

impl Answer {
    fn json(status: StatusCode, v: Value) -> Answer {
        Answer {
            status,
            body: Some(("application/json", v.to_string().into_bytes())),
            location: None,
            links: vec![],
            decision: "ok",
            account: String::new(),
        }
    }
    fn located(mut self, url: String) -> Answer {
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
        resolve_issuer(mount, Some(issuer))?;
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
struct Signed {
    req: mutual_acme::Request,
    account: Option<(String, Account)>,
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
        ("new-account", _) => new_account(ctx, &signed).await?,
        ("revoke-cert", _) => revoke(ctx, &signed).await?,
        _ => {
            let Some((acct_id, account)) = &signed.account else {
                return Err(Problem::malformed("this resource takes an account's kid"));
            };
            match (head, tail) {
                ("account", "") => {
                    account_update(ctx, &signed, acct_id, id, account.clone()).await?
                }
                ("account", "orders") => orders_list(ctx, acct_id, id).await?,
                ("key-change", _) => key_change(ctx, &signed, acct_id, account.clone()).await?,
                ("new-order", _) => new_order(ctx, &signed, acct_id).await?,
                ("order", "") => order_get(ctx, acct_id, id).await?,
                ("order", "finalize") => finalize(ctx, &signed, acct_id, id).await?,
                ("order", "cert") => cert_get(ctx, acct_id, id).await?,
                ("authorization", "") => authz_post(ctx, &signed, acct_id, id).await?,
                ("challenge", t) if !t.is_empty() => {
                    challenge_post(ctx, &signed, acct_id, id, t, account).await?
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

fn account_json(ctx: &Ctx<'_>, id: &str, a: &Account) -> Value {
    json!({
        "status": a.status,
        "contact": a.contact,
        "orders": ctx.url(&format!("account/{id}/orders")),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NewAccount {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    only_return_existing: bool,
    external_account_binding: Option<Value>,
}

fn check_contacts(contact: &[String]) -> Result<(), Problem> {
    for c in contact {
        if !c.starts_with("mailto:") {
            return Err(Problem::new(
                ProblemType::Malformed,
                format!("contact \"{c}\" is not a mailto: URL"),
            ));
        }
    }
    Ok(())
}

async fn new_account(ctx: &Ctx<'_>, s: &Signed) -> Result<Answer, Problem> {
    let Signer::Jwk(jwk) = &s.req.signer else {
        return Err(Problem::malformed("new-account takes a jwk"));
    };
    let payload: NewAccount = serde_json::from_value(s.req.json()?)
        .map_err(|e| Problem::malformed(format!("the new-account payload is not valid: {e}")))?;
    let thumb = jwk.thumbprint()?;
    if let Some(found) = ctx
        .app
        .store
        .acme_find(ctx.path(), "account", &thumb)
        .await
        .map_err(internal)?
    {
        let account: Account = serde_json::from_str(&found.body).map_err(internal)?;
        if account.status != "valid" {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                format!(
                    "the key of account \"{}\" was deactivated with it; use a new key",
                    ctx.url(&format!("account/{}", found.id))
                ),
            ));
        }
        let mut a = Answer::json(StatusCode::OK, account_json(ctx, &found.id, &account))
            .located(ctx.url(&format!("account/{}", found.id)));
        a.account = found.id;
        return Ok(a);
    }
    if payload.only_return_existing {
        return Err(Problem::new(
            ProblemType::AccountDoesNotExist,
            "no account has this key (onlyReturnExisting)",
        ));
    }
    check_contacts(&payload.contact)?;
    let id = new_id();
    match &payload.external_account_binding {
        Some(eab) => {
            let kid = mutual_acme::eab_kid(eab)?;
            let unknown = || Problem::new(ProblemType::Unauthorized, format!("external account binding key \"{kid}\" is unknown or already used"));
            let obj = ctx.app.store.acme_get(ctx.path(), "eab", &kid).await.map_err(internal)?.ok_or_else(unknown)?;
            let key: EabKey = serde_json::from_str(&obj.body).map_err(internal)?;
            if key.dir != ctx.dir.prefix {
                return Err(Problem::new(ProblemType::Unauthorized, format!("external account binding key \"{kid}\" was made for another directory ({}acme/directory)", key.dir)));
            }
            let raw = mutual_acme::b64url_decode(&key.key, "the EAB key")?;
            mutual_acme::verify_eab(eab, &ctx.url("new-account"), jwk, &raw)?;
            // Single use: the key is spent once it bound an account.
            if !ctx.app.store.acme_delete(ctx.path(), "eab", &kid).await.map_err(internal)? {
                return Err(unknown());
            }
        }
        None if ctx.config.eab_required() => {
            return Err(Problem::new(
                ProblemType::ExternalAccountRequired,
                format!("this directory requires an external account binding (eab_policy={}); ask an operator for one from acme/new-eab", ctx.config.eab_policy),
            ))
        }
        None => {}
    }
    let account = Account {
        status: "valid".into(),
        contact: payload.contact,
        jwk: jwk.clone(),
        dir: ctx.dir.prefix.clone(),
        created: OffsetDateTime::now_utc().unix_timestamp(),
    };
    ctx.put("account", &id, "", &thumb, &account, 0).await?;
    let mut a = Answer::json(StatusCode::CREATED, account_json(ctx, &id, &account))
        .located(ctx.url(&format!("account/{id}")));
    a.account = id;
    Ok(a)
}

async fn account_update(
    ctx: &Ctx<'_>,
    s: &Signed,
    acct_id: &str,
    id: &str,
    mut account: Account,
) -> Result<Answer, Problem> {
    if id != acct_id {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            "an account can only read or change itself",
        ));
    }
    if !s.req.is_post_as_get() {
        let v = s.req.json()?;
        if let Some(contact) = v.get("contact") {
            let contact: Vec<String> = serde_json::from_value(contact.clone())
                .map_err(|e| Problem::malformed(format!("contact: {e}")))?;
            check_contacts(&contact)?;
            account.contact = contact;
        }
        match v.get("status").and_then(Value::as_str) {
            Some("deactivated") => account.status = "deactivated".into(),
            Some("valid") | None => {}
            Some(other) => {
                return Err(Problem::malformed(format!(
                    "an account's status can only be set to \"deactivated\", not \"{other}\""
                )))
            }
        }
        let thumb = account.jwk.thumbprint()?;
        ctx.put("account", id, "", &thumb, &account, 0).await?;
    }
    Ok(
        Answer::json(StatusCode::OK, account_json(ctx, id, &account))
            .located(ctx.url(&format!("account/{id}"))),
    )
}

async fn orders_list(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Answer, Problem> {
    if id != acct_id {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            "an account can only list its own orders",
        ));
    }
    let orders = ctx
        .app
        .store
        .acme_list(ctx.path(), "order", Some(acct_id))
        .await
        .map_err(internal)?;
    let urls: Vec<String> = orders
        .iter()
        .map(|o| ctx.url(&format!("order/{}", o.id)))
        .collect();
    Ok(Answer::json(StatusCode::OK, json!({ "orders": urls })))
}

async fn key_change(
    ctx: &Ctx<'_>,
    s: &Signed,
    acct_id: &str,
    mut account: Account,
) -> Result<Answer, Problem> {
    let kid = ctx.url(&format!("account/{acct_id}"));
    let change = mutual_acme::check_key_change(&s.req, &kid, &account.jwk)?;
    if let Some(other) = ctx
        .app
        .store
        .acme_find(ctx.path(), "account", &change.thumbprint)
        .await
        .map_err(internal)?
    {
        let mut a = Answer::json(
            StatusCode::CONFLICT,
            json!({
                "type": "urn:ietf:params:acme:error:malformed",
                "detail": "the new key is already the key of another account",
                "status": 409,
            }),
        )
        .located(ctx.url(&format!("account/{}", other.id)));
        a.decision = "refused";
        a.body = a.body.map(|(_, b)| ("application/problem+json", b));
        return Ok(a);
    }
    account.jwk = change.new_key;
    ctx.put("account", acct_id, "", &change.thumbprint, &account, 0)
        .await?;
    Ok(Answer::json(StatusCode::OK, account_json(ctx, acct_id, &account)).located(kid))
}

/// The role a directory issues with.
fn directory_role(ctx: &Ctx<'_>) -> Result<Arc<Role>, Problem> {
    let name = match &ctx.dir.role {
        Some(r) => r.clone(),
        None => match ctx.config.default_directory_policy.strip_prefix("role:") {
            Some(r) => r.to_string(),
            None => return Ok(Arc::new(mutual_store::sign_verbatim_role(None))),
        },
    };
    ctx.mount.roles.get(&name).cloned().ok_or_else(|| {
        Problem::new(
            ProblemType::ServerInternal,
            format!("role \"{name}\" of this directory does not exist"),
        )
    })
}

fn check_context(ca: &CaRecord, mount: &Mount) -> CheckContext {
    CheckContext {
        now: OffsetDateTime::now_utc(),
        ca_name: ca.name.clone(),
        ca_not_after: ca.not_after,
        system_max_ttl: if mount.record.max_lease_ttl.is_zero() {
            mutual_store::SYSTEM_MAX_TTL
        } else {
            mount.record.max_lease_ttl
        },
    }
}

/// The role as ACME applies it: the CSR's names were checked against the order, so the request
/// carries them whatever `use_csr_sans` says; an order of IP addresses only has no name for
/// a CN, so `require_cn` cannot apply to it.
fn acme_role(role: &Role, req: &IssueRequest) -> Role {
    let mut role = role.clone();
    role.use_csr_sans = false;
    role.use_csr_common_name = false;
    if req.common_name.is_empty() {
        role.require_cn = false;
    }
    role
}

fn request_for(ids: &[Identifier]) -> IssueRequest {
    let dns: Vec<String> = ids
        .iter()
        .filter(|i| i.kind == "dns")
        .map(|i| i.value.clone())
        .collect();
    IssueRequest {
        common_name: dns.first().cloned().unwrap_or_default(),
        alt_names: dns,
        ip_sans: ids
            .iter()
            .filter(|i| i.kind == "ip")
            .map(|i| i.value.clone())
            .collect(),
        key: RequestKey::Generated,
        ..IssueRequest::default()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewOrder {
    identifiers: Vec<Identifier>,
    not_before: Option<String>,
    not_after: Option<String>,
}

async fn new_order(ctx: &Ctx<'_>, s: &Signed, acct_id: &str) -> Result<Answer, Problem> {
    let payload: NewOrder = serde_json::from_value(s.req.json()?)
        .map_err(|e| Problem::malformed(format!("the new-order payload is not valid: {e}")))?;
    if payload.not_before.is_some() || payload.not_after.is_some() {
        return Err(Problem::malformed(
            "notBefore and notAfter are not accepted: the role's TTL applies",
        ));
    }
    if payload.identifiers.is_empty() || payload.identifiers.len() > 100 {
        return Err(Problem::malformed(
            "an order needs between 1 and 100 identifiers",
        ));
    }
    let mut ids = payload.identifiers;
    for i in &mut ids {
        i.value = i.value.to_ascii_lowercase();
        mutual_acme::check_identifier(i)?;
    }
    ids.sort();
    ids.dedup();
    // The role's rules first: a name it refuses is refused now, before any challenge.
    let role = directory_role(ctx)?;
    let ca = resolve_issuer(ctx.mount, ctx.dir.issuer.as_deref())?;
    let mut req = request_for(&ids);
    crate::pki::default_ttl(ctx.mount, &role, &mut req);
    acme_role(&role, &req)
        .check(&req, &check_context(&ca, ctx.mount))
        .map_err(|r| Problem::new(ProblemType::RejectedIdentifier, r.to_string()))?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let expires = now + ORDER_TTL;
    let mut authz_ids = vec![];
    for ident in &ids {
        let wildcard = ident.value.starts_with("*.");
        let bare = Identifier {
            kind: ident.kind.clone(),
            value: ident.value.trim_start_matches("*.").to_string(),
        };
        let challenges = mutual_acme::challenge_types(ident)
            .iter()
            .map(|t| Challenge {
                kind: (*t).into(),
                token: new_id(),
                status: ChallengeStatus::Pending,
                validated: None,
                error: None,
            })
            .collect();
        let authz = Authz {
            status: AuthzStatus::Pending,
            expires,
            identifier: bare,
            wildcard,
            challenges,
            account: acct_id.into(),
            dir: ctx.dir.prefix.clone(),
        };
        let id = new_id();
        ctx.put("authz", &id, acct_id, "", &authz, expires).await?;
        authz_ids.push(id);
    }
    let order = Order {
        status: OrderStatus::Pending,
        expires,
        identifiers: ids,
        authzs: authz_ids,
        account: acct_id.into(),
        dir: ctx.dir.prefix.clone(),
        serial: None,
        error: None,
    };
    let id = new_id();
    ctx.put("order", &id, acct_id, "", &order, expires).await?;
    Ok(
        Answer::json(StatusCode::CREATED, order_json(ctx, &id, &order))
            .located(ctx.url(&format!("order/{id}"))),
    )
}

fn order_json(ctx: &Ctx<'_>, id: &str, o: &Order) -> Value {
    let mut v = json!({
        "status": o.status,
        "expires": OffsetDateTime::from_unix_timestamp(o.expires).map(rfc3339).unwrap_or_default(),
        "identifiers": o.identifiers,
        "authorizations": o.authzs.iter().map(|a| ctx.url(&format!("authorization/{a}"))).collect::<Vec<_>>(),
        "finalize": ctx.url(&format!("order/{id}/finalize")),
    });
    if o.serial.is_some() {
        v["certificate"] = ctx.url(&format!("order/{id}/cert")).into();
    }
    if let Some(e) = &o.error {
        v["error"] = e.clone();
    }
    v
}

/// The order with its status brought up to date from its authorizations.
async fn current_order(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Order, Problem> {
    let (_, mut order): (_, Order) = ctx.get("order", id).await?;
    if order.account != acct_id {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            format!("order \"{id}\" belongs to another account"),
        ));
    }
    let mut statuses = vec![];
    for a in &order.authzs {
        let (_, authz): (_, Authz) = ctx.get("authz", a).await?;
        let expired = authz.expires < OffsetDateTime::now_utc().unix_timestamp()
            && authz.status == AuthzStatus::Pending;
        statuses.push(if expired {
            AuthzStatus::Expired
        } else {
            authz.status
        });
    }
    let expired = order.expires < OffsetDateTime::now_utc().unix_timestamp();
    let next = mutual_acme::order_status(order.status, &statuses, expired);
    if next != order.status {
        order.status = next;
        ctx.put("order", id, acct_id, "", &order, order.expires)
            .await?;
    }
    Ok(order)
}

async fn order_get(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Answer, Problem> {
    let order = current_order(ctx, acct_id, id).await?;
    Ok(Answer::json(StatusCode::OK, order_json(ctx, id, &order))
        .located(ctx.url(&format!("order/{id}"))))
}

async fn finalize(ctx: &Ctx<'_>, s: &Signed, acct_id: &str, id: &str) -> Result<Answer, Problem> {
    let mut order = current_order(ctx, acct_id, id).await?;
    order.status.check_finalize()?;
    let v = s.req.json()?;
    let csr_b64 = v
        .get("csr")
        .and_then(Value::as_str)
        .ok_or_else(|| Problem::malformed("finalize needs \"csr\""))?;
    // The JWS body limit bounds what is decoded here.
    let der = mutual_acme::b64url_decode(csr_b64, "the CSR")?;
    if der.len() > CSR_LIMIT {
        return Err(Problem::new(
            ProblemType::BadCsr,
            format!("the CSR is {} bytes; the limit is {CSR_LIMIT}", der.len()),
        ));
    }
    let role = directory_role(ctx)?;
    let ca = resolve_issuer(ctx.mount, ctx.dir.issuer.as_deref())?;
    let mount = ctx.mount.clone();
    let identifiers = order.identifiers.clone();
    let heavy = crate::pki::is_rsa(ca.key.key_type().kind());
    let (ca2, role2) = (ca.clone(), role.clone());
    let signed = crate::pki::cpu(heavy, move || {
        let parsed = mutual_pki::csr::parse(&der)?;
        Ok(signed_for_order(
            &ca2,
            &role2,
            &mount,
            &parsed,
            &identifiers,
        ))
    })
    .await
    .map_err(|e| Problem::new(ProblemType::BadCsr, e.to_string()))??;
    let (issued, row) = signed.into_issued(&ca).map_err(internal)?;
    if !role.no_store {
        let request = Some(format!(
            "{}/{}acme/order/{id}/finalize",
            ctx.path(),
            ctx.dir.prefix
        ));
        ctx.app
            .writer
            .record_for(row, None, request)
            .await
            .map_err(internal)?;
    }
    let mut chain = issued.cert_pem.clone();
    for c in &issued.ca_chain_pem {
        if !chain.ends_with('\n') {
            chain.push('\n');
        }
        chain.push_str(c);
    }
    let serial = issued.serial.to_string();
    ctx.put(
        "cert",
        &serial,
        acct_id,
        "",
        &IssuedCert {
            chain,
            account: acct_id.into(),
        },
        0,
    )
    .await?;
    order.status = OrderStatus::Valid;
    order.serial = Some(serial.clone());
    ctx.put("order", id, acct_id, "", &order, order.expires)
        .await?;
    ctx.app.acme.issued.fetch_add(1, Ordering::Relaxed);
    tracing::info!(mount = %ctx.path(), account = %acct_id, order = %id, serial = %serial, decision = "issued", "acme certificate issued");
    Ok(Answer::json(StatusCode::OK, order_json(ctx, id, &order))
        .located(ctx.url(&format!("order/{id}"))))
}

/// The CSR's names against the order, then the role's rules and the signature: the same
/// `sign_csr` (and refusals) as `sign/:role`.
fn signed_for_order(
    ca: &CaRecord,
    role: &Role,
    mount: &Mount,
    csr: &mutual_pki::csr::ParsedCsr,
    ids: &[Identifier],
) -> Result<mutual_store::Signed, Problem> {
    mutual_acme::check_csr_names(ids, &csr.common_name, &csr.dns_names, &csr.ip_addresses)?;
    let mut req = request_for(ids);
    // An IP address as the CSR's CN is already among the IP SANs.
    if !csr.common_name.is_empty() && csr.common_name.parse::<std::net::IpAddr>().is_err() {
        req.common_name = csr.common_name.to_ascii_lowercase();
    }
    crate::pki::default_ttl(mount, role, &mut req);
    let role = acme_role(role, &req);
    mutual_store::sign_csr(
        ca,
        &role,
        mount.record.max_lease_ttl,
        csr,
        &req,
        OffsetDateTime::now_utc(),
    )
    .map_err(|e| match e {
        mutual_store::AuthorityError::Refused(r) => {
            Problem::new(ProblemType::RejectedIdentifier, r.to_string())
        }
        mutual_store::AuthorityError::OutsideConstraints(v) => {
            Problem::new(ProblemType::RejectedIdentifier, v.to_string())
        }
        other => Problem::new(ProblemType::BadCsr, other.to_string()),
    })
}

async fn cert_get(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Answer, Problem> {
    let order = current_order(ctx, acct_id, id).await?;
    let serial = order.serial.ok_or_else(|| {
        Problem::new(
            ProblemType::OrderNotReady,
            "the order has no certificate yet",
        )
    })?;
    let (_, cert): (_, IssuedCert) = ctx.get("cert", &serial).await?;
    Ok(Answer {
        body: Some(("application/pem-certificate-chain", cert.chain.into_bytes())),
        ..Answer::json(StatusCode::OK, Value::Null)
    })
}

pub(crate) fn authz_json(base: &str, id: &str, a: &Authz) -> Value {
    let mut v = json!({
        "identifier": a.identifier,
        "status": a.status,
        "expires": OffsetDateTime::from_unix_timestamp(a.expires).map(rfc3339).unwrap_or_default(),
        "challenges": a.challenges.iter().map(|c| challenge_json(base, id, c)).collect::<Vec<_>>(),
    });
    if a.wildcard {
        v["wildcard"] = true.into();
    }
    v
}

fn challenge_json(base: &str, authz: &str, c: &Challenge) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": format!("{base}challenge/{authz}/{}", c.kind),
        "token": c.token,
        "status": c.status,
    });
    if let Some(t) = c
        .validated
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
    {
        v["validated"] = rfc3339(t).into();
    }
    if let Some(e) = &c.error {
        v["error"] = e.clone();
    }
    v
}

async fn authz_post(ctx: &Ctx<'_>, s: &Signed, acct_id: &str, id: &str) -> Result<Answer, Problem> {
    let (_, mut authz): (_, Authz) = ctx.get("authz", id).await?;
    if authz.account != acct_id {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            format!("authorization \"{id}\" belongs to another account"),
        ));
    }
    if !s.req.is_post_as_get() {
        match s.req.json()?.get("status").and_then(Value::as_str) {
            Some("deactivated")
                if matches!(authz.status, AuthzStatus::Pending | AuthzStatus::Valid) =>
            {
                authz.status = AuthzStatus::Deactivated;
                ctx.put("authz", id, acct_id, "", &authz, authz.expires)
                    .await?;
            }
            Some(other) => {
                return Err(Problem::malformed(
                    format!(
                        "an authorization that is {:?} cannot become \"{other}\"",
                        authz.status
                    )
                    .to_lowercase(),
                ))
            }
            None => {}
        }
    }
    Ok(
        Answer::json(StatusCode::OK, authz_json(&ctx.base, id, &authz))
            .located(ctx.url(&format!("authorization/{id}"))),
    )
}

async fn challenge_post(
    ctx: &Ctx<'_>,
    s: &Signed,
    acct_id: &str,
    authz_id: &str,
    kind: &str,
    account: &Account,
) -> Result<Answer, Problem> {
    let (_, mut authz): (_, Authz) = ctx.get("authz", authz_id).await?;
    if authz.account != acct_id {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            format!("authorization \"{authz_id}\" belongs to another account"),
        ));
    }
    let authz_status = authz.status;
    let Some(ch) = authz.challenges.iter_mut().find(|c| c.kind == kind) else {
        return Err(Problem::malformed(format!(
            "authorization \"{authz_id}\" has no {kind} challenge"
        ))
        .with_status(404));
    };
    if !s.req.is_post_as_get() {
        let before = ch.status;
        ch.status = mutual_acme::challenge_after(ch.status, authz_status, ChallengeEvent::Respond)?;
        if before == ChallengeStatus::Pending && ch.status == ChallengeStatus::Processing {
            let key_auth = mutual_acme::key_authorization(&ch.token, &account.jwk.thumbprint()?);
            let job = crate::acme_validate::Job {
                mount: ctx.path().to_string(),
                authz: authz_id.to_string(),
                kind: kind.to_string(),
                identifier: authz.identifier.clone(),
                key_authorization: key_auth,
                resolver: ctx.config.dns_resolver.clone(),
            };
            let snapshot = ch.clone();
            ctx.put("authz", authz_id, acct_id, "", &authz, authz.expires)
                .await?;
            crate::acme_validate::spawn(ctx.app.clone(), job);
            let up = format!(
                "<{}>;rel=\"up\"",
                ctx.url(&format!("authorization/{authz_id}"))
            );
            let mut a = Answer::json(
                StatusCode::OK,
                challenge_json(&ctx.base, authz_id, &snapshot),
            );
            a.links.push(up);
            return Ok(a);
        }
    }
    let up = format!(
        "<{}>;rel=\"up\"",
        ctx.url(&format!("authorization/{authz_id}"))
    );
    let ch = ch.clone();
    let mut a = Answer::json(StatusCode::OK, challenge_json(&ctx.base, authz_id, &ch));
    a.links.push(up);
    Ok(a)
}

/// Records a validation's outcome on its authorization (called by `acme_validate`).
pub(crate) async fn record_validation(
    app: &App,
    job: &crate::acme_validate::Job,
    outcome: Result<(), Problem>,
) {
    let Ok(Some(obj)) = app.store.acme_get(&job.mount, "authz", &job.authz).await else {
        return;
    };
    let Ok(mut authz) = serde_json::from_str::<Authz>(&obj.body) else {
        return;
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let Some(ch) = authz.challenges.iter_mut().find(|c| c.kind == job.kind) else {
        return;
    };
    let event = if outcome.is_ok() {
        ChallengeEvent::Passed
    } else {
        ChallengeEvent::Failed
    };
    let Ok(next) = mutual_acme::challenge_after(ch.status, authz.status, event) else {
        return;
    };
    ch.status = next;
    match &outcome {
        Ok(()) => ch.validated = Some(now),
        Err(p) => ch.error = serde_json::to_value(p).ok(),
    }
    authz.status = mutual_acme::authz_after_challenge(authz.status, next);
    let body = serde_json::to_string(&authz).unwrap_or_default();
    let updated = AcmeObject { body, ..obj };
    if let Err(e) = app.store.acme_put(&job.mount, "authz", &updated).await {
        tracing::warn!(mount = %job.mount, authz = %job.authz, error = %e, "acme validation not recorded");
    }
}

#[derive(Deserialize)]
struct Revoke {
    certificate: String,
    reason: Option<u8>,
}

async fn revoke(ctx: &Ctx<'_>, s: &Signed) -> Result<Answer, Problem> {
    let payload: Revoke = serde_json::from_value(s.req.json()?)
        .map_err(|e| Problem::malformed(format!("the revoke-cert payload is not valid: {e}")))?;
    let der = mutual_acme::b64url_decode(&payload.certificate, "the certificate")?;
    let facts = mutual_pki::cert::facts(&der)
        .map_err(|e| Problem::malformed(format!("the certificate does not parse: {e}")))?;
    let serial = facts.serial.to_string();
    let not_ours = || {
        Problem::new(
            ProblemType::Unauthorized,
            format!("certificate {serial} was not issued by this mount's ACME server"),
        )
    };
    let (_, issued): (_, IssuedCert) = ctx.get("cert", &serial).await.map_err(|_| not_ours())?;
    match (&s.req.signer, &s.account) {
        (Signer::Kid(_), Some((acct_id, _))) if *acct_id == issued.account => {}
        (Signer::Kid(_), _) => {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                format!("certificate {serial} was issued to another account"),
            ));
        }
        (Signer::Jwk(jwk), _) => {
            if !crate::acme_validate::key_matches_cert(jwk, &der) {
                return Err(Problem::new(
                    ProblemType::Unauthorized,
                    format!("the JWS key is not the key of certificate {serial}"),
                ));
            }
        }
    }
    let reason = match payload.reason.unwrap_or(0) {
        0 => "unspecified",
        1 => "key_compromise",
        3 => "affiliation_changed",
        4 => "superseded",
        5 => "cessation_of_operation",
        n => {
            return Err(Problem::new(
                ProblemType::BadRevocationReason,
                format!("revocation reason {n} is not accepted (0, 1, 3, 4, 5)"),
            ))
        }
    };
    if let Ok(rec) = ctx.app.store.get_cert(&facts.serial).await {
        if rec.revoked_at.is_some() {
            return Err(Problem::new(
                ProblemType::AlreadyRevoked,
                format!("certificate {serial} is already revoked"),
            ));
        }
    }
    let params = crate::params::Params::parse(
        json!({"serial_number": serial, "reason": reason})
            .to_string()
            .as_bytes(),
        None,
    )
    .map_err(internal)?;
    crate::pki::revoke(ctx.app, ctx.mount, &params)
        .await
        .map_err(|e| Problem::malformed(e.to_string()))?;
    Ok(Answer {
        body: None,
        ..Answer::json(StatusCode::OK, Value::Null)
    })
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
