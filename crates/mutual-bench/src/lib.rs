//! `mutual-bench`: the load generators of mutual's benchmarks, and what they share. Three
//! binaries: `proxy-load` puts mTLS HTTP/1.1 load on a proxy or any TLS server
//! (`bench/proxy.sh`; wrk cannot present a client certificate), `ca-load` puts Vault-API load on
//! a CA server (`bench/ca-server.sh`), `acme-load` makes ACME issuances end to end
//! (`bench/acme.sh`). All take the same load flags ([`flags::Load`]), keep the same tally
//! ([`report::Tally`], latencies in [`latency::Latencies`]) and print the same one-line JSON
//! report ([`report::Report`]). Not a general HTTP client: the servers must answer with
//! `Content-Length` (or chunked, for `ca-load` and `acme-load`), and only loopback is meant.
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

pub use conn::{Conn, Wait};

/// Ends the process when `result` is an error: one line on stderr, `TOOL: what: why`, exit
/// code 1. A cause whose text the line already holds is not repeated (mutual-tls's load errors
/// name their IO error and also return it as their source).
pub fn exit_on_error(tool: &str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("{tool}: {}", one_line(&e));
        std::process::exit(1);
    }
}

fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    #[test]
    fn an_error_is_one_line_without_repeats() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let table = [
            (anyhow::Error::new(io()), "no such file"),
            (
                Err::<(), _>(io())
                    .context("reading --body-file x")
                    .unwrap_err(),
                "reading --body-file x: no such file",
            ),
            (
                Err::<(), _>(io())
                    .context("reading --cert a: no such file")
                    .unwrap_err(),
                "reading --cert a: no such file",
            ),
            (anyhow::anyhow!("two\nlines"), "two lines"),
        ];
        for (e, want) in table {
            assert_eq!(super::one_line(&e), want);
        }
    }
}
