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
