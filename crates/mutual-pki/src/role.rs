//! Roles: the rules that bound what a CA may issue, with Vault's semantics, and the pure
//! check of a request against them.

use std::{fmt, net::IpAddr, time::Duration};

use globset::GlobBuilder;
use serde::{Deserialize, Serialize};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::key::KeyKind;

/// What a role does when a leaf would outlive its issuing CA (Vault's
/// `leaf_not_after_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NotAfterBehavior {
    /// Refuse the request (Vault's default).
    #[default]
    Err,
    /// Cut the leaf's notAfter to the CA's.
    Truncate,
    /// Issue anyway (the chain will fail before the leaf does).
    Permit,
}

/// A role with Vault's fields and defaults (`Role::default()` is what Vault creates for a
/// role written with no fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// The CA (issuer) that signs under this role.
    pub issuer: String,
    /// Domains names may be drawn from.
    pub allowed_domains: Vec<String>,
    /// A name equal to an allowed domain is allowed.
    pub allow_bare_domains: bool,
    /// Subdomains of allowed domains are allowed (any depth), and wildcards over them.
    pub allow_subdomains: bool,
    /// Entries of allowed_domains may hold globs (`*`).
    pub allow_glob_domains: bool,
    /// `localhost`, `localdomain` and names under them are allowed (Vault default: true).
    pub allow_localhost: bool,
    /// Any name at all is allowed.
    pub allow_any_name: bool,
    /// Wildcard names (`*.example.com`) may be requested (Vault default: true).
    pub allow_wildcards: bool,
    /// IP SANs may be requested (Vault default: true).
    pub allow_ip_sans: bool,
    /// Names must be valid host names (Vault default: true).
    pub enforce_hostnames: bool,
    /// Globs that URI SANs must match; empty means no URI SAN is allowed.
    pub allowed_uri_sans: Vec<String>,
    /// A common name is required (Vault default: true).
    pub require_cn: bool,
    /// Leaves get extendedKeyUsage serverAuth (Vault default: true).
    pub server_flag: bool,
    /// Leaves get extendedKeyUsage clientAuth (Vault default: true).
    pub client_flag: bool,
    /// `sign`: take the CN from the CSR when the request names none (Vault default: true).
    pub use_csr_common_name: bool,
    /// `sign`: take the SANs from the CSR (Vault default: true).
    pub use_csr_sans: bool,
    /// Key type for generated keys and the type a CSR must have: `rsa`, `ec`, `ed25519`, `any`.
    pub key_type: String,
    /// Key size for generated keys, and the minimum a CSR must have (0 = the type's default).
    pub key_bits: u32,
    /// Default TTL when the request names none (None: max_ttl, then the mount's).
    #[serde(with = "opt_secs")]
    pub ttl: Option<Duration>,
    /// Longest TTL; longer requests are capped with a warning (None: the mount's limit).
    #[serde(with = "opt_secs")]
    pub max_ttl: Option<Duration>,
    /// notBefore is backdated by this much (Vault default: 30 s).
    #[serde(with = "secs")]
    pub not_before_duration: Duration,
    /// What to do when a leaf would outlive its issuer.
    pub leaf_not_after_behavior: NotAfterBehavior,
    /// Subject OU values put into leaves.
    pub ou: Vec<String>,
    /// Subject O values put into leaves.
    pub organization: Vec<String>,
    /// Do not record issued certificates (Vault's `no_store`).
    pub no_store: bool,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            name: String::new(),
            issuer: "root".into(),
            allowed_domains: vec![],
            allow_bare_domains: false,
            allow_subdomains: false,
            allow_glob_domains: false,
            allow_localhost: true,
            allow_any_name: false,
            allow_wildcards: true,
            allow_ip_sans: true,
            enforce_hostnames: true,
            allowed_uri_sans: vec![],
            require_cn: true,
            server_flag: true,
            client_flag: true,
            use_csr_common_name: true,
            use_csr_sans: true,
            key_type: "rsa".into(),
            key_bits: 0,
            ttl: None,
            max_ttl: None,
            not_before_duration: Duration::from_secs(30),
            leaf_not_after_behavior: NotAfterBehavior::Err,
            ou: vec![],
            organization: vec![],
            no_store: false,
        }
    }
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_secs()),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// Where the key of a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKey {
    /// mutual generates it (`issue`): the role's key type applies.
    Generated,
    /// The caller holds it and sent a CSR (`sign`): this is the CSR's public key.
    Csr(KeyKind),
}

/// A request to issue a leaf, as a caller asks for it (CLI flags or Vault API fields),
/// before any rule is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    /// Requested common name (may be empty when the role does not require one).
    pub common_name: String,
    /// Requested DNS (or email) SANs, Vault's `alt_names`.
    pub alt_names: Vec<String>,
    /// Requested IP SANs as strings, Vault's `ip_sans` (parsed by the check).
    pub ip_sans: Vec<String>,
    /// Requested URI SANs, Vault's `uri_sans`.
    pub uri_sans: Vec<String>,
    /// Requested TTL.
    pub ttl: Option<Duration>,
    /// Do not copy the CN into the DNS SANs.
    pub exclude_cn_from_sans: bool,
    /// The key.
    pub key: RequestKey,
}

impl Default for IssueRequest {
    fn default() -> Self {
        IssueRequest {
            common_name: String::new(),
            alt_names: vec![],
            ip_sans: vec![],
            uri_sans: vec![],
            ttl: None,
            exclude_cn_from_sans: false,
            key: RequestKey::Generated,
        }
    }
}

/// What the check needs to know besides the role and the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckContext {
    /// The current time.
    pub now: OffsetDateTime,
    /// Name of the issuing CA (for messages).
    pub ca_name: String,
    /// notAfter of the issuing CA.
    pub ca_not_after: OffsetDateTime,
    /// The mount's (or store's) max lease TTL, the last bound when the role has no max_ttl.
    pub system_max_ttl: Duration,
}

/// A request that passed every rule of its role: exactly what goes into the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Subject common name (may be empty).
    pub common_name: String,
    /// DNS SANs (the CN first when it is a host name and not excluded), lowercased, deduplicated.
    pub dns_sans: Vec<String>,
    /// Email SANs.
    pub email_sans: Vec<String>,
    /// IP SANs.
    pub ip_sans: Vec<IpAddr>,
    /// URI SANs.
    pub uri_sans: Vec<String>,
    /// notBefore (now minus the role's backdating).
    pub not_before: OffsetDateTime,
    /// notAfter.
    pub not_after: OffsetDateTime,
    /// extendedKeyUsage serverAuth.
    pub server: bool,
    /// extendedKeyUsage clientAuth.
    pub client: bool,
    /// Subject OU values.
    pub ou: Vec<String>,
    /// Subject O values.
    pub organization: Vec<String>,
    /// Things the caller should know that did not stop issuance (a TTL capped to max_ttl, …).
    pub warnings: Vec<String>,
}

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

/// What makes a name an invalid host name (under `enforce_hostnames`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostnameProblem {
    /// Nothing is left to check.
    Empty,
    /// The name ends with a dot (`www.example.com.`).
    TrailingDot,
    /// A label is empty (`www..example.com`, `.example.com`).
    EmptyLabel,
    /// A label is longer than 63 characters.
    LabelTooLong {
        /// The label.
        label: String,
    },
    /// The name is longer than 253 characters.
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// A character outside `a-z`, `0-9` and `-`.
    BadCharacter {
        /// The character.
        ch: char,
    },
    /// A label starts or ends with `-`.
    HyphenAtEdge {
        /// The label.
        label: String,
    },
}

impl fmt::Display for HostnameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostnameProblem::Empty => f.write_str("it is empty"),
            HostnameProblem::TrailingDot => f.write_str("it ends with '.' (drop the trailing dot)"),
            HostnameProblem::EmptyLabel => {
                f.write_str("it has an empty label (a leading '.' or \"..\")")
            }
            HostnameProblem::LabelTooLong { label } => write!(
                f,
                "label \"{label}\" is {} characters, over the limit of 63",
                label.chars().count()
            ),
            HostnameProblem::TooLong { len } => {
                write!(f, "it is {len} characters, over the limit of 253")
            }
            HostnameProblem::BadCharacter { ch } if ch.is_ascii() => write!(
                f,
                "{ch:?} is not allowed (labels use a-z, 0-9 and '-')"
            ),
            HostnameProblem::BadCharacter { ch } => write!(
                f,
                "{ch:?} is not allowed (labels use a-z, 0-9 and '-'; write international names in their xn-- form)"
            ),
            HostnameProblem::HyphenAtEdge { label } => {
                write!(f, "label \"{label}\" starts or ends with '-'")
            }
        }
    }
}

/// Why a role refused a request. Each message names the value, the rule and the fix; each
/// variant has a stable [`code`](Refusal::code) for `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
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

impl Refusal {
    /// A stable snake_case code for `--json` and API clients.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::CommonNameRequired { .. } => "common_name_required",
            Refusal::NameNotAllowed { .. } => "name_not_allowed",
            Refusal::WildcardNotAllowed { .. } => "wildcard_not_allowed",
            Refusal::InvalidWildcard { .. } => "invalid_wildcard",
            Refusal::InvalidEmail { .. } => "invalid_email",
            Refusal::InvalidHostname { .. } => "invalid_hostname",
            Refusal::IpSanNotAllowed { .. } => "ip_sans_not_allowed",
            Refusal::InvalidIpSan { .. } => "invalid_ip",
            Refusal::UriSanNotAllowed { .. } => "uri_san_not_allowed",
            Refusal::InvalidUriSan { .. } => "invalid_uri",
            Refusal::KeyTypeMismatch { .. } => "key_type_mismatch",
            Refusal::UnsupportedKey { .. } => "unsupported_key",
            Refusal::KeyTooWeak { .. } => "key_too_weak",
            Refusal::OutlivesIssuer { .. } => "outlives_issuer",
            Refusal::IssuerExpired { .. } => "issuer_expired",
            Refusal::TtlInvalid { .. } => "ttl_invalid",
            Refusal::NotBeforeInvalid { .. } => "not_before_invalid",
        }
    }
}

impl std::error::Error for Refusal {}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::CommonNameRequired { role } => write!(
                f,
                "a common name is required by role \"{role}\" (require_cn: true); \
                 give one, or set require_cn=false on the role"
            ),
            Refusal::NameNotAllowed {
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
            Refusal::WildcardNotAllowed { name, role } => write!(
                f,
                "\"{name}\" is a wildcard, which role \"{role}\" does not allow \
                 (allow_wildcards: false); name each host instead, or allow wildcards with \
                 --allow-wildcards"
            ),
            Refusal::InvalidWildcard { name, role } if name.contains('@') => write!(
                f,
                "\"{name}\" puts a wildcard in an email address, which role \"{role}\" refuses \
                 (wildcards are for host names only); name the address itself"
            ),
            Refusal::InvalidWildcard { name, role } => write!(
                f,
                "\"{name}\" has a misplaced wildcard, which role \"{role}\" refuses \
                 ('*' may only be the whole leftmost label); ask for \"*.<domain>\" or \
                 name each host"
            ),
            Refusal::InvalidEmail { name, role } => write!(
                f,
                "\"{name}\" is not a valid email address for role \"{role}\" (one '@' between \
                 a local part and a domain); write it as alice@example.com"
            ),
            Refusal::InvalidHostname {
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
            Refusal::IpSanNotAllowed { ip, role } => write!(
                f,
                "IP SAN \"{ip}\" is not allowed by role \"{role}\" (allow_ip_sans: false); \
                 allow IP SANs with --allow-ip-sans"
            ),
            Refusal::InvalidIpSan { value, role } => write!(
                f,
                "IP SAN \"{value}\" for role \"{role}\" is not an IP address; \
                 write it like 127.0.0.1 or ::1 (names go in --san)"
            ),
            Refusal::UriSanNotAllowed {
                uri,
                role,
                allowed_uri_sans,
            } => write!(
                f,
                "URI SAN \"{uri}\" is not allowed by role \"{role}\" (allowed_uri_sans: {}); \
                 add a matching glob with --allowed-uri-sans",
                list(allowed_uri_sans)
            ),
            Refusal::InvalidUriSan { uri, role } => write!(
                f,
                "URI SAN \"{uri}\" for role \"{role}\" is not a URI (scheme:rest); \
                 write it like spiffe://example.org/ns/default/sa/web"
            ),
            Refusal::KeyTypeMismatch {
                key,
                role,
                key_type,
            } => write!(
                f,
                "the CSR's {key} key is not allowed by role \"{role}\" (key_type: {key_type}); \
                 send a CSR with an {key_type} key, or set --key-type any"
            ),
            Refusal::UnsupportedKey { oid, role } => write!(
                f,
                "the CSR's key ({oid}) is not supported by role \"{role}\" (key_type: any); \
                 send a CSR with an RSA, EC or Ed25519 key"
            ),
            Refusal::KeyTooWeak {
                key,
                role,
                key_bits,
                min_bits,
            } => write!(
                f,
                "the CSR's {key} key is too weak for role \"{role}\" (key_bits: {key_bits}, \
                 at least {min_bits} bits); send a CSR with a key of at least {min_bits} bits"
            ),
            Refusal::OutlivesIssuer {
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
            Refusal::IssuerExpired {
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
            Refusal::TtlInvalid { role, ttl } if ttl.is_zero() => write!(
                f,
                "TTL \"0s\" for role \"{role}\" leaves no validity period (the role's max_ttl \
                 or the system's max TTL is 0); raise the limit"
            ),
            Refusal::TtlInvalid { role, ttl } => write!(
                f,
                "TTL \"{}\" for role \"{role}\" ends past the year 9999; ask for a shorter --ttl",
                crate::duration::format(*ttl)
            ),
            Refusal::NotBeforeInvalid {
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

fn rfc3339(t: OffsetDateTime) -> String {
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

/// A name split the way Vault's `validateNames` reads it.
struct NameParts<'a> {
    /// The domain part of an email, or the whole name.
    host: &'a str,
    /// `host` without a leading `*.`.
    reduced: &'a str,
    /// `host` holds a `*`.
    wildcard: bool,
    /// The name has an `@`.
    email: bool,
}

/// Why a name could not be split.
enum SplitError {
    Email,
}

impl<'a> NameParts<'a> {
    fn split(name: &'a str) -> Result<Self, SplitError> {
        let (host, email) = match name.split_once('@') {
            Some((local, domain)) => {
                if local.is_empty() || domain.is_empty() || domain.contains('@') {
                    return Err(SplitError::Email);
                }
                (domain, true)
            }
            None => (name, false),
        };
        let wildcard = host.contains('*');
        let reduced = host.strip_prefix("*.").unwrap_or(host);
        Ok(NameParts {
            host,
            reduced,
            wildcard,
            email,
        })
    }

    /// `*` is exactly the whole leftmost label of a name with at least one more label.
    fn wildcard_well_placed(&self) -> bool {
        self.host.starts_with("*.") && !self.reduced.is_empty() && !self.reduced.contains('*')
    }

    /// A proper subdomain of `domain`, or a wildcard directly over it.
    fn is_under(&self, domain: &str) -> bool {
        self.reduced
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
            || (self.wildcard && self.reduced == domain)
    }
}

fn is_localhost(name: &str) -> bool {
    name == "localhost" || name == "localdomain"
}

fn is_under_localhost(parts: &NameParts<'_>) -> bool {
    parts.reduced.ends_with(".localhost")
        || parts.reduced.ends_with(".localdomain")
        || (parts.wildcard && is_localhost(parts.reduced))
}

/// Checks host name syntax (RFC 1123 labels, as Vault's `hostnameRegex` with IDNA's length
/// limits), on a name already stripped of its wildcard label.
fn hostname_problem(name: &str) -> Option<HostnameProblem> {
    if name.is_empty() {
        return Some(HostnameProblem::Empty);
    }
    if name.ends_with('.') {
        return Some(HostnameProblem::TrailingDot);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some(HostnameProblem::EmptyLabel);
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Some(HostnameProblem::BadCharacter { ch });
        }
        if label.len() > 63 {
            return Some(HostnameProblem::LabelTooLong {
                label: label.to_string(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(HostnameProblem::HyphenAtEdge {
                label: label.to_string(),
            });
        }
    }
    None
}

/// Vault's glob (`github.com/ryanuber/go-glob`): `*` matches any run of characters, dots and
/// slashes included; every other character is literal.
fn glob_match(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let mut escaped = String::with_capacity(pattern.len() + 8);
    let mut previous_star = false;
    for c in pattern.chars() {
        if c == '*' {
            if !previous_star {
                escaped.push('*');
            }
            previous_star = true;
        } else {
            escaped.push_str(&globset::escape(c.encode_utf8(&mut [0; 4])));
            previous_star = false;
        }
    }
    GlobBuilder::new(&escaped)
        .literal_separator(false)
        .backslash_escape(false)
        .case_insensitive(case_insensitive)
        .build()
        .map(|glob| glob.compile_matcher().is_match(value))
        .unwrap_or(false)
}

/// `scheme:rest` with an RFC 3986 scheme and no whitespace.
fn looks_like_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn push_unique<T: PartialEq>(items: &mut Vec<T>, item: T) {
    if !items.contains(&item) {
        items.push(item);
    }
}

impl Role {
    /// Checks a request against this role's rules, with Vault's semantics, and returns exactly
    /// what goes into the certificate. The first broken rule wins, in this order: common name
    /// required, names (CN then alt names), IP SANs, URI SANs, key, TTL.
    ///
    /// ```
    /// use mutual_pki::role::{CheckContext, IssueRequest, Role};
    /// let role = Role {
    ///     name: "service".into(),
    ///     allowed_domains: vec!["example.com".into()],
    ///     allow_subdomains: true,
    ///     ..Role::default()
    /// };
    /// let ctx = CheckContext {
    ///     now: time::macros::datetime!(2025-01-01 0:00 UTC),
    ///     ca_name: "root".into(),
    ///     ca_not_after: time::macros::datetime!(2035-01-01 0:00 UTC),
    ///     system_max_ttl: std::time::Duration::from_secs(768 * 3600),
    /// };
    /// let ok = role.check(&IssueRequest { common_name: "www.example.com".into(), ..Default::default() }, &ctx);
    /// assert_eq!(ok.unwrap().dns_sans, ["www.example.com"]);
    /// let refused = role.check(&IssueRequest { common_name: "evil.com".into(), ..Default::default() }, &ctx);
    /// assert_eq!(refused.unwrap_err().code(), "name_not_allowed");
    /// ```
    pub fn check(&self, req: &IssueRequest, ctx: &CheckContext) -> Result<Checked, Refusal> {
        let common_name = req.common_name.to_lowercase();
        if common_name.is_empty() && self.require_cn {
            return Err(Refusal::CommonNameRequired {
                role: self.name.clone(),
            });
        }

        let mut dns_sans = Vec::new();
        let mut email_sans = Vec::new();
        let mut ip_sans = Vec::new();
        if !common_name.is_empty() {
            if let Ok(ip) = common_name.parse::<IpAddr>() {
                self.check_ip(ip)?;
                if !req.exclude_cn_from_sans {
                    ip_sans.push(ip);
                }
            } else {
                self.check_name(&common_name)?;
                if !req.exclude_cn_from_sans {
                    if common_name.contains('@') {
                        email_sans.push(common_name.clone());
                    } else if is_dns_name(&common_name) {
                        // Vault copies the CN only when it is a host name, whatever
                        // enforce_hostnames says.
                        dns_sans.push(common_name.clone());
                    }
                }
            }
        }
        for raw in &req.alt_names {
            let name = raw.trim().to_lowercase();
            if name.is_empty() || dns_sans.contains(&name) || email_sans.contains(&name) {
                continue;
            }
            self.check_name(&name)?;
            if name.contains('@') {
                email_sans.push(name);
            } else {
                dns_sans.push(name);
            }
        }

        for raw in &req.ip_sans {
            let value = raw.trim();
            if value.is_empty() {
                continue;
            }
            let ip = value.parse::<IpAddr>().map_err(|_| Refusal::InvalidIpSan {
                value: value.to_string(),
                role: self.name.clone(),
            })?;
            self.check_ip(ip)?;
            push_unique(&mut ip_sans, ip);
        }

        let mut uri_sans = Vec::new();
        for raw in &req.uri_sans {
            let uri = raw.trim();
            if uri.is_empty() {
                continue;
            }
            self.check_uri(uri)?;
            push_unique(&mut uri_sans, uri.to_string());
        }

        if let RequestKey::Csr(key) = &req.key {
            self.check_key(key)?;
        }

        let mut warnings = Vec::new();
        let (not_before, not_after) = self.validity(req, ctx, &mut warnings)?;

        Ok(Checked {
            common_name,
            dns_sans,
            email_sans,
            ip_sans,
            uri_sans,
            not_before,
            not_after,
            server: self.server_flag,
            client: self.client_flag,
            ou: self.ou.clone(),
            organization: self.organization.clone(),
            warnings,
        })
    }

    fn name_rules(&self) -> NameRules {
        NameRules {
            allow_bare_domains: self.allow_bare_domains,
            allow_subdomains: self.allow_subdomains,
            allow_glob_domains: self.allow_glob_domains,
            allow_localhost: self.allow_localhost,
        }
    }

    /// Vault's `validateNames` for one lowercased name (a host name or an email address).
    fn check_name(&self, name: &str) -> Result<(), Refusal> {
        let role = || self.name.clone();
        let parts = NameParts::split(name).map_err(|SplitError::Email| Refusal::InvalidEmail {
            name: name.to_string(),
            role: role(),
        })?;
        if parts.wildcard {
            // allow_wildcards=false wins even over allow_any_name, as in Vault.
            if !self.allow_wildcards {
                return Err(Refusal::WildcardNotAllowed {
                    name: name.to_string(),
                    role: role(),
                });
            }
            if parts.email || !parts.wildcard_well_placed() {
                return Err(Refusal::InvalidWildcard {
                    name: name.to_string(),
                    role: role(),
                });
            }
        }
        if self.enforce_hostnames {
            let problem = hostname_problem(parts.reduced).or_else(|| {
                let len = parts.host.chars().count();
                (len > 253).then_some(HostnameProblem::TooLong { len })
            });
            if let Some(problem) = problem {
                return Err(Refusal::InvalidHostname {
                    name: name.to_string(),
                    role: role(),
                    problem,
                });
            }
        }
        if self.allow_any_name || self.name_allowed(&parts) {
            return Ok(());
        }
        Err(Refusal::NameNotAllowed {
            name: name.to_string(),
            role: role(),
            allowed_domains: self
                .allowed_domains
                .iter()
                .filter(|d| !d.trim().is_empty())
                .cloned()
                .collect(),
            rules: self.name_rules(),
        })
    }

    fn name_allowed(&self, parts: &NameParts<'_>) -> bool {
        if self.allow_localhost {
            if is_localhost(parts.reduced) && !parts.wildcard {
                return true;
            }
            // Vault needs allow_subdomains for names under localhost too.
            if self.allow_subdomains && is_under_localhost(parts) {
                return true;
            }
        }
        self.allowed_domains
            .iter()
            .map(|d| d.trim().to_lowercase())
            .filter(|d| !d.is_empty())
            .any(|d| {
                (self.allow_bare_domains && parts.host == d)
                    || (self.allow_subdomains && parts.is_under(&d))
                    || (self.allow_glob_domains
                        && d.contains('*')
                        && glob_match(&d, parts.host, true))
            })
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.allow_ip_sans {
            Ok(())
        } else {
            Err(Refusal::IpSanNotAllowed {
                ip,
                role: self.name.clone(),
            })
        }
    }

    fn check_uri(&self, uri: &str) -> Result<(), Refusal> {
        if !looks_like_uri(uri) {
            return Err(Refusal::InvalidUriSan {
                uri: uri.to_string(),
                role: self.name.clone(),
            });
        }
        let allowed = self
            .allowed_uri_sans
            .iter()
            .map(|g| g.trim())
            .filter(|g| !g.is_empty())
            .any(|g| glob_match(g, uri, false));
        if allowed {
            Ok(())
        } else {
            Err(Refusal::UriSanNotAllowed {
                uri: uri.to_string(),
                role: self.name.clone(),
                allowed_uri_sans: self.allowed_uri_sans.clone(),
            })
        }
    }

    fn check_key(&self, key: &KeyKind) -> Result<(), Refusal> {
        let key_type = self.key_type.trim().to_lowercase();
        if key_type == "any" {
            if let KeyKind::Other { oid } = key {
                return Err(Refusal::UnsupportedKey {
                    oid: oid.clone(),
                    role: self.name.clone(),
                });
            }
        } else if key.kind() != key_type {
            return Err(Refusal::KeyTypeMismatch {
                key: key.clone(),
                role: self.name.clone(),
                key_type: self.key_type.clone(),
            });
        }
        // key_bits speaks of the role's own key type; under "any" only the RSA floor applies.
        let role_bits = if key.kind() == key_type {
            self.key_bits
        } else {
            0
        };
        let min_bits = match key {
            KeyKind::Rsa { .. } => role_bits.max(2048),
            KeyKind::Ec { .. } => role_bits,
            KeyKind::Ed25519 | KeyKind::Other { .. } => 0,
        };
        if key.bits() < min_bits {
            return Err(Refusal::KeyTooWeak {
                key: key.clone(),
                role: self.name.clone(),
                key_bits: self.key_bits,
                min_bits,
            });
        }
        Ok(())
    }

    /// notBefore and notAfter: the TTL from the request, the role or the system, capped to
    /// the max TTL, then held to the issuer's notAfter per `leaf_not_after_behavior`.
    fn validity(
        &self,
        req: &IssueRequest,
        ctx: &CheckContext,
        warnings: &mut Vec<String>,
    ) -> Result<(OffsetDateTime, OffsetDateTime), Refusal> {
        let set = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        let system = ctx.system_max_ttl;
        let (max, max_name) = match set(self.max_ttl) {
            Some(max) if max <= system => (max, "the role's max_ttl"),
            _ => (system, "the system's max TTL"),
        };
        let mut ttl = set(req.ttl)
            .or(set(self.ttl))
            .or(set(self.max_ttl))
            .unwrap_or(system);
        if ttl > max {
            warnings.push(format!(
                "TTL \"{}\" is longer than {max_name} \"{}\"; capped to {}",
                crate::duration::format(ttl),
                crate::duration::format(max),
                crate::duration::format(max),
            ));
            ttl = max;
        }
        let ttl_invalid = || Refusal::TtlInvalid {
            role: self.name.clone(),
            ttl,
        };
        if ttl.is_zero() {
            return Err(ttl_invalid());
        }
        let not_after = time::Duration::try_from(ttl)
            .ok()
            .and_then(|d| ctx.now.checked_add(d))
            .ok_or_else(ttl_invalid)?;
        let not_before = time::Duration::try_from(self.not_before_duration)
            .ok()
            .and_then(|d| ctx.now.checked_sub(d))
            .ok_or_else(|| Refusal::NotBeforeInvalid {
                role: self.name.clone(),
                not_before_duration: self.not_before_duration,
            })?;

        if not_after <= ctx.ca_not_after {
            return Ok((not_before, not_after));
        }
        let expired = || Refusal::IssuerExpired {
            ca_name: ctx.ca_name.clone(),
            ca_not_after: ctx.ca_not_after,
            now: ctx.now,
        };
        match self.leaf_not_after_behavior {
            NotAfterBehavior::Err if ctx.ca_not_after <= ctx.now => Err(expired()),
            NotAfterBehavior::Err => Err(Refusal::OutlivesIssuer {
                role: self.name.clone(),
                not_after,
                ca_name: ctx.ca_name.clone(),
                ca_not_after: ctx.ca_not_after,
                now: ctx.now,
            }),
            NotAfterBehavior::Truncate if ctx.ca_not_after <= ctx.now => Err(expired()),
            NotAfterBehavior::Truncate => {
                warnings.push(format!(
                    "notAfter {} cut to {}, the notAfter of issuer \"{}\" \
                     (leaf_not_after_behavior: truncate)",
                    rfc3339(not_after),
                    rfc3339(ctx.ca_not_after),
                    ctx.ca_name
                ));
                Ok((not_before, ctx.ca_not_after))
            }
            NotAfterBehavior::Permit => {
                warnings.push(format!(
                    "notAfter {} is after {}, the notAfter of issuer \"{}\"; the chain will \
                     expire first (leaf_not_after_behavior: permit)",
                    rfc3339(not_after),
                    rfc3339(ctx.ca_not_after),
                    ctx.ca_name
                ));
                Ok((not_before, not_after))
            }
        }
    }
}

/// A host name, or a wildcard over one (Vault's `hostnameRegex`, without its trailing dot).
fn is_dns_name(name: &str) -> bool {
    let Ok(parts) = NameParts::split(name) else {
        return false;
    };
    !parts.email
        && (!parts.wildcard || parts.wildcard_well_placed())
        && hostname_problem(parts.reduced).is_none()
        && parts.host.len() <= 253
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::Curve;
    use time::macros::datetime;

    const HOUR: u64 = 3600;

    fn hours(h: u64) -> Duration {
        Duration::from_secs(h * HOUR)
    }

    /// The story's `service` role: example.com, bare domains, subdomains, localhost and IP
    /// SANs, host names enforced, max_ttl 720h; everything else Vault's default.
    fn service() -> Role {
        Role {
            name: "service".into(),
            allowed_domains: vec!["example.com".into()],
            allow_bare_domains: true,
            allow_subdomains: true,
            allow_localhost: true,
            allow_ip_sans: true,
            enforce_hostnames: true,
            max_ttl: Some(hours(720)),
            ..Role::default()
        }
    }

    const NOW: OffsetDateTime = datetime!(2025-01-01 0:00 UTC);

    fn context() -> CheckContext {
        CheckContext {
            now: NOW,
            ca_name: "root".into(),
            ca_not_after: datetime!(2035-01-01 0:00 UTC),
            // Vault's default mount max lease TTL: 32 days.
            system_max_ttl: hours(768),
        }
    }

    #[derive(Default)]
    struct Expect {
        cn: Option<&'static str>,
        dns: Option<&'static [&'static str]>,
        email: Option<&'static [&'static str]>,
        ip: Option<&'static [&'static str]>,
        uri: Option<&'static [&'static str]>,
        not_before: Option<OffsetDateTime>,
        not_after: Option<OffsetDateTime>,
        warnings: Option<&'static [&'static str]>,
    }

    enum Want {
        Ok(Expect),
        Refused(&'static str),
    }

    struct Case {
        label: &'static str,
        role: Role,
        req: IssueRequest,
        ctx: CheckContext,
        want: Want,
    }

    fn case(label: &'static str) -> Case {
        Case {
            label,
            role: service(),
            req: IssueRequest {
                common_name: "www.example.com".into(),
                ..IssueRequest::default()
            },
            ctx: context(),
            want: Want::Ok(Expect::default()),
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    impl Case {
        fn role(mut self, edit: impl FnOnce(&mut Role)) -> Self {
            edit(&mut self.role);
            self
        }
        fn domains(self, domains: &[&str]) -> Self {
            let domains = strings(domains);
            self.role(|r| r.allowed_domains = domains)
        }
        fn cn(mut self, cn: &str) -> Self {
            self.req.common_name = cn.into();
            self
        }
        fn alt(mut self, names: &[&str]) -> Self {
            self.req.alt_names = strings(names);
            self
        }
        fn ips(mut self, ips: &[&str]) -> Self {
            self.req.ip_sans = strings(ips);
            self
        }
        fn uris(mut self, uris: &[&str]) -> Self {
            self.req.uri_sans = strings(uris);
            self
        }
        fn exclude_cn(mut self) -> Self {
            self.req.exclude_cn_from_sans = true;
            self
        }
        fn ttl(mut self, h: u64) -> Self {
            self.req.ttl = Some(hours(h));
            self
        }
        fn csr(mut self, key: KeyKind) -> Self {
            self.req.key = RequestKey::Csr(key);
            self
        }
        fn ca_not_after(mut self, at: OffsetDateTime) -> Self {
            self.ctx.ca_not_after = at;
            self
        }
        fn system_max(mut self, h: u64) -> Self {
            self.ctx.system_max_ttl = hours(h);
            self
        }
        fn expect(mut self, edit: impl FnOnce(&mut Expect)) -> Self {
            if let Want::Ok(expect) = &mut self.want {
                edit(expect);
            }
            self
        }
        fn dns(self, dns: &'static [&'static str]) -> Self {
            self.expect(|e| e.dns = Some(dns))
        }
        fn refused(mut self, code: &'static str) -> Self {
            self.want = Want::Refused(code);
            self
        }
    }

    fn rsa(bits: u32) -> KeyKind {
        KeyKind::Rsa { bits }
    }
    fn ec(curve: Curve) -> KeyKind {
        KeyKind::Ec { curve }
    }

    const LABEL_63: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn cases() -> Vec<Case> {
        let label_63 = format!("{LABEL_63}.example.com");
        let label_64 = format!("{LABEL_63}a.example.com");
        // 4 × 63-character labels + dots: 255 characters.
        let too_long = format!("{LABEL_63}.{LABEL_63}.{LABEL_63}.{LABEL_63}");
        let many = |r: &mut Role| {
            r.allow_bare_domains = false;
            r.allow_subdomains = false;
        };
        vec![
            // The story's certificates.
            case("story: server with localhost and 127.0.0.1")
                .alt(&["localhost"])
                .ips(&["127.0.0.1"])
                .expect(|e| {
                    e.cn = Some("www.example.com");
                    e.dns = Some(&["www.example.com", "localhost"]);
                    e.ip = Some(&["127.0.0.1"]);
                    e.email = Some(&[]);
                    e.uri = Some(&[]);
                }),
            case("story: client alice").cn("alice.example.com").dns(&["alice.example.com"]),
            // Bare domains.
            case("bare domain with allow_bare_domains").cn("example.com").dns(&["example.com"]),
            case("bare domain without allow_bare_domains")
                .role(|r| r.allow_bare_domains = false)
                .cn("example.com")
                .refused("name_not_allowed"),
            case("bare domain only: subdomain refused")
                .role(|r| r.allow_subdomains = false)
                .refused("name_not_allowed"),
            case("bare domain only: the domain itself allowed")
                .role(|r| r.allow_subdomains = false)
                .cn("example.com")
                .dns(&["example.com"]),
            // Subdomains.
            case("subdomain, one level").dns(&["www.example.com"]),
            case("subdomain, many levels").cn("a.b.c.example.com").dns(&["a.b.c.example.com"]),
            case("suffix without a dot is not a subdomain")
                .cn("evilexample.com")
                .refused("name_not_allowed"),
            case("allowed domain inside another name")
                .cn("example.com.evil.com")
                .refused("name_not_allowed"),
            case("other domain").cn("evil.com").refused("name_not_allowed"),
            case("no allowed_domains, no name")
                .domains(&[])
                .refused("name_not_allowed"),
            case("empty entry in allowed_domains is ignored")
                .domains(&["", "example.com"])
                .dns(&["www.example.com"]),
            // Wildcards.
            case("wildcard over an allowed domain with subdomains")
                .cn("*.example.com")
                .dns(&["*.example.com"]),
            case("wildcard over a subdomain")
                .cn("*.dev.example.com")
                .dns(&["*.dev.example.com"]),
            case("wildcard with allow_wildcards off")
                .role(|r| r.allow_wildcards = false)
                .cn("*.example.com")
                .refused("wildcard_not_allowed"),
            case("allow_wildcards off wins over allow_any_name")
                .role(|r| {
                    r.allow_wildcards = false;
                    r.allow_any_name = true;
                })
                .cn("*.evil.com")
                .refused("wildcard_not_allowed"),
            case("wildcard needs allow_subdomains, not bare")
                .role(|r| r.allow_subdomains = false)
                .cn("*.example.com")
                .refused("name_not_allowed"),
            case("partial-label wildcard")
                .cn("foo*.example.com")
                .refused("invalid_wildcard"),
            case("wildcard in a middle label")
                .cn("www.*.example.com")
                .refused("invalid_wildcard"),
            case("lone *").cn("*").refused("invalid_wildcard"),
            case("two wildcard labels")
                .cn("*.*.example.com")
                .refused("invalid_wildcard"),
            case("misplaced wildcard even without enforce_hostnames")
                .role(|r| {
                    r.enforce_hostnames = false;
                    r.allow_any_name = true;
                })
                .cn("a*b.example.com")
                .refused("invalid_wildcard"),
            // Glob domains.
            case("glob *.example.com")
                .role(many)
                .role(|r| r.allow_glob_domains = true)
                .domains(&["*.example.com"])
                .dns(&["www.example.com"]),
            case("glob * crosses dots")
                .role(many)
                .role(|r| r.allow_glob_domains = true)
                .domains(&["*.example.com"])
                .cn("a.b.example.com")
                .dns(&["a.b.example.com"]),
            case("glob *.example.com does not match the apex")
                .role(many)
                .role(|r| r.allow_glob_domains = true)
                .domains(&["*.example.com"])
                .cn("example.com")
                .refused("name_not_allowed"),
            case("glob foo-*.example.com matches foo-bar")
                .role(many)
                .role(|r| r.allow_glob_domains = true)
                .domains(&["foo-*.example.com"])
                .cn("foo-bar.example.com")
                .dns(&["foo-bar.example.com"]),
            case("glob foo-*.example.com refuses bar-foo")
                .role(many)
                .role(|r| r.allow_glob_domains = true)
                .domains(&["foo-*.example.com"])
                .cn("bar-foo.example.com")
                .refused("name_not_allowed"),
            case("glob pattern without allow_glob_domains")
                .role(many)
                .domains(&["foo-*.example.com"])
                .cn("foo-bar.example.com")
                .refused("name_not_allowed"),
            case("only * is a glob: ? is literal")
                .role(many)
                .role(|r| r.allow_glob_domains = true)
                .domains(&["web?.example.com"])
                .cn("web1.example.com")
                .refused("name_not_allowed"),
            // Localhost.
            case("localhost with allow_localhost").cn("localhost").dns(&["localhost"]),
            case("localdomain with allow_localhost").cn("localdomain").dns(&["localdomain"]),
            case("localhost without allow_localhost")
                .role(|r| r.allow_localhost = false)
                .cn("localhost")
                .refused("name_not_allowed"),
            case("name under localhost with allow_subdomains")
                .cn("api.localhost")
                .dns(&["api.localhost"]),
            case("name under localhost needs allow_subdomains (Vault)")
                .role(|r| r.allow_subdomains = false)
                .cn("api.localhost")
                .refused("name_not_allowed"),
            case("wildcard over localhost")
                .cn("*.localhost")
                .dns(&["*.localhost"]),
            // Any name.
            case("allow_any_name").role(|r| r.allow_any_name = true).cn("evil.com").dns(&["evil.com"]),
            case("allow_any_name still enforces host names")
                .role(|r| r.allow_any_name = true)
                .cn("bad_name.com")
                .refused("invalid_hostname"),
            // Host name syntax.
            case("enforce_hostnames off lets any CN through, not into the SANs")
                .role(|r| {
                    r.enforce_hostnames = false;
                    r.allow_any_name = true;
                })
                .cn("not a host!")
                .expect(|e| {
                    e.cn = Some("not a host!");
                    e.dns = Some(&[]);
                }),
            case("enforce_hostnames on refuses it")
                .role(|r| r.allow_any_name = true)
                .cn("not a host!")
                .refused("invalid_hostname"),
            case("underscore refused")
                .cn("_srv.example.com")
                .refused("invalid_hostname"),
            case("underscore in an alt name without enforce_hostnames")
                .role(|r| r.enforce_hostnames = false)
                .alt(&["_srv.example.com"])
                .dns(&["www.example.com", "_srv.example.com"]),
            case("trailing dot")
                .cn("www.example.com.")
                .refused("invalid_hostname"),
            case("empty label").cn("www..example.com").refused("invalid_hostname"),
            case("leading hyphen").cn("-www.example.com").refused("invalid_hostname"),
            case("trailing hyphen in a label")
                .cn("www-.example.com")
                .refused("invalid_hostname"),
            case("63-character label").alt(&[&label_63]).expect(|e| e.cn = Some("www.example.com")),
            case("64-character label").cn(&label_64).refused("invalid_hostname"),
            case("name over 253 characters")
                .role(|r| r.allow_any_name = true)
                .cn(&too_long)
                .refused("invalid_hostname"),
            case("unicode name").cn("bücher.example.com").refused("invalid_hostname"),
            case("punycode name")
                .cn("xn--bcher-kva.example.com")
                .dns(&["xn--bcher-kva.example.com"]),
            // Case.
            case("names compared and written lowercase")
                .cn("WWW.Example.COM")
                .alt(&["API.EXAMPLE.com"])
                .expect(|e| {
                    e.cn = Some("www.example.com");
                    e.dns = Some(&["www.example.com", "api.example.com"]);
                }),
            case("allowed_domains compared case-insensitively")
                .domains(&["Example.COM"])
                .dns(&["www.example.com"]),
            // Alt names.
            case("alt names deduplicated, CN first")
                .alt(&["api.example.com", "WWW.example.com", "API.example.com"])
                .dns(&["www.example.com", "api.example.com"]),
            case("one refused alt name refuses the request")
                .alt(&["api.example.com", "evil.com"])
                .refused("name_not_allowed"),
            case("empty alt names ignored, others trimmed")
                .alt(&["", " api.example.com "])
                .dns(&["www.example.com", "api.example.com"]),
            case("an IP address as an alt name is a name (Vault)")
                .alt(&["10.0.0.1"])
                .refused("name_not_allowed"),
            // IP SANs.
            case("IP SANs v4 and v6")
                .ips(&["10.0.0.1", "::1"])
                .expect(|e| e.ip = Some(&["10.0.0.1", "::1"])),
            case("IP SANs without allow_ip_sans")
                .role(|r| r.allow_ip_sans = false)
                .ips(&["10.0.0.1"])
                .refused("ip_sans_not_allowed"),
            case("IP SAN out of range").ips(&["300.1.1.1"]).refused("invalid_ip"),
            case("IP SAN that is a name").ips(&["localhost"]).refused("invalid_ip"),
            case("IP address as CN becomes an IP SAN")
                .cn("127.0.0.1")
                .ips(&["127.0.0.1"])
                .expect(|e| {
                    e.cn = Some("127.0.0.1");
                    e.dns = Some(&[]);
                    e.ip = Some(&["127.0.0.1"]);
                }),
            case("IPv6 CN").cn("::1").expect(|e| e.ip = Some(&["::1"])),
            case("IP address as CN without allow_ip_sans")
                .role(|r| r.allow_ip_sans = false)
                .cn("127.0.0.1")
                .refused("ip_sans_not_allowed"),
            // URI SANs.
            case("SPIFFE ID matching the glob")
                .role(|r| r.allowed_uri_sans = strings(&["spiffe://example.org/ns/*/sa/*"]))
                .uris(&["spiffe://example.org/ns/default/sa/web"])
                .expect(|e| e.uri = Some(&["spiffe://example.org/ns/default/sa/web"])),
            case("SPIFFE glob * crosses '/'")
                .role(|r| r.allowed_uri_sans = strings(&["spiffe://example.org/ns/*/sa/*"]))
                .uris(&["spiffe://example.org/ns/a/b/sa/web"])
                .expect(|e| e.uri = Some(&["spiffe://example.org/ns/a/b/sa/web"])),
            case("SPIFFE ID of another trust domain")
                .role(|r| r.allowed_uri_sans = strings(&["spiffe://example.org/ns/*/sa/*"]))
                .uris(&["spiffe://evil.org/ns/default/sa/web"])
                .refused("uri_san_not_allowed"),
            case("URI globs are case-sensitive")
                .role(|r| r.allowed_uri_sans = strings(&["spiffe://example.org/ns/*/sa/*"]))
                .uris(&["spiffe://example.org/NS/default/sa/web"])
                .refused("uri_san_not_allowed"),
            case("no allowed_uri_sans: no URI SAN")
                .uris(&["spiffe://example.org/ns/default/sa/web"])
                .refused("uri_san_not_allowed"),
            case("not a URI")
                .role(|r| r.allowed_uri_sans = strings(&["*"]))
                .uris(&["not a uri"])
                .refused("invalid_uri"),
            // require_cn.
            case("require_cn and no CN").cn("").refused("common_name_required"),
            case("require_cn off, no CN, alt names only")
                .role(|r| r.require_cn = false)
                .cn("")
                .alt(&["api.example.com"])
                .expect(|e| {
                    e.cn = Some("");
                    e.dns = Some(&["api.example.com"]);
                }),
            case("require_cn off, nothing at all")
                .role(|r| r.require_cn = false)
                .cn("")
                .dns(&[]),
            // exclude_cn_from_sans.
            case("exclude_cn_from_sans")
                .alt(&["api.example.com"])
                .exclude_cn()
                .expect(|e| {
                    e.cn = Some("www.example.com");
                    e.dns = Some(&["api.example.com"]);
                }),
            case("exclude_cn_from_sans still checks the CN")
                .cn("evil.com")
                .exclude_cn()
                .refused("name_not_allowed"),
            case("excluded IP CN is not an IP SAN")
                .cn("10.0.0.1")
                .exclude_cn()
                .expect(|e| e.ip = Some(&[])),
            // Emails.
            case("email alt name on the bare domain")
                .alt(&["Alice@Example.com"])
                .expect(|e| {
                    e.email = Some(&["alice@example.com"]);
                    e.dns = Some(&["www.example.com"]);
                }),
            case("email on the bare domain needs allow_bare_domains")
                .role(|r| r.allow_bare_domains = false)
                .alt(&["alice@example.com"])
                .refused("name_not_allowed"),
            case("email on a subdomain")
                .alt(&["bob@mail.example.com"])
                .expect(|e| e.email = Some(&["bob@mail.example.com"])),
            case("email at another domain")
                .alt(&["eve@evil.com"])
                .refused("name_not_allowed"),
            case("email as CN goes to the email SANs")
                .cn("alice@example.com")
                .expect(|e| {
                    e.dns = Some(&[]);
                    e.email = Some(&["alice@example.com"]);
                }),
            case("email with two @").alt(&["a@b@example.com"]).refused("invalid_email"),
            case("email with an empty local part").alt(&["@example.com"]).refused("invalid_email"),
            case("email with a wildcard domain")
                .alt(&["a@*.example.com"])
                .refused("invalid_wildcard"),
            case("email with an invalid domain")
                .alt(&["a@bad_host.example.com"])
                .refused("invalid_hostname"),
            // Keys.
            case("generated key: no key check")
                .role(|r| r.key_bits = 8192)
                .expect(|e| e.cn = Some("www.example.com")),
            case("CSR RSA 2048 under rsa").csr(rsa(2048)),
            case("CSR RSA 1024 refused").csr(rsa(1024)).refused("key_too_weak"),
            case("CSR RSA 2048 under key_bits 4096")
                .role(|r| r.key_bits = 4096)
                .csr(rsa(2048))
                .refused("key_too_weak"),
            case("CSR RSA 4096 under key_bits 4096")
                .role(|r| r.key_bits = 4096)
                .csr(rsa(4096)),
            case("CSR EC under rsa").csr(ec(Curve::P256)).refused("key_type_mismatch"),
            case("CSR Ed25519 under rsa").csr(KeyKind::Ed25519).refused("key_type_mismatch"),
            case("CSR EC P-256 under ec")
                .role(|r| r.key_type = "ec".into())
                .csr(ec(Curve::P256)),
            case("CSR EC P-256 under ec key_bits 384")
                .role(|r| {
                    r.key_type = "ec".into();
                    r.key_bits = 384;
                })
                .csr(ec(Curve::P256))
                .refused("key_too_weak"),
            case("CSR EC P-384 under ec key_bits 384")
                .role(|r| {
                    r.key_type = "ec".into();
                    r.key_bits = 384;
                })
                .csr(ec(Curve::P384)),
            case("CSR Ed25519 under any")
                .role(|r| r.key_type = "any".into())
                .csr(KeyKind::Ed25519),
            case("CSR EC under any")
                .role(|r| r.key_type = "any".into())
                .csr(ec(Curve::P521)),
            case("CSR RSA 1024 under any")
                .role(|r| r.key_type = "any".into())
                .csr(rsa(1024))
                .refused("key_too_weak"),
            case("CSR DSA under any")
                .role(|r| r.key_type = "any".into())
                .csr(KeyKind::Other {
                    oid: "1.2.840.10040.4.1".into(),
                })
                .refused("unsupported_key"),
            case("CSR DSA under rsa")
                .csr(KeyKind::Other {
                    oid: "1.2.840.10040.4.1".into(),
                })
                .refused("key_type_mismatch"),
            // TTL.
            case("TTL as requested")
                .ttl(48)
                .expect(|e| {
                    e.not_before = Some(datetime!(2024-12-31 23:59:30 UTC));
                    e.not_after = Some(datetime!(2025-01-03 0:00 UTC));
                    e.warnings = Some(&[]);
                }),
            case("TTL over max_ttl is capped with a warning")
                .ttl(800)
                .expect(|e| {
                    e.not_after = Some(NOW + time::Duration::hours(720));
                    e.warnings = Some(&[
                        "TTL \"800h\" is longer than the role's max_ttl \"720h\"; capped to 720h",
                    ]);
                }),
            case("TTL over the system max when max_ttl is higher")
                .role(|r| r.max_ttl = Some(hours(1000)))
                .ttl(900)
                .expect(|e| {
                    e.not_after = Some(NOW + time::Duration::hours(768));
                    e.warnings = Some(&[
                        "TTL \"900h\" is longer than the system's max TTL \"768h\"; capped to 768h",
                    ]);
                }),
            case("TTL defaults to the role's ttl")
                .role(|r| r.ttl = Some(hours(24)))
                .expect(|e| e.not_after = Some(datetime!(2025-01-02 0:00 UTC))),
            case("then to max_ttl")
                .expect(|e| e.not_after = Some(NOW + time::Duration::hours(720))),
            case("then to the system max")
                .role(|r| r.max_ttl = None)
                .expect(|e| e.not_after = Some(NOW + time::Duration::hours(768))),
            case("a requested TTL of 0 means the default")
                .role(|r| r.ttl = Some(hours(24)))
                .expect(|e| e.not_after = Some(datetime!(2025-01-02 0:00 UTC)))
                .ttl(0),
            case("system max of 0 leaves no validity")
                .role(|r| r.max_ttl = None)
                .system_max(0)
                .refused("ttl_invalid"),
            case("not_before_duration backdates notBefore")
                .role(|r| r.not_before_duration = Duration::from_secs(300))
                .expect(|e| e.not_before = Some(datetime!(2024-12-31 23:55 UTC))),
            case("outlives the issuer: err")
                .ca_not_after(datetime!(2025-01-05 0:00 UTC))
                .ttl(200)
                .refused("outlives_issuer"),
            case("outlives the issuer: truncate")
                .role(|r| r.leaf_not_after_behavior = NotAfterBehavior::Truncate)
                .ca_not_after(datetime!(2025-01-05 0:00 UTC))
                .ttl(200)
                .expect(|e| {
                    e.not_after = Some(datetime!(2025-01-05 0:00 UTC));
                    e.warnings = Some(&[
                        "notAfter 2025-01-09T08:00:00Z cut to 2025-01-05T00:00:00Z, the notAfter of issuer \"root\" (leaf_not_after_behavior: truncate)",
                    ]);
                }),
            case("outlives the issuer: permit")
                .role(|r| r.leaf_not_after_behavior = NotAfterBehavior::Permit)
                .ca_not_after(datetime!(2025-01-05 0:00 UTC))
                .ttl(200)
                .expect(|e| {
                    e.not_after = Some(datetime!(2025-01-09 8:00 UTC));
                    e.warnings = Some(&[
                        "notAfter 2025-01-09T08:00:00Z is after 2025-01-05T00:00:00Z, the notAfter of issuer \"root\"; the chain will expire first (leaf_not_after_behavior: permit)",
                    ]);
                }),
            case("ends exactly with the issuer")
                .ca_not_after(datetime!(2025-01-03 0:00 UTC))
                .ttl(48)
                .expect(|e| e.not_after = Some(datetime!(2025-01-03 0:00 UTC))),
            case("issuer already expired")
                .role(|r| r.leaf_not_after_behavior = NotAfterBehavior::Truncate)
                .ca_not_after(datetime!(2024-06-01 0:00 UTC))
                .refused("issuer_expired"),
            // Order: the first broken rule wins.
            case("order: CN required before names")
                .cn("")
                .alt(&["evil.com"])
                .refused("common_name_required"),
            case("order: CN before alt names")
                .cn("evil.com")
                .alt(&["bad_name.example.com"])
                .refused("name_not_allowed"),
            case("order: names before IP SANs")
                .alt(&["evil.com"])
                .ips(&["bad"])
                .refused("name_not_allowed"),
            case("order: IP SANs before URI SANs")
                .ips(&["bad"])
                .uris(&["spiffe://evil.org/x"])
                .refused("invalid_ip"),
            case("order: URI SANs before the key")
                .uris(&["spiffe://evil.org/x"])
                .csr(rsa(1024))
                .refused("uri_san_not_allowed"),
            case("order: key before TTL")
                .csr(rsa(1024))
                .ca_not_after(datetime!(2025-01-02 0:00 UTC))
                .refused("key_too_weak"),
        ]
    }

    #[test]
    fn role_check_table() {
        let cases = cases();
        assert!(cases.len() >= 60, "only {} cases", cases.len());
        let mut failures = Vec::new();
        for c in &cases {
            let got = c.role.check(&c.req, &c.ctx);
            let problem = match (&c.want, &got) {
                (Want::Refused(code), Err(r)) if r.code() == *code => None,
                (Want::Refused(code), _) => Some(format!("want {code}, got {got:?}")),
                (Want::Ok(_), Err(r)) => Some(format!("want ok, got {}: {r}", r.code())),
                (Want::Ok(e), Ok(ok)) => compare(e, ok),
            };
            if let Some(problem) = problem {
                failures.push(format!("{}: {problem}", c.label));
            }
        }
        assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    }

    fn compare(e: &Expect, ok: &Checked) -> Option<String> {
        let ips: Vec<String> = ok.ip_sans.iter().map(|ip| ip.to_string()).collect();
        let mut diffs = Vec::new();
        let mut field = |name: &str, want: Option<Vec<String>>, got: &[String]| {
            if let Some(want) = want {
                if want != got {
                    diffs.push(format!("{name}: want {want:?}, got {got:?}"));
                }
            }
        };
        field(
            "cn",
            e.cn.map(|cn| strings(&[cn])),
            std::slice::from_ref(&ok.common_name),
        );
        field("dns", e.dns.map(strings), &ok.dns_sans);
        field("email", e.email.map(strings), &ok.email_sans);
        field("ip", e.ip.map(strings), &ips);
        field("uri", e.uri.map(strings), &ok.uri_sans);
        field("warnings", e.warnings.map(strings), &ok.warnings);
        let times = [
            ("not_before", e.not_before, ok.not_before),
            ("not_after", e.not_after, ok.not_after),
        ];
        for (name, want, got) in times {
            if want.is_some_and(|want| want != got) {
                diffs.push(format!("{name}: want {want:?}, got {got}"));
            }
        }
        (!diffs.is_empty()).then(|| diffs.join("; "))
    }

    #[test]
    fn flags_and_subject_come_from_the_role() {
        let role = Role {
            server_flag: false,
            client_flag: true,
            ou: strings(&["payments"]),
            organization: strings(&["Example Inc"]),
            ..service()
        };
        let req = IssueRequest {
            common_name: "www.example.com".into(),
            ..IssueRequest::default()
        };
        let ok = role.check(&req, &context()).expect("allowed");
        assert!(!ok.server && ok.client);
        assert_eq!(ok.ou, ["payments"]);
        assert_eq!(ok.organization, ["Example Inc"]);
        assert_eq!(ok.not_before, datetime!(2024-12-31 23:59:30 UTC));
    }

    #[test]
    fn the_story_refusal_reads_as_designed() {
        let req = IssueRequest {
            common_name: "evil.com".into(),
            ..IssueRequest::default()
        };
        let refusal = service().check(&req, &context()).expect_err("refused");
        assert!(refusal.to_string().starts_with(
            r#""evil.com" is not allowed by role "service" (allowed_domains: example.com)"#
        ));
    }

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
            |name: &str, domains: &[&str], rules: NameRules| Refusal::NameNotAllowed {
                name: name.into(),
                role: role(),
                allowed_domains: strings(domains),
                rules,
            };
        let table: Vec<(Refusal, &str, &str)> = vec![
            (
                Refusal::CommonNameRequired { role: role() },
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
                Refusal::WildcardNotAllowed {
                    name: "*.example.com".into(),
                    role: role(),
                },
                "wildcard_not_allowed",
                r#""*.example.com" is a wildcard, which role "service" does not allow (allow_wildcards: false); name each host instead, or allow wildcards with --allow-wildcards"#,
            ),
            (
                Refusal::InvalidWildcard {
                    name: "foo*.example.com".into(),
                    role: role(),
                },
                "invalid_wildcard",
                r#""foo*.example.com" has a misplaced wildcard, which role "service" refuses ('*' may only be the whole leftmost label); ask for "*.<domain>" or name each host"#,
            ),
            (
                Refusal::InvalidWildcard {
                    name: "a@*.example.com".into(),
                    role: role(),
                },
                "invalid_wildcard",
                r#""a@*.example.com" puts a wildcard in an email address, which role "service" refuses (wildcards are for host names only); name the address itself"#,
            ),
            (
                Refusal::InvalidEmail {
                    name: "a@b@example.com".into(),
                    role: role(),
                },
                "invalid_email",
                r#""a@b@example.com" is not a valid email address for role "service" (one '@' between a local part and a domain); write it as alice@example.com"#,
            ),
            (
                Refusal::InvalidHostname {
                    name: "_srv.example.com".into(),
                    role: role(),
                    problem: HostnameProblem::BadCharacter { ch: '_' },
                },
                "invalid_hostname",
                r#""_srv.example.com" is not a valid host name, which role "service" requires (enforce_hostnames: true): '_' is not allowed (labels use a-z, 0-9 and '-'); fix the name, or set enforce_hostnames=false on the role"#,
            ),
            (
                Refusal::InvalidHostname {
                    name: "a@bad_host.example.com".into(),
                    role: role(),
                    problem: HostnameProblem::BadCharacter { ch: '_' },
                },
                "invalid_hostname",
                r#""a@bad_host.example.com" does not have a valid domain, which role "service" requires (enforce_hostnames: true): '_' is not allowed (labels use a-z, 0-9 and '-'); fix the name, or set enforce_hostnames=false on the role"#,
            ),
            (
                Refusal::IpSanNotAllowed {
                    ip: IpAddr::from([127, 0, 0, 1]),
                    role: role(),
                },
                "ip_sans_not_allowed",
                r#"IP SAN "127.0.0.1" is not allowed by role "service" (allow_ip_sans: false); allow IP SANs with --allow-ip-sans"#,
            ),
            (
                Refusal::InvalidIpSan {
                    value: "300.1.1.1".into(),
                    role: role(),
                },
                "invalid_ip",
                r#"IP SAN "300.1.1.1" for role "service" is not an IP address; write it like 127.0.0.1 or ::1 (names go in --san)"#,
            ),
            (
                Refusal::UriSanNotAllowed {
                    uri: "spiffe://evil.org/ns/default/sa/web".into(),
                    role: role(),
                    allowed_uri_sans: strings(&["spiffe://example.org/ns/*/sa/*"]),
                },
                "uri_san_not_allowed",
                r#"URI SAN "spiffe://evil.org/ns/default/sa/web" is not allowed by role "service" (allowed_uri_sans: spiffe://example.org/ns/*/sa/*); add a matching glob with --allowed-uri-sans"#,
            ),
            (
                Refusal::UriSanNotAllowed {
                    uri: "spiffe://example.org/ns/default/sa/web".into(),
                    role: role(),
                    allowed_uri_sans: vec![],
                },
                "uri_san_not_allowed",
                r#"URI SAN "spiffe://example.org/ns/default/sa/web" is not allowed by role "service" (allowed_uri_sans: none); add a matching glob with --allowed-uri-sans"#,
            ),
            (
                Refusal::InvalidUriSan {
                    uri: "not a uri".into(),
                    role: role(),
                },
                "invalid_uri",
                r#"URI SAN "not a uri" for role "service" is not a URI (scheme:rest); write it like spiffe://example.org/ns/default/sa/web"#,
            ),
            (
                Refusal::KeyTypeMismatch {
                    key: KeyKind::Ec { curve: Curve::P256 },
                    role: role(),
                    key_type: "rsa".into(),
                },
                "key_type_mismatch",
                r#"the CSR's EC P-256 key is not allowed by role "service" (key_type: rsa); send a CSR with an rsa key, or set --key-type any"#,
            ),
            (
                Refusal::UnsupportedKey {
                    oid: "1.2.840.10040.4.1".into(),
                    role: role(),
                },
                "unsupported_key",
                r#"the CSR's key (1.2.840.10040.4.1) is not supported by role "service" (key_type: any); send a CSR with an RSA, EC or Ed25519 key"#,
            ),
            (
                Refusal::KeyTooWeak {
                    key: KeyKind::Rsa { bits: 1024 },
                    role: role(),
                    key_bits: 0,
                    min_bits: 2048,
                },
                "key_too_weak",
                r#"the CSR's RSA 1024 key is too weak for role "service" (key_bits: 0, at least 2048 bits); send a CSR with a key of at least 2048 bits"#,
            ),
            (
                Refusal::OutlivesIssuer {
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
                Refusal::IssuerExpired {
                    ca_name: "root".into(),
                    ca_not_after: datetime!(2024-06-01 0:00 UTC),
                    now: NOW,
                },
                "issuer_expired",
                r#"issuer "root" expired at 2024-06-01T00:00:00Z (now 2025-01-01T00:00:00Z), so nothing it signs can be valid; renew the CA or issue from another one"#,
            ),
            (
                Refusal::TtlInvalid {
                    role: role(),
                    ttl: Duration::ZERO,
                },
                "ttl_invalid",
                r#"TTL "0s" for role "service" leaves no validity period (the role's max_ttl or the system's max TTL is 0); raise the limit"#,
            ),
            (
                Refusal::TtlInvalid {
                    role: role(),
                    ttl: hours(100_000_000),
                },
                "ttl_invalid",
                r#"TTL "100000000h" for role "service" ends past the year 9999; ask for a shorter --ttl"#,
            ),
            (
                Refusal::NotBeforeInvalid {
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

    #[test]
    fn hostname_problem_messages() {
        let table = [
            (HostnameProblem::Empty, "it is empty"),
            (
                HostnameProblem::TrailingDot,
                "it ends with '.' (drop the trailing dot)",
            ),
            (
                HostnameProblem::EmptyLabel,
                r#"it has an empty label (a leading '.' or "..")"#,
            ),
            (
                HostnameProblem::LabelTooLong {
                    label: format!("{LABEL_63}a"),
                },
                "label \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is 64 characters, over the limit of 63",
            ),
            (
                HostnameProblem::TooLong { len: 255 },
                "it is 255 characters, over the limit of 253",
            ),
            (
                HostnameProblem::BadCharacter { ch: ' ' },
                "' ' is not allowed (labels use a-z, 0-9 and '-')",
            ),
            (
                HostnameProblem::BadCharacter { ch: 'ü' },
                "'ü' is not allowed (labels use a-z, 0-9 and '-'; write international names in their xn-- form)",
            ),
            (
                HostnameProblem::HyphenAtEdge {
                    label: "-www".into(),
                },
                "label \"-www\" starts or ends with '-'",
            ),
        ];
        for (problem, message) in table {
            assert_eq!(problem.to_string(), message);
        }
    }

    #[test]
    fn which_hostname_problem() {
        let table = [
            ("www.example.com.", Some(HostnameProblem::TrailingDot)),
            (".example.com", Some(HostnameProblem::EmptyLabel)),
            ("www..example.com", Some(HostnameProblem::EmptyLabel)),
            (
                "a_b.example.com",
                Some(HostnameProblem::BadCharacter { ch: '_' }),
            ),
            (
                "www-.example.com",
                Some(HostnameProblem::HyphenAtEdge {
                    label: "www-".into(),
                }),
            ),
            ("a-b.example.com", None),
            ("0.example.com", None),
        ];
        for (name, want) in table {
            assert_eq!(hostname_problem(name), want, "{name}");
        }
    }

    /// No input makes the check panic.
    #[test]
    fn odd_inputs_never_panic() {
        let long = "a.".repeat(300);
        let names = [
            "",
            " ",
            ".",
            "..",
            "*",
            "*.",
            "**.example.com",
            "*.*",
            "@",
            "a@",
            "@a",
            "a@@b",
            "*@*",
            "\u{0}",
            "\u{202e}moc.live",
            "[::1]",
            "::",
            "1.2.3.4.5",
            "ß.example.com",
            long.as_str(),
            "\\*.example.com",
            "{a,b}.example.com",
            "[a].example.com",
        ];
        let roles = [
            service(),
            Role {
                allow_any_name: true,
                enforce_hostnames: false,
                allow_glob_domains: true,
                allowed_domains: strings(&["*", "[", "{", "\\", "**", ""]),
                allowed_uri_sans: strings(&["[", "{", "\\", "**", "*"]),
                key_type: "any".into(),
                ..service()
            },
            Role {
                require_cn: false,
                allow_localhost: false,
                ..Role::default()
            },
        ];
        let huge = Duration::from_secs(u64::MAX);
        let contexts = [
            context(),
            CheckContext {
                system_max_ttl: huge,
                ..context()
            },
            CheckContext {
                now: OffsetDateTime::UNIX_EPOCH,
                ca_not_after: OffsetDateTime::UNIX_EPOCH,
                ..context()
            },
        ];
        for role in &roles {
            for ctx in &contexts {
                for name in names {
                    let req = IssueRequest {
                        common_name: name.into(),
                        alt_names: strings(&[name]),
                        ip_sans: strings(&[name]),
                        uri_sans: strings(&[name]),
                        ttl: Some(huge),
                        exclude_cn_from_sans: false,
                        key: RequestKey::Csr(KeyKind::Rsa { bits: 0 }),
                    };
                    if let Err(refusal) = role.check(&req, ctx) {
                        assert!(!refusal.to_string().is_empty());
                        assert!(!refusal.code().is_empty());
                    }
                    let backdated = Role {
                        not_before_duration: huge,
                        ..role.clone()
                    };
                    let _ = backdated.check(&req, ctx);
                }
            }
        }
    }
}
