//! The ACL check of every request: the token's policies (read from the store, parsed once and
//! cached briefly), merged by `mutual-auth`, asked about the path and the capability the
//! request needs. A refusal is Vault's bare 403; the rule that decided goes to the log.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use mutual_auth::{default_policy, Acl, Capability, Decision, Policy};
use mutual_store::TokenRecord;

use crate::{error::ApiError, params::Params, state::App, Op};

/// How long a parsed policy is trusted before it is read again (a policy written through
/// another node takes effect within this).
const POLICY_FRESH: Duration = Duration::from_secs(2);

/// A parsed policy (`None`: no policy of that name) and when it was read.
type Cached = (Option<Arc<Policy>>, Instant);

/// Parsed policies by name.
#[derive(Debug, Default)]
pub(crate) struct PolicyCache(Mutex<HashMap<String, Cached>>);

/// The name of the policy that `mutual token create --mount M` writes for mount `M`.
pub(crate) fn mount_policy_name(mount: &str) -> String {
    format!("mount-{}", mount.replace('/', "-"))
}

/// The policy that stands for a mount-scoped token: everything on the mount, and the CLI's
/// preflight for it.
pub(crate) fn mount_policy_text(mount: &str) -> String {
    format!(
        "# Written by mutual for tokens scoped to the mount \"{mount}\".\n\
         path \"{mount}/*\" {{\n  capabilities = [\"create\", \"read\", \"update\", \"delete\", \"list\"]\n}}\n"
    )
}

/// Paths that need `sudo` besides their capability, as Vault's root paths.
fn needs_sudo(path: &str, mount_rest: Option<&str>) -> bool {
    if let Some(rest) = mount_rest {
        return rest == "root" || rest == "root/sign-self-issued";
    }
    path.starts_with("sys/auth/")
        || path == "sys/audit"
        || path.starts_with("sys/audit/")
        || path.starts_with("sys/config/")
        || path == "auth/token/accessors"
}

/// The capability an operation needs; a write to something that does not exist yet needs
/// `create`, to something that does `update` (the caller says which).
pub(crate) fn capability(op: Op, exists: bool) -> Capability {
    match op {
        Op::Read => Capability::Read,
        Op::List => Capability::List,
        Op::Delete => Capability::Delete,
        Op::Write if exists => Capability::Update,
        Op::Write => Capability::Create,
    }
}

impl App {
    /// The policy `name` (the built-in `default` when none is stored under that name).
    pub(crate) async fn policy(&self, name: &str) -> Result<Option<Arc<Policy>>, ApiError> {
        if let Some((p, at)) = self
            .policies
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
        {
            if at.elapsed() < POLICY_FRESH {
                return Ok(p.clone());
            }
        }
        let parsed = match self.store.get_policy(name).await? {
            Some(text) => match Policy::parse(name, &text) {
                Ok(p) => Some(Arc::new(p)),
                Err(e) => {
                    // Written by an older version or by hand: it grants nothing.
                    tracing::warn!(policy = name, error = %e, "stored policy does not parse");
                    None
                }
            },
            None if name == "default" => Some(Arc::new(default_policy())),
            None => None,
        };
        self.policies
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), (parsed.clone(), Instant::now()));
        Ok(parsed)
    }

    /// Forgets every cached policy (a change made by another node).
    pub(crate) fn forget_policies(&self) {
        self.policies
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Forgets cached policies after a write.
    pub(crate) fn forget_policy(&self, name: &str) {
        self.policies
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// The ACL of a token: its policies, or for a token made before policies (or by a cert
    /// login) the mount policies its mounts stand for.
    pub(crate) async fn acl(&self, tok: &TokenRecord) -> Result<Acl, ApiError> {
        if tok.is_root() {
            return Ok(Acl::root());
        }
        let mut policies: Vec<Arc<Policy>> = Vec::new();
        if tok.policies.is_empty() {
            for m in &tok.mounts {
                let p = Policy::parse(&mount_policy_name(m), &mount_policy_text(m))?;
                policies.push(Arc::new(p));
            }
        }
        for name in &tok.policies {
            if let Some(p) = self.policy(name).await? {
                policies.push(p);
            }
        }
        Acl::new(policies.iter().map(|p| p.as_ref())).map_err(|e| ApiError::bad(e.to_string()))
    }

    /// Checks `tok` may do `cap` on `path` (with these parameters); 403 when not, with the
    /// decision logged.
    pub(crate) async fn authorize(
        &self,
        tok: &TokenRecord,
        path: &str,
        cap: Capability,
        params: &Params,
        mount_rest: Option<&str>,
    ) -> Result<Decision, ApiError> {
        let acl = self.acl(tok).await?;
        let values: BTreeMap<String, serde_json::Value> = params.to_map();
        let decision = acl.allows_with(path, cap, &values);
        let sudo_ok = !needs_sudo(path, mount_rest) || decision.has_sudo();
        let allowed = decision.is_allowed() && sudo_ok;
        crate::audit::note_decision(
            allowed,
            decision
                .granting_policies()
                .into_iter()
                .map(String::from)
                .collect(),
        );
        if allowed {
            return Ok(decision);
        }
        tracing::info!(
            token.accessor = %tok.accessor,
            path,
            capability = %cap,
            decision = %decision,
            sudo_required = !sudo_ok,
            "request denied"
        );
        Err(ApiError::PermissionDenied)
    }
}
