//! `mutual agent` against a real `mutual server` on loopback: enrollment, renewal with short
//! certificates, `kill -9` at random moments (the pair on disk always matches and verifies
//! with `openssl`), the CA down across a renewal point, and bad input. Every process is
//! killed by its PID; every wait is bounded.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "support/child.rs"]
mod child;
mod lifecycle;
mod server;
use child::Running;
use lifecycle::{bin, free_port, Ca};

/// `mutual agent` with these extra arguments.
fn agent_cmd(ca_addr: &str, token: &str, out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args([
        "agent", "--addr", ca_addr, "--token", token, "--role", "service",
    ])
    .arg("--out")
    .arg(out)
    .args(args)
    .env_remove("MUTUAL_TOKEN")
    .env_remove("MUTUAL_ADDR");
    cmd
}

/// `mutual agent`, its stderr appended to `log`.
fn start_agent(ca_addr: &str, token: &str, out: &Path, log: &Path, args: &[&str]) -> Running {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("agent log");
    let child = agent_cmd(ca_addr, token, out, args)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("starting mutual agent");
    Running::logged(child, log)
}

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

/// The serial of `DIR/cert.pem` after checking the pair on disk: the chain verifies against
/// `ca.pem` (time not checked: a pair left by a kill may have expired since; what is checked is
/// that it was never torn nor mixed), and the key is the certificate's.
fn check_pair(dir: &Path) -> String {
    // As a reader must while the agent runs: resolve the generation once, read all from it.
    let gen = dir.join(std::fs::read_link(dir.join("..data")).expect("..data"));
    let p = |f: &str| gen.join(f).to_string_lossy().into_owned();
    let (ok, text) = openssl(&[
        "verify",
        "-no_check_time",
        "-CAfile",
        &p("ca.pem"),
        "-untrusted",
        &p("cert.pem"),
        &p("cert.pem"),
    ]);
    assert!(ok, "openssl verify: {text}");
    let (ok, cert_key) = openssl(&["x509", "-in", &p("cert.pem"), "-noout", "-pubkey"]);
    assert!(ok, "{cert_key}");
    let (ok, key) = openssl(&["pkey", "-in", &p("key.pem"), "-pubout"]);
    assert!(ok, "{key}");
    assert_eq!(cert_key, key, "key.pem is not the key of cert.pem");
    let (ok, serial) = openssl(&["x509", "-in", &p("cert.pem"), "-noout", "-serial"]);
    assert!(ok);
    serial.trim().to_string()
}

fn serial_now(dir: &Path) -> Option<String> {
    dir.join("cert.pem").exists().then(|| check_pair(dir))
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

#[test]
fn enrolls_then_renews_with_a_new_serial_and_runs_the_hook() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let out = tmp.path().join("out");
    let hook_count = tmp.path().join("hooks");
    let admin = format!("127.0.0.1:{}", free_port());
    // The first node is down: the agent logs it and fails over to the second.
    let addrs = format!("http://127.0.0.1:{},{}", free_port(), ca.addr());
    let exec = format!("echo x >> {}", hook_count.display());
    let agent = start_agent(
        &addrs,
        &ca.token,
        &out,
        &tmp.path().join("agent.log"),
        &[
            "--cn",
            "svc.example.com",
            "--san",
            "svc.example.com,localhost",
            "--ip",
            "127.0.0.1",
            "--ttl",
            "9s",
            "--exec",
            &exec,
            "--admin",
            &admin,
        ],
    );
    wait_for("the first certificate", Duration::from_secs(20), || {
        out.join("cert.pem").exists()
    });
    let first = check_pair(&out);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let (_, text) = openssl(&[
        "x509",
        "-in",
        &out.join("cert.pem").to_string_lossy(),
        "-noout",
        "-text",
    ]);
    assert!(
        text.contains("DNS:svc.example.com") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
    wait_for("ready", Duration::from_secs(5), || {
        http_get(&admin, "/ready").0 == 200
    });
    // 9 s certificates renew about 6 s after they arrive.
    let mut second = first.clone();
    wait_for("a renewal", Duration::from_secs(20), || {
        second = serial_now(&out).unwrap_or_default();
        second != first
    });
    wait_for("the hook after the renewal", Duration::from_secs(5), || {
        std::fs::read_to_string(&hook_count)
            .unwrap_or_default()
            .lines()
            .count()
            >= 2
    });
    let (code, metrics) = http_get(&admin, "/metrics");
    assert_eq!(code, 200);
    assert!(
        metric(&metrics, "mutual_agent_renewals_total{result=\"success\"}").unwrap() >= 2.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "mutual_agent_hook_runs_total{result=\"ok\"}").unwrap() >= 2.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "mutual_agent_last_renewal_success"),
        Some(1.0),
        "{metrics}"
    );
    // The agent alone runs on the system allocator (mutual-alloc chose it before main).
    assert_eq!(
        metric(
            &metrics,
            "mutual_agent_allocator_info{allocator=\"system\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    // Asleep between renewals, it has unmapped the pages of the binary it ran, and it still
    // renews (above: the renewals after the first sleep).
    assert!(
        metric(&metrics, "mutual_agent_program_pages_released_bytes").unwrap() > 0.0,
        "{metrics}"
    );
    let expiry = metric(&metrics, "mutual_agent_cert_expiry_seconds").unwrap();
    assert!(expiry > 0.0 && expiry <= 10.0, "{metrics}");
    assert!(
        metric(&metrics, "mutual_agent_next_attempt_seconds").unwrap() <= 9.0,
        "{metrics}"
    );
    let log = agent.log();
    assert!(
        log.contains("CA node unreachable; trying the next"),
        "{log}"
    );
    assert!(
        log.contains("decision=\"renewed\"") || log.contains("decision=renewed"),
        "{log}"
    );
    // The current generation and the one before it (kept for readers mid-swap), no leftovers.
    let gens = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("..20"))
        .count();
    assert_eq!(gens, 2);
}

/// A tiny xorshift so the kill moments differ per run but stay reproducible from the seed
/// printed on failure.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn kill_9_at_random_moments_never_leaves_a_torn_or_mismatched_pair() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let out = tmp.path().join("out");
    let log = tmp.path().join("agent.log");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill seed {seed}");
    let mut serials = std::collections::BTreeSet::new();
    let start = Instant::now();
    let mut kills = 0;
    // 3 s certificates renew every ~2 s; each agent lives a random 0–2.5 s.
    while kills < 50 && start.elapsed() < Duration::from_secs(150) {
        let mut agent = start_agent(
            &ca.addr(),
            &ca.token,
            &out,
            &log,
            &["--cn", "k.example.com", "--ttl", "3s"],
        );
        let life = Duration::from_millis(xorshift(&mut seed) % 2500);
        std::thread::sleep(life);
        agent.child.kill().expect("kill -9");
        let _ = agent.child.wait();
        kills += 1;
        if let Some(serial) = serial_now(&out) {
            serials.insert(serial);
        }
        let stray = std::fs::read_dir(&out)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("..20"))
                    .count()
            })
            .unwrap_or(0);
        // Current, previous, and at most one half-written by the kill (removed at next start).
        assert!(stray <= 3, "generations pile up: {stray}");
    }
    assert!(kills >= 30, "only {kills} kills in time");
    assert!(
        serials.len() >= 10,
        "only {} certificates seen across {kills} kills",
        serials.len()
    );
    eprintln!("{kills} kills, {} certificates", serials.len());
}

#[test]
fn the_ca_down_across_a_renewal_point() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ca = Ca::new(tmp.path());
    let out = tmp.path().join("out");
    let admin = format!("127.0.0.1:{}", free_port());
    let agent = start_agent(
        &ca.addr(),
        &ca.token,
        &out,
        &tmp.path().join("agent.log"),
        &[
            "--cn",
            "down.example.com",
            "--ttl",
            "15s",
            "--admin",
            &admin,
        ],
    );
    wait_for("the first certificate", Duration::from_secs(20), || {
        out.join("cert.pem").exists()
    });
    let first = check_pair(&out);
    ca.stop();
    // Renewal is due ~10 s in: wait for a failed attempt, then keep serving the same files.
    wait_for(
        "a failed attempt in the metrics",
        Duration::from_secs(20),
        || {
            let (_, m) = http_get(&admin, "/metrics");
            metric(&m, "mutual_agent_last_renewal_success") == Some(0.0)
        },
    );
    let (_, m) = http_get(&admin, "/metrics");
    assert!(
        metric(&m, "mutual_agent_renewals_total{result=\"unreachable\"}").unwrap() >= 1.0,
        "{m}"
    );
    // Backoff is capped at a tenth of the lifetime: the next attempt is at most ~1.5 s away.
    assert!(
        metric(&m, "mutual_agent_next_attempt_seconds").unwrap() <= 1.6,
        "{m}"
    );
    assert_eq!(
        check_pair(&out),
        first,
        "the current certificate stays while the CA is down"
    );
    assert_eq!(http_get(&admin, "/ready").0, 200);
    let log = agent.log();
    assert!(
        log.contains("renewal failed; keeping the current certificate"),
        "{log}"
    );
    assert!(log.contains("past its renewal point"), "{log}");
    ca.start();
    let back = Instant::now();
    wait_for(
        "the renewal after the CA is back",
        Duration::from_secs(5),
        || serial_now(&out).is_some_and(|s| s != first),
    );
    assert!(
        back.elapsed() < Duration::from_secs(3),
        "renewed {:?} after the CA returned",
        back.elapsed()
    );
    let (_, m) = http_get(&admin, "/metrics");
    assert_eq!(
        metric(&m, "mutual_agent_last_renewal_success"),
        Some(1.0),
        "{m}"
    );
}

fn once(ca: &str, token: &str, out: &Path, args: &[&str]) -> (i32, String, String) {
    run(agent_cmd(ca, token, out, args).arg("--once"))
}

#[test]
fn bad_input_is_one_clear_line_and_no_retry_storm() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let out = tmp.path().join("out");
    let cn = ["--cn", "ok.example.com"];

    // The CA unreachable at first start.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (code, _, err) = once(&dead, "t", &out, &cn);
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("mutual: enrolling ")
            && last.contains("no CA node answered")
            && last.contains("cannot connect to"),
        "{err}"
    );
    assert!(!out.join("cert.pem").exists());

    // A wrong token.
    let (code, _, err) = once(&ca.addr(), "not-a-token", &out, &cn);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("refused (403): permission denied"),
        "{err}"
    );

    // A role that refuses the name: the refusal with the rule.
    let (code, _, err) = once(&ca.addr(), &ca.token, &out, &["--cn", "evil.com"]);
    assert_eq!(code, 1, "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("refused (400)") && last.contains("evil.com"),
        "{err}"
    );

    // ... and as a daemon, no retry storm: one attempt, then the cap.
    let admin = format!("127.0.0.1:{}", free_port());
    let agent = start_agent(
        &ca.addr(),
        &ca.token,
        &out,
        &tmp.path().join("evil.log"),
        &["--cn", "evil.com", "--admin", &admin],
    );
    std::thread::sleep(Duration::from_secs(3));
    let (_, m) = http_get(&admin, "/metrics");
    assert_eq!(
        metric(&m, "mutual_agent_renewals_total{result=\"refused\"}"),
        Some(1.0),
        "{m}"
    );
    assert!(
        metric(&m, "mutual_agent_next_attempt_seconds").unwrap() > 250.0,
        "{m}"
    );
    assert_eq!(http_get(&admin, "/ready").0, 503);
    assert!(agent.log().contains("permanent=true"), "{}", agent.log());
    drop(agent);

    // An output directory that is not writable (a path under a regular file).
    std::fs::write(tmp.path().join("file"), "x").unwrap();
    let (code, _, err) = once(&ca.addr(), &ca.token, &tmp.path().join("file/sub"), &cn);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mutual: output directory ") && err.contains("file/sub"),
        "{err}"
    );

    // Success, then a second --once is a no-op that says the certificate is fine.
    let (code, stdout, err) = once(&ca.addr(), &ca.token, &out, &cn);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("renewed: CN=ok.example.com"), "{stdout}");
    let serial = check_pair(&out);
    let (code, stdout, err) = once(&ca.addr(), &ca.token, &out, &cn);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.starts_with("ok: CN=ok.example.com"), "{stdout}");
    assert_eq!(check_pair(&out), serial);
}

#[test]
fn a_certificate_from_the_future_is_named_clock_skew() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A self-signed pair whose notBefore is an hour ahead, made by Python's cryptography.
    let script = r#"
import datetime, sys
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "future.example.com")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
    .public_key(key.public_key()).serial_number(x509.random_serial_number())
    .not_valid_before(now + datetime.timedelta(hours=1))
    .not_valid_after(now + datetime.timedelta(hours=2))
    .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    .sign(key, hashes.SHA256()))
pem = cert.public_bytes(serialization.Encoding.PEM)
d = sys.argv[1]
open(d + "/cert.pem", "wb").write(pem)
open(d + "/ca.pem", "wb").write(pem)
open(d + "/key.pem", "wb").write(key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
"#;
    let st = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&out)
        .status()
        .expect("python3");
    assert!(st.success());
    let cn = ["--cn", "ok.example.com"];
    // Without a token it cannot be replaced: it fails, and says why.
    let (code, _, err) = run(Command::new(bin())
        .args(["agent", "--addr", &ca.addr(), "--role", "service", "--once"])
        .args(cn)
        .arg("--out")
        .arg(&out)
        .env_remove("MUTUAL_TOKEN"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("clock skew between this host and the CA"),
        "{err}"
    );
    assert!(err.contains("ahead of this host's clock"), "{err}");
    // With a token, it is replaced by a certificate valid now.
    let (code, stdout, err) = once(&ca.addr(), &ca.token, &out, &cn);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("clock skew"), "{err}");
    assert!(stdout.starts_with("renewed: CN=ok.example.com"), "{stdout}");
    check_pair(&out);
}

/// The library path: a [`mutual_agent::Source`] enrolls in memory, renews, and a server built
/// with `mutual-tls` swaps each certificate in; a real mTLS client then sees the new one.
#[tokio::test]
async fn a_service_swaps_in_each_certificate_from_the_source() {
    use mutual_agent::{CaClient, OutDir, Request, Source, SourceConfig};
    use mutual_tls::{http, ClientTls, ServerTls};

    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let request = |cn: &str| Request {
        mount: "pki".into(),
        role: "service".into(),
        common_name: cn.into(),
        dns: vec![cn.into(), "localhost".into()],
        ips: vec!["127.0.0.1".into()],
        uris: vec![],
        ttl: Some(Duration::from_secs(6)),
        key_type: mutual_pki::key::KeyType::EcP256,
    };
    let client = CaClient::new(&ca.addr(), None).unwrap();
    let source = Source::enroll(SourceConfig::new(
        client.clone(),
        request("src.example.com"),
        Some(ca.token.clone()),
    ))
    .await
    .expect("enrolled");
    let first = source.current();

    // ServerTls is built from files once; later material is swapped in from memory.
    let files = OutDir::open(&tmp.path().join("server")).unwrap();
    files
        .write(&first.pems, time::OffsetDateTime::now_utc())
        .unwrap();
    let tls = ServerTls::from_files(
        files.file("ca.pem"),
        files.file("cert.pem"),
        files.file("key.pem"),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hello = http::service_fn(|_req| async move {
        Ok(http::text(::http::StatusCode::OK, "hi\n".to_string()))
    });
    let server = tokio::spawn(http::serve(listener, tls.clone(), hello));

    // A caller enrolled the same way, from files.
    let caller = tempfile::tempdir().unwrap();
    let out = OutDir::open(caller.path()).unwrap();
    let pems = client
        .enroll(&request("caller.example.com"), &ca.token)
        .await
        .unwrap();
    out.write(&pems, time::OffsetDateTime::now_utc()).unwrap();
    let call = || async {
        let c = ClientTls::from_files(
            out.file("ca.pem"),
            out.file("cert.pem"),
            out.file("key.pem"),
        )
        .unwrap();
        let reply = c
            .get(&format!("https://localhost:{port}/"))
            .await
            .expect("mTLS call");
        assert_eq!(reply.status, 200);
        reply.observed.server_chain[0].clone()
    };
    assert_eq!(call().await, first.identity.chain[0]);

    let mut updates = source.subscribe();
    tokio::time::timeout(Duration::from_secs(15), updates.changed())
        .await
        .expect("renewed within 15 s")
        .unwrap();
    let second = updates.borrow_and_update().clone();
    assert_ne!(second.serial, first.serial);
    tls.swap(second.server_material(vec![], None));
    assert_eq!(
        call().await,
        second.identity.chain[0],
        "the new certificate is served"
    );
    server.abort();
}

/// Over https (`--cacert`, mutual-tls's client): enrollment, then renewal. Until the server
/// has `/renew` and `trust-bundle`, the agent falls back to the token on `sign/:role` and to
/// `ca_chain`; with them, the same test exercises renewal by certificate.
#[test]
fn renews_over_https_with_cacert() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let local = |args: &[&str]| {
        let (code, out, err) = run(Command::new(bin())
            .current_dir(dir)
            .arg("--data")
            .arg("local")
            .args(args));
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    // The server's own TLS certificate comes from a separate local CA.
    local(&["ca", "init", "--name", "TLS Root"]);
    local(&[
        "role",
        "set",
        "tls",
        "--ca",
        "root",
        "--allow-localhost",
        "--allow-ip-sans",
        "--server",
    ]);
    local(&[
        "issue",
        "localhost",
        "--role",
        "tls",
        "--ip",
        "127.0.0.1",
        "--out",
        "certs",
    ]);
    std::fs::write(
        dir.join("certs/tls-root.pem"),
        local(&["ca", "cert", "root"]),
    )
    .unwrap();
    let mut child = Command::new(bin())
        .current_dir(dir)
        .args([
            "server",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--dev-root-token-id",
            "root",
        ])
        .args([
            "--tls-cert",
            "certs/localhost.crt",
            "--tls-key",
            "certs/localhost.key",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mutual server --tls-cert");
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    struct Stop(Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = server::stop(&mut self.0);
        }
    }
    let _server = Stop(child);
    let addr = line
        .trim()
        .strip_prefix("mutual server listening on ")
        .expect("first line")
        .replace("127.0.0.1", "localhost");
    assert!(addr.starts_with("https://"), "{addr}");
    let cacert = dir.join("certs/tls-root.pem");
    let curl = |path: &str, body: &str| {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&cacert)
            .args([
                "-H",
                "X-Vault-Token: root",
                "-X",
                "POST",
                "--data-binary",
                body,
            ])
            .arg(format!("{addr}/v1/{path}"))
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    curl("sys/mounts/pki", r#"{"type":"pki"}"#);
    curl(
        "pki/root/generate/internal",
        r#"{"common_name":"Agent Test Root","ttl":"87600h"}"#,
    );
    curl(
        "pki/roles/service",
        r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"any","max_ttl":"720h"}"#,
    );

    let out = dir.join("out");
    let agent = start_agent(
        &addr,
        "root",
        &out,
        &dir.join("agent.log"),
        &[
            "--cacert",
            cacert.to_str().unwrap(),
            "--cn",
            "tls.example.com",
            "--ttl",
            "6s",
        ],
    );
    wait_for("the first certificate", Duration::from_secs(20), || {
        out.join("cert.pem").exists()
    });
    let first = check_pair(&out);
    let (_, ca_pem) = openssl(&[
        "x509",
        "-in",
        &out.join("ca.pem").to_string_lossy(),
        "-noout",
        "-subject",
    ]);
    assert!(
        ca_pem.contains("Agent Test Root"),
        "ca.pem is the CA's trust bundle: {ca_pem}"
    );
    wait_for("a renewal over https", Duration::from_secs(20), || {
        serial_now(&out).is_some_and(|s| s != first)
    });
    let log = agent.log();
    assert!(log.contains("decision=\"renewed\""), "{log}");
}

/// SIGHUP renews at once, long before the renewal point of an hour's certificate, and the
/// agent carries on (the signal's default action would end it).
#[test]
fn sighup_renews_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let out = tmp.path().join("out");
    let mut agent = start_agent(
        &ca.addr(),
        &ca.token,
        &out,
        &tmp.path().join("agent.log"),
        &["--cn", "hup.example.com", "--ttl", "1h"],
    );
    wait_for("the first certificate", Duration::from_secs(20), || {
        out.join("cert.pem").exists() && agent.log().contains("next renewal scheduled")
    });
    let first = check_pair(&out);
    for round in 0..2 {
        let before = check_pair(&out);
        agent.hang_up();
        wait_for(
            "a new certificate after SIGHUP",
            Duration::from_secs(20),
            || serial_now(&out).is_some_and(|s| s != before),
        );
        let said = agent.log().matches("SIGHUP: renewing now").count();
        assert_eq!(said, round + 1, "{}", agent.log());
    }
    assert_ne!(check_pair(&out), first);
}

/// SIGTERM (a service manager's stop) ends the agent with status 0 and a last line. During a
/// renewal it first finishes it, `--exec` included: stopped at once, it would leave a new
/// certificate on disk that the service never loaded, and a restarted agent, finding the files
/// fresh, would not run the hook again. While it waits, it stops at once.
#[test]
fn sigterm_lets_the_renewal_under_way_finish_then_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let ran = tmp.path().join("ran");
    let hook = format!("sleep 1; echo ran >> {}", ran.display());
    let lines = || {
        std::fs::read_to_string(&ran)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    let out = tmp.path().join("out");
    let log = tmp.path().join("agent.log");
    let args = ["--cn", "term.example.com", "--ttl", "1h", "--exec", &hook];
    let mut agent = start_agent(&ca.addr(), &ca.token, &out, &log, &args);
    wait_for(
        "the first certificate and its hook",
        Duration::from_secs(20),
        || agent.log().contains("next renewal scheduled") && lines() == 1,
    );
    agent.hang_up();
    wait_for("the second certificate", Duration::from_secs(20), || {
        agent.log().matches("new certificate written").count() == 2
    });
    // The hook sleeps a second before it writes its line: the signal comes while it runs.
    agent.terminate();
    let status = agent.exits_within(Duration::from_secs(15));
    let ran_at_exit = lines();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        agent.log()
    );
    assert_eq!(
        ran_at_exit,
        2,
        "the hook did not finish first:\n{}",
        agent.log()
    );
    assert!(
        agent
            .log()
            .contains("stopping: the certificate on disk stays as it is"),
        "{}",
        agent.log()
    );
    let pair = check_pair(&out);

    // Started again, it finds the certificate fresh (no new one, no hook) and waits; SIGTERM
    // ends the wait at once.
    std::fs::write(&log, "").unwrap();
    let mut agent = start_agent(&ca.addr(), &ca.token, &out, &log, &args);
    wait_for(
        "the wait for the renewal point",
        Duration::from_secs(20),
        || agent.log().contains("next renewal scheduled"),
    );
    agent.terminate();
    let status = agent.exits_within(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        agent.log()
    );
    assert!(agent.log().contains("stopping"), "{}", agent.log());
    assert_eq!(check_pair(&out), pair);
    assert_eq!(lines(), 2);
}

/// `mutual demo` tells its services to exit with it (MUTUAL_EXIT_WITH_PARENT, its PID); a
/// process such a service starts, here the agent's hook, must not inherit that: its parent is
/// another, and a `mutual` in the hook would exit at once.
#[test]
fn exit_with_parent_is_not_passed_on_to_hooks() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let seen = tmp.path().join("env");
    let hook = format!("env > {}", seen.display());
    let out = tmp.path().join("out");
    let (code, _, err) = run(agent_cmd(
        &ca.addr(),
        &ca.token,
        &out,
        &["--cn", "env.example.com", "--exec", &hook, "--once"],
    )
    .env("MUTUAL_EXIT_WITH_PARENT", std::process::id().to_string()));
    assert_eq!(code, 0, "{err}");
    let env = std::fs::read_to_string(&seen).expect("the hook ran");
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("MUTUAL_EXIT_WITH_PARENT"), "{env}");
}

/// `--signal PID:SIG` after a new certificate (here with `--once`), and a bad spec is usage.
#[test]
fn signals_the_service_after_a_new_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let seen = tmp.path().join("hup");
    let ready = tmp.path().join("ready");
    let script = format!(
        "trap 'echo hup >> {}' HUP; : > {}; i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done",
        seen.display(),
        ready.display()
    );
    let service = Running::new(Command::new("sh").arg("-c").arg(&script).spawn().unwrap());
    // A SIGHUP before the trap is set would end the shell: wait until it says it is set.
    wait_for("the service's trap", Duration::from_secs(10), || {
        ready.exists()
    });
    let spec = format!("{}:HUP", service.id());
    let out = tmp.path().join("out");
    let (code, _, err) = once(
        &ca.addr(),
        &ca.token,
        &out,
        &["--cn", "sig.example.com", "--signal", &spec],
    );
    assert_eq!(code, 0, "{err}");
    wait_for("the service to get SIGHUP", Duration::from_secs(5), || {
        std::fs::read_to_string(&seen).is_ok_and(|s| s.contains("hup"))
    });
    let (code, _, err) = once(
        &ca.addr(),
        &ca.token,
        &out,
        &["--cn", "sig.example.com", "--signal", "nope"],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--signal \"nope\": expected PID:SIG"), "{err}");
}

/// A hook that hangs (a reload stuck on its service manager) is killed at `--hook-timeout`
/// with the processes it started, and the agent carries on: `--once` still exits 0 with the new
/// certificate on disk, and says what it killed.
#[test]
fn a_hook_that_hangs_is_killed_with_its_children_at_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = Ca::new(tmp.path());
    let inner = tmp.path().join("inner.pid");
    // The inner shell becomes `sleep` (exec): a grandchild of the agent, as a real reload
    // command's own children are.
    let hook = format!(
        "sh -c 'echo $$ > {}; exec sleep 60'; echo never",
        inner.display()
    );
    let out = tmp.path().join("out");
    let started = Instant::now();
    let (code, _, err) = once(
        &ca.addr(),
        &ca.token,
        &out,
        &[
            "--cn",
            "hang.example.com",
            "--exec",
            &hook,
            "--hook-timeout",
            "1s",
        ],
    );
    let took = started.elapsed();
    assert_eq!(code, 0, "{err}");
    assert!(took < Duration::from_secs(20), "took {took:?}: {err}");
    assert!(err.contains("hook timed out"), "{err}");
    check_pair(&out);
    let pid = std::fs::read_to_string(&inner).expect("the hook started");
    let pid = pid.trim();
    // Gone, or a zombie waiting for whoever inherited it: not sleeping on.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("gone")
        .to_string();
    assert!(
        state == "gone" || state == "Z" || state == "X",
        "the hook's child {pid} is still {state}"
    );
}
