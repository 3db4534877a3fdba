//! `mutual proxy` and `mutual tunnel` with the real `curl` in front of `mutual serve echo`:
//! Alice reaches the backend and the backend sees an XFCC naming her; a forged XFCC never
//! reaches it; Bob gets a 403 naming him; no certificate is refused; HTTP/2 works; a route for
//! another Host is not reachable; limits, unreachable and hanging backends; reload.

mod common;
mod proxying;

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::Story;
use proxying::{curl, echo, proxy, xfcc_of, Proc};

#[test]
fn alice_passes_bob_is_named_forgery_dropped_no_certificate_refused() {
    let s = Story::build("ec");
    let e = echo(&s);
    let backend = format!("http://127.0.0.1:{}", e.port);
    let p = proxy(
        &s,
        &backend,
        &[
            "--allow",
            "cn=alice.example.com",
            "--max-body-bytes",
            "1024",
            "--max-header-bytes",
            "8192",
        ],
    );
    let url = format!("https://localhost:{}/hello?x=1", p.port);

    let r = curl(
        &s,
        "alice",
        &url,
        &[
            "-H",
            "X-Forwarded-Client-Cert: By=spiffe://evil;Subject=\"CN=admin\"",
            "-H",
            "ssl-client-verify: SUCCESS",
            "-H",
            "l5d-client-id: admin.example.com",
            "-H",
            "client-cert: :AAAA:",
        ],
    );
    assert_eq!((r.code, r.status.as_str()), (0, "200"), "{}", r.body);
    let xfcc = xfcc_of(&r.body);
    assert!(xfcc.contains("Subject=\"CN=alice.example.com\""), "{xfcc}");
    assert!(xfcc.contains("DNS=alice.example.com"), "{xfcc}");
    assert!(xfcc.starts_with("Hash="), "{xfcc}");
    for forged in [
        "evil",
        "admin",
        "ssl-client-verify",
        "l5d-client-id",
        "\"client-cert\":",
    ] {
        assert!(
            !r.body.contains(forged),
            "{forged} reached the backend: {}",
            r.body
        );
    }
    assert!(
        r.body.contains("\"x-forwarded-proto\": \"https\""),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("\"x-forwarded-for\": \"127.0.0.1\""),
        "{}",
        r.body
    );

    let r = curl(
        &s,
        "alice",
        &url,
        &["--http2", "-w", "%{http_code} %{http_version}"],
    );
    assert_eq!(r.status, "200 2", "{}", r.body);
    assert!(xfcc_of(&r.body).contains("CN=alice.example.com"));

    let r = curl(&s, "bob", &url, &[]);
    assert_eq!(r.status, "403");
    assert!(
        r.body.contains("you cannot be here bob.example.com"),
        "{}",
        r.body
    );
    assert!(r.body.contains("cn=alice.example.com"), "{}", r.body);

    let r = curl(&s, "", &url, &[]);
    assert_ne!(r.code, 0, "a caller without a certificate got {}", r.status);
    assert!(p.wait_log("no client certificate arrived"), "{}", p.log());

    let big = "x".repeat(4096);
    let r = curl(&s, "alice", &url, &["-d", &big]);
    assert_eq!(r.status, "413", "{}", r.body);
    let huge = format!("x-big: {}", "y".repeat(20_000));
    let r = curl(&s, "alice", &url, &["-H", &huge]);
    assert_eq!(r.status, "431", "{}", r.body);
    // The proxy keeps serving after the bad requests.
    assert_eq!(curl(&s, "alice", &url, &[]).status, "200");
    assert!(p.log().contains("decision=\"deny\""), "{}", p.log());
}

#[test]
fn unreachable_and_hanging_backends_and_tunnel() {
    let s = Story::build("ec");
    // Nothing listens on a port we bound and closed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = proxy(&s, &format!("http://127.0.0.1:{closed}"), &[]);
    let r = curl(&s, "alice", &format!("https://localhost:{}/", p.port), &[]);
    assert_eq!(r.status, "502", "{}", r.body);
    assert!(r.body.contains("is unreachable"), "{}", r.body);

    // A backend that accepts and never answers.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Ok((c, _)) = hang.accept() {
            kept.push(c);
        }
        std::thread::sleep(Duration::from_secs(5));
    });
    let p2 = proxy(
        &s,
        &format!("http://127.0.0.1:{hang_port}"),
        &["--request-timeout", "1s"],
    );
    let r = curl(&s, "alice", &format!("https://localhost:{}/", p2.port), &[]);
    assert_eq!(r.status, "504", "{}", r.body);
    assert!(r.body.contains("did not answer within 1s"), "{}", r.body);
    drop(p2);
    let _ = held.join();

    // The tunnel: plaintext in, mTLS (as Alice) out to the proxy in front of echo.
    let e = echo(&s);
    let p3 = proxy(
        &s,
        &format!("http://127.0.0.1:{}", e.port),
        &["--allow", "cn=alice.example.com"],
    );
    let t = tunnel(&s, p3.port);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            &format!("http://127.0.0.1:{}/via-tunnel", t.port),
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        xfcc_of(&body).contains("CN=alice.example.com"),
        "{body}\n{}",
        t.log()
    );
}

/// `mutual tunnel` on an ephemeral port: plaintext in, mTLS as Alice out to `localhost:port`.
fn tunnel(s: &Story, port: u16) -> Proc {
    Proc::start(
        s.dir.path(),
        &[
            "tunnel",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("https://localhost:{port}"),
            "--ca",
            "certs/root.pem",
            "--cert",
            "certs/alice.example.com.crt",
            "--key",
            "certs/alice.example.com.key",
        ],
        "http",
    )
}

const CONFIG: &str = r#"
[admin]
listen = "127.0.0.1:0"

[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"
crl = ["certs/root.crl"]

[[listener.route]]
host = "www.example.com"
upstream = "echo"
allow = ["cn=alice.example.com"]

[[listener.route]]
host = "localhost"
upstream = "echo"
allow = ["cn=bob.example.com"]
deny_at = "handshake"

[[upstream]]
name = "echo"
servers = ["ECHO"]
"#;

#[test]
fn config_routes_by_host_and_reloads() {
    let s = Story::build("ec");
    s.mutual(&["crl", "--ca", "root", "--out", "certs/root.crl", "--pem"])
        .ok();
    let e = echo(&s);
    let config = CONFIG.replace("ECHO", &format!("http://127.0.0.1:{}", e.port));
    s.write("proxy.toml", &config);
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "proxy.toml"], "https");
    let port = p.port;
    let resolve = format!("www.example.com:{port}:127.0.0.1");
    let www = format!("https://www.example.com:{port}/");
    let local = format!("https://localhost:{port}/");

    assert_eq!(
        curl(&s, "alice", &www, &["--resolve", &resolve]).status,
        "200"
    );
    // A connection made for www.example.com cannot reach the route of another name.
    let r = curl(
        &s,
        "alice",
        &www,
        &["--resolve", &resolve, "-H", "Host: localhost"],
    );
    assert_eq!(r.status, "421", "{}", r.body);
    assert!(
        r.body.contains("does not match the TLS server name"),
        "{}",
        r.body
    );
    let r = curl(&s, "bob", &www, &["--resolve", &resolve]);
    assert_eq!(r.status, "403", "{}", r.body);
    assert_eq!(curl(&s, "bob", &local, &[]).status, "200");
    // The localhost route refuses at the handshake.
    let r = curl(&s, "alice", &local, &[]);
    assert!(
        r.code != 0 || r.status == "000",
        "alice got {} on the bob-only route",
        r.status
    );
    assert!(p.wait_log("not_allowed"), "{}", p.log());

    // Admin endpoints.
    let admin_line = p.log();
    let i = admin_line
        .find("admin on http://127.0.0.1:")
        .expect("admin address");
    let admin: String = admin_line[i + 26..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let get = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                &format!("http://127.0.0.1:{admin}{path}"),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(get("/live"), "live\n");
    assert_eq!(get("/ready"), "ready\n");
    let m = get("/metrics");
    assert!(m.contains("mutual_proxy_requests_total{route=\"www.example.com/\",status=\"403\",decision=\"deny\"} 1"), "{m}");
    assert!(m.contains("reason=\"not_allowed\""), "{m}");
    // The backend connections: counted as opened, and kept for the next request (the curls
    // above came one after another, each on a connection of its own to the proxy).
    assert!(
        m.contains("# TYPE mutual_proxy_upstream_connections_opened_total counter"),
        "{m}"
    );
    let opened: f64 = m
        .lines()
        .filter(|l| l.starts_with("mutual_proxy_upstream_connections_opened_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    let allowed: f64 = m
        .lines()
        .filter(|l| l.starts_with("mutual_proxy_requests_total{") && l.contains("status=\"200\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        opened >= 1.0 && opened < allowed,
        "{opened} opened for {allowed} answered\n{m}"
    );
    assert!(m.contains("mutual_proxy_upstream_idle_connections{"), "{m}");

    // A bad config is refused and the old one keeps serving.
    s.write("proxy.toml", "[[listener]\nbroken");
    assert!(p.wait_log("reload refused"), "{}", p.log());
    assert_eq!(
        curl(&s, "alice", &www, &["--resolve", &resolve]).status,
        "200"
    );

    // A good one (Bob allowed on www too) is swapped in, by SIGHUP as well as by the file change.
    s.write(
        "proxy.toml",
        &config.replace(
            "allow = [\"cn=alice.example.com\"]",
            "allow = [\"cn=alice.example.com\", \"cn=bob.example.com\"]",
        ),
    );
    let pid = p.child.id().to_string();
    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    let mut bob = String::new();
    for _ in 0..100 {
        bob = curl(&s, "bob", &www, &["--resolve", &resolve]).status;
        if bob == "200" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(bob, "200", "{}", p.log());

    // Revoking Bob: the new CRL is picked up and Bob is refused from then on.
    let serial = common::serial_of(&s, "certs/bob.example.com.crt");
    s.mutual(&["revoke", &serial]).ok();
    s.mutual(&["crl", "--ca", "root", "--out", "certs/root.crl", "--pem"])
        .ok();
    let mut refused = false;
    for _ in 0..100 {
        if curl(&s, "bob", &local, &[]).status != "200" {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(refused, "bob still gets in after revocation: {}", p.log());
    assert!(p.wait_log("revoked"), "{}", p.log());
    assert_eq!(
        curl(&s, "alice", &www, &["--resolve", &resolve]).status,
        "200"
    );
}

const RELOAD_CONFIG: &str = r#"
[[listener]]
listen = "127.0.0.1:0"
ca = "live/ca.pem"
cert = "live/www.crt"
key = "live/www.key"
crl = ["live/root.crl"]

[[listener.route]]
upstream = "echo"
allow = ["cn=alice.example.com", "cn=bob.example.com"]

[[upstream]]
name = "echo"
servers = ["ECHO"]
"#;

/// Callers that keep calling (a new connection per request) until told to stop; each outcome
/// is recorded in order.
fn caller(
    s: &Story,
    who: &'static str,
    url: String,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<Result<u16, String>>> {
    let tls = mutual_tls::ClientTls::from_files(
        s.path("certs/root.pem"),
        s.path(&format!("certs/{who}.example.com.crt")),
        s.path(&format!("certs/{who}.example.com.key")),
    )
    .expect("client");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut seen = Vec::new();
        // Bounded: at most 20,000 calls, and the test stops it long before.
        for _ in 0..20_000 {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let r = rt.block_on(tls.get(&url));
            seen.push(r.map(|r| r.status.as_u16()).map_err(|e| e.to_string()));
        }
        seen
    })
}

#[test]
fn reload_under_load_fails_no_request_but_the_revoked_callers() {
    let s = Story::build("ec");
    s.mutual(&["crl", "--ca", "root", "--out", "certs/root.crl", "--pem"])
        .ok();
    std::fs::create_dir_all(s.path("live")).unwrap();
    let copy = |from: &str, to: &str| {
        // Write aside, then rename: what a careful operator (or Kubernetes) does.
        let tmp = s.path(&format!("{to}.tmp"));
        std::fs::copy(s.path(from), &tmp).unwrap();
        std::fs::rename(&tmp, s.path(to)).unwrap();
    };
    copy("certs/root.pem", "live/ca.pem");
    copy("certs/www.example.com.crt", "live/www.crt");
    copy("certs/www.example.com.key", "live/www.key");
    copy("certs/root.crl", "live/root.crl");
    let e = echo(&s);
    let config = RELOAD_CONFIG.replace("ECHO", &format!("http://127.0.0.1:{}", e.port));
    s.write("proxy.toml", &config);
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "proxy.toml"], "https");
    let url = format!("https://localhost:{}/", p.port);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let alice = caller(&s, "alice", url.clone(), stop.clone());
    let bob = caller(&s, "bob", url.clone(), stop.clone());
    let reloads = |n: usize| {
        for _ in 0..100 {
            if p.log().matches("configuration reloaded").count() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("no reload {n}: {}", p.log());
    };
    std::thread::sleep(Duration::from_millis(500));

    // A new server certificate (key first would leave a mismatched pair for a moment; a
    // refused reload keeps the old pair, which is the point).
    s.mutual(&[
        "issue",
        "www.example.com",
        "--role",
        "service",
        "--san",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--out",
        "new",
    ])
    .ok();
    copy("new/www.example.com.key", "live/www.key");
    copy("new/www.example.com.crt", "live/www.crt");
    reloads(1);
    // A wider CA bundle.
    let bundle = format!(
        "{}{}",
        s.read("certs/root.pem"),
        s.read("certs/alice-ca.pem")
    );
    s.write("live/ca.tmp", &bundle);
    std::fs::rename(s.path("live/ca.tmp"), s.path("live/ca.pem")).unwrap();
    let n = p.log().matches("configuration reloaded").count();
    reloads(n + 1);
    // A longer allow-list.
    s.write(
        "proxy.toml",
        &config.replace(
            "\"cn=bob.example.com\"]",
            "\"cn=bob.example.com\", \"ou=ops\"]",
        ),
    );
    reloads(n + 2);
    std::thread::sleep(Duration::from_millis(300));
    // Bob revoked mid-run.
    let serial = common::serial_of(&s, "certs/bob.example.com.crt");
    s.mutual(&["revoke", &serial]).ok();
    s.mutual(&["crl", "--ca", "root", "--out", "certs/root.crl", "--pem"])
        .ok();
    copy("certs/root.crl", "live/root.crl");
    reloads(n + 3);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let alice = alice.join().unwrap();
    let bob = bob.join().unwrap();

    assert!(
        alice.len() > 10 && bob.len() > 10,
        "too few calls: {} {}",
        alice.len(),
        bob.len()
    );
    let alice_failed: Vec<_> = alice.iter().filter(|r| *r != &Ok(200)).collect();
    assert!(
        alice_failed.is_empty(),
        "alice failed: {alice_failed:?}\n{}",
        p.log()
    );
    let first_fail = bob
        .iter()
        .position(|r| r != &Ok(200))
        .expect("bob was never refused");
    assert!(
        bob[first_fail..].iter().all(|r| r != &Ok(200)),
        "bob got in again after his revocation: {:?}",
        &bob[first_fail..]
    );
    assert!(
        bob[first_fail..]
            .iter()
            .all(|r| r.as_ref().is_err_and(|e| e.contains("revoked"))),
        "bob's refusals do not say revoked: {:?}",
        &bob[first_fail..first_fail + 1]
    );
    assert!(
        first_fail + 1 < bob.len(),
        "bob was refused only at the very end"
    );
}

const H2C_CONFIG: &str = r#"
[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"
idle_timeout = "1s"

[[listener.route]]
upstream = "echo"
allow = ["cn=alice.example.com"]

[[upstream]]
name = "echo"
servers = ["ECHO"]
protocol = "h2c"
"#;

/// An idle client held open by openssl s_client (stdin kept open, so it only ends when the
/// proxy closes): returns what the proxy sent, or None if the connection outlived `bound`.
fn idle_client(s: &Story, port: u16, alpn_h2: bool, bound: Duration) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-CAfile",
        "certs/root.pem",
        "-cert",
        "certs/alice.example.com.crt",
        "-key",
        "certs/alice.example.com.key",
        "-quiet",
    ];
    if alpn_h2 {
        args.extend(["-alpn", "h2"]);
    }
    let mut child = Command::new("openssl")
        .current_dir(s.dir.path())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running openssl s_client");
    let mut stdin = child.stdin.take().unwrap();
    if alpn_h2 {
        // The client preface and an empty SETTINGS frame, then silence.
        stdin
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .unwrap();
        stdin.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]).unwrap();
        stdin.flush().unwrap();
    }
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let mut out = Vec::new();
            child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
            drop(stdin);
            return Some(out);
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The HTTP/2 frame types in a byte stream of frames.
fn frame_types(mut b: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while b.len() >= 9 {
        let len = (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]);
        types.push(b[3]);
        b = &b[(9 + len).min(b.len())..];
    }
    types
}

#[test]
fn h2c_upstream_and_idle_connections_closed() {
    let s = Story::build("ec");
    let e = echo(&s);
    s.write(
        "h2c.toml",
        &H2C_CONFIG.replace("ECHO", &format!("http://127.0.0.1:{}", e.port)),
    );
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "h2c.toml"], "https");
    let url = format!("https://localhost:{}/over-h2c", p.port);

    // The backend sees HTTP/2 whatever the caller speaks, with the caller's identity.
    for extra in [&["--http1.1"][..], &["--http2"][..]] {
        let r = curl(&s, "alice", &url, extra);
        assert_eq!(r.status, "200", "{extra:?}: {}", r.body);
        assert!(r.body.contains("\"version\": \"HTTP/2.0\""), "{}", r.body);
        assert!(xfcc_of(&r.body).contains("CN=alice.example.com"));
    }
    assert_eq!(curl(&s, "bob", &url, &[]).status, "403");

    // Idle connections are closed after idle_timeout (1s): HTTP/1.1 silently, HTTP/2 with a
    // GOAWAY although the client would answer pings. The bound only keeps a broken proxy from
    // hanging the test.
    let bound = Duration::from_secs(20);
    assert!(
        idle_client(&s, p.port, false, bound).is_some(),
        "an idle HTTP/1.1 connection stayed open for {bound:?}"
    );
    let sent = idle_client(&s, p.port, true, bound)
        .unwrap_or_else(|| panic!("an idle HTTP/2 connection stayed open for {bound:?}"));
    let types = frame_types(&sent);
    assert_eq!(types.first(), Some(&4), "no SETTINGS first: {types:?}");
    assert!(types.contains(&7), "no GOAWAY before the close: {types:?}");
    // Still serving.
    assert_eq!(curl(&s, "alice", &url, &["--http2"]).status, "200");
}

/// A bad flag value is reported by the flag the user wrote, on one line, with exit code 2;
/// nothing is started and no file is read.
#[test]
fn bad_flag_values_name_their_flag() {
    let s = Story::new();
    let run = |flag: &str, value: &str| {
        let mut args = vec![
            "proxy", "--ca", "root.pem", "--cert", "www.crt", "--key", "www.key",
        ];
        for (f, v) in [
            ("--listen", "127.0.0.1:0"),
            ("--backend", "http://127.0.0.1:1"),
        ] {
            if f != flag {
                args.extend([f, v]);
            }
        }
        args.extend([flag, value]);
        s.mutual(&args)
    };
    let cases: &[(&str, &str, &str)] = &[
        (
            "--allow",
            "cn~[",
            "mutual: --allow: invalid matcher \"cn~[\" at column 4: bad regular expression",
        ),
        (
            "--handshake-timeout",
            "10 parsecs",
            "mutual: --handshake-timeout: ",
        ),
        ("--idle-timeout", "soon", "mutual: --idle-timeout: "),
        (
            "--request-timeout",
            "1fortnight",
            "mutual: --request-timeout: ",
        ),
        (
            "--backend",
            "https://127.0.0.1:1",
            "mutual: --backend: \"https://127.0.0.1:1\": a backend is http://HOST:PORT",
        ),
        (
            "--listen",
            "nowhere",
            "mutual: --listen: \"nowhere\" is not HOST:PORT",
        ),
        (
            "--admin",
            "127.0.0.1",
            "mutual: --admin: \"127.0.0.1\" is not HOST:PORT",
        ),
    ];
    for (flag, value, want) in cases {
        let r = run(flag, value).fails(2);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{flag}: {}", r.stderr);
        assert!(
            r.stderr.starts_with(want),
            "{flag}: want {want}: {}",
            r.stderr
        );
    }
    // Vault's duration forms pass the flags; the proxy then stops at its missing files.
    for (flag, value) in [("--idle-timeout", "30d"), ("--request-timeout", "720h")] {
        let r = run(flag, value).fails(1);
        assert!(
            r.stderr.contains("reading --cert www.crt"),
            "{flag} {value}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains(flag), "{flag} {value}: {}", r.stderr);
    }
}

/// SIGTERM, as Kubernetes stops a sidecar: the port closes at once, a request under way is
/// relayed and answered (with `connection: close`), and the proxy exits 0. Alice's request is
/// half sent when the signal comes, over a TLS connection `openssl s_client` holds.
#[test]
fn sigterm_closes_the_port_and_relays_the_request_under_way() {
    let s = Story::build("ec");
    let e = echo(&s);
    let mut p = proxy(&s, &format!("http://127.0.0.1:{}", e.port), &[]);
    let alice = common::HalfRequest::start(&s, p.port, "/under-way");
    p.terminate();
    assert!(p.wait_log("stopping: draining"), "{}", p.log());
    assert!(p.log().contains("connections=1"), "{}", p.log());
    assert!(p.port_closes(), "the port still accepts after SIGTERM");
    assert!(
        p.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with Alice's request under way: {}",
        p.log()
    );
    let answer = alice.finish();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("/under-way"),
        "the echo of the path: {answer}"
    );
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let exit = p.wait_exit(Duration::from_secs(5));
    assert!(exit.is_some_and(|e| e.success()), "{exit:?}: {}", p.log());
    assert!(!p.log().contains("connections still open"), "{}", p.log());
}

/// The tunnel on SIGTERM: its port closes, and a connection the application opened before
/// runs on to its end (the tunnel relays bytes, so it waits for the caller, not a request).
#[test]
fn sigterm_closes_the_tunnel_port_and_relays_the_connection_under_way() {
    use std::io::{Read, Write};
    let s = Story::build("ec");
    let e = echo(&s);
    let p = proxy(
        &s,
        &format!("http://127.0.0.1:{}", e.port),
        &["--allow", "cn=alice.example.com"],
    );
    let mut t = tunnel(&s, p.port);
    let mut app = std::net::TcpStream::connect(("127.0.0.1", t.port)).unwrap();
    app.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // A first request answered: the relay is up (and counted) before the signal.
    app.write_all(b"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let first = read_response(&mut app);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    app.write_all(b"GET /under-way HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    t.terminate();
    assert!(t.wait_log("stopping: draining"), "{}", t.log());
    assert!(t.log().contains("connections=1"), "{}", t.log());
    assert!(
        t.port_closes(),
        "the tunnel's port still accepts after SIGTERM"
    );
    assert!(
        t.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with the application's connection open: {}",
        t.log()
    );
    app.write_all(b"Connection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    app.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("/under-way"),
        "the echo of the path: {answer}"
    );
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(xfcc_of(body).contains("CN=alice.example.com"), "{answer}");
    drop(app);
    let exit = t.wait_exit(Duration::from_secs(5));
    assert!(exit.is_some_and(|e| e.success()), "{exit:?}: {}", t.log());
    assert!(!t.log().contains("connections still open"), "{}", t.log());
}

/// A SIGHUP sent the moment the proxy or the tunnel says it listens reloads it: the handler is
/// installed before that line (SIGHUP's default action ends the process, so one that came
/// first would).
#[test]
fn sighup_the_moment_they_listen_reloads_and_ends_nothing() {
    let s = Story::build("ec");
    let e = echo(&s);
    for round in 0..3 {
        let mut p = proxy(&s, &format!("http://127.0.0.1:{}", e.port), &[]);
        p.hang_up();
        let mut t = tunnel(&s, p.port);
        t.hang_up();
        assert!(
            p.wait_log("SIGHUP: reloading"),
            "round {round}: {}",
            p.log()
        );
        assert!(
            t.wait_log("tunnel identity reloaded"),
            "round {round}: {}",
            t.log()
        );
        for (what, proc) in [("proxy", &mut p), ("tunnel", &mut t)] {
            let exit = proc.wait_exit(Duration::from_millis(200));
            assert!(
                exit.is_none(),
                "round {round}: SIGHUP ended the {what}: {exit:?}"
            );
        }
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://127.0.0.1:{}/via-tunnel", t.port))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            xfcc_of(&body).contains("CN=alice.example.com"),
            "round {round}: {body}"
        );
    }
}

/// The tunnel watches its certificate and key as the proxy watches its files: when they are
/// replaced (a new inode, as a rename or Kubernetes' symlink swap makes), it reloads and the
/// next connection carries the new identity.
#[test]
fn the_tunnel_reloads_when_its_certificate_files_are_replaced() {
    let s = Story::build("ec");
    let e = echo(&s);
    let p = proxy(&s, &format!("http://127.0.0.1:{}", e.port), &[]);
    let certs = s.dir.path().join("certs");
    for f in ["crt", "key"] {
        std::fs::copy(
            certs.join(format!("alice.example.com.{f}")),
            certs.join(format!("me.{f}")),
        )
        .unwrap();
    }
    let mut t = Proc::start(
        s.dir.path(),
        &[
            "tunnel",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("https://localhost:{}", p.port),
            "--ca",
            "certs/root.pem",
            "--cert",
            "certs/me.crt",
            "--key",
            "certs/me.key",
        ],
        "http",
    );
    let who = || {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .arg(format!("http://127.0.0.1:{}/via-tunnel", t.port))
            .output()
            .unwrap();
        xfcc_of(&String::from_utf8_lossy(&out.stdout))
    };
    assert!(who().contains("CN=alice.example.com"), "{}", who());
    // Key first, then the certificate, each by rename: the watcher may see the key alone (the
    // reload is refused, the old identity kept) and then both.
    for f in ["key", "crt"] {
        let next = certs.join(format!("me.{f}.next"));
        std::fs::copy(certs.join(format!("bob.example.com.{f}")), &next).unwrap();
        std::fs::rename(&next, certs.join(format!("me.{f}"))).unwrap();
    }
    assert!(
        t.wait_log("a watched file changed: reloading"),
        "{}",
        t.log()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !who().contains("CN=bob.example.com") {
        assert!(
            std::time::Instant::now() < deadline,
            "still {}: {}",
            who(),
            t.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(t.log().contains("tunnel identity reloaded"), "{}", t.log());
    assert!(t.wait_exit(Duration::from_millis(10)).is_none());
}

/// Reads one HTTP/1.1 response with a content-length from a connection kept open.
fn read_response(c: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("a content-length");
            if body.len() >= length {
                return text;
            }
        }
        let n = c.read(&mut buf).expect("reading the response");
        assert!(n > 0, "closed before the whole response: {text}");
        got.extend_from_slice(&buf[..n]);
    }
}
