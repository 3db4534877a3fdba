use std::io::Write;

use anyhow::Result;
use mutual_pki::{crl::Reason, serial::Serial};
use mutual_store::{CertFilter, RevokeOutcome};
use serde_json::json;
use std::time::Duration;
use time::OffsetDateTime;

use super::backend::Target;
use crate::{
    cli::{CertsArgs, CrlArgs, RevokeArgs},
    files, output,
};

pub async fn revoke(target: &Target, json: bool, a: RevokeArgs) -> Result<()> {
    let serial = Serial::parse(&a.serial)?;
    let reason: Reason = a.reason.parse().map_err(anyhow::Error::msg)?;
    let store = target.open().await?;
    let (cert, outcome) = store.revoke(&serial, reason).await?;
    let (ca, at, fresh) = match outcome {
        RevokeOutcome::Revoked { ca, at } => (ca, at, true),
        RevokeOutcome::AlreadyRevoked { ca, at } => (ca, at, false),
    };
    if json {
        return output::json(&json!({
            "serial_number": serial.to_string(),
            "common_name": cert.common_name,
            "ca": ca,
            "revocation_time": at.unix_timestamp(),
            "revocation_time_rfc3339": output::rfc3339(at),
            "reason": reason.to_string(),
            "already_revoked": !fresh,
        }));
    }
    if fresh {
        println!(
            "revoked {} ({}) of CA {} at {} (reason: {reason})",
            serial,
            cert.common_name,
            ca,
            output::short_time(at)
        );
    } else {
        println!(
            "{} ({}) was already revoked at {}; nothing changed",
            serial,
            cert.common_name,
            output::short_time(at)
        );
    }
    println!("  new CRL      mutual crl --ca {ca} --out {ca}.crl");
    Ok(())
}

pub async fn crl(target: &Target, json: bool, a: CrlArgs) -> Result<()> {
    let store = target.open().await?;
    let (der, revoked) = store.crl(&a.ca).await?;
    let bytes = if a.pem {
        mutual_pki::crl::to_pem(&der).into_bytes()
    } else {
        der.clone()
    };
    match &a.out {
        Some(path) => {
            files::write_public(path, &bytes)?;
            if json {
                output::json(
                    &json!({ "ca": a.ca, "file": path.display().to_string(), "revoked": revoked, "format": if a.pem { "pem" } else { "der" } }),
                )
            } else {
                println!(
                    "CRL of CA {} written to {} ({} revoked, {})",
                    a.ca,
                    path.display(),
                    revoked,
                    if a.pem { "PEM" } else { "DER" }
                );
                Ok(())
            }
        }
        None if json => output::json(
            &json!({ "ca": a.ca, "revoked": revoked, "crl": mutual_pki::crl::to_pem(&der) }),
        ),
        None => {
            std::io::stdout().write_all(&bytes)?;
            Ok(())
        }
    }
}

pub async fn list(target: &Target, json: bool, a: CertsArgs) -> Result<()> {
    let store = target.open().await?;
    if let Some(ca) = &a.ca {
        store.get_ca(ca).await?;
    }
    let now = OffsetDateTime::now_utc();
    let query = inventory_query(&a, now);
    let certs = match store.search_certs(&query, a.ca.as_deref()).await? {
        Some(certs) => certs,
        // A server without the inventory (an older mutual, Vault, OpenBao): the old filters
        // still work by reading each certificate.
        None if !a.uses_inventory() => {
            let filter = CertFilter {
                ca: a.ca.clone(),
                expiring_before: a.expiring.map(|d| now + d),
                revoked_only: a.revoked,
                ..CertFilter::default()
            };
            let mut certs = store.list_certs(&filter).await?;
            certs.sort_by_key(|c| c.not_after);
            certs
        }
        None => anyhow::bail!(
            "the server has no certificate inventory (GET <mount>/inventory); --cn, --san, --role, --serial, --issued-by, --valid, --sort and --desc need a mutual server"
        ),
    };
    if json {
        return output::json(&certs);
    }
    let rows: Vec<Vec<String>> = certs
        .iter()
        .map(|c| {
            let status = match (c.revoked_at, c.not_after < now) {
                (Some(at), _) => format!(
                    "revoked {} ({})",
                    output::short_time(at),
                    c.reason.unwrap_or_default()
                ),
                (None, true) => "expired".to_string(),
                (None, false) => "valid".to_string(),
            };
            vec![
                c.serial.to_string(),
                c.ca.clone(),
                c.common_name.clone(),
                output::short_time(c.not_after),
                status,
            ]
        })
        .collect();
    output::table(&["SERIAL", "CA", "COMMON NAME", "EXPIRES", "STATUS"], &rows);
    Ok(())
}

/// The inventory's query parameters (docs/inventory.md) for these arguments. `--expiring`
/// keeps its meaning of "not revoked and notAfter before now + D" (expired ones included).
fn inventory_query(a: &CertsArgs, now: OffsetDateTime) -> String {
    let mut q: Vec<(&str, String)> = Vec::new();
    if let Some(ca) = &a.ca {
        q.push(("issuer", ca.clone()));
    }
    if let Some(d) = a.expiring {
        let before = now + Duration::from_secs(d.as_secs());
        q.push(("expires_before", before.unix_timestamp().to_string()));
        q.push(("revoked", "false".into()));
    }
    if a.revoked {
        q.push(("revoked", "true".into()));
    }
    if a.valid {
        q.push(("revoked", "false".into()));
    }
    for (k, v) in [
        ("cn", &a.cn),
        ("san", &a.san),
        ("role", &a.role),
        ("serial", &a.serial),
        ("issued_by", &a.issued_by),
        ("sort", &a.sort),
    ] {
        if let Some(v) = v {
            q.push((k, v.clone()));
        }
    }
    if a.desc {
        q.push(("order", "desc".into()));
    }
    q.iter()
        .map(|(k, v)| format!("{k}={}", query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
