//! gRPC through `mutual proxy`, with Python's grpcio on both sides (fixtures/grpc): a plaintext
//! HTTP/2 (h2c) backend and an mTLS client. Alice's unary and bidirectional streaming calls
//! succeed with trailing metadata intact and XFCC on every call; Bob gets PERMISSION_DENIED
//! naming him and the rule; a caller without a certificate gets UNAUTHENTICATED; the caller's
//! deadline reaches the backend as `grpc-timeout` and a slow call ends in DEADLINE_EXCEEDED.

#[path = "support/child.rs"]
mod child;
mod common;
mod proxying;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use child::Running;
use common::Story;
use proxying::{curl, Proc};

const CONFIG: &str = r#"
[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"
client_certificate = "optional"

[[listener.route]]
upstream = "grpc"
allow = ["cn=alice.example.com"]

[[upstream]]
name = "grpc"
servers = ["BACKEND"]
protocol = "h2c"
"#;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/grpc/{name}"))
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The Python backend, killed by its own PID when dropped.
struct Backend {
    _proc: Running,
    port: u16,
}

impl Backend {
    fn start() -> Backend {
        let mut child = Command::new(python())
            .arg(fixture("server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting python3 (scripts/install-test-deps installs grpcio)");
        let stdout = child.stdout.take().expect("stdout");
        let proc = Running::new(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(p) = line.strip_prefix("port ") {
                    let _ = tx.send(p.trim().parse::<u16>().ok());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(port)) => Backend { _proc: proc, port },
            _ => panic!(
                "the grpcio backend did not start (is grpcio installed? scripts/install-test-deps)"
            ),
        }
    }
}

/// One call of the grpcio client: its JSON report.
fn call(s: &Story, port: u16, who: &str, method: &str, timeout: &str) -> serde_json::Value {
    let out = Command::new(python())
        .current_dir(s.dir.path())
        .arg(fixture("client.py"))
        .args([&port.to_string(), "certs", who, method, timeout])
        .output()
        .expect("running the grpcio client");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{who} {method}: {e}: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn grpc_through_the_proxy() {
    let s = Story::build("ec");
    let b = Backend::start();
    s.write(
        "grpc.toml",
        &CONFIG.replace("BACKEND", &format!("http://127.0.0.1:{}", b.port)),
    );
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "grpc.toml"], "https");

    // Unary: the answer, the backend's trailing metadata, Alice's XFCC, her deadline.
    let r = call(&s, p.port, "alice", "unary", "10");
    assert_eq!(r["code"], "OK", "{r}");
    assert_eq!(r["trailers"]["x-trailer"], "unary-done", "{r}");
    let answer = &r["responses"][0];
    assert_eq!(answer["request"], "hello", "{r}");
    assert!(
        answer["xfcc"]
            .as_str()
            .unwrap_or("")
            .contains("CN=alice.example.com"),
        "{r}"
    );
    let left = answer["time_remaining"].as_f64().unwrap_or(0.0);
    assert!(
        left > 5.0 && left <= 10.0,
        "the backend saw no grpc-timeout: {r}"
    );

    // Bidirectional streaming: each message answered before the next is sent.
    let r = call(&s, p.port, "alice", "chat", "10");
    assert_eq!(r["code"], "OK", "{r}");
    let echoes: Vec<&str> = r["responses"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["echo"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(echoes, ["one", "two", "three"], "{r}");
    assert!(
        r["responses"][0]["xfcc"]
            .as_str()
            .unwrap_or("")
            .contains("CN=alice.example.com"),
        "{r}"
    );
    assert_eq!(r["trailers"]["x-trailer"], "chat-done-3", "{r}");

    // Bob: gRPC's own refusal, with the reason the HTTP 403 carries.
    let r = call(&s, p.port, "bob", "unary", "10");
    assert_eq!(r["code"], "PERMISSION_DENIED", "{r}");
    let details = r["details"].as_str().unwrap_or("");
    assert!(
        details.starts_with(
            "you cannot be here bob.example.com: only cn=alice.example.com may call (route "
        ),
        "{r}"
    );
    let r = call(&s, p.port, "bob", "chat", "10");
    assert_eq!(r["code"], "PERMISSION_DENIED", "{r}");

    // No certificate: UNAUTHENTICATED over gRPC, a 401 naming what is missing over HTTP.
    let r = call(&s, p.port, "none", "unary", "10");
    assert_eq!(r["code"], "UNAUTHENTICATED", "{r}");
    assert!(
        r["details"]
            .as_str()
            .unwrap_or("")
            .starts_with("you sent no client certificate: route "),
        "{r}"
    );
    let url = format!("https://localhost:{}/", p.port);
    let h = curl(&s, "", &url, &[]);
    assert_eq!(h.status, "401", "{}", h.body);
    assert!(h.body.contains("issued by"), "{}", h.body);
    // Bob over plain HTTP still gets the 403, with the same text.
    let h = curl(&s, "bob", &url, &[]);
    assert_eq!(h.status, "403", "{}", h.body);
    assert!(h.body.starts_with(details), "{} / {details}", h.body);

    // A deadline shorter than the backend takes: DEADLINE_EXCEEDED, well before the backend's
    // five seconds.
    let started = Instant::now();
    let r = call(&s, p.port, "alice", "slow", "0.5");
    assert_eq!(r["code"], "DEADLINE_EXCEEDED", "{r}");
    assert!(started.elapsed() < Duration::from_secs(4), "{r}");
    // And the proxy still serves.
    assert_eq!(call(&s, p.port, "alice", "unary", "10")["code"], "OK");
}
