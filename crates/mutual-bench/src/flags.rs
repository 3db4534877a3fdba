//! The flags both load generators take, parsed by clap in one place: how many connections, for
//! how long, at what rate, and how to print the result. Each binary flattens [`Load`] into its
//! own flags and parses with [`parse`], which sets its default number of connections.

use std::time::Duration;

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
