//! `mutual-agent`: certificates that look after themselves. Enrollment with a bootstrap token
//! and a CSR (the key is made on this host and never leaves it), renewal by the certificate
//! itself at 2/3 of its lifetime, the trust bundle refreshed with it, retries with capped
//! backoff that keep the current certificate — shared by `mutual agent` (files on disk), the
//! enrolled proxy, `serve hello`, `tunnel`, and Rust services (an in-memory [`Source`]).
//!
//! Layers: [`timing`] is pure (when to renew, when to retry, what state a certificate is in);
//! [`client`] talks to the CA's nodes; [`files`] writes generations that never tear;
//! [`source`] keeps [`Material`] fresh on a `tokio::sync::watch` channel. It is not a CA
//! (`mutual-server`), nor a TLS stack (`mutual-tls`: [`Material::server_material`] feeds its
//! `ServerTls::swap`), nor a process supervisor (the binary runs hooks and serves metrics).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mutual_agent::{client::{CaClient, Request}, source::{Source, SourceConfig}};
//! let client = CaClient::new("http://127.0.0.1:8200", None)?;
//! let request = Request {
//!     mount: "pki".into(), role: "service".into(), common_name: "a.example.com".into(),
//!     dns: vec!["a.example.com".into()], ips: vec![], uris: vec![], ttl: None,
//!     key_type: mutual_pki::key::KeyType::EcP256,
//! };
//! let source = Source::enroll(SourceConfig::new(client, request, Some("token".into()))).await?;
//! let mut updates = source.subscribe();
//! while updates.changed().await.is_ok() {
//!     println!("new certificate {}", updates.borrow().serial);
//! }
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod feed;
pub mod files;
pub mod material;
pub mod source;
pub mod timing;

use mutual_tls::Identity;

pub use client::{CaClient, ClientError, Request};
pub use feed::Feed;
pub use files::{OutDir, Pems};
pub use material::Material;
pub use source::{Source, SourceConfig, Stats};
pub use timing::{CertState, Plan, Validity};

/// How a certificate was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Enrolled with a token on `sign/:role`.
    Token,
    /// Renewed by certificate on `/renew`.
    Certificate,
}

impl Via {
    /// For logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Via::Token => "token",
            Via::Certificate => "certificate",
        }
    }
}

/// One attempt: renew by certificate when we hold one (its chain and key, in memory), and
/// enroll with the token when there is none or the CA offers no renewal by certificate.
pub async fn obtain(
    client: &CaClient,
    req: &Request,
    token: Option<&str>,
    current: Option<&Identity>,
) -> Result<(Pems, Via), ClientError> {
    if let Some(identity) = current {
        match client.renew(req, identity).await {
            Ok(p) => return Ok((p, Via::Certificate)),
            Err(ClientError::NoRenewal(why)) => match token {
                Some(_) => tracing::debug!(reason = %why, "renewing with the token"),
                None => return Err(ClientError::NoRenewal(why)),
            },
            Err(e) => return Err(e),
        }
    }
    let token = token.ok_or_else(|| {
        ClientError::Local(
            "no certificate to renew with: give a bootstrap token with --token or MUTUAL_TOKEN"
                .into(),
        )
    })?;
    Ok((client.enroll(req, token).await?, Via::Token))
}
