//! The Vault 1.11+ read paths over mutual's one issuer per mount (`issuers`, `issuer/:ref`,
//! `issuer/:ref/{json,pem,der,crl,crl/pem,crl/delta}`, `key/:ref`), and the configuration and
//! tidy state a client reads before deciding what to do (`config/crl`, `config/auto-tidy`,
//! `config/acme`, `config/cluster`, `tidy-status`). Every answer is what mutual does: its CRL
//! settings are fixed, it has no auto-tidy, no ACME and no cluster path, and says so in
//! OpenBao's fields, which is what `bao pki health-check` and Terraform read.

use std::time::Duration;

use mutual_pki::{cert, crl};
use mutual_store::CRL_VALIDITY;
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    pki::{crl_der, rfc3339},
    reply::Reply,
    state::{App, Mount},
    Op,
};

/// The suffixes of `issuer/:ref/…` served here.
const ISSUER_SUFFIXES: &[&str] = &[
    "",
    "json",
    "pem",
    "der",
    "crl",
    "crl/pem",
    "crl/der",
    "crl/delta",
];

/// True for `issuer/:ref` and its served suffixes.
pub fn is_issuer_path(tail: &str) -> bool {
    let (reference, rest) = tail.split_once('/').unwrap_or((tail, ""));
    !reference.is_empty() && ISSUER_SUFFIXES.contains(&rest)
}

/// A finished `tidy` run, for `tidy-status`.
#[derive(Debug, Clone)]
pub struct TidyRun {
    /// When it started.
    pub started: OffsetDateTime,
    /// When it finished.
    pub finished: OffsetDateTime,
    /// The safety buffer it used.
    pub safety_buffer: Duration,
    /// Whether expired unrevoked certificates were removed.
    pub tidy_cert_store: bool,
    /// Whether expired revoked certificates were removed.
    pub tidy_revoked_certs: bool,
    /// Expired unrevoked certificates removed.
    pub cert_store_deleted: u64,
    /// Expired revoked certificates removed.
    pub revoked_deleted: u64,
}

/// True when `reference` names the mount's issuer: `default`, its ID, or its name (`default`
/// too: mutual names the one issuer so).
fn names_issuer(mount: &Mount, reference: &str) -> bool {
    reference == "default" || reference == mount.record.uuid
}

fn not_found(what: &str, reference: &str) -> ApiError {
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

/// Answers a read (or the list of issuers) of one of this module's paths, or None when
/// `op head/tail` is not one.
pub async fn read(
    app: &App,
    mount: &Mount,
    op: Op,
    head: &str,
    tail: &str,
) -> Option<Result<Reply, ApiError>> {
    match (op, head) {
        (Op::List, "issuers") if tail.is_empty() => return Some(list(mount)),
        (Op::Read, _) => {}
        _ => return None,
    }
    Some(match (head, tail) {
        ("issuer", t) if is_issuer_path(t) => issuer(app, mount, t).await,
        ("key", reference) if !reference.is_empty() => key(mount, reference),
        ("config", "crl") => Ok(Reply::data(crl_config())),
        ("config", "auto-tidy") => Ok(Reply::data(auto_tidy())),
        ("config", "acme") => Ok(Reply::data(json!({
            // mutual serves no ACME directory: the configuration says so.
            "enabled": false,
            "allowed_issuers": ["*"],
            "allowed_roles": ["*"],
            "allow_role_ext_key_usage": false,
            "default_directory_policy": "sign-verbatim",
            "dns_resolver": "",
            "eab_policy": "not-required",
        }))),
        ("config", "cluster") => Ok(Reply::data(json!({ "path": "", "aia_path": "" }))),
        ("tidy-status", "") => Ok(Reply::data(tidy_status(app, mount))),
        _ => return None,
    })
}

fn list(mount: &Mount) -> Result<Reply, ApiError> {
    let Some(ca) = &mount.ca else {
        return Ok(Reply::Bare(
            axum::http::StatusCode::NOT_FOUND,
            json!({ "errors": [] }),
        ));
    };
    let facts = cert::facts(&ca.cert_der)?;
    let id = mount.record.uuid.clone();
    Ok(Reply::data(json!({
        "keys": [id],
        "key_info": { id.clone(): {
            "issuer_name": "default",
            "is_default": true,
            "key_id": id,
            "serial_number": facts.serial.to_string(),
        }},
    })))
}

async fn issuer(app: &App, mount: &Mount, tail: &str) -> Result<Reply, ApiError> {
    let (reference, rest) = tail.split_once('/').unwrap_or((tail, ""));
    if !names_issuer(mount, reference) {
        return Err(not_found("issuer", reference));
    }
    let ca = mount.ca()?;
    let id = mount.record.uuid.clone();
    let raw = |content_type: &'static str, body: Vec<u8>| Reply::Raw { content_type, body };
    match rest {
        "" => {
            let urls = &mount.record.urls;
            Ok(Reply::data(json!({
                "issuer_id": id,
                "issuer_name": "default",
                "key_id": id,
                "certificate": ca.cert_pem,
                "ca_chain": ca.chain_with_self(),
                "manual_chain": null,
                "leaf_not_after_behavior": "err",
                "usage": "crl-signing,issuing-certificates,ocsp-signing,read-only",
                "revocation_signature_algorithm": signature_algorithm(ca.key.key_type().kind()),
                "revoked": false,
                "issuing_certificates": urls.issuing_certificates,
                "crl_distribution_points": urls.crl_distribution_points,
                "delta_crl_distribution_points": [],
                "ocsp_servers": urls.ocsp_servers,
            })))
        }
        "json" => Ok(Reply::data(json!({
            "issuer_id": id,
            "issuer_name": "default",
            "certificate": ca.cert_pem,
            "ca_chain": ca.chain_with_self(),
        }))),
        "pem" => Ok(raw(
            "application/pem-certificate-chain",
            ca.cert_pem.clone().into_bytes(),
        )),
        "der" => Ok(raw("application/pkix-cert", ca.cert_der.clone())),
        "crl" => {
            let der = crl_der(app, mount, false).await?;
            Ok(Reply::data(json!({ "crl": crl::to_pem(&der) })))
        }
        "crl/pem" => {
            let der = crl_der(app, mount, false).await?;
            Ok(raw(
                "application/x-pem-file",
                crl::to_pem(&der).into_bytes(),
            ))
        }
        "crl/der" => Ok(raw(
            "application/pkix-crl",
            crl_der(app, mount, false).await?.to_vec(),
        )),
        // mutual builds full CRLs only (config/crl says enable_delta false).
        _ => Err(ApiError::bad(format!(
            "unable to find a delta CRL for issuer \"{reference}\": mutual builds full CRLs only"
        ))),
    }
}

fn key(mount: &Mount, reference: &str) -> Result<Reply, ApiError> {
    if !names_issuer(mount, reference) {
        return Err(not_found("key", reference));
    }
    let ca = mount.ca()?;
    let facts = cert::facts(&ca.cert_der)?;
    Ok(Reply::data(json!({
        "key_id": mount.record.uuid,
        "key_name": "",
        "key_type": ca.key.key_type().kind(),
        "subject_key_id": facts.subject_key_id.as_deref().map(colon_hex).unwrap_or_default(),
    })))
}

fn crl_config() -> Value {
    json!({
        "expiry": mutual_pki::duration::format(CRL_VALIDITY),
        "disable": false,
        // A revocation makes the next CRL read rebuild it; there is no timer-driven rebuild.
        "auto_rebuild": false,
        "auto_rebuild_grace_period": "",
        "enable_delta": false,
        "delta_rebuild_interval": "",
        "ocsp_disable": false,
        "ocsp_expiry": mutual_pki::duration::format(crate::ocsp::VALIDITY),
        // revoke takes any certificate of the mount, expired or not.
        "allow_expired_cert_revocation": true,
    })
}

fn auto_tidy() -> Value {
    json!({
        // mutual tidies only when asked (`tidy`); nothing runs on a schedule.
        "enabled": false,
        "interval_duration": 0,
        "pause_duration": "0s",
        "safety_buffer": 72 * 3600,
        "revoked_safety_buffer": 72 * 3600,
        "issuer_safety_buffer": 0,
        "acme_account_safety_buffer": 0,
        "page_size": 0,
        "tidy_cert_store": false,
        "tidy_revoked_certs": false,
        "tidy_revoked_cert_issuer_associations": false,
        "tidy_expired_issuers": false,
        "tidy_move_legacy_ca_bundle": false,
        "tidy_acme": false,
        "tidy_invalid_certs": false,
        "maintain_stored_certificate_counts": false,
        "publish_stored_certificate_count_metrics": false,
    })
}

fn tidy_status(app: &App, mount: &Mount) -> Value {
    let run = app
        .tidy_runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&mount.record.path)
        .cloned();
    let mut status = json!({
        "internal_backend_uuid": mount.record.uuid,
        "state": "Inactive",
        "error": null,
        "message": null,
        "time_started": null,
        "time_finished": null,
        "safety_buffer": null,
        "revoked_safety_buffer": null,
        "issuer_safety_buffer": null,
        "acme_account_safety_buffer": null,
        "page_size": null,
        "pause_duration": null,
        "tidy_cert_store": null,
        "tidy_revoked_certs": null,
        "tidy_revoked_cert_issuer_associations": null,
        "tidy_expired_issuers": null,
        "tidy_move_legacy_ca_bundle": null,
        "tidy_acme": null,
        "tidy_invalid_certs": null,
        "cert_store_deleted_count": null,
        "revoked_cert_deleted_count": null,
        "missing_issuer_cert_count": null,
        "current_cert_store_count": null,
        "current_revoked_cert_count": null,
        "acme_account_deleted_count": null,
        "acme_account_revoked_count": null,
        "acme_orders_deleted_count": null,
        "total_acme_account_count": null,
        // mutual has no auto-tidy (config/auto-tidy), so none ever finished.
        "last_auto_tidy_finished": null,
    });
    if let (Some(run), Value::Object(m)) = (run, &mut status) {
        let buffer = run.safety_buffer.as_secs();
        for (k, v) in [
            ("state", json!("Finished")),
            ("time_started", json!(rfc3339(run.started))),
            ("time_finished", json!(rfc3339(run.finished))),
            ("safety_buffer", json!(buffer)),
            ("revoked_safety_buffer", json!(buffer)),
            ("tidy_cert_store", json!(run.tidy_cert_store)),
            ("tidy_revoked_certs", json!(run.tidy_revoked_certs)),
            ("cert_store_deleted_count", json!(run.cert_store_deleted)),
            ("revoked_cert_deleted_count", json!(run.revoked_deleted)),
            ("tidy_revoked_cert_issuer_associations", json!(false)),
            ("tidy_expired_issuers", json!(false)),
            ("tidy_move_legacy_ca_bundle", json!(false)),
            ("tidy_acme", json!(false)),
            ("tidy_invalid_certs", json!(false)),
            // One pass over the store, no pauses, and nothing of issuers or ACME to tidy.
            ("page_size", json!(0)),
            ("pause_duration", json!("0s")),
            ("issuer_safety_buffer", json!(0)),
            ("acme_account_safety_buffer", json!(0)),
            ("missing_issuer_cert_count", json!(0)),
            ("acme_account_deleted_count", json!(0)),
            ("acme_account_revoked_count", json!(0)),
            ("acme_orders_deleted_count", json!(0)),
            ("total_acme_account_count", json!(0)),
        ] {
            m.insert(k.to_string(), v);
        }
    }
    status
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
        assert_eq!(colon_hex("0a1bff"), "0a:1b:ff");
        assert_eq!(crl_config()["expiry"], "72h");
        assert_eq!(crl_config()["ocsp_expiry"], "1h");
    }
}
