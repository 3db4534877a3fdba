//! Why a role refused a request: one variant per broken rule, with the value, the rule and
//! the fix in its message, and a stable code for `--json`.

use std::{fmt, net::IpAddr, time::Duration};

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use super::syntax::{glob_match, is_localhost, is_under_localhost, HostnameProblem, NameParts};
use crate::key::KeyKind;

/// The `allow_*` switches that decide which names a role allows, as a refusal reports them
/// (`allow_any_name` is not among them: a role with it on refuses no name for its domain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NameRules {
    /// `allow_bare_domains`.
    pub allow_bare_domains: bool,
    /// `allow_subdomains`.
    pub allow_subdomains: bool,
    /// `allow_glob_domains`.
    pub allow_glob_domains: bool,
    /// `allow_localhost`.
    pub allow_localhost: bool,
}

impl NameRules {
    fn on(&self) -> Vec<&'static str> {
        [
            (self.allow_bare_domains, "allow_bare_domains"),
            (self.allow_subdomains, "allow_subdomains"),
            (self.allow_glob_domains, "allow_glob_domains"),
            (self.allow_localhost, "allow_localhost"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

/// Why a role refused a request. Each message names the value, the rule and the fix; each
/// variant has a stable [`code`](RoleRefusal::code) for `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRefusal {
    /// The role requires a common name and the request has none.
    CommonNameRequired {
        /// Role name.
        role: String,
    },
    /// A name (CN, DNS or email SAN) matches none of the role's name rules.
    NameNotAllowed {
        /// The name as checked (lowercased).
        name: String,
        /// Role name.
        role: String,
        /// The role's `allowed_domains`.
        allowed_domains: Vec<String>,
        /// Which `allow_*` switches are on.
        rules: NameRules,
    },
    /// A wildcard name under a role with `allow_wildcards` off.
    WildcardNotAllowed {
        /// The name.
        name: String,
        /// Role name.
        role: String,
    },
    /// A `*` that is not the whole leftmost label of a host name (`foo*.example.com`,
    /// `www.*.example.com`, or in an email address).
    InvalidWildcard {
        /// The name.
        name: String,
        /// Role name.
        role: String,
    },
    /// A name with an `@` that is not `local@domain`.
    InvalidEmail {
        /// The name.
        name: String,
        /// Role name.
        role: String,
    },
    /// A name that is not a valid host name, under `enforce_hostnames`.
    InvalidHostname {
        /// The name.
        name: String,
        /// Role name.
        role: String,
        /// What is wrong with it.
        problem: HostnameProblem,
    },
    /// An IP SAN (or an IP address as CN) under a role with `allow_ip_sans` off.
    IpSanNotAllowed {
        /// The address.
        ip: IpAddr,
        /// Role name.
        role: String,
    },
    /// An IP SAN that does not parse as an IP address.
    InvalidIpSan {
        /// The value as given.
        value: String,
        /// Role name.
        role: String,
    },
    /// A URI SAN that matches none of the role's `allowed_uri_sans` globs.
    UriSanNotAllowed {
        /// The URI.
        uri: String,
        /// Role name.
        role: String,
        /// The role's `allowed_uri_sans`.
        allowed_uri_sans: Vec<String>,
    },
    /// A URI SAN that is not a URI (`scheme:rest`).
    InvalidUriSan {
        /// The value as given.
        uri: String,
        /// Role name.
        role: String,
    },
    /// The CSR's key is not of the role's `key_type`.
    KeyTypeMismatch {
        /// The CSR's key.
        key: KeyKind,
        /// Role name.
        role: String,
        /// The role's `key_type`.
        key_type: String,
    },
    /// The CSR's key is of a kind mutual cannot sign for (DSA, unknown curves, …).
    UnsupportedKey {
        /// Dotted OID of the key's algorithm or curve.
        oid: String,
        /// Role name.
        role: String,
    },
    /// The CSR's key is smaller than the role (or the RSA floor of 2048 bits) allows.
    KeyTooWeak {
        /// The CSR's key.
        key: KeyKind,
        /// Role name.
        role: String,
        /// The role's `key_bits`.
        key_bits: u32,
        /// The minimum that applied.
        min_bits: u32,
    },
    /// The leaf would expire after its issuing CA and the role says `err`.
    OutlivesIssuer {
        /// Role name.
        role: String,
        /// The leaf's notAfter as requested.
        not_after: OffsetDateTime,
        /// The issuing CA.
        ca_name: String,
        /// The issuing CA's notAfter.
        ca_not_after: OffsetDateTime,
        /// The time of the check.
        now: OffsetDateTime,
    },
    /// The issuing CA has already expired.
    IssuerExpired {
        /// The issuing CA.
        ca_name: String,
        /// The issuing CA's notAfter.
        ca_not_after: OffsetDateTime,
        /// The time of the check.
        now: OffsetDateTime,
    },
    /// The TTL leaves no validity period (0) or reaches past what a certificate can hold.
    TtlInvalid {
        /// Role name.
        role: String,
        /// The TTL after defaults and caps.
        ttl: Duration,
    },
    /// The role's `not_before_duration` backdates notBefore out of range.
    NotBeforeInvalid {
        /// Role name.
        role: String,
        /// The role's `not_before_duration`.
        not_before_duration: Duration,
    },
}

impl RoleRefusal {
    /// A stable snake_case code for `--json` and API clients.
    pub fn code(&self) -> &'static str {
        match self {
            RoleRefusal::CommonNameRequired { .. } => "common_name_required",
            RoleRefusal::NameNotAllowed { .. } => "name_not_allowed",
            RoleRefusal::WildcardNotAllowed { .. } => "wildcard_not_allowed",
            RoleRefusal::InvalidWildcard { .. } => "invalid_wildcard",
            RoleRefusal::InvalidEmail { .. } => "invalid_email",
            RoleRefusal::InvalidHostname { .. } => "invalid_hostname",
            RoleRefusal::IpSanNotAllowed { .. } => "ip_sans_not_allowed",
            RoleRefusal::InvalidIpSan { .. } => "invalid_ip",
            RoleRefusal::UriSanNotAllowed { .. } => "uri_san_not_allowed",
            RoleRefusal::InvalidUriSan { .. } => "invalid_uri",
            RoleRefusal::KeyTypeMismatch { .. } => "key_type_mismatch",
            RoleRefusal::UnsupportedKey { .. } => "unsupported_key",
            RoleRefusal::KeyTooWeak { .. } => "key_too_weak",
            RoleRefusal::OutlivesIssuer { .. } => "outlives_issuer",
            RoleRefusal::IssuerExpired { .. } => "issuer_expired",
            RoleRefusal::TtlInvalid { .. } => "ttl_invalid",
            RoleRefusal::NotBeforeInvalid { .. } => "not_before_invalid",
        }
    }
}

impl std::error::Error for RoleRefusal {}

impl fmt::Display for RoleRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleRefusal::CommonNameRequired { role } => write!(
                f,
                "a common name is required by role \"{role}\" (require_cn: true); \
                 give one, or set require_cn=false on the role"
            ),
            RoleRefusal::NameNotAllowed {
                name,
                role,
                allowed_domains,
                rules,
            } => {
                write!(
                    f,
                    "\"{name}\" is not allowed by role \"{role}\" (allowed_domains: {})",
                    list(allowed_domains)
                )?;
                let on = rules.on();
                if on.is_empty() {
                    f.write_str(" with no allow_* rule on")?;
                } else {
                    write!(f, " with {} on", on.join(", "))?;
                }
                write!(f, "; {}", name_hint(name, allowed_domains, rules))
            }
            RoleRefusal::WildcardNotAllowed { name, role } => write!(
                f,
                "\"{name}\" is a wildcard, which role \"{role}\" does not allow \
                 (allow_wildcards: false); name each host instead, or allow wildcards with \
                 --allow-wildcards"
            ),
            RoleRefusal::InvalidWildcard { name, role } if name.contains('@') => write!(
                f,
                "\"{name}\" puts a wildcard in an email address, which role \"{role}\" refuses \
                 (wildcards are for host names only); name the address itself"
            ),
            RoleRefusal::InvalidWildcard { name, role } => write!(
                f,
                "\"{name}\" has a misplaced wildcard, which role \"{role}\" refuses \
                 ('*' may only be the whole leftmost label); ask for \"*.<domain>\" or \
                 name each host"
            ),
            RoleRefusal::InvalidEmail { name, role } => write!(
                f,
                "\"{name}\" is not a valid email address for role \"{role}\" (one '@' between \
                 a local part and a domain); write it as alice@example.com"
            ),
            RoleRefusal::InvalidHostname {
                name,
                role,
                problem,
            } => {
                let what = if name.contains('@') {
                    "does not have a valid domain"
                } else {
                    "is not a valid host name"
                };
                write!(
                    f,
                    "\"{name}\" {what}, which role \"{role}\" requires \
                     (enforce_hostnames: true): {problem}; fix the name, or set \
                     enforce_hostnames=false on the role"
                )
            }
            RoleRefusal::IpSanNotAllowed { ip, role } => write!(
                f,
                "IP SAN \"{ip}\" is not allowed by role \"{role}\" (allow_ip_sans: false); \
                 allow IP SANs with --allow-ip-sans"
            ),
            RoleRefusal::InvalidIpSan { value, role } => write!(
                f,
                "IP SAN \"{value}\" for role \"{role}\" is not an IP address; \
                 write it like 127.0.0.1 or ::1 (names go in --san)"
            ),
            RoleRefusal::UriSanNotAllowed {
                uri,
                role,
                allowed_uri_sans,
            } => write!(
                f,
                "URI SAN \"{uri}\" is not allowed by role \"{role}\" (allowed_uri_sans: {}); \
                 add a matching glob with --allowed-uri-sans",
                list(allowed_uri_sans)
            ),
            RoleRefusal::InvalidUriSan { uri, role } => write!(
                f,
                "URI SAN \"{uri}\" for role \"{role}\" is not a URI (scheme:rest); \
                 write it like spiffe://example.org/ns/default/sa/web"
            ),
            RoleRefusal::KeyTypeMismatch {
                key,
                role,
                key_type,
            } => write!(
                f,
                "the CSR's {key} key is not allowed by role \"{role}\" (key_type: {key_type}); \
                 send a CSR with an {key_type} key, or set --key-type any"
            ),
            RoleRefusal::UnsupportedKey { oid, role } => write!(
                f,
                "the CSR's key ({oid}) is not supported by role \"{role}\" (key_type: any); \
                 send a CSR with an RSA, EC or Ed25519 key"
            ),
            RoleRefusal::KeyTooWeak {
                key,
                role,
                key_bits,
                min_bits,
            } => write!(
                f,
                "the CSR's {key} key is too weak for role \"{role}\" (key_bits: {key_bits}, \
                 at least {min_bits} bits); send a CSR with a key of at least {min_bits} bits"
            ),
            RoleRefusal::OutlivesIssuer {
                role,
                not_after,
                ca_name,
                ca_not_after,
                now,
            } => write!(
                f,
                "the certificate would expire at {}, after its issuer \"{ca_name}\" \
                 (notAfter {}), which role \"{role}\" refuses (leaf_not_after_behavior: err); \
                 ask for --ttl {} or less, or set leaf_not_after_behavior=truncate",
                rfc3339(*not_after),
                rfc3339(*ca_not_after),
                crate::duration::format(fitting_ttl(*now, *ca_not_after)),
            ),
            RoleRefusal::IssuerExpired {
                ca_name,
                ca_not_after,
                now,
            } => write!(
                f,
                "issuer \"{ca_name}\" expired at {} (now {}), so nothing it signs can be \
                 valid; renew the CA or issue from another one",
                rfc3339(*ca_not_after),
                rfc3339(*now)
            ),
            RoleRefusal::TtlInvalid { role, ttl } if ttl.is_zero() => write!(
                f,
                "TTL \"0s\" for role \"{role}\" leaves no validity period (the role's max_ttl \
                 or the system's max TTL is 0); raise the limit"
            ),
            RoleRefusal::TtlInvalid { role, ttl } => write!(
                f,
                "TTL \"{}\" for role \"{role}\" ends past the year 9999; ask for a shorter --ttl",
                crate::duration::format(*ttl)
            ),
            RoleRefusal::NotBeforeInvalid {
                role,
                not_before_duration,
            } => write!(
                f,
                "not_before_duration \"{}\" of role \"{role}\" backdates notBefore out of \
                 range; set a shorter not_before_duration",
                crate::duration::format(*not_before_duration)
            ),
        }
    }
}

/// `a, b` or `none`.
fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

pub(super) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// The longest TTL from `now` that ends by `ca_not_after`, floored to a whole hour or minute
/// so that it prints as a flag value.
fn fitting_ttl(now: OffsetDateTime, ca_not_after: OffsetDateTime) -> Duration {
    let secs = u64::try_from((ca_not_after - now).whole_seconds()).unwrap_or(0);
    let floored = if secs >= 3600 {
        secs - secs % 3600
    } else if secs >= 60 {
        secs - secs % 60
    } else {
        secs
    };
    Duration::from_secs(floored)
}

/// The fix to suggest for a name no rule allows: the one switch that would allow it, if any.
fn name_hint(name: &str, allowed_domains: &[String], rules: &NameRules) -> &'static str {
    let Ok(parts) = NameParts::split(name) else {
        return "add its domain with --allowed-domains, or use --allow-any-name";
    };
    if parts.host.parse::<IpAddr>().is_ok() {
        return "pass IP addresses as IP SANs (--ip), not as names";
    }
    if is_localhost(parts.reduced) && !parts.wildcard && !rules.allow_localhost {
        return "allow it with --allow-localhost";
    }
    if is_under_localhost(&parts) && !rules.allow_subdomains {
        return if rules.allow_localhost {
            "allow it with --allow-subdomains"
        } else {
            "allow it with --allow-localhost and --allow-subdomains"
        };
    }
    let domains: Vec<String> = allowed_domains
        .iter()
        .map(|d| d.trim().to_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    if !rules.allow_bare_domains && domains.iter().any(|d| parts.host == d) {
        return "allow it with --allow-bare-domains";
    }
    if !rules.allow_subdomains && domains.iter().any(|d| parts.is_under(d)) {
        return "allow it with --allow-subdomains";
    }
    if !rules.allow_glob_domains
        && domains
            .iter()
            .any(|d| d.contains('*') && glob_match(d, parts.host, true))
    {
        return "allow it with allow_glob_domains=true";
    }
    "add its domain with --allowed-domains, or use --allow-any-name"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Curve;
    use crate::role::testkit::{hours, strings, NOW};
    use time::macros::datetime;

    /// The message is the product: every variant's code and exact text.
    #[test]
    fn refusal_messages() {
        let role = || "service".to_string();
        let story_rules = NameRules {
            allow_bare_domains: true,
            allow_subdomains: true,
            allow_glob_domains: false,
            allow_localhost: true,
        };
        let name_not_allowed =
            |name: &str, domains: &[&str], rules: NameRules| RoleRefusal::NameNotAllowed {
                name: name.into(),
                role: role(),
                allowed_domains: strings(domains),
                rules,
            };
        let table: Vec<(RoleRefusal, &str, &str)> = vec![
            (
                RoleRefusal::CommonNameRequired { role: role() },
                "common_name_required",
                r#"a common name is required by role "service" (require_cn: true); give one, or set require_cn=false on the role"#,
            ),
            (
                name_not_allowed("evil.com", &["example.com"], story_rules),
                "name_not_allowed",
                r#""evil.com" is not allowed by role "service" (allowed_domains: example.com) with allow_bare_domains, allow_subdomains, allow_localhost on; add its domain with --allowed-domains, or use --allow-any-name"#,
            ),
            (
                name_not_allowed(
                    "example.com",
                    &["example.com", "example.org"],
                    NameRules {
                        allow_subdomains: true,
                        ..NameRules::default()
                    },
                ),
                "name_not_allowed",
                r#""example.com" is not allowed by role "service" (allowed_domains: example.com, example.org) with allow_subdomains on; allow it with --allow-bare-domains"#,
            ),
            (
                name_not_allowed("www.example.com", &["example.com"], NameRules::default()),
                "name_not_allowed",
                r#""www.example.com" is not allowed by role "service" (allowed_domains: example.com) with no allow_* rule on; allow it with --allow-subdomains"#,
            ),
            (
                name_not_allowed("localhost", &[], NameRules::default()),
                "name_not_allowed",
                r#""localhost" is not allowed by role "service" (allowed_domains: none) with no allow_* rule on; allow it with --allow-localhost"#,
            ),
            (
                name_not_allowed(
                    "api.localhost",
                    &[],
                    NameRules {
                        allow_localhost: true,
                        ..NameRules::default()
                    },
                ),
                "name_not_allowed",
                r#""api.localhost" is not allowed by role "service" (allowed_domains: none) with allow_localhost on; allow it with --allow-subdomains"#,
            ),
            (
                name_not_allowed(
                    "foo-bar.example.com",
                    &["foo-*.example.com"],
                    NameRules::default(),
                ),
                "name_not_allowed",
                r#""foo-bar.example.com" is not allowed by role "service" (allowed_domains: foo-*.example.com) with no allow_* rule on; allow it with allow_glob_domains=true"#,
            ),
            (
                name_not_allowed("10.0.0.1", &["example.com"], story_rules),
                "name_not_allowed",
                r#""10.0.0.1" is not allowed by role "service" (allowed_domains: example.com) with allow_bare_domains, allow_subdomains, allow_localhost on; pass IP addresses as IP SANs (--ip), not as names"#,
            ),
            (
                RoleRefusal::WildcardNotAllowed {
                    name: "*.example.com".into(),
                    role: role(),
                },
                "wildcard_not_allowed",
                r#""*.example.com" is a wildcard, which role "service" does not allow (allow_wildcards: false); name each host instead, or allow wildcards with --allow-wildcards"#,
            ),
            (
                RoleRefusal::InvalidWildcard {
                    name: "foo*.example.com".into(),
                    role: role(),
                },
                "invalid_wildcard",
                r#""foo*.example.com" has a misplaced wildcard, which role "service" refuses ('*' may only be the whole leftmost label); ask for "*.<domain>" or name each host"#,
            ),
            (
                RoleRefusal::InvalidWildcard {
                    name: "a@*.example.com".into(),
                    role: role(),
                },
                "invalid_wildcard",
                r#""a@*.example.com" puts a wildcard in an email address, which role "service" refuses (wildcards are for host names only); name the address itself"#,
            ),
            (
                RoleRefusal::InvalidEmail {
                    name: "a@b@example.com".into(),
                    role: role(),
                },
                "invalid_email",
                r#""a@b@example.com" is not a valid email address for role "service" (one '@' between a local part and a domain); write it as alice@example.com"#,
            ),
            (
                RoleRefusal::InvalidHostname {
                    name: "_srv.example.com".into(),
                    role: role(),
                    problem: HostnameProblem::BadCharacter { ch: '_' },
                },
                "invalid_hostname",
                r#""_srv.example.com" is not a valid host name, which role "service" requires (enforce_hostnames: true): '_' is not allowed (labels use a-z, 0-9 and '-'); fix the name, or set enforce_hostnames=false on the role"#,
            ),
            (
                RoleRefusal::InvalidHostname {
                    name: "a@bad_host.example.com".into(),
                    role: role(),
                    problem: HostnameProblem::BadCharacter { ch: '_' },
                },
                "invalid_hostname",
                r#""a@bad_host.example.com" does not have a valid domain, which role "service" requires (enforce_hostnames: true): '_' is not allowed (labels use a-z, 0-9 and '-'); fix the name, or set enforce_hostnames=false on the role"#,
            ),
            (
                RoleRefusal::IpSanNotAllowed {
                    ip: IpAddr::from([127, 0, 0, 1]),
                    role: role(),
                },
                "ip_sans_not_allowed",
                r#"IP SAN "127.0.0.1" is not allowed by role "service" (allow_ip_sans: false); allow IP SANs with --allow-ip-sans"#,
            ),
            (
                RoleRefusal::InvalidIpSan {
                    value: "300.1.1.1".into(),
                    role: role(),
                },
                "invalid_ip",
                r#"IP SAN "300.1.1.1" for role "service" is not an IP address; write it like 127.0.0.1 or ::1 (names go in --san)"#,
            ),
            (
                RoleRefusal::UriSanNotAllowed {
                    uri: "spiffe://evil.org/ns/default/sa/web".into(),
                    role: role(),
                    allowed_uri_sans: strings(&["spiffe://example.org/ns/*/sa/*"]),
                },
                "uri_san_not_allowed",
                r#"URI SAN "spiffe://evil.org/ns/default/sa/web" is not allowed by role "service" (allowed_uri_sans: spiffe://example.org/ns/*/sa/*); add a matching glob with --allowed-uri-sans"#,
            ),
            (
                RoleRefusal::UriSanNotAllowed {
                    uri: "spiffe://example.org/ns/default/sa/web".into(),
                    role: role(),
                    allowed_uri_sans: vec![],
                },
                "uri_san_not_allowed",
                r#"URI SAN "spiffe://example.org/ns/default/sa/web" is not allowed by role "service" (allowed_uri_sans: none); add a matching glob with --allowed-uri-sans"#,
            ),
            (
                RoleRefusal::InvalidUriSan {
                    uri: "not a uri".into(),
                    role: role(),
                },
                "invalid_uri",
                r#"URI SAN "not a uri" for role "service" is not a URI (scheme:rest); write it like spiffe://example.org/ns/default/sa/web"#,
            ),
            (
                RoleRefusal::KeyTypeMismatch {
                    key: KeyKind::Ec { curve: Curve::P256 },
                    role: role(),
                    key_type: "rsa".into(),
                },
                "key_type_mismatch",
                r#"the CSR's EC P-256 key is not allowed by role "service" (key_type: rsa); send a CSR with an rsa key, or set --key-type any"#,
            ),
            (
                RoleRefusal::UnsupportedKey {
                    oid: "1.2.840.10040.4.1".into(),
                    role: role(),
                },
                "unsupported_key",
                r#"the CSR's key (1.2.840.10040.4.1) is not supported by role "service" (key_type: any); send a CSR with an RSA, EC or Ed25519 key"#,
            ),
            (
                RoleRefusal::KeyTooWeak {
                    key: KeyKind::Rsa { bits: 1024 },
                    role: role(),
                    key_bits: 0,
                    min_bits: 2048,
                },
                "key_too_weak",
                r#"the CSR's RSA 1024 key is too weak for role "service" (key_bits: 0, at least 2048 bits); send a CSR with a key of at least 2048 bits"#,
            ),
            (
                RoleRefusal::OutlivesIssuer {
                    role: role(),
                    not_after: datetime!(2025-01-09 8:00 UTC),
                    ca_name: "root".into(),
                    ca_not_after: datetime!(2025-01-05 0:30 UTC),
                    now: NOW,
                },
                "outlives_issuer",
                r#"the certificate would expire at 2025-01-09T08:00:00Z, after its issuer "root" (notAfter 2025-01-05T00:30:00Z), which role "service" refuses (leaf_not_after_behavior: err); ask for --ttl 96h or less, or set leaf_not_after_behavior=truncate"#,
            ),
            (
                RoleRefusal::IssuerExpired {
                    ca_name: "root".into(),
                    ca_not_after: datetime!(2024-06-01 0:00 UTC),
                    now: NOW,
                },
                "issuer_expired",
                r#"issuer "root" expired at 2024-06-01T00:00:00Z (now 2025-01-01T00:00:00Z), so nothing it signs can be valid; renew the CA or issue from another one"#,
            ),
            (
                RoleRefusal::TtlInvalid {
                    role: role(),
                    ttl: Duration::ZERO,
                },
                "ttl_invalid",
                r#"TTL "0s" for role "service" leaves no validity period (the role's max_ttl or the system's max TTL is 0); raise the limit"#,
            ),
            (
                RoleRefusal::TtlInvalid {
                    role: role(),
                    ttl: hours(100_000_000),
                },
                "ttl_invalid",
                r#"TTL "100000000h" for role "service" ends past the year 9999; ask for a shorter --ttl"#,
            ),
            (
                RoleRefusal::NotBeforeInvalid {
                    role: role(),
                    not_before_duration: hours(100_000_000),
                },
                "not_before_invalid",
                r#"not_before_duration "100000000h" of role "service" backdates notBefore out of range; set a shorter not_before_duration"#,
            ),
        ];
        for (refusal, code, message) in &table {
            assert_eq!(refusal.code(), *code, "{refusal:?}");
            assert_eq!(refusal.to_string(), *message, "{refusal:?}");
            assert!(!message.contains('\n'));
        }
    }
}
