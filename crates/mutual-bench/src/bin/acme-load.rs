//! `acme-load`: ACME issuances per second, end to end, against any RFC 8555 server
//! (`bench/acme.sh` runs it against `mutual server` and OpenBao). Each worker registers one
//! account (ES256), then loops until --duration ends: new-order for one identifier, the
//! authorization, its http-01 challenge answered by this process's own responder, finalize with
//! a fresh P-256 CSR, the order polled until valid, the certificate downloaded. An issuance
//! counts (with its latency, new-order to certificate) only once the certificate is in hand.
//! The JWS and the key authorization are written here from RFC 8555 (and RFC 7638 for the
//! thumbprint), not taken from mutual-acme, so the client checks the server rather than sharing
//! its code.

#![forbid(unsafe_code)]

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, RwLock,
    },
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use aws_lc_rs::{
    digest,
    rand::SystemRandom,
    signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use clap::Parser;
use mutual_bench::{
    conn::Response,
    flags::{self, Load},
    report::{Report, Tally},
    Conn,
};
use rustls::{pki_types::ServerName, ClientConfig};
use serde_json::{json, Value};

/// Pending http-01 tokens of every worker: token → key authorization.
type Tokens = Arc<RwLock<HashMap<String, String>>>;

#[derive(Debug, Parser)]
#[command(
    name = "acme-load",
    about = "ACME issuances per second, end to end (new order, http-01, finalize, download)"
)]
struct Args {
    #[command(flatten)]
    load: Load,
    /// The ACME directory URL, http:// or https:// (e.g.
    /// http://127.0.0.1:8200/v1/pki/roles/acme/acme/directory).
    #[arg(long)]
    directory: String,
    /// The CAs an https:// server's certificate must chain to (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The one identifier of every order: an IP address (RFC 8738) or a DNS name that
    /// resolves to --http01's address for the server.
    #[arg(long, default_value = "127.0.0.1")]
    identifier: String,
    /// Where this process answers http-01 challenges; the server validates on port 80 unless
    /// told otherwise (mutual: --acme-http-port).
    #[arg(long, default_value = "127.0.0.1:80")]
    http01: SocketAddr,
    /// Longest wait for an account, an authorization or an order to be decided, in seconds.
    #[arg(long, default_value = "30", value_parser = flags::seconds_or_zero)]
    timeout: Duration,
    /// First pause before polling an authorization or order again, in milliseconds; each
    /// next pause is 1.5 times longer, up to 100 ms. Short pauses cut the latency of a fast
    /// server at one connection and add requests to a slow one; every server gets the same.
    #[arg(long, default_value = "2", value_parser = poll_ms)]
    poll_ms: u64,
}

fn poll_ms(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(v) if (1..=100).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of milliseconds from 1 to 100"
        )),
    }
}

/// A URL split into what a connection needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    tls: bool,
    /// `host:port`.
    authority: String,
    host: String,
}

/// Splits `url` into its origin and path.
fn split_url(url: &str) -> Result<(Origin, String)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        bail!("{url:?} is not an http:// or https:// URL");
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.ends_with(':') {
        bail!("{url:?} has no host, or an empty port");
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(h, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
    });
    let authority = if has_port && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h)
        .trim_matches(['[', ']'])
        .to_string();
    Ok((
        Origin {
            tls,
            authority,
            host,
        },
        path.to_string(),
    ))
}

/// What every worker shares.
struct Ctx {
    origin: Origin,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    new_nonce: String,
    new_account: String,
    new_order: String,
    /// `("ip" | "dns", value)`.
    identifier: (&'static str, String),
    tokens: Tokens,
    timeout: Duration,
    first_pause: Duration,
}

impl Ctx {
    fn open(&self) -> std::io::Result<Conn> {
        match &self.tls {
            Some((config, name)) => {
                Conn::open_tls(&self.origin.authority, config.clone(), name.clone())
            }
            None => Conn::open(&self.origin.authority),
        }
    }

    /// The path of `url`, which must be on the directory's server (one connection per worker).
    fn path_of(&self, url: &str) -> Result<String, Failure> {
        let (origin, path) = split_url(url).map_err(|e| Failure::Other(e.to_string()))?;
        if origin != self.origin {
            return Err(Failure::Other(format!(
                "{url:?} is not on the directory's server {}",
                self.origin.authority
            )));
        }
        Ok(path)
    }
}

/// Why an issuance stopped.
#[derive(Debug)]
enum Failure {
    /// The server answered with an error status (a problem document, usually).
    Refused { status: u16, body: String },
    /// No answer, an answer that makes no sense, or a wait that ran out.
    Other(String),
}

impl Failure {
    fn record(self, tally: &mut Tally) {
        match self {
            Failure::Refused { status, body } => tally.non2xx(status, &body),
            Failure::Other(e) => tally.error(e),
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A JSON field that must be a string.
fn field<'a>(v: &'a Value, name: &str, what: &str) -> Result<&'a str, Failure> {
    v[name]
        .as_str()
        .ok_or_else(|| Failure::Other(format!("{what} has no \"{name}\": {v}")))
}

fn json_of(r: &Response, what: &str) -> Result<Value, Failure> {
    serde_json::from_slice(&r.body).map_err(|e| {
        Failure::Other(format!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&r.body)
        ))
    })
}

/// Removes a worker's token from the responder whatever the outcome of its challenge.
struct Pending<'a> {
    tokens: &'a Tokens,
    token: String,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.token);
    }
}

/// One worker: its account key, its connection, the nonce the last answer carried.
struct Client<'a> {
    ctx: &'a Ctx,
    conn: Option<Conn>,
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// The public key as a JWK (RFC 7517), members in RFC 7638's order.
    jwk: String,
    /// RFC 7638 thumbprint, base64url.
    thumbprint: String,
    kid: Option<String>,
    nonce: Option<String>,
    /// Polls sent (POST-as-GET of a pending authorization or a processing order).
    polls: u64,
}

impl<'a> Client<'a> {
    fn new(ctx: &'a Ctx) -> Result<Client<'a>> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| anyhow!("generating the account key failed"))?;
        // An uncompressed point: 0x04, X, Y (32 bytes each).
        let point = key.public_key().as_ref();
        if point.len() != 65 {
            bail!("unexpected P-256 public key length {}", point.len());
        }
        let jwk = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(&point[1..33]),
            b64(&point[33..])
        );
        let thumbprint = b64(digest::digest(&digest::SHA256, jwk.as_bytes()).as_ref());
        Ok(Client {
            ctx,
            conn: None,
            key,
            rng: SystemRandom::new(),
            jwk,
            thumbprint,
            kid: None,
            nonce: None,
            polls: 0,
        })
    }

    /// One request on the worker's connection (opened again after a failure); keeps the
    /// answer's nonce.
    fn send(&mut self, method: &str, url: &str, body: &[u8]) -> Result<Response, Failure> {
        let path = self.ctx.path_of(url)?;
        let conn = match &mut self.conn {
            Some(c) => c,
            None => self.conn.insert(self.ctx.open().map_err(|e| {
                Failure::Other(format!("connecting to {}: {e}", self.ctx.origin.authority))
            })?),
        };
        match conn.exchange(method, &path, "application/jose+json", &[], body) {
            Ok(r) => {
                if let Some(n) = r.header("replay-nonce") {
                    self.nonce = Some(n.to_string());
                }
                Ok(r)
            }
            Err(e) => {
                self.conn = None;
                Err(Failure::Other(format!("{method} {url}: {e}")))
            }
        }
    }

    /// The nonce of the last answer, or a new one from new-nonce when there is none.
    fn fresh_nonce(&mut self) -> Result<String, Failure> {
        if let Some(n) = self.nonce.take() {
            return Ok(n);
        }
        let url = self.ctx.new_nonce.clone();
        self.send("HEAD", &url, b"")?;
        self.nonce
            .take()
            .ok_or_else(|| Failure::Other(format!("HEAD {url}: no Replay-Nonce")))
    }

    /// A flattened JWS (RFC 8555 §6.2, RFC 7515 §7.2.2): ES256, the account's `kid` once it
    /// has one, its `jwk` before.
    fn jws(&self, url: &str, nonce: &str, payload: &str) -> Result<Vec<u8>, Failure> {
        let signer = match &self.kid {
            Some(kid) => format!(r#""kid":{}"#, json!(kid)),
            None => format!(r#""jwk":{}"#, self.jwk),
        };
        let header = format!(
            r#"{{"alg":"ES256",{signer},"nonce":{},"url":{}}}"#,
            json!(nonce),
            json!(url)
        );
        let protected = b64(header.as_bytes());
        let payload = b64(payload.as_bytes());
        let sig = self
            .key
            .sign(&self.rng, format!("{protected}.{payload}").as_bytes())
            .map_err(|_| Failure::Other("signing a request failed".into()))?;
        Ok(
            json!({"protected": protected, "payload": payload, "signature": b64(sig.as_ref())})
                .to_string()
                .into_bytes(),
        )
    }

    /// A signed POST (`None`: POST-as-GET); an error status is a [`Failure::Refused`]. A
    /// `badNonce` is tried once more with the nonce it carried (RFC 8555 §6.5).
    fn post(&mut self, url: &str, payload: Option<&Value>) -> Result<Response, Failure> {
        let payload = payload.map(Value::to_string).unwrap_or_default();
        for attempt in 0..2 {
            let nonce = self.fresh_nonce()?;
            let body = self.jws(url, &nonce, &payload)?;
            let r = self.send("POST", url, &body)?;
            if r.status / 100 == 2 {
                return Ok(r);
            }
            let text = String::from_utf8_lossy(&r.body).into_owned();
            if attempt == 0 && text.contains("urn:ietf:params:acme:error:badNonce") {
                continue;
            }
            return Err(Failure::Refused {
                status: r.status,
                body: format!("POST {url}: {text}"),
            });
        }
        Err(Failure::Other(format!("POST {url}: badNonce twice")))
    }

    fn register(&mut self) -> Result<(), Failure> {
        let url = self.ctx.new_account.clone();
        let r = self.post(&url, Some(&json!({"termsOfServiceAgreed": true})))?;
        let kid = r
            .header("location")
            .ok_or_else(|| Failure::Other("new-account answered without a Location".into()))?;
        self.kid = Some(kid.to_string());
        Ok(())
    }

    /// POST-as-GET `url` until its object (`first` as last seen) is no longer `pending` or
    /// `processing`, with short growing sleeps, for at most --timeout.
    fn poll(&mut self, url: &str, what: &str, first: Value) -> Result<Value, Failure> {
        let deadline = Instant::now() + self.ctx.timeout;
        let mut pause = self.ctx.first_pause;
        let mut now = first;
        loop {
            match now["status"].as_str() {
                Some("pending" | "processing") => {}
                _ => return Ok(now),
            }
            if Instant::now() + pause > deadline {
                return Err(Failure::Other(format!(
                    "{what} {url} still {} after {:?}",
                    now["status"], self.ctx.timeout
                )));
            }
            std::thread::sleep(pause);
            pause = (pause * 3 / 2).min(Duration::from_millis(100));
            self.polls += 1;
            let r = self.post(url, None)?;
            now = json_of(&r, what)?;
        }
    }

    /// Answers the authorization's http-01 challenge unless it is already valid.
    fn authorize(&mut self, authz_url: &str) -> Result<(), Failure> {
        let r = self.post(authz_url, None)?;
        let authz = json_of(&r, "authorization")?;
        if authz["status"] == "valid" {
            return Ok(());
        }
        let ch = authz["challenges"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "http-01"))
            .ok_or_else(|| Failure::Other(format!("authorization without http-01: {authz}")))?
            .clone();
        let token = field(&ch, "token", "the http-01 challenge")?.to_string();
        let _pending = Pending {
            tokens: &self.ctx.tokens,
            token: token.clone(),
        };
        // RFC 8555 §8.1: token "." base64url(JWK thumbprint).
        let key_authorization = format!("{token}.{}", self.thumbprint);
        self.ctx
            .tokens
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token, key_authorization);
        self.post(
            field(&ch, "url", "the http-01 challenge")?,
            Some(&json!({})),
        )?;
        let done = self.poll(authz_url, "authorization", authz)?;
        if done["status"] != "valid" {
            return Err(Failure::Other(format!(
                "authorization {}: {done}",
                done["status"]
            )));
        }
        Ok(())
    }

    /// One issuance, new-order to downloaded certificate.
    fn issue(&mut self) -> Result<(), Failure> {
        let (kind, value) = &self.ctx.identifier;
        let url = self.ctx.new_order.clone();
        let r = self.post(
            &url,
            Some(&json!({"identifiers": [{"type": kind, "value": value}]})),
        )?;
        let order_url = r
            .header("location")
            .ok_or_else(|| Failure::Other("new-order answered without a Location".into()))?
            .to_string();
        let order = json_of(&r, "order")?;
        let authzs: Vec<String> = order["authorizations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if authzs.is_empty() {
            return Err(Failure::Other(format!(
                "order without authorizations: {order}"
            )));
        }
        for a in &authzs {
            self.authorize(a)?;
        }
        let finalize = field(&order, "finalize", "the order")?.to_string();
        let csr = csr(value).map_err(|e| Failure::Other(format!("making the CSR: {e}")))?;
        let r = self.post(&finalize, Some(&json!({"csr": b64(&csr)})))?;
        let first = json_of(&r, "finalized order")?;
        let order = self.poll(&order_url, "order", first)?;
        if order["status"] != "valid" {
            return Err(Failure::Other(format!(
                "order {}: {order}",
                order["status"]
            )));
        }
        let cert_url = field(&order, "certificate", "the valid order")?.to_string();
        let r = self.post(&cert_url, None)?;
        if !r.body.starts_with(b"-----BEGIN CERTIFICATE-----") {
            return Err(Failure::Other(format!(
                "{cert_url} is not a PEM chain: {}",
                String::from_utf8_lossy(&r.body)
            )));
        }
        Ok(())
    }
}

/// A CSR (DER) for `identifier` with a fresh P-256 key, as a client makes one per certificate;
/// an empty subject, the identifier in subjectAltName.
fn csr(identifier: &str) -> Result<Vec<u8>, rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![identifier.to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(&key)?.der().to_vec())
}

/// One worker: its account (then says so on `ready`), issuances from `go` until `stop`; its
/// tally and how many polls it sent.
fn worker(ctx: &Ctx, ready: mpsc::Sender<()>, go: &AtomicBool, stop: &AtomicBool) -> (Tally, u64) {
    let mut tally = Tally::default();
    let client = Client::new(ctx).map_err(|e| Failure::Other(e.to_string()));
    let registered = client.and_then(|mut c| c.register().map(|_| c));
    let _ = ready.send(());
    while !go.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut client = match registered {
        Ok(c) => c,
        Err(f) => {
            f.record(&mut tally);
            return (tally, 0);
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        match client.issue() {
            Ok(()) => tally.ok(start.elapsed()),
            Err(f) => {
                f.record(&mut tally);
                // Do not spin on a server that refuses everything.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    (tally, client.polls)
}

/// The http-01 responder: every worker's pending tokens at /.well-known/acme-challenge/.
/// Bound here, so that a refused port is reported before any load.
fn spawn_responder(addr: SocketAddr, tokens: Tokens) -> Result<()> {
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!(
            "binding the http-01 responder to {addr} (port 80 needs root; or --http01 with the server's validation port)"
        )
    })?;
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the responder's runtime")?;
    std::thread::spawn(move || {
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                eprintln!("acme-load: the http-01 responder could not start");
                return;
            };
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let tokens = tokens.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let answer = challenge_answer(&tokens, req.uri().path());
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Ok(())
}

fn challenge_answer(
    tokens: &Tokens,
    path: &str,
) -> hyper::Response<http_body_util::Full<hyper::body::Bytes>> {
    let found = path
        .strip_prefix("/.well-known/acme-challenge/")
        .and_then(|t| {
            tokens
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(t)
                .cloned()
        });
    let (status, body) = match found {
        Some(k) => (200, k),
        None => (404, String::new()),
    };
    let mut r = hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

fn tls_config(ca: &Path) -> Result<Arc<ClientConfig>> {
    let roots = mutual_tls::TrustStore::from_file(ca)
        .with_context(|| format!("reading --ca {}", ca.display()))?
        .roots;
    Ok(Arc::new(
        ClientConfig::builder_with_provider(mutual_tls::load::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

fn context(a: &Args, tokens: Tokens) -> Result<Ctx> {
    let (origin, path) = split_url(&a.directory).context("--directory")?;
    let tls = match (origin.tls, &a.ca) {
        (true, Some(ca)) => {
            let name = ServerName::try_from(origin.host.clone())
                .map_err(|_| anyhow!("--directory: {:?} is not a host name", origin.host))?;
            Some((tls_config(ca)?, name))
        }
        (true, None) => bail!("--directory is https://: give the server's CA with --ca"),
        (false, _) => None,
    };
    let kind = if a.identifier.parse::<IpAddr>().is_ok() {
        "ip"
    } else {
        "dns"
    };
    let mut ctx = Ctx {
        origin,
        tls,
        new_nonce: String::new(),
        new_account: String::new(),
        new_order: String::new(),
        identifier: (kind, a.identifier.clone()),
        tokens,
        timeout: a.timeout,
        first_pause: Duration::from_millis(a.poll_ms),
    };
    let mut conn = ctx
        .open()
        .with_context(|| format!("connecting to {}", ctx.origin.authority))?;
    // The connection has no timeout of its own: a server that does not answer gets --timeout.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(conn.exchange("GET", &path, "application/json", &[], b""));
    });
    let r = rx
        .recv_timeout(a.timeout)
        .map_err(|_| anyhow!("no answer within {:?}", a.timeout))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("GET {}", a.directory))?;
    let dir: Value = serde_json::from_slice(&r.body)
        .ok()
        .filter(|_| r.status == 200)
        .ok_or_else(|| {
            anyhow!(
                "GET {}: {} {}",
                a.directory,
                r.status,
                String::from_utf8_lossy(&r.body).trim()
            )
        })?;
    let url = |k: &str| {
        dir[k]
            .as_str()
            .map(String::from)
            .ok_or_else(|| anyhow!("the directory has no {k:?}: {dir}"))
    };
    ctx.new_nonce = url("newNonce")?;
    ctx.new_account = url("newAccount")?;
    ctx.new_order = url("newOrder")?;
    Ok(ctx)
}

fn run(a: Args) -> Result<()> {
    let tokens: Tokens = Arc::default();
    spawn_responder(a.http01, tokens.clone())?;
    let ctx = Arc::new(context(&a, tokens)?);
    let (go, stop) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (ready_tx, ready) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    for _ in 0..a.load.connections {
        let (ctx, go, stop) = (ctx.clone(), go.clone(), stop.clone());
        let (ready_tx, done_tx) = (ready_tx.clone(), done_tx.clone());
        std::thread::spawn(move || {
            let _ = done_tx.send(worker(&ctx, ready_tx, &go, &stop));
        });
    }
    // Only the workers hold senders now: a worker that dies is seen at once.
    drop((ready_tx, done_tx));
    // Accounts are made before the clock starts: the figure is issuances. A server that does
    // not answer has --timeout for them, and as long again for the issuances in flight at the
    // end; a worker still waiting then is left behind (the socket has no timeout of its own).
    let deadline = Instant::now() + a.timeout;
    for _ in 0..a.load.connections {
        let left = deadline.saturating_duration_since(Instant::now());
        if ready.recv_timeout(left).is_err() {
            break;
        }
    }
    go.store(true, Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(a.load.duration);
    stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + a.timeout + Duration::from_secs(1);
    let mut total = Tally::default();
    let mut polls = 0;
    let mut finished = 0;
    while finished < a.load.connections {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((tally, n)) = done.recv_timeout(left) else {
            break;
        };
        total.merge(tally);
        polls += n;
        finished += 1;
    }
    if finished < a.load.connections {
        total.error(format!(
            "{} worker(s) still waiting for the server {:?} after the end",
            a.load.connections - finished,
            a.timeout
        ));
    }
    let issued = total.ok;
    let report = Report {
        mode: "acme",
        load: &a.load,
        seconds: start.elapsed().as_secs_f64(),
        tally: total,
    };
    // Polls per issuance say how much of the load was waiting for validation.
    let per = polls as f64 / issued.max(1) as f64;
    match a.load.output {
        flags::Output::Json => {
            let mut v = report.json();
            v["polls_per_issuance"] = json!(per);
            println!("{v}");
        }
        flags::Output::Text => println!("{}{per:.1} polls per issuance", report.text()),
    }
    Ok(())
}

fn main() {
    mutual_bench::exit_on_error("acme-load", run(flags::parse("1")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_origin_and_path() {
        let table = [
            (
                "http://127.0.0.1:8200/v1/pki/acme/directory",
                false,
                "127.0.0.1:8200",
                "127.0.0.1",
                "/v1/pki/acme/directory",
            ),
            (
                "https://ca.example.com/acme",
                true,
                "ca.example.com:443",
                "ca.example.com",
                "/acme",
            ),
            ("http://localhost", false, "localhost:80", "localhost", "/"),
            ("https://[::1]:8443/x", true, "[::1]:8443", "::1", "/x"),
            ("https://[::1]/x", true, "[::1]:443", "::1", "/x"),
        ];
        for (url, tls, authority, host, path) in table {
            let (o, p) = split_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (o.tls, o.authority.as_str(), o.host.as_str(), p.as_str()),
                (tls, authority, host, path),
                "{url}"
            );
        }
        for bad in [
            "ftp://x/",
            "127.0.0.1:8200/v1",
            "http:///x",
            "http://127.0.0.1:/x",
        ] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_jwk_and_its_thumbprint_follow_rfc_7638() {
        let ctx = Ctx {
            origin: split_url("http://127.0.0.1:1/").unwrap().0,
            tls: None,
            new_nonce: String::new(),
            new_account: String::new(),
            new_order: String::new(),
            identifier: ("ip", "127.0.0.1".into()),
            tokens: Tokens::default(),
            timeout: Duration::from_secs(1),
            first_pause: Duration::from_millis(2),
        };
        let c = Client::new(&ctx).unwrap();
        let jwk: Value = serde_json::from_str(&c.jwk).unwrap();
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
        for k in ["x", "y"] {
            assert_eq!(
                URL_SAFE_NO_PAD
                    .decode(jwk[k].as_str().unwrap())
                    .unwrap()
                    .len(),
                32
            );
        }
        // RFC 7638 §3: the required members only, sorted, no whitespace.
        assert!(
            c.jwk.starts_with(r#"{"crv":"P-256","kty":"EC","x":""#),
            "{}",
            c.jwk
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(&c.thumbprint).unwrap().len(), 32);
    }

    #[test]
    fn the_responder_answers_pending_tokens_only() {
        let tokens = Tokens::default();
        tokens
            .write()
            .unwrap()
            .insert("tok".into(), "tok.thumb".into());
        let table = [
            ("/.well-known/acme-challenge/tok", 200, "tok.thumb"),
            ("/.well-known/acme-challenge/other", 404, ""),
            ("/tok", 404, ""),
        ];
        for (path, status, body) in table {
            let r = challenge_answer(&tokens, path);
            assert_eq!(r.status().as_u16(), status, "{path}");
            let got = futures_body(r);
            assert_eq!(got, body, "{path}");
        }
    }

    fn futures_body(r: hyper::Response<http_body_util::Full<hyper::body::Bytes>>) -> String {
        use http_body_util::BodyExt;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = rt.block_on(r.into_body().collect()).unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}
