//! Debian's `testssl.sh` against the three TLS servers of mutual (`mutual proxy`, `serve hello`
//! and `mutual server` over TLS): protocols, standard cipher lists, forward secrecy, server
//! preference and the known vulnerabilities (`-p -s -f -P -U --fast`, about a minute each, run
//! side by side). No finding above LOW. Certificate findings are left out of the scan: the
//! story's root is private and its leaves short-lived by design.

mod common;
mod proxying;

use std::process::Command;

use common::Story;
use proxying::{proxy, Proc};

/// testssl's severities of a finding; `WARN` and `DEBUG` say a check could not run or what it
/// did, `FATAL` that the scan failed.
const ACCEPTED: &[&str] = &["OK", "INFO", "LOW", "WARN", "DEBUG"];

fn scan(s: &Story, name: &str, port: u16) -> Vec<serde_json::Value> {
    let json = format!("testssl-{name}.json");
    let out = Command::new("timeout")
        .current_dir(s.dir.path())
        .args([
            "300",
            "testssl",
            "--quiet",
            "--fast",
            "--warnings",
            "off",
            "--color",
            "0",
        ])
        .args(["-p", "-s", "-f", "-P", "-U", "--jsonfile", &json])
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .expect("running testssl (scripts/install-test-deps installs testssl.sh)");
    let text = std::fs::read_to_string(s.path(&json)).unwrap_or_default();
    serde_json::from_str::<Vec<serde_json::Value>>(&text).unwrap_or_else(|e| {
        panic!(
            "{name}: no testssl JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn testssl_finds_nothing_above_low() {
    let s = Story::build("ec");
    let tls = [
        "--cert",
        "certs/www.example.com.crt",
        "--key",
        "certs/www.example.com.key",
    ];
    let p = proxy(&s, "http://127.0.0.1:9", &[]);
    let mut hello_args = vec!["serve", "hello", "--listen", "127.0.0.1:0"];
    hello_args.extend(["--ca", "certs/root.pem"]);
    hello_args.extend(tls);
    let h = Proc::start(s.dir.path(), &hello_args, "https");
    let server_args = [
        "server",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "certs/www.example.com.crt",
        "--tls-key",
        "certs/www.example.com.key",
    ];
    let v = Proc::start(s.dir.path(), &server_args, "https");

    let targets = [("proxy", p.port), ("hello", h.port), ("server", v.port)];
    let results: Vec<(&str, Vec<serde_json::Value>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .map(|&(name, port)| {
                let s = &s;
                scope.spawn(move || (name, scan(s, name, port)))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (name, findings) in results {
        let of = |id: &str| {
            findings.iter().find(|f| f["id"] == id).map(|f| {
                (
                    f["severity"].as_str().unwrap_or(""),
                    f["finding"].as_str().unwrap_or(""),
                )
            })
        };
        // The scan reached the server: TLS 1.3 offered, nothing below TLS 1.2.
        assert_eq!(
            of("TLS1_3").map(|f| f.0),
            Some("OK"),
            "{name}: {findings:?}"
        );
        for old in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
            let (_, finding) = of(old).unwrap_or_else(|| panic!("{name}: no {old} check"));
            assert!(
                finding.starts_with("not offered"),
                "{name}: {old}: {finding}"
            );
        }
        let bad: Vec<String> = findings
            .iter()
            .filter(|f| !ACCEPTED.contains(&f["severity"].as_str().unwrap_or("?")))
            .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["finding"]))
            .collect();
        assert!(bad.is_empty(), "{name}: findings above LOW: {bad:#?}");
    }
}
