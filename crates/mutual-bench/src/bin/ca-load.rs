//! `ca-load`: Vault-API load on a CA server, for `bench/ca-server.sh`. Sends one request
//! (method, path, JSON body) over and over from `-c` client threads, each with its own
//! keep-alive connection, for `-d` seconds or `-n` requests, closed-loop or at `--rate`, and
//! prints one JSON line (`--output text` for a human).
//!
//! `--body-lines FILE` sends each line of FILE once as a body (e.g. one revoke per serial);
//! `--print-serials` prints the serial of every certificate issued, one a line, and the
//! report on stderr.
//!
//! The certificate-lifecycle modes (`bench/lifecycle.sh`): `--ocsp-request FILE` posts a DER
//! OCSP request; `--renew --cert --key --cacert` renews over mTLS as agents do (one TLS
//! connection per client, kept alive); `--subscribers N --trigger PATH` holds N long-polls of
//! the revocation feed, POSTs one revocation, and reports when each subscriber heard of it.
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

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use mutual_bench::flags::{self, Lifecycle, Load};
use mutual_bench::pace::{self, Schedule};
use mutual_bench::report::{Report, Tally};
use mutual_bench::{Conn, Wait};
use mutual_tls::{Identity, TrustStore};
use rustls::{pki_types::ServerName, sign::SingleCertAndKey, ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Vault-API load on a CA server.
#[derive(Debug, Parser)]
#[command(name = "ca-load", version)]
struct Args {
    /// The server, `HOST:PORT` (an `http://` prefix is dropped); several, comma-separated, are
    /// nodes of one CA: client threads start spread over them and a client whose node fails
    /// (a connection error or a 5xx) moves to the next, as mutual's own clients do.
    #[arg(long, default_value = "127.0.0.1:8200")]
    addr: String,
    /// Sent as X-Vault-Token.
    #[arg(long)]
    token: Option<String>,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "POST")]
    method: String,
    /// Request path, e.g. `/v1/pki/issue/ec` (with --renew, /v1/pki/renew by default).
    #[arg(long, required_unless_present = "renew")]
    path: Option<String>,
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
    /// Wait for answers without sleeping: non-blocking sockets, each client thread yielding
    /// its core until its answer is there. On loopback the server's core wakes a sleeping
    /// client (13% of an OCSP answer's cost); across a network it would not. Needs a core of
    /// its own (taskset): the client threads keep it busy.
    #[arg(long, conflicts_with = "subscribers")]
    spin: bool,
    #[command(flatten)]
    load: Load,
    #[command(flatten)]
    modes: Lifecycle,
}

/// What every client thread sends.
struct Job {
    /// The first node: the one address of the modes other than plain load.
    addr: String,
    /// Every node, in the order given.
    nodes: Vec<String>,
    token: Option<String>,
    method: String,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    /// With --body-lines: one body per request, each used once.
    lines: Vec<Vec<u8>>,
    requests: u64,
    print_serials: bool,
    /// With --renew: the client's TLS config and the name the server must hold.
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// How client threads wait for answers (--spin).
    wait: Wait,
}

impl Job {
    fn open_at(&self, addr: &str) -> std::io::Result<Conn> {
        Conn::connect(addr, self.tls.clone(), self.wait)
    }
}

/// The TLS client of --renew: the identity and roots read by mutual-tls, as every mutual
/// client reads them; one config shared by every connection.
fn tls_config(m: &Lifecycle) -> Result<Arc<ClientConfig>> {
    let (Some(cert), Some(key), Some(ca)) = (&m.cert, &m.key, &m.cacert) else {
        bail!("--renew needs --cert, --key and --cacert");
    };
    let identity = Identity::from_files(cert, key)?;
    let mut c = ClientConfig::builder_with_provider(mutual_tls::load::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(TrustStore::from_file(ca)?.roots)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified)));
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

fn job(a: &Args) -> Result<Job> {
    let read = |p: &PathBuf, flag: &str| {
        std::fs::read(p).with_context(|| format!("reading {flag} {}", p.display()))
    };
    let body = match (&a.body, &a.body_file, &a.modes.ocsp_request) {
        (_, _, Some(f)) => read(f, "--ocsp-request")?,
        (Some(b), _, _) => b.clone().into_bytes(),
        (None, Some(f), _) => read(f, "--body-file")?,
        (None, None, _) => Vec::new(),
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
    let nodes: Vec<String> = a
        .addr
        .split(',')
        .map(|n| {
            n.trim()
                .trim_start_matches("http://")
                .trim_start_matches("https://")
                .to_string()
        })
        .filter(|n| !n.is_empty())
        .collect();
    let Some(addr) = nodes.first().cloned() else {
        bail!("--addr: no address");
    };
    let tls = if a.modes.renew {
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
        let name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
            .map_err(|_| anyhow!("--addr {addr:?}: {host:?} is not a host name or address"))?;
        Some((tls_config(&a.modes)?, name))
    } else {
        None
    };
    let path = match (&a.path, a.modes.renew) {
        (Some(p), _) => p.clone(),
        (None, true) => "/v1/pki/renew".to_string(),
        (None, false) => bail!("--path is required"),
    };
    Ok(Job {
        addr,
        nodes,
        token: a.token.clone(),
        method: a.method.clone(),
        path,
        content_type: if a.modes.ocsp_request.is_some() {
            "application/ocsp-request"
        } else {
            "application/json"
        },
        body,
        requests: if lines.is_empty() {
            a.requests
        } else {
            lines.len() as u64
        },
        lines,
        print_serials: a.print_serials,
        tls,
        wait: if a.spin { Wait::Spin } else { Wait::Sleep },
    })
}

/// One client thread: its own connection, requests until `stop` or the count is reached.
fn client(
    j: &Job,
    first_node: usize,
    schedule: Option<Schedule>,
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> (Tally, Vec<String>) {
    let mut tally = Tally::default();
    let mut serials = Vec::new();
    let mut schedule = schedule;
    let mut conn = None;
    let mut node = first_node % j.nodes.len();
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
            None => match j.open_at(&j.nodes[node]) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tally.error(format!("connecting to {}: {e}", j.nodes[node]));
                    node = (node + 1) % j.nodes.len();
                    // Do not spin on a server that is not there.
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match c.request_as(&j.method, &j.path, j.token.as_deref(), j.content_type, body) {
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
            Ok((code, body)) => {
                tally.non2xx(code, &String::from_utf8_lossy(&body));
                if code >= 500 {
                    node = (node + 1) % j.nodes.len();
                    conn = None;
                }
            }
            Err(e) => {
                tally.error(e);
                node = (node + 1) % j.nodes.len();
                conn = None;
            }
        }
    }
    (tally, serials)
}

fn run(a: Args) -> Result<()> {
    let j = Arc::new(job(&a)?);
    if let (Some(n), Some(trigger)) = (a.modes.subscribers, &a.modes.trigger) {
        return subscribers(&a, &j, n, trigger);
    }
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
            std::thread::spawn(move || client(&j, i, schedule, &stop, &sent))
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
        mode: if a.modes.renew {
            "renew"
        } else if a.modes.ocsp_request.is_some() {
            "ocsp"
        } else {
            "keepalive"
        },
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

/// What one subscriber saw: when its answer was complete, and whether it listed a revocation.
type Heard = std::result::Result<(Instant, bool), String>;

/// One subscriber: connect (at most `connecting` at once), send the long-poll, count it as
/// sent, then read the one answer.
async fn subscribe(
    addr: Arc<String>,
    request: Arc<Vec<u8>>,
    connecting: Arc<tokio::sync::Semaphore>,
    sent: Arc<AtomicU64>,
) -> Heard {
    let mut stream = {
        let _permit = connecting.acquire().await.map_err(|e| e.to_string())?;
        let mut s = tokio::net::TcpStream::connect(addr.as_str())
            .await
            .map_err(|e| format!("connecting to {addr}: {e}"))?;
        s.write_all(&request)
            .await
            .map_err(|e| format!("sending the long-poll: {e}"))?;
        s
    };
    sent.fetch_add(1, Ordering::Relaxed);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let mut chunk = [0u8; 4096];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("reading the answer: {e}"))?;
        if n == 0 {
            return Err("the server closed the long-poll without an answer".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(done) = answer_complete(&buf) {
            let at = Instant::now();
            if !done.starts_with(b"HTTP/1.1 2") {
                let line = String::from_utf8_lossy(&done[..done.len().min(120)]).into_owned();
                return Err(format!("the feed answered {line:?}"));
            }
            // An entry of the feed carries a "seq"; an answer at the deadline has none.
            let listed = done.windows(6).any(|w| w == b"\"seq\":");
            return Ok((at, listed));
        }
    }
}

/// The whole answer when `buf` holds all of it (`Content-Length`, or the end of a chunked
/// body).
fn answer_complete(buf: &[u8]) -> Option<&[u8]> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let length = head.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    match length {
        Some(n) if buf.len() >= end + n => Some(&buf[..end + n]),
        Some(_) => None,
        None if buf.ends_with(b"0\r\n\r\n") => Some(buf),
        None => None,
    }
}

/// `--subscribers N --trigger PATH`: N long-polls held by this process, one POST, and the time
/// from that POST until each subscriber's answer, as one report (`ok` = subscribers that heard
/// of the revocation; latencies from the trigger). Connecting and waiting are each bounded by
/// --duration.
fn subscribers(a: &Args, j: &Job, n: usize, trigger: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let bound = a.load.duration;
    let request = Arc::new(
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            j.path, j.addr
        )
        .into_bytes(),
    );
    let start = Instant::now();
    let (tally, trigger_status) = rt.block_on(async {
        let addr = Arc::new(j.addr.clone());
        let connecting = Arc::new(tokio::sync::Semaphore::new(256));
        let sent = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                tokio::spawn(subscribe(
                    addr.clone(),
                    request.clone(),
                    connecting.clone(),
                    sent.clone(),
                ))
            })
            .collect();
        let deadline = Instant::now() + bound;
        while (sent.load(Ordering::Relaxed) as usize) < n
            && Instant::now() < deadline
            && !tasks.iter().all(|t| t.is_finished())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(a.modes.settle).await;
        let (addr, path, token, body) = (
            j.addr.clone(),
            trigger.to_string(),
            j.token.clone(),
            j.body.clone(),
        );
        let fired = Instant::now();
        let status = tokio::task::spawn_blocking(move || {
            Conn::open(&addr)?.request("POST", &path, token.as_deref(), &body)
        })
        .await;
        let status = match status {
            Ok(Ok((code, _))) if code / 100 == 2 => Ok(()),
            Ok(Ok((code, body))) => Err(format!(
                "--trigger answered {code}: {}",
                String::from_utf8_lossy(&body).trim()
            )),
            Ok(Err(e)) => Err(format!("--trigger: {e}")),
            Err(e) => Err(format!("--trigger: {e}")),
        };
        let until = tokio::time::Instant::from_std(fired + bound);
        let mut tally = Tally::default();
        for t in tasks {
            match tokio::time::timeout_at(until, t).await {
                Ok(Ok(Ok((at, true)))) if at >= fired => tally.ok(at - fired),
                Ok(Ok(Ok((_, true)))) => tally.error("answered before the trigger was sent"),
                Ok(Ok(Ok((_, false)))) => tally.error("the long-poll ended with no revocation"),
                Ok(Ok(Err(e))) => tally.error(e),
                Ok(Err(e)) => tally.error(format!("a subscriber failed: {e}")),
                Err(_) => tally.error("no answer within --duration of the trigger"),
            }
        }
        (tally, status)
    });
    if let Err(e) = trigger_status {
        bail!("{e}");
    }
    let report = Report {
        mode: "subscribers",
        load: &a.load,
        seconds: start.elapsed().as_secs_f64(),
        tally,
    };
    match a.load.output {
        flags::Output::Json => {
            let mut v = report.json();
            v["subscribers"] = serde_json::json!(n);
            println!("{v}");
        }
        flags::Output::Text => print!("{n} subscribers\n{}", report.text()),
    }
    Ok(())
}

fn main() {
    mutual_bench::exit_on_error("ca-load", run(flags::parse("1")));
}

#[cfg(test)]
mod tests {
    use super::answer_complete;

    #[test]
    fn a_feed_answer_is_complete_only_when_all_of_it_arrived() {
        let full = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let table: &[(&[u8], Option<usize>)] = &[
            (full, Some(full.len())),
            (&full[..full.len() - 1], None),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n", None),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Some(38)),
            (chunked, Some(chunked.len())),
            (&chunked[..chunked.len() - 2], None),
        ];
        for (buf, want) in table {
            assert_eq!(
                answer_complete(buf).map(<[u8]>::len),
                *want,
                "{}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}
