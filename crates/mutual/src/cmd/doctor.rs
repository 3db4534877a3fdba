//! `mutual doctor URL`: what an mTLS endpoint presents, whether our CA trusts it, which client
//! CAs it accepts, and whether the given identity would be accepted — and why not. Also the
//! live half of `mutual inspect https://…`.

use anyhow::{bail, Result};
use mutual_pki::cert;
use mutual_pki::diagnosis::Purpose;
use mutual_pki::verify::{verify, VerifyInput};
use mutual_tls::{CallError, ClientTls, Target};
use serde_json::json;
use time::OffsetDateTime;

use crate::cli::DoctorArgs;
use crate::output;

/// The chain a server presents (leaf first), trusted or not.
pub async fn presented_chain(url: &str) -> Result<Vec<Vec<u8>>> {
    let target = Target::parse(url)?;
    let probe = ClientTls::builder()
        .dangerous()
        .accept_any_server_certificate()
        .build()?;
    let (seen, result) = probe.probe(&target.host, target.port).await;
    if seen.server_chain.is_empty() {
        match result {
            Err(e) => return Err(e.into()),
            Ok(_) => bail!("{url} presented no certificate"),
        }
    }
    Ok(seen.server_chain)
}

fn describe(der: &[u8]) -> String {
    match cert::facts(der) {
        Ok(f) => {
            let mut names: Vec<String> = f.dns_names.iter().map(|d| format!("DNS:{d}")).collect();
            names.extend(f.ip_addresses.iter().map(|i| format!("IP:{i}")));
            format!(
                "{} (issued by {}, valid until {}{})",
                f.subject,
                f.issuer,
                output::short_time(f.not_after),
                if names.is_empty() {
                    String::new()
                } else {
                    format!(", names {}", names.join(", "))
                }
            )
        }
        Err(e) => format!("<unreadable: {e}>"),
    }
}

pub async fn run(json: bool, a: DoctorArgs) -> Result<()> {
    let target = Target::parse(&a.url)?;
    let now = OffsetDateTime::now_utc();
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut problems = 0usize;

    // 1. What the server presents and asks for, without trusting it and without an identity.
    let probe = ClientTls::builder()
        .dangerous()
        .accept_any_server_certificate()
        .build()?;
    let (seen, result) = probe.probe(&target.host, target.port).await;
    if let Err(CallError::Connect { .. } | CallError::BadUrl(_)) = &result {
        return Err(result
            .err()
            .map(anyhow::Error::from)
            .unwrap_or_else(|| anyhow::anyhow!("?")));
    }
    let version = result.as_ref().map(|c| c.version()).unwrap_or_default();
    lines.push((
        "endpoint".into(),
        format!("{}:{} {}", target.host, target.port, version),
    ));
    for (i, der) in seen.server_chain.iter().enumerate() {
        lines.push((if i == 0 { "presents" } else { "" }.into(), describe(der)));
    }
    if seen.server_chain.is_empty() {
        problems += 1;
        let why = result
            .as_ref()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        lines.push((
            "presents".into(),
            format!("PROBLEM: no certificate seen ({why})"),
        ));
    }

    // 2. Whether our CA trusts it.
    let mut trust_json = serde_json::Value::Null;
    match &a.ca {
        Some(ca_path) if !seen.server_chain.is_empty() => {
            let ca = mutual_tls::TrustStore::from_file(ca_path)?;
            for w in &ca.warnings {
                eprintln!("warning: {w}");
            }
            let input = VerifyInput {
                chain: &seen.server_chain,
                trusted: &ca.anchors,
                purpose: Some(Purpose::Server),
                name: Some(&target.host),
                crls: &[],
                now,
            };
            match verify(&input) {
                Ok(v) => {
                    let path: Vec<String> = v
                        .path()
                        .iter()
                        .filter_map(|d| cert::facts(d).ok().map(|f| f.subject))
                        .collect();
                    lines.push((
                        "trust".into(),
                        format!(
                            "ok: trusted by --ca, valid for \"{}\" ({})",
                            target.host,
                            path.join(" <- ")
                        ),
                    ));
                    trust_json = json!({"ok": true, "path": path});
                }
                Err(d) => {
                    problems += 1;
                    lines.push(("trust".into(), format!("PROBLEM: {d}")));
                    trust_json = json!({"ok": false, "code": d.code(), "reason": d.to_string()});
                }
            }
        }
        _ => lines.push(("trust".into(), "not checked (give --ca)".into())),
    }

    // 3. Which client CAs it accepts.
    match &seen.asked_for {
        None => lines.push((
            "client CAs".into(),
            "the server does not ask for a client certificate".into(),
        )),
        Some(list) if list.is_empty() => lines.push((
            "client CAs".into(),
            "the server asks for a client certificate and names no CA".into(),
        )),
        Some(list) => lines.push((
            "client CAs".into(),
            format!(
                "the server accepts client certificates issued by {}",
                list.join(", ")
            ),
        )),
    }

    // 4. The identity, if given: does it chain to an accepted CA, is it fit, and a real call.
    let mut attempt_json = serde_json::Value::Null;
    if let (Some(cert_path), Some(key_path)) = (&a.cert, &a.key) {
        let mut b = ClientTls::builder().cert(cert_path).key(key_path);
        b = match &a.ca {
            Some(ca) => b.ca(ca),
            None => b.dangerous().accept_any_server_certificate(),
        };
        let client = b.build()?;
        let chain = client
            .identity()
            .map(|i| i.chain.clone())
            .unwrap_or_default();
        let refused = mutual_tls::CertificateRefused::new(
            rustls::AlertDescription::BadCertificate,
            &chain,
            seen.asked_for.clone(),
            now,
        );
        let leaf = refused.sent.first().cloned().unwrap_or_default();
        lines.push((
            "identity".into(),
            format!("{leaf}, chains to {}", refused.chains_to.join(", ")),
        ));
        if !refused.reaches_asked_ca() {
            problems += 1;
            lines.push(("".into(), format!(
                "PROBLEM: not issued by a CA the server accepts ({}); a Go client would send no certificate at all",
                seen.asked_for.clone().unwrap_or_default().join(", ")
            )));
        } else if seen.asked_for.is_some() {
            lines.push(("".into(), "ok: chains to a CA the server asks for".into()));
        }
        if let Some(d) = &refused.own_problem {
            problems += 1;
            lines.push(("".into(), format!("PROBLEM: {d}")));
        }
        let url = format!(
            "https://{}:{}{}",
            host_for_url(&target.host),
            target.port,
            target.path
        );
        match client.get(&url).await {
            Ok(reply) => {
                let body = String::from_utf8_lossy(&reply.body);
                let first = body.lines().next().unwrap_or("").to_string();
                if reply.status.is_success() {
                    lines.push((
                        "attempt".into(),
                        format!("ok: accepted, HTTP {} ({first})", reply.status),
                    ));
                } else {
                    problems += 1;
                    lines.push(("attempt".into(), format!("PROBLEM: the handshake succeeded but the server answered HTTP {}: {first}", reply.status)));
                }
                attempt_json = json!({"ok": reply.status.is_success(), "status": reply.status.as_u16(), "body": body});
            }
            Err(e) => {
                problems += 1;
                lines.push(("attempt".into(), format!("PROBLEM: {e}")));
                attempt_json = json!({"ok": false, "code": e.code(), "reason": e.to_string()});
            }
        }
    }

    if json {
        output::json(&json!({
            "ok": problems == 0,
            "endpoint": format!("{}:{}", target.host, target.port),
            "tls_version": version,
            "server_chain": seen.server_chain.iter().map(|d| describe(d)).collect::<Vec<_>>(),
            "trust": trust_json,
            "client_cas": seen.asked_for,
            "attempt": attempt_json,
        }))?;
        if problems > 0 {
            std::process::exit(1);
        }
        return Ok(());
    }
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &lines {
        println!("{k:width$}  {v}");
    }
    if problems > 0 {
        bail!("{problems} problem(s) found");
    }
    Ok(())
}

fn host_for_url(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}
