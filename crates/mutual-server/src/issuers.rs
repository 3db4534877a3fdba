//! The Vault 1.11+ read paths over mutual's one issuer per mount (`issuers`, `issuer/:ref`,
//! `issuer/:ref/{json,pem,der,crl,crl/pem,crl/delta}`, `key/:ref`), and the configuration a
//! client reads before deciding what to do (`config/acme`, `config/cluster`; `config/crl`,
//! `config/auto-tidy` and `tidy-status` are `crl_config`'s). Every answer is what mutual does: it
//! has no ACME and no cluster path, and says so in OpenBao's fields, which is what
//! `bao pki health-check` and Terraform read.

use mutual_pki::{cert, crl};
use serde_json::json;

use crate::{
    error::ApiError,
    pki::crl_der,
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
    "crl/delta/pem",
    "crl/delta/der",
];

/// True for `issuer/:ref` and its served suffixes.
pub fn is_issuer_path(tail: &str) -> bool {
    let (reference, rest) = tail.split_once('/').unwrap_or((tail, ""));
    !reference.is_empty() && ISSUER_SUFFIXES.contains(&rest)
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
        "crl/delta" => Ok(Reply::data(json!({
            "crl": crl::to_pem(&crate::crl_config::delta_crl(app, mount).await?)
        }))),
        "crl/delta/pem" => Ok(raw(
            "application/x-pem-file",
            crl::to_pem(&crate::crl_config::delta_crl(app, mount).await?).into_bytes(),
        )),
        "crl/delta/der" => Ok(raw(
            "application/pkix-crl",
            crate::crl_config::delta_crl(app, mount).await?.to_vec(),
        )),
        _ => Err(ApiError::UnsupportedPath),
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
    }
}
