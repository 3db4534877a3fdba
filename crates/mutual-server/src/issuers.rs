//! Vault 1.11+'s issuers and keys of a mount: `LIST issuers`, `issuer/:ref` (read, update,
//! delete) and its `json`/`pem`/`der`/`crl…` forms, `issuer/:ref/{issue,sign,…}` (the
//! single-issuer handlers of `pki.rs`, run with that issuer as the mount's CA), `keys`,
//! `key/:ref`, `config/issuers`, `config/keys`. Generating, importing and rotating are
//! `issuer_admin`'s; `config/acme` and `config/cluster` are `acme_config`'s. The mount's default issuer is also the mount's CA (`Mount::ca`), so
//! the older paths act on it.

use std::sync::Arc;

use mutual_pki::{cert, crl, issuers as logic};
use mutual_store::{IssuerDefaults, IssuerRecord};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    params::Params,
    reply::Reply,
    state::{App, Mount},
    Op,
};

/// The suffixes of `issuer/:ref/…` read here.
const ISSUER_SUFFIXES: &[&str] = &[
    "",
    "json",
    "pem",
    "der",
    "crl",
    "crl/pem",
    "crl/der",
    "crl/delta",
    "crl/delta/pem",
    "crl/delta/der",
];

/// The operations of `issuer/:ref/…` that sign, run by `pki.rs` with the issuer as the CA.
const SIGNING: &[&str] = &[
    "issue",
    "sign",
    "sign-verbatim",
    "sign-intermediate",
    "sign-self-issued",
];

/// True for `issuer/:ref` and its served read suffixes.
pub fn is_issuer_path(tail: &str) -> bool {
    let (reference, rest) = tail.split_once('/').unwrap_or((tail, ""));
    !reference.is_empty() && ISSUER_SUFFIXES.contains(&rest)
}

pub(crate) fn not_found(what: &str, reference: &str) -> ApiError {
    // "unable to find" is the phrase Vault's clients (bao pki health-check) recognise as a
    // missing resource rather than a failure.
    ApiError::bad(format!(
        "unable to find {what} \"{reference}\" on this mount"
    ))
}

/// Colon-separated hex, as Vault prints key identifiers.
fn colon_hex(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

fn signature_algorithm(kind: &str) -> &'static str {
    match kind {
        "rsa" => "SHA256WithRSA",
        "ed25519" => "PureEd25519",
        _ => "ECDSAWithSHA256",
    }
}

/// The mount's issuers and defaults, as stored.
pub(crate) async fn all(
    app: &App,
    mount: &Mount,
) -> Result<(Vec<IssuerRecord>, IssuerDefaults), ApiError> {
    let path = &mount.record.path;
    Ok((
        app.store.list_issuers(path).await?,
        app.store.issuer_defaults(path).await?,
    ))
}

/// The issuer `reference` names on the mount (`default`, an ID or a name).
pub(crate) async fn resolve(
    app: &App,
    mount: &Mount,
    reference: &str,
) -> Result<IssuerRecord, ApiError> {
    let (all, defaults) = all(app, mount).await?;
    pick(&all, &defaults, reference)
        .cloned()
        .ok_or_else(|| not_found("issuer", reference))
}

pub(crate) fn pick<'a>(
    all: &'a [IssuerRecord],
    defaults: &IssuerDefaults,
    reference: &str,
) -> Option<&'a IssuerRecord> {
    let pairs: Vec<(String, String)> = all.iter().map(|i| (i.id.clone(), i.name.clone())).collect();
    let id = logic::resolve(reference, Some(defaults.default.as_str()), &pairs)?.to_string();
    all.iter().find(|i| i.id == id)
}

/// The mount as it would be with `issuer` as its CA: what `issuer/:ref/issue/…` and a role's
/// `issuer_ref` run the single-issuer handlers on.
pub(crate) async fn mount_with(
    app: &App,
    mount: &Mount,
    issuer: &IssuerRecord,
) -> Result<Arc<Mount>, ApiError> {
    if !logic::has_usage(&issuer.usage, "issuing-certificates") {
        return Err(ApiError::bad(format!(
            "issuer \"{}\" may not issue certificates (usage: {}); add issuing-certificates with a write to issuer/{}",
            label(issuer),
            issuer.usage,
            issuer.id
        )));
    }
    let ca = app.store.issuer_ca(issuer).await?.ok_or_else(|| {
        ApiError::bad(format!(
            "issuer \"{}\" has no key on this mount; import its key (keys/import) to sign with it",
            label(issuer)
        ))
    })?;
    let mut m = Mount::new(
        mount.record.clone(),
        Some(Arc::new(ca)),
        mount.roles.clone(),
    );
    m.issuer_fixed = true;
    m.issuer_not_after = not_after_behavior(&issuer.leaf_not_after_behavior);
    Ok(Arc::new(m))
}

/// An issuer's stored `leaf_not_after_behavior`.
pub(crate) fn not_after_behavior(text: &str) -> mutual_pki::role::NotAfterBehavior {
    use mutual_pki::role::NotAfterBehavior;
    match text {
        "truncate" => NotAfterBehavior::Truncate,
        "permit" => NotAfterBehavior::Permit,
        _ => NotAfterBehavior::Err,
    }
}

/// The role as it issues under the mount's CA: the issuer's `leaf_not_after_behavior` when it
/// is not Vault's default (Vault 1.11+ keeps it on the issuer); otherwise the role's own.
pub(crate) fn with_issuer_behavior(
    mount: &Mount,
    role: Arc<mutual_pki::role::Role>,
) -> Arc<mutual_pki::role::Role> {
    use mutual_pki::role::NotAfterBehavior;
    if mount.issuer_not_after == NotAfterBehavior::Err
        || role.leaf_not_after_behavior == mount.issuer_not_after
    {
        return role;
    }
    let mut r = (*role).clone();
    r.leaf_not_after_behavior = mount.issuer_not_after;
    Arc::new(r)
}

/// The mount a role issues on: its `issuer_ref`'s issuer, or the mount (the default) itself.
pub(crate) async fn mount_for_role(
    app: &App,
    mount: Arc<Mount>,
    role: &mutual_pki::role::Role,
) -> Result<Arc<Mount>, ApiError> {
    match role.vault_fields.get("issuer_ref").and_then(Value::as_str) {
        _ if mount.issuer_fixed => Ok(mount),
        Some(r) if !r.is_empty() && r != logic::DEFAULT_REF => mount_for_ref(app, &mount, r).await,
        _ => Ok(mount),
    }
}

/// The mount as the issuer `reference` names issues on it: [`mount_with`] once per served
/// mount and reference (which resolves the reference and opens the issuer's key from the
/// store), then its copy.
pub(crate) async fn mount_for_ref(
    app: &App,
    mount: &Mount,
    reference: &str,
) -> Result<Arc<Mount>, ApiError> {
    if let Some(m) = mount.by_issuer.get(reference) {
        return Ok(m);
    }
    let issuer = resolve(app, mount, reference).await?;
    let m = mount_with(app, mount, &issuer).await?;
    mount.by_issuer.put(reference, m.clone());
    Ok(m)
}

/// An issuer's name, or its ID when it has none.
pub(crate) fn label(i: &IssuerRecord) -> &str {
    if i.name.is_empty() {
        &i.id
    } else {
        &i.name
    }
}

/// Answers one of this module's paths, or None when `op head/tail` is not one.
pub async fn handle(
    app: &App,
    mount: &Arc<Mount>,
    op: Op,
    head: &str,
    tail: &str,
    p: &Params,
) -> Option<Result<Reply, ApiError>> {
    if let Some(answer) = crate::issuer_admin::handle(app, mount, op, head, tail, p).await {
        return Some(answer);
    }
    Some(match (op, head, tail) {
        (Op::List, "issuers", "") => list(app, mount).await,
        (Op::Read, "issuer", t) if is_issuer_path(t) => issuer(app, mount, t).await,
        (Op::Write, "issuer", t) if !t.is_empty() && !t.contains('/') => {
            update(app, mount, t, p).await
        }
        (Op::Delete, "issuer", t) if !t.is_empty() && !t.contains('/') => {
            delete(app, mount, t).await
        }
        (Op::Write, "issuer", t) if t.strip_suffix("/revoke").is_some_and(|r| !r.contains('/')) => {
            revoke(app, mount, t.trim_end_matches("/revoke")).await
        }
        (Op::Write, "issuer", t) if signing_path(t).is_some() => {
            let (reference, rest) = signing_path(t)?;
            signing(app, mount, reference, rest, p).await
        }
        (Op::Read, "config", "issuers") => config_issuers(app, mount).await,
        (Op::Write, "config", "issuers") => set_config_issuers(app, mount, p).await,
        _ => return None,
    })
}

/// `:ref/issue/:role` and the other signing suffixes, split into the reference and the
/// single-issuer path.
fn signing_path(tail: &str) -> Option<(&str, &str)> {
    let (reference, rest) = tail.split_once('/')?;
    let op = rest.split('/').next()?;
    (!reference.is_empty() && SIGNING.contains(&op)).then_some((reference, rest))
}

async fn signing(
    app: &App,
    mount: &Arc<Mount>,
    reference: &str,
    rest: &str,
    p: &Params,
) -> Result<Reply, ApiError> {
    let m = mount_for_ref(app, mount, reference).await?;
    if rest == "sign-self-issued" {
        return crate::issuer_admin::sign_self_issued(&m, p).await;
    }
    // The single-issuer path of the same operation.
    let rest = match rest {
        "sign-intermediate" => "root/sign-intermediate",
        other => other,
    };
    Box::pin(crate::pki::serve(app, m, Op::Write, rest, p.clone())).await
}

async fn list(app: &App, mount: &Mount) -> Result<Reply, ApiError> {
    let (all, defaults) = all(app, mount).await?;
    if all.is_empty() {
        return Ok(Reply::Bare(
            axum::http::StatusCode::NOT_FOUND,
            json!({ "errors": [] }),
        ));
    }
    let mut info = serde_json::Map::new();
    for i in &all {
        let facts = cert::facts(&i.cert_der)?;
        info.insert(
            i.id.clone(),
            json!({
                "issuer_name": i.name,
                "is_default": i.id == defaults.default,
                "key_id": i.key_id,
                "serial_number": facts.serial.to_string(),
            }),
        );
    }
    Ok(Reply::data(json!({
        "keys": all.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        "key_info": info,
    })))
}

/// The answer of `issuer/:ref` (and of the writes that change one).
pub(crate) async fn issuer_json(
    app: &App,
    mount: &Mount,
    i: &IssuerRecord,
) -> Result<Value, ApiError> {
    let all = app.store.list_issuers(&mount.record.path).await?;
    let mut chain = vec![i.cert_pem.clone()];
    let above = app.store.chain_pem_of(i, &all);
    chain.extend(
        cert::pem_certs(above.as_bytes())
            .unwrap_or_default()
            .iter()
            .map(|d| cert::to_pem(d)),
    );
    let facts = cert::facts(&i.cert_der)?;
    Ok(json!({
        "issuer_id": i.id,
        "issuer_name": i.name,
        "key_id": i.key_id,
        "certificate": i.cert_pem,
        "ca_chain": chain,
        "manual_chain": null,
        "leaf_not_after_behavior": i.leaf_not_after_behavior,
        "usage": i.usage,
        "revocation_signature_algorithm": signature_algorithm(facts.key.kind()),
        "revoked": i.revoked_at.is_some(),
        "revocation_time": i.revoked_at.map_or(0, |t| t.unix_timestamp()),
        "revocation_time_rfc3339": i.revoked_at.map(crate::pki::rfc3339).unwrap_or_default(),
        "issuing_certificates": i.urls.issuing_certificates,
        "crl_distribution_points": i.urls.crl_distribution_points,
        "delta_crl_distribution_points": [],
        "ocsp_servers": i.urls.ocsp_servers,
        "enable_aia_url_templating": false,
    }))
}

async fn issuer(app: &App, mount: &Mount, tail: &str) -> Result<Reply, ApiError> {
    let (reference, rest) = tail.split_once('/').unwrap_or((tail, ""));
    let (all, defaults) = all(app, mount).await?;
    let i = pick(&all, &defaults, reference)
        .ok_or_else(|| not_found("issuer", reference))?
        .clone();
    let raw = |content_type: &'static str, body: Vec<u8>| Reply::Raw { content_type, body };
    match rest {
        "" => Ok(Reply::data(issuer_json(app, mount, &i).await?)),
        "json" => {
            let full = issuer_json(app, mount, &i).await?;
            Ok(Reply::data(json!({
                "issuer_id": i.id,
                "issuer_name": i.name,
                "certificate": i.cert_pem,
                "ca_chain": full["ca_chain"],
            })))
        }
        "pem" => Ok(raw(
            "application/pem-certificate-chain",
            i.cert_pem.clone().into_bytes(),
        )),
        "der" => Ok(raw("application/pkix-cert", i.cert_der.clone())),
        _ => {
            let delta = rest.starts_with("crl/delta");
            let der = issuer_crl(app, mount, &i, i.id == defaults.default, delta).await?;
            match rest {
                "crl" | "crl/delta" => Ok(Reply::data(json!({ "crl": crl::to_pem(&der) }))),
                "crl/pem" | "crl/delta/pem" => Ok(raw(
                    "application/x-pem-file",
                    crl::to_pem(&der).into_bytes(),
                )),
                _ => Ok(raw("application/pkix-crl", der.to_vec())),
            }
        }
    }
}

/// The CRL (complete or delta) of one issuer of the mount: cached and configured by
/// `config/crl` as the default's, listing the certificates its key signed.
async fn issuer_crl(
    app: &App,
    mount: &Mount,
    i: &IssuerRecord,
    is_default: bool,
    delta: bool,
) -> Result<Arc<Vec<u8>>, ApiError> {
    let ca = if is_default {
        mount.ca()?.clone()
    } else if let Some(c) = mount
        .other_signers
        .iter()
        .find(|c| c.cert_der == i.cert_der)
    {
        c.clone()
    } else {
        // An issuer the mount does not keep opened (without the ocsp-signing usage).
        Arc::new(app.store.issuer_ca(i).await?.ok_or_else(|| {
            // "unable to find": what Vault's clients (bao pki health-check) read as a missing
            // resource.
            ApiError::bad(format!(
                "unable to find a CRL of issuer \"{}\": it has no key on this mount to sign one",
                label(i)
            ))
        })?)
    };
    if delta {
        crate::crl_config::delta_crl_of(app, mount, &ca, false).await
    } else {
        crate::crl_config::complete_crl_of(app, mount, &ca, false).await
    }
}

async fn update(app: &App, mount: &Mount, reference: &str, p: &Params) -> Result<Reply, ApiError> {
    let mut i = resolve(app, mount, reference).await?;
    if !crate::is_patch() {
        // A POST replaces every field, as Vault's: what it does not give takes its default.
        i.name = String::new();
        i.usage = mutual_store::DEFAULT_USAGE.to_string();
        i.leaf_not_after_behavior = "err".into();
        i.urls = Default::default();
    }
    // Every field is checked before anything is written.
    if let Some(name) = p.string("issuer_name") {
        logic::check_name(&name).map_err(ApiError::bad)?;
        i.name = name;
    }
    if p.has("usage") {
        i.usage = logic::parse_usage(&p.list("usage")?.join(",")).map_err(ApiError::bad)?;
    }
    if let Some(b) = p.string("leaf_not_after_behavior") {
        if !matches!(b.as_str(), "err" | "truncate" | "permit") {
            return Err(ApiError::bad(format!(
                "invalid leaf_not_after_behavior \"{b}\" (use err, truncate or permit)"
            )));
        }
        i.leaf_not_after_behavior = b;
    }
    if p.has("issuing_certificates") {
        i.urls.issuing_certificates = p.list("issuing_certificates")?;
    }
    if p.has("crl_distribution_points") {
        i.urls.crl_distribution_points = p.list("crl_distribution_points")?;
    }
    if p.has("ocsp_servers") {
        i.urls.ocsp_servers = p.list("ocsp_servers")?;
    }
    let _guard = app.admin.lock().await;
    app.store.update_issuer(&i).await?;
    app.reload_mount(&mount.record.path).await?;
    Ok(Reply::data(issuer_json(app, mount, &i).await?))
}

async fn revoke(app: &App, mount: &Mount, reference: &str) -> Result<Reply, ApiError> {
    let _guard = app.admin.lock().await;
    let i = resolve(app, mount, reference).await?;
    let i = app
        .store
        .revoke_issuer(&i, OffsetDateTime::now_utc())
        .await?;
    crate::crl_config::forget_crls(app, &mount.record.path);
    app.reload_mount(&mount.record.path).await?;
    Ok(Reply::data(issuer_json(app, mount, &i).await?))
}

async fn delete(app: &App, mount: &Mount, reference: &str) -> Result<Reply, ApiError> {
    let _guard = app.admin.lock().await;
    let (all, defaults) = all(app, mount).await?;
    let Some(i) = pick(&all, &defaults, reference) else {
        // Deleting what is not there changes nothing, as Vault answers.
        return Ok(Reply::NoContent);
    };
    if i.id == defaults.default {
        return Err(ApiError::bad(format!(
            "issuer \"{}\" is the default issuer of mount \"{}\" and was not deleted; make another issuer the default first (config/issuers or root/replace)",
            label(i),
            mount.record.path
        )));
    }
    if let Some(r) = crate::rotation::in_progress(app, &mount.record.path).await? {
        if r.involves(&i.id) {
            return Err(ApiError::bad(format!(
                "issuer \"{}\" takes part in the rotation in progress on mount \"{}\" and was not deleted",
                label(i),
                mount.record.path
            )));
        }
    }
    app.store.delete_issuer(&mount.record.path, &i.id).await?;
    app.reload_mount(&mount.record.path).await?;
    Ok(Reply::NoContent)
}

fn defaults_json(d: &IssuerDefaults) -> Value {
    json!({
        "default": d.default,
        "default_follows_latest_issuer": d.default_follows_latest_issuer,
    })
}

async fn config_issuers(app: &App, mount: &Mount) -> Result<Reply, ApiError> {
    let (_, defaults) = all(app, mount).await?;
    Ok(Reply::data(defaults_json(&defaults)))
}

async fn set_config_issuers(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let _guard = app.admin.lock().await;
    let (all, mut defaults) = all(app, mount).await?;
    if let Some(reference) = p.string("default").filter(|r| !r.is_empty()) {
        let i = pick(&all, &defaults, &reference).ok_or_else(|| not_found("issuer", &reference))?;
        defaults.default = i.id.clone();
    }
    if let Some(follow) = p.bool("default_follows_latest_issuer")? {
        defaults.default_follows_latest_issuer = follow;
    }
    app.store
        .set_issuer_defaults(&mount.record.path, &defaults)
        .await?;
    app.reload_mount(&mount.record.path).await?;
    Ok(Reply::data(defaults_json(&defaults)))
}

/// `key/:ref` and `LIST keys`' facts of one key.
pub(crate) async fn key_json(
    app: &App,
    mount: &Mount,
    k: &mutual_store::KeyRecord,
) -> Result<Value, ApiError> {
    let all = app.store.list_issuers(&mount.record.path).await?;
    let ski = all
        .iter()
        .find(|i| i.key_id == k.id)
        .and_then(|i| cert::facts(&i.cert_der).ok())
        .and_then(|f| f.subject_key_id)
        .map(|s| colon_hex(&s))
        .unwrap_or_default();
    Ok(json!({
        "key_id": k.id,
        "key_name": k.name,
        "key_type": k.key_type,
        "subject_key_id": ski,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_paths_and_key_ids() {
        for (tail, want) in [
            ("default", true),
            ("default/json", true),
            ("abc/crl/delta", true),
            ("default/issue/x", false),
            ("", false),
        ] {
            assert_eq!(is_issuer_path(tail), want, "{tail}");
        }
        for (tail, want) in [
            ("default/issue/web", Some(("default", "issue/web"))),
            ("x/sign-verbatim", Some(("x", "sign-verbatim"))),
            ("x/sign-intermediate", Some(("x", "sign-intermediate"))),
            ("x/json", None),
            ("/issue/web", None),
        ] {
            assert_eq!(signing_path(tail), want, "{tail}");
        }
        assert_eq!(colon_hex("0a1bff"), "0a:1b:ff");
    }
}
