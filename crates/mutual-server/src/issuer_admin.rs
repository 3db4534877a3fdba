//! The writes that make issuers and keys on a mount, as Vault 1.11+ has them:
//! `issuers/generate/{root,intermediate}/:type`, `root/rotate/:type`, `intermediate/cross-sign`,
//! `issuers/import/{cert,bundle}` and `config/ca`, `root/replace`, `keys`, `key/:ref`,
//! `keys/generate/:type`, `keys/import`, `config/keys`, and `sign-self-issued`. Every input is
//! checked before anything is stored, so a refused request changes nothing.

use std::sync::Arc;

use mutual_pki::{cert, issuers as logic, key::PrivateKey};
use mutual_store::{IssuerDefaults, IssuerRecord, KeyRecord};
use serde_json::{json, Value};
use time::OffsetDateTime;

use crate::{
    error::ApiError,
    issuers::{all, key_json, label, not_found, pick},
    params::Params,
    pki::{blocking, ca_request, ca_ttl, check_formats, format_cert, key_fields, mount_max},
    reply::Reply,
    state::{App, Mount},
    Op,
};

/// Answers one of this module's paths, or None when `op head/tail` is not one.
pub async fn handle(
    app: &App,
    mount: &Arc<Mount>,
    op: Op,
    head: &str,
    tail: &str,
    p: &Params,
) -> Option<Result<Reply, ApiError>> {
    let kind = |t: &str| matches!(t, "internal" | "exported" | "existing" | "kms");
    Some(match (op, head, tail) {
        (Op::Write, "issuers", t) if t.strip_prefix("generate/root/").is_some_and(kind) => {
            generate_root(app, mount, &t["generate/root/".len()..], p).await
        }
        (Op::Write, "root", t) if t.strip_prefix("rotate/").is_some_and(kind) => {
            generate_root(app, mount, &t["rotate/".len()..], p).await
        }
        (Op::Write, "issuers", t) if t.strip_prefix("generate/intermediate/").is_some_and(kind) => {
            generate_csr(app, mount, &t["generate/intermediate/".len()..], p).await
        }
        (Op::Write, "intermediate", "generate/existing" | "cross-sign") => {
            generate_csr(app, mount, "existing", p).await
        }
        (Op::Write, "issuers", "import/cert") => import(app, mount, p, false).await,
        (Op::Write, "issuers", "import/bundle") | (Op::Write, "config", "ca") => {
            import(app, mount, p, true).await
        }
        (Op::Write, "root", "replace") => replace(app, mount, p).await,
        (Op::Write, "root", "sign-self-issued") => match mount.ca() {
            Ok(_) => sign_self_issued(mount, p).await,
            Err(e) => Err(e),
        },
        (Op::List, "keys", "") => list_keys(app, mount).await,
        (Op::Read, "key", r) if !r.is_empty() && !r.contains('/') => {
            match resolve_key(app, mount, r).await {
                Ok(k) => key_json(app, mount, &k).await.map(Reply::data),
                Err(e) => Err(e),
            }
        }
        (Op::Write, "key", r) if !r.is_empty() && !r.contains('/') => {
            rename_key(app, mount, r, p).await
        }
        (Op::Delete, "key", r) if !r.is_empty() && !r.contains('/') => {
            delete_key(app, mount, r).await
        }
        (Op::Write, "keys", t) if t.strip_prefix("generate/").is_some_and(kind) => {
            generate_key(app, mount, t.ends_with("exported"), p).await
        }
        (Op::Write, "keys", "import") => import_key(app, mount, p).await,
        (Op::Read, "config", "keys") => {
            let (_, d) = all(app, mount).await.ok()?;
            Ok(Reply::data(json!({ "default": d.default_key })))
        }
        (Op::Write, "config", "keys") => set_default_key(app, mount, p).await,
        _ => return None,
    })
}

/// The key `reference` names: `default` (the default key, else the default issuer's), an ID
/// or a name.
pub(crate) async fn resolve_key(
    app: &App,
    mount: &Mount,
    reference: &str,
) -> Result<KeyRecord, ApiError> {
    let keys = app.store.list_keys(&mount.record.path).await?;
    let (issuers, d) = all(app, mount).await?;
    let default = if d.default_key.is_empty() {
        issuers
            .iter()
            .find(|i| i.id == d.default)
            .map(|i| i.key_id.clone())
            .unwrap_or_default()
    } else {
        d.default_key.clone()
    };
    let pairs: Vec<(String, String)> = keys
        .iter()
        .map(|k| (k.id.clone(), k.name.clone()))
        .collect();
    let id = logic::resolve(reference, Some(default.as_str()), &pairs)
        .ok_or_else(|| not_found("key", reference))?
        .to_string();
    keys.into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| not_found("key", reference))
}

fn name_param(p: &Params, field: &str) -> Result<String, ApiError> {
    let name = p.str_or(field, "");
    logic::check_name(&name).map_err(ApiError::bad)?;
    Ok(name)
}

/// A new key of the request's type, or with `existing` the key `key_ref` names.
async fn key_for(
    app: &App,
    mount: &Mount,
    kind: &str,
    p: &Params,
    key_type: mutual_pki::key::KeyType,
) -> Result<(PrivateKey, Option<KeyRecord>), ApiError> {
    if kind == "existing" {
        let reference = p
            .string("key_ref")
            .filter(|r| !r.is_empty())
            .ok_or_else(|| ApiError::bad("the key_ref field is required to use an existing key"))?;
        let rec = resolve_key(app, mount, &reference).await?;
        let key = app.store.issuer_key(&mount.record.path, &rec.id).await?;
        return Ok((key, Some(rec)));
    }
    Ok((blocking(move || Ok(key_type.generate()?)).await?, None))
}

/// Makes `issuer` the default when the mount has none or follows the latest issuer.
async fn maybe_default(
    app: &App,
    mount: &Mount,
    issuer: &IssuerRecord,
    keyed: bool,
) -> Result<(), ApiError> {
    let path = &mount.record.path;
    let mut d = app.store.issuer_defaults(path).await?;
    let issuers = app.store.list_issuers(path).await?;
    let current = issuers.iter().find(|i| i.id == d.default);
    let take = match current {
        None => true,
        // An imported parent certificate without its key does not displace a default that
        // signs (`bao pki issue` imports the parent after the new intermediate).
        Some(c) => d.default_follows_latest_issuer && (keyed || c.key_id.is_empty()),
    };
    if take {
        d.default = issuer.id.clone();
        if d.default_key.is_empty() || d.default_follows_latest_issuer {
            d.default_key = issuer.key_id.clone();
        }
        app.store.set_issuer_defaults(path, &d).await?;
    }
    Ok(())
}

pub(crate) async fn generate_root(
    app: &App,
    mount: &Arc<Mount>,
    kind: &str,
    p: &Params,
) -> Result<Reply, ApiError> {
    check_formats(p)?;
    let path = mount.record.path.clone();
    let mut warnings = vec![];
    let req = ca_request(p, ca_ttl(mount, p, &mut warnings)?)?;
    let issuer_name = name_param(p, "issuer_name")?;
    let key_name = name_param(p, "key_name")?;
    let _guard = app.admin.lock().await;
    let (key, existing) = key_for(app, mount, kind, p, req.key_type).await?;
    let material =
        blocking(move || Ok(logic::root_with_key(&req, key, OffsetDateTime::now_utc())?)).await?;
    let (krec, _) = match existing {
        Some(k) => (k, true),
        None => {
            app.store
                .put_issuer_key(&path, &key_name, &material.key)
                .await?
        }
    };
    // A mount's first issuer keeps the ID mutual always answered for it (the mount's UUID).
    let first = app.store.list_issuers(&path).await?.is_empty();
    let id = first.then_some(mount.record.uuid.as_str());
    let (issuer, _) = app
        .store
        .put_issuer(&path, id, &issuer_name, &material.cert_pem, "", &krec.id)
        .await?;
    maybe_default(app, mount, &issuer, true).await?;
    let m = app.reload_mount(&path).await?;
    if m.record.urls.issuing_certificates.is_empty() && issuer.urls.issuing_certificates.is_empty()
    {
        warnings.push("This mount hasn't configured any authority information access (AIA) fields; set them with config/urls".into());
    }
    let facts = cert::facts(&material.cert_der)?;
    let mut data = json!({
        "certificate": format_cert(p, &material.cert_pem)?,
        "issuing_ca": format_cert(p, &material.cert_pem)?,
        "serial_number": facts.serial.to_string(),
        "expiration": facts.not_after.unix_timestamp(),
        "issuer_id": issuer.id,
        "issuer_name": issuer.name,
        "key_id": krec.id,
        "key_name": krec.name,
    });
    if kind == "exported" {
        key_fields(&mut data, &material.key, p)?;
    }
    Ok(Reply::Data { data, warnings })
}

/// `issuers/generate/intermediate/:type`, `intermediate/generate/existing` and
/// `intermediate/cross-sign`: a CSR over a new or existing key, the key kept on the mount.
async fn generate_csr(app: &App, mount: &Mount, kind: &str, p: &Params) -> Result<Reply, ApiError> {
    check_formats(p)?;
    let path = mount.record.path.clone();
    let req = ca_request(p, mount_max(mount))?;
    let key_name = name_param(p, "key_name")?;
    let _guard = app.admin.lock().await;
    let (key, existing) = key_for(app, mount, kind, p, req.key_type).await?;
    let csr = logic::csr_with_key(&req.common_name, &req.organization, &req.ou, &key)?;
    let krec = match existing {
        Some(k) => k,
        None => app.store.put_issuer_key(&path, &key_name, &key).await?.0,
    };
    // `intermediate/set-signed` takes the latest CSR's key, as before issuers.
    app.store.put_pending_key(&path, &key).await?;
    let mut data = json!({ "csr": csr, "key_id": krec.id, "key_name": krec.name });
    if kind == "exported" {
        key_fields(&mut data, &key, p)?;
    }
    Ok(Reply::data(data))
}

/// The PEM blocks of a bundle: certificates (DER) and private keys.
fn split_bundle(text: &str) -> Result<(Vec<Vec<u8>>, Vec<PrivateKey>), ApiError> {
    let mut certs = vec![];
    let mut keys = vec![];
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let label_end = block[11..]
            .find("-----")
            .ok_or_else(|| ApiError::bad("pem_bundle holds a PEM block without its end"))?;
        let label = &block[11..11 + label_end];
        let end_marker = format!("-----END {label}-----");
        let end = block
            .find(&end_marker)
            .ok_or_else(|| ApiError::bad(format!("pem_bundle: no \"{end_marker}\"")))?
            + end_marker.len();
        let pem = &block[..end];
        if label == "CERTIFICATE" {
            certs.extend(cert::pem_certs(pem.as_bytes())?);
        } else if label.ends_with("PRIVATE KEY") {
            keys.push(PrivateKey::from_pem(pem)?);
        } else {
            return Err(ApiError::bad(format!(
                "pem_bundle holds a \"{label}\" block; only certificates and private keys are imported"
            )));
        }
        rest = &block[end..];
    }
    Ok((certs, keys))
}

fn bundle_param(p: &Params) -> Result<String, ApiError> {
    p.string("pem_bundle")
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| ApiError::bad("the pem_bundle field is required and holds no data"))
}

async fn import(
    app: &App,
    mount: &Mount,
    p: &Params,
    keys_allowed: bool,
) -> Result<Reply, ApiError> {
    let path = mount.record.path.clone();
    let (certs, keys) = split_bundle(&bundle_param(p)?)?;
    if !keys_allowed && !keys.is_empty() {
        return Err(ApiError::bad(
            "private keys found in the PEM bundle but not allowed by this endpoint (use issuers/import/bundle)",
        ));
    }
    if certs.is_empty() && keys.is_empty() {
        return Err(ApiError::bad("pem_bundle holds no certificate and no key"));
    }
    let facts: Vec<_> = certs
        .iter()
        .map(|d| cert::facts(d))
        .collect::<Result<_, _>>()?;
    if !certs.is_empty() {
        logic::check_bundle(&facts).map_err(|e| ApiError::bad(e.to_string()))?;
    }
    let _guard = app.admin.lock().await;
    // The keys already on the mount, by public key: a certificate finds its key among them.
    let mut known: Vec<(Vec<u8>, String)> = vec![];
    for k in app.store.list_keys(&path).await? {
        if let Ok(key) = app.store.issuer_key(&path, &k.id).await {
            known.push((key.public_key_der(), k.id));
        }
    }
    let spkis: Vec<Vec<u8>> = certs
        .iter()
        .map(|d| logic::spki_of(d))
        .collect::<Result<_, _>>()?;
    for key in &keys {
        let public = key.public_key_der();
        let certified = spkis.contains(&public)
            || (certs.is_empty() && !keys.is_empty())
            || app
                .store
                .list_issuers(&path)
                .await?
                .iter()
                .any(|i| logic::spki_of(&i.cert_der).is_ok_and(|s| s == public));
        if !certified {
            return Err(ApiError::bad(
                logic::BundleRefusal::KeyMismatch {
                    subject: facts[0].subject.clone(),
                }
                .to_string(),
            ));
        }
    }
    // Checked: now stored.
    let (mut imported_keys, mut existing_keys) = (vec![], vec![]);
    for key in &keys {
        let (rec, existed) = app.store.put_issuer_key(&path, "", key).await?;
        known.push((key.public_key_der(), rec.id.clone()));
        if existed {
            existing_keys.push(rec.id);
        } else {
            imported_keys.push(rec.id);
        }
    }
    // A key for an issuer imported earlier without it: linked, so that it signs.
    for i in app.store.list_issuers(&path).await? {
        if !i.key_id.is_empty() {
            continue;
        }
        let spki = logic::spki_of(&i.cert_der)?;
        if let Some((_, id)) = known.iter().find(|(pk, _)| *pk == spki) {
            app.store
                .put_issuer(&path, None, "", &i.cert_pem, &i.chain_pem, id)
                .await?;
        }
    }
    let (mut imported, mut existing) = (vec![], vec![]);
    let mut mapping = serde_json::Map::new();
    for (i, der) in certs.iter().enumerate() {
        let key_id = known
            .iter()
            .find(|(pk, _)| *pk == spkis[i])
            .map(|(_, id)| id.clone())
            .unwrap_or_default();
        let chain: String = certs[i + 1..].iter().map(|d| cert::to_pem(d)).collect();
        let (rec, existed) = app
            .store
            .put_issuer(&path, None, "", &cert::to_pem(der), &chain, &key_id)
            .await?;
        mapping.insert(rec.id.clone(), json!(rec.key_id));
        if existed {
            existing.push(rec.id.clone());
        } else {
            imported.push(rec.id.clone());
        }
        maybe_default(app, mount, &rec, !rec.key_id.is_empty()).await?;
    }
    // A key that arrived for the default issuer's certificate makes it sign from now on.
    app.store.project_default(&path).await?;
    app.reload_mount(&path).await?;
    let or_null = |v: Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    Ok(Reply::data(json!({
        "imported_issuers": or_null(imported),
        "imported_keys": or_null(imported_keys),
        "existing_issuers": or_null(existing),
        "existing_keys": or_null(existing_keys),
        "mapping": mapping,
    })))
}

async fn replace(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let reference = p.str_or("default", "next");
    let _guard = app.admin.lock().await;
    let (issuers, mut d) = all(app, mount).await?;
    let i = pick(&issuers, &d, &reference).ok_or_else(|| not_found("issuer", &reference))?;
    d.default = i.id.clone();
    app.store
        .set_issuer_defaults(&mount.record.path, &d)
        .await?;
    app.reload_mount(&mount.record.path).await?;
    Ok(Reply::data(json!({
        "default": d.default,
        "default_follows_latest_issuer": d.default_follows_latest_issuer,
    })))
}

/// `sign-self-issued`: the certificate (self-issued: its issuer is its subject) signed again
/// by the mount's CA, as Vault's root rotation cross-signs.
pub(crate) async fn sign_self_issued(mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let ca = mount.ca()?.clone();
    let text = p
        .string("certificate")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| ApiError::bad("the certificate field is required"))?;
    let der = cert::pem_certs(text.as_bytes())?.remove(0);
    let facts = cert::facts(&der)?;
    if facts.subject != facts.issuer {
        return Err(ApiError::bad(format!(
            "certificate \"{}\" is not self-issued (its issuer is \"{}\")",
            facts.subject, facts.issuer
        )));
    }
    let signed = blocking(move || {
        Ok(logic::resign(
            &ca.signer(),
            &der,
            None,
            OffsetDateTime::now_utc(),
        )?)
    })
    .await?;
    let ca = mount.ca()?;
    Ok(Reply::data(json!({
        "certificate": cert::to_pem(&signed),
        "issuing_ca": ca.cert_pem,
    })))
}

async fn list_keys(app: &App, mount: &Mount) -> Result<Reply, ApiError> {
    let keys = app.store.list_keys(&mount.record.path).await?;
    if keys.is_empty() {
        return Ok(Reply::Bare(
            axum::http::StatusCode::NOT_FOUND,
            json!({ "errors": [] }),
        ));
    }
    let mut info = serde_json::Map::new();
    for k in &keys {
        info.insert(k.id.clone(), json!({ "key_name": k.name }));
    }
    Ok(Reply::data(json!({
        "keys": keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>(),
        "key_info": info,
    })))
}

async fn rename_key(app: &App, mount: &Mount, r: &str, p: &Params) -> Result<Reply, ApiError> {
    let mut k = resolve_key(app, mount, r).await?;
    let name = name_param(p, "key_name")?;
    let _guard = app.admin.lock().await;
    app.store
        .rename_key(&mount.record.path, &k.id, &name)
        .await?;
    k.name = name;
    Ok(Reply::data(key_json(app, mount, &k).await?))
}

async fn delete_key(app: &App, mount: &Mount, r: &str) -> Result<Reply, ApiError> {
    let _guard = app.admin.lock().await;
    let Ok(k) = resolve_key(app, mount, r).await else {
        return Ok(Reply::NoContent);
    };
    let issuers = app.store.list_issuers(&mount.record.path).await?;
    if let Some(i) = issuers.iter().find(|i| i.key_id == k.id) {
        return Err(ApiError::bad(format!(
            "key \"{r}\" is in use by issuer \"{}\" and was not deleted; delete the issuer first",
            label(i)
        )));
    }
    app.store.delete_key(&mount.record.path, &k.id).await?;
    Ok(Reply::NoContent)
}

async fn generate_key(
    app: &App,
    mount: &Mount,
    exported: bool,
    p: &Params,
) -> Result<Reply, ApiError> {
    check_formats(p)?;
    let key_type = mutual_pki::key::KeyType::from_parts(
        &p.str_or("key_type", "rsa"),
        p.u32("key_bits")?.unwrap_or(0),
    )?;
    let name = name_param(p, "key_name")?;
    let key = blocking(move || Ok(key_type.generate()?)).await?;
    let _guard = app.admin.lock().await;
    let (k, _) = app
        .store
        .put_issuer_key(&mount.record.path, &name, &key)
        .await?;
    let mut data = json!({ "key_id": k.id, "key_name": k.name, "key_type": k.key_type });
    if exported {
        key_fields(&mut data, &key, p)?;
    }
    Ok(Reply::data(data))
}

async fn import_key(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let (certs, keys) = split_bundle(&bundle_param(p)?)?;
    if !certs.is_empty() || keys.len() != 1 {
        return Err(ApiError::bad(
            "keys/import takes exactly one private key in pem_bundle (import certificates with issuers/import/bundle)",
        ));
    }
    let name = name_param(p, "key_name")?;
    let _guard = app.admin.lock().await;
    let (k, existed) = app
        .store
        .put_issuer_key(&mount.record.path, &name, &keys[0])
        .await?;
    if existed && !name.is_empty() && k.name != name {
        app.store
            .rename_key(&mount.record.path, &k.id, &name)
            .await?;
    }
    Ok(Reply::data(json!({
        "key_id": k.id,
        "key_name": if name.is_empty() { k.name } else { name },
        "key_type": k.key_type,
    })))
}

async fn set_default_key(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let reference = p
        .string("default")
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad("the default field is required"))?;
    let k = resolve_key(app, mount, &reference).await?;
    let _guard = app.admin.lock().await;
    let mut d: IssuerDefaults = app.store.issuer_defaults(&mount.record.path).await?;
    d.default_key = k.id.clone();
    app.store
        .set_issuer_defaults(&mount.record.path, &d)
        .await?;
    Ok(Reply::data(json!({ "default": k.id })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_split_into_certificates_and_keys() {
        for (text, want) in [
            ("", Ok((0, 0))),
            (
                "-----BEGIN FOO-----\nAA==\n-----END FOO-----\n",
                Err("pem_bundle holds a \"FOO\" block; only certificates and private keys are imported"),
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAA==\n",
                Err("pem_bundle: no \"-----END CERTIFICATE-----\""),
            ),
        ] {
            let got = split_bundle(text)
                .map(|(c, k)| (c.len(), k.len()))
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_string), "{text}");
        }
    }
}
