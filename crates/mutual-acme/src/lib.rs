//! `mutual-acme`: the ACME protocol (RFC 8555) without IO, for `mutual server`'s ACME
//! directories. It parses and verifies flattened JWS requests (ES256, ES384, RS256, EdDSA, with
//! aws-lc-rs), computes JWK thumbprints (RFC 7638), enforces the protected-header rules (nonce,
//! url, exactly one of `kid`/`jwk`, the algorithm allowlist), verifies external account bindings
//! and key changes, holds the order / authorization / challenge state machines, checks
//! identifiers and CSR names, and writes problem documents (`urn:ietf:params:acme:error:*`).
//!
//! It is not a server: nonces, accounts and orders are stored, and challenges validated, by
//! `mutual-server`, which calls these functions with what it read.
//!
//! ```
//! let rule = mutual_acme::key_authorization("token", "thumb");
//! assert_eq!(rule, "token.thumb");
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod b64;
mod eab;
mod identifier;
mod jwk;
mod jws;
mod keychange;
mod problem;
mod ratelimit;
mod status;

pub use b64::{b64url, b64url_decode};
pub use eab::{eab_kid, verify_eab};
pub use identifier::{
    challenge_types, check_csr_names, check_identifier, dns01_txt, key_authorization,
    tls_alpn01_digest, Identifier,
};
pub use jwk::{Jwk, PublicKey};
pub use jws::{parse, Expect, Request, Signer, ALGORITHMS};
pub use keychange::{check_key_change, KeyChange};
pub use problem::{Problem, ProblemType};
pub use ratelimit::RateWindow;
pub use status::{
    authz_after_challenge, challenge_after, check_account, order_status, AuthzStatus,
    ChallengeEvent, ChallengeStatus, OrderStatus,
};
