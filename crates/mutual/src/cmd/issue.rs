use std::path::Path;

use anyhow::{Context, Result};
use mutual_pki::{csr, role::IssueRequest};
use mutual_store::Issued;
use serde_json::json;

use super::backend::Target;
use crate::{
    cli::{IssueArgs, SignArgs},
    files, output,
};

pub async fn issue(target: &Target, json: bool, a: IssueArgs) -> Result<()> {
    if a.cn.contains('/') || a.cn.contains('\\') || a.cn.starts_with('.') {
        anyhow::bail!(
            "\"{}\" cannot be used as a file name for CN.crt / CN.key",
            a.cn
        );
    }
    let store = target.open().await?;
    let req = IssueRequest {
        common_name: a.cn.clone(),
        alt_names: a.san.clone(),
        ip_sans: a.ip.clone(),
        uri_sans: a.uri.clone(),
        ttl: a.ttl,
        exclude_cn_from_sans: a.exclude_cn_from_sans,
        ..IssueRequest::default()
    };
    let issued = store.issue(&a.role, &req).await?;
    let crt_path = a.out.join(format!("{}.crt", a.cn));
    let key_path = a.out.join(format!("{}.key", a.cn));
    let key = issued
        .key
        .as_ref()
        .context("internal: issue returned no key")?;
    files::write_private(&key_path, key.to_pem().as_bytes())?;
    files::write_public(&crt_path, issued.presented_chain_pem().as_bytes())?;
    if let Some(p12) = &a.p12 {
        let mut chain = vec![issued.cert_der.clone()];
        for pem in &issued.ca_chain_pem {
            chain.extend(mutual_pki::cert::pem_certs(pem.as_bytes())?);
        }
        let bytes = mutual_pki::p12::build(&a.cn, key, &chain, &a.p12_password)?;
        files::write_private(p12, &bytes)?;
    }
    report(
        json,
        "issued",
        &issued,
        Some((&crt_path, &key_path, a.p12.as_deref())),
    )
}

pub async fn sign(target: &Target, json: bool, a: SignArgs) -> Result<()> {
    let bytes = files::read(&a.csr, "CSR")?;
    csr::parse(&bytes).with_context(|| format!("reading CSR {}", a.csr.display()))?;
    let store = target.open().await?;
    let req = IssueRequest {
        common_name: a.cn.clone().unwrap_or_default(),
        ttl: a.ttl,
        ..IssueRequest::default()
    };
    let issued = store.sign(&a.role, &bytes, &req).await?;
    match &a.out {
        Some(out) => {
            files::write_public(out, issued.presented_chain_pem().as_bytes())?;
            report(json, "signed", &issued, None)?;
            if !json {
                println!("  certificate  {} (leaf + chain)", out.display());
            }
            Ok(())
        }
        None if json => report(json, "signed", &issued, None),
        None => {
            print!("{}", issued.presented_chain_pem());
            for w in &issued.warnings {
                eprintln!("warning: {w}");
            }
            Ok(())
        }
    }
}

fn report(
    json: bool,
    verb: &str,
    issued: &Issued,
    files: Option<(&Path, &Path, Option<&Path>)>,
) -> Result<()> {
    if json {
        let mut v = json!({
            "common_name": issued.common_name,
            "serial_number": issued.serial.to_string(),
            "issuer": issued.ca_name,
            "expiration": output::rfc3339(issued.not_after),
            "certificate": issued.cert_pem,
            "issuing_ca": issued.issuing_ca_pem,
            "ca_chain": issued.ca_chain_pem,
            "warnings": issued.warnings,
        });
        if let Some((crt, key, p12)) = files {
            v["certificate_file"] = json!(crt.display().to_string());
            v["key_file"] = json!(key.display().to_string());
            v["p12_file"] = json!(p12.map(|p| p.display().to_string()));
        }
        return output::json(&v);
    }
    let left = issued.not_after - time::OffsetDateTime::now_utc();
    println!(
        "{verb} {}  serial {}  by CA {}",
        issued.common_name, issued.serial, issued.ca_name
    );
    println!(
        "  valid until  {} ({} from now)",
        output::short_time(issued.not_after),
        mutual_pki::duration::human(left.try_into().unwrap_or_default())
    );
    if let Some((crt, key, p12)) = files {
        println!("  certificate  {} (leaf + chain)", crt.display());
        println!("  key          {} (PKCS#8, mode 0600)", key.display());
        if let Some(p) = p12 {
            println!("  pkcs12       {} (mode 0600)", p.display());
        }
    }
    for w in &issued.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
