//! What the CA commands show of a CA, whichever backend answered: the local store's record or
//! a server's answer become the same [`CaInfo`].

use mutual_pki::ca::Urls;
use mutual_store::CaRecord;

/// What the commands show of a CA (never its key, which a server keeps to itself).
#[derive(Debug, Clone)]
pub struct CaInfo {
    /// Short name (the mount path on a server).
    pub name: String,
    /// Certificate PEM.
    pub cert_pem: String,
    /// Certificate DER.
    pub cert_der: Vec<u8>,
    /// Parent CA's name, when it is a CA of the same store or server.
    pub parent: Option<String>,
    /// URLs stamped into issued certificates.
    pub urls: Urls,
}

impl From<CaRecord> for CaInfo {
    fn from(c: CaRecord) -> CaInfo {
        CaInfo {
            name: c.name,
            cert_pem: c.cert_pem,
            cert_der: c.cert_der,
            parent: c.parent,
            urls: c.urls,
        }
    }
}

/// One issuer of a CA scope (a mount or a local CA), as `mutual ca list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssuerInfo {
    /// UUID.
    pub id: String,
    /// Name, or empty.
    pub name: String,
    /// The scope's default issuer (the one that issues).
    pub default: bool,
    /// Subject CN.
    pub common_name: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// Its part in the scope's rotation (`old`, `new`, `cross-signed`), or empty.
    pub rotation: String,
    /// The rotation's phase when it takes part in one (`staged`, `switched`, `retired`).
    pub phase: String,
}

impl IssuerInfo {
    /// From an issuer's certificate and its place in the scope.
    pub fn new(
        id: &str,
        name: &str,
        default: bool,
        cert_der: &[u8],
        rotation: Option<&mutual_pki::rotation::Rotation>,
    ) -> IssuerInfo {
        let f = mutual_pki::cert::facts(cert_der).ok();
        let part = rotation.map_or("", |r| {
            if r.old == id {
                "old"
            } else if r.new == id {
                "new"
            } else if r.cross == id {
                "cross-signed"
            } else {
                ""
            }
        });
        IssuerInfo {
            id: id.to_string(),
            name: name.to_string(),
            default,
            common_name: f
                .as_ref()
                .and_then(|f| f.common_name.clone())
                .unwrap_or_default(),
            not_after: f
                .map(|f| crate::output::rfc3339(f.not_after))
                .unwrap_or_default(),
            rotation: part.to_string(),
            phase: match (part, rotation) {
                ("", _) | (_, None) => String::new(),
                (_, Some(r)) => r.phase.to_string(),
            },
        }
    }
}
