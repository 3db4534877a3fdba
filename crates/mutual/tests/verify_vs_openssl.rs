//! `mutual verify` and `openssl verify` refuse the same certificates for the same first
//! reason, and `mutual verify` warns about trust files wider than they look.

mod common;

use common::{serial_of, Story};

/// (openssl's error number, mutual's --json code) for each refusal.
fn both(s: &Story, mutual: &[&str], openssl: &[&str]) -> (String, String) {
    let mut args = vec!["--json", "verify"];
    args.extend_from_slice(mutual);
    let m = s.mutual(&args);
    assert_eq!(m.code, 1, "mutual should refuse: {} {}", m.stdout, m.stderr);
    let v: serde_json::Value = serde_json::from_str(&m.stdout).expect("json");
    let mut oargs = vec!["verify"];
    oargs.extend_from_slice(openssl);
    let o = s.run("openssl", &oargs);
    assert_ne!(o.code, 0, "openssl should refuse: {}", o.stdout);
    let text = format!("{}{}", o.stdout, o.stderr);
    let err = text
        .split("error ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_default()
        .to_string();
    (err, v["code"].as_str().unwrap_or_default().to_string())
}

#[test]
fn same_first_error_as_openssl() {
    let s = Story::build("ec");
    s.mutual(&[
        "role",
        "set",
        "srv",
        "--ca",
        "root",
        "--allowed-domains",
        "example.com",
        "--allow-subdomains",
        "--server",
    ])
    .ok();
    s.mutual(&[
        "issue",
        "only-server.example.com",
        "--role",
        "srv",
        "--out",
        "certs",
    ])
    .ok();
    let bob = "certs/bob/bob.example.com.crt";
    let serial = serial_of(&s, "certs/alice.example.com.crt");
    s.mutual(&["revoke", &serial]).ok();
    s.mutual(&["crl", "--ca", "root", "--out", "root.crl", "--pem"])
        .ok();

    type Row<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, &'a str, &'a str);
    let rows: Vec<Row> = vec![
        (
            "Bob against the Alice-only trust file",
            vec![bob, "--ca", "certs/alice-ca.pem"],
            vec![
                "-partial_chain",
                "-CAfile",
                "certs/alice-ca.pem",
                "-untrusted",
                bob,
                bob,
            ],
            "20",
            "unknown_issuer",
        ),
        (
            "revoked Alice",
            vec![
                "certs/alice.example.com.crt",
                "--ca",
                "certs/root.pem",
                "--crl",
                "root.crl",
            ],
            vec![
                "-crl_check",
                "-CRLfile",
                "root.crl",
                "-CAfile",
                "certs/root.pem",
                "certs/alice.example.com.crt",
            ],
            "23",
            "revoked",
        ),
        (
            "wrong host name",
            vec![
                "certs/www.example.com.crt",
                "--ca",
                "certs/root.pem",
                "--name",
                "api.example.com",
            ],
            vec![
                "-CAfile",
                "certs/root.pem",
                "-verify_hostname",
                "api.example.com",
                "certs/www.example.com.crt",
            ],
            "62",
            "name_mismatch",
        ),
        (
            "server-only certificate used by a client",
            vec![
                "certs/only-server.example.com.crt",
                "--ca",
                "certs/root.pem",
                "--purpose",
                "client",
            ],
            vec![
                "-CAfile",
                "certs/root.pem",
                "-purpose",
                "sslclient",
                "certs/only-server.example.com.crt",
            ],
            "26",
            "wrong_purpose",
        ),
        (
            "a leaf given as the CA of another leaf",
            vec![bob, "--ca", "certs/alice.example.com.crt"],
            vec![
                "-partial_chain",
                "-CAfile",
                "certs/alice.example.com.crt",
                bob,
            ],
            "20",
            "unknown_issuer",
        ),
    ];
    for (label, m, o, want_openssl, want_code) in rows {
        let (oerr, code) = both(&s, &m, &o);
        assert_eq!(oerr, want_openssl, "{label}: openssl");
        assert_eq!(code, want_code, "{label}: mutual");
    }
}

#[test]
fn alice_only_story_and_the_wide_trust_pitfall() {
    let s = Story::build("ec");
    let alice = "certs/alice/alice.example.com.crt";
    let bob = "certs/bob/bob.example.com.crt";
    s.mutual(&[
        "verify",
        alice,
        "--ca",
        "certs/alice-ca.pem",
        "--purpose",
        "client",
    ])
    .ok();
    let r = s
        .mutual(&[
            "verify",
            bob,
            "--ca",
            "certs/alice-ca.pem",
            "--purpose",
            "client",
        ])
        .fails(1);
    assert!(
        r.stderr.contains("Bob Intermediate Authority"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Alice Intermediate Authority"),
        "{}",
        r.stderr
    );
    // The trust file as today's OpenBao returns it: the intermediate with the root appended.
    let wide = format!(
        "{}{}",
        s.read("certs/alice-ca.pem"),
        s.read("certs/root.pem")
    );
    s.write("wide.pem", &wide);
    let r = s.mutual(&["verify", bob, "--ca", "wide.pem"]).ok();
    assert!(r.stderr.contains("warning: the CA file holds \"CN=Alice Intermediate Authority\" together with its issuer \"CN=Local Root CA\""), "{}", r.stderr);
}
