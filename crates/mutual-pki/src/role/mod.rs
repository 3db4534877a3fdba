//! Roles: the rules that bound what a CA may issue, with Vault's semantics, and the pure
//! check of a request against them.
//!
//! [`Role::check`] reads as the order of the rules; each rule lives in a room of its own:
//! `names` (the CN and alt names: domains, wildcards, localhost, emails), `sans` (IP and URI
//! SANs), `keys` (a CSR's key), `validity` (TTL, backdating, the issuer's notAfter). `refusal`
//! says why a request was refused; `syntax` knows what a host name, a glob and a URI are.

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

mod keys;
mod names;
mod refusal;
mod request;
mod sans;
mod syntax;
#[cfg(test)]
mod testkit;
mod validity;

pub use refusal::{NameRules, RoleRefusal};
pub use request::{CheckContext, Checked, IssueRequest, RequestKey};
pub use syntax::HostnameProblem;

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
    /// Vault's role fields that mutual keeps and shows but does not apply (`code_signing_flag`,
    /// `country`, `policy_identifiers`, …), by name, in the JSON type Vault gives them. The API
    /// layer owns their names and defaults; the rules above never read them.
    pub vault_fields: std::collections::BTreeMap<String, serde_json::Value>,
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
            vault_fields: Default::default(),
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

/// The subject alternative names of a request, as the rules admit them one by one.
#[derive(Debug, Default)]
struct Sans {
    dns: Vec<String>,
    email: Vec<String>,
    ip: Vec<IpAddr>,
    uri: Vec<String>,
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
    pub fn check(&self, req: &IssueRequest, ctx: &CheckContext) -> Result<Checked, RoleRefusal> {
        let common_name = self.common_name(req)?;
        let mut sans = Sans::default();
        self.admit_common_name(&common_name, req.exclude_cn_from_sans, &mut sans)?;
        self.admit_alt_names(&req.alt_names, &mut sans)?;
        self.admit_ip_sans(&req.ip_sans, &mut sans)?;
        self.admit_uri_sans(&req.uri_sans, &mut sans)?;
        if let RequestKey::Csr(key) = &req.key {
            self.check_key(key)?;
        }
        let mut warnings = Vec::new();
        let (not_before, not_after) = self.validity(req, ctx, &mut warnings)?;

        Ok(Checked {
            common_name,
            dns_sans: sans.dns,
            email_sans: sans.email,
            ip_sans: sans.ip,
            uri_sans: sans.uri,
            not_before,
            not_after,
            server: self.server_flag,
            client: self.client_flag,
            ou: self.ou.clone(),
            organization: self.organization.clone(),
            warnings,
            subject: req.subject.clone(),
        })
    }

    /// The request's CN, lowercased; refused when the role requires one and there is none.
    fn common_name(&self, req: &IssueRequest) -> Result<String, RoleRefusal> {
        let common_name = req.common_name.to_lowercase();
        if common_name.is_empty() && self.require_cn {
            return Err(RoleRefusal::CommonNameRequired {
                role: self.name.clone(),
            });
        }
        Ok(common_name)
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;
    use crate::key::KeyKind;
    use time::{macros::datetime, OffsetDateTime};

    /// The story's certificates, the CN rules, and the order in which rules are applied.
    fn cases() -> Vec<Case> {
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
            case("story: client alice")
                .cn("alice.example.com")
                .dns(&["alice.example.com"]),
            // require_cn.
            case("require_cn and no CN")
                .cn("")
                .refused("common_name_required"),
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

    /// Every table of the role's rules together: the check is tested from every side.
    fn all_cases() -> Vec<Case> {
        let mut all = cases();
        all.extend(super::names::tests::cases());
        all.extend(super::sans::tests::cases());
        all.extend(super::keys::tests::cases());
        all.extend(super::validity::tests::cases());
        all
    }

    #[test]
    fn role_check_table() {
        let cases = all_cases();
        assert!(cases.len() >= 60, "only {} cases", cases.len());
        run(&self::cases());
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
                        subject: vec![],
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
