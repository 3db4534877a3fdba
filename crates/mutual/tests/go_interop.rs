//! Interop with Go's standard library: a Go client against `mutual serve hello`, `mutual curl`
//! against a Go server, both directions, and Go refuses what mutual refuses.

mod common;
mod serving;

use std::process::Command;

use common::Story;
use serving::Server;

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
