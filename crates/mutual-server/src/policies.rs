//! `sys/policies/acl/:name` and the older `sys/policy/:name`, as `bao policy write/read/list/
//! delete` use them: the text is parsed by `mutual-auth` before it is stored, so a policy
//! that does not parse is refused with its line and what is wrong.

use base64::Engine;
use mutual_auth::{policy::policy_name, Policy, DEFAULT_POLICY, IMMUTABLE};
use serde_json::json;

use crate::{error::ApiError, params::Params, reply::Reply, state::App, Op};

/// Answers `sys/policy[/name]` and `sys/policies/acl[/name]` (the caller is authorized).
pub(crate) async fn handle(app: &App, op: Op, path: &str, p: &Params) -> Result<Reply, ApiError> {
    let old = path.starts_with("sys/policy");
    let name = path
        .strip_prefix("sys/policies/acl")
        .or_else(|| path.strip_prefix("sys/policy"))
        .unwrap_or_default()
        .trim_matches('/');
    if name.is_empty() {
        return match op {
            Op::List | Op::Read => {
                let mut keys = app.store.list_policies().await?;
                if !keys.iter().any(|k| k == "default") {
                    keys.push("default".into());
                }
                keys.sort();
                keys.push("root".into());
                let mut data = json!({ "keys": keys });
                if old {
                    data["policies"] = data["keys"].clone();
                }
                Ok(Reply::data(data))
            }
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    let name = policy_name(name)?;
    match op {
        Op::Read => {
            let text = match app.store.get_policy(&name).await? {
                Some(t) => t,
                None if name == "default" => DEFAULT_POLICY.to_string(),
                None => return Err(ApiError::NotFound),
            };
            let key = if old { "rules" } else { "policy" };
            Ok(Reply::data(json!({ "name": name, key: text })))
        }
        Op::Write => {
            if IMMUTABLE.contains(&name.as_str()) {
                return Err(ApiError::bad(format!("cannot update {name} policy")));
            }
            let mut text = p.string("policy").unwrap_or_default();
            if text.is_empty() && old {
                text = p.string("rules").unwrap_or_default();
            }
            if text.is_empty() {
                return Err(ApiError::bad("'policy' parameter not supplied or empty"));
            }
            // As Vault: a policy may arrive base64-encoded.
            if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(text.trim()) {
                if let Ok(s) = String::from_utf8(decoded) {
                    text = s;
                }
            }
            Policy::parse(&name, &text)?;
            app.store.put_policy(&name, &text).await?;
            app.forget_policy(&name);
            Ok(Reply::NoContent)
        }
        Op::Delete => {
            if name == "default" || IMMUTABLE.contains(&name.as_str()) {
                return Err(ApiError::bad(format!("cannot delete {name} policy")));
            }
            app.store.delete_policy(&name).await?;
            app.forget_policy(&name);
            Ok(Reply::NoContent)
        }
        Op::List => Err(ApiError::MethodNotAllowed),
    }
}
