//! The names of a request (its CN and alt names: host names, wildcards, emails) against the
//! role's domains, with Vault's `validateNames` semantics.

use std::net::IpAddr;

use super::syntax::{
    glob_match, hostname_problem, is_dns_name, is_localhost, is_under_localhost, HostnameProblem,
    NameParts, SplitError,
};
use super::{NameRules, Role, RoleRefusal, Sans};

impl Role {
    /// The CN goes into the SANs (unless excluded) once it passed the rules: an IP address as
    /// an IP SAN, an email address as an email SAN, a host name as a DNS SAN.
    pub(super) fn admit_common_name(
        &self,
        common_name: &str,
        exclude_from_sans: bool,
        sans: &mut Sans,
    ) -> Result<(), RoleRefusal> {
        if common_name.is_empty() {
            return Ok(());
        }
        if let Ok(ip) = common_name.parse::<IpAddr>() {
            self.check_ip(ip)?;
            if !exclude_from_sans {
                sans.ip.push(ip);
            }
            return Ok(());
        }
        self.check_name(common_name)?;
        if exclude_from_sans {
            return Ok(());
        }
        if common_name.contains('@') {
            sans.email.push(common_name.to_string());
        } else if is_dns_name(common_name) {
            // Vault copies the CN only when it is a host name, whatever
            // enforce_hostnames says.
            sans.dns.push(common_name.to_string());
        }
        Ok(())
    }

    /// Alt names, trimmed and lowercased, each checked once (an IP address here is a name, as
    /// in Vault).
    pub(super) fn admit_alt_names(
        &self,
        alt_names: &[String],
        sans: &mut Sans,
    ) -> Result<(), RoleRefusal> {
        for raw in alt_names {
            let name = raw.trim().to_lowercase();
            if name.is_empty() || sans.dns.contains(&name) || sans.email.contains(&name) {
                continue;
            }
            self.check_name(&name)?;
            if name.contains('@') {
                sans.email.push(name);
            } else {
                sans.dns.push(name);
            }
        }
        Ok(())
    }

    fn name_rules(&self) -> NameRules {
        NameRules {
            allow_bare_domains: self.allow_bare_domains,
            allow_subdomains: self.allow_subdomains,
            allow_glob_domains: self.allow_glob_domains,
            allow_localhost: self.allow_localhost,
        }
    }

    /// Vault's `validateNames` for one lowercased name (a host name or an email address): its
    /// wildcard, its syntax, then whether any rule allows it.
    fn check_name(&self, name: &str) -> Result<(), RoleRefusal> {
        let parts =
            NameParts::split(name).map_err(|SplitError::Email| RoleRefusal::InvalidEmail {
                name: name.to_string(),
                role: self.name.clone(),
            })?;
        self.check_wildcard(name, &parts)?;
        self.check_hostname(name, &parts)?;
        if self.allow_any_name || self.name_allowed(&parts) {
            return Ok(());
        }
        Err(RoleRefusal::NameNotAllowed {
            name: name.to_string(),
            role: self.name.clone(),
            allowed_domains: self
                .allowed_domains
                .iter()
                .filter(|d| !d.trim().is_empty())
                .cloned()
                .collect(),
            rules: self.name_rules(),
        })
    }

    fn check_wildcard(&self, name: &str, parts: &NameParts<'_>) -> Result<(), RoleRefusal> {
        if !parts.wildcard {
            return Ok(());
        }
        // allow_wildcards=false wins even over allow_any_name, as in Vault.
        if !self.allow_wildcards {
            return Err(RoleRefusal::WildcardNotAllowed {
                name: name.to_string(),
                role: self.name.clone(),
            });
        }
        if parts.email || !parts.wildcard_well_placed() {
            return Err(RoleRefusal::InvalidWildcard {
                name: name.to_string(),
                role: self.name.clone(),
            });
        }
        Ok(())
    }

    fn check_hostname(&self, name: &str, parts: &NameParts<'_>) -> Result<(), RoleRefusal> {
        if !self.enforce_hostnames {
            return Ok(());
        }
        let problem = hostname_problem(parts.reduced).or_else(|| {
            let len = parts.host.chars().count();
            (len > 253).then_some(HostnameProblem::TooLong { len })
        });
        match problem {
            Some(problem) => Err(RoleRefusal::InvalidHostname {
                name: name.to_string(),
                role: self.name.clone(),
                problem,
            }),
            None => Ok(()),
        }
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
}

#[cfg(test)]
pub(super) mod tests {
    use crate::role::testkit::*;
    use crate::role::Role;

    /// Bare domains, subdomains, wildcards, globs, localhost, any name, host name syntax, case,
    /// alt names and emails.
    pub(in crate::role) fn cases() -> Vec<Case> {
        let label_63 = format!("{LABEL_63}.example.com");
        let label_64 = format!("{LABEL_63}a.example.com");
        // 4 × 63-character labels + dots: 255 characters.
        let too_long = format!("{LABEL_63}.{LABEL_63}.{LABEL_63}.{LABEL_63}");
        let many = |r: &mut Role| {
            r.allow_bare_domains = false;
            r.allow_subdomains = false;
        };
        vec![
            // Bare domains.
            case("bare domain with allow_bare_domains")
                .cn("example.com")
                .dns(&["example.com"]),
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
            case("subdomain, many levels")
                .cn("a.b.c.example.com")
                .dns(&["a.b.c.example.com"]),
            case("suffix without a dot is not a subdomain")
                .cn("evilexample.com")
                .refused("name_not_allowed"),
            case("allowed domain inside another name")
                .cn("example.com.evil.com")
                .refused("name_not_allowed"),
            case("other domain")
                .cn("evil.com")
                .refused("name_not_allowed"),
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
            case("localhost with allow_localhost")
                .cn("localhost")
                .dns(&["localhost"]),
            case("localdomain with allow_localhost")
                .cn("localdomain")
                .dns(&["localdomain"]),
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
            case("allow_any_name")
                .role(|r| r.allow_any_name = true)
                .cn("evil.com")
                .dns(&["evil.com"]),
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
            case("empty label")
                .cn("www..example.com")
                .refused("invalid_hostname"),
            case("leading hyphen")
                .cn("-www.example.com")
                .refused("invalid_hostname"),
            case("trailing hyphen in a label")
                .cn("www-.example.com")
                .refused("invalid_hostname"),
            case("63-character label")
                .alt(&[&label_63])
                .expect(|e| e.cn = Some("www.example.com")),
            case("64-character label")
                .cn(&label_64)
                .refused("invalid_hostname"),
            case("name over 253 characters")
                .role(|r| r.allow_any_name = true)
                .cn(&too_long)
                .refused("invalid_hostname"),
            case("unicode name")
                .cn("bücher.example.com")
                .refused("invalid_hostname"),
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
            case("email with two @")
                .alt(&["a@b@example.com"])
                .refused("invalid_email"),
            case("email with an empty local part")
                .alt(&["@example.com"])
                .refused("invalid_email"),
            case("email with a wildcard domain")
                .alt(&["a@*.example.com"])
                .refused("invalid_wildcard"),
            case("email with an invalid domain")
                .alt(&["a@bad_host.example.com"])
                .refused("invalid_hostname"),
        ]
    }

    #[test]
    fn names_table() {
        run(&cases());
    }
}
