//! What a load run counted, and the one report both tools print: a JSON line for the bench
//! scripts (`rps`, `p99_us`, `errors`, … as `bench/proxy.sh` and `bench/ca-server.sh` read
//! them) or a few lines for a human.

use std::fmt::Display;
use std::time::Duration;

use serde_json::{json, Value};

use crate::flags::{Load, Output};
use crate::latency::Latencies;

/// Longest error text kept in a report.
const ERROR_CHARS: usize = 200;

/// The outcomes of the measured requests of one worker, or of all once merged.
#[derive(Debug, Default)]
pub struct Tally {
    /// Requests answered 2xx; only these have a latency.
    pub ok: u64,
    /// Requests answered with another status.
    pub non2xx: u64,
    /// Requests that got no answer (connection, TLS or HTTP failure).
    pub errors: u64,
    /// The first non-2xx answer or error, to say what went wrong.
    pub first_error: Option<String>,
    /// Latencies of the 2xx answers.
    pub latencies: Latencies,
}

impl Tally {
    /// A 2xx answer after `latency`.
    pub fn ok(&mut self, latency: Duration) {
        self.ok += 1;
        self.latencies.record(latency);
    }

    /// An answer with a status other than 2xx; `body` is kept (shortened) with the first one.
    pub fn non2xx(&mut self, status: u16, body: &str) {
        self.non2xx += 1;
        self.first_error.get_or_insert_with(|| {
            let body = body.trim();
            if body.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {}", shorten(body))
            }
        });
    }

    /// A request that got no answer.
    pub fn error(&mut self, e: impl Display) {
        self.errors += 1;
        self.first_error
            .get_or_insert_with(|| shorten(&e.to_string()));
    }

    /// Adds another worker's tally; the first error seen stays.
    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.non2xx += other.non2xx;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.merge(other.latencies);
    }
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The result of one run.
#[derive(Debug)]
pub struct Report<'a> {
    /// `keepalive`, or `new_conn` (a full handshake per request).
    pub mode: &'static str,
    /// The load that was asked for.
    pub load: &'a Load,
    /// The time the rate is computed over.
    pub seconds: f64,
    /// What happened.
    pub tally: Tally,
}

impl Report<'_> {
    /// Requests answered 2xx per second.
    pub fn rps(&self) -> f64 {
        if self.seconds > 0.0 {
            self.tally.ok as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The JSON object the bench scripts read.
    pub fn json(&self) -> Value {
        let l = self.tally.latencies.summary();
        json!({
            "mode": self.mode,
            "connections": self.load.connections,
            "rate": self.load.rate,
            "seconds": self.seconds,
            "ok": self.tally.ok,
            "non2xx": self.tally.non2xx,
            "errors": self.tally.errors,
            "first_error": self.tally.first_error,
            "rps": self.rps(),
            "p50_us": l.p50,
            "p90_us": l.p90,
            "p99_us": l.p99,
            "p999_us": l.p999,
            "max_us": l.max,
        })
    }

    /// Lines for a human.
    pub fn text(&self) -> String {
        let l = self.tally.latencies.summary();
        let ms = |us: u32| us as f64 / 1000.0;
        let rate = match self.load.rate {
            Some(r) => format!("at {r} req/s"),
            None => "as fast as answered".to_string(),
        };
        let mut out = format!(
            "{} {} connection(s), {rate}\n\
             {} ok in {:.1} s: {:.1} req/s; {} non-2xx, {} errors\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
            self.mode,
            self.load.connections,
            self.tally.ok,
            self.seconds,
            self.rps(),
            self.tally.non2xx,
            self.tally.errors,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
        );
        if let Some(e) = &self.tally.first_error {
            out.push_str(&format!("first error: {e}\n"));
        }
        out
    }

    /// The report as `--output` asks, ending with a newline.
    pub fn render(&self) -> String {
        match self.load.output {
            Output::Json => format!("{}\n", self.json()),
            Output::Text => self.text(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(output: Output) -> Load {
        Load {
            connections: 4,
            duration: Duration::from_secs(2),
            rate: Some(100.0),
            output,
        }
    }

    fn tally() -> Tally {
        let mut a = Tally::default();
        a.ok(Duration::from_micros(1500));
        a.non2xx(403, "you cannot be here bob.example.com\n");
        let mut b = Tally::default();
        b.ok(Duration::from_micros(500));
        b.error("connection reset");
        b.non2xx(500, "");
        a.merge(b);
        a
    }

    #[test]
    fn the_json_line_carries_what_the_scripts_read() {
        let l = load(Output::Json);
        let r = Report {
            mode: "keepalive",
            load: &l,
            seconds: 2.0,
            tally: tally(),
        };
        let v: Value = serde_json::from_str(r.render().trim_end()).unwrap();
        for (key, want) in [
            ("mode", json!("keepalive")),
            ("connections", json!(4)),
            ("rate", json!(100.0)),
            ("seconds", json!(2.0)),
            ("ok", json!(2)),
            ("non2xx", json!(2)),
            ("errors", json!(1)),
            (
                "first_error",
                json!("HTTP 403: you cannot be here bob.example.com"),
            ),
            ("rps", json!(1.0)),
            ("p50_us", json!(1500)),
            ("p99_us", json!(1500)),
            ("max_us", json!(1500)),
        ] {
            assert_eq!(v[key], want, "{key} in {v}");
        }
        assert!(r.render().ends_with("}\n"));
    }

    #[test]
    fn the_text_says_the_same_for_a_human() {
        let l = load(Output::Text);
        let r = Report {
            mode: "new_conn",
            load: &l,
            seconds: 2.0,
            tally: tally(),
        };
        assert_eq!(
            r.render(),
            "new_conn 4 connection(s), at 100 req/s\n\
             2 ok in 2.0 s: 1.0 req/s; 2 non-2xx, 1 errors\n\
             latency ms: p50 1.500  p90 1.500  p99 1.500  p99.9 1.500  max 1.500\n\
             first error: HTTP 403: you cannot be here bob.example.com\n"
        );
    }

    #[test]
    fn errors_are_kept_short_and_the_first_wins() {
        let mut t = Tally::default();
        t.error("x".repeat(500));
        t.error("second");
        let e = t.first_error.unwrap();
        assert_eq!(e.chars().count(), ERROR_CHARS + 1);
        assert!(e.ends_with('…'));
        assert_eq!(t.errors, 2);
    }
}
