//! The ACL of a token: its policies merged as Vault merges them, and the decision for one
//! request with the rule that made it.
//!
//! Vault's rules (`vault/policy/acl.go`), kept here:
//! - rules for the same path from several policies merge: capabilities add up, and `deny` in
//!   any of them makes the merged rule deny;
//! - an exact path beats every glob; among globs and `+` paths the most specific wins: the
//!   later first wildcard, then not-a-prefix, then fewer `+` segments, then the longer path;
//! - a list request also tries the path without its trailing slash;
//! - the `root` policy allows everything and must stand alone.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
};

use serde_json::Value;

use crate::{
    capability::{Capabilities, Capability},
    policy::{PathRule, Policy},
};

/// Where a merged rule came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSource {
    /// The policy's name.
    pub policy: String,
    /// The line of the `path` block in that policy.
    pub line: usize,
    /// What that block granted.
    pub capabilities: Capabilities,
}

/// One path of the ACL: every rule written for it, merged.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    /// The path as written in the policies (with its `*`).
    pub path: String,
    /// The merged capabilities.
    pub capabilities: Capabilities,
    /// The blocks merged into it.
    pub sources: Vec<RuleSource>,
    allowed: Option<BTreeMap<String, Vec<Value>>>,
    denied: Option<BTreeMap<String, Vec<Value>>>,
    required: Vec<String>,
}

impl Matched {
    /// The policies whose block for this path grants `c`.
    pub fn granting(&self, c: Capability) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .sources
            .iter()
            .filter(|s| s.capabilities.has(c))
            .map(|s| s.policy.as_str())
            .collect();
        v.dedup();
        v
    }

    fn merge(&mut self, policy: &str, rule: &PathRule) {
        self.sources.push(RuleSource {
            policy: policy.to_string(),
            line: rule.line,
            capabilities: rule.capabilities,
        });
        if self.capabilities.has(Capability::Deny) {
            return;
        }
        if rule.capabilities.has(Capability::Deny) {
            self.capabilities = Capabilities::of(&[Capability::Deny]);
            self.allowed = None;
            self.denied = None;
            return;
        }
        self.capabilities = self.capabilities.union(rule.capabilities);
        merge_params(&mut self.allowed, &rule.allowed_parameters);
        merge_params(&mut self.denied, &rule.denied_parameters);
        for r in &rule.required_parameters {
            if !self.required.contains(r) {
                self.required.push(r.clone());
            }
        }
    }
}

/// Vault's merge of parameter lists: values add up, and an empty list (any value) wins.
fn merge_params(
    into: &mut Option<BTreeMap<String, Vec<Value>>>,
    from: &Option<BTreeMap<String, Vec<Value>>>,
) {
    let Some(from) = from.as_ref().filter(|m| !m.is_empty()) else {
        return;
    };
    let Some(into) = into.as_mut() else {
        *into = Some(from.clone());
        return;
    };
    for (k, v) in from {
        match into.get_mut(k) {
            Some(existing) if existing.is_empty() => {}
            Some(_) if v.is_empty() => {
                into.insert(k.clone(), Vec::new());
            }
            Some(existing) => existing.extend(v.iter().cloned()),
            None => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Why a request was allowed or refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The token holds the `root` policy.
    Root,
    /// The matched rule grants the capability.
    Granted,
    /// No rule of any policy matches the path.
    NoMatchingRule,
    /// The matched rule is `deny`.
    ExplicitDeny,
    /// The matched rule does not grant the capability.
    CapabilityMissing,
    /// A parameter the rule requires is absent.
    RequiredParameterMissing(String),
    /// A parameter (or its value) is refused by `denied_parameters`.
    ParameterDenied(String),
    /// A parameter (or its value) is not in `allowed_parameters`.
    ParameterNotAllowed(String),
}

/// The outcome of [`Acl::allows`]: allowed or not, why, and the rule that decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The request path as checked.
    pub path: String,
    /// The capability the request needs.
    pub capability: Capability,
    /// Why.
    pub reason: Reason,
    /// The rule that decided, when one matched.
    pub rule: Option<Matched>,
}

impl Decision {
    /// True when the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self.reason, Reason::Root | Reason::Granted)
    }

    /// True when the token has root privileges on the path (the `root` policy, or `sudo` on
    /// the matched rule), which Vault requires on top of the capability for protected paths.
    pub fn has_sudo(&self) -> bool {
        match self.reason {
            Reason::Root => true,
            _ => self.rule.as_ref().is_some_and(|r| {
                r.capabilities.has(Capability::Sudo) && !r.capabilities.has(Capability::Deny)
            }),
        }
    }

    /// The policies that granted the request (for the audit log's `policy_results`).
    pub fn granting_policies(&self) -> Vec<&str> {
        match (&self.reason, &self.rule) {
            (Reason::Root, _) => vec!["root"],
            (Reason::Granted, Some(r)) => r.granting(self.capability),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (p, c) = (&self.path, self.capability);
        let rule = |r: &Matched| {
            let at: Vec<String> = r
                .sources
                .iter()
                .map(|s| format!("policy \"{}\" line {}", s.policy, s.line))
                .collect();
            format!("path \"{}\" ({})", r.path, at.join(", "))
        };
        match (&self.reason, &self.rule) {
            (Reason::Root, _) => write!(f, "{c} on \"{p}\" allowed by the root policy"),
            (Reason::Granted, Some(r)) => write!(f, "{c} on \"{p}\" allowed by {}", rule(r)),
            (Reason::NoMatchingRule, _) | (_, None) => {
                write!(
                    f,
                    "{c} on \"{p}\" denied: no policy has a rule for this path"
                )
            }
            (Reason::ExplicitDeny, Some(r)) => {
                write!(f, "{c} on \"{p}\" denied by {}", rule(r))
            }
            (Reason::CapabilityMissing, Some(r)) => write!(
                f,
                "{c} on \"{p}\" denied: {} grants only [{}]",
                rule(r),
                r.capabilities.names().join(", ")
            ),
            (Reason::RequiredParameterMissing(k), Some(r)) => write!(
                f,
                "{c} on \"{p}\" denied: parameter \"{k}\" is required by {}",
                rule(r)
            ),
            (Reason::ParameterDenied(k), Some(r)) => write!(
                f,
                "{c} on \"{p}\" denied: parameter \"{k}\" is denied by {}",
                rule(r)
            ),
            (Reason::ParameterNotAllowed(k), Some(r)) => write!(
                f,
                "{c} on \"{p}\" denied: parameter \"{k}\" is not allowed by {}",
                rule(r)
            ),
        }
    }
}

/// The merged policies of a token.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    root: bool,
    exact: HashMap<String, Matched>,
    prefix: BTreeMap<String, Matched>,
    segments: HashMap<String, Matched>,
}

/// Refusal to build an ACL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclError {
    /// Vault refuses `root` next to other policies.
    #[error("other policies present along with root")]
    RootNotAlone,
}

fn has_segment_wildcards(p: &str) -> bool {
    p == "+" || p.contains("/+") || p.starts_with("+/")
}

impl Acl {
    /// The ACL of the `root` policy: everything allowed.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// True for the root ACL.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// Merges `policies`. A policy named `root` makes the root ACL, and must be alone.
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Result<Acl, AclError> {
        let policies: Vec<&Policy> = policies.into_iter().collect();
        if policies.iter().any(|p| p.name == "root") {
            if policies.len() != 1 {
                return Err(AclError::RootNotAlone);
            }
            return Ok(Acl::root());
        }
        let mut acl = Acl::default();
        for policy in policies {
            for rule in policy.rules.iter().filter(|r| !r.templated) {
                let (map, key) = if has_segment_wildcards(&rule.path) {
                    (&mut acl.segments, rule.path.clone())
                } else if let Some(stem) = rule.path.strip_suffix('*') {
                    // Prefix rules live in an ordered map only so that lookups stay simple.
                    let m = acl
                        .prefix
                        .entry(stem.to_string())
                        .or_insert_with(|| empty(&rule.path));
                    m.merge(&policy.name, rule);
                    continue;
                } else {
                    (&mut acl.exact, rule.path.clone())
                };
                map.entry(key)
                    .or_insert_with(|| empty(&rule.path))
                    .merge(&policy.name, rule);
            }
        }
        Ok(acl)
    }

    /// Whether a request to `path` (as after `/v1/`) needing `capability`, carrying no
    /// parameters, is allowed.
    pub fn allows(&self, path: &str, capability: Capability) -> Decision {
        self.allows_with(path, capability, &BTreeMap::new())
    }

    /// Whether a request to `path` needing `capability` with these parameters is allowed;
    /// `allowed_parameters`, `denied_parameters` and `required_parameters` apply to read,
    /// create, update and patch, as in Vault.
    pub fn allows_with(
        &self,
        path: &str,
        capability: Capability,
        params: &BTreeMap<String, Value>,
    ) -> Decision {
        let mut path = path.trim_start_matches('/').to_string();
        // Vault's HTTP layer gives every list request a trailing slash.
        if capability == Capability::List && !path.ends_with('/') {
            path.push('/');
        }
        let decide = |reason, rule| Decision {
            path: path.clone(),
            capability,
            reason,
            rule,
        };
        if self.root {
            return decide(Reason::Root, None);
        }
        let Some(rule) = self.find(&path, capability) else {
            return decide(Reason::NoMatchingRule, None);
        };
        let caps = rule.capabilities;
        let reason = if caps.has(Capability::Deny) {
            Reason::ExplicitDeny
        } else if !caps.has(capability) {
            Reason::CapabilityMissing
        } else if matches!(
            capability,
            Capability::Read | Capability::Create | Capability::Update | Capability::Patch
        ) {
            check_params(rule, params).map_or(Reason::Granted, |r| r)
        } else {
            Reason::Granted
        };
        decide(reason, Some(rule.clone()))
    }

    /// The capabilities the ACL grants on `path`, as `sys/capabilities-self` reports them.
    pub fn capabilities(&self, path: &str) -> Vec<&'static str> {
        if self.root {
            return vec!["root"];
        }
        // As Vault: the path is looked up the way a list request would be.
        self.find(path.trim_start_matches('/'), Capability::List)
            .map_or(vec!["deny"], |m| m.capabilities.names())
    }

    /// True when some rule grants something (not deny) at or below `mount` — Vault's check
    /// before it tells a caller about a mount (`sys/internal/ui/mounts/:path`).
    pub fn any_under(&self, mount: &str) -> bool {
        if self.root {
            return true;
        }
        let mount = format!("{}/", mount.trim_matches('/'));
        let grants =
            |m: &Matched| !m.capabilities.is_empty() && !m.capabilities.has(Capability::Deny);
        let under = |p: &str| p.starts_with(&mount) || mount.starts_with(p);
        self.exact
            .iter()
            .any(|(p, m)| p.starts_with(&mount) && grants(m))
            || self.prefix.iter().any(|(p, m)| under(p) && grants(m))
            || self.segments.iter().any(|(p, m)| {
                let fixed = p.split('+').next().unwrap_or("");
                under(fixed) && grants(m)
            })
    }

    fn find(&self, path: &str, capability: Capability) -> Option<&Matched> {
        let listing = capability == Capability::List || capability == Capability::Scan;
        if let Some(m) = self.exact.get(path) {
            return Some(m);
        }
        if listing {
            if let Some(m) = self.exact.get(path.trim_end_matches('/')) {
                return Some(m);
            }
        }
        if let Some(m) = self.non_exact(path) {
            return Some(m);
        }
        if listing && path.ends_with('/') {
            return self.non_exact(path.trim_end_matches('/'));
        }
        None
    }

    fn non_exact(&self, path: &str) -> Option<&Matched> {
        // Longest prefix among the glob rules.
        let prefix = self
            .prefix
            .iter()
            .filter(|(stem, _)| path.starts_with(stem.as_str()))
            .max_by_key(|(stem, _)| stem.len());
        if self.segments.is_empty() {
            return prefix.map(|(_, m)| m);
        }
        let mut candidates: Vec<Candidate> = Vec::new();
        if let Some((stem, m)) = prefix {
            candidates.push(Candidate {
                first_wildcard: stem.len(),
                is_prefix: true,
                wildcards: 0,
                path: stem.clone(),
                rule: m,
            });
        }
        let parts: Vec<&str> = path.split('/').collect();
        'rules: for (full, m) in &self.segments {
            let (wc_path, is_prefix) = match full.strip_suffix('*') {
                Some(p) => (p, true),
                None => (full.as_str(), false),
            };
            let acl_parts: Vec<&str> = wc_path.split('/').collect();
            if parts.len() < acl_parts.len() || (!is_prefix && parts.len() != acl_parts.len()) {
                continue;
            }
            let mut wildcards = 0;
            for (i, a) in acl_parts.iter().enumerate() {
                let last = i == acl_parts.len() - 1;
                if *a == "+" {
                    wildcards += 1;
                } else if *a == parts[i] || (is_prefix && last && parts[i].starts_with(a)) {
                } else {
                    continue 'rules;
                }
            }
            candidates.push(Candidate {
                first_wildcard: full.find('+').unwrap_or(full.len()),
                is_prefix,
                wildcards,
                path: wc_path.to_string(),
                rule: m,
            });
        }
        candidates
            .into_iter()
            .max_by(|a, b| a.priority_cmp(b))
            .map(|c| c.rule)
    }
}

fn empty(path: &str) -> Matched {
    Matched {
        path: path.to_string(),
        capabilities: Capabilities::NONE,
        sources: Vec::new(),
        allowed: None,
        denied: None,
        required: Vec::new(),
    }
}

struct Candidate<'a> {
    first_wildcard: usize,
    is_prefix: bool,
    wildcards: usize,
    path: String,
    rule: &'a Matched,
}

impl Candidate<'_> {
    /// Vault's priority: later first wildcard, then not a prefix, then fewer `+`, then longer,
    /// then (arbitrarily, but deterministically) the lexically greater.
    fn priority_cmp(&self, o: &Candidate) -> std::cmp::Ordering {
        self.first_wildcard
            .cmp(&o.first_wildcard)
            .then(o.is_prefix.cmp(&self.is_prefix))
            .then(o.wildcards.cmp(&self.wildcards))
            .then(self.path.len().cmp(&o.path.len()))
            .then(self.path.cmp(&o.path))
    }
}

/// Vault's parameter checks; `None` when the parameters pass.
fn check_params(rule: &Matched, params: &BTreeMap<String, Value>) -> Option<Reason> {
    let params: BTreeMap<String, &Value> =
        params.iter().map(|(k, v)| (k.to_lowercase(), v)).collect();
    for r in &rule.required {
        if !params.contains_key(r) {
            return Some(Reason::RequiredParameterMissing(r.clone()));
        }
    }
    if params.is_empty() {
        return None;
    }
    if let Some(denied) = rule.denied.as_ref().filter(|d| !d.is_empty()) {
        if denied.contains_key("*") {
            let first = params.keys().next().cloned().unwrap_or_default();
            return Some(Reason::ParameterDenied(first));
        }
        for (k, v) in &params {
            if denied.get(k).is_some_and(|list| value_in_list(v, list)) {
                return Some(Reason::ParameterDenied(k.clone()));
            }
        }
    }
    let allowed = rule.allowed.as_ref().filter(|a| !a.is_empty())?;
    let allow_all = allowed.contains_key("*");
    if allow_all && allowed.len() == 1 {
        return None;
    }
    for (k, v) in &params {
        match allowed.get(k) {
            None if !allow_all => return Some(Reason::ParameterNotAllowed(k.clone())),
            Some(list) if !value_in_list(v, list) => {
                return Some(Reason::ParameterNotAllowed(k.clone()))
            }
            _ => {}
        }
    }
    None
}

fn value_in_list(v: &Value, list: &[Value]) -> bool {
    list.is_empty()
        || list.iter().any(|el| match (el, v) {
            (Value::String(pat), Value::String(s)) => globbed_match(pat, s),
            _ => el == v,
        })
}

/// Vault's `GlobbedStringsMatch`: `*` only at the start and/or the end.
fn globbed_match(pat: &str, s: &str) -> bool {
    if pat == "*" {
        return true;
    }
    match (pat.strip_prefix('*'), pat.strip_suffix('*')) {
        (Some(rest), _) if rest.ends_with('*') && !rest.is_empty() => {
            s.contains(&rest[..rest.len() - 1])
        }
        (Some(rest), _) => s.ends_with(rest),
        (None, Some(rest)) => s.starts_with(rest),
        (None, None) => pat == s,
    }
}

#[cfg(test)]
mod tests;
