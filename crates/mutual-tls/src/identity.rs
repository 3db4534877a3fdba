//! Who the peer is, read from its verified certificate chain. Pure: no sockets, no clock.

use std::fmt;
use std::net::IpAddr;

use mutual_pki::{cert, serial::Serial};
use serde::Serialize;

/// The identity of a verified peer: the facts of its leaf certificate and of the CAs above it.
///
/// Built once per connection, after verification, and handed to handlers (as a request
/// extension) and to [`crate::Policy::authorize`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerIdentity {
    /// Subject DN, RFC 2253 order (`CN=alice.example.com`).
    pub subject: String,
    /// Subject common name, if any.
    pub common_name: Option<String>,
    /// DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// IP subject alternative names.
    pub ip_addresses: Vec<IpAddr>,
    /// URI subject alternative names.
    pub uris: Vec<String>,
    /// The SPIFFE ID: the one URI SAN with the `spiffe://` scheme, if there is exactly one.
    pub spiffe_id: Option<String>,
    /// Subject organizational units.
    pub organizational_units: Vec<String>,
    /// Serial number of the leaf.
    #[serde(serialize_with = "ser_display")]
    pub serial: Serial,
    /// Issuer DN of the leaf.
    pub issuer: String,
    /// The issuing CAs, nearest first: the leaf's issuer, then the issuer of each certificate
    /// sent above it. Each entry is a DN; [`PeerIdentity::issuer_names`] gives their CNs.
    pub issuer_chain: Vec<String>,
    /// The CNs of [`PeerIdentity::issuer_chain`], where they have one.
    pub issuer_names: Vec<String>,
    /// SHA-256 fingerprint of the leaf, `AB:CD:…`.
    pub fingerprint: String,
}

fn ser_display<S: serde::Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// The chain could not be read as certificates.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable peer certificate: {0}")]
pub struct IdentityError(pub String);

impl PeerIdentity {
    /// Reads the identity from a chain, leaf first (DER).
    pub fn from_chain<C: AsRef<[u8]>>(chain: &[C]) -> Result<PeerIdentity, IdentityError> {
        let leaf = chain
            .first()
            .ok_or_else(|| IdentityError("no certificate".into()))?;
        let f = cert::facts(leaf.as_ref()).map_err(|e| IdentityError(e.to_string()))?;
        let mut issuer_chain = vec![f.issuer.clone()];
        let mut issuer_names: Vec<String> = f.issuer_common_name.iter().cloned().collect();
        for der in &chain[1..] {
            let up = cert::facts(der.as_ref()).map_err(|e| IdentityError(e.to_string()))?;
            if up.self_issued {
                continue;
            }
            if !issuer_chain.contains(&up.issuer) {
                issuer_chain.push(up.issuer.clone());
                issuer_names.extend(up.issuer_common_name);
            }
        }
        let spiffe: Vec<&String> = f
            .uris
            .iter()
            .filter(|u| u.to_ascii_lowercase().starts_with("spiffe://"))
            .collect();
        Ok(PeerIdentity {
            spiffe_id: (spiffe.len() == 1).then(|| spiffe[0].clone()),
            subject: f.subject,
            common_name: f.common_name,
            dns_names: f.dns_names,
            ip_addresses: f.ip_addresses,
            uris: f.uris,
            organizational_units: f.organizational_units,
            serial: f.serial,
            issuer: f.issuer,
            issuer_chain,
            issuer_names,
            fingerprint: f.sha256_fingerprint,
        })
    }

    /// The name to show a human: the CN, else the first DNS or URI SAN, else the subject DN.
    pub fn name(&self) -> &str {
        self.common_name
            .as_deref()
            .or(self.dns_names.first().map(String::as_str))
            .or(self.uris.first().map(String::as_str))
            .unwrap_or(&self.subject)
    }

    /// The name of the issuing CA to show a human: its CN, else its DN.
    pub fn issuer_name(&self) -> &str {
        self.issuer_names
            .first()
            .map(String::as_str)
            .unwrap_or(&self.issuer)
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (issued by {})", self.name(), self.issuer_name())
    }
}
