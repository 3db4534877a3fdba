use mutual_pki::{ca::Urls, crl::Reason, key::PrivateKey, serial::Serial};
use serde::Serialize;
use time::OffsetDateTime;

/// A CA to be stored.
pub struct NewCa<'a> {
    /// Short name (`root`, `alice`).
    pub name: &'a str,
    /// Its certificate, PEM.
    pub cert_pem: &'a str,
    /// Its key (sealed before it is written).
    pub key: &'a PrivateKey,
    /// The CA that signed it, when it is an intermediate of this store.
    pub parent: Option<&'a str>,
    /// PEM of the issuers above it, nearest first, root last (empty for a root).
    pub chain_pem: &'a str,
}

/// A stored CA with its key opened.
#[derive(Debug)]
pub struct CaRecord {
    /// Short name.
    pub name: String,
    /// Certificate PEM.
    pub cert_pem: String,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Private key.
    pub key: PrivateKey,
    /// Parent CA's name, for intermediates made here.
    pub parent: Option<String>,
    /// PEM of the issuers above, nearest first.
    pub chain_pem: String,
    /// URLs stamped into issued certificates.
    pub urls: Urls,
    /// notAfter of the CA certificate (read once, not per issued leaf).
    pub not_after: OffsetDateTime,
    /// This CA and the CAs above it, PEM, nearest first (Vault's `ca_chain`).
    pub chain: Vec<String>,
    /// The name constraints of this CA and of the CAs above it, with each CA's subject: what
    /// every certificate it issues must respect (read once, not per issued leaf).
    pub constraints: Vec<(String, mutual_pki::constraints::NameConstraints)>,
    /// The certificate parsed for signing and the key it signs with, prepared once for every
    /// leaf this CA signs (from `cert_der`, `key` and `urls`).
    pub prepared: mutual_pki::ca::PreparedCa,
}

/// An issued certificate to record.
pub struct NewCert<'a> {
    /// Serial.
    pub serial: &'a Serial,
    /// Issuing CA's name.
    pub ca: &'a str,
    /// Subject CN.
    pub common_name: &'a str,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// PEM of the certificate alone.
    pub cert_pem: &'a str,
    /// The role it was issued under (None for CA certificates).
    pub role: Option<&'a str>,
}

/// A recorded certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertRecord {
    /// Serial, colon hex.
    #[serde(serialize_with = "display")]
    pub serial: Serial,
    /// Issuing CA's name.
    pub ca: String,
    /// Subject CN.
    pub common_name: String,
    /// Validity start.
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    /// Validity end.
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When it was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Why.
    pub reason: Option<Reason>,
    /// PEM of the certificate.
    #[serde(skip)]
    pub cert_pem: String,
    /// The role it was issued under (None for CA certificates and rows older than the column).
    pub role: Option<String>,
}

fn display<S: serde::Serializer, T: std::fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Which certificates to list.
#[derive(Debug, Clone, Default)]
pub struct CertFilter {
    /// Only those of this CA.
    pub ca: Option<String>,
    /// Only those (not revoked) whose notAfter is before this instant.
    pub expiring_before: Option<OffsetDateTime>,
    /// Only revoked ones.
    pub revoked_only: bool,
    /// Page size (0: no limit).
    pub limit: u32,
    /// Page start: serials after this hex key.
    pub after: Option<String>,
}

/// What `revoke` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Newly revoked now.
    Revoked {
        /// The issuing CA, whose CRL changes.
        ca: String,
        /// When.
        at: OffsetDateTime,
    },
    /// It was revoked before; nothing changed.
    AlreadyRevoked {
        /// The issuing CA.
        ca: String,
        /// When it was revoked.
        at: OffsetDateTime,
    },
}
