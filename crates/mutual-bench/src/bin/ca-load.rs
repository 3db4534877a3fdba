//! `ca-load`: Vault-API load on a CA server, for `bench/ca-server.sh`. Sends one request
//! (method, path, JSON body) over and over from `-c` client threads, each with its own
//! keep-alive connection, for `-d` seconds or `-n` requests, closed-loop or at `--rate`, and
//! prints one JSON line (`--output text` for a human).
//!
//! `--body-lines FILE` sends each line of FILE once as a body (e.g. one revoke per serial);
//! `--print-serials` prints the serial of every certificate issued, one a line, and the
//! report on stderr.
//!
//! `ca-load --addr 127.0.0.1:8200 --token root --path /v1/pki/issue/ec --body '{"common_name":"a.example.com"}' -c 8 -d 10`
#![forbid(unsafe_code)]

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mutual_bench::flags::{self, Load};
use mutual_bench::pace::{self, Schedule};
use mutual_bench::report::{Report, Tally};
use mutual_bench::Conn;

/// Vault-API load on a CA server.
#[derive(Debug, Parser)]
#[command(name = "ca-load", version)]
struct Args {
    /// The server, `HOST:PORT` (an `http://` prefix is dropped).
    #[arg(long, default_value = "127.0.0.1:8200")]
    addr: String,
    /// Sent as X-Vault-Token.
    #[arg(long)]
    token: Option<String>,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "POST")]
    method: String,
    /// Request path, e.g. `/v1/pki/issue/ec`.
    #[arg(long)]
    path: String,
    /// JSON body of every request.
    #[arg(long, conflicts_with = "body_file")]
    body: Option<String>,
    /// File holding the JSON body of every request.
    #[arg(long)]
    body_file: Option<PathBuf>,
    /// File with one JSON body a line, each sent once (sets --requests to the number of lines).
    #[arg(long, conflicts_with_all = ["body", "body_file"])]
    body_lines: Option<PathBuf>,
    /// Stop after this many requests instead of after --duration (0: no limit).
    #[arg(short = 'n', long, default_value_t = 0)]
    requests: u64,
    /// Print the serial number of every certificate issued, one a line; the report goes to
    /// stderr.
    #[arg(long)]
    print_serials: bool,
    #[command(flatten)]
    load: Load,
}

/// What every client thread sends.
struct Job {
    addr: String,
    token: Option<String>,
    method: String,
    path: String,
    body: Vec<u8>,
    /// With --body-lines: one body per request, each used once.
    lines: Vec<Vec<u8>>,
    requests: u64,
    print_serials: bool,
}

fn job(a: &Args) -> Result<Job> {
    let read = |p: &PathBuf, flag: &str| {
        std::fs::read(p).with_context(|| format!("reading {flag} {}", p.display()))
    };
    let body = match (&a.body, &a.body_file) {
        (Some(b), _) => b.clone().into_bytes(),
        (None, Some(f)) => read(f, "--body-file")?,
        (None, None) => Vec::new(),
    };
    let lines: Vec<Vec<u8>> = match &a.body_lines {
        Some(f) => String::from_utf8_lossy(&read(f, "--body-lines")?)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.as_bytes().to_vec())
            .collect(),
        None => Vec::new(),
    };
    if a.body_lines.is_some() && lines.is_empty() {
        bail!("--body-lines: no line to send");
    }
    Ok(Job {
        addr: a.addr.trim_start_matches("http://").to_string(),
        token: a.token.clone(),
        method: a.method.clone(),
        path: a.path.clone(),
        body,
        requests: if lines.is_empty() {
            a.requests
        } else {
            lines.len() as u64
        },
        lines,
        print_serials: a.print_serials,
    })
}

/// One client thread: its own connection, requests until `stop` or the count is reached.
fn client(
    j: &Job,
    schedule: Option<Schedule>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> (Tally, Vec<String>) {
    let mut tally = Tally::default();
    let mut serials = Vec::new();
    let mut schedule = schedule;
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        let n = sent.fetch_add(1, Ordering::Relaxed);
        if j.requests > 0 && n >= j.requests {
            break;
        }
        let body = j.lines.get(n as usize).unwrap_or(&j.body);
        let start = match &mut schedule {
            Some(s) => {
                let due = s.next_due();
                pace::until_blocking(due);
                due
            }
            None => Instant::now(),
        };
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::open(&j.addr) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tally.error(format!("connecting to {}: {e}", j.addr));
                    // Do not spin on a server that is not there.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match c.request(&j.method, &j.path, j.token.as_deref(), body) {
            Ok((code, body)) if code / 100 == 2 => {
                tally.ok(start.elapsed());
                if j.print_serials {
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        if let Some(s) = v["data"]["serial_number"].as_str() {
                            serials.push(s.to_string());
                        }
                    }
                }
            }
            Ok((code, body)) => tally.non2xx(code, &String::from_utf8_lossy(&body)),
            Err(e) => {
                tally.error(e);
                conn = None;
            }
        }
    }
    (tally, serials)
}

fn run(a: Args) -> Result<()> {
    let j = Arc::new(job(&a)?);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let threads: Vec<_> = (0..a.load.connections)
        .map(|i| {
            let (j, stop, sent) = (j.clone(), stop.clone(), sent.clone());
            let schedule = a
                .load
                .rate
                .map(|r| Schedule::new(start, r, i, a.load.connections));
            std::thread::spawn(move || client(&j, schedule, &stop, &sent))
        })
        .collect();
    if j.requests == 0 {
        std::thread::sleep(a.load.duration);
        stop.store(true, Ordering::Relaxed);
    }
    let mut total = Tally::default();
    for t in threads {
        let Ok((tally, serials)) = t.join() else {
            bail!("a client thread panicked");
        };
        total.merge(tally);
        for s in serials {
            println!("{s}");
        }
    }
    let report = Report {
        mode: "keepalive",
        load: &a.load,
        seconds: start.elapsed().as_secs_f64(),
        tally: total,
    };
    if j.print_serials {
        eprint!("{}", report.render());
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn main() {
    mutual_bench::exit_on_error("ca-load", run(flags::parse("1")));
}
