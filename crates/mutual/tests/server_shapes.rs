//! Answers shaped like OpenBao's: the same requests go to `mutual server --dev` and OpenBao's
//! dev server for every PKI path mutual serves, and the status and the keys and JSON types of
//! `data` are compared. mutual may answer more keys; it must not lack one OpenBao has, except
//! for the deliberate differences listed in `EXCEPTIONS` with their reasons. A table of both
//! is printed. A second test runs `bao pki health-check` against mutual: every check runs, none
//! is skipped as needing a newer Vault.

mod server;

use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
};

use serde_json::Value;
use server::{curl, curl_as, have_bao, mutual_dev, openbao_dev, Server};

/// Deliberate differences: (request label, key or `status`, why).
const EXCEPTIONS: &[(&str, &str, &str)] = &[
    (
        "GET int/issuer/default/crl/delta",
        "status",
        "mutual builds full CRLs only (config/crl: enable_delta false); it answers 'unable to \
         find', which Vault's clients read as a missing resource",
    ),
    (
        "POST pki/issue/svc (private_key_format=jks)",
        "status",
        "mutual refuses a private_key_format it does not know (400, naming der, pem, pkcs8); \
         OpenBao ignores it and answers its default",
    ),
    (
        "GET pki/tidy-status (after tidy)",
        "last_auto_tidy_finished",
        "mutual has no auto-tidy (config/auto-tidy: enabled false), so no auto-tidy ever \
         finished: null",
    ),
];

fn exception(label: &str, key: &str) -> Option<&'static str> {
    EXCEPTIONS
        .iter()
        .find(|(l, k, _)| *l == label && *k == key)
        .map(|(_, _, why)| *why)
}

/// One request of the comparison.
struct Req {
    label: String,
    method: &'static str,
    path: String,
    body: Option<String>,
    token: bool,
}

fn req(method: &'static str, path: &str, body: Option<&str>) -> Req {
    Req {
        label: format!("{method} {path}"),
        method,
        path: path.to_string(),
        body: body.map(str::to_string),
        token: true,
    }
}

/// What one server answered.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    json: Option<Value>,
}

fn ask(server: &Server, r: &Req) -> Answer {
    let (status, body) = if r.token {
        curl(server, r.method, &r.path, r.body.as_deref())
    } else {
        curl_as(server, None, r.method, &r.path, r.body.as_deref())
    };
    Answer {
        status,
        json: serde_json::from_str(&body).ok(),
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn data_types(a: &Answer) -> BTreeMap<String, &'static str> {
    a.json
        .as_ref()
        .and_then(|j| j.get("data"))
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), type_of(v))).collect())
        .unwrap_or_default()
}

fn data<'a>(a: &'a Answer, key: &str) -> &'a str {
    a.json
        .as_ref()
        .and_then(|j| j["data"][key].as_str())
        .unwrap_or("")
}

fn warnings(a: &Answer) -> Vec<String> {
    a.json
        .as_ref()
        .and_then(|j| j["warnings"].as_array())
        .map(|w| {
            w.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The PEM labels of a text, in order (`RSA PRIVATE KEY`, `CERTIFICATE`, …), or `base64` for
/// a bare DER in base64.
fn pem_labels(text: &str) -> Vec<String> {
    let labels: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .map(str::to_string)
        .collect();
    if labels.is_empty() && !text.is_empty() {
        return vec!["base64".into()];
    }
    labels
}

fn write_csr(dir: &Path) -> String {
    let out = Command::new("openssl")
        .args(["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout"])
        .arg(dir.join("leaf.key"))
        .args([
            "-subj",
            "/C=NL/ST=Zuid-Holland/L=Delft/O=Acme/OU=Ops/CN=x.example.com",
        ])
        .stderr(Stdio::null())
        .output()
        .expect("openssl req");
    assert!(out.status.success(), "openssl req failed");
    String::from_utf8(out.stdout).expect("PEM")
}

fn subject_of(pem: &str, dir: &Path, name: &str) -> String {
    let file = dir.join(name);
    std::fs::write(&file, pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(&file)
        .output()
        .expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn json_body(v: Value) -> String {
    v.to_string()
}

/// Sets a server up the same way: mounts `pki` (a root) and `int` (an intermediate signed by
/// it), a role, and answers the set-up requests (themselves compared).
fn setup_requests(csr: &str) -> Vec<Req> {
    let mount = r#"{"type":"pki","config":{"max_lease_ttl":"87600h"}}"#;
    vec![
        req("POST", "sys/mounts/pki", Some(mount)),
        req("POST", "sys/mounts/int", Some(mount)),
        req("POST", "sys/mounts/exp", Some(mount)),
        req(
            "POST",
            "pki/root/generate/internal",
            Some(r#"{"common_name":"Shapes Root","ttl":"8760h","key_type":"rsa"}"#),
        ),
        req(
            "POST",
            "exp/root/generate/exported",
            Some(r#"{"common_name":"Exported Root","ttl":"8760h","key_type":"ec"}"#),
        ),
        req(
            "POST",
            "pki/config/urls",
            Some(
                r#"{"issuing_certificates":"http://127.0.0.1:8200/v1/pki/ca","crl_distribution_points":"http://127.0.0.1:8200/v1/pki/crl"}"#,
            ),
        ),
        req("GET", "pki/config/urls", None),
        req(
            "POST",
            "int/intermediate/generate/internal",
            Some(r#"{"common_name":"Shapes Intermediate","key_type":"ec"}"#),
        ),
        req(
            "POST",
            "pki/roles/svc",
            Some(r#"{"allowed_domains":"example.com","allow_subdomains":true,"max_ttl":"72h"}"#),
        ),
        req(
            "POST",
            "pki/roles/ec",
            Some(
                r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","signature_bits":384,"code_signing_flag":true}"#,
            ),
        ),
        req("GET", "pki/roles/svc", None),
        req("GET", "pki/roles/ec", None),
        req("LIST", "pki/roles", None),
        req(
            "POST",
            "pki/issue/svc",
            Some(r#"{"common_name":"a.example.com","ttl":"1h"}"#),
        ),
        req(
            "POST",
            "pki/issue/svc",
            Some(r#"{"common_name":"b.example.com","ttl":"1h","format":"pem_bundle"}"#),
        ),
        req(
            "POST",
            "pki/issue/svc",
            Some(r#"{"common_name":"c.example.com","ttl":"1h","format":"der"}"#),
        ),
        req(
            "POST",
            "pki/issue/svc",
            Some(r#"{"common_name":"d.example.com","ttl":"1h","private_key_format":"pkcs8"}"#),
        ),
        req(
            "POST",
            "pki/issue/ec",
            Some(r#"{"common_name":"e.example.com","ttl":"1h"}"#),
        ),
        req(
            "POST",
            "pki/issue/svc",
            Some(r#"{"common_name":"f.example.com","ttl":"1h","bogus":1,"also_bogus":"x"}"#),
        ),
        req(
            "POST",
            "pki/sign/svc",
            Some(&json_body(serde_json::json!({"csr": csr, "ttl": "1h"}))),
        ),
        req(
            "POST",
            "pki/sign-verbatim",
            Some(&json_body(serde_json::json!({"csr": csr, "ttl": "1h"}))),
        ),
        req(
            "POST",
            "pki/sign-verbatim/svc",
            Some(&json_body(serde_json::json!({"csr": csr, "ttl": "1h"}))),
        ),
    ]
}

/// Compares one request's answers; returns the problems (empty: agrees).
fn compare(label: &str, ours: &Answer, theirs: &Answer) -> (Vec<String>, String) {
    let mut problems = Vec::new();
    if ours.status != theirs.status {
        match exception(label, "status") {
            // A deliberate refusal has no data to compare.
            Some(_) => return (problems, String::new()),
            None => problems.push(format!(
                "status {} where OpenBao answers {}",
                ours.status, theirs.status
            )),
        }
    }
    let (a, b) = (data_types(ours), data_types(theirs));
    let mut missing = Vec::new();
    for (k, t) in &b {
        match a.get(k) {
            None if exception(label, k).is_none() => missing.push(k.clone()),
            Some(t2) if t2 != t && exception(label, k).is_none() => {
                problems.push(format!("{k} is {t2} where OpenBao's is {t}"))
            }
            _ => {}
        }
    }
    if !missing.is_empty() {
        problems.push(format!("lacks {}", missing.join(", ")));
    }
    let extra: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    let note = if extra.is_empty() {
        String::new()
    } else {
        format!(
            "mutual also: {}",
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    (problems, note)
}

#[test]
fn every_pki_answer_holds_openbaos_keys_with_openbaos_types() {
    if !have_bao("every_pki_answer_holds_openbaos_keys_with_openbaos_types") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let csr = write_csr(work.path());
    let ours_server = std::thread::spawn(mutual_dev);
    let theirs = openbao_dev();
    let ours = ours_server.join().expect("mutual starts");

    let mut rows: Vec<(String, Answer, Answer)> = Vec::new();
    for r in setup_requests(&csr) {
        let (a, b) = (ask(&ours, &r), ask(&theirs, &r));
        rows.push((r.label, a, b));
    }
    // The intermediate: the CSR each server made, signed by its own root, set back.
    let int_csr = |rows: &[(String, Answer, Answer)], ours: bool| {
        let row = rows
            .iter()
            .find(|(l, _, _)| l == "POST int/intermediate/generate/internal")
            .expect("the intermediate's CSR");
        data(if ours { &row.1 } else { &row.2 }, "csr").to_string()
    };
    let (our_csr, their_csr) = (int_csr(&rows, true), int_csr(&rows, false));
    let sign_int = |c: &str| {
        json_body(
            serde_json::json!({"csr": c, "ttl": "4380h", "common_name": "Shapes Intermediate"}),
        )
    };
    let our_signed = ask(
        &ours,
        &req(
            "POST",
            "pki/root/sign-intermediate",
            Some(&sign_int(&our_csr)),
        ),
    );
    let their_signed = ask(
        &theirs,
        &req(
            "POST",
            "pki/root/sign-intermediate",
            Some(&sign_int(&their_csr)),
        ),
    );
    let set = |a: &Answer| json_body(serde_json::json!({"certificate": data(a, "certificate")}));
    let our_set = ask(
        &ours,
        &req(
            "POST",
            "int/intermediate/set-signed",
            Some(&set(&our_signed)),
        ),
    );
    let their_set = ask(
        &theirs,
        &req(
            "POST",
            "int/intermediate/set-signed",
            Some(&set(&their_signed)),
        ),
    );
    rows.push((
        "POST pki/root/sign-intermediate".into(),
        our_signed,
        their_signed,
    ));
    rows.push((
        "POST int/intermediate/set-signed".into(),
        our_set,
        their_set,
    ));

    // Each server's own serial for the certificate reads and the revocation.
    let serial = |rows: &[(String, Answer, Answer)], ours: bool| {
        let row = &rows
            .iter()
            .find(|(l, _, _)| l == "POST pki/issue/svc")
            .expect("an issued certificate");
        data(if ours { &row.1 } else { &row.2 }, "serial_number").to_string()
    };
    let (our_serial, their_serial) = (serial(&rows, true), serial(&rows, false));
    let both_ways = |rows: &mut Vec<(String, Answer, Answer)>,
                     label: &str,
                     method: &'static str,
                     path: &dyn Fn(&str) -> String,
                     body: &dyn Fn(&str) -> Option<String>,
                     token: bool| {
        let r = |s: &str| Req {
            label: label.to_string(),
            method,
            path: path(s),
            body: body(s),
            token,
        };
        let a = ask(&ours, &r(&our_serial));
        let b = ask(&theirs, &r(&their_serial));
        rows.push((label.to_string(), a, b));
    };
    both_ways(
        &mut rows,
        "GET pki/cert/:serial (no token)",
        "GET",
        &|s| format!("pki/cert/{s}"),
        &|_| None,
        false,
    );
    both_ways(
        &mut rows,
        "POST pki/revoke",
        "POST",
        &|_| "pki/revoke".into(),
        &|s| Some(json_body(serde_json::json!({ "serial_number": s }))),
        true,
    );
    for r in [
        req("GET", "pki/cert/ca", None),
        req("GET", "pki/cert/ca_chain", None),
        req("GET", "pki/cert/crl", None),
        req("GET", "pki/ca", None),
        req("GET", "pki/ca/pem", None),
        req("GET", "pki/ca_chain", None),
        req("GET", "pki/crl", None),
        req("GET", "pki/crl/pem", None),
        req("GET", "pki/crl/rotate", None),
        req("LIST", "pki/certs", None),
        req("LIST", "pki/certs/revoked", None),
        req("LIST", "pki/issuers", None),
        req("LIST", "int/issuers", None),
        req("GET", "pki/issuer/default", None),
        req("GET", "pki/issuer/default/json", None),
        req("GET", "pki/issuer/default/crl", None),
        req("GET", "int/issuer/default", None),
        req("GET", "int/issuer/default/crl/delta", None),
        req("GET", "pki/key/default", None),
        req("GET", "pki/config/crl", None),
        req("GET", "pki/config/auto-tidy", None),
        req("GET", "pki/config/acme", None),
        req("GET", "pki/config/cluster", None),
        req("GET", "pki/tidy-status", None),
        req(
            "POST",
            "pki/tidy",
            Some(r#"{"tidy_cert_store":true,"tidy_revoked_certs":true,"safety_buffer":"1s"}"#),
        ),
        // Bad input: a 400 on both, nothing issued or stored.
        Req {
            label: "POST pki/issue/svc (private_key_format=jks)".into(),
            ..req(
                "POST",
                "pki/issue/svc",
                Some(r#"{"common_name":"g.example.com","private_key_format":"jks"}"#),
            )
        },
        req(
            "POST",
            "pki/roles/bad",
            Some(r#"{"allowed_domains":"example.com","signature_bits":"many"}"#),
        ),
        req("GET", "pki/roles/bad", None),
        req("DELETE", "pki/issue/svc", None),
        req("POST", "pki/ca_chain", Some("{}")),
        req("DELETE", "pki/cert/ca", None),
        req("DELETE", "pki/roles/ec", None),
        req("GET", "pki/roles/ec", None),
    ] {
        let label = r.label.clone();
        let a = ask(&ours, &r);
        let b = ask(&theirs, &r);
        rows.push((label, a, b));
    }
    // tidy-status after the tidy: OpenBao's tidy runs in the background; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    {
        let r = req("GET", "pki/tidy-status", None);
        let (a, b) = (ask(&ours, &r), ask(&theirs, &r));
        rows.push(("GET pki/tidy-status (after tidy)".into(), a, b));
    }

    println!(
        "{:<46} {:>6} {:>7}  difference",
        "request", "mutual", "openbao"
    );
    let mut failures = Vec::new();
    for (label, a, b) in &rows {
        let (problems, note) = compare(label, a, b);
        let why = exception(label, "status").filter(|_| a.status != b.status);
        let text = match (problems.is_empty(), why) {
            (true, Some(why)) => format!("deliberate: {why}"),
            (true, None) => note,
            (false, _) => problems.join("; "),
        };
        println!("{label:<46} {:>6} {:>7}  {text}", a.status, b.status);
        if !problems.is_empty() {
            failures.push(format!("{label}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "mutual differs from OpenBao:\n{}",
        failures.join("\n")
    );

    // Beyond keys and types, the values a client notices.
    let row = |label: &str, nth: usize| {
        rows.iter()
            .filter(|(l, _, _)| l == label)
            .nth(nth)
            .unwrap_or_else(|| panic!("{label} #{nth}"))
    };
    for (nth, field) in [
        (0, "private_key"),
        (1, "certificate"),
        (1, "private_key"),
        (2, "private_key"),
        (3, "private_key"),
    ] {
        let (_, a, b) = row("POST pki/issue/svc", nth);
        assert_eq!(
            pem_labels(data(a, field)),
            pem_labels(data(b, field)),
            "issue/svc #{nth} {field}: mutual's PEM blocks differ from OpenBao's"
        );
    }
    let (_, a, b) = row("POST pki/issue/ec", 0);
    assert_eq!(pem_labels(data(a, "private_key")), ["EC PRIVATE KEY"]);
    assert_eq!(
        pem_labels(data(a, "private_key")),
        pem_labels(data(b, "private_key"))
    );
    let (_, a, b) = row("POST pki/issue/svc", 4);
    let ignored = "Endpoint ignored these unrecognized parameters: [also_bogus bogus]";
    assert!(
        warnings(a).iter().any(|w| w == ignored),
        "{:?}",
        warnings(a)
    );
    assert!(
        warnings(b).iter().any(|w| w == ignored),
        "{:?}",
        warnings(b)
    );
    let (_, a, _) = row("POST pki/roles/ec", 0);
    assert!(
        warnings(a)
            .iter()
            .any(|w| w.contains("\"code_signing_flag\"")),
        "{:?}",
        warnings(a)
    );
    let (_, a, b) = row("GET pki/roles/ec", 0);
    for key in ["signature_bits", "code_signing_flag"] {
        let (x, y) = (
            &a.json.as_ref().unwrap()["data"][key],
            &b.json.as_ref().unwrap()["data"][key],
        );
        assert_eq!(x, y, "role read {key}");
    }
    // sign-verbatim keeps the CSR's whole subject on both.
    for label in ["POST pki/sign-verbatim", "POST pki/sign-verbatim/svc"] {
        let (_, a, b) = row(label, 0);
        let ours_subject = subject_of(data(a, "certificate"), work.path(), "ours.crt");
        let theirs_subject = subject_of(data(b, "certificate"), work.path(), "theirs.crt");
        assert_eq!(ours_subject, theirs_subject, "{label}");
        assert!(ours_subject.contains("L=Delft"), "{ours_subject}");
    }
    // not_before: the certificate's own notBefore.
    let (_, a, _) = row("POST pki/issue/svc", 0);
    let nb = a.json.as_ref().unwrap()["data"]["not_before"]
        .as_i64()
        .unwrap();
    let exp = a.json.as_ref().unwrap()["data"]["expiration"]
        .as_i64()
        .unwrap();
    assert!(exp - nb > 3600 && exp - nb <= 3600 + 60, "{nb} {exp}");
    // The refused private_key_format stored nothing (the list was taken before it).
    let count = |a: &Answer| {
        a.json
            .as_ref()
            .and_then(|j| j["data"]["keys"].as_array())
            .map_or(0, Vec::len)
    };
    let (_, listed, _) = row("LIST pki/certs", 0);
    let now = ask(&ours, &req("LIST", "pki/certs", None));
    assert_eq!(
        count(&now),
        count(listed),
        "a refused request stored a certificate"
    );
    // The version says which API generation mutual speaks.
    let (_, health) = curl(&ours, "GET", "sys/health", None);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        health["version"]
            .as_str()
            .map(|v| v.starts_with("1.14.0+mutual")),
        Some(true)
    );
}

/// The checks `bao pki health-check` runs by default (`hardware_backed_root` is off unless
/// configured, against OpenBao too).
const HEALTH_CHECKS: &[&str] = &[
    "ca_validity_period",
    "crl_validity_period",
    "allow_acme_headers",
    "allow_if_modified_since",
    "audit_visibility",
    "enable_acme_issuance",
    "enable_auto_tidy",
    "role_allows_glob_wildcards",
    "role_allows_localhost",
    "role_no_store_false",
    "root_issued_leaves",
    "tidy_last_run",
    "too_many_certs",
];

fn health_check(server: &Server, mount: &str) -> (i32, Value, String) {
    let out = Command::new("bao")
        .args(["pki", "health-check", "-format=json", mount])
        .env("BAO_ADDR", &server.addr)
        .env("BAO_TOKEN", &server.token)
        .env_remove("VAULT_ADDR")
        .output()
        .expect("running bao pki health-check");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn bao_pki_health_check_runs_every_check_against_mutual() {
    if !have_bao("bao_pki_health_check_runs_every_check_against_mutual") {
        return;
    }
    let ours = std::thread::spawn(mutual_dev);
    let theirs = openbao_dev();
    let ours = ours.join().expect("mutual starts");
    let mut results = Vec::new();
    for server in [&ours, &theirs] {
        for (method, path, body) in [
            ("POST", "sys/mounts/pki", r#"{"type":"pki"}"#),
            (
                "POST",
                "pki/root/generate/internal",
                r#"{"common_name":"Health Root","ttl":"720h"}"#,
            ),
            (
                "POST",
                "pki/roles/svc",
                r#"{"allowed_domains":"example.com","allow_subdomains":true}"#,
            ),
            (
                "POST",
                "pki/issue/svc",
                r#"{"common_name":"www.example.com","ttl":"1h"}"#,
            ),
            ("POST", "pki/tidy", r#"{"tidy_cert_store":true}"#),
        ] {
            let (status, body) = curl(server, method, path, Some(body));
            assert!(status < 300, "{} {path}: {status} {body}", server.name);
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        results.push(health_check(server, "pki"));
    }
    let status_of = |json: &Value, check: &str| -> Vec<String> {
        json[check]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .map(|r| r["status"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // "informational x30" rather than thirty words.
    let summary = |statuses: Vec<String>| {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for s in statuses {
            *counts.entry(s).or_default() += 1;
        }
        counts
            .iter()
            .map(|(s, n)| {
                if *n == 1 {
                    s.clone()
                } else {
                    format!("{s} x{n}")
                }
            })
            .collect::<Vec<_>>()
            .join(",")
    };
    println!("{:<28} {:<24} {:<24}", "check", "mutual", "openbao");
    for check in HEALTH_CHECKS {
        println!(
            "{check:<28} {:<24} {:<24}",
            summary(status_of(&results[0].1, check)),
            summary(status_of(&results[1].1, check))
        );
    }
    let (code, json, stderr) = &results[0];
    assert!(
        json.is_object(),
        "health-check against mutual did not run (exit {code}): {stderr}"
    );
    let names = |j: &Value| -> Vec<String> {
        j.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(names(json), names(&results[1].1), "the same checks ran");
    for check in HEALTH_CHECKS {
        let statuses = status_of(json, check);
        assert!(
            !statuses.is_empty(),
            "{check} gave no result against mutual"
        );
        assert!(
            !statuses.iter().any(|s| s == "invalid_version"),
            "{check} was skipped for the version against mutual: {}",
            json[check]
        );
    }
}
