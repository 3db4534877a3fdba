//! `mutual-store`: where mutual keeps its CAs, roles, and issued and revoked certificates.
//!
//! The embedded default is one SQLite file (`mutual.db`) in a data directory, in WAL mode with
//! full fsync, so that a certificate handed to a caller is on disk. CA private keys are
//! encrypted at rest with AES-256-GCM under a key-encryption key kept apart from the database
//! (the `kek` file beside it, mode 0600, or `MUTUAL_KEK`): a copy of the database alone holds no
//! usable key. This crate knows nothing of HTTP or TLS; the rules of what may be issued live in
//! `mutual-pki`.
//!
//! The same store runs on PostgreSQL, for several `mutual server` nodes on one database
//! ([`Store::open_postgres`]; the key-encryption key then comes from `MUTUAL_KEK` alone): every
//! query is written once for both engines (db.rs says how), and migrations are versioned.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mutual_store::StoreError> {
//! let store = mutual_store::Store::open(std::path::Path::new("./mutual-data")).await?;
//! for ca in store.list_cas().await? {
//!     println!("{}", ca.name);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod acme;
mod approle;
mod auth_entries;
mod authority;
mod commit;
mod db;
mod error;
mod inventory;
mod issuers;
mod kek;
mod metrics;
mod migrate;
mod model;
mod mount_config;
mod mounts;
mod notify;
mod policies;
mod postgres;
mod rotation;
mod schema;
mod signers;
mod sqlite;
mod tokens;

pub use acme::AcmeObject;
pub use approle::{AppRoleRecord, AuthMount, SecretIdRecord};
pub use auth_entries::AuditDevice;
pub use authority::{
    issue_signed, sign_csr, sign_verbatim_role, AuthorityError, Issued, Signed, CRL_VALIDITY,
    SYSTEM_MAX_TTL,
};
pub use commit::{CertWriter, OwnedCert};
pub use db::{is_postgres_url, redact, Engine};
pub use error::StoreError;
pub use inventory::{
    inventory_names, names_of, Cursor, DayCount, Found, NameKind, Page, Search, SortKey, MAX_PAGE,
};
pub use issuers::{new_uuid, IssuerDefaults, IssuerRecord, KeyRecord, DEFAULT_USAGE};
pub use kek::Kek;
pub use metrics::{store_metrics, StoreMetrics, COMMIT_BUCKETS};
pub use model::{CaRecord, CertFilter, CertRecord, NewCa, NewCert, RevokeOutcome};
pub use mounts::MountRecord;
pub use notify::Change;
pub use sqlite::{FeedEntry, Store};
pub use tokens::{token_hash, TokenLease, TokenRecord, TokenSpec, TokenUse, ALL_MOUNTS};
