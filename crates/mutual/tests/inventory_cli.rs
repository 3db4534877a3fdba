//! `mutual certs` with the inventory's filters, on the story's store (local) and against a
//! `mutual server` (remote, through `GET <mount>/inventory`).

mod common;
mod lifecycle;

use common::Story;
use serde_json::Value;

fn cns(json: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["common_name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn certs_filters_on_the_local_store() {
    let s = Story::build("ec");
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (
            vec!["--cn", "alice"],
            vec!["alice.example.com", "alice.example.com"],
        ),
        (
            vec!["--cn", "alice", "--ca", "alice"],
            vec!["alice.example.com"],
        ),
        (vec!["--san", "127.0.0.1"], vec!["www.example.com"]),
        (vec!["--san", "dns:localhost"], vec!["www.example.com"]),
        (vec!["--role", "bob"], vec!["bob.example.com"]),
        (vec!["--cn", "nobody"], vec![]),
    ];
    for (args, want) in cases {
        let mut argv = vec!["--json", "certs"];
        argv.extend(&args);
        let out = s.mutual(&argv).ok();
        assert_eq!(cns(&out.stdout), want, "{args:?}");
    }
    let alice = common::serial_of(&s, "certs/alice/alice.example.com.crt");
    s.mutual(&["revoke", &alice, "--reason", "key-compromise"])
        .ok();
    let out = s
        .mutual(&["--json", "certs", "--cn", "alice", "--valid"])
        .ok();
    assert_eq!(cns(&out.stdout), ["alice.example.com"]);
    let out = s.mutual(&["certs", "--cn", "alice", "--revoked"]).ok();
    assert!(out.stdout.contains("revoked"), "{}", out.stdout);
    assert!(out.stdout.contains("key"), "{}", out.stdout);
    let out = s.mutual(&["certs", "--sort", "size"]).fails(1);
    assert_eq!(
        out.stderr.trim(),
        "mutual: sort: \"size\" is not one of expiry, cn, issued, serial, revoked"
    );
    let out = s
        .mutual(&["--json", "certs", "--sort", "cn", "--desc"])
        .ok();
    let names = cns(&out.stdout);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(names, sorted);
}

#[test]
fn certs_filters_against_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let ca = lifecycle::Ca::new(dir.path());
    for body in [
        r#"{"common_name":"alice.example.com","alt_names":"api.example.com"}"#,
        r#"{"common_name":"bob.example.com"}"#,
    ] {
        let (code, text) = ca.call("POST", "pki/issue/service", body);
        assert_eq!(code, 200, "{text}");
    }
    let run = |args: &[&str]| {
        let out = std::process::Command::new(lifecycle::bin())
            .args([
                "--addr",
                &ca.addr(),
                "--token",
                &ca.token,
                "--json",
                "certs",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        cns(&String::from_utf8_lossy(&out.stdout))
    };
    assert_eq!(run(&["--cn", "bob"]), ["bob.example.com"]);
    assert_eq!(run(&["--san", "api.example.com"]), ["alice.example.com"]);
    assert_eq!(
        run(&["--ca", "pki", "--sort", "cn"]),
        ["alice.example.com", "bob.example.com"]
    );
    assert_eq!(
        run(&["--expiring", "2h", "--sort", "cn"]),
        ["alice.example.com", "bob.example.com"]
    );
}
