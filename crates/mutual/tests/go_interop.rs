//! Interop with Go's standard library: a Go client against `mutual serve hello`, `mutual curl`
//! against a Go server, both directions, and Go refuses what mutual refuses; and Go's
//! `x/crypto/ocsp` reading `mutual server`'s OCSP answers beside OpenBao's.

mod common;
mod server;
mod serving;

use std::{path::Path, process::Command};

use common::Story;
use serving::Server;

/// Where Debian's golang-golang-x-crypto-dev puts `golang.org/x/crypto` (a GOPATH tree).
const GOCODE: &str = "/usr/share/gocode";

fn go() -> Option<String> {
    let found = Command::new("go")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIP: `go` is not installed (apt-get install golang-go); Go interop not tested");
    }
    found.then(|| "go".to_string())
}

/// Builds a Go program of `fixtures/go` into the story's directory.
fn build(s: &Story, name: &str) -> String {
    let src = format!("{}/tests/fixtures/go/{name}.go", env!("CARGO_MANIFEST_DIR"));
    let out = s.path(&format!("go-{name}"));
    let r = Command::new("go")
        .current_dir(s.dir.path())
        .env("GO111MODULE", "off")
        .env("GOPATH", GOCODE)
        .args(["build", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("go build");
    assert!(
        r.status.success(),
        "go build {name}: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    out.display().to_string()
}

#[test]
fn go_and_mutual_exchange_hello_both_ways_and_refuse_alike() {
    if go().is_none() {
        return;
    }
    let s = Story::build("ec");
    let client = build(&s, "client");
    let server = build(&s, "server");

    // Go client → mutual server (Alice-only trust).
    let srv = Server::start(
        s.dir.path(),
        &[
            "hello",
            "--ca",
            "certs/alice-ca.pem",
            "--cert",
            "certs/www.example.com.crt",
            "--key",
            "certs/www.example.com.key",
        ],
    );
    let alice = s
        .run(
            &client,
            &[
                &srv.url("/?name=Alice"),
                "certs/alice/alice.example.com.crt",
                "certs/alice/alice.example.com.key",
                "certs/root.pem",
            ],
        )
        .ok();
    assert_eq!(alice.stdout.trim(), "Hello Alice");
    let bob = s.run(
        &client,
        &[
            &srv.url("/"),
            "certs/bob/bob.example.com.crt",
            "certs/bob/bob.example.com.key",
            "certs/root.pem",
        ],
    );
    assert_eq!(bob.code, 1, "{}", bob.stdout);
    // Go sends no certificate when none chains to the CAs the server asks for: the server
    // says so, and names the CA it asked for.
    let line = srv.wait_log(&["no_certificate"]);
    assert!(line.contains("CN=Alice Intermediate Authority"), "{line}");

    // mutual curl → Go server, trusting only the Alice intermediate.
    let mut go_srv = Command::new(&server)
        .current_dir(s.dir.path())
        .args([
            "certs/www.example.com.crt",
            "certs/www.example.com.key",
            "certs/alice-ca.pem",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("go server");
    let mut first = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(go_srv.stderr.take().unwrap());
        r.read_line(&mut first).unwrap();
    }
    let port = first.trim().rsplit(':').next().unwrap().to_string();
    let url = format!("https://localhost:{port}/?name=Alice");
    let ok = s.mutual(&[
        "curl",
        &url,
        "--cert",
        "certs/alice/alice.example.com.crt",
        "--key",
        "certs/alice/alice.example.com.key",
        "--ca",
        "certs/root.pem",
    ]);
    let refused = s.mutual(&[
        "curl",
        &url,
        "--cert",
        "certs/bob/bob.example.com.crt",
        "--key",
        "certs/bob/bob.example.com.key",
        "--ca",
        "certs/root.pem",
    ]);
    let _ = go_srv.kill();
    let _ = go_srv.wait();
    let ok = ok.ok();
    assert_eq!(ok.stdout.trim(), "Hello Alice");
    let refused = refused.fails(1);
    assert!(
        refused.stderr.contains("Alice Intermediate Authority"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("Bob Intermediate Authority"),
        "{}",
        refused.stderr
    );
}

/// Sets up, on `srv`, a mount `pki` with an EC root and a mount `pki_int` with an EC
/// intermediate signed by it, issues a leaf from each, and writes `NAME-root.pem`,
/// `NAME-int.pem`, `NAME-leaf-root.pem` and `NAME-leaf-int.pem` into `dir`. Returns the
/// serials of the two leaves, as the API wrote them.
fn two_tier(srv: &server::Server, dir: &Path, name: &str) -> Vec<String> {
    let call = |path: &str, body: serde_json::Value| -> serde_json::Value {
        let (code, out) = server::curl(srv, "POST", path, Some(&body.to_string()));
        assert!(
            code == 200 || code == 204,
            "{} {path}: {code} {out}",
            srv.name
        );
        serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
    };
    let write = |file: &str, v: &serde_json::Value| {
        let pem = v
            .as_str()
            .unwrap_or_else(|| panic!("{} {file}: {v}", srv.name));
        std::fs::write(dir.join(format!("{name}-{file}.pem")), pem).unwrap();
    };
    call("sys/mounts/pki", serde_json::json!({"type": "pki"}));
    call("sys/mounts/pki_int", serde_json::json!({"type": "pki"}));
    let root = call(
        "pki/root/generate/internal",
        serde_json::json!({"common_name": "OCSP Root", "key_type": "ec", "ttl": "8760h"}),
    );
    write("root", &root["data"]["certificate"]);
    let csr = call(
        "pki_int/intermediate/generate/internal",
        serde_json::json!({"common_name": "OCSP Intermediate", "key_type": "ec"}),
    );
    let int = call(
        "pki/root/sign-intermediate",
        serde_json::json!({"csr": csr["data"]["csr"], "ttl": "720h"}),
    );
    write("int", &int["data"]["certificate"]);
    call(
        "pki_int/intermediate/set-signed",
        serde_json::json!({"certificate": int["data"]["certificate"]}),
    );
    let mut serials = Vec::new();
    for (mount, file) in [("pki", "leaf-root"), ("pki_int", "leaf-int")] {
        call(
            &format!("{mount}/roles/svc"),
            serde_json::json!({"allowed_domains": "example.com", "allow_subdomains": true,
                               "key_type": "ec"}),
        );
        let leaf = call(
            &format!("{mount}/issue/svc"),
            serde_json::json!({"common_name": "api.example.com", "ttl": "24h"}),
        );
        write(file, &leaf["data"]["certificate"]);
        serials.push(leaf["data"]["serial_number"].as_str().unwrap().to_string());
    }
    serials
}

/// A serial as Go prints a big.Int in hex: no colons, no leading zeros, lower case.
fn go_hex(serial: &str) -> String {
    let hex = serial.replace(':', "").to_ascii_lowercase();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }.to_string()
}

/// Go's `x/crypto/ocsp` reads the OCSP answers, and `crypto/x509` the CRLs, of a root and of
/// an intermediate, from `mutual server` and from OpenBao's dev server with the same requests;
/// `openssl ocsp` checks the same answers.
#[test]
fn go_reads_the_ocsp_answers_and_crls_of_a_root_and_an_intermediate_beside_openbao() {
    if go().is_none() {
        return;
    }
    if !Path::new(GOCODE)
        .join("src/golang.org/x/crypto/ocsp")
        .is_dir()
    {
        eprintln!("SKIP: golang.org/x/crypto is not installed (apt-get install golang-golang-x-crypto-dev)");
        return;
    }
    let s = Story::new();
    let check = build(&s, "ocspcheck");
    let crlcheck = build(&s, "crlcheck");
    let mut servers = vec![server::mutual_dev()];
    if server::have_bao(
        "go_reads_the_ocsp_answers_and_crls_of_a_root_and_an_intermediate_beside_openbao",
    ) {
        servers.push(server::openbao_dev());
    }
    for srv in &servers {
        let n = srv.name;
        let serials = two_tier(srv, s.dir.path(), n);
        for (mount, leaf, issuer) in [("pki", "leaf-root", "root"), ("pki_int", "leaf-int", "int")]
        {
            let (leaf, issuer, resp) = (
                format!("{n}-{leaf}.pem"),
                format!("{n}-{issuer}.pem"),
                format!("{n}-{mount}.der"),
            );
            let url = format!("{}/v1/{mount}/ocsp", srv.addr);
            let root = format!("{n}-root.pem");
            let openssl = s.run(
                "openssl",
                &[
                    "ocsp", "-issuer", &issuer, "-cert", &leaf, "-CAfile", &root, "-url", &url,
                    "-respout", &resp,
                ],
            );
            let go = s.run(&check, &[&resp, &leaf, &issuer]);
            println!(
                "{n} {mount}: openssl: {} / {} | Go x/crypto/ocsp: {}",
                openssl.stdout.lines().next().unwrap_or("").trim(),
                openssl.stderr.trim().replace('\n', "; "),
                go.stdout.trim()
            );
            assert!(
                openssl.stdout.contains(&format!("{leaf}: good"))
                    && openssl.stderr.contains("Response verify OK"),
                "{n} {mount}: {}\n{}",
                openssl.stdout,
                openssl.stderr
            );
            // Before mutual left the issuer's certificate out of its answers, Go refused the
            // intermediate's: "bad OCSP signature: x509: ECDSA verification failure".
            assert_eq!(go.code, 0, "{n} {mount}: {}", go.stdout);
            assert!(
                go.stdout.starts_with("good") && go.stdout.contains("embedded: false"),
                "{n} {mount}: {}",
                go.stdout
            );
        }
        // The intermediate's leaf revoked: each CA's CRL parses and verifies in Go, and the
        // intermediate's lists the serial.
        let (code, out) = server::curl(
            srv,
            "POST",
            "pki_int/revoke",
            Some(&serde_json::json!({"serial_number": serials[1]}).to_string()),
        );
        assert_eq!(code, 200, "{n} revoke: {out}");
        for (mount, issuer, listed) in
            [("pki", "root", None), ("pki_int", "int", Some(&serials[1]))]
        {
            let file = format!("{n}-{mount}.crl");
            let got = s.run(
                "curl",
                &["-sSf", "-o", &file, &format!("{}/v1/{mount}/crl", srv.addr)],
            );
            assert_eq!(got.code, 0, "{n} {mount}/crl: {}", got.stderr);
            let go = s.run(&crlcheck, &[&file, &format!("{n}-{issuer}.pem")]);
            println!("{n} {mount}/crl: Go crypto/x509: {}", go.stdout.trim());
            assert_eq!(go.code, 0, "{n} {mount}/crl: {}", go.stdout);
            let revoked = go
                .stdout
                .split_once("revoked [")
                .and_then(|(_, r)| r.trim().strip_suffix(']'))
                .unwrap_or_else(|| panic!("{n} {mount}/crl: {}", go.stdout))
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>();
            let want: Vec<String> = listed.map(|s| go_hex(s)).into_iter().collect();
            assert_eq!(revoked, want, "{n} {mount}/crl");
        }
    }
}
