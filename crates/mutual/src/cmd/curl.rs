//! `mutual curl`: an mTLS HTTP client that, when refused, says why.

use anyhow::{bail, Result};
use bytes::Bytes;
use mutual_tls::{CallError, ClientTls};
use serde_json::json;

use crate::cli::CurlArgs;
use crate::cmd::UsageError;
use crate::{files, output};

pub async fn run(json: bool, a: CurlArgs) -> Result<()> {
    let mut b = ClientTls::builder().ca(&a.ca);
    if let Some(c) = &a.cert {
        b = b.cert(c);
    }
    if let Some(k) = &a.key {
        b = b.key(k);
    }
    if a.tls12 {
        b = b.tls12_only();
    }
    if a.tls13 {
        b = b.tls13_only();
    }
    let client = b.build()?;
    for w in client.warnings() {
        eprintln!("warning: {w}");
    }
    let method = http::Method::from_bytes(a.method.as_bytes())
        .map_err(|_| UsageError(format!("-X: invalid method \"{}\"", a.method)))?;
    let mut headers = Vec::new();
    for h in &a.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| UsageError(format!("-H \"{h}\": expected \"Name: value\"")))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let body = match &a.body {
        Some(d) if d.starts_with('@') => Bytes::from(files::read(d[1..].as_ref(), "-d")?),
        Some(d) => Bytes::from(d.clone()),
        None => Bytes::new(),
    };
    let method = if a.body.is_some() && a.method == "GET" {
        http::Method::POST
    } else {
        method
    };
    match client.request(&a.url, method, &headers, body).await {
        Ok(reply) => {
            if a.verbose {
                eprintln!("* TLS {}", reply.version);
                if let Some(leaf) = reply.observed.server_chain.first() {
                    if let Ok(f) = mutual_pki::cert::facts(leaf) {
                        eprintln!(
                            "* server certificate: {} (issued by {})",
                            f.subject, f.issuer
                        );
                    }
                }
                match &reply.observed.asked_for {
                    Some(cas) => eprintln!(
                        "* server asked for a client certificate from: {}",
                        cas.join(", ")
                    ),
                    None => eprintln!("* server asked for no client certificate"),
                }
                eprintln!("< {:?} {}", http::Version::HTTP_11, reply.status);
                for (k, v) in &reply.headers {
                    eprintln!("< {k}: {}", String::from_utf8_lossy(v.as_bytes()));
                }
            }
            if json {
                output::json(&json!({
                    "ok": reply.status.is_success(),
                    "status": reply.status.as_u16(),
                    "body": String::from_utf8_lossy(&reply.body),
                    "tls_version": reply.version,
                }))?;
            } else {
                use std::io::Write;
                std::io::stdout().write_all(&reply.body)?;
            }
            if !reply.status.is_success() {
                if json {
                    std::process::exit(1);
                }
                bail!("HTTP {}", reply.status);
            }
            Ok(())
        }
        Err(e) => fail(json, e),
    }
}

fn fail(json: bool, e: CallError) -> Result<()> {
    if json {
        output::json(&json!({"ok": false, "code": e.code(), "reason": e.to_string()}))?;
        std::process::exit(1);
    }
    Err(e.into())
}
