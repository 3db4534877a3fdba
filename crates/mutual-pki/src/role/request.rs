//! A request to issue, the context of its check, and what a request that passed becomes.

use std::{net::IpAddr, time::Duration};

use time::OffsetDateTime;

use crate::key::KeyKind;

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
    /// The whole subject to write, as (dotted OID, value) most general first, instead of the
    /// role's O and OU and the common name: `sign-verbatim` passes the CSR's own subject. Empty
    /// for every other request.
    pub subject: Vec<(String, String)>,
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
            subject: vec![],
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
    /// The request's whole subject when it gave one ([`IssueRequest::subject`]); empty: O, OU
    /// and CN as above.
    pub subject: Vec<(String, String)>,
}
