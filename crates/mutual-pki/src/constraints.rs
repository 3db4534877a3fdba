//! Name constraints (RFC 5280 4.2.1.10) on CA certificates: Vault's `permitted_dns_domains`
//! and the newer excluded, IP, email and URI fields, stamped into a CA that mutual signs, read
//! back from any CA certificate, and checked against the names of a certificate below it with
//! OpenSSL's matching rules (`crypto/x509/v3_ncons.c`), so that mutual refuses what
//! `openssl verify` refuses:
//!
//! - DNS: `example.com` permits `example.com` and `a.example.com` (a whole-label suffix);
//!   `.example.com` only names below it.
//! - email: `user@example.com` one mailbox; `example.com` any mailbox at that host;
//!   `.example.com` any mailbox at a host below it.
//! - URI: the host of the URI; `example.org` that host exactly, `.example.org` hosts below it.
//! - IP: a CIDR range (`10.0.0.0/8`, `fd00::/8`) of the same family.
//!
//! A name of a form that has permitted subtrees must match one of them; a name that matches an
//! excluded subtree is refused even when it is also permitted.

use std::{fmt, net::IpAddr, str::FromStr};

use rcgen::{CertificateParams, CidrSubnet, CustomExtension, GeneralSubtree};
use serde::{Deserialize, Serialize};
use x509_parser::prelude::*;

use crate::PkiError;

/// An IP range of a name constraint: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// The network address.
    pub addr: IpAddr,
    /// Bits of the prefix (0–32 for IPv4, 0–128 for IPv6).
    pub prefix: u8,
}

impl IpRange {
    /// True when `ip` is inside this range (the same family, the same prefix bits).
    pub fn contains(&self, ip: &IpAddr) -> bool {
        fn masked(bytes: &[u8], prefix: u8) -> Vec<u8> {
            bytes
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let keep = (i32::from(prefix) - 8 * i as i32).clamp(0, 8);
                    b & (0xffu16 << (8 - keep)) as u8
                })
                .collect()
        }
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                masked(&a.octets(), self.prefix) == masked(&b.octets(), self.prefix)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                masked(&a.octets(), self.prefix) == masked(&b.octets(), self.prefix)
            }
            _ => false,
        }
    }

    /// The range of an RFC 5280 IP constraint: the address then the mask (8 or 32 bytes).
    fn from_constraint(bytes: &[u8]) -> Option<IpRange> {
        let (addr, mask): (IpAddr, &[u8]) = match bytes.len() {
            8 => (
                IpAddr::from(<[u8; 4]>::try_from(&bytes[..4]).ok()?),
                &bytes[4..],
            ),
            32 => (
                IpAddr::from(<[u8; 16]>::try_from(&bytes[..16]).ok()?),
                &bytes[16..],
            ),
            _ => return None,
        };
        let mut prefix = 0u8;
        for b in mask {
            prefix += b.leading_ones() as u8;
            if *b != 0xff {
                break;
            }
        }
        Some(IpRange { addr, prefix })
    }
}

impl FromStr for IpRange {
    type Err = String;

    /// `10.0.0.0/8`, `fd00::/8`, or a bare address (a range of one).
    fn from_str(s: &str) -> Result<IpRange, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("\"{s}\" is not an IP range (use CIDR, e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("\"{s}\" has a prefix length outside 0-{max}"))?,
            None => max,
        };
        Ok(IpRange { addr, prefix })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The name constraints of one CA, as Vault's fields name them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NameConstraints {
    /// DNS subtrees names must be in.
    pub permitted_dns_domains: Vec<String>,
    /// DNS subtrees names must not be in.
    pub excluded_dns_domains: Vec<String>,
    /// IP ranges addresses must be in.
    pub permitted_ip_ranges: Vec<IpRange>,
    /// IP ranges addresses must not be in.
    pub excluded_ip_ranges: Vec<IpRange>,
    /// Mailboxes, hosts or domains email addresses must be in.
    pub permitted_email_addresses: Vec<String>,
    /// Mailboxes, hosts or domains email addresses must not be in.
    pub excluded_email_addresses: Vec<String>,
    /// Hosts or domains of the URIs.
    pub permitted_uri_domains: Vec<String>,
    /// Hosts or domains URIs must not name.
    pub excluded_uri_domains: Vec<String>,
}

/// One name of a certificate, of a form that name constraints govern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// A DNS SAN, or the CN of a leaf without DNS SANs when it looks like a host name.
    Dns(String),
    /// An IP SAN.
    Ip(IpAddr),
    /// An email SAN or a subject emailAddress.
    Email(String),
    /// A URI SAN.
    Uri(String),
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Dns(d) => write!(f, "DNS:{d}"),
            Name::Ip(ip) => write!(f, "IP:{ip}"),
            Name::Email(e) => write!(f, "email:{e}"),
            Name::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

/// A name outside the constraints of a CA: which name, which CA, which rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is outside the name constraints of CA \"{ca}\" ({rule}); issue it from a CA whose constraints allow it")]
pub struct Violation {
    /// The name, with its form (`DNS:evil.org`).
    pub name: String,
    /// The constraining CA's subject.
    pub ca: String,
    /// The rule broken, as Vault names the field: `permitted_dns_domains: example.com`.
    pub rule: String,
}

/// OpenSSL's `nc_dns`: a suffix on a label boundary, or any name below a leading-dot base.
fn dns_matches(name: &str, base: &str) -> bool {
    let (name, base) = (name.trim_end_matches('.'), base.trim_end_matches('.'));
    if base.is_empty() {
        return true;
    }
    if name.len() < base.len() {
        return false;
    }
    let start = name.len() - base.len();
    let Some(tail) = name.get(start..) else {
        return false;
    };
    if name.len() > base.len() && !base.starts_with('.') && !name[..start].ends_with('.') {
        return false;
    }
    tail.eq_ignore_ascii_case(base)
}

/// OpenSSL's `nc_email`: a mailbox (local part exact), a host, or a domain below a leading dot.
fn email_matches(email: &str, base: &str) -> bool {
    let Some((local, host)) = email.rsplit_once('@') else {
        return false;
    };
    if let Some((base_local, base_host)) = base.rsplit_once('@') {
        return local == base_local && host.eq_ignore_ascii_case(base_host);
    }
    if base.starts_with('.') {
        return host.len() > base.len()
            && host
                .get(host.len() - base.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(base));
    }
    host.eq_ignore_ascii_case(base)
}

/// The host of a URI (`scheme://host[:port][/path]`), as OpenSSL's `nc_uri` takes it.
fn uri_host(uri: &str) -> Option<&str> {
    let rest = &uri[uri.find("://")? + 3..];
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let end = rest.find([':', '/', '?', '#']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|h| !h.is_empty())
}

/// OpenSSL's `nc_uri`: the host exactly, or any host below a leading-dot base.
fn uri_matches(uri: &str, base: &str) -> bool {
    let Some(host) = uri_host(uri) else {
        return false;
    };
    if base.starts_with('.') {
        return host.len() > base.len()
            && host
                .get(host.len() - base.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(base));
    }
    host.eq_ignore_ascii_case(base)
}

impl NameConstraints {
    /// True when no subtree is set.
    pub fn is_empty(&self) -> bool {
        self == &NameConstraints::default()
    }

    /// Checks one name; `ca` names the CA in the refusal.
    pub fn check(&self, name: &Name, ca: &str) -> Result<(), Violation> {
        fn judge<B: fmt::Display>(
            name: &Name,
            ca: &str,
            (permitted_field, permitted): (&str, &[B]),
            (excluded_field, excluded): (&str, &[B]),
            matches: impl Fn(&B) -> bool,
        ) -> Result<(), Violation> {
            let list = |v: &[B]| v.iter().map(|b| b.to_string()).collect::<Vec<_>>();
            if !permitted.is_empty() && !permitted.iter().any(&matches) {
                return Err(Violation {
                    name: name.to_string(),
                    ca: ca.to_string(),
                    rule: format!("{permitted_field}: {}", list(permitted).join(", ")),
                });
            }
            if let Some(b) = excluded.iter().find(|b| matches(b)) {
                return Err(Violation {
                    name: name.to_string(),
                    ca: ca.to_string(),
                    rule: format!("{excluded_field}: {b}"),
                });
            }
            Ok(())
        }
        match name {
            Name::Dns(d) => judge(
                name,
                ca,
                ("permitted_dns_domains", &self.permitted_dns_domains),
                ("excluded_dns_domains", &self.excluded_dns_domains),
                |b| dns_matches(d, b),
            ),
            Name::Ip(ip) => judge(
                name,
                ca,
                ("permitted_ip_ranges", &self.permitted_ip_ranges),
                ("excluded_ip_ranges", &self.excluded_ip_ranges),
                |b| b.contains(ip),
            ),
            Name::Email(e) => judge(
                name,
                ca,
                ("permitted_email_addresses", &self.permitted_email_addresses),
                ("excluded_email_addresses", &self.excluded_email_addresses),
                |b| email_matches(e, b),
            ),
            Name::Uri(u) => judge(
                name,
                ca,
                ("permitted_uri_domains", &self.permitted_uri_domains),
                ("excluded_uri_domains", &self.excluded_uri_domains),
                |b| uri_matches(u, b),
            ),
        }
    }

    /// Checks every name; the first outside the constraints is the refusal.
    pub fn check_all(&self, names: &[Name], ca: &str) -> Result<(), Violation> {
        names.iter().try_for_each(|n| self.check(n, ca))
    }

    /// True when a URI or email subtree is set: forms that rustls-webpki does not evaluate (it
    /// refuses every name of those forms under such a constraint).
    pub fn has_forms_webpki_lacks(&self) -> bool {
        !(self.permitted_uri_domains.is_empty()
            && self.excluded_uri_domains.is_empty()
            && self.permitted_email_addresses.is_empty()
            && self.excluded_email_addresses.is_empty())
    }

    /// Puts the constraints into the parameters of a CA certificate being signed, as a critical
    /// nameConstraints extension: rcgen's own when it can say everything, else (rcgen has no
    /// URI subtree) the one extension encoded with `x509-cert`.
    pub fn stamp(&self, params: &mut CertificateParams) -> Result<(), PkiError> {
        if self.is_empty() {
            return Ok(());
        }
        if self.permitted_uri_domains.is_empty() && self.excluded_uri_domains.is_empty() {
            params.name_constraints = Some(rcgen::NameConstraints {
                permitted_subtrees: self.rcgen_subtrees(true),
                excluded_subtrees: self.rcgen_subtrees(false),
            });
            return Ok(());
        }
        params.custom_extensions.push(self.encoded_extension()?);
        Ok(())
    }

    fn rcgen_subtrees(&self, permitted: bool) -> Vec<GeneralSubtree> {
        let (dns, ips, emails) = if permitted {
            (
                &self.permitted_dns_domains,
                &self.permitted_ip_ranges,
                &self.permitted_email_addresses,
            )
        } else {
            (
                &self.excluded_dns_domains,
                &self.excluded_ip_ranges,
                &self.excluded_email_addresses,
            )
        };
        dns.iter()
            .map(|d| GeneralSubtree::DnsName(d.clone()))
            .chain(
                ips.iter().map(|r| {
                    GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(r.addr, r.prefix))
                }),
            )
            .chain(emails.iter().map(|e| GeneralSubtree::Rfc822Name(e.clone())))
            .collect()
    }

    fn encoded_extension(&self) -> Result<CustomExtension, PkiError> {
        use der::{
            asn1::{Ia5String, OctetString},
            Encode,
        };
        use x509_cert::ext::pkix::{
            constraints::name::{GeneralSubtree as Subtree, NameConstraints as Nc},
            name::GeneralName as Gn,
        };
        let bad = |e: der::Error| PkiError::Signing(format!("name constraints: {e}"));
        let ia5 = |s: &str| {
            Ia5String::new(s).map_err(|_| PkiError::NotAscii {
                name: s.to_string(),
            })
        };
        let ip = |r: &IpRange| -> Result<Gn, PkiError> {
            let (mut bytes, bits) = match r.addr {
                IpAddr::V4(a) => (a.octets().to_vec(), 32u8),
                IpAddr::V6(a) => (a.octets().to_vec(), 128u8),
            };
            let mask: Vec<u8> = (0..bits / 8)
                .map(|i| {
                    let keep = (i32::from(r.prefix) - 8 * i32::from(i)).clamp(0, 8);
                    (0xffu16 << (8 - keep)) as u8
                })
                .collect();
            for (b, m) in bytes.iter_mut().zip(&mask) {
                *b &= m;
            }
            bytes.extend(mask);
            Ok(Gn::IpAddress(OctetString::new(bytes).map_err(bad)?))
        };
        let subtrees = |dns: &[String],
                        ips: &[IpRange],
                        emails: &[String],
                        uris: &[String]|
         -> Result<Option<Vec<Subtree>>, PkiError> {
            let mut out = Vec::new();
            for d in dns {
                out.push(Gn::DnsName(ia5(d)?));
            }
            for r in ips {
                out.push(ip(r)?);
            }
            for e in emails {
                out.push(Gn::Rfc822Name(ia5(e)?));
            }
            for u in uris {
                out.push(Gn::UniformResourceIdentifier(ia5(u)?));
            }
            Ok((!out.is_empty()).then(|| {
                out.into_iter()
                    .map(|base| Subtree {
                        base,
                        minimum: 0,
                        maximum: None,
                    })
                    .collect()
            }))
        };
        let nc = Nc {
            permitted_subtrees: subtrees(
                &self.permitted_dns_domains,
                &self.permitted_ip_ranges,
                &self.permitted_email_addresses,
                &self.permitted_uri_domains,
            )?,
            excluded_subtrees: subtrees(
                &self.excluded_dns_domains,
                &self.excluded_ip_ranges,
                &self.excluded_email_addresses,
                &self.excluded_uri_domains,
            )?,
        };
        let mut ext = CustomExtension::from_oid_content(&[2, 5, 29, 30], nc.to_der().map_err(bad)?);
        ext.set_criticality(true);
        Ok(ext)
    }

    /// The constraints a parsed certificate carries (None without the extension). Forms mutual
    /// does not check (directory names, other names) are left out.
    pub fn of(cert: &X509Certificate<'_>) -> Option<NameConstraints> {
        let ext = cert.name_constraints().ok()??;
        let mut nc = NameConstraints::default();
        let mut fill = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>,
                        permitted: bool| {
            for s in subtrees.iter().flatten() {
                match &s.base {
                    GeneralName::DNSName(d) => {
                        let v = d.to_string();
                        if permitted {
                            nc.permitted_dns_domains.push(v)
                        } else {
                            nc.excluded_dns_domains.push(v)
                        }
                    }
                    GeneralName::RFC822Name(e) => {
                        let v = e.to_string();
                        if permitted {
                            nc.permitted_email_addresses.push(v)
                        } else {
                            nc.excluded_email_addresses.push(v)
                        }
                    }
                    GeneralName::URI(u) => {
                        let v = u.to_string();
                        if permitted {
                            nc.permitted_uri_domains.push(v)
                        } else {
                            nc.excluded_uri_domains.push(v)
                        }
                    }
                    GeneralName::IPAddress(b) => {
                        // A malformed range can match nothing: as a permitted subtree it
                        // refuses every address, as an excluded one it is dropped.
                        let r = IpRange::from_constraint(b).unwrap_or(IpRange {
                            addr: IpAddr::from([255, 255, 255, 255]),
                            prefix: 32,
                        });
                        if permitted {
                            nc.permitted_ip_ranges.push(r)
                        } else if IpRange::from_constraint(b).is_some() {
                            nc.excluded_ip_ranges.push(r)
                        }
                    }
                    _ => {}
                }
            }
        };
        fill(&ext.value.permitted_subtrees, true);
        fill(&ext.value.excluded_subtrees, false);
        Some(nc)
    }

    /// The constraints of a DER certificate (None without the extension).
    pub fn of_der(der: &[u8]) -> Result<Option<NameConstraints>, PkiError> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::UnreadableCertificate {
                detail: e.to_string(),
            })?;
        Ok(NameConstraints::of(&cert))
    }
}

/// OpenSSL's `cn2dnsid`: a CN is checked as a DNS name only when it looks like one (labels of
/// letters, digits, `-` and `_`, at least two of them).
pub fn cn_as_dns(cn: &str) -> Option<&str> {
    let labels: Vec<&str> = cn.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    ok.then_some(cn)
}

/// The names of a certificate that name constraints govern, as OpenSSL's
/// `NAME_CONSTRAINTS_check` gathers them: SANs of the DNS, IP, email and URI forms, subject
/// emailAddress attributes, and for a leaf without DNS SANs a CN that looks like a host name.
pub fn names_of(cert: &X509Certificate<'_>, leaf: bool) -> Vec<Name> {
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(Name::Dns(d.to_string())),
                GeneralName::RFC822Name(e) => names.push(Name::Email(e.to_string())),
                GeneralName::URI(u) => names.push(Name::Uri(u.to_string())),
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => <[u8; 4]>::try_from(*b).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*b).ok().map(IpAddr::from),
                        _ => None,
                    };
                    if let Some(ip) = ip {
                        names.push(Name::Ip(ip));
                    }
                }
                _ => {}
            }
        }
    }
    for e in cert.subject().iter_email() {
        if let Ok(e) = e.as_str() {
            names.push(Name::Email(e.to_string()));
        }
    }
    if leaf && !names.iter().any(|n| matches!(n, Name::Dns(_))) {
        for cn in cert.subject().iter_common_name() {
            if let Some(d) = cn.as_str().ok().and_then(cn_as_dns) {
                names.push(Name::Dns(d.to_string()));
            }
        }
    }
    names
}

/// The names a checked request would put into a leaf, gathered as [`names_of`] does.
pub fn names_of_request(checked: &crate::role::Checked) -> Vec<Name> {
    let mut names: Vec<Name> = checked
        .dns_sans
        .iter()
        .map(|d| Name::Dns(d.clone()))
        .collect();
    names.extend(checked.ip_sans.iter().map(|ip| Name::Ip(*ip)));
    names.extend(checked.email_sans.iter().map(|e| Name::Email(e.clone())));
    names.extend(checked.uri_sans.iter().map(|u| Name::Uri(u.clone())));
    if checked.dns_sans.is_empty() {
        if let Some(d) = cn_as_dns(&checked.common_name) {
            names.push(Name::Dns(d.to_string()));
        }
    }
    names
}

/// The constraints of each CA of a chain (DER, any order), with the CA's subject: what
/// issuance under the nearest of them must respect.
pub fn of_chain(chain: &[Vec<u8>]) -> Result<Vec<(String, NameConstraints)>, PkiError> {
    let mut out = Vec::new();
    for der in chain {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| PkiError::UnreadableCertificate {
                detail: e.to_string(),
            })?;
        if let Some(nc) = NameConstraints::of(&cert) {
            out.push((crate::cert::dn_string(cert.subject()), nc));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
