//! `proxy-load`: mTLS HTTP/1.1 load on a proxy or any TLS server, for `bench/proxy.sh`
//! (wrk cannot present a client certificate).
//!
//! Modes: keep-alive (each connection sends requests back to back), `--new-conn` (a new TCP
//! connection and a full TLS handshake per request, no resumption), and `--rate R` (a fixed
//! total request rate, latency measured from each request's due time). TLS 1.3 only. It prints
//! one JSON line (`--output text` for a human). Responses must carry Content-Length.
//!
//! `proxy-load https://localhost:8443/ --connect 127.0.0.1:8443 --ca ca.crt --cert alice.crt --key alice.key -c 64 -d 10`
#![forbid(unsafe_code)]

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use mutual_bench::flags::{self, Load};
use mutual_bench::pace::{self, Schedule};
use mutual_bench::report::{Report, Tally};
use mutual_tls::{Identity, TrustStore};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// mTLS HTTP/1.1 load on a TLS server.
#[derive(Debug, Parser)]
#[command(name = "proxy-load", version)]
struct Args {
    /// `https://HOST:PORT/PATH`; HOST is the TLS server name and the Host header.
    url: String,
    /// Connect here instead of resolving HOST (`127.0.0.1:8443`).
    #[arg(long)]
    connect: Option<String>,
    /// CA bundle the server's certificate must chain to.
    #[arg(long, required_unless_present = "no_verify")]
    ca: Option<PathBuf>,
    /// Our certificate chain.
    #[arg(long)]
    cert: PathBuf,
    /// Our private key.
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    load: Load,
    /// Unmeasured warm-up time, in seconds.
    #[arg(long, default_value = "1", value_parser = flags::seconds_or_zero)]
    warmup: Duration,
    /// A new connection and full handshake per request.
    #[arg(long)]
    new_conn: bool,
    /// Do not verify the server's certificate (keeps the generator's CPU for the load).
    #[arg(long)]
    no_verify: bool,
    /// Instead of load: open this many connections (64 handshakes at a time), one request on
    /// each, print one JSON line when all are open, and hold them idle for `-d` seconds (the
    /// server's memory with that many idle callers is then read from outside).
    #[arg(long, conflicts_with_all = ["new_conn", "rate"])]
    hold: Option<usize>,
}

/// Accepts any server certificate: `--no-verify`, so that a handshake costs the generator only
/// its own signature and the measured figure is the server's.
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The files are read by mutual-tls, as every mutual client reads them (same checks, same
/// one-line errors); the config is built once and shared by every connection, so the hot loop
/// only clones an `Arc`. mutual-tls's own `ClientTls` is not used: it builds a config per
/// connection to record what each handshake showed, which a load generator does not want.
fn config(a: &Args) -> Result<ClientConfig> {
    let provider = mutual_tls::load::provider();
    let identity = Identity::from_files(&a.cert, &a.key)?;
    let b = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let b = match (&a.ca, a.no_verify) {
        (Some(ca), false) => b.with_root_certificates(TrustStore::from_file(ca)?.roots),
        _ => b
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider))),
    };
    let mut c = b.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(identity.certified)));
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c.resumption = rustls::client::Resumption::disabled();
    Ok(c)
}

struct Target {
    host: String,
    addr: String,
    request: Vec<u8>,
}

fn target(a: &Args) -> Result<Target> {
    let rest = a
        .url
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("the URL is https://HOST:PORT/PATH"))?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = auth
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(auth)
        .to_string();
    let addr = a.connect.clone().unwrap_or_else(|| {
        if auth.contains(':') {
            auth.to_string()
        } else {
            format!("{auth}:443")
        }
    });
    let request = format!("GET {path} HTTP/1.1\r\nHost: {auth}\r\nUser-Agent: proxy-load\r\n\r\n")
        .into_bytes();
    Ok(Target {
        host,
        addr,
        request,
    })
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(t: &Target, c: &TlsConnector) -> io::Result<Tls> {
    let tcp = TcpStream::connect(&t.addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(t.host.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    c.connect(name, tcp).await
}

/// Sends one request and reads one response; returns the status.
async fn exchange(s: &mut Tls, req: &[u8], buf: &mut Vec<u8>) -> io::Result<u16> {
    s.write_all(req).await?;
    buf.clear();
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let mut chunk = [0u8; 16384];
    let head_end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed before a response"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(bad("response head too large"));
        }
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("response head not UTF-8"))?;
    let status: u16 = head
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .ok_or_else(|| bad("response without Content-Length"))?;
    let mut have = buf.len() - head_end;
    while have < len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed inside the body"));
        }
        have += n;
    }
    Ok(status)
}

/// The run's time line: warm-up from `start`, measured from `measure_from` until `end`.
#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    measure_from: Instant,
    end: Instant,
}

async fn worker(i: usize, a: Arc<Args>, t: Arc<Target>, c: TlsConnector, w: Window) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Tls> = None;
    let mut buf = Vec::with_capacity(16384);
    let mut schedule = a
        .load
        .rate
        .map(|r| Schedule::new(w.start, r, i, a.load.connections));
    loop {
        let scheduled = match &mut schedule {
            Some(s) => {
                let due = s.next_due();
                pace::until(due).await;
                due
            }
            None => Instant::now(),
        };
        if scheduled >= w.end {
            break;
        }
        let result = async {
            if conn.is_none() || a.new_conn {
                conn = Some(connect(&t, &c).await?);
            }
            let s = conn
                .as_mut()
                .ok_or_else(|| io::Error::other("no connection"))?;
            exchange(s, &t.request, &mut buf).await
        }
        .await;
        let done = Instant::now();
        if a.new_conn {
            if let Some(mut s) = conn.take() {
                let _ = s.shutdown().await;
            }
        }
        if scheduled < w.measure_from {
            if result.is_err() {
                conn = None;
            }
            continue;
        }
        match result {
            Ok(status) if (200..300).contains(&status) => tally.ok(done - scheduled),
            Ok(status) => tally.non2xx(status, ""),
            Err(e) => {
                tally.error(e);
                conn = None;
                // Do not spin on a refusing server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

/// `--hold N`: N idle connections, each after one answered request; returns how many are open
/// and the first error of those that are not.
async fn hold(n: usize, t: Arc<Target>, c: TlsConnector) -> (Vec<Tls>, usize, Option<String>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let (t, c, gate) = (Arc::clone(&t), c.clone(), Arc::clone(&gate));
        tasks.spawn(async move {
            let _turn = gate.acquire_owned().await.map_err(io::Error::other)?;
            let mut s = connect(&t, &c).await?;
            let mut buf = Vec::with_capacity(1024);
            match exchange(&mut s, &t.request, &mut buf).await? {
                200..=299 => Ok(s),
                status => Err(io::Error::other(format!("answered {status}"))),
            }
        });
    }
    let (mut open, mut failed, mut first) = (Vec::with_capacity(n), 0, None);
    while let Some(r) = tasks.join_next().await {
        match r.map_err(io::Error::other).and_then(|r| r) {
            Ok(s) => open.push(s),
            Err(e) => {
                failed += 1;
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }
    (open, failed, first)
}

fn run(a: Args) -> Result<()> {
    let a = Arc::new(a);
    let t = Arc::new(target(&a)?);
    let c = TlsConnector::from(Arc::new(config(&a)?));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    if let Some(n) = a.hold {
        return rt.block_on(async {
            let start = Instant::now();
            let (open, failed, first) = hold(n, t, c).await;
            println!(
                "{}",
                serde_json::json!({
                    "mode": "hold",
                    "held": open.len(),
                    "errors": failed,
                    "first_error": first,
                    "open_secs": start.elapsed().as_secs_f64(),
                })
            );
            tokio::time::sleep(a.load.duration).await;
            drop(open);
            Ok(())
        });
    }
    let total = rt.block_on(async {
        let start = Instant::now();
        let measure_from = start + a.warmup;
        let w = Window {
            start,
            measure_from,
            end: measure_from + a.load.duration,
        };
        let tasks: Vec<_> = (0..a.load.connections)
            .map(|i| tokio::spawn(worker(i, a.clone(), t.clone(), c.clone(), w)))
            .collect();
        let mut total = Tally::default();
        for task in tasks {
            total.merge(task.await.context("a worker failed")?);
        }
        Ok::<_, anyhow::Error>(total)
    })?;
    let report = Report {
        mode: if a.new_conn { "new_conn" } else { "keepalive" },
        load: &a.load,
        seconds: a.load.duration.as_secs_f64(),
        tally: total,
    };
    print!("{}", report.render());
    Ok(())
}

fn main() {
    mutual_bench::exit_on_error("proxy-load", run(flags::parse("64")));
}
