//! `mutual ca rotate NAME`: a CA rotation as one operation (`mutual_store::Store::
//! stage_rotation`, timed by `mutual_pki::rotation`), on the local store or, with `--addr`,
//! through the server's `<mount>/rotation`. With `--status` it only shows (and advances)
//! where the rotation stands.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::backend::{Backend, Target};
use crate::{cli::CaRotateArgs, output};

pub async fn run(target: &Target, json_out: bool, a: CaRotateArgs) -> Result<()> {
    let now = OffsetDateTime::now_utc();
    let switch_at = match &a.switch_at {
        Some(t) => Some(
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
                |e| super::UsageError(format!("--switch-at \"{t}\" is not an RFC 3339 time: {e}")),
            )?,
        ),
        None => None,
    };
    let state: Value = match target.open().await? {
        Backend::Local(store) => {
            let r = if a.status {
                store
                    .advance_rotation(&a.name, now)
                    .await?
                    .with_context(|| format!("\"{}\" has had no rotation", a.name))?
            } else {
                let switch_at = switch_at.unwrap_or(now + a.switch_after.unwrap_or_default());
                store
                    .stage_rotation(&a.name, switch_at, a.common_name.as_deref(), now)
                    .await?
            };
            mutual_server::rotation_json(&r)
        }
        Backend::Remote(remote) => {
            let path = format!("{}/rotation", a.name);
            if a.status {
                remote
                    .read(&path)
                    .await?
                    .with_context(|| format!("\"{}\" has had no rotation", a.name))?
                    .data
            } else {
                let mut body = json!({});
                if let Some(d) = a.switch_after {
                    body["switch_after"] = json!(format!("{}s", d.as_secs()));
                }
                if let Some(t) = &a.switch_at {
                    body["switch_at"] = json!(t);
                }
                if let Some(cn) = &a.common_name {
                    body["common_name"] = json!(cn);
                }
                remote.write(&path, body).await?.data
            }
        }
    };
    if json_out {
        return output::json(&state);
    }
    let s = |k: &str| state[k].as_str().unwrap_or("-").to_string();
    println!("rotation of {}: {}", a.name, s("phase"));
    println!("  old issuer     {}", s("old_issuer"));
    println!("  new issuer     {}", s("new_issuer"));
    if !s("cross_signed_issuer").is_empty() {
        println!(
            "  cross-signed   {} (the new issuer signed by the old key)",
            s("cross_signed_issuer")
        );
    }
    println!("  switch at      {}", s("switch_at"));
    match s("phase").as_str() {
        "staged" => println!(
            "  trust bundle   old and new roots published; issuance switches at the time above"
        ),
        "switched" => println!(
            "  retire after   {} (the old issuer's last certificate expires)",
            s("retire_after")
        ),
        _ => println!("  retired at     {}", s("retired_at")),
    }
    Ok(())
}
