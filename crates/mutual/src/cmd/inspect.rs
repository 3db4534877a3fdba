use anyhow::{bail, Result};
use mutual_pki::{
    cert,
    diagnosis::Purpose,
    inspect, trust,
    verify::{self, VerifyInput},
};
use serde_json::json;
use time::OffsetDateTime;

use crate::{
    cli::{InspectArgs, PurposeArg, VerifyArgs},
    files, output,
};

pub async fn inspect(json: bool, a: InspectArgs) -> Result<()> {
    let chain = if a.target.starts_with("https://") {
        crate::cmd::doctor::presented_chain(&a.target).await?
    } else {
        let bytes = files::read(std::path::Path::new(&a.target), "certificate")?;
        cert::certs_from_bytes(&bytes)?
    };
    let reports = inspect::describe(&chain, OffsetDateTime::now_utc())?;
    if json {
        return output::json(&reports);
    }
    print!("{}", inspect::render(&reports));
    Ok(())
}

pub async fn verify(json: bool, a: VerifyArgs) -> Result<()> {
    let chain = cert::certs_from_bytes(&files::read(&a.cert, "certificate")?)
        .map_err(|e| anyhow::anyhow!("reading certificate {}: {e}", a.cert.display()))?;
    let trusted = cert::certs_from_bytes(&files::read(&a.ca, "--ca")?)
        .map_err(|e| anyhow::anyhow!("reading --ca {}: {e}", a.ca.display()))?;
    let mut all = chain.clone();
    if let Some(u) = &a.untrusted {
        let extra = cert::certs_from_bytes(&files::read(u, "--untrusted")?)
            .map_err(|e| anyhow::anyhow!("reading --untrusted {}: {e}", u.display()))?;
        all.extend(extra);
    }
    let mut crls = Vec::new();
    for path in &a.crl {
        let bytes = files::read(path, "--crl")?;
        crls.extend(
            crl_ders(&bytes)
                .map_err(|e| anyhow::anyhow!("reading --crl {}: {e}", path.display()))?,
        );
    }
    let warnings = trust::wide_trust_warnings(&trusted);
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    let purpose = a.purpose.map(|p| match p {
        PurposeArg::Client => Purpose::Client,
        PurposeArg::Server => Purpose::Server,
    });
    let input = VerifyInput {
        chain: &all,
        trusted: &trusted,
        purpose,
        name: a.name.as_deref(),
        crls: &crls,
        now: OffsetDateTime::now_utc(),
    };
    let leaf = cert::facts(&chain[0])?;
    match verify::verify(&input) {
        Ok(v) => {
            let path: Vec<String> = v
                .path()
                .iter()
                .filter_map(|d| cert::facts(d).ok().map(|f| f.subject))
                .collect();
            if json {
                return output::json(&json!({
                    "ok": true,
                    "subject": leaf.subject,
                    "path": path,
                    "warnings": warnings,
                }));
            }
            println!("OK: {}", path.join(" <- "));
            Ok(())
        }
        Err(d) => {
            if json {
                output::json(&json!({
                    "ok": false,
                    "subject": leaf.subject,
                    "code": d.code(),
                    "reason": d.to_string(),
                    "warnings": warnings,
                }))?;
                std::process::exit(1);
            }
            bail!("refused: {d}")
        }
    }
}

fn crl_ders(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    if bytes.first() == Some(&0x30) {
        return Ok(vec![bytes.to_vec()]);
    }
    let blocks = pem::parse_many(bytes)?;
    let ders: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|b| b.tag() == "X509 CRL")
        .map(|b| b.into_contents())
        .collect();
    if ders.is_empty() {
        bail!("no X509 CRL found");
    }
    Ok(ders)
}
