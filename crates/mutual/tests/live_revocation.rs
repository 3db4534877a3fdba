//! Live revocation, the subscriber side: `mutual proxy --revocation-feed` follows `mutual
//! server`'s feed. Alice and Bob each hold ONE keep-alive connection (Python's `http.client`
//! over `ssl`) and call every 50 ms; Alice is revoked at the CA; the proxy refuses her next
//! request on the connection she holds (403, then closed) within 2 s, a new handshake of hers,
//! and her saved TLS session (`openssl s_client -sess_in`), while Bob keeps getting 200. With
//! the CA down the proxy keeps its last state, or with `fail_closed` refuses after the limit.

#[path = "support/child.rs"]
mod child;
mod common;
mod proxying;
mod server;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use child::Running;
use common::Story;
use proxying::{curl, echo, proxy, Proc};
use serde_json::{json, Value};

fn api(ca: &server::Server, path: &str, body: Value) -> Value {
    let (code, out) = server::curl(ca, "POST", path, Some(&body.to_string()));
    assert!(code == 200 || code == 204, "{path}: {code} {out}");
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

/// A pki mount with a root and a role; www (the proxy), alice and bob issued through the API,
/// written where the proxy helpers look (`certs/NAME.example.com.crt|key`, `certs/root.pem`).
/// Returns alice's serial.
fn pki(s: &Story, ca: &server::Server) -> String {
    std::fs::create_dir_all(s.path("certs")).expect("certs/");
    api(ca, "sys/mounts/pki", json!({"type": "pki"}));
    let root = api(
        ca,
        "pki/root/generate/internal",
        json!({"common_name": "Feed Root", "key_type": "ec", "ttl": "87600h"}),
    );
    s.write(
        "certs/root.pem",
        root["data"]["certificate"].as_str().expect("the root"),
    );
    api(
        ca,
        "pki/roles/service",
        json!({"allowed_domains": "example.com", "allow_subdomains": true,
               "allow_localhost": true, "allow_ip_sans": true, "key_type": "ec"}),
    );
    let mut alice = String::new();
    for (who, extra) in [
        (
            "www",
            json!({"alt_names": "localhost", "ip_sans": "127.0.0.1"}),
        ),
        ("alice", json!({})),
        ("bob", json!({})),
    ] {
        let mut body = json!({"common_name": format!("{who}.example.com"), "ttl": "24h"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let out = api(ca, "pki/issue/service", body);
        let d = &out["data"];
        s.write(
            &format!("certs/{who}.example.com.crt"),
            d["certificate"].as_str().expect("certificate"),
        );
        s.write(
            &format!("certs/{who}.example.com.key"),
            d["private_key"].as_str().expect("key"),
        );
        if who == "alice" {
            alice = d["serial_number"].as_str().expect("serial").to_string();
        }
    }
    alice
}

/// A caller holding one connection for `seconds` (held.py); its answers, one JSON each.
struct Held {
    proc: Running,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Held {
    fn start(s: &Story, port: u16, who: &str, seconds: u32) -> Held {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/live_revocation/held.py");
        let mut child = Command::new("python3")
            .current_dir(s.dir.path())
            .args([
                script,
                &port.to_string(),
                &format!("certs/{who}.example.com.crt"),
                &format!("certs/{who}.example.com.key"),
                "certs/root.pem",
                &seconds.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Held {
            proc: Running::new(child),
            lines,
        }
    }

    /// Every answer, once the script ended (bounded).
    fn finish(mut self) -> Vec<Value> {
        let started = Instant::now();
        let child = &mut self.proc.child;
        while child.try_wait().expect("waiting").is_none() {
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.wait();
        std::thread::sleep(Duration::from_millis(100));
        self.lines
            .try_iter()
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// One request through `openssl s_client` (TLS 1.3), with alice's certificate (saving the
/// session) or with the saved session only: what it printed.
fn s_client(s: &Story, port: u16, with_cert: bool) -> String {
    let connect = format!("127.0.0.1:{port}");
    let mut args = vec![
        "s_client",
        "-connect",
        &connect,
        "-servername",
        "localhost",
        "-tls1_3",
        "-ign_eof",
        "-CAfile",
        "certs/root.pem",
        "-sess_out",
        "alice.sess",
    ];
    if with_cert {
        args.extend([
            "-cert",
            "certs/alice.example.com.crt",
            "-key",
            "certs/alice.example.com.key",
        ]);
    } else {
        args.extend(["-sess_in", "alice.sess"]);
    }
    let mut child = Command::new("openssl")
        .current_dir(s.dir.path())
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(b"GET /saved HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    drop(stdin);
    let started = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("s_client output");
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

fn admin_metrics(p: &Proc) -> String {
    let log = p.log();
    let admin = log
        .lines()
        .find_map(|l| l.split("admin on http://").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no admin address: {log}"))
        .to_string();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://{admin}/metrics"),
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// Calls as `who` until the status is `want` (bounded); the last status.
fn until(s: &Story, who: &str, url: &str, want: &str, limit: Duration) -> String {
    let started = Instant::now();
    loop {
        let got = curl(s, who, url, &[]).status;
        if got == want || started.elapsed() > limit {
            return got;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_revoked_caller_is_refused_on_the_connection_it_holds_within_two_seconds() {
    let s = Story::new();
    let ca = server::mutual_dev();
    let alice_serial = pki(&s, &ca);
    let e = echo(&s);
    let backend = format!("http://127.0.0.1:{}", e.port);
    let feed = format!("{}/v1/pki", ca.addr);
    let p = proxy(
        &s,
        &backend,
        &["--revocation-feed", &feed, "--admin", "127.0.0.1:0"],
    );
    let closed = proxy(
        &s,
        &backend,
        &[
            "--revocation-feed",
            &feed,
            "--revocation-feed-stale",
            "fail_closed",
            "--revocation-feed-max-stale",
            "2s",
        ],
    );
    let url = format!("https://127.0.0.1:{}/", p.port);
    let closed_url = format!("https://127.0.0.1:{}/", closed.port);
    assert_eq!(curl(&s, "bob", &closed_url, &[]).status, "200");

    // Alice's session, saved before the revocation.
    let saved = s_client(&s, p.port, true);
    assert!(saved.contains("HTTP/1.1 200"), "{saved}");

    let alice = Held::start(&s, p.port, "alice", 6);
    let bob = Held::start(&s, p.port, "bob", 6);
    std::thread::sleep(Duration::from_millis(1500));
    let revoked_at = now();
    api(
        &ca,
        "pki/revoke",
        json!({"serial_number": alice_serial, "reason": "keyCompromise"}),
    );

    let a = alice.finish();
    let first = a.first().expect("alice was answered");
    assert_eq!(first["status"], 200, "{a:?}");
    let refused = a
        .iter()
        .find(|r| r["status"] != 200)
        .unwrap_or_else(|| panic!("alice was never refused: {a:?}"));
    assert_eq!(refused["status"], 403, "{refused}");
    assert_eq!(
        refused["sock"], first["sock"],
        "refused on another connection"
    );
    assert_eq!(
        refused["close"], true,
        "the connection stays open: {refused}"
    );
    let body = refused["body"].as_str().unwrap_or_default();
    assert!(
        body.starts_with("certificate revoked at ") && body.contains("(feed)"),
        "{body}"
    );
    let latency = refused["t"].as_f64().expect("t") - revoked_at;
    println!("revocation to refusal on a held connection: {latency:.3} s");
    assert!(latency <= 2.0, "refused after {latency:.3} s");

    let b = bob.finish();
    assert!(b.len() >= 40, "bob called {} times", b.len());
    assert!(
        b.iter()
            .all(|r| r["status"] == 200 && r["sock"] == b[0]["sock"]),
        "{b:?}"
    );

    // A new handshake, and the saved session.
    assert_ne!(curl(&s, "alice", &url, &[]).status, "200");
    let resumed = s_client(&s, p.port, false);
    assert!(!resumed.contains("Reused, TLS"), "{resumed}");
    assert!(!resumed.contains("HTTP/1.1 200"), "{resumed}");
    assert_eq!(curl(&s, "bob", &url, &[]).status, "200");

    // Logged once on the held connection; counted.
    let log = p.log();
    let at_request = log
        .lines()
        .filter(|l| l.contains("refused a caller by the revocation feed") && l.contains("request"))
        .count();
    assert_eq!(at_request, 1, "{log}");
    let m = admin_metrics(&p);
    assert!(metric(&m, "mutual_proxy_revocation_feed_seq") >= 1.0, "{m}");
    assert!(
        metric(&m, "mutual_proxy_revocation_feed_revoked_refusals_total") >= 2.0,
        "{m}"
    );
    assert!(
        metric(&m, "mutual_proxy_revocation_feed_last_contact_seconds") >= 0.0,
        "{m}"
    );

    // The CA goes away: keep_last serves Bob and still refuses Alice; fail_closed refuses
    // every caller once the last contact is older than its limit.
    drop(ca);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(curl(&s, "bob", &url, &[]).status, "200");
    assert_ne!(curl(&s, "alice", &url, &[]).status, "200");
    assert_ne!(
        until(&s, "bob", &closed_url, "000", Duration::from_secs(40)),
        "200",
        "{}",
        closed.log()
    );
    assert!(
        closed.wait_log("has not answered since"),
        "{}",
        closed.log()
    );
}

/// `mutual proxy`'s `crl_fetch` against `mutual server`'s own CRL, polled every second. After
/// the first download each round is a 304 (the proxy sends the CRL's ETag back); a revocation
/// changes the bytes and so the tag, the next round downloads the new CRL and the revoked caller
/// is refused: a conditional fetch never keeps a CRL past its change.
#[test]
fn a_fetched_crl_moves_only_when_it_changes_and_a_revocation_still_arrives() {
    let s = Story::new();
    let ca = server::mutual_dev();
    let alice_serial = pki(&s, &ca);
    let e = echo(&s);
    let crl_url = format!("{}/v1/pki/crl", ca.addr);
    s.write(
        "proxy.toml",
        &format!(
            r#"
[admin]
listen = "127.0.0.1:0"

[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"
crl_fetch = true
crl_refresh = "1s"
crl_stale = "fail_closed"
crl_urls = ["{crl_url}"]
[[listener.route]]
upstream = "echo"
allow = ["any"]

[[upstream]]
name = "echo"
servers = ["http://127.0.0.1:{}"]
"#,
            e.port
        ),
    );
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "proxy.toml"], "https");
    let url = format!("https://127.0.0.1:{}/", p.port);
    assert_eq!(curl(&s, "alice", &url, &[]).status, "200", "{}", p.log());
    let fetches = |answer: &str| -> f64 {
        let m = admin_metrics(&p);
        m.lines()
            .find(|l| {
                l.starts_with("mutual_proxy_crl_fetches_total{")
                    && l.contains(&format!("url=\"{crl_url}\""))
                    && l.contains(&format!("answer=\"{answer}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {answer} fetches of {crl_url} in {m}"))
    };
    // Rounds until the CRL is answered 304 (the server's own resync may rebuild it once after
    // the set-up's mount writes), then three more: not one of them a download.
    let rounds = |at_least: f64| {
        let started = Instant::now();
        while fetches("not_modified") < at_least && started.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    rounds(1.0);
    let (unchanged, downloaded) = (fetches("not_modified"), fetches("downloaded"));
    rounds(unchanged + 3.0);
    let (later, downloaded_later) = (fetches("not_modified"), fetches("downloaded"));
    println!("before the revocation: {downloaded_later} downloaded, {later} not modified");
    assert!(later >= unchanged + 3.0, "{}", p.log());
    assert_eq!(downloaded_later, downloaded, "{}", p.log());
    let (_, server_metrics) = server::curl(&ca, "GET", "sys/metrics", None);
    assert!(
        metric(
            &server_metrics,
            "mutual_public_material_responses_total{answer=\"not_modified\"}"
        ) >= 3.0,
        "{server_metrics}"
    );

    // The revocation: the next round downloads, and Alice is refused; Bob is not.
    api(&ca, "pki/revoke", json!({"serial_number": alice_serial}));
    let revoked_at = Instant::now();
    assert_eq!(
        until(&s, "alice", &url, "000", Duration::from_secs(10)),
        "000",
        "{}",
        p.log()
    );
    println!(
        "alice refused {:.1} s after the revocation",
        revoked_at.elapsed().as_secs_f64()
    );
    assert_eq!(curl(&s, "bob", &url, &[]).status, "200", "{}", p.log());
    assert_eq!(fetches("downloaded"), downloaded + 1.0, "{}", p.log());
}
