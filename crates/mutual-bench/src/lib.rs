//! `mutual-bench`: the load generators of mutual's benchmarks, and what they share. Two
//! binaries: `proxy-load` puts mTLS HTTP/1.1 load on a proxy or any TLS server
//! (`bench/proxy.sh`; wrk cannot present a client certificate), `ca-load` puts Vault-API load on
//! a CA server (`bench/ca-server.sh`). Both take the same load flags ([`flags::Load`]), keep
//! the same tally ([`report::Tally`], latencies in [`latency::Latencies`]) and print the same
//! one-line JSON report ([`report::Report`]). Not a general HTTP client: the servers must answer
//! with `Content-Length` (or chunked, for `ca-load`), and only loopback is meant.
//!
//! ```no_run
//! let mut c = mutual_bench::Conn::open("127.0.0.1:8200").unwrap();
//! let (status, body) = c.request("GET", "/v1/sys/health", None, b"").unwrap();
//! assert_eq!(status, 200);
//! # let _ = body;
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conn;
pub mod flags;
pub mod latency;
pub mod pace;
pub mod report;

pub use conn::Conn;
