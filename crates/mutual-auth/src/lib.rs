//! `mutual-auth`: who may do what on mutual's API, with Vault's rules — ACL policies in
//! Vault's HCL, the decision for one request with the rule that made it, token rules (child
//! policies, orphans, TTLs, uses), AppRole's secret-ID rules, token roles, `userpass` password
//! hashes, and the audit log's entries with the HMAC that keeps secrets out of them.
//!
//! Pure logic: no IO, no async, no clock (every function that needs the time takes `now`).
//! Storage lives in `mutual-store`, HTTP in `mutual-server`.
//!
//! ```
//! use mutual_auth::{Acl, Capability, Policy};
//! let p = Policy::parse("pki", r#"path "pki/issue/*" { capabilities = ["create", "update"] }"#)?;
//! let acl = Acl::new([&p])?;
//! assert!(acl.allows("pki/issue/web", Capability::Update).is_allowed());
//! assert!(!acl.allows("pki/revoke", Capability::Update).is_allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acl;
pub mod approle;
pub mod audit;
mod capability;
mod default_policy;
pub mod hmac;
pub mod password;
pub mod policy;
pub mod token;
pub mod ttl;

pub use acl::{Acl, AclError, Decision, Reason};
pub use capability::{Capabilities, Capability};
pub use default_policy::{default_policy, DEFAULT_POLICY, IMMUTABLE};
pub use policy::{Policy, PolicyError, PolicyErrorKind};
