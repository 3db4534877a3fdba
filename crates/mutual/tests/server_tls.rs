//! `mutual server --tls-cert/--tls-key`: the Vault API over TLS, with a certificate that mutual
//! issued itself, used by curl and the `bao` CLI trusting only the story's root.

#[path = "support/child.rs"]
mod child;
mod common;
mod server;

use std::process::Command;

use child::Running;
use common::Story;
use server::TlsServer;

/// A story with a root and a certificate for `localhost` / 127.0.0.1 under `certs/`.
fn story() -> Story {
    let s = Story::new();
    s.mutual(&["ca", "init"]).ok();
    s.mutual(&[
        "role",
        "set",
        "service",
        "--ca",
        "root",
        "--allowed-domains",
        "example.com",
        "--allow-subdomains",
        "--allow-localhost",
        "--allow-ip-sans",
    ])
    .ok();
    s.mutual(&[
        "issue",
        "ca.example.com",
        "--role",
        "service",
        "--san",
        "localhost",
        "--ip",
        "127.0.0.1",
        "--out",
        "certs",
    ])
    .ok();
    let root = s.mutual(&["ca", "cert", "root"]).ok().stdout;
    s.write("certs/root.pem", &root);
    s
}

fn start(s: &Story) -> TlsServer {
    server::mutual_tls_dev(s.dir.path(), &[])
}

#[test]
fn the_api_is_served_over_tls_to_clients_that_trust_the_root() {
    let s = story();
    let srv = start(&s);
    assert!(srv.addr.starts_with("https://127.0.0.1:"), "{}", srv.addr);
    let health = format!("{}/v1/sys/health", srv.addr);
    let out = s
        .run("curl", &["-sS", "--cacert", "certs/root.pem", &health])
        .ok();
    assert!(
        out.stdout.contains("\"initialized\":true"),
        "{}",
        out.stdout
    );
    // Without the root, curl refuses the server's certificate (60: peer not verified).
    s.run("curl", &["-sS", &health]).fails(60);
    // Plain HTTP on the TLS port is not served.
    let plain = health.replace("https://", "http://");
    assert_ne!(s.run("curl", &["-sS", "-m", "10", &plain]).code, 0);
    // The authenticated API works through TLS.
    api(&s, &srv, "POST", "sys/mounts/pki_tls", r#"{"type":"pki"}"#);

    if !server::have_bao("the_api_is_served_over_tls_to_clients_that_trust_the_root (bao part)") {
        return;
    }
    let bao = |args: &[&str]| {
        let out = Command::new("bao")
            .current_dir(s.dir.path())
            .env("BAO_ADDR", &srv.addr)
            .env("BAO_CACERT", "certs/root.pem")
            .env("BAO_TOKEN", "root")
            .env_remove("VAULT_ADDR")
            .args(args)
            .output()
            .expect("running bao");
        assert!(
            out.status.success(),
            "bao {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let root = bao(&[
        "write",
        "-format=json",
        "pki_tls/root/generate/internal",
        "common_name=TLS Test Root",
        "key_type=ec",
        "ttl=24h",
    ]);
    assert!(root.contains("BEGIN CERTIFICATE"), "{root}");
}

#[test]
fn the_ca_commands_reach_a_tls_server_that_cacert_vouches_for() {
    let s = story();
    let srv = start(&s);
    let cacert = s.path("certs/root.pem");
    let cacert = cacert.to_str().unwrap();
    let other = Story::new();
    let remote = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--addr", srv.addr.as_str(), "--token", "root"]);
        other.mutual(&all)
    };
    let out = remote(&["ca", "init", "--cacert", cacert]).ok();
    assert!(out.stdout.contains(&srv.addr), "{}", out.stdout);
    let list = remote(&["ca", "list", "--cacert", cacert]).ok().stdout;
    assert!(list.contains("Local Root CA"), "{list}");
    // Without --cacert, or trusting another root, nothing is sent.
    let out = remote(&["ca", "list"]).fails(1);
    assert!(out.stderr.contains("--cacert"), "{}", out.stderr);
    other.write(
        "other.pem",
        &other
            .mutual(&[
                "ca", "cert", "root", "--addr", &srv.addr, "--token", "root", "--cacert", cacert,
            ])
            .ok()
            .stdout,
    );
    let out = remote(&["ca", "list", "--cacert", "other.pem"]).fails(1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_before_listening() {
    let s = story();
    s.mutual(&[
        "issue",
        "other.example.com",
        "--role",
        "service",
        "--out",
        "certs",
    ])
    .ok();
    let out = s
        .mutual(&[
            "server",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "certs/ca.example.com.crt",
            "--tls-key",
            "certs/other.example.com.key",
        ])
        .fails(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    s.mutual(&["server", "--dev", "--tls-cert", "certs/ca.example.com.crt"])
        .fails(2);
}

/// What a service manager does to stop the CA: SIGTERM ends a `--dev` server, plain or TLS,
/// with status 0, and its throwaway store (the root key among it) is gone from the disk; a
/// subscriber that keeps the revocation feed open, or a caller that stalls in its handshake,
/// does not hold the stop up for longer than the drain (five seconds).
#[test]
fn sigterm_stops_a_dev_server_and_removes_its_store() {
    fn stops_clean(what: &str, child: &mut std::process::Child) {
        let store = server::dev_store(child.id())
            .unwrap_or_else(|| panic!("{what}: no --dev store open in /proc/{}/fd", child.id()));
        assert!(store.join("data").is_dir(), "{what}: {}", store.display());
        let asked = std::time::Instant::now();
        let status = server::stop(child)
            .unwrap_or_else(|| panic!("{what}: still running 10 s after SIGTERM"));
        let took = asked.elapsed();
        assert!(status.success(), "{what}: {status}");
        assert!(took < std::time::Duration::from_secs(8), "{what}: {took:?}");
        assert!(!store.exists(), "{what}: {} left behind", store.display());
        eprintln!(
            "{what}: SIGTERM → {status} after {took:?}, {} removed",
            store.display()
        );
    }
    let mut plain = server::mutual_dev();
    for (path, body) in [
        ("sys/mounts/pki", r#"{"type":"pki"}"#),
        (
            "pki/root/generate/internal",
            r#"{"common_name":"Feed Root","key_type":"ec"}"#,
        ),
    ] {
        let (code, answer) = server::curl(&plain, "POST", path, Some(body));
        assert!(code < 300, "{path}: {code} {answer}");
    }
    // An event-stream subscriber that never hangs up, started by this test and ended by PID.
    let mut subscriber = Command::new("curl")
        .args([
            "-isN",
            "-H",
            "Accept: text/event-stream",
            "-H",
            "X-Vault-Token: root",
        ])
        .arg(format!("{}/v1/pki/revocations", plain.addr))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    let mut first = [0u8; 1];
    std::io::Read::read_exact(subscriber.stdout.as_mut().unwrap(), &mut first)
        .expect("the feed's first bytes");
    stops_clean("http, a feed subscriber connected", &mut plain.child);
    let _ = subscriber.kill();
    let _ = subscriber.wait();
    let s = story();
    let mut tls = start(&s);
    stops_clean("tls, idle", &mut tls.child);
    // A caller stalled in its handshake is waited for only as long as the drain.
    let mut tls = start(&s);
    let port = tls.addr.rsplit(':').next().unwrap().to_string();
    let stalled = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    stops_clean("tls, a handshake stalled", &mut tls.child);
    drop(stalled);
}

/// `kill -9` leaves a `--dev` server no chance to remove its store (the root key among it):
/// the next `--dev` server removes it, and leaves the store of one that still runs alone.
#[test]
fn the_next_dev_server_removes_the_store_of_one_that_was_killed() {
    let live = server::mutual_dev();
    let mut killed = server::mutual_dev();
    let store_of = |srv: &server::Server| {
        server::dev_store(srv.child.id())
            .unwrap_or_else(|| panic!("no --dev store open in /proc/{}/fd", srv.child.id()))
    };
    let (live_store, killed_store) = (store_of(&live), store_of(&killed));
    killed.child.kill().expect("kill -9");
    let _ = killed.child.wait();
    assert!(
        killed_store.join("data").is_dir(),
        "{} went with SIGKILL",
        killed_store.display()
    );
    let next = server::mutual_dev();
    assert!(
        !killed_store.exists(),
        "{} left behind",
        killed_store.display()
    );
    assert!(
        live_store.join("data").is_dir(),
        "the store of a running server was removed: {}",
        live_store.display()
    );
    let (code, answer) = server::curl(&live, "POST", "sys/mounts/pki", Some(r#"{"type":"pki"}"#));
    assert!(
        code < 300,
        "the running server cannot write: {code} {answer}"
    );
    drop(next);
}

/// A Vault API call over the server's TLS listener with the root token; the answer's body.
fn api(s: &Story, srv: &TlsServer, method: &str, path: &str, body: &str) -> String {
    let (code, text) = srv.call(s.dir.path(), method, path, Some(body));
    assert!(code / 100 == 2, "{method} /v1/{path}: {code} {text}");
    text
}

/// A PKI mount `pub` with a root and a role `web` for example.com and localhost, its
/// `config/urls` pointing at `ocsp` when given.
fn public_pki(s: &Story, srv: &TlsServer, ocsp: Option<&str>) {
    api(s, srv, "POST", "sys/mounts/pub", r#"{"type":"pki"}"#);
    api(
        s,
        srv,
        "POST",
        "pub/root/generate/internal",
        r#"{"common_name":"Public Root","key_type":"ec","ttl":"24h"}"#,
    );
    api(
        s,
        srv,
        "POST",
        "pub/roles/web",
        r#"{"allowed_domains":"example.com","allow_subdomains":true,"allow_localhost":true,"allow_ip_sans":true,"key_type":"ec"}"#,
    );
    if let Some(url) = ocsp {
        api(
            s,
            srv,
            "POST",
            "pub/config/urls",
            &format!(r#"{{"ocsp_servers":["{url}"]}}"#),
        );
    }
}

/// Issues `cn` (with 127.0.0.1 when it is localhost) under `pub/web`: NAME.pem, NAME.key and
/// ca.pem in the story's directory; returns the serial.
fn issue_to(s: &Story, srv: &TlsServer, cn: &str, name: &str) -> String {
    let ip = if cn == "localhost" {
        r#","ip_sans":"127.0.0.1""#
    } else {
        ""
    };
    let issued: serde_json::Value = serde_json::from_str(&api(
        s,
        srv,
        "POST",
        "pub/issue/web",
        &format!(r#"{{"common_name":"{cn}","ttl":"1h"{ip}}}"#),
    ))
    .unwrap();
    s.write(
        &format!("{name}.pem"),
        issued["data"]["certificate"].as_str().unwrap(),
    );
    s.write(
        &format!("{name}.key"),
        issued["data"]["private_key"].as_str().unwrap(),
    );
    s.write("ca.pem", issued["data"]["issuing_ca"].as_str().unwrap());
    issued["data"]["serial_number"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `--public-listen`: plain HTTP beside the TLS API for what TLS stacks fetch from a
/// certificate's URLs (the CA, the CRL, OCSP, as RFC 5280 and nginx's OCSP client want them),
/// and nothing else, not even with the root token.
#[test]
fn the_public_listener_serves_the_ca_crl_and_ocsp_over_http_and_nothing_else() {
    let s = story();
    let srv = server::mutual_tls_dev(s.dir.path(), &["--public-listen", "127.0.0.1:0"]);
    let public = srv.public.clone().expect("the public address");
    assert!(public.starts_with("http://127.0.0.1:"), "{public}");
    let api = |method: &str, path: &str, body: &str| api(&s, &srv, method, path, body);
    public_pki(&s, &srv, None);
    issue_to(&s, &srv, "www.example.com", "leaf");

    let get = |path: &str, extra: &[&str]| {
        let url = format!("{public}/v1/{path}");
        let mut args = vec!["-sS", "-o", "-", "-w", "\n%{http_code}"];
        args.extend_from_slice(extra);
        args.push(&url);
        let out = s.run("curl", &args).ok().stdout;
        let (body, code) = out.rsplit_once('\n').unwrap();
        (code.to_string(), body.to_string())
    };
    let (code, ca) = get("pub/ca/pem", &[]);
    assert_eq!(code, "200", "{ca}");
    assert_eq!(ca.trim(), s.read("ca.pem").trim());
    let (code, crl) = get("pub/crl/pem", &[]);
    assert_eq!(code, "200", "{crl}");
    assert!(crl.contains("BEGIN X509 CRL"), "{crl}");
    // OCSP over HTTP with the real openssl client, as nginx's ssl_ocsp would ask.
    let ocsp = s
        .run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                "ca.pem",
                "-cert",
                "leaf.pem",
                "-url",
                &format!("{public}/v1/pub/ocsp"),
                "-VAfile",
                "ca.pem",
                "-resp_text",
            ],
        )
        .ok();
    let said = format!("{}{}", ocsp.stdout, ocsp.stderr);
    assert!(said.contains("leaf.pem: good"), "{said}");
    assert!(said.contains("Response verify OK"), "{said}");

    // Everything else is refused, the root token notwithstanding: it is dropped unread.
    for (method, path) in [
        ("POST", "pub/issue/web"),
        ("GET", "pub/roles/web"),
        ("GET", "sys/mounts"),
        ("POST", "sys/mounts/other"),
        ("GET", "pub/config/urls"),
    ] {
        let (code, body) = get(
            path,
            &[
                "-X",
                method,
                "-H",
                "X-Vault-Token: root",
                "-d",
                r#"{"common_name":"www.example.com","type":"pki"}"#,
            ],
        );
        assert_eq!(code, "403", "{method} {path}: {body}");
        assert!(
            body.contains("not served on the public listener"),
            "{method} {path}: {body}"
        );
    }
    let ui = s
        .run(
            "curl",
            &[
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("{public}/ui/"),
            ],
        )
        .ok()
        .stdout;
    assert_eq!(ui, "404", "the dashboard is not on the public listener");
    // The API listener still answers what the public one refused.
    assert!(api("GET", "pub/roles/web", "").contains("example.com"));
    // Counted: the CA, the CRL and OCSP served, the five API calls refused.
    let metrics = api("GET", "sys/metrics", "");
    assert!(
        metrics.contains("mutual_public_requests_total{decision=\"served\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("mutual_public_requests_total{decision=\"refused\"} 5\n"),
        "{metrics}"
    );
}

/// The peer `--public-listen` is for: nginx checking client certificates with `ssl_ocsp on`,
/// at the OCSP URL mutual stamped into their AIA. Its OCSP client speaks plain HTTP only.
/// Alice is let in; Bob, revoked at the CA, is refused at the handshake.
#[test]
fn nginx_checks_client_certificates_by_ocsp_over_the_public_listener() {
    if !server::have("nginx") {
        eprintln!("skipping: nginx is not installed (scripts/install-test-deps installs it)");
        return;
    }
    let s = story();
    let srv = server::mutual_tls_dev(s.dir.path(), &["--public-listen", "127.0.0.1:0"]);
    let public = srv.public.clone().expect("the public address");
    public_pki(&s, &srv, Some(&format!("{public}/v1/pub/ocsp")));
    issue_to(&s, &srv, "localhost", "nginx");
    issue_to(&s, &srv, "alice.example.com", "alice");
    let bob = issue_to(&s, &srv, "bob.example.com", "bob");
    api(
        &s,
        &srv,
        "POST",
        "pub/revoke",
        &format!(r#"{{"serial_number":"{bob}"}}"#),
    );

    let port = server::free_port();
    let dir = s.dir.path().display().to_string();
    s.write(
        "nginx.conf",
        &format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nuser root;\n\
             error_log {dir}/nginx-error.log info;\npid {dir}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {dir}/nginx-tmp;\n\
               proxy_temp_path {dir}/nginx-tmp;\n  fastcgi_temp_path {dir}/nginx-tmp;\n\
               uwsgi_temp_path {dir}/nginx-tmp;\n  scgi_temp_path {dir}/nginx-tmp;\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n\
                 ssl_certificate {dir}/nginx.pem;\n    ssl_certificate_key {dir}/nginx.key;\n\
                 ssl_client_certificate {dir}/ca.pem;\n    ssl_verify_client on;\n\
                 ssl_ocsp on;\n\
                 location / {{ return 200 \"hello $ssl_client_s_dn\\n\"; }}\n  }}\n}}\n"
        ),
    );
    std::fs::create_dir_all(s.path("nginx-tmp")).unwrap();
    let nginx = Running::new(
        Command::new("nginx")
            .args(["-c", &format!("{dir}/nginx.conf"), "-p", &dir])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting nginx"),
    );
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let log = || std::fs::read_to_string(s.path("nginx-error.log")).unwrap_or_default();
    assert!(up, "nginx did not start: {}", log());
    let call = |who: &str| {
        let url = format!("https://localhost:{port}/");
        s.run(
            "curl",
            &[
                "-sS",
                "-m",
                "20",
                "--cacert",
                "ca.pem",
                "--cert",
                &format!("{who}.pem"),
                "--key",
                &format!("{who}.key"),
                "-w",
                "\n%{http_code}",
                &url,
            ],
        )
        .stdout
    };
    let alice = call("alice");
    assert!(alice.ends_with("\n200"), "{alice}\n{}", log());
    assert!(alice.contains("CN=alice.example.com"), "{alice}");
    let refused = call("bob");
    assert!(refused.ends_with("\n400"), "{refused}\n{}", log());
    assert!(log().contains("revoked"), "nginx's reason: {}", log());
    drop(nginx);
}
