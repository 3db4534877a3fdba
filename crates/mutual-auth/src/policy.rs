//! ACL policies in Vault's language: `path "…" { capabilities = [...] }` blocks, written in HCL
//! (or in its JSON form), parsed once into [`Policy`] with errors that name the line.
//!
//! The keys Vault accepts are accepted; the ones whose meaning mutual cannot honour
//! (response wrapping, MFA, control groups, pagination limits) are refused at write time with
//! a clear error rather than ignored, because ignoring them would grant more than the author
//! wrote.

use std::{collections::BTreeMap, fmt};

use hcl_edit::{expr::Expression, structure::Structure, Span};
use serde_json::Value;

use crate::capability::{Capabilities, Capability};

/// A parsed ACL policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its name (lower case, as Vault stores names).
    pub name: String,
    /// The text it was parsed from, returned by `sys/policies/acl/:name` as `policy`.
    pub raw: String,
    /// Its path rules, in the order written.
    pub rules: Vec<PathRule>,
}

/// One `path "…" { … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// The path as written, without a leading `/`: `pki/issue/*`, `secret/+/config`.
    pub path: String,
    /// The line of the block (1-based), for audit and error messages.
    pub line: usize,
    /// The capabilities granted (only `deny` when deny was listed, as Vault does).
    pub capabilities: Capabilities,
    /// `allowed_parameters`: when set, only these request keys (lower case), and only these
    /// values when the list is not empty; `*` allows any key.
    pub allowed_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// `denied_parameters`: request keys (lower case) refused, with these values or any
    /// value when the list is empty; `*` refuses every key.
    pub denied_parameters: Option<BTreeMap<String, Vec<Value>>>,
    /// `required_parameters`: keys every request must carry.
    pub required_parameters: Vec<String>,
    /// The path holds an identity template (`{{identity.entity.id}}`). mutual has no
    /// identities, so — as Vault does for a token without an entity — the rule never matches.
    pub templated: bool,
}

/// Why a policy text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{kind}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
pub struct PolicyError {
    /// The 1-based line where the problem is, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: PolicyErrorKind,
}

/// What is wrong with a policy text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyErrorKind {
    /// The text is not HCL (nor JSON).
    #[error("{message} at column {column}")]
    Syntax {
        /// The parser's message.
        message: String,
        /// The 1-based column.
        column: usize,
    },
    /// A top-level key other than `path` or `name`.
    #[error("unknown key \"{key}\" (a policy holds path \"…\" {{ … }} blocks)")]
    UnknownTopLevelKey {
        /// The key.
        key: String,
    },
    /// `path` without exactly one quoted label.
    #[error("a path block needs exactly one label, as in path \"pki/issue/*\" {{ … }}")]
    PathLabel,
    /// A key Vault does not know inside a path block.
    #[error("path \"{path}\": unknown key \"{key}\"")]
    UnknownKey {
        /// The rule's path.
        path: String,
        /// The key.
        key: String,
    },
    /// A key Vault knows but mutual cannot honour.
    #[error("path \"{path}\": {key} is not supported by mutual")]
    Unsupported {
        /// The rule's path.
        path: String,
        /// The key.
        key: String,
    },
    /// A value of the wrong type.
    #[error("path \"{path}\": {key} must be {expected}")]
    WrongType {
        /// The rule's path.
        path: String,
        /// The key.
        key: String,
        /// What it must be.
        expected: &'static str,
    },
    /// A capability Vault does not know.
    #[error("path \"{path}\": invalid capability \"{capability}\" (expected one of create, read, update, delete, list, sudo, deny, patch, scan)")]
    InvalidCapability {
        /// The rule's path.
        path: String,
        /// What was written.
        capability: String,
    },
    /// An old-style `policy = "…"` value other than deny/read/write/sudo.
    #[error("path \"{path}\": invalid policy \"{policy}\" (expected deny, read, write or sudo)")]
    InvalidOldPolicy {
        /// The rule's path.
        path: String,
        /// What was written.
        policy: String,
    },
    /// `+*` in a path, which Vault forbids.
    #[error("path \"{path}\": invalid use of wildcards ('+*' is forbidden)")]
    PlusStar {
        /// The rule's path.
        path: String,
    },
    /// A policy name Vault would refuse.
    #[error("invalid policy name \"{name}\"")]
    Name {
        /// The name.
        name: String,
    },
}

impl PolicyError {
    fn at(line: Option<usize>, kind: PolicyErrorKind) -> PolicyError {
        PolicyError { line, kind }
    }
}

/// The old `policy = "…"` shorthands, as Vault maps them.
fn old_policy(p: &str) -> Option<&'static [Capability]> {
    use Capability::*;
    Some(match p {
        "deny" => &[Deny],
        "read" => &[Read, List],
        "write" => &[Create, Read, Update, Delete, List],
        "sudo" => &[Create, Read, Update, Delete, List, Sudo],
        _ => return None,
    })
}

/// Normalises a policy name as Vault does (trimmed, lower case) and refuses names that cannot
/// be a path segment.
pub fn policy_name(name: &str) -> Result<String, PolicyError> {
    let n = name.trim().to_lowercase();
    if n.is_empty() || n.contains('/') || n.contains("..") || n.chars().any(char::is_control) {
        return Err(PolicyError::at(
            None,
            PolicyErrorKind::Name {
                name: name.to_string(),
            },
        ));
    }
    Ok(n)
}

/// A path block before its keys are checked: the path, its line, and each key with its line.
struct RawRule {
    path: String,
    line: Option<usize>,
    attrs: Vec<(String, Option<usize>, Result<Value, &'static str>)>,
}

impl Policy {
    /// Parses `text` (HCL, or Vault's JSON form when it starts with `{`) as policy `name`.
    pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
        let name = policy_name(name)?;
        let raw_rules = if text.trim_start().starts_with('{') {
            raw_from_json(text)?
        } else {
            raw_from_hcl(text)?
        };
        let rules = raw_rules
            .into_iter()
            .map(decode_rule)
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            name,
            raw: text.to_string(),
            rules,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn raw_from_hcl(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let body = hcl_edit::parser::parse_body(text).map_err(|e| {
        PolicyError::at(
            Some(e.location().line()),
            PolicyErrorKind::Syntax {
                message: e.message().to_string(),
                column: e.location().column(),
            },
        )
    })?;
    let line = |s: &dyn Span| s.span().map(|r| line_of(text, r.start));
    let mut rules = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Attribute(a) if a.key.as_str() == "name" => {}
            Structure::Attribute(a) => {
                return Err(PolicyError::at(
                    line(a),
                    PolicyErrorKind::UnknownTopLevelKey {
                        key: a.key.to_string(),
                    },
                ))
            }
            Structure::Block(b) if b.ident.as_str() == "path" => {
                let [label] = b.labels.as_slice() else {
                    return Err(PolicyError::at(line(b), PolicyErrorKind::PathLabel));
                };
                let path = label.as_str().to_string();
                let mut attrs = Vec::new();
                for inner in b.body.iter() {
                    match inner {
                        Structure::Attribute(a) => {
                            attrs.push((a.key.to_string(), line(a), expr_value(&a.value)))
                        }
                        Structure::Block(inner) => {
                            return Err(PolicyError::at(
                                line(inner),
                                unknown_or_unsupported(&path, inner.ident.as_str()),
                            ))
                        }
                    }
                }
                rules.push(RawRule {
                    path,
                    line: line(b),
                    attrs,
                });
            }
            Structure::Block(b) => {
                return Err(PolicyError::at(
                    line(b),
                    PolicyErrorKind::UnknownTopLevelKey {
                        key: b.ident.to_string(),
                    },
                ))
            }
        }
    }
    Ok(rules)
}

/// An HCL value as JSON, or what it is when it is not a plain value (an interpolation, a
/// function call: a policy holds data, not code).
fn expr_value(e: &Expression) -> Result<Value, &'static str> {
    Ok(match e {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => {
            let n = n.value();
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or("a number")?
            }
        }
        Expression::String(s) => Value::String(s.value().clone()),
        Expression::Array(a) => Value::Array(a.iter().map(expr_value).collect::<Result<_, _>>()?),
        Expression::Object(o) => {
            let mut m = serde_json::Map::new();
            for (k, v) in o.iter() {
                let key = if let Some(id) = k.as_ident() {
                    id.to_string()
                } else {
                    match k.as_expr().map(expr_value) {
                        Some(Ok(Value::String(s))) => s,
                        _ => return Err("an object with string keys"),
                    }
                };
                m.insert(key, expr_value(v.expr())?);
            }
            Value::Object(m)
        }
        Expression::Parenthesis(p) => expr_value(p.inner())?,
        _ => return Err("a plain value (no interpolation or expression)"),
    })
}

fn raw_from_json(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        PolicyError::at(
            Some(e.line()),
            PolicyErrorKind::Syntax {
                message: format!("invalid JSON: {e}"),
                column: e.column(),
            },
        )
    })?;
    let Value::Object(top) = v else {
        return Err(PolicyError::at(
            Some(1),
            PolicyErrorKind::Syntax {
                message: "a JSON policy must be an object".into(),
                column: 1,
            },
        ));
    };
    // serde_json keeps no positions; the first occurrence of the quoted path is the line a
    // reader will look at.
    let find = |s: &str| {
        text.find(&serde_json::to_string(s).unwrap_or_default())
            .map(|o| line_of(text, o))
    };
    let mut rules = Vec::new();
    for (key, value) in top {
        match key.as_str() {
            "name" => {}
            "path" => {
                let blocks: Vec<serde_json::Map<String, Value>> = match value {
                    Value::Object(m) => vec![m],
                    Value::Array(a) => a
                        .into_iter()
                        .filter_map(|x| match x {
                            Value::Object(m) => Some(m),
                            _ => None,
                        })
                        .collect(),
                    _ => return Err(PolicyError::at(find("path"), PolicyErrorKind::PathLabel)),
                };
                for block in blocks {
                    for (path, body) in block {
                        let line = find(&path);
                        let Value::Object(body) = body else {
                            return Err(PolicyError::at(line, PolicyErrorKind::PathLabel));
                        };
                        let attrs = body.into_iter().map(|(k, v)| (k, line, Ok(v))).collect();
                        rules.push(RawRule { path, line, attrs });
                    }
                }
            }
            _ => {
                return Err(PolicyError::at(
                    find(&key),
                    PolicyErrorKind::UnknownTopLevelKey { key },
                ))
            }
        }
    }
    Ok(rules)
}

fn unknown_or_unsupported(path: &str, key: &str) -> PolicyErrorKind {
    match key {
        "min_wrapping_ttl"
        | "max_wrapping_ttl"
        | "mfa_methods"
        | "control_group"
        | "pagination_limit"
        | "list_scan_response_keys_filter_path"
        | "expiration" => PolicyErrorKind::Unsupported {
            path: path.to_string(),
            key: key.to_string(),
        },
        _ => PolicyErrorKind::UnknownKey {
            path: path.to_string(),
            key: key.to_string(),
        },
    }
}

fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        // HCL1 accepted a lone string where a list was expected; Vault policies in the wild
        // rely on it (`capabilities = "read"` is rare, but comma lists are not).
        Value::String(s) => Some(s.split(',').map(|p| p.trim().to_string()).collect()),
        _ => None,
    }
}

fn param_map(v: &Value) -> Option<BTreeMap<String, Vec<Value>>> {
    let Value::Object(m) = v else { return None };
    m.iter()
        .map(|(k, v)| {
            let list = match v {
                Value::Array(a) => a.clone(),
                other => vec![other.clone()],
            };
            Some((k.to_lowercase(), list))
        })
        .collect()
}

fn decode_rule(raw: RawRule) -> Result<PathRule, PolicyError> {
    let mut path = raw.path.clone();
    if let Some(p) = path.strip_prefix('/') {
        path = p.to_string();
    }
    let err = |line, kind| Err(PolicyError::at(line, kind));
    if path.contains("+*") {
        return err(raw.line, PolicyErrorKind::PlusStar { path });
    }
    let mut rule = PathRule {
        templated: path.contains("{{"),
        path: path.clone(),
        line: raw.line.unwrap_or(0),
        capabilities: Capabilities::NONE,
        allowed_parameters: None,
        denied_parameters: None,
        required_parameters: Vec::new(),
    };
    let mut caps: Vec<Capability> = Vec::new();
    let wrong = |key: &str, line, expected| {
        err(
            line,
            PolicyErrorKind::WrongType {
                path: path.clone(),
                key: key.to_string(),
                expected,
            },
        )
    };
    for (key, line, value) in raw.attrs {
        let value = match value {
            Ok(v) => v,
            Err(expected) => return wrong(&key, line, expected),
        };
        match key.as_str() {
            "comment" => {}
            "capabilities" => {
                let Some(list) = strings(&value) else {
                    return wrong(&key, line, "a list of strings");
                };
                for c in list {
                    match Capability::parse(&c) {
                        Some(c) => caps.push(c),
                        None => {
                            return err(
                                line,
                                PolicyErrorKind::InvalidCapability {
                                    path,
                                    capability: c,
                                },
                            )
                        }
                    }
                }
            }
            "policy" => {
                let Some(p) = value.as_str() else {
                    return wrong(&key, line, "a string");
                };
                match old_policy(p) {
                    Some(list) => caps.extend_from_slice(list),
                    None => {
                        return err(
                            line,
                            PolicyErrorKind::InvalidOldPolicy {
                                path,
                                policy: p.to_string(),
                            },
                        )
                    }
                }
            }
            "allowed_parameters" | "denied_parameters" => {
                let Some(m) = param_map(&value) else {
                    return wrong(&key, line, "an object of lists");
                };
                if key == "allowed_parameters" {
                    rule.allowed_parameters = Some(m);
                } else {
                    rule.denied_parameters = Some(m);
                }
            }
            "required_parameters" => {
                let Some(list) = strings(&value) else {
                    return wrong(&key, line, "a list of strings");
                };
                rule.required_parameters = list.into_iter().map(|s| s.to_lowercase()).collect();
            }
            other => return err(line, unknown_or_unsupported(&path, other)),
        }
    }
    // As Vault: deny anywhere in the rule makes it deny and nothing else.
    rule.capabilities = if caps.contains(&Capability::Deny) {
        Capabilities::of(&[Capability::Deny])
    } else {
        Capabilities::of(&caps)
    };
    Ok(rule)
}

impl fmt::Display for PathRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "path \"{}\" {{ capabilities = [{}] }}",
            self.path,
            self.capabilities
                .names()
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests;
