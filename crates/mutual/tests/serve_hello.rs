//! The hello service over mTLS against the real `curl`, `openssl s_client` and `mutual curl`:
//! the story's Alice-only service, the 403 and the handshake refusal, and bad input.

mod common;
mod serving;

use common::Story;
use serving::Server;
use std::time::Duration;

fn curl(s: &Story, url: &str, who: Option<&str>, extra: &[&str]) -> common::Run {
    let mut args: Vec<String> = vec!["-sS".into(), "--cacert".into(), "certs/root.pem".into()];
    if let Some(w) = who {
        args.extend([
            "--cert".into(),
            format!("certs/{w}.crt"),
            "--key".into(),
            format!("certs/{w}.key"),
        ]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.into());
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    s.run("curl", &refs)
}

fn mutual_curl(s: &Story, url: &str, who: &str, extra: &[&str]) -> common::Run {
    let cert = format!("certs/{who}.crt");
    let key = format!("certs/{who}.key");
    let mut args = vec![
        "curl",
        url,
        "--cert",
        &cert,
        "--key",
        &key,
        "--ca",
        "certs/root.pem",
    ];
    args.extend_from_slice(extra);
    s.mutual(&args)
}

const WWW: [&str; 4] = [
    "--cert",
    "certs/www.example.com.crt",
    "--key",
    "certs/www.example.com.key",
];

fn hello(s: &Story, ca: &str, extra: &[&str]) -> Server {
    let mut args = vec!["hello", "--ca", ca];
    args.extend_from_slice(&WWW);
    args.extend_from_slice(extra);
    Server::start(s.dir.path(), &args)
}

#[test]
fn hello_greets_alice_and_the_world_and_refuses_no_certificate() {
    let s = Story::build("ec");
    let srv = hello(&s, "certs/root.pem", &[]);
    let r = curl(&s, &srv.url("/?name=Alice"), Some("alice.example.com"), &[]).ok();
    assert_eq!(r.stdout.trim(), "Hello Alice");
    let r = curl(&s, &srv.url("/"), Some("alice.example.com"), &[]).ok();
    assert_eq!(r.stdout.trim(), "Hello World");
    // Over TLS 1.2 as well.
    let r = curl(
        &s,
        &srv.url("/?name=Alice"),
        Some("alice.example.com"),
        &["--tls-max", "1.2"],
    )
    .ok();
    assert_eq!(r.stdout.trim(), "Hello Alice");

    let r = curl(&s, &srv.url("/"), None, &[]);
    assert_ne!(r.code, 0, "no certificate must be refused: {}", r.stdout);
    let line = srv.wait_log(&["no_certificate"]);
    assert!(
        line.contains("CN=Local Root CA"),
        "names the CA it asked for: {line}"
    );

    // The root-trusting service accepts both intermediates' clients.
    for who in ["alice/alice.example.com", "bob/bob.example.com"] {
        let r = mutual_curl(&s, &srv.url("/?name=x"), who, &[]).ok();
        assert_eq!(r.stdout.trim(), "Hello x");
    }
}

#[test]
fn openssl_s_client_speaks_to_hello_over_tls12_and_tls13() {
    let s = Story::build("ec");
    let srv = hello(&s, "certs/root.pem", &[]);
    for version in ["-tls1_2", "-tls1_3"] {
        let out = std::process::Command::new("sh")
            .current_dir(s.dir.path())
            .arg("-c")
            .arg(format!(
                "printf 'GET /?name=Alice HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:{} {version} -quiet -verify_return_error -CAfile certs/root.pem -cert certs/alice.example.com.crt -key certs/alice.example.com.key 2>&1",
                srv.port
            ))
            .output()
            .expect("openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Hello Alice"), "{version}: {text}");
    }
}

#[test]
fn alice_only_service_refuses_bob_and_says_why_on_both_sides() {
    let s = Story::build("ec");
    let srv = hello(&s, "certs/alice-ca.pem", &[]);
    let r = curl(
        &s,
        &srv.url("/?name=Alice"),
        Some("alice/alice.example.com"),
        &[],
    )
    .ok();
    assert_eq!(r.stdout.trim(), "Hello Alice");
    let r = curl(&s, &srv.url("/"), Some("bob/bob.example.com"), &[]);
    assert_ne!(r.code, 0, "curl must be refused: {}", r.stdout);

    for tls in ["--tls1.2", "--tls1.3"] {
        let r = mutual_curl(&s, &srv.url("/"), "bob/bob.example.com", &[tls]).fails(1);
        assert!(
            r.stderr.contains("Alice Intermediate Authority"),
            "{tls}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("Bob Intermediate Authority"),
            "{tls}: {}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
    let line = srv.wait_log(&["refused client", "CN=bob.example.com"]);
    assert!(line.contains("unknown_issuer"), "{line}");
    assert!(line.contains("CN=Bob Intermediate Authority"), "{line}");

    // The doctor says which CA the server wants and that Bob's does not chain to it.
    let r = s
        .mutual(&[
            "doctor",
            &srv.url("/"),
            "--cert",
            "certs/bob/bob.example.com.crt",
            "--key",
            "certs/bob/bob.example.com.key",
            "--ca",
            "certs/root.pem",
        ])
        .fails(1);
    assert!(
        r.stdout
            .contains("accepts client certificates issued by CN=Alice Intermediate Authority"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("not issued by a CA the server accepts"),
        "{}",
        r.stdout
    );
    let r = s
        .mutual(&[
            "doctor",
            &srv.url("/"),
            "--cert",
            "certs/alice/alice.example.com.crt",
            "--key",
            "certs/alice/alice.example.com.key",
            "--ca",
            "certs/root.pem",
        ])
        .ok();
    assert!(r.stdout.contains("ok: accepted, HTTP 200"), "{}", r.stdout);

    // inspect https:// shows what the server presents.
    let r = s.mutual(&["inspect", &srv.url("/")]).ok();
    assert!(r.stdout.contains("www.example.com"), "{}", r.stdout);
}

#[test]
fn a_wide_trust_file_is_warned_about() {
    let s = Story::build("ec");
    let wide = format!(
        "{}{}",
        s.read("certs/alice-ca.pem"),
        s.read("certs/root.pem")
    );
    s.write("certs/alice-wide.pem", &wide);
    let srv = hello(&s, "certs/alice-wide.pem", &[]);
    srv.wait_log(&["warning", "Local Root CA"]);
}

#[test]
fn only_alice_may_call_at_http_and_at_the_handshake() {
    let s = Story::build("ec");
    let http = hello(&s, "certs/root.pem", &["--allow", "cn=alice.example.com"]);
    let r = curl(
        &s,
        &http.url("/?name=Alice"),
        Some("alice.example.com"),
        &[],
    )
    .ok();
    assert_eq!(r.stdout.trim(), "Hello Alice");
    let r = curl(
        &s,
        &http.url("/"),
        Some("bob.example.com"),
        &["-w", "%{http_code}"],
    )
    .ok();
    assert!(
        r.stdout.contains("you cannot be here bob.example.com"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("403"), "{}", r.stdout);
    let r = mutual_curl(&s, &http.url("/"), "bob.example.com", &[]).fails(1);
    assert!(
        r.stdout.contains("you cannot be here bob.example.com"),
        "{}",
        r.stdout
    );

    let hs = hello(
        &s,
        "certs/root.pem",
        &["--allow", "cn=alice.example.com", "--deny-at", "handshake"],
    );
    let r = curl(&s, &hs.url("/?name=Alice"), Some("alice.example.com"), &[]).ok();
    assert_eq!(r.stdout.trim(), "Hello Alice");
    let r = curl(&s, &hs.url("/"), Some("bob.example.com"), &[]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    let line = hs.wait_log(&["refused client", "not_allowed"]);
    assert!(line.contains("bob.example.com"), "{line}");
    let r = mutual_curl(&s, &hs.url("/"), "bob.example.com", &[]).fails(1);
    assert!(r.stderr.contains("access_denied"), "{}", r.stderr);
}

#[test]
fn bad_input_is_one_line_at_start_up() {
    let s = Story::build("ec");
    s.write("certs/empty.pem", "no certificate here\n");
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec![
                "--ca",
                "certs/missing.pem",
                "--cert",
                "certs/www.example.com.crt",
                "--key",
                "certs/www.example.com.key",
            ],
            1,
            "reading --ca certs/missing.pem",
        ),
        (
            vec![
                "--ca",
                "certs/root.pem",
                "--cert",
                "certs/www.example.com.crt",
                "--key",
                "certs/alice.example.com.key",
            ],
            1,
            "does not match the certificate",
        ),
        (
            vec![
                "--ca",
                "certs/empty.pem",
                "--cert",
                "certs/www.example.com.crt",
                "--key",
                "certs/www.example.com.key",
            ],
            1,
            "reading --ca certs/empty.pem",
        ),
        (
            vec![
                "--ca",
                "certs/root.pem",
                "--cert",
                "certs/www.example.com.crt",
                "--key",
                "certs/www.example.com.key",
                "--allow",
                "cn~^(alice",
            ],
            2,
            "--allow: invalid matcher \"cn~^(alice\" at column 4",
        ),
        (
            vec![
                "--ca",
                "certs/root.pem",
                "--cert",
                "certs/www.example.com.crt",
                "--key",
                "certs/www.example.com.key",
                "--crl",
                "certs/root.pem",
            ],
            1,
            "no X509 CRL found",
        ),
    ];
    for (args, code, want) in cases {
        let mut full = vec!["serve", "hello", "--listen", "127.0.0.1:0"];
        full.extend(args);
        let r = s.mutual(&full).fails(code);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(want), "want {want}: {}", r.stderr);
    }
}

#[test]
fn garbage_and_stalled_clients_do_not_take_the_server_down() {
    use std::io::Write;
    let s = Story::build("ec");
    let srv = hello(
        &s,
        "certs/root.pem",
        &["--handshake-timeout", "1s", "--max-handshakes", "1"],
    );
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\n\r\n\x00\x01\x02garbage")
        .unwrap();
    // A client that opens a connection and never speaks holds the only handshake slot until
    // the timeout frees it; Alice still gets her answer.
    let _staller = std::net::TcpStream::connect(("127.0.0.1", srv.port)).unwrap();
    let r = curl(&s, &srv.url("/?name=Alice"), Some("alice.example.com"), &[]).ok();
    assert_eq!(r.stdout.trim(), "Hello Alice");
    srv.wait_log(&["handshake failed"]);
}

/// SIGTERM, as systemd or Kubernetes stop a service: the port closes at once, the request
/// under way (`finish` completes it and returns what the server sent) is answered with
/// `connection: close` and an answer holding `expected`, and the process exits 0.
fn stops_after_answering(srv: &mut Server, finish: impl FnOnce() -> String, expected: &str) {
    srv.terminate();
    let line = srv.wait_log(&["stopping: draining"]);
    assert!(line.contains("connections=1"), "{line}");
    assert!(srv.port_closes(), "the port still accepts after SIGTERM");
    assert!(
        srv.wait_exit(Duration::from_millis(300)).is_none(),
        "exited with a request under way"
    );
    let answer = finish();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(expected), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let exit = srv.wait_exit(Duration::from_secs(5));
    assert!(
        exit.is_some_and(|e| e.success()),
        "{exit:?}: {:?}",
        srv.log()
    );
    assert!(
        !srv.log()
            .iter()
            .any(|l| l.contains("connections still open")),
        "{:?}",
        srv.log()
    );
}

/// Alice's request is half sent when SIGTERM comes, over a TLS connection `openssl s_client`
/// holds.
/// A SIGHUP sent the moment the service says it listens reloads it: the handler is installed
/// before that line (SIGHUP's default action ends the process, so one that came first would).
#[test]
fn sighup_the_moment_it_listens_reloads_and_ends_nothing() {
    let s = Story::build("ec");
    for round in 0..3 {
        let mut srv = hello(&s, "certs/root.pem", &[]);
        srv.hang_up();
        srv.wait_log(&["reloaded certificates"]);
        assert!(
            srv.wait_exit(Duration::from_millis(200)).is_none(),
            "round {round}: SIGHUP ended it: {:?}",
            srv.log()
        );
        let r = curl(&s, &srv.url("/?name=Alice"), Some("alice.example.com"), &[]).ok();
        assert_eq!(r.stdout.trim(), "Hello Alice", "round {round}");
    }
}

#[test]
fn sigterm_closes_the_port_and_answers_the_request_under_way() {
    let s = Story::build("ec");
    let mut srv = hello(&s, "certs/root.pem", &[]);
    let alice = common::HalfRequest::start(&s, srv.port, "/?name=Alice");
    stops_after_answering(&mut srv, || alice.finish(), "Hello Alice");
}

/// `serve echo` (plain HTTP) stops as hello does. Before, SIGTERM ended it at once, dropping
/// the request.
#[test]
fn serve_echo_answers_the_request_under_way_on_sigterm() {
    use std::io::{Read, Write};
    let s = Story::new();
    let mut srv = Server::start(s.dir.path(), &["echo"]);
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    tcp.write_all(b"GET /under-way HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // Read by the server before the signal: the connection is one it must answer.
    std::thread::sleep(Duration::from_millis(500));
    let finish = move || {
        tcp.write_all(b"\r\n").unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer);
        answer
    };
    stops_after_answering(&mut srv, finish, "\"path\": \"/under-way\"");
}
