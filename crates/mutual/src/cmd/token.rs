//! `mutual token create|revoke|list`: API tokens of `mutual server`, on the local store.

use std::path::Path;

use anyhow::{bail, Result};
use serde_json::json;

use crate::{cli::TokenCommand, output};

/// Runs one `mutual token` command.
pub async fn run(data: &Path, json: bool, cmd: TokenCommand) -> Result<()> {
    let store = super::open(data).await?;
    match cmd {
        TokenCommand::Create {
            mounts,
            display_name,
        } => {
            let mounts: Vec<String> = mounts
                .iter()
                .map(|m| m.trim_matches('/').to_string())
                .collect();
            let (secret, rec) = store.create_token(&display_name, &mounts).await?;
            if json {
                output::json(
                    &json!({ "token": secret, "accessor": rec.accessor, "mounts": rec.mounts }),
                )?;
            } else {
                println!("Token:    {secret}");
                println!("Accessor: {}", rec.accessor);
                println!("Mounts:   {}", rec.mounts.join(", "));
            }
        }
        TokenCommand::Revoke { token } => {
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
