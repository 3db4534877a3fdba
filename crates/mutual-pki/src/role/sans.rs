//! IP and URI subject alternative names against the role's `allow_ip_sans` and
//! `allowed_uri_sans`.

use std::net::IpAddr;

use super::syntax::{glob_match, looks_like_uri};
use super::{push_unique, Role, RoleRefusal, Sans};

impl Role {
    /// IP SANs, parsed and checked, each once.
    pub(super) fn admit_ip_sans(
        &self,
        ip_sans: &[String],
        sans: &mut Sans,
    ) -> Result<(), RoleRefusal> {
        for raw in ip_sans {
            let value = raw.trim();
            if value.is_empty() {
                continue;
            }
            let ip = value
                .parse::<IpAddr>()
                .map_err(|_| RoleRefusal::InvalidIpSan {
                    value: value.to_string(),
                    role: self.name.clone(),
                })?;
            self.check_ip(ip)?;
            push_unique(&mut sans.ip, ip);
        }
        Ok(())
    }

    /// URI SANs, each matched against the role's globs, each once.
    pub(super) fn admit_uri_sans(
        &self,
        uri_sans: &[String],
        sans: &mut Sans,
    ) -> Result<(), RoleRefusal> {
        for raw in uri_sans {
            let uri = raw.trim();
            if uri.is_empty() {
                continue;
            }
            self.check_uri(uri)?;
            push_unique(&mut sans.uri, uri.to_string());
        }
        Ok(())
    }

    pub(super) fn check_ip(&self, ip: IpAddr) -> Result<(), RoleRefusal> {
        if self.allow_ip_sans {
            Ok(())
        } else {
            Err(RoleRefusal::IpSanNotAllowed {
                ip,
                role: self.name.clone(),
            })
        }
    }

    fn check_uri(&self, uri: &str) -> Result<(), RoleRefusal> {
        if !looks_like_uri(uri) {
            return Err(RoleRefusal::InvalidUriSan {
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
            Err(RoleRefusal::UriSanNotAllowed {
                uri: uri.to_string(),
                role: self.name.clone(),
                allowed_uri_sans: self.allowed_uri_sans.clone(),
            })
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::role::testkit::*;

    /// IP SANs (and an IP address as CN) and URI SANs.
    pub(in crate::role) fn cases() -> Vec<Case> {
        vec![
            // IP SANs.
            case("IP SANs v4 and v6")
                .ips(&["10.0.0.1", "::1"])
                .expect(|e| e.ip = Some(&["10.0.0.1", "::1"])),
            case("IP SANs without allow_ip_sans")
                .role(|r| r.allow_ip_sans = false)
                .ips(&["10.0.0.1"])
                .refused("ip_sans_not_allowed"),
            case("IP SAN out of range")
                .ips(&["300.1.1.1"])
                .refused("invalid_ip"),
            case("IP SAN that is a name")
                .ips(&["localhost"])
                .refused("invalid_ip"),
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
        ]
    }

    #[test]
    fn sans_table() {
        run(&cases());
    }
}
