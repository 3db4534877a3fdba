//! Enrolled services (`mutual proxy --enroll`, `mutual serve hello --enroll`) against a real
//! `mutual server` on loopback, with 9-second certificates (and `mutual tunnel --enroll` and
//! `mutual agent` as clients): rotation under load with 0 failed
//! requests and a new serial seen by `openssl s_client` after each renewal; the CA down across
//! a renewal point (the proxy keeps serving, counts the failure in /metrics, renews soon after
//! the CA returns); bad input as one line and exit 1. Every process is killed by its PID;
//! every wait is bounded.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "support/child.rs"]
mod child;
mod lifecycle;
use child::Running;
use lifecycle::{bin, free_port, Ca};

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("running");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Waits (bounded) until `cond` holds.
fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Starts `mutual ARGS`, stdout and stderr to one log file, and waits (bounded) until the log
/// holds `ready`.
fn start_mutual(args: &[&str], log: &Path, ready: &str) -> Running {
    let file = std::fs::File::create(log).expect("log file");
    let child = Command::new(bin())
        .args(args)
        .env_remove("MUTUAL_TOKEN")
        .env_remove("MUTUAL_ADDR")
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .spawn()
        .expect("starting mutual");
    let mut p = Running::logged(child, log);
    let start = Instant::now();
    while !p.log().contains(ready) {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("mutual {args:?} exited ({status}):\n{}", p.log());
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "mutual {args:?} not ready:\n{}",
            p.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

/// `--enroll` and its companions for a server certificate good for 127.0.0.1.
fn enroll_args<'a>(ca: &'a str, token: &'a str, cn: &'a str, ttl: &'a str) -> Vec<&'a str> {
    vec![
        "--enroll",
        ca,
        "--token",
        token,
        "--role",
        "service",
        "--cn",
        cn,
        "--ip",
        "127.0.0.1",
        "--ttl",
        ttl,
    ]
}

/// The generation directory `mutual agent` points `..data` at now: its three files match.
fn generation(out: &Path) -> PathBuf {
    out.join(std::fs::read_link(out.join("..data")).expect("..data"))
}

/// A private copy of the client's current pair and bundle in `to` (curl reads its files once
/// per connection, and the agent removes old generations): `None` when the generation went
/// away while it was copied.
fn snapshot(out: &Path, to: &Path) -> Option<PathBuf> {
    let g = generation(out);
    std::fs::create_dir_all(to).ok()?;
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::copy(g.join(f), to.join(f)).ok()?;
    }
    Some(to.to_path_buf())
}

/// The serial of the certificate the server at `port` presents, as `openssl s_client` sees it.
fn served_serial(port: u16, client: &Path) -> Option<String> {
    let g = snapshot(client, &client.with_extension(format!("observer-{port}")))?;
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -cert {c} -key {k} </dev/null 2>/dev/null | openssl x509 -noout -serial",
        c = g.join("cert.pem").display(),
        k = g.join("key.pem").display(),
    );
    let out = Command::new("sh").arg("-c").arg(script).output().ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    s.starts_with("serial=").then_some(s)
}

/// The serial of the client's current certificate (`None` when its generation went away
/// while it was read).
fn serial_of(out: &Path) -> Option<String> {
    let g = snapshot(out, &out.with_extension("serial"))?;
    let (ok, s) = openssl(&[
        "x509",
        "-in",
        &g.join("cert.pem").to_string_lossy(),
        "-noout",
        "-serial",
    ]);
    assert!(ok, "{s}");
    Some(s.trim().to_string())
}

#[derive(Default)]
struct Load {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The client's files could not be copied (a generation removed under it): no request.
    local: AtomicU64,
    /// What the failed batches saw.
    why: std::sync::Mutex<Vec<String>>,
}

/// Keep-alive load through `urls` with the client identity in `client` (read afresh for each
/// batch, so the client's renewals are used) until `stop`.
fn load(
    urls: Vec<String>,
    plain: Vec<String>,
    client: PathBuf,
    stop: Arc<AtomicBool>,
    tally: Arc<Load>,
) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(90) {
        // Stopped without a word when the test that started it ended early.
        if !client.join("..data").exists() {
            return;
        }
        let Some(g) = snapshot(&client, &client.with_extension("load")) else {
            tally.local.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-w", "%{http_code}\n"])
            .arg("--cacert")
            .arg(g.join("ca.pem"))
            .arg("--cert")
            .arg(g.join("cert.pem"))
            .arg("--key")
            .arg(g.join("key.pem"))
            .args(urls.iter().flat_map(|u| ["-o", "/dev/null", u.as_str()]))
            .output()
            .expect("curl");
        let through_tunnel = Command::new("curl")
            .args(["-sS", "--max-time", "10", "-w", "%{http_code}\n"])
            .args(plain.iter().flat_map(|u| ["-o", "/dev/null", u.as_str()]))
            .output()
            .expect("curl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&through_tunnel.stdout)
        );
        let sent = (urls.len() + plain.len()) as u64;
        let ok = text.lines().filter(|l| l.trim() == "200").count() as u64;
        if ok < sent {
            tally.why.lock().unwrap().push(format!(
                "curl exit {:?}: {:?} {}",
                out.status.code(),
                text,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        tally.ok.fetch_add(ok, Ordering::Relaxed);
        tally.failed.fetch_add(sent - ok, Ordering::Relaxed);
    }
}

#[test]
fn rotation_under_load_with_zero_failed_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let addr = ca.addr();
    let echo_port = free_port();
    let _echo = start_mutual(
        &[
            "serve",
            "echo",
            "--listen",
            &format!("127.0.0.1:{echo_port}"),
        ],
        &tmp.path().join("echo.log"),
        "",
    );
    // The client: files from `mutual agent`, renewed like the servers.
    let alice = tmp.path().join("alice");
    let alice_dir = alice.to_string_lossy().into_owned();
    let _agent = start_mutual(
        &[
            "agent",
            "--addr",
            &addr,
            "--token",
            &ca.token,
            "--role",
            "service",
            "--cn",
            "alice.example.com",
            "--ttl",
            "9s",
            "--out",
            &alice_dir,
        ],
        &tmp.path().join("agent.log"),
        "",
    );
    wait_for("alice's first certificate", Duration::from_secs(20), || {
        alice.join("..data").exists()
    });
    let (proxy_port, hello_port) = (free_port(), free_port());
    let mut args = vec![
        "proxy".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{proxy_port}"),
        "--backend".into(),
        format!("http://127.0.0.1:{echo_port}"),
    ];
    args.extend(
        enroll_args(&addr, &ca.token, "proxy.example.com", "9s")
            .into_iter()
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut proxy = start_mutual(
        &args,
        &tmp.path().join("proxy.log"),
        "mutual proxy listening on https://",
    );
    let listen = format!("127.0.0.1:{hello_port}");
    let mut args = vec!["serve", "hello", "--listen", &listen];
    args.extend(enroll_args(&addr, &ca.token, "hello.example.com", "9s"));
    let mut hello = start_mutual(&args, &tmp.path().join("hello.log"), "serving hello on");
    // A client identity in memory: `mutual tunnel` enrolled, in front of the enrolled proxy.
    let tunnel_listen = format!("127.0.0.1:{}", free_port());
    let upstream = format!("https://127.0.0.1:{proxy_port}");
    let mut args = vec![
        "tunnel",
        "--listen",
        &tunnel_listen,
        "--upstream",
        &upstream,
    ];
    args.extend(enroll_args(&addr, &ca.token, "tunnel.example.com", "9s"));
    let mut tunnel = start_mutual(
        &args,
        &tmp.path().join("tunnel.log"),
        "mutual tunnel listening",
    );
    // An operator's SIGHUP (reload) ends none of them: the enrolled service and tunnel have no
    // file to read again and say so; the proxy reloads its configuration.
    for (p, said) in [
        (&mut proxy, "SIGHUP: reloading"),
        (&mut hello, "SIGHUP: nothing to reload"),
        (&mut tunnel, "SIGHUP: nothing to reload"),
    ] {
        p.hang_up();
        wait_for(said, Duration::from_secs(10), || p.log().contains(said));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Load::default());
    let mut urls = Vec::new();
    for _ in 0..5 {
        urls.push(format!("https://127.0.0.1:{proxy_port}/echo"));
    }
    for _ in 0..5 {
        urls.push(format!("https://127.0.0.1:{hello_port}/?name=alice"));
    }
    let plain = vec![format!("http://{tunnel_listen}/echo"); 5];
    let worker = {
        let (stop, tally, alice) = (Arc::clone(&stop), Arc::clone(&tally), alice.clone());
        std::thread::spawn(move || load(urls, plain, alice, stop, tally))
    };
    // Watch the serials each side presents until every one was renewed at least 3 times.
    let (mut proxy_serials, mut hello_serials, mut alice_serials) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60)
        && [&proxy_serials, &hello_serials, &alice_serials]
            .iter()
            .any(|s| s.len() < 4)
        || tunnel.log().matches("certificate swapped: ").count() < 3
    {
        proxy_serials.extend(served_serial(proxy_port, &alice));
        hello_serials.extend(served_serial(hello_port, &alice));
        alice_serials.extend(serial_of(&alice));
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("the load thread");
    let (ok, failed, local) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
        tally.local.load(Ordering::Relaxed),
    );
    eprintln!("load: {ok} ok, {failed} failed, {local} batches not sent; serials: proxy {proxy_serials:?}, hello {hello_serials:?}, alice {alice_serials:?}");
    assert_eq!(
        failed,
        0,
        "failed requests: {:?}",
        tally.why.lock().unwrap()
    );
    assert!(ok >= 200, "too little load: {ok} requests");
    assert!(
        proxy_serials.len() >= 4,
        "{proxy_serials:?}\n{}",
        proxy.log()
    );
    assert!(
        hello_serials.len() >= 4,
        "{hello_serials:?}\n{}",
        hello.log()
    );
    assert!(alice_serials.len() >= 4, "{alice_serials:?}");
    for (name, log) in [
        ("proxy", proxy.log()),
        ("hello", hello.log()),
        ("tunnel", tunnel.log()),
    ] {
        let swaps = log.matches("certificate swapped: ").count();
        assert!(swaps >= 3, "{name}: {swaps} swaps\n{log}");
    }
}

#[test]
fn the_ca_down_across_a_renewal_point_keeps_the_proxy_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ca = Ca::new(tmp.path());
    let addr = ca.addr();
    let echo_port = free_port();
    let _echo = start_mutual(
        &[
            "serve",
            "echo",
            "--listen",
            &format!("127.0.0.1:{echo_port}"),
        ],
        &tmp.path().join("echo.log"),
        "",
    );
    let alice = tmp.path().join("alice");
    let (code, _, err) = run(Command::new(bin())
        .args([
            "agent", "--addr", &addr, "--token", &ca.token, "--role", "service",
        ])
        .args([
            "--cn",
            "alice.example.com",
            "--ttl",
            "1h",
            "--once",
            "--out",
        ])
        .arg(&alice)
        .env_remove("MUTUAL_TOKEN"));
    assert_eq!(code, 0, "{err}");
    let (port, admin) = (free_port(), format!("127.0.0.1:{}", free_port()));
    let listen = format!("127.0.0.1:{port}");
    let backend = format!("http://127.0.0.1:{echo_port}");
    let mut args = vec![
        "proxy",
        "--listen",
        &listen,
        "--backend",
        &backend,
        "--admin",
        &admin,
    ];
    args.extend(enroll_args(&addr, &ca.token, "proxy.example.com", "20s"));
    let proxy = start_mutual(
        &args,
        &tmp.path().join("proxy.log"),
        "mutual proxy listening on https://",
    );
    let first = served_serial(port, &alice).expect("the first serial");
    let failed = format!("mutual_proxy_renewals_total{{listener=\"{listen}\",result=\"failed\"}}");
    let ok = format!("mutual_proxy_renewals_total{{listener=\"{listen}\",result=\"ok\"}}");
    assert_eq!(metric(&http_get(&admin, "/metrics").1, &ok), Some(0.0));
    ca.stop();
    // Renewal is due ~13 s in.
    wait_for(
        "a failed renewal in the metrics",
        Duration::from_secs(20),
        || metric(&http_get(&admin, "/metrics").1, &failed).is_some_and(|n| n >= 1.0),
    );
    let g = generation(&alice);
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(g.join("ca.pem"))
        .arg("--cert")
        .arg(g.join("cert.pem"))
        .arg("--key")
        .arg(g.join("key.pem"))
        .arg(format!("https://{listen}/"))
        .output()
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200",
        "{}",
        proxy.log()
    );
    assert_eq!(served_serial(port, &alice).as_deref(), Some(first.as_str()));
    let m = http_get(&admin, "/metrics").1;
    assert!(
        m.lines()
            .any(|l| l.starts_with("mutual_proxy_cert_expiry_seconds{")
                && l.contains("role=\"server\"")),
        "{m}"
    );
    assert!(
        proxy
            .log()
            .contains("renewal failed; keeping the current certificate"),
        "{}",
        proxy.log()
    );
    ca.start();
    let back = Instant::now();
    wait_for(
        "a new serial after the CA is back",
        Duration::from_secs(6),
        || served_serial(port, &alice).is_some_and(|s| s != first),
    );
    // Backoff is capped at a tenth of the lifetime: 2 s.
    assert!(
        back.elapsed() < Duration::from_secs(4),
        "renewed {:?} after the CA returned",
        back.elapsed()
    );
    assert_eq!(metric(&http_get(&admin, "/metrics").1, &ok), Some(1.0));
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let one_line = |code: i32, err: &str, want: &[&str]| {
        assert_eq!(code, 1, "{err}");
        let last = err.lines().last().unwrap_or("");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("mutual: ")).count(),
            1,
            "{err}"
        );
        for w in want {
            assert!(last.contains(w), "{last:?} lacks {w:?}");
        }
    };
    // --enroll with --cert.
    let (code, _, err) = run(Command::new(bin()).args([
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "http://127.0.0.1:1",
        "--enroll",
        "http://127.0.0.1:1",
        "--role",
        "service",
        "--cn",
        "a.example.com",
        "--cert",
        "c.pem",
        "--key",
        "k.pem",
    ]));
    one_line(code, &err, &["--enroll cannot go with --cert/--key"]);
    // A CA that never answers: given up after ~10 s, naming the CA and why.
    let gone = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let (code, _, err) = run(Command::new(bin())
        .args(["serve", "hello", "--listen", "127.0.0.1:0", "--token", "t"])
        .args([
            "--enroll",
            &gone,
            "--role",
            "service",
            "--cn",
            "a.example.com",
        ]));
    one_line(
        code,
        &err,
        &["cannot enroll at", &gone, "no CA node answered"],
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    // A role that refuses the name: at once, no retries.
    let ca = Ca::new(tmp.path());
    let addr = ca.addr();
    let started = Instant::now();
    let (code, _, err) = run(Command::new(bin())
        .args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--backend",
            "http://127.0.0.1:1",
        ])
        .args(["--enroll", &addr, "--token", &ca.token, "--role", "service"])
        .args(["--cn", "evil.example.org"]));
    one_line(code, &err, &["cannot enroll at", &addr, "refused"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.contains("trying again"), "{err}");
}

/// The issuer CN of the client's current certificate.
fn issuer_of(out: &Path) -> Option<String> {
    let g = snapshot(out, &out.with_extension("issuer"))?;
    let (ok, s) = openssl(&[
        "x509",
        "-in",
        &g.join("cert.pem").to_string_lossy(),
        "-noout",
        "-issuer",
    ]);
    ok.then(|| s.trim().to_string())
}

/// Issue 14: `mutual ca rotate` while the load runs through an enrolled proxy whose clients
/// hold certificates of the current root: 0 failed requests; the old root's and the new root's
/// leaves are both accepted until the old ones expire; `openssl verify` agrees at each step.
#[test]
fn ca_rotation_under_load_with_zero_failed_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let addr = ca.addr();
    let echo_port = free_port();
    let _echo = start_mutual(
        &[
            "serve",
            "echo",
            "--listen",
            &format!("127.0.0.1:{echo_port}"),
        ],
        &tmp.path().join("echo.log"),
        "",
    );
    let alice = tmp.path().join("alice");
    let alice_dir = alice.to_string_lossy().into_owned();
    let _agent = start_mutual(
        &[
            "agent",
            "--addr",
            &addr,
            "--token",
            &ca.token,
            "--role",
            "service",
            "--cn",
            "alice.example.com",
            "--ttl",
            "9s",
            "--out",
            &alice_dir,
        ],
        &tmp.path().join("agent.log"),
        "",
    );
    wait_for("alice's first certificate", Duration::from_secs(20), || {
        alice.join("..data").exists()
    });
    let proxy_port = free_port();
    let mut args = vec![
        "proxy".to_string(),
        "--listen".into(),
        format!("127.0.0.1:{proxy_port}"),
        "--backend".into(),
        format!("http://127.0.0.1:{echo_port}"),
    ];
    args.extend(
        enroll_args(&addr, &ca.token, "proxy.example.com", "9s")
            .into_iter()
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let proxy = start_mutual(
        &args,
        &tmp.path().join("proxy.log"),
        "mutual proxy listening on https://",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Load::default());
    let urls = vec![format!("https://127.0.0.1:{proxy_port}/echo"); 5];
    let worker = {
        let (stop, tally, alice) = (Arc::clone(&stop), Arc::clone(&tally), alice.clone());
        std::thread::spawn(move || load(urls, vec![], alice, stop, tally))
    };
    let old_issuer = issuer_of(&alice).expect("alice's issuer");
    let bundle = |name: &str| {
        let path = tmp.path().join(name);
        let (code, body) = ca.call("GET", "pki/trust-bundle", "");
        assert_eq!(code, 200, "{body}");
        std::fs::write(&path, body).unwrap();
        path
    };
    let verify_alice = |trust: &Path| {
        let g = snapshot(&alice, &alice.with_extension("verify"))?;
        let cert = g.join("cert.pem");
        Some(openssl(&[
            "verify",
            "-CAfile",
            &trust.to_string_lossy(),
            &cert.to_string_lossy(),
        ]))
    };
    std::thread::sleep(Duration::from_secs(2));

    // Stage, switching in 12 s: every 9 s certificate renews (and refreshes its trust bundle)
    // before the switch.
    let (code, out, err) = run(Command::new(bin()).args([
        "ca",
        "rotate",
        "pki",
        "--addr",
        &addr,
        "--token",
        &ca.token,
        "--switch-after",
        "12s",
    ]));
    eprintln!("{out}{err}");
    assert_eq!(code, 0, "{err}");
    let staged = bundle("staged.pem");
    assert_eq!(
        std::fs::read_to_string(&staged)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        2
    );
    if let Some((ok, text)) = verify_alice(&staged) {
        eprintln!("staged: {}", text.trim());
        assert!(ok, "{text}");
    }
    // Switched: alice's next certificate comes from the new root.
    wait_for(
        "alice's certificate from the new root",
        Duration::from_secs(40),
        || issuer_of(&alice).is_some_and(|i| i != old_issuer),
    );
    let switched = bundle("switched.pem");
    if let Some((ok, text)) = verify_alice(&switched) {
        eprintln!("switched: {}", text.trim());
        assert!(ok, "{text}");
    }
    // Retired once the old root's last leaf has expired: the bundle holds the new root alone.
    wait_for("the old root retired", Duration::from_secs(40), || {
        ca.call("GET", "pki/rotation", "").1.contains("\"retired\"")
    });
    let retired = bundle("retired.pem");
    assert_eq!(
        std::fs::read_to_string(&retired)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count(),
        1
    );
    std::thread::sleep(Duration::from_secs(3));
    if let Some((ok, text)) = verify_alice(&retired) {
        eprintln!("retired: {}", text.trim());
        assert!(ok, "{text}");
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().expect("the load thread");
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!("load through the rotation: {ok} ok, {failed} failed");
    assert_eq!(
        failed,
        0,
        "failed requests: {:?}\n{}",
        tally.why.lock().unwrap(),
        proxy.log()
    );
    assert!(ok >= 100, "too little load: {ok} requests");
}
