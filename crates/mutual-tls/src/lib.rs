//! `mutual-tls`: the library a Rust service embeds to serve or call over mutual TLS and to
//! authorize peers by identity.
//!
//! It builds rustls configurations from files ([`ServerTls`], [`ClientTls`]: TLS 1.2 and 1.3,
//! aws-lc-rs, every certificate of the CA file a trust anchor, CRLs for the whole chain),
//! verifies client certificates at least as strictly as `openssl verify -auth_level 2
//! -crl_check_all -purpose sslclient` (through `mutual_pki::verify`), reads a [`PeerIdentity`]
//! from the verified chain, decides with [`Policy`] / [`Matcher`] (pure, parsed once), and
//! authorizes HTTP requests with [`AuthorizeLayer`]. Every refusal explains itself: the
//! server logs a [`Refusal`], the client returns a [`CallError`] that names the CAs the server
//! asked for and the CAs its certificate chains to. Every mutual server — [`ServerTls`], the
//! proxy, `mutual server` — runs the same handshake, [`Acceptor::accept`], where a resumed TLS
//! session is checked against the current CAs, CRLs and policy like a full handshake. It is
//! not a CA (`mutual-pki`) nor a proxy.
//!
//! gRPC: [`http::serve_http2`] serves a tonic service behind [`AuthorizeLayer`], which answers
//! a refused call with gRPC's own status (PERMISSION_DENIED naming the caller and the rule);
//! a client drives HTTP/2 over [`ClientTls::connect`] with `h2` offered
//! ([`ClientTlsBuilder::alpn`]). The `grpc_server` and `grpc_client` examples do both.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mutual_tls::{http, AuthorizeLayer, Policy, ServerTls};
//! let tls = ServerTls::from_files("ca.crt", "www.crt", "www.key")?;
//! let hello = http::service_fn(|req| async move {
//!     let who = http::peer_of(&req).map(|p| p.name().to_string()).unwrap_or_default();
//!     Ok(http::text(::http::StatusCode::OK, format!("Hello {who}\n")))
//! });
//! let svc = tower::ServiceBuilder::new()
//!     .layer(AuthorizeLayer::new(Policy::parse(["cn=alice.example.com"])?))
//!     .service(hello);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! http::serve(listener, tls, svc).await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accept;
pub mod client;
pub mod danger;
pub mod explain;
pub mod grpc;
pub mod http;
pub mod identity;
pub mod io;
pub mod layer;
pub mod load;
pub mod matcher;
pub mod policy;
pub mod refusal;
pub mod server;
pub mod sessions;
mod verifier;

pub use accept::{Acceptor, ClientAuth, Established, ServerStream, Terms};
pub use client::{CallError, ClientTls, ClientTlsBuilder, Reply, Target};
pub use explain::CertificateRefused;
pub use identity::PeerIdentity;
pub use io::ServerIo;
pub use layer::{Authorize, AuthorizeLayer};
pub use load::{Identity, LoadError, TrustError, TrustStore};
pub use matcher::{Matcher, MatcherError};
pub use policy::{Denial, DenyAt, DenyAtError, Permit, Policy};
pub use refusal::Refusal;
pub use server::{Accepted, ServerMaterial, ServerTls, ServerTlsBuilder};
pub use verifier::{verify_client_chain, ClientCheck, Observed, TrustCheck};
