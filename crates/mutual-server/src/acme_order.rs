//! ACME orders, authorizations and challenges (RFC 8555 §7.4–7.5): the role's rules applied at
//! new-order and again at finalize (the same `sign_csr` and refusals as `sign/:role`), the
//! certificate with its chain, and the outcome of a validation recorded on its authorization.

use std::sync::{atomic::Ordering, Arc};

use axum::http::StatusCode;
use mutual_acme::{
    AuthzStatus, ChallengeEvent, ChallengeStatus, Identifier, OrderStatus, Problem, ProblemType,
};
use mutual_pki::role::{CheckContext, IssueRequest, RequestKey, Role};
use mutual_store::{AcmeObject, CaRecord};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    acme::{
        internal, new_id, resolve_issuer, Account, Answer, Authz, Challenge, Ctx, IssuedCert,
        Order, Signed, CSR_LIMIT, ORDER_TTL,
    },
    pki::rfc3339,
    state::{App, Mount},
};

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

pub(crate) async fn new_order(ctx: &Ctx<'_>, s: &Signed, acct_id: &str) -> Result<Answer, Problem> {
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
    let ca = resolve_issuer(ctx.app, ctx.mount, ctx.dir.issuer.as_deref()).await?;
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

pub(crate) async fn order_get(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Answer, Problem> {
    let order = current_order(ctx, acct_id, id).await?;
    Ok(Answer::json(StatusCode::OK, order_json(ctx, id, &order))
        .located(ctx.url(&format!("order/{id}"))))
}

pub(crate) async fn finalize(
    ctx: &Ctx<'_>,
    s: &Signed,
    acct_id: &str,
    id: &str,
) -> Result<Answer, Problem> {
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
    let ca = resolve_issuer(ctx.app, ctx.mount, ctx.dir.issuer.as_deref()).await?;
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
    let (mut issued, row) = signed.into_issued(&ca).map_err(internal)?;
    if !role.no_store {
        let request = Some(format!(
            "{}/{}acme/order/{id}/finalize",
            ctx.path(),
            ctx.dir.prefix
        ));
        ctx.app
            .writer
            .record_issued(row, std::mem::take(&mut issued.names), None, request)
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

pub(crate) async fn cert_get(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Answer, Problem> {
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

pub(crate) async fn authz_post(
    ctx: &Ctx<'_>,
    s: &Signed,
    acct_id: &str,
    id: &str,
) -> Result<Answer, Problem> {
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

pub(crate) async fn challenge_post(
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
