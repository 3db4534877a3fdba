//! The CA commands with `--addr/--token` against `mutual server --dev`: the story's offline
//! commands run unchanged, the certificates verify with openssl, refusals read as they do
//! locally, and `--json` reports carry the same keys as with the local store.

mod common;
mod server;

use std::collections::BTreeSet;

use common::{colon_hex, serial_of, Run, Story};
use mutual::story_pki::StoryPki;
use serde_json::Value;

/// The same commands, either on the story's store or on a server.
struct Mode<'a> {
    story: Story,
    server: Option<&'a server::Server>,
}

impl Mode<'_> {
    fn mutual(&self, args: &[&str]) -> Run {
        let mut all: Vec<&str> = args.to_vec();
        if let Some(s) = self.server {
            all.extend(["--addr", s.addr.as_str(), "--token", s.token.as_str()]);
        }
        self.story.mutual(&all)
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.mutual(&all).ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {}", out.stdout))
    }
}

/// The story's PKI (`mutual::story_pki`, with the root's URLs), then the revocation of bob's
/// certificate; returns what each `--json` report said, by command.
fn story(m: &Mode) -> Vec<(String, Value)> {
    let mut reports = Vec::new();
    let pki = StoryPki::new("ec").with_urls(
        "http://127.0.0.1:8200/v1/root/ca",
        "http://127.0.0.1:8200/v1/root/crl",
    );
    for step in pki.steps() {
        match step.stdout_to {
            // A CA certificate for openssl to trust: PEM, not a report.
            Some(file) => {
                let pem = m.mutual(&step.argv()).ok().stdout;
                m.story.write(file, &pem);
            }
            None => reports.push((step.what(), m.json(&step.argv()))),
        }
    }
    let bob = colon_hex(&serial_of(&m.story, "certs/bob.example.com.crt"));
    for (what, args) in [
        ("revoke", vec!["revoke", &bob, "--reason", "keyCompromise"]),
        ("crl", vec!["crl", "--ca", "root"]),
        ("certs", vec!["certs"]),
        ("ca list", vec!["ca", "list"]),
        ("ca cert", vec!["ca", "cert", "root"]),
        ("role list", vec!["role", "list"]),
        ("role show", vec!["role", "show", "service"]),
    ] {
        reports.push((what.to_string(), m.json(&args)));
    }
    m.mutual(&["crl", "--ca", "root", "--out", "root.crl"]).ok();
    reports
}

/// The keys of an object, or of an array's first object.
fn keys(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Object(o) => o.keys().cloned().collect(),
        Value::Array(a) => a.first().map(keys).unwrap_or_default(),
        _ => BTreeSet::new(),
    }
}

fn openssl_verify(s: &Story, args: &[&str]) -> Run {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    s.run("openssl", &all)
}

#[test]
fn the_story_runs_against_a_server_with_the_same_reports_as_locally() {
    let srv = server::mutual_dev();
    let remote = Mode {
        story: Story::new(),
        server: Some(&srv),
    };
    let local = Mode {
        story: Story::new(),
        server: None,
    };
    let theirs = story(&remote);
    let ours = story(&local);
    for ((what, r), (_, l)) in theirs.iter().zip(&ours) {
        assert_eq!(
            keys(r),
            keys(l),
            "--json keys of {what}: remote {r}\nlocal {l}"
        );
    }
    let s = &remote.story;

    // Every certificate the server issued verifies with openssl, leaf + chain as written.
    openssl_verify(
        s,
        &[
            "-CAfile",
            "certs/root.pem",
            "-purpose",
            "sslserver",
            "certs/www.example.com.crt",
        ],
    )
    .ok();
    openssl_verify(
        s,
        &[
            "-CAfile",
            "certs/root.pem",
            "-untrusted",
            "certs/alice/alice.example.com.crt",
            "certs/alice/alice.example.com.crt",
        ],
    )
    .ok();
    // The CRL fetched from the server lists bob and not www.
    let crl = [
        "-crl_check",
        "-CRLfile",
        "root.crl",
        "-CAfile",
        "certs/root.pem",
    ];
    let mut bob = crl.to_vec();
    bob.push("certs/bob.example.com.crt");
    let out = openssl_verify(s, &bob);
    assert_ne!(out.code, 0, "bob is revoked: {}", out.stdout);
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains("certificate revoked"),
        "{}",
        out.stderr
    );
    let mut www = crl.to_vec();
    www.push("certs/www.example.com.crt");
    openssl_verify(s, &www).ok();

    // The reports agree on what happened.
    let report = |what: &str| &theirs.iter().find(|(w, _)| *w == what).unwrap().1;
    assert_eq!(report("revoke")["already_revoked"], false);
    assert_eq!(report("revoke")["ca"], "root");
    assert_eq!(report("crl")["revoked"], 1);
    assert_eq!(report("ca intermediate")["parent"], "root");
    let certs = report("certs").as_array().unwrap();
    assert!(certs
        .iter()
        .any(|c| c["common_name"] == "bob.example.com" && c["reason"] == "keyCompromise"));
    assert!(certs
        .iter()
        .any(|c| c["common_name"] == "alice.example.com" && c["ca"] == "alice"));
    let text = remote.mutual(&["certs", "--revoked"]).ok().stdout;
    assert!(
        text.contains("bob.example.com") && !text.contains("www.example.com"),
        "{text}"
    );

    // Refusals are the same one line, with exit code 1.
    let evil = ["issue", "evil.com", "--role", "service", "--out", "certs"];
    let r = remote.mutual(&evil).fails(1);
    let l = local.mutual(&evil).fails(1);
    assert_eq!(r.stderr, l.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r
        .stderr
        .contains("\"evil.com\" is not allowed by role \"service\""));
    let unknown = ["issue", "x.example.com", "--role", "nosuch"];
    assert_eq!(
        remote.mutual(&unknown).fails(1).stderr,
        local.mutual(&unknown).fails(1).stderr
    );
    let nosuch = ["ca", "cert", "nosuch"];
    assert_eq!(
        remote.mutual(&nosuch).fails(1).stderr,
        local.mutual(&nosuch).fails(1).stderr
    );

    // sign: a CSR made by openssl, signed under the role, verified by openssl.
    for m in [&remote, &local] {
        m.story
            .run(
                "openssl",
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                    "-nodes",
                    "-keyout",
                    "api.key",
                    "-subj",
                    "/CN=api.example.com",
                    "-out",
                    "api.csr",
                ],
            )
            .ok();
    }
    let sign = ["sign", "api.csr", "--role", "service", "--out", "api.crt"];
    let (r, l) = (remote.json(&sign), local.json(&sign));
    assert_eq!(keys(&r), keys(&l), "--json keys of sign: {r}\n{l}");
    assert_eq!(r["common_name"], "api.example.com");
    openssl_verify(s, &["-CAfile", "certs/root.pem", "api.crt"]).ok();
    let again = remote.mutual(&[
        "revoke",
        &colon_hex(&serial_of(s, "certs/bob.example.com.crt")),
    ]);
    assert!(again.ok().stdout.contains("already revoked"));
}

#[test]
fn a_role_name_in_two_cas_is_refused_until_the_ca_is_named() {
    let srv = server::mutual_dev();
    let m = Mode {
        story: Story::new(),
        server: Some(&srv),
    };
    m.mutual(&["ca", "init"]).ok();
    m.mutual(&["ca", "intermediate", "alice", "--name", "Alice CA"])
        .ok();
    for ca in ["root", "alice"] {
        m.mutual(&["role", "set", "web", "--ca", ca, "--allow-any-name"])
            .ok();
    }
    let out = m
        .mutual(&["issue", "a.example.com", "--role", "web"])
        .fails(1);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("alice/web, root/web"), "{}", out.stderr);
    let issued = m.json(&["issue", "a.example.com", "--role", "alice/web"]);
    assert_eq!(issued["issuer"], "alice");
    assert_eq!(m.json(&["role", "show", "root/web"])["issuer"], "root");
}

#[test]
fn a_bad_token_or_no_server_is_one_line_and_exit_1() {
    let srv = server::mutual_dev();
    let s = Story::new();
    let out = s
        .mutual(&["ca", "list", "--addr", &srv.addr, "--token", "wrong"])
        .fails(1);
    assert!(out.stderr.starts_with("mutual: "), "{}", out.stderr);
    assert!(out.stderr.contains("permission denied"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = s
        .mutual(&["ca", "list", "--addr", &format!("http://127.0.0.1:{port}")])
        .fails(1);
    assert!(out.stderr.contains("connecting to"), "{}", out.stderr);
    s.mutual(&["ca", "list", "--addr", "ftp://x"]).fails(2);
}

/// A lock held by another process, met by the server's group-commit writer (rusqlite), reads
/// as it does on the CLI's path (sqlx): the store is locked, and for how long it was waited.
#[test]
fn a_store_locked_by_another_process_is_named_by_the_server_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let out = server::mutual(&["server", "init", "--data", data_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("Root Token: "))
        .expect("root token printed")
        .trim()
        .to_string();
    let srv = server::mutual_data_env(&data, &token, &[("MUTUAL_LOCK_TIMEOUT", "1s")]);
    let setup = [
        ("sys/mounts/pki_locked", r#"{"type":"pki"}"#),
        (
            "pki_locked/root/generate/internal",
            r#"{"common_name":"Local Root CA","key_type":"ec","ttl":"8760h"}"#,
        ),
        (
            "pki_locked/roles/service",
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec"}"#,
        ),
    ];
    for (path, body) in setup {
        let (code, resp) = server::curl(&srv, "POST", path, Some(body));
        assert!(code / 100 == 2, "{path}: {code} {resp}");
    }
    // Another process holds the write lock for 3 s (python's sqlite3, not ours).
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\ncon=sqlite3.connect(sys.argv[1],isolation_level=None)\ncon.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\ntime.sleep(3)\ncon.execute('ROLLBACK')",
            data.join("mutual.db").to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let issue = r#"{"common_name":"late.example.com","ttl":"1h"}"#;
    let (code, body) = server::curl(&srv, "POST", "pki_locked/issue/service", Some(issue));
    assert_eq!(code, 500, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["errors"][0],
        "the store is locked by another process (waited 1 s); try again when it has finished",
        "{body}"
    );
    holder.wait().unwrap();
    // Once the lock is released, the same request succeeds.
    let (code, body) = server::curl(&srv, "POST", "pki_locked/issue/service", Some(issue));
    assert_eq!(code, 200, "{body}");
}
