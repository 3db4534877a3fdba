//! The proxy held under abuse, on loopback and bounded in time:
//! - 10,000 mTLS connections held at once: all are served, the proxy's memory per connection is
//!   printed and bounded, Alice is still answered, and every connection is released after;
//! - 1,000 slow clients of four kinds while Alice calls (handshakes never finished, headers
//!   trickled a byte at a time, bodies never finished, HTTP/2 streams opened and abandoned):
//!   each kind is cut off by its documented limit, and Alice is answered throughout (her
//!   latency with and without them is printed; the ratio is a benchmark's business, not a test's);
//! - HTTP/2 rapid reset: the connection is ended with GOAWAY long before the client runs out of
//!   resets, few of the reset requests reach the backend, and Alice is served after.

mod common;
mod proxying;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Story;
use proxying::{echo, Proc};
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A TLS 1.3 client of the story's CA presenting `who`'s certificate, offering `alpn`, never
/// resuming (each connection costs the proxy a full handshake).
fn client(s: &Story, who: &str, alpn: &[u8]) -> TlsConnector {
    let id = mutual_tls::load::Identity::from_files(
        &s.path(&format!("certs/{who}.example.com.crt")),
        &s.path(&format!("certs/{who}.example.com.key")),
    )
    .expect("identity");
    let roots = mutual_tls::load::TrustStore::from_file(&s.path("certs/root.pem"))
        .expect("roots")
        .roots;
    let mut c = ClientConfig::builder_with_provider(mutual_tls::load::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(id.certified)));
    c.alpn_protocols = vec![alpn.to_vec()];
    c.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(c))
}

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("name")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The resident memory of a process, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The proxy's admin address, from its start-up line.
fn admin_port(p: &Proc) -> u16 {
    assert!(p.wait_log("admin on http://127.0.0.1:"), "{}", p.log());
    let log = p.log();
    let i = log.find("admin on http://127.0.0.1:").unwrap() + 26;
    log[i..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("admin port")
}

/// One sample of the proxy's metrics: `name` (a gauge or counter without labels), or the sum
/// of every labelled series of `name` whose labels contain `with`.
fn metric(admin: u16, name: &str, with: &str) -> f64 {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://127.0.0.1:{admin}/metrics"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            series == &name || (series.starts_with(&format!("{name}{{")) && series.contains(with))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// Waits (bounded) until the proxy holds `want` connections.
fn wait_connections(admin: u16, want: f64, bound: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let now = metric(admin, "mutual_proxy_connections", "");
        if now == want || start.elapsed() > bound {
            return now;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The head of one HTTP/1.1 answer (up to the blank line), or what came before the end.
async fn read_head<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        if s.read(&mut byte).await? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The body of the answer whose head is `head` (by its Content-Length).
async fn read_body<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    head: &str,
) -> std::io::Result<String> {
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Alice's calls, each on a new connection (full handshake, one request, close), `n` of them
/// one after another: their latencies, sorted, and how many were not answered 200.
async fn alice_calls(tls: &TlsConnector, port: u16, n: usize) -> (Vec<Duration>, Vec<String>) {
    let mut took = Vec::with_capacity(n);
    let mut failed = Vec::new();
    for _ in 0..n {
        let start = Instant::now();
        let answer = async {
            let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
            tcp.set_nodelay(true)?;
            let mut s = tls.connect(localhost(), tcp).await?;
            s.write_all(b"GET /alice HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .await?;
            read_head(&mut s).await
        };
        match tokio::time::timeout(Duration::from_secs(10), answer).await {
            Ok(Ok(head)) if head.starts_with("HTTP/1.1 200") => took.push(start.elapsed()),
            Ok(Ok(head)) => failed.push(head.lines().next().unwrap_or("").to_string()),
            Ok(Err(e)) => failed.push(e.to_string()),
            Err(_) => failed.push("no answer in 10 s".into()),
        }
    }
    took.sort();
    (took, failed)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[test]
fn ten_thousand_mtls_connections_are_held_with_bounded_memory() {
    const HELD: usize = 10_000;
    let s = Story::build("ec");
    let e = echo(&s);
    let p = proxying::proxy(
        &s,
        &format!("http://127.0.0.1:{}", e.port),
        &[
            "--allow",
            "cn=alice.example.com",
            "--admin",
            "127.0.0.1:0",
            "--max-connections",
            "10100",
            "--idle-timeout",
            "300s",
        ],
    );
    let admin = admin_port(&p);
    let pid = p.child.id();
    let tls = client(&s, "alice", b"http/1.1");
    let rt = runtime();
    // Warm the proxy up (its first answers allocate what every later one reuses).
    let (_, failed) = rt.block_on(alice_calls(&tls, p.port, 20));
    assert!(failed.is_empty(), "{failed:?}");
    let before = rss_kib(pid);

    let start = Instant::now();
    let opened = Arc::new(AtomicUsize::new(0));
    let port = p.port;
    let held = rt.block_on(async {
        // 64 handshakes at a time: the listen backlog is not what this test measures.
        let gate = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..HELD {
            let (tls, gate, opened) = (tls.clone(), Arc::clone(&gate), Arc::clone(&opened));
            tasks.spawn(async move {
                let _turn = gate.acquire_owned().await.expect("gate");
                let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
                let mut s = tls.connect(localhost(), tcp).await?;
                // One keep-alive request, so that each connection is a served, idle one.
                s.write_all(b"GET /held HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .await?;
                let head = read_head(&mut s).await?;
                let n = opened.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 2_000 == 0 {
                    eprintln!("{n} connections open");
                }
                if !head.starts_with("HTTP/1.1 200") {
                    return Err(std::io::Error::other(head));
                }
                // Drain the body so the connection is idle, not mid-answer.
                read_body(&mut s, &head).await?;
                Ok::<_, std::io::Error>(s)
            });
        }
        let mut held = Vec::with_capacity(HELD);
        let mut errors = Vec::new();
        while let Some(r) = tasks.join_next().await {
            match r.expect("task") {
                Ok(s) => held.push(s),
                Err(e) => errors.push(e.to_string()),
            }
        }
        assert!(
            errors.is_empty(),
            "{} failed, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
        held
    });
    assert_eq!(held.len(), HELD);
    let opening = start.elapsed();
    let open_now = wait_connections(admin, HELD as f64, Duration::from_secs(10));
    assert_eq!(
        open_now, HELD as f64,
        "the proxy's gauge of open connections"
    );
    // Idle HTTP/1.1 connections are parked after a second without a request.
    std::thread::sleep(Duration::from_secs(3));
    let with = rss_kib(pid);
    let per_conn = (with.saturating_sub(before)) as f64 / HELD as f64;
    // Alice is still answered while the 10,000 are held.
    let (took, failed) = rt.block_on(alice_calls(&tls, p.port, 20));
    assert!(failed.is_empty(), "{failed:?}");
    eprintln!(
        "10,000 held mTLS connections (TLS 1.3, one request each): opened in {:.1} s; proxy RSS \
         {before} KiB before, {with} KiB with them: {per_conn:.1} KiB per connection; Alice p50 {}",
        opening.as_secs_f64(),
        ms(pct(&took, 0.5)),
    );
    // rustls' keys and state, the peer's chain and the parked stream, without a read buffer:
    // about 8 KiB each. 16 KiB would mean that parked connections keep their buffers again (4
    // KiB of rustls', 16 of hyper's), or that what they freed stayed with the allocator.
    assert!(
        per_conn < 16.0,
        "{per_conn:.1} KiB per held connection (RSS {before} -> {with} KiB)"
    );
    assert_eq!(
        metric(admin, "mutual_proxy_connections_rejected_total", ""),
        0.0
    );
    // Held this densely on jemalloc, which mutual-alloc chose for the proxy before main.
    assert_eq!(
        metric(
            admin,
            "mutual_proxy_allocator_info",
            "allocator=\"jemalloc\""
        ),
        1.0
    );
    // What parking and the handshakes freed went back to the kernel: the allocator keeps it
    // while the proxy is quiet otherwise.
    assert!(
        metric(admin, "mutual_proxy_memory_trims_total", "") >= 1.0,
        "no memory trim after 10,000 connections were parked"
    );
    drop(held);
    // Every connection is released: nothing outlives its client.
    let left = wait_connections(admin, 0.0, Duration::from_secs(20));
    assert_eq!(
        left, 0.0,
        "connections still counted after their clients left"
    );
    drop(p);
}

/// A backend that reads the whole request body before it answers 200 (an upload service), on
/// its own thread: what a slow body holds up. Returns its port; it lives as long as the test.
fn reading_backend() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        runtime().block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        |req: http::Request<hyper::body::Incoming>| async move {
                            use http_body_util::BodyExt;
                            let n = req.into_body().collect().await.map(|b| b.to_bytes().len());
                            Ok::<_, std::convert::Infallible>(http::Response::new(
                                http_body_util::Full::new(bytes::Bytes::from(format!("{n:?}\n"))),
                            ))
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        })
    });
    port
}

/// How one slow client ended: after how long, and what the proxy last said to it.
#[derive(Debug)]
struct Ending {
    kind: &'static str,
    after: Duration,
    what: String,
}

/// Reads until the proxy ends the connection (or answers), bounded: what it said, or an error.
async fn until_cut<S: tokio::io::AsyncRead + Unpin>(s: &mut S, bound: Duration) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) => return "closed".to_string(),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&got).into_owned();
                        return head.lines().next().unwrap_or("").to_string();
                    }
                }
                Err(e) => return format!("reset: {e}"),
            }
        }
    };
    tokio::time::timeout(bound, read)
        .await
        .unwrap_or_else(|_| "still open".into())
}

/// One slow client of `kind`; returns how the proxy ended it.
async fn slow_client(
    kind: &'static str,
    port: u16,
    tls: TlsConnector,
    h2tls: TlsConnector,
) -> Ending {
    let bound = Duration::from_secs(15);
    let start = Instant::now();
    let what = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        match kind {
            // Connects and says nothing: holds a handshake slot.
            "stalled handshake" => Ok(until_cut(&mut tcp, bound).await),
            // Half a ClientHello record, then nothing.
            "half a hello" => {
                tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
                    .await?;
                Ok(until_cut(&mut tcp, bound).await)
            }
            // A request head one byte every 100 ms, never finished.
            "trickled headers" => {
                let mut s = tls.connect(localhost(), tcp).await?;
                s.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                    .await?;
                let (mut r, mut w) = tokio::io::split(s);
                let trickle = async {
                    for _ in 0..150 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        if w.write_all(b"a").await.is_err() || w.flush().await.is_err() {
                            break;
                        }
                    }
                    std::future::pending::<()>().await
                };
                tokio::select! {
                    end = until_cut(&mut r, bound) => Ok(end),
                    _ = trickle => unreachable!("the trickle never ends by itself"),
                }
            }
            // A body announced as 1 MB, 100 bytes sent, then nothing.
            "unfinished body" => {
                let mut s = tls.connect(localhost(), tcp).await?;
                s.write_all(
                    b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n",
                )
                .await?;
                s.write_all(&[b'x'; 100]).await?;
                s.flush().await?;
                // A backend may answer before the body is in (`serve echo` does): then the
                // connection must still end, since its body never will.
                let answer = until_cut(&mut s, bound).await;
                if answer.starts_with("HTTP/") {
                    let then = until_cut(&mut s, bound).await;
                    Ok(format!("{answer} then {then}"))
                } else {
                    Ok(answer)
                }
            }
            // Four HTTP/2 streams opened with a body to come, never sent, never read.
            "abandoned h2 streams" => {
                let s = h2tls.connect(localhost(), tcp).await?;
                let (mut send, conn) = h2::client::handshake(s)
                    .await
                    .map_err(std::io::Error::other)?;
                let driver = tokio::spawn(conn);
                let mut held = Vec::new();
                for _ in 0..4 {
                    send = send.ready().await.map_err(std::io::Error::other)?;
                    let req = http::Request::post("https://localhost/abandoned")
                        .body(())
                        .expect("request");
                    held.push(
                        send.send_request(req, false)
                            .map_err(std::io::Error::other)?,
                    );
                }
                let mut ends = Vec::new();
                for (resp, _body) in held {
                    ends.push(match tokio::time::timeout(bound, resp).await {
                        Ok(Ok(r)) => r.status().as_u16().to_string(),
                        Ok(Err(e)) => format!("reset: {e}"),
                        Err(_) => "still open".into(),
                    });
                }
                driver.abort();
                Ok(ends.join(","))
            }
            other => unreachable!("no slow client {other}"),
        }
    };
    let what: std::io::Result<String> = what.await;
    Ending {
        kind,
        after: start.elapsed(),
        what: what.unwrap_or_else(|e| format!("error: {e}")),
    }
}

#[test]
fn slow_clients_are_cut_off_by_their_limits_while_alice_is_served() {
    const EACH: usize = 200;
    const KINDS: [&str; 5] = [
        "stalled handshake",
        "half a hello",
        "trickled headers",
        "unfinished body",
        "abandoned h2 streams",
    ];
    let s = Story::build("ec");
    let backend = reading_backend();
    let p = proxying::proxy(
        &s,
        &format!("http://127.0.0.1:{backend}"),
        &[
            "--allow",
            "cn=alice.example.com",
            "--admin",
            "127.0.0.1:0",
            "--handshake-timeout",
            "2s",
            "--idle-timeout",
            "3s",
            "--request-timeout",
            "3s",
        ],
    );
    let admin = admin_port(&p);
    let port = p.port;
    let tls = client(&s, "alice", b"http/1.1");
    let h2tls = client(&s, "alice", b"h2");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (quiet, failed) = rt.block_on(alice_calls(&tls, port, 200));
    assert!(failed.is_empty(), "{failed:?}");

    let (loaded, failed, endings) = rt.block_on(async {
        let mut slow = tokio::task::JoinSet::new();
        for i in 0..EACH * KINDS.len() {
            let kind = KINDS[i % KINDS.len()];
            slow.spawn(slow_client(kind, port, tls.clone(), h2tls.clone()));
        }
        // Let every slow client take its hold before Alice calls.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (loaded, failed) = alice_calls(&tls, port, 200).await;
        let mut endings = Vec::new();
        while let Some(e) = slow.join_next().await {
            endings.push(e.expect("slow client"));
        }
        (loaded, failed, endings)
    });
    assert!(
        failed.is_empty(),
        "Alice refused while slow clients held on: {failed:?}"
    );
    eprintln!(
        "Alice, 200 calls each on a new connection: alone p50 {} p99 {}; beside {} slow clients \
         p50 {} p99 {}",
        ms(pct(&quiet, 0.5)),
        ms(pct(&quiet, 0.99)),
        EACH * KINDS.len(),
        ms(pct(&loaded, 0.5)),
        ms(pct(&loaded, 0.99)),
    );
    // Each kind is ended by the limit that bounds it (with slack for a busy machine), never
    // left open: 2 s for the handshake, 3 s for a request head (the idle timeout), 3 s for a
    // whole request.
    type EndedWell = fn(&str) -> bool;
    let limits: [(&str, u64, EndedWell); 5] = [
        ("stalled handshake", 2, |w| {
            w == "closed" || w.starts_with("reset")
        }),
        ("half a hello", 2, |w| {
            w == "closed" || w.starts_with("reset")
        }),
        ("trickled headers", 3, |w| {
            w == "closed" || w.starts_with("reset") || w.starts_with("HTTP/1.1 408")
        }),
        ("unfinished body", 3, |w| {
            w.starts_with("HTTP/1.1 504") && w.ends_with("then closed")
        }),
        ("abandoned h2 streams", 3, |w| {
            w.split(',').all(|s| s == "504")
        }),
    ];
    for (kind, limit, ended_well) in limits {
        let of_kind: Vec<&Ending> = endings.iter().filter(|e| e.kind == kind).collect();
        assert_eq!(of_kind.len(), EACH, "{kind}");
        let slowest = of_kind.iter().map(|e| e.after).max().unwrap_or_default();
        let mut whats: Vec<&str> = of_kind.iter().map(|e| e.what.as_str()).collect();
        whats.sort();
        whats.dedup();
        eprintln!(
            "{EACH} × {kind}: ended by the proxy, slowest after {}, with {whats:?}",
            ms(slowest)
        );
        for e in &of_kind {
            assert!(ended_well(&e.what), "{kind}: {e:?}");
            assert!(
                e.after < Duration::from_secs(limit + 6),
                "{kind} outlived its {limit} s limit: {e:?}"
            );
        }
    }
    // Nothing of theirs is left in the proxy.
    let left = wait_connections(admin, 0.0, Duration::from_secs(20));
    assert_eq!(
        left, 0.0,
        "connections still counted after the slow clients were cut"
    );
    drop(p);
}

#[test]
fn http2_rapid_reset_ends_the_connection() {
    const RESETS: usize = 20_000;
    let s = Story::build("ec");
    let e = echo(&s);
    let p = proxying::proxy(
        &s,
        &format!("http://127.0.0.1:{}", e.port),
        &["--allow", "cn=alice.example.com", "--admin", "127.0.0.1:0"],
    );
    let admin = admin_port(&p);
    let port = p.port;
    let rt = runtime();
    let h2tls = client(&s, "alice", b"h2");
    let (sent, ended) = rt.block_on(async {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let tls = h2tls.connect(localhost(), tcp).await.expect("handshake");
        let (mut send, conn) = h2::client::handshake(tls).await.expect("h2");
        let driver = tokio::spawn(conn);
        let mut sent = 0;
        let started = Instant::now();
        // Bounded by count and by time: the proxy should end this long before either.
        while sent < RESETS && started.elapsed() < Duration::from_secs(30) {
            send = match send.ready().await {
                Ok(s) => s,
                Err(_) => break,
            };
            let req = http::Request::get("https://localhost/reset")
                .body(())
                .expect("request");
            let Ok((_resp, mut stream)) = send.send_request(req, true) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
            sent += 1;
            if sent % 64 == 0 {
                // Let the connection task write what is queued.
                tokio::task::yield_now().await;
            }
        }
        let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
        (sent, format!("{ended:?}"))
    });
    let forwarded = metric(admin, "mutual_proxy_requests_total", "");
    eprintln!("rapid reset: {sent} requests sent and reset before the proxy ended the connection ({ended}); {forwarded} requests counted by the proxy");
    assert!(
        sent < RESETS,
        "the proxy let {sent} reset streams through on one connection"
    );
    // The proxy ended it (GOAWAY, or the socket closed under the client's writes), rather than
    // the client giving up.
    assert!(
        !ended.contains("Elapsed"),
        "the connection outlived the resets: {ended}"
    );
    assert!(
        forwarded < sent as f64 / 2.0,
        "{forwarded} of {sent} reset requests were handled"
    );
    // Alice is served on a new connection after.
    let tls = client(&s, "alice", b"http/1.1");
    let (_, failed) = rt.block_on(alice_calls(&tls, port, 5));
    assert!(failed.is_empty(), "{failed:?}");
    drop(p);
}

#[test]
fn an_idle_keep_alive_connection_is_parked_then_served_again() {
    let s = Story::build("ec");
    let e = echo(&s);
    let p = proxying::proxy(
        &s,
        &format!("http://127.0.0.1:{}", e.port),
        &["--allow", "cn=alice.example.com", "--idle-timeout", "4s"],
    );
    let port = p.port;
    let tls = client(&s, "alice", b"http/1.1");
    let rt = runtime();
    rt.block_on(async {
        let tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        let mut c = tls.connect(localhost(), tcp).await.expect("handshake");
        let mut answers = Vec::new();
        // A request; a pause past the parking delay; a request head cut in two around another
        // pause (the first half is in the proxy's buffer when the connection is parked); a
        // request after the connection has been parked and woken twice.
        let steps: [(&[u8], u64); 4] = [
            (b"GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n", 1500),
            (b"GET /two HTTP/1.1\r\nHo", 1500),
            (b"st: localhost\r\n\r\n", 0),
            (b"GET /three HTTP/1.1\r\nHost: localhost\r\n\r\n", 0),
        ];
        for (bytes, pause_ms) in steps {
            c.write_all(bytes).await.expect("write");
            if bytes.ends_with(b"\r\n\r\n") {
                let head = read_head(&mut c).await.expect("answer");
                let body = read_body(&mut c, &head).await.expect("body");
                answers.push((head.lines().next().unwrap_or("").to_string(), body));
            }
            tokio::time::sleep(Duration::from_millis(pause_ms)).await;
        }
        for ((status, body), path) in answers.iter().zip(["/one", "/two", "/three"]) {
            assert_eq!(status, "HTTP/1.1 200 OK", "{path}: {body}");
            assert!(body.contains(path), "{path} answered with {body}");
            assert!(
                !body
                    .to_ascii_lowercase()
                    .contains("\"connection\": \"close\""),
                "{body}"
            );
        }
        // Idle past the idle timeout while parked: closed by the proxy with close_notify.
        let start = Instant::now();
        let mut rest = Vec::new();
        let end = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut rest)).await;
        assert!(matches!(end, Ok(Ok(0))), "{end:?}");
        assert!(
            start.elapsed() < Duration::from_secs(9),
            "{:?}",
            start.elapsed()
        );
    });
}
