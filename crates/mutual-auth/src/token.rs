//! Token rules as Vault has them (`vault/token_store.go`): which policies a child token gets,
//! who may create orphans and periodic tokens, how uses are counted, when a token has expired
//! and what a renewal gives.

use std::fmt;

use crate::ttl::{calculate_ttl, LeaseInputs, Secs, SystemTtl, TtlError, TtlWarning};

/// Policies that a token can never be given.
pub const NON_ASSIGNABLE: &[&str] = &["response-wrapping"];

/// Vault's `SanitizePolicies`: trimmed, lower case, without empties or duplicates, sorted;
/// `root` alone when present; `default` added when asked for and `root` is absent.
pub fn sanitize_policies<S: AsRef<str>>(policies: &[S], add_default: bool) -> Vec<String> {
    let mut out: Vec<String> = policies
        .iter()
        .map(|p| p.as_ref().trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if out.iter().any(|p| p == "root") {
        return vec!["root".to_string()];
    }
    if add_default && !out.iter().any(|p| p == "default") {
        out.push("default".to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// The parent's side of a child token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent<'a> {
    /// The parent's policies.
    pub policies: &'a [String],
    /// The parent has root or `sudo` on the create path.
    pub sudo: bool,
    /// The parent's remaining uses (0 for unlimited).
    pub num_uses: u32,
}

/// What the request for a new token asks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChildRequest {
    /// `policies`; empty to inherit the parent's.
    pub policies: Vec<String>,
    /// `no_default_policy`.
    pub no_default_policy: bool,
    /// `no_parent` (an orphan through `auth/token/create`, which needs sudo).
    pub no_parent: bool,
    /// Called through `auth/token/create-orphan` (ACL'd by its own path).
    pub create_orphan: bool,
    /// `period` in seconds, 0 for none (needs sudo).
    pub period: Secs,
}

/// Why a token could not be created as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateRefusal {
    /// The child asks for policies the parent lacks.
    #[error("child policies must be subset of parent: the parent token lacks {}", quoted(.missing))]
    NotSubset {
        /// The policies asked for that the parent does not hold.
        missing: Vec<String>,
    },
    /// Only a root parent may create a root token.
    #[error("root tokens may not be created without parent token being root")]
    RootFromNonRoot,
    /// A token with limited uses cannot escape its limit through children.
    #[error("restricted use token cannot generate child tokens")]
    RestrictedUse,
    /// `no_parent` without sudo.
    #[error("root or sudo privileges required to create orphan token")]
    OrphanNeedsSudo,
    /// `period` without sudo.
    #[error("root or sudo privileges required to create periodic token")]
    PeriodNeedsSudo,
    /// An internal policy.
    #[error("cannot assign policy \"{0}\"")]
    NonAssignable(String),
}

fn quoted(v: &[String]) -> String {
    v.iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A token to be created: its policies and whether it has a parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    /// Its final policies.
    pub policies: Vec<String>,
    /// True when it is an orphan (not revoked with its parent).
    pub orphan: bool,
}

/// Vault's policy resolution for `auth/token/create` without a role: the child inherits the
/// parent's policies when it asks for none; otherwise a parent without sudo may only hand out
/// policies it holds (`default` aside), and `default` is added when the parent has it.
pub fn child_token(parent: &Parent, req: &ChildRequest) -> Result<Child, CreateRefusal> {
    if parent.num_uses > 0 {
        return Err(CreateRefusal::RestrictedUse);
    }
    if req.no_parent && !parent.sudo {
        return Err(CreateRefusal::OrphanNeedsSudo);
    }
    if req.period > 0 && !parent.sudo {
        return Err(CreateRefusal::PeriodNeedsSudo);
    }
    let mut add_default = false;
    let policies = if req.policies.iter().all(|p| p.trim().is_empty()) {
        sanitize_policies(parent.policies, false)
    } else if !parent.sudo {
        let asked = sanitize_policies(&req.policies, false);
        let held = sanitize_policies(parent.policies, false);
        let missing: Vec<String> = asked
            .iter()
            .filter(|p| !held.contains(p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(CreateRefusal::NotSubset { missing });
        }
        add_default = !req.no_default_policy && parent.policies.iter().any(|p| p == "default");
        asked
    } else {
        add_default = !req.no_default_policy;
        req.policies.clone()
    };
    let mut policies = sanitize_policies(&policies, add_default);
    if req.no_default_policy {
        policies.retain(|p| p != "default");
    }
    if policies.iter().any(|p| p == "root") && !parent.policies.iter().any(|p| p == "root") {
        return Err(CreateRefusal::RootFromNonRoot);
    }
    if let Some(p) = policies
        .iter()
        .find(|p| NON_ASSIGNABLE.contains(&p.as_str()))
    {
        return Err(CreateRefusal::NonAssignable(p.clone()));
    }
    Ok(Child {
        policies,
        orphan: req.no_parent || req.create_orphan,
    })
}

/// What one request does to a token's use count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// The token has no use limit.
    Unlimited,
    /// Allowed; this many uses remain after it.
    Counted {
        /// Remaining after this request.
        remaining: u32,
    },
    /// Allowed, and the last one: the token is revoked after this request.
    Last,
}

/// Counts one use of a token with `num_uses` remaining (0 meaning unlimited, as in Vault).
pub fn use_token(num_uses: u32) -> Use {
    match num_uses {
        0 => Use::Unlimited,
        1 => Use::Last,
        n => Use::Counted { remaining: n - 1 },
    }
}

/// The lifetime of a stored token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lifetime {
    /// When it was issued (unix seconds); its max TTLs count from here.
    pub issued: i64,
    /// When it expires (unix seconds), `None` for a token that never expires (root).
    pub expires: Option<i64>,
    /// The backend TTL a renewal falls back to (the creation `ttl`, a role's `token_ttl`).
    pub ttl: Secs,
    /// The backend max (a role's `token_max_ttl`), 0 for none.
    pub max_ttl: Secs,
    /// `explicit_max_ttl`, 0 for none.
    pub explicit_max_ttl: Secs,
    /// `period`, 0 for none.
    pub period: Secs,
    /// Whether it may be renewed.
    pub renewable: bool,
}

/// Why a renewal was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenewRefusal {
    /// Created with `renewable=false`, or never expiring.
    #[error("lease is not renewable")]
    NotRenewable,
    /// It has already expired.
    #[error("lease expired")]
    Expired,
    /// It reached its max TTL.
    #[error(transparent)]
    Ttl(#[from] TtlError),
}

/// Why a token cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// Usable.
    Valid,
    /// Past its expiry.
    Expired {
        /// When it expired.
        at: i64,
    },
}

impl Lifetime {
    /// The lifetime of a token created at `now` from these inputs, with the TTL Vault would
    /// give it; a root token without TTL never expires.
    pub fn create(
        system: SystemTtl,
        inputs: LeaseInputs,
        renewable: bool,
        never_expires: bool,
        now: i64,
    ) -> Result<(Lifetime, Vec<TtlWarning>), TtlError> {
        let mut life = Lifetime {
            issued: now,
            expires: None,
            ttl: inputs.backend_ttl,
            max_ttl: inputs.backend_max_ttl,
            explicit_max_ttl: inputs.explicit_max_ttl,
            period: inputs.period,
            renewable,
        };
        let mut warnings = Vec::new();
        let wants_ttl = inputs.period > 0 || inputs.backend_ttl > 0 || !never_expires;
        let mut ttl = 0;
        if wants_ttl {
            let (t, w) = calculate_ttl(system, inputs, now, now)?;
            ttl = t;
            warnings = w;
        }
        // Root tokens are still bound by an explicit max TTL.
        if ttl == 0 && inputs.explicit_max_ttl > 0 {
            ttl = inputs.explicit_max_ttl;
        }
        if ttl == 0 {
            life.renewable = false;
        } else {
            life.expires = Some(now + ttl as i64);
        }
        Ok((life, warnings))
    }

    /// Seconds left at `now` (0 once expired, and for a token that never expires).
    pub fn ttl_left(&self, now: i64) -> Secs {
        self.expires.map_or(0, |e| (e - now).max(0) as u64)
    }

    /// Whether the token may be used at `now`.
    pub fn validity(&self, now: i64) -> Validity {
        match self.expires {
            Some(at) if at <= now => Validity::Expired { at },
            _ => Validity::Valid,
        }
    }

    /// Renews by `increment` (0 for the backend's TTL) at `now`: the new lifetime and the TTL
    /// granted, capped by the max TTLs counted from issue.
    pub fn renew(
        &self,
        system: SystemTtl,
        increment: Secs,
        now: i64,
    ) -> Result<(Lifetime, Secs, Vec<TtlWarning>), RenewRefusal> {
        let Some(expires) = self.expires else {
            return Err(RenewRefusal::NotRenewable);
        };
        if expires <= now {
            return Err(RenewRefusal::Expired);
        }
        if !self.renewable {
            return Err(RenewRefusal::NotRenewable);
        }
        let inputs = LeaseInputs {
            increment,
            backend_ttl: self.ttl,
            period: self.period,
            backend_max_ttl: self.max_ttl,
            explicit_max_ttl: self.explicit_max_ttl,
        };
        let (ttl, warnings) = calculate_ttl(system, inputs, self.issued, now)?;
        let life = Lifetime {
            expires: Some(now + ttl as i64),
            ..*self
        };
        Ok((life, ttl, warnings))
    }
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Use::Unlimited => f.write_str("unlimited uses"),
            Use::Counted { remaining } => write!(f, "{remaining} uses left"),
            Use::Last => f.write_str("last use"),
        }
    }
}

/// A token role (`auth/token/roles/:name`): what `auth/token/create/:role` may hand out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenRole {
    /// `allowed_policies`: when set, the only policies a token of the role may ask for (and
    /// the ones it gets when it asks for none), whatever its parent holds.
    pub allowed_policies: Vec<String>,
    /// `disallowed_policies`: never given through the role.
    pub disallowed_policies: Vec<String>,
    /// `orphan`: tokens of the role have no parent (no sudo needed).
    pub orphan: bool,
    /// `token_period` in seconds, 0 for none (no sudo needed).
    pub period: Secs,
    /// `token_no_default_policy`.
    pub no_default_policy: bool,
}

/// Why a token role refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefusal {
    /// A policy outside `allowed_policies`.
    #[error("token policies ({}) must be subset of the role's allowed policies ({})", quoted(.asked), quoted(.allowed))]
    NotAllowed {
        /// What was asked.
        asked: Vec<String>,
        /// What the role allows.
        allowed: Vec<String>,
    },
    /// A policy in `disallowed_policies`.
    #[error("token policies ({}) contain disallowed policies ({})", quoted(.asked), quoted(.disallowed))]
    Disallowed {
        /// What was asked (or inherited).
        asked: Vec<String>,
        /// What the role forbids among them.
        disallowed: Vec<String>,
    },
    /// The parent's own limits (uses, root).
    #[error(transparent)]
    Create(#[from] CreateRefusal),
}

/// Vault's policy resolution for `auth/token/create/:role`: a role with `allowed_policies`
/// decides alone (the parent's policies do not bound it, that is what a role is for); a role
/// without inherits the parent's when none are asked and checks the parent's subset rule
/// otherwise; `disallowed_policies` are refused either way. Orphan and period come from the
/// role, without sudo.
pub fn role_child_token(
    parent: &Parent,
    req: &ChildRequest,
    role: &TokenRole,
) -> Result<Child, RoleRefusal> {
    if parent.num_uses > 0 {
        return Err(CreateRefusal::RestrictedUse.into());
    }
    let asked = sanitize_policies(&req.policies, false);
    let allowed = sanitize_policies(&role.allowed_policies, false);
    let disallowed = sanitize_policies(&role.disallowed_policies, false);
    let no_default = req.no_default_policy || role.no_default_policy;
    let mut policies = if !allowed.is_empty() {
        let outside: Vec<String> = asked
            .iter()
            .filter(|p| !allowed.contains(p) && *p != "default")
            .cloned()
            .collect();
        if !outside.is_empty() {
            return Err(RoleRefusal::NotAllowed { asked, allowed });
        }
        let base = if asked.is_empty() {
            allowed.clone()
        } else {
            asked.clone()
        };
        sanitize_policies(&base, !no_default)
    } else {
        // As without a role, but orphan and period are the role's to give.
        let plain = ChildRequest {
            policies: req.policies.clone(),
            no_default_policy: no_default,
            no_parent: false,
            create_orphan: false,
            period: 0,
        };
        let mut child = child_token(parent, &plain)?;
        if asked.is_empty() && !no_default && !child.policies.iter().any(|p| p == "root") {
            child.policies = sanitize_policies(&child.policies, true);
        }
        child.policies
    };
    if no_default {
        policies.retain(|p| p != "default");
    }
    let bad: Vec<String> = policies
        .iter()
        .filter(|p| disallowed.contains(p))
        .cloned()
        .collect();
    if !bad.is_empty() {
        return Err(RoleRefusal::Disallowed {
            asked: policies,
            disallowed: bad,
        });
    }
    if policies.iter().any(|p| p == "root") && !parent.policies.iter().any(|p| p == "root") {
        return Err(CreateRefusal::RootFromNonRoot.into());
    }
    Ok(Child {
        policies,
        orphan: role.orphan,
    })
}

#[cfg(test)]
mod tests;
