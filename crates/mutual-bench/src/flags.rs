//! The flags both load generators take, parsed by clap in one place: how many connections, for
//! how long, at what rate, and how to print the result. Each binary flattens [`Load`] into its
//! own flags and parses with [`parse`], which sets its default number of connections.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, ValueEnum};

/// How much load, and how the result is printed.
#[derive(Debug, Clone, Args)]
pub struct Load {
    /// Concurrent connections, each sending its requests one after the other.
    #[arg(short = 'c', long, visible_alias = "concurrency")]
    #[arg(default_value = "1", value_parser = count)]
    pub connections: usize,
    /// Measured time, in seconds.
    #[arg(short = 'd', long, visible_alias = "secs", default_value = "10", value_parser = seconds)]
    pub duration: Duration,
    /// Fixed total rate, requests per second (default: as fast as the server answers). Latency
    /// is then measured from each request's scheduled time, so a stall is not hidden.
    #[arg(long, value_parser = rate)]
    pub rate: Option<f64>,
    /// How the result is printed: one JSON line, or a few lines for a human.
    #[arg(long, value_enum, default_value_t = Output::Json)]
    pub output: Output,
}

/// How the result is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// One JSON object on one line (what the bench scripts read).
    Json,
    /// Aligned lines, latencies in milliseconds.
    Text,
}

/// `ca-load`'s certificate-lifecycle modes (bench/lifecycle.sh): OCSP requests, renewals over
/// mTLS as agents make them, and revocation-feed subscribers. Without any, `ca-load` sends
/// JSON requests over plain HTTP.
#[derive(Debug, Clone, Args)]
pub struct Lifecycle {
    /// Send this file (a DER OCSP request, e.g. from `openssl ocsp -reqout`) as every body,
    /// `Content-Type: application/ocsp-request`.
    #[arg(long, conflicts_with_all = ["renew", "subscribers"])]
    pub ocsp_request: Option<PathBuf>,
    /// Renew as agents do: over TLS, presenting --cert/--key, the server verified against
    /// --cacert; the body is the renewal request (`{"csr": PEM}`), the path /v1/pki/renew
    /// unless --path says otherwise.
    #[arg(long, requires_all = ["cert", "key", "cacert"], conflicts_with = "subscribers")]
    pub renew: bool,
    /// The client certificate of --renew (leaf first).
    #[arg(long, requires = "renew")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long, requires = "renew")]
    pub key: Option<PathBuf>,
    /// The CAs the server's certificate must chain to, for --renew.
    #[arg(long, requires = "renew")]
    pub cacert: Option<PathBuf>,
    /// Hold this many long-polls of --path (the revocation feed, GET) on as many connections
    /// from this one process, POST --trigger once, and report for each subscriber the time
    /// from that POST until its answer arrived. Bounded by --duration (connecting, then
    /// waiting).
    #[arg(long, value_parser = count, requires = "trigger")]
    pub subscribers: Option<usize>,
    /// The one request every subscriber waits for (e.g. /v1/pki/revoke), POSTed with the body
    /// and the token once all subscribers have sent theirs.
    #[arg(long, requires = "subscribers")]
    pub trigger: Option<String>,
    /// Seconds given to the server to take every subscriber's request before --trigger.
    #[arg(long, default_value = "1", value_parser = seconds_or_zero)]
    pub settle: Duration,
}

/// Parses the process's arguments into `T`, with `connections` as the default of
/// `--connections` (each tool has its own: a proxy is loaded wide, a CA one client at a time).
pub fn parse<T: Parser>(connections: &'static str) -> T {
    parse_from(connections, std::env::args_os()).unwrap_or_else(|e| e.exit())
}

/// [`parse`] over given arguments (the first is the program name).
pub fn parse_from<T, I, A>(connections: &'static str, args: I) -> Result<T, clap::Error>
where
    T: Parser,
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let mut cmd = T::command().mut_arg("connections", |a| a.default_value(connections));
    let matches = cmd.try_get_matches_from_mut(args)?;
    T::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

fn seconds(s: &str) -> Result<Duration, String> {
    match seconds_or_zero(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// Parses a number of seconds that may be zero (a warm-up), for a binary's own flags.
pub fn seconds_or_zero(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..1e9).contains(&v) => Ok(Duration::from_secs_f64(v)),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

fn count(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of connections from 1 to 100000"
        )),
    }
}

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!(
            "{s:?} is not a positive number of requests per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Parser)]
    struct Tool {
        #[command(flatten)]
        load: Load,
    }

    #[derive(Debug, Parser)]
    struct CaTool {
        #[command(flatten)]
        load: Load,
        #[command(flatten)]
        modes: Lifecycle,
    }

    fn ca_tool(args: &[&str]) -> Result<Lifecycle, String> {
        let all = std::iter::once("ca-load").chain(args.iter().copied());
        parse_from::<CaTool, _, _>("1", all)
            .map(|t| t.modes)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn lifecycle_modes_parse_with_what_they_need() {
        let m = ca_tool(&[]).unwrap();
        assert!(m.ocsp_request.is_none() && !m.renew && m.subscribers.is_none());
        assert_eq!(m.settle, Duration::from_secs(1));
        let m = ca_tool(&["--ocsp-request", "req.der"]).unwrap();
        assert_eq!(m.ocsp_request, Some(PathBuf::from("req.der")));
        let m = ca_tool(&["--renew", "--cert", "c", "--key", "k", "--cacert", "ca"]).unwrap();
        assert!(m.renew);
        assert_eq!(m.cacert, Some(PathBuf::from("ca")));
        let m = ca_tool(&[
            "--subscribers",
            "10000",
            "--trigger",
            "/v1/pki/revoke",
            "--settle",
            "0",
        ])
        .unwrap();
        assert_eq!(m.subscribers, Some(10_000));
        assert_eq!(m.trigger.as_deref(), Some("/v1/pki/revoke"));
        assert_eq!(m.settle, Duration::ZERO);
    }

    #[test]
    fn lifecycle_modes_refuse_what_does_not_go_together() {
        for (args, says) in [
            (&["--renew", "--cert", "c"][..], "--key"),
            (&["--cert", "c"], "--renew"),
            (&["--subscribers", "10"], "--trigger"),
            (&["--trigger", "/v1/pki/revoke"], "--subscribers"),
            (
                &["--subscribers", "0", "--trigger", "/x"],
                "\"0\" is not a number of connections",
            ),
            (
                &[
                    "--ocsp-request",
                    "r",
                    "--subscribers",
                    "1",
                    "--trigger",
                    "/x",
                ],
                "cannot be used with",
            ),
        ] {
            let e = ca_tool(args).expect_err(&format!("{args:?} should be refused"));
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }

    fn tool(args: &[&str]) -> Result<Load, String> {
        let all = std::iter::once("tool").chain(args.iter().copied());
        parse_from::<Tool, _, _>("64", all)
            .map(|t| t.load)
            .map_err(|e| e.to_string())
    }

    /// Arguments, then the connections, seconds, rate and output they parse to.
    type Row<'a> = (&'a [&'a str], usize, f64, Option<f64>, Output);

    #[test]
    fn flags_and_their_old_names_parse_to_typed_values() {
        let table: &[Row] = &[
            (&[], 64, 10.0, None, Output::Json),
            (&["-c", "8", "-d", "1.5"], 8, 1.5, None, Output::Json),
            (
                &["--concurrency", "2", "--secs", "3"],
                2,
                3.0,
                None,
                Output::Json,
            ),
            (
                &["--connections", "16", "--rate", "2000", "--output", "text"],
                16,
                10.0,
                Some(2000.0),
                Output::Text,
            ),
        ];
        for (args, connections, secs, rate, output) in table {
            let l = tool(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert_eq!(l.connections, *connections, "{args:?}");
            assert_eq!(l.duration, Duration::from_secs_f64(*secs), "{args:?}");
            assert_eq!(l.rate, *rate, "{args:?}");
            assert_eq!(l.output, *output, "{args:?}");
        }
    }

    #[test]
    fn nonsense_is_refused_naming_the_value() {
        for (args, says) in [
            (&["-c", "0"][..], "\"0\" is not a number of connections"),
            (&["-d", "0"], "\"0\" is not a positive number of seconds"),
            (
                &["-d", "soon"],
                "\"soon\" is not a positive number of seconds",
            ),
            (
                &["--rate", "0"],
                "\"0\" is not a positive number of requests",
            ),
            (&["--output", "xml"], "xml"),
        ] {
            let e = tool(args).expect_err(&format!("{args:?} should be refused"));
            assert!(e.contains(says), "{args:?}: {e}");
        }
    }
}
