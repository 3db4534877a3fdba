//! The PKI secrets engine of one mount: Vault's paths, parameters and answers, over
//! `mutual-store`'s authority. CPU-heavy work (key generation, signing, CRLs) runs on the
//! blocking pool; a certificate is answered only after its row is committed.

use std::{sync::Arc, time::Duration};

use base64::Engine;
use mutual_pki::{
    ca::{self, RootRequest, Urls},
    cert, crl, csr,
    key::{KeyType, PrivateKey},
    role::{IssueRequest, Role},
    serial::Serial,
};
use mutual_store::{
    issue_signed, sign_csr, sign_verbatim_role, CaRecord, Issued, NewCa, OwnedCert, RevokeOutcome,
    Signed, StoreError, SYSTEM_MAX_TTL,
};
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{
    error::ApiError,
    params::Params,
    reply::Reply,
    roles,
    state::{App, Mount},
    Op,
};

/// True for the paths Vault serves without a token, so that the AIA and CRL URLs put into
/// certificates resolve; certificates themselves (`cert/:serial`) are public in Vault too.
pub fn is_unauthenticated(op: Op, rest: &str) -> bool {
    // An issuer's certificate and CRLs are public as the mount's are (per-issuer AIA URLs
    // point there), its configuration is not.
    let issuer_public = rest.strip_prefix("issuer/").is_some_and(|t| {
        t.split_once('/').is_some_and(|(r, s)| {
            !r.is_empty()
                && matches!(
                    s,
                    "json"
                        | "pem"
                        | "der"
                        | "crl"
                        | "crl/pem"
                        | "crl/der"
                        | "crl/delta"
                        | "crl/delta/pem"
                        | "crl/delta/der"
                )
        })
    });
    op == Op::Read
        && (issuer_public
            || rest
                .strip_prefix("cert/")
                .is_some_and(|s| !s.is_empty() && !s.contains('/'))
            || matches!(
                rest,
                "ca" | "ca/pem"
                    | "ca_chain"
                    | "crl"
                    | "crl/pem"
                    | "cert/ca"
                    | "cert/ca_chain"
                    | "cert/crl"
                    | "crl/delta"
                    | "crl/delta/pem"
                    | "cert/delta-crl"
                    | "trust-bundle"
                    | "revocations"
            ))
}

/// Runs CPU work: inline when it is light (EC or Ed25519 keys: tens of microseconds, cheaper
/// than the hop to the blocking pool, measured by bench/ca-server.sh), on the blocking pool when
/// an RSA key is generated or signs (milliseconds).
pub(crate) async fn cpu<T: Send + 'static>(
    heavy: bool,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if heavy {
        blocking(f).await
    } else {
        f()
    }
}

pub(crate) fn is_rsa(kind: &str) -> bool {
    kind.eq_ignore_ascii_case("rsa") || kind.eq_ignore_ascii_case("any")
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await?
}

/// Answers a request for `rest` on `mount`, with OpenBao's warning when a write carries
/// parameters its path does not take.
pub async fn handle(
    app: &App,
    mount: Arc<Mount>,
    op: Op,
    rest: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let ignored = crate::fields::ignored_warning(op, head, tail, &p);
    let reply = serve(app, mount, op, rest, p).await?;
    Ok(match (reply, ignored) {
        (Reply::Data { data, mut warnings }, Some(w)) => {
            warnings.push(w);
            Reply::Data { data, warnings }
        }
        (Reply::Accepted(mut warnings), Some(w)) => {
            warnings.push(w);
            Reply::Accepted(warnings)
        }
        (reply, _) => reply,
    })
}

pub(crate) async fn serve(
    app: &App,
    mount: Arc<Mount>,
    op: Op,
    rest: &str,
    p: Params,
) -> Result<Reply, ApiError> {
    let path = mount.record.path.clone();
    let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if let Some(answer) = crate::issuers::handle(app, &mount, op, head, tail, &p).await {
        return answer;
    }
    if let Some(answer) = crate::rotation::handle(app, &mount, op, rest, &p).await {
        return answer;
    }
    match (op, head, tail) {
        (Op::Read, "ca", "") => Ok(raw("application/pkix-cert", mount.ca()?.cert_der.clone())),
        (Op::Read, "ca", "pem") => Ok(raw(
            "application/pem-certificate-chain",
            mount.ca()?.cert_pem.clone().into_bytes(),
        )),
        (Op::Read, "ca_chain", "") => Ok(raw(
            "application/pem-certificate-chain",
            mount.ca()?.chain_with_self().concat().into_bytes(),
        )),
        (Op::Read, "cert", "ca") => Ok(Reply::data(json!({
            "certificate": mount.ca()?.cert_pem,
            "revocation_time": 0,
            "revocation_time_rfc3339": "",
        }))),
        (Op::Read, "cert", "ca_chain") => {
            // One string of PEM blocks here, as Vault's: the array form is issue/sign's.
            let chain = mount.ca()?.chain_with_self().concat();
            Ok(Reply::data(json!({
                "certificate": chain,
                "ca_chain": chain,
                "revocation_time": 0,
                "revocation_time_rfc3339": "",
            })))
        }
        (Op::Read, "crl", "") => Ok(raw(
            "application/pkix-crl",
            crl_der(app, &mount, false).await?.to_vec(),
        )),
        (Op::Read, "crl", "pem") => Ok(raw(
            "application/x-pem-file",
            crl::to_pem(&crl_der(app, &mount, false).await?).into_bytes(),
        )),
        (Op::Read, "cert", "crl") => Ok(Reply::data(json!({
            "certificate": crl::to_pem(&crl_der(app, &mount, false).await?),
            "revocation_time": 0,
            "revocation_time_rfc3339": "",
        }))),
        (Op::Read, "crl", "rotate") => {
            crate::crl_config::rotate_crls(app, &mount).await?;
            Ok(Reply::data(json!({ "success": true })))
        }
        (Op::Read, "config", "urls") => Ok(Reply::data(urls_json(&mount.record.urls))),
        (Op::Write, "config", "urls") => {
            let mut warnings = vec![];
            if !p.list("delta_crl_distribution_points")?.is_empty() {
                warnings.push("delta_crl_distribution_points not stored: mutual serves delta CRLs at crl/delta but does not yet name them in a Freshest CRL extension".to_string());
            }
            let urls = Urls {
                issuing_certificates: p.list("issuing_certificates")?,
                crl_distribution_points: p.list("crl_distribution_points")?,
                ocsp_servers: p.list("ocsp_servers")?,
            };
            let _guard = app.admin.lock().await;
            app.store.set_mount_urls(&path, &urls).await?;
            // An issuer with URLs of its own keeps them on the CA row.
            app.store.project_default(&path).await?;
            let m = app.reload_mount(&path).await?;
            Ok(Reply::Data {
                data: urls_json(&m.record.urls),
                warnings,
            })
        }
        (Op::Write, "root", "generate/internal" | "generate/exported" | "generate/kms") => {
            // Vault 1.11+: one more issuer when the mount has one, the default when not.
            let kind = tail.trim_start_matches("generate/");
            crate::issuer_admin::generate_root(app, &mount, kind, &p).await
        }
        (Op::Delete, "root", "") => {
            let _guard = app.admin.lock().await;
            // Every issuer and key goes, as Vault's `DELETE root` does.
            app.store.delete_all_issuers(&path).await?;
            app.store.delete_ca(&path).await?;
            app.store.clear_pending_key(&path).await?;
            app.reload_mount(&path).await?;
            Ok(Reply::NoContent)
        }
        (Op::Write, "intermediate", "generate/internal" | "generate/exported") => {
            generate_intermediate(app, &mount, tail.ends_with("exported"), &p).await
        }
        (Op::Write, "root", "sign-intermediate") => sign_intermediate(app, &mount, &p).await,
        (Op::Write, "intermediate", "set-signed") => set_signed(app, &mount, &p).await,
        (Op::List, "roles", "") => Ok(keys(mount.roles.keys().cloned().collect())),
        (Op::Read, "roles", name) if !name.is_empty() => {
            let role = mount.roles.get(name).ok_or(ApiError::NotFound)?;
            Ok(Reply::data(roles::to_json(role)))
        }
        (Op::Write, "roles", name) if !name.is_empty() && !name.contains('/') => {
            let (role, warnings) = roles::from_params(name, &path, &p)?;
            let _guard = app.admin.lock().await;
            app.store.put_mount_role(&path, &role).await?;
            app.reload_mount(&path).await?;
            Ok(Reply::Data {
                data: roles::to_json(&role),
                warnings,
            })
        }
        (Op::Delete, "roles", name) if !name.is_empty() => {
            let _guard = app.admin.lock().await;
            app.store.delete_mount_role(&path, name).await?;
            app.reload_mount(&path).await?;
            Ok(Reply::NoContent)
        }
        (Op::Write, "issue", role) if !role.is_empty() => {
            let role = find_role(&mount, role)?;
            let mount = crate::issuers::mount_for_role(app, mount, &role).await?;
            let role = crate::issuers::with_issuer_behavior(&mount, role);
            issue(app, &mount, role, &p).await
        }
        (Op::Write, "sign", role) if !role.is_empty() => {
            let role = find_role(&mount, role)?;
            let mount = crate::issuers::mount_for_role(app, mount, &role).await?;
            let role = crate::issuers::with_issuer_behavior(&mount, role);
            sign(app, &mount, role, &p, false).await
        }
        (Op::Write, "sign-verbatim", role) => {
            let base = if role.is_empty() {
                None
            } else {
                Some(find_role(&mount, role)?)
            };
            sign(
                app,
                &mount,
                Arc::new(sign_verbatim_role(base.as_deref())),
                &p,
                true,
            )
            .await
        }
        (Op::Write, "revoke", "") => revoke(app, &mount, &p).await,
        (Op::Read, "cert", serial) if !serial.is_empty() => read_cert(app, &mount, serial).await,
        (Op::List, "certs", "") | (Op::List, "certs", "revoked") => {
            let after = match p.string("after").filter(|a| !a.is_empty()) {
                Some(a) => Some(parse_serial(&a)?.to_hex()),
                None => None,
            };
            let serials = app
                .store
                .list_serials(
                    &path,
                    tail == "revoked",
                    after.as_deref(),
                    p.u32("limit")?.unwrap_or(0),
                )
                .await?;
            Ok(keys(serials.iter().map(|s| s.to_string()).collect()))
        }
        // A path served for another method: Vault's 405, not a 404.
        _ if crate::fields::is_served(head, tail) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::UnsupportedPath),
    }
}

pub(crate) fn raw(content_type: &'static str, body: Vec<u8>) -> Reply {
    Reply::Raw { content_type, body }
}

pub(crate) fn keys(mut keys: Vec<String>) -> Reply {
    if keys.is_empty() {
        return Reply::Bare(axum::http::StatusCode::NOT_FOUND, json!({ "errors": [] }));
    }
    keys.sort();
    Reply::data(json!({ "keys": keys }))
}

fn urls_json(u: &Urls) -> Value {
    json!({
        "issuing_certificates": u.issuing_certificates,
        "crl_distribution_points": u.crl_distribution_points,
        "ocsp_servers": u.ocsp_servers,
        "delta_crl_distribution_points": [],
        "enable_templating": false,
    })
}

pub(crate) fn find_role(mount: &Mount, name: &str) -> Result<Arc<Role>, ApiError> {
    mount
        .roles
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::bad(format!("unknown role: {name}")))
}

fn parse_serial(s: &str) -> Result<Serial, ApiError> {
    Serial::parse(s).map_err(|_| ApiError::bad(format!("\"{s}\" is not a serial number")))
}

pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The mount's max lease TTL, or the system's.
pub(crate) fn mount_max(mount: &Mount) -> Duration {
    if mount.record.max_lease_ttl.is_zero() {
        SYSTEM_MAX_TTL
    } else {
        mount.record.max_lease_ttl
    }
}

/// A CA's requested TTL, defaulted to and capped by the mount's max with Vault's warning.
pub(crate) fn ca_ttl(
    mount: &Mount,
    p: &Params,
    warnings: &mut Vec<String>,
) -> Result<Duration, ApiError> {
    let max = mount_max(mount);
    let ttl = p.duration("ttl")?.filter(|t| !t.is_zero()).unwrap_or(max);
    if ttl > max {
        warnings.push(format!(
            "TTL \"{}\" is longer than the mount's max lease TTL \"{}\"; capped to it",
            mutual_pki::duration::format(ttl),
            mutual_pki::duration::format(max)
        ));
        return Ok(max);
    }
    Ok(ttl)
}

pub(crate) fn ca_request(p: &Params, ttl: Duration) -> Result<RootRequest, ApiError> {
    let common_name = p
        .string("common_name")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("the common_name field is required"))?;
    let key_type = KeyType::from_parts(
        &p.str_or("key_type", "rsa"),
        p.u32("key_bits")?.unwrap_or(0),
    )?;
    let path_len = match p
        .string("max_path_length")
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(n) if n >= 0 => Some(u8::try_from(n).unwrap_or(u8::MAX)),
        _ => None,
    };
    Ok(RootRequest {
        common_name,
        organization: p.list("organization")?,
        ou: p.list("ou")?,
        key_type,
        ttl,
        path_len,
        name_constraints: crate::constraints::from_params(p)?,
    })
}

pub(crate) fn format_cert(p: &Params, pem: &str) -> Result<String, ApiError> {
    match p.str_or("format", "pem").as_str() {
        "pem" | "pem_bundle" => Ok(pem.to_string()),
        "der" => {
            let der = cert::pem_certs(pem.as_bytes())?;
            Ok(base64::engine::general_purpose::STANDARD.encode(&der[0]))
        }
        other => Err(ApiError::bad(format!(
            "invalid format \"{other}\" (use pem, der or pem_bundle)"
        ))),
    }
}

/// Refuses a `format` or `private_key_format` mutual does not write, before anything is
/// generated, signed or stored.
pub(crate) fn check_formats(p: &Params) -> Result<(), ApiError> {
    match p.str_or("format", "pem").as_str() {
        "pem" | "pem_bundle" | "der" => {}
        other => {
            return Err(ApiError::bad(format!(
                "invalid format \"{other}\" (use pem, der or pem_bundle)"
            )))
        }
    }
    match p.str_or("private_key_format", "der").as_str() {
        "" | "der" | "pem" | "pkcs8" => Ok(()),
        other => Err(ApiError::bad(format!(
            "invalid private_key_format \"{other}\" (use der, pem or pkcs8)"
        ))),
    }
}

/// The private key as the request's `format` and `private_key_format` ask: Vault's default
/// (`der`/`pem`, or none) is PKCS#1 or SEC1, `pkcs8` is PKCS#8; PEM unless `format=der`, which
/// gives base64 DER.
pub(crate) fn encoded_key(key: &PrivateKey, p: &Params) -> Result<String, ApiError> {
    let pkcs8 = match p.str_or("private_key_format", "der").as_str() {
        "" | "der" | "pem" => false,
        "pkcs8" => true,
        other => {
            return Err(ApiError::bad(format!(
                "invalid private_key_format \"{other}\" (use der, pem or pkcs8)"
            )))
        }
    };
    let der_output = p.str_or("format", "pem") == "der";
    Ok(match (pkcs8, der_output) {
        (true, true) => base64::engine::general_purpose::STANDARD.encode(key.to_der().as_slice()),
        (true, false) => key.to_pem().to_string(),
        (false, true) => {
            let (_, der) = key.to_traditional_der()?;
            base64::engine::general_purpose::STANDARD.encode(der.as_slice())
        }
        (false, false) => key.to_traditional_pem()?.to_string(),
    })
}

pub(crate) fn key_fields(data: &mut Value, key: &PrivateKey, p: &Params) -> Result<(), ApiError> {
    data["private_key"] = json!(encoded_key(key, p)?);
    data["private_key_type"] = json!(key.key_type().kind());
    Ok(())
}

async fn generate_intermediate(
    app: &App,
    mount: &Mount,
    exported: bool,
    p: &Params,
) -> Result<Reply, ApiError> {
    check_formats(p)?;
    let path = mount.record.path.clone();
    let req = ca_request(p, mount_max(mount))?;
    let (csr_pem, key) = blocking(move || Ok(ca::generate_intermediate_csr(&req)?)).await?;
    let _guard = app.admin.lock().await;
    app.store.put_pending_key(&path, &key).await?;
    // The key is a key of the mount, as in Vault: `issuers/import/cert` finds it when the
    // signed certificate comes back (`bao pki issue`).
    let (krec, _) = app.store.put_issuer_key(&path, "", &key).await?;
    let mut data = json!({ "csr": csr_pem, "key_id": krec.id });
    if exported {
        key_fields(&mut data, &key, p)?;
    }
    Ok(Reply::data(data))
}

async fn sign_intermediate(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let signer = mount.ca()?.clone();
    let csr_text = p
        .string("csr")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("csr contains no data"))?;
    let mut csr = csr::parse(csr_text.as_bytes())?;
    if let Some(cn) = p.string("common_name").filter(|c| !c.is_empty()) {
        csr.common_name = cn.clone();
        for (k, v) in csr.subject_attrs.iter_mut() {
            if k == "CN" {
                *v = cn.clone();
            }
        }
    }
    let mut warnings = vec![];
    let ttl = ca_ttl(mount, p, &mut warnings)?;
    let path_len = match p
        .string("max_path_length")
        .and_then(|s| s.parse::<i64>().ok())
    {
        Some(n) if n >= 0 => Some(u8::try_from(n).unwrap_or(u8::MAX)),
        _ => None,
    };
    let s2 = signer.clone();
    let constraints = crate::constraints::from_params(p)?;
    let signed = blocking(move || {
        Ok(ca::sign_intermediate_constrained(
            &s2.signer(),
            &csr,
            ttl,
            path_len,
            &constraints,
            OffsetDateTime::now_utc(),
        )?)
    })
    .await?;
    let facts = cert::facts(&signed.cert_der)?;
    app.writer
        .record(OwnedCert {
            serial: facts.serial.clone(),
            ca: mount.record.path.clone(),
            common_name: facts.common_name.clone().unwrap_or_default(),
            not_before: facts.not_before,
            not_after: facts.not_after,
            cert_pem: signed.cert_pem.clone(),
            role: None,
        })
        .await?;
    let signer_self_signed = cert::facts(&signer.cert_der)?.self_issued;
    let mut certificate = signed.cert_pem.clone();
    if p.str_or("format", "pem") == "pem_bundle" && !signer_self_signed {
        // Vault's documented pem_bundle: the issuing CA is appended unless it is a self-signed
        // root, so that a trust file made from it is exactly as wide as the intermediate.
        certificate.push_str(&signer.cert_pem);
    }
    let mut ca_chain = vec![signed.cert_pem.clone()];
    ca_chain.extend(signer.chain_with_self());
    Ok(Reply::Data {
        data: json!({
            "certificate": if p.str_or("format", "pem") == "der" {
                format_cert(p, &certificate)?
            } else {
                certificate
            },
            "issuing_ca": format_cert(p, &signer.cert_pem)?,
            "ca_chain": ca_chain,
            "serial_number": facts.serial.to_string(),
            "expiration": facts.not_after.unix_timestamp(),
        }),
        warnings,
    })
}

/// The stored CA that issued `der`, found by subject and key identifier.
fn find_issuer<'a>(cas: &'a [CaRecord], der: &[u8]) -> Option<&'a CaRecord> {
    let facts = cert::facts(der).ok()?;
    cas.iter().find(|ca| {
        cert::facts(&ca.cert_der).is_ok_and(|f| {
            f.subject == facts.issuer
                && (facts.authority_key_id.is_none() || f.subject_key_id == facts.authority_key_id)
        })
    })
}

async fn set_signed(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let path = mount.record.path.clone();
    let text = p
        .string("certificate")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("no certificate provided in the \"certificate\" parameter"))?;
    let ders = cert::pem_certs(text.as_bytes())?;
    let _guard = app.admin.lock().await;
    if app.mount(&path).is_some_and(|m| m.ca.is_some()) {
        return Err(ApiError::bad(format!(
            "mount \"{path}\" already has an issuer; mutual keeps one per mount (DELETE {path}/root to replace it)"
        )));
    }
    let key = app.store.pending_key(&path).await?.ok_or_else(|| {
        ApiError::bad(format!(
            "mount \"{path}\" has no pending intermediate key; call intermediate/generate first"
        ))
    })?;
    let material = ca::set_signed(&text, key)?;
    let cas = app.store.list_cas().await?;
    let (parent, chain) = if ders.len() > 1 {
        let chain: String = ders[1..].iter().map(|d| cert::to_pem(d)).collect();
        (find_issuer(&cas, &ders[0]).map(|c| c.name.clone()), chain)
    } else {
        match find_issuer(&cas, &ders[0]) {
            Some(ca) => (Some(ca.name.clone()), ca.chain_with_self().concat()),
            None => (None, String::new()),
        }
    };
    app.store
        .put_ca(&NewCa {
            name: &path,
            cert_pem: &material.cert_pem,
            key: &material.key,
            parent: parent.as_deref(),
            chain_pem: &chain,
        })
        .await?;
    app.store.set_mount_urls(&path, &mount.record.urls).await?;
    app.store.clear_pending_key(&path).await?;
    app.reload_mount(&path).await?;
    Ok(Reply::data(json!({
        "imported_issuers": [mount.record.uuid],
        "imported_keys": null,
        "existing_issuers": null,
        "existing_keys": null,
        "mapping": { mount.record.uuid.clone(): mount.record.uuid },
    })))
}

/// A request's TTL with Vault's default: when neither the request nor the role names one, the
/// mount's default lease TTL (the system's 768h when unset), within the role's or mount's max.
pub(crate) fn default_ttl(mount: &Mount, role: &Role, req: &mut IssueRequest) {
    if req.ttl.is_some_and(|t| !t.is_zero()) || role.ttl.is_some_and(|t| !t.is_zero()) {
        return;
    }
    let default = if mount.record.default_lease_ttl.is_zero() {
        SYSTEM_MAX_TTL
    } else {
        mount.record.default_lease_ttl
    };
    let cap = role
        .max_ttl
        .filter(|t| !t.is_zero())
        .unwrap_or_else(|| mount_max(mount));
    req.ttl = Some(default.min(cap));
}

fn issue_request(p: &Params) -> Result<IssueRequest, ApiError> {
    Ok(IssueRequest {
        common_name: p.str_or("common_name", ""),
        alt_names: p.list("alt_names")?,
        ip_sans: p.list("ip_sans")?,
        uri_sans: p.list("uri_sans")?,
        ttl: p.duration("ttl")?,
        exclude_cn_from_sans: p.bool_or("exclude_cn_from_sans", false)?,
        ..IssueRequest::default()
    })
}

pub(crate) async fn record_and_answer(
    app: &App,
    ca: &CaRecord,
    no_store: bool,
    signed: Signed,
    p: &Params,
) -> Result<Reply, ApiError> {
    let (mut issued, row) = signed.into_issued(ca)?;
    if !no_store {
        let asker = crate::inventory::asker();
        app.writer
            .record_issued(
                row,
                std::mem::take(&mut issued.names),
                asker.accessor,
                asker.request,
            )
            .await?;
    }
    issued_reply(issued, p)
}

fn issued_reply(issued: Issued, p: &Params) -> Result<Reply, ApiError> {
    let format = p.str_or("format", "pem");
    let mut certificate = format_cert(p, &issued.cert_pem)?;
    if format == "pem_bundle" {
        // Vault's bundle: the private key first (when it made one), then the certificate,
        // then its issuer.
        if let Some(key) = &issued.key {
            let mut bundle = encoded_key(key, p)?;
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            certificate.insert_str(0, &bundle);
        }
        certificate.push_str(&issued.issuing_ca_pem);
    }
    let chain: Vec<String> = issued
        .ca_chain_pem
        .iter()
        .map(|c| format_cert(p, c))
        .collect::<Result<_, _>>()?;
    let mut data = json!({
        "certificate": certificate,
        "issuing_ca": format_cert(p, &issued.issuing_ca_pem)?,
        "ca_chain": chain,
        "serial_number": issued.serial.to_string(),
        "expiration": issued.not_after.unix_timestamp(),
        "not_before": issued.not_before.unix_timestamp(),
    });
    if let Some(key) = &issued.key {
        key_fields(&mut data, key, p)?;
    }
    Ok(Reply::Data {
        data,
        warnings: issued.warnings,
    })
}

async fn issue(app: &App, mount: &Mount, role: Arc<Role>, p: &Params) -> Result<Reply, ApiError> {
    check_formats(p)?;
    let ca = mount.ca()?.clone();
    let mut req = issue_request(p)?;
    default_ttl(mount, &role, &mut req);
    let max = mount.record.max_lease_ttl;
    let heavy = is_rsa(&role.key_type) || is_rsa(ca.key.key_type().kind());
    let (ca2, role2) = (ca.clone(), role.clone());
    let signed = cpu(heavy, move || {
        Ok(issue_signed(
            &ca2,
            &role2,
            max,
            &req,
            OffsetDateTime::now_utc(),
        )?)
    })
    .await?;
    record_and_answer(app, &ca, role.no_store, signed, p).await
}

/// `sign/:role`, or with `verbatim` `sign-verbatim`, which keeps the CSR's whole subject.
async fn sign(
    app: &App,
    mount: &Mount,
    role: Arc<Role>,
    p: &Params,
    verbatim: bool,
) -> Result<Reply, ApiError> {
    check_formats(p)?;
    let ca = mount.ca()?.clone();
    let csr_text = p
        .string("csr")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("csr contains no data"))?;
    let mut req = issue_request(p)?;
    default_ttl(mount, &role, &mut req);
    let max = mount.record.max_lease_ttl;
    let heavy = is_rsa(ca.key.key_type().kind());
    let (ca2, role2) = (ca.clone(), role.clone());
    let signed = cpu(heavy, move || {
        let parsed = csr::parse(csr_text.as_bytes())?;
        if verbatim {
            req.subject = parsed.subject_oids.clone();
        }
        Ok(sign_csr(
            &ca2,
            &role2,
            max,
            &parsed,
            &req,
            OffsetDateTime::now_utc(),
        )?)
    })
    .await?;
    record_and_answer(app, &ca, role.no_store, signed, p).await
}

pub(crate) async fn revoke(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let path = &mount.record.path;
    let text = p
        .string("serial_number")
        .or_else(|| {
            p.string("certificate").and_then(|pem| {
                cert::pem_certs(pem.as_bytes())
                    .ok()
                    .and_then(|d| cert::facts(&d[0]).ok())
                    .map(|f| f.serial.to_string())
            })
        })
        .ok_or_else(|| ApiError::bad("the serial_number or certificate field is required"))?;
    let serial = parse_serial(&text)?;
    let not_found = || ApiError::bad(format!("certificate with serial {serial} not found."));
    let existing = app.store.get_cert(&serial).await.map_err(|e| match e {
        StoreError::NotFound { .. } => not_found(),
        other => other.into(),
    })?;
    if existing.ca != *path {
        return Err(not_found());
    }
    if mount
        .ca
        .as_ref()
        .is_some_and(|ca| cert::facts(&ca.cert_der).is_ok_and(|f| f.serial == serial))
    {
        return Err(ApiError::bad(
            "adding issuer (id: default) to its own CRL is not allowed",
        ));
    }
    let reason = p
        .string("reason")
        .map(|r| r.parse::<crl::Reason>())
        .transpose()
        .map_err(|e| ApiError::bad(format!("invalid reason: {e}")))?
        .unwrap_or(crl::Reason::Unspecified);
    let at = match app
        .store
        .revoke(&serial, reason, OffsetDateTime::now_utc())
        .await?
    {
        RevokeOutcome::Revoked { at, ca } => {
            let revoked = crate::certindex::Revoked { ca, at, reason };
            app.certs.note_revoked(&serial, revoked);
            app.crls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(path);
            // Wakes the feed's waiting subscribers (after the commit, so they find the row).
            app.revocations.send_modify(|n| *n += 1);
            tracing::info!(mount = %path, serial = %serial, reason = %reason, "certificate revoked");
            at
        }
        RevokeOutcome::AlreadyRevoked { at, .. } => at,
    };
    Ok(Reply::data(json!({
        "revocation_time": at.unix_timestamp(),
        "revocation_time_rfc3339": rfc3339(at),
        "state": "revoked",
    })))
}

async fn read_cert(app: &App, mount: &Mount, serial: &str) -> Result<Reply, ApiError> {
    let serial = parse_serial(serial).map_err(|_| ApiError::NotFound)?;
    let rec = app.store.get_cert(&serial).await?;
    if rec.ca != mount.record.path {
        return Err(ApiError::NotFound);
    }
    Ok(Reply::data(json!({
        "certificate": rec.cert_pem,
        "revocation_time": rec.revoked_at.map_or(0, |t| t.unix_timestamp()),
        "revocation_time_rfc3339": rec.revoked_at.map(rfc3339).unwrap_or_default(),
        "issuer_id": mount.record.uuid,
        "serial_number": rec.serial.to_string(),
        // Not Vault's: the role it was issued under (renewal applies it again).
        "role": rec.role,
        // Not Vault's: the reason, so that `mutual certs --addr` shows what it shows locally.
        "revocation_reason": rec.reason.map(|r| r.to_string()),
    })))
}

/// The mount's current CRL: the cached one unless stale or `rotate` (see `crl_config`).
pub(crate) async fn crl_der(
    app: &App,
    mount: &Mount,
    rotate: bool,
) -> Result<Arc<Vec<u8>>, ApiError> {
    crate::crl_config::complete_crl(app, mount, rotate).await
}
