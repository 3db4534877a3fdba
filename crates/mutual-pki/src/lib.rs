//! `mutual-pki`: the certificate authority's pure logic.
//!
//! Keys, certificates, CAs, roles and their rules, CSR checks, CRLs, durations, serials, and the
//! diagnosis of why a chain is refused. It never touches a file, a socket or a clock of its own:
//! callers pass the bytes and the current time in, and get bytes, decisions and reasons out.
//! Persistence lives in `mutual-store`, TLS in `mutual-tls`.
//!
//! ```
//! use mutual_pki::{ca::RootRequest, key::KeyType};
//! let root = mutual_pki::ca::generate_root(&RootRequest {
//!     common_name: "Local Root CA".into(),
//!     key_type: KeyType::EcP256,
//!     ttl: std::time::Duration::from_secs(3600),
//!     ..RootRequest::default()
//! }, time::OffsetDateTime::now_utc()).unwrap();
//! assert!(root.cert_pem.contains("BEGIN CERTIFICATE"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ca;
pub mod cert;
pub mod constraints;
pub mod crl;
pub mod csr;
pub mod diagnosis;
pub mod duration;
pub mod inspect;
pub mod issue;
pub mod issuers;
pub mod key;
pub mod ocsp;
pub mod p12;
pub mod role;
pub mod rotation;
pub mod serial;
pub mod trust;
pub mod verify;

mod error;
pub use error::PkiError;
