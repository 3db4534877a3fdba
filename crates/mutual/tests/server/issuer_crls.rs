//! One scenario the SQLite and PostgreSQL tests both run: a mount with two issuers, whose
//! complete and delta CRLs each list what their issuer's key signed; and the helpers of the CRL
//! tests.

use std::{collections::BTreeSet, path::Path, process::Command};

use serde_json::{json, Value};

use super::{curl, Server};

pub fn post(s: &Server, path: &str, body: Value) -> Value {
    let (code, text) = curl(s, "POST", path, Some(&body.to_string()));
    assert!((200..300).contains(&code), "POST {path}: {code} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

pub fn get(s: &Server, path: &str) -> (u16, String) {
    curl(s, "GET", path, None)
}

pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Serials listed by `openssl crl -text`, as colon-less upper hex.
pub fn crl_serials(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Serial Number: "))
        .map(|s| s.trim().to_ascii_uppercase())
        .collect()
}

pub fn hex(serial: &str) -> String {
    serial.replace(':', "").to_ascii_uppercase()
}

/// Two issuers on one mount: each issuer's complete and delta CRL lists the certificates its
/// key signed and no other, each verifies against its own issuer, and `crl/rotate-delta`
/// builds every issuer's delta at once.
pub fn each_issuer_has_its_own_crls(s: &Server) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    post(s, "sys/mounts/pki_two", json!({"type": "pki"}));
    post(
        s,
        "pki_two/root/generate/internal",
        json!({"common_name": "CRL Root", "key_type": "ec", "ttl": "720h"}),
    );
    post(
        s,
        "pki_two/roles/r",
        json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec"}),
    );
    post(
        s,
        "pki_two/issuers/generate/root/internal",
        json!({"common_name": "Second Root", "key_type": "ec", "issuer_name": "second"}),
    );
    post(
        s,
        "pki_two/roles/r2",
        json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec",
               "issuer_ref": "second"}),
    );
    post(
        s,
        "pki_two/config/crl",
        json!({"auto_rebuild": true, "enable_delta": true, "delta_rebuild_interval": "1h"}),
    );
    for (name, path) in [
        ("first.pem", "pki_two/issuer/default/pem"),
        ("second.pem", "pki_two/issuer/second/pem"),
    ] {
        std::fs::write(d.join(name), get(s, path).1).unwrap();
    }
    let issue_with = |role: &str, cn: &str| {
        let v = post(
            s,
            &format!("pki_two/issue/{role}"),
            json!({"common_name": cn, "ttl": "1h"}),
        );
        hex(v["data"]["serial_number"].as_str().unwrap())
    };
    let revoke = |serial: &str| {
        post(s, "pki_two/revoke", json!({"serial_number": serial}));
    };
    let (a1, a2) = (
        issue_with("r", "a1.example.com"),
        issue_with("r", "a2.example.com"),
    );
    let (b1, b2) = (
        issue_with("r2", "b1.example.com"),
        issue_with("r2", "b2.example.com"),
    );
    revoke(&a1);
    revoke(&b1);
    let crl = |path: &str, file: &str, ca: &str| -> BTreeSet<String> {
        let (code, pem) = get(s, path);
        assert_eq!(code, 200, "{path}: {pem}");
        std::fs::write(d.join(file), pem).unwrap();
        let (ok, text) = openssl(d, &["crl", "-in", file, "-CAfile", ca, "-noout", "-text"]);
        assert!(ok && text.contains("verify OK"), "{path}: {text}");
        println!("{path}: {:?}", crl_serials(&text));
        crl_serials(&text)
    };
    let set = |v: &[&String]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(crl("pki_two/crl/pem", "1.pem", "first.pem"), set(&[&a1]));
    assert_eq!(
        crl("pki_two/issuer/default/crl/pem", "1d.pem", "first.pem"),
        set(&[&a1])
    );
    assert_eq!(
        crl("pki_two/issuer/second/crl/pem", "2.pem", "second.pem"),
        set(&[&b1])
    );
    // After the bases: each delta holds its own issuer's new revocation only.
    revoke(&a2);
    revoke(&b2);
    assert_eq!(get(s, "pki_two/crl/rotate-delta").0, 200);
    assert_eq!(
        crl(
            "pki_two/issuer/default/crl/delta/pem",
            "1delta.pem",
            "first.pem"
        ),
        set(&[&a2])
    );
    assert_eq!(
        crl(
            "pki_two/issuer/second/crl/delta/pem",
            "2delta.pem",
            "second.pem"
        ),
        set(&[&b2])
    );
    // crl/rotate rebuilds both complete CRLs: each now holds both of its own.
    assert_eq!(get(s, "pki_two/crl/rotate").0, 200);
    assert_eq!(
        crl("pki_two/issuer/second/crl/pem", "2b.pem", "second.pem"),
        set(&[&b1, &b2])
    );
    assert_eq!(
        crl("pki_two/crl/pem", "1b.pem", "first.pem"),
        set(&[&a1, &a2])
    );
    // Each build is counted, by kind: at least the two issuers' complete CRLs twice and their
    // deltas once (the server may have built more for other mounts).
    let (code, metrics) = get(s, "sys/metrics");
    assert_eq!(code, 200, "{metrics}");
    let count = |kind: &str| -> u64 {
        let prefix = format!("mutual_crl_builds_total{{kind=\"{kind}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no mutual_crl_builds_total for {kind}: {metrics}"))
    };
    assert!(count("complete") >= 4 && count("delta") >= 2, "{metrics}");
    assert!(metrics.contains("mutual_crl_build_seconds_total{kind=\"complete\"}"));
    assert!(metrics.contains("mutual_revocations_attributed_total "));
}
