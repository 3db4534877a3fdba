//! `mutual-load`: a small load generator for mTLS HTTP/1.1 servers, written for
//! `bench/proxy.sh` because wrk cannot present a client certificate.
//!
//! Modes: keep-alive (each connection sends requests back to back), `--new-conn` (a new TCP
//! connection and a full TLS handshake per request, no resumption), and `--rate R` (a fixed
//! total request rate; latency is measured from each request's scheduled time, so a stalled
//! server is not hidden by coordinated omission). TLS 1.3 only. It prints one JSON line.
//! It is a benchmark tool, not a general HTTP client: responses must carry Content-Length.
#![forbid(unsafe_code)]

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Load generator for mTLS HTTP/1.1 servers.
#[derive(Debug, Parser)]
#[command(name = "mutual-load", version)]
struct Args {
    /// `https://HOST:PORT/PATH`; HOST is the TLS server name and the Host header.
    url: String,
    /// Connect here instead of resolving HOST (`127.0.0.1:8443`).
    #[arg(long)]
    connect: Option<String>,
    /// CA bundle the server's certificate must chain to.
    #[arg(long)]
    ca: PathBuf,
    /// Our certificate chain.
    #[arg(long)]
    cert: PathBuf,
    /// Our private key.
    #[arg(long)]
    key: PathBuf,
    /// Concurrent connections.
    #[arg(short = 'c', long, default_value_t = 64)]
    connections: usize,
    /// Measured time, in seconds.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warm-up time, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// A new connection and full handshake per request.
    #[arg(long)]
    new_conn: bool,
    /// Fixed total rate in requests per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Do not verify the server's certificate (keeps the generator's CPU for the load).
    #[arg(long)]
    no_verify: bool,
}

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

fn config(a: &Args) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&a.cert)
        .with_context(|| format!("reading --cert {}", a.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading --cert {}", a.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&a.key)
        .with_context(|| format!("reading --key {}", a.key.display()))?;
    let b = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let b = if a.no_verify {
        b.dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(&a.ca)
            .with_context(|| format!("reading --ca {}", a.ca.display()))?
        {
            roots.add(c?)?;
        }
        b.with_root_certificates(roots)
    };
    let mut c = b.with_client_auth_cert(chain, key)?;
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
    let request = format!("GET {path} HTTP/1.1\r\nHost: {auth}\r\nUser-Agent: mutual-load\r\n\r\n")
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

#[derive(Default)]
struct Tally {
    ok: u64,
    non2xx: u64,
    errors: u64,
    first_error: Option<String>,
    lat_us: Vec<u32>,
}

/// How long before a scheduled send the timer hands over to yielding.
const PRECISE: Duration = Duration::from_millis(2);

async fn worker(
    i: usize,
    a: Arc<Args>,
    t: Arc<Target>,
    c: TlsConnector,
    start: Instant,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Tls> = None;
    let mut buf = Vec::with_capacity(16384);
    let interval = a
        .rate
        .map(|r| Duration::from_secs_f64(a.connections as f64 / r));
    let mut next = start
        + interval
            .map(|iv| iv.mul_f64(i as f64 / a.connections as f64))
            .unwrap_or_default();
    loop {
        if let Some(iv) = interval {
            // tokio's timer rounds up to whole milliseconds, which would add up to a
            // millisecond to every latency measured from the schedule: sleep to just before
            // the send time, then yield until it (the load generator has a core of its own).
            let now = Instant::now();
            if next > now + PRECISE {
                tokio::time::sleep_until((next - PRECISE).into()).await;
            }
            while Instant::now() < next {
                tokio::task::yield_now().await;
            }
            next += iv;
        }
        let scheduled = if interval.is_some() {
            next - interval.unwrap_or_default()
        } else {
            Instant::now()
        };
        if scheduled >= end {
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
        if scheduled < measure_from {
            if result.is_err() {
                conn = None;
            }
            continue;
        }
        match result {
            Ok(status) if (200..300).contains(&status) => {
                tally.ok += 1;
                tally.lat_us.push(
                    done.duration_since(scheduled)
                        .as_micros()
                        .min(u32::MAX as u128) as u32,
                );
            }
            Ok(status) => {
                tally.non2xx += 1;
                tally
                    .first_error
                    .get_or_insert_with(|| format!("HTTP {status}"));
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| e.to_string());
                conn = None;
                // Do not spin on a refusing server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> Result<()> {
    let a = Arc::new(Args::parse());
    if a.connections == 0 || a.duration <= 0.0 {
        bail!("--connections and --duration must be positive");
    }
    let t = Arc::new(target(&a)?);
    let c = TlsConnector::from(Arc::new(config(&a)?));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let total = rt.block_on(async {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(a.warmup);
        let end = measure_from + Duration::from_secs_f64(a.duration);
        let tasks: Vec<_> = (0..a.connections)
            .map(|i| {
                tokio::spawn(worker(
                    i,
                    a.clone(),
                    t.clone(),
                    c.clone(),
                    start,
                    measure_from,
                    end,
                ))
            })
            .collect();
        let mut total = Tally::default();
        for task in tasks {
            let r = task.await.map_err(|e| anyhow!("worker failed: {e}"))?;
            total.ok += r.ok;
            total.non2xx += r.non2xx;
            total.errors += r.errors;
            if total.first_error.is_none() {
                total.first_error = r.first_error;
            }
            total.lat_us.extend(r.lat_us);
        }
        Ok::<_, anyhow::Error>(total)
    })?;
    let mut lat = total.lat_us;
    lat.sort_unstable();
    let out = serde_json::json!({
        "mode": if a.new_conn { "new_conn" } else { "keepalive" },
        "connections": a.connections,
        "rate": a.rate,
        "seconds": a.duration,
        "ok": total.ok,
        "non2xx": total.non2xx,
        "errors": total.errors,
        "first_error": total.first_error,
        "rps": total.ok as f64 / a.duration,
        "p50_us": pct(&lat, 0.50),
        "p90_us": pct(&lat, 0.90),
        "p99_us": pct(&lat, 0.99),
        "p999_us": pct(&lat, 0.999),
        "max_us": lat.last().copied().unwrap_or(0),
    });
    println!("{out}");
    Ok(())
}
