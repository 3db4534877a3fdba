//! ACME accounts (RFC 8555 §7.3): creation (with an external account binding when the
//! directory requires one), update, deactivation, key change, the list of orders; and
//! revocation (§7.6) by the account that ordered a certificate or by the certificate's key.

use axum::http::StatusCode;
use mutual_acme::{Problem, ProblemType, Signer};
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::acme::{internal, new_id, Account, Answer, Ctx, IssuedCert, Signed};
use crate::acme_config::EabKey;

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

pub(crate) async fn new_account(ctx: &Ctx<'_>, s: &Signed) -> Result<Answer, Problem> {
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

pub(crate) async fn account_update(
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
        if account.status == "deactivated" {
            deactivate_authorizations(ctx, id).await?;
        }
    }
    Ok(
        Answer::json(StatusCode::OK, account_json(ctx, id, &account))
            .located(ctx.url(&format!("account/{id}"))),
    )
}

pub(crate) async fn orders_list(ctx: &Ctx<'_>, acct_id: &str, id: &str) -> Result<Answer, Problem> {
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

pub(crate) async fn key_change(
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

#[derive(Deserialize)]
struct Revoke {
    certificate: String,
    reason: Option<u8>,
}

pub(crate) async fn revoke(ctx: &Ctx<'_>, s: &Signed) -> Result<Answer, Problem> {
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

/// RFC 8555 §7.3.6: a deactivated account's pending authorizations are deactivated with it.
async fn deactivate_authorizations(ctx: &Ctx<'_>, account: &str) -> Result<(), Problem> {
    let all = ctx
        .app
        .store
        .acme_list(ctx.path(), "authz", Some(account))
        .await
        .map_err(internal)?;
    for obj in all {
        let Ok(mut authz) = serde_json::from_str::<crate::acme::Authz>(&obj.body) else {
            continue;
        };
        if authz.status == mutual_acme::AuthzStatus::Pending {
            authz.status = mutual_acme::AuthzStatus::Deactivated;
            ctx.put("authz", &obj.id, account, "", &authz, obj.expires)
                .await?;
        }
    }
    Ok(())
}
