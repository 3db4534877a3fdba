//! The gRPC examples, run as a user runs them: `grpc_server` on loopback with real mTLS and an
//! allow-list, `grpc_client` as Alice (allowed by CN), Carol (allowed by SPIFFE ID), Bob
//! (verified, not allowed) and a client without a certificate. Checks the unary call, a
//! bidirectional stream answered note by note and ended with OK, gRPC's own refusal for Bob
//! (PERMISSION_DENIED naming him and the rule), the handshake refusal without a certificate
//! (explained by the client), and the client's deadline as the server sees and enforces it.
//!
//! The example binaries are those `cargo test -p mutual-tls` builds beside this test (cargo
//! builds a package's examples for its tests); a missing or stale one fails the test and says
//! how to build it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const ALLOW: [&str; 2] = [
    "cn=alice.example.com",
    "uri=spiffe://example.org/ns/prod/sa/carol",
];
/// The longest any one step may take: a client call, the server starting.
const STEP: Duration = Duration::from_secs(30);

/// An example binary built by cargo next to this test's own `deps` directory.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/debug/deps");
    let bin = dir.join("examples").join(name);
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: build it with `cargo build -p mutual-tls --examples` (cargo test -p mutual-tls does)",
                bin.display()
            )
        });
    // Stale when any source cargo built it from (its dep-info lists them) changed since.
    let mut dep_info = bin.clone().into_os_string();
    dep_info.push(".d");
    let sources = std::fs::read_to_string(&dep_info).unwrap_or_default();
    let sources = sources
        .lines()
        .next()
        .and_then(|l| l.split_once(": "))
        .map(|(_, s)| s)
        .unwrap_or("");
    for src in sources.split_whitespace() {
        let changed = std::fs::metadata(src).and_then(|m| m.modified());
        assert!(
            changed.map_or(true, |t| t <= built),
            "{} is older than {src}: rebuild it with `cargo build -p mutual-tls --examples`",
            bin.display()
        );
    }
    bin
}

/// A CA, the server's certificate (`localhost`) and three clients, as PEM files in `dir`.
fn certificates(dir: &Path) {
    let now = OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "Example gRPC CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(30);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
    let issuer = Issuer::from_params(&ca, &ca_key);

    let leaf = |file: &str, cn: &str, sans: Vec<SanType>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![usage];
        p.use_authority_key_identifier_extension = true;
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(7);
        let cert = p.signed_by(&key, &issuer).unwrap();
        std::fs::write(dir.join(format!("{file}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
    };
    let dns = |n: &str| SanType::DnsName(n.try_into().unwrap());
    leaf(
        "server",
        "localhost",
        vec![dns("localhost")],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    leaf(
        "alice",
        "alice.example.com",
        vec![dns("alice.example.com")],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    leaf(
        "bob",
        "bob.example.com",
        vec![dns("bob.example.com")],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    leaf(
        "carol",
        "carol",
        vec![SanType::URI(
            "spiffe://example.org/ns/prod/sa/carol".try_into().unwrap(),
        )],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
}

/// Starts `grpc_server` on a port of its choosing and returns it with its address.
async fn start_server(dir: &Path) -> (Child, String) {
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let mut child = Command::new(example("grpc_server"))
        .arg(dir.join("ca.crt"))
        .arg(dir.join("server.crt"))
        .arg(dir.join("server.key"))
        .arg("127.0.0.1:0")
        .args(ALLOW)
        .stdout(Stdio::piped())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("grpc_server starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("grpc_server says where it listens in time")
        .unwrap()
        .unwrap_or_default();
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("grpc_server said {first:?}"));
    (child, addr.to_string())
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `grpc_client` as `who` (a certificate in `dir`, or none) against the server at `addr`.
async fn client(dir: &Path, who: Option<&str>, addr: &str, call: &[&str]) -> Outcome {
    let (cert, key) = match who {
        Some(w) => (dir.join(format!("{w}.crt")), dir.join(format!("{w}.key"))),
        None => ("-".into(), "-".into()),
    };
    // The server's certificate names localhost; the port is the one it listens on.
    let port = addr.rsplit_once(':').unwrap().1;
    let out = Command::new(example("grpc_client"))
        .arg(dir.join("ca.crt"))
        .arg(cert)
        .arg(key)
        .arg(format!("localhost:{port}"))
        .args(call)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(STEP, out)
        .await
        .unwrap_or_else(|_| panic!("grpc_client {call:?} as {who:?} ends in time"))
        .unwrap();
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_examples_authorize_by_identity() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let (mut server, addr) = start_server(dir.path()).await;
    let d = dir.path();

    // Alice, allowed by her CN: the handler knows her and the rule; no deadline was set.
    let r = client(d, Some("alice"), &addr, &["hello", "Alice"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            Some(0),
            "Hello Alice, you are alice.example.com\ncaller: alice.example.com\nrule: cn=alice.example.com\ndeadline: none\n",
            ""
        )
    );

    // Her deadline reaches the handler as grpc-timeout.
    let r = client(d, Some("alice"), &addr, &["hello", "Alice", "3000"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stdout
            .contains("deadline: grpc-timeout 3000000u (3000 ms)\n"),
        "{}",
        r.stdout
    );

    // A handler slower than the deadline is stopped by it: DEADLINE_EXCEEDED from the server,
    // long before the 10 s the handler would have taken.
    let start = Instant::now();
    let r = client(d, Some("alice"), &addr, &["hello", "Alice", "500", "10000"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            Some(2),
            "",
            "grpc-status 4 DeadlineExceeded: the deadline of 500 ms passed\n"
        )
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );

    // One stream, each note answered before the next is sent, in order, then status OK.
    let r = client(
        d,
        Some("alice"),
        &addr,
        &["chat", "one", "two", "three", "four"],
    )
    .await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            Some(0),
            "1: one (from alice.example.com)\n2: two (from alice.example.com)\n3: three (from alice.example.com)\n4: four (from alice.example.com)\nstatus: OK\n",
            ""
        )
    );

    // Carol, allowed by her SPIFFE ID.
    let r = client(d, Some("carol"), &addr, &["hello", "Carol"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "Hello Carol, you are carol (spiffe://example.org/ns/prod/sa/carol)\ncaller: carol (spiffe://example.org/ns/prod/sa/carol)\nrule: uri=spiffe://example.org/ns/prod/sa/carol\ndeadline: none\n"
    );

    // Bob's certificate is good and he is not on the list: gRPC's PERMISSION_DENIED, naming
    // him and the rule, on either kind of call.
    let bob = "grpc-status 7 PermissionDenied: you cannot be here bob.example.com: only cn=alice.example.com or uri=spiffe://example.org/ns/prod/sa/carol may call\n";
    for call in [&["hello", "Bob"][..], &["chat", "hi"]] {
        let r = client(d, Some("bob"), &addr, call).await;
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (Some(2), "", bob),
            "{call:?}"
        );
    }

    // No certificate: ServerTls requires one, so the handshake is refused (TLS 1.3's alert
    // certificate_required, which the client reads at its first exchange) before any call;
    // the client explains it rather than tonic's "connection error".
    let r = client(d, None, &addr, &["hello", "Nobody"]).await;
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            Some(1),
            "",
            "error: the server requires a client certificate issued by CN=Example gRPC CA and none was sent (alert certificate_required); give --cert and --key\n"
        )
    );

    // The server logged each refusal with the reason.
    server.start_kill().unwrap();
    let _ = tokio::time::timeout(STEP, server.wait()).await;
    let log = std::fs::read_to_string(d.join("server.log")).unwrap();
    assert!(
        log.contains("refused request") && log.contains("bob.example.com"),
        "{log}"
    );
    assert!(log.contains("no client certificate arrived"), "{log}");
}
