//! `mutual token create|revoke|list`: API tokens of `mutual server`, on the local store, and
//! bootstrap (join) tokens: `--role R --uses N --ttl D`, good for N certificates under one
//! role. `token create --addr URL` asks a running server instead (root token needed).

use std::time::Duration;

use anyhow::{bail, Result};
use mutual_store::{TokenSpec, ALL_MOUNTS};
use serde_json::json;

use crate::{cli::TokenCommand, output};

use super::{backend::Target, remote::Remote};

/// Runs one `mutual token` command.
pub async fn run(target: &Target, json: bool, cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            mounts,
            display_name,
            role,
            uses,
            ttl,
        } => {
            let mounts: Vec<String> = mounts
                .iter()
                .map(|m| m.trim_matches('/').to_string())
                .collect();
            if role.is_some() && (mounts.len() != 1 || mounts[0] == ALL_MOUNTS) {
                bail!(super::UsageError(
                    "a bootstrap token (--role) names exactly one --mount".into()
                ));
            }
            let num_uses = if role.is_some() { uses } else { 0 };
            let display_name = display_name
                .unwrap_or_else(|| if role.is_some() { "bootstrap" } else { "token" }.to_string());
            let created = match &target.addr {
                Some(addr) => {
                    let remote = Remote::new(addr, target.token.clone(), target.cacert.as_deref())?;
                    let mut body = json!({ "display_name": display_name, "mounts": mounts });
                    if let Some(r) = &role {
                        body["role"] = json!(r);
                        body["num_uses"] = json!(num_uses);
                    }
                    if let Some(t) = ttl {
                        body["ttl"] = json!(format!("{}s", t.as_secs()));
                    }
                    let auth = remote.create_token(body).await?;
                    Created {
                        secret: auth["client_token"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        accessor: auth["accessor"].as_str().unwrap_or_default().to_string(),
                        expires_at: auth["expire_time"].as_i64(),
                    }
                }
                None => {
                    let store = super::open(&target.data).await?;
                    if let Some(r) = &role {
                        let roles = store.list_mount_roles(&mounts[0]).await?;
                        if !roles.iter().any(|x| &x.name == r) {
                            bail!("mount \"{}\" has no role \"{r}\"", mounts[0]);
                        }
                    }
                    let (secret, rec) = store
                        .create_token_with(&TokenSpec {
                            display_name,
                            mounts: mounts.clone(),
                            role: role.clone(),
                            num_uses,
                            ttl,
                            // The mounts stand for their policies (mutual-server's ACL).
                            ..TokenSpec::default()
                        })
                        .await?;
                    Created {
                        secret,
                        accessor: rec.accessor,
                        expires_at: rec.expires_at.map(|t| t.unix_timestamp()),
                    }
                }
            };
            report(json, &created, &mounts, role.as_deref(), num_uses, ttl)?;
        }
        TokenCommand::Revoke { token } => {
            let store = super::open(&target.data).await?;
            if !store.revoke_token(&token).await? {
                bail!("no token or accessor \"{token}\" in this store");
            }
            if json {
                output::json(&json!({ "revoked": true }))?;
            } else {
                println!("revoked");
            }
        }
        TokenCommand::List => {
            let store = super::open(&target.data).await?;
            let tokens = store.list_tokens().await?;
            if json {
                output::json(&tokens)?;
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.accessor.clone(),
                            t.display_name.clone(),
                            t.mounts.join(","),
                            output::short_time(t.created_at),
                        ]
                    })
                    .collect();
                output::table(&["ACCESSOR", "NAME", "MOUNTS", "CREATED"], &rows);
            }
        }
    }
    Ok(())
}

struct Created {
    secret: String,
    accessor: String,
    expires_at: Option<i64>,
}

fn report(
    json: bool,
    c: &Created,
    mounts: &[String],
    role: Option<&str>,
    uses: u32,
    ttl: Option<Duration>,
) -> Result<()> {
    let expires = c
        .expires_at
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok());
    if json {
        let mut v = json!({ "token": c.secret, "accessor": c.accessor, "mounts": mounts });
        if let Some(r) = role {
            v["role"] = json!(r);
            v["num_uses"] = json!(uses);
        }
        if let Some(at) = expires {
            v["expires_at"] = json!(output::rfc3339(at));
        }
        return output::json(&v);
    }
    println!("Token:    {}", c.secret);
    println!("Accessor: {}", c.accessor);
    println!("Mounts:   {}", mounts.join(", "));
    if let Some(r) = role {
        let uses = if uses == 0 {
            "no limit".to_string()
        } else {
            uses.to_string()
        };
        println!("Role:     {r} (bootstrap token: sign/{r} and issue/{r} only; uses: {uses})");
    }
    if let (Some(at), Some(_)) = (expires, ttl) {
        println!("Expires:  {}", output::rfc3339(at));
    }
    Ok(())
}
