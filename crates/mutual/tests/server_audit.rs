//! The audit log of `mutual server --audit-log FILE`, read back after a run of logins,
//! issuances, a revocation and refusals: every one of them is there, in Vault's JSON format,
//! with the token's accessor and the decision; no secret is (grep for each); a log that cannot
//! be written fails the request.

mod server;

use serde_json::{json, Value};
use server::{audit_entries, curl, curl_as, mutual_dev_with};

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[track_caller]
fn ok((code, body): (u16, String)) -> Value {
    assert!(code / 100 == 2, "{code} {body}");
    if body.trim().is_empty() {
        Value::Null
    } else {
        json_of(&body)
    }
}

/// The response entry of the `nth` request to `path`.
fn response<'a>(entries: &'a [Value], path: &str, nth: usize) -> &'a Value {
    entries
        .iter()
        .filter(|e| e["type"] == "response" && e["request"]["path"] == path)
        .nth(nth)
        .unwrap_or_else(|| panic!("no response entry #{nth} for {path}"))
}

#[test]
fn every_login_issuance_revocation_and_refusal_is_audited_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let s = mutual_dev_with(&["--audit-log", log.to_str().unwrap()]);
    ok(curl(
        &s,
        "POST",
        "sys/mounts/pki",
        Some(r#"{"type":"pki"}"#),
    ));
    ok(curl(
        &s,
        "POST",
        "pki/root/generate/internal",
        Some(r#"{"common_name":"Audit Root","key_type":"ec","ttl":"8760h"}"#),
    ));
    ok(curl(
        &s,
        "POST",
        "pki/roles/web",
        Some(r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec"}"#),
    ));
    let policy = r#"path "pki/issue/*" { capabilities = ["update"] }
path "pki/revoke" { capabilities = ["update"] }"#;
    ok(curl(
        &s,
        "PUT",
        "sys/policies/acl/issuer",
        Some(&json!({ "policy": policy }).to_string()),
    ));
    ok(curl(
        &s,
        "POST",
        "sys/auth/approle",
        Some(r#"{"type":"approle"}"#),
    ));
    ok(curl(
        &s,
        "POST",
        "auth/approle/role/web",
        Some(r#"{"token_policies":"issuer","token_ttl":"20m"}"#),
    ));
    let role_id = ok(curl(&s, "GET", "auth/approle/role/web/role-id", None))["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = ok(curl(&s, "POST", "auth/approle/role/web/secret-id", None))["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    let login = ok(curl_as(
        &s,
        None,
        "POST",
        "auth/approle/login",
        Some(&json!({"role_id": role_id, "secret_id": secret_id}).to_string()),
    ));
    let token = login["auth"]["client_token"].as_str().unwrap().to_string();
    let accessor = login["auth"]["accessor"].as_str().unwrap().to_string();
    let issued = ok(curl_as(
        &s,
        Some(&token),
        "POST",
        "pki/issue/web",
        Some(r#"{"common_name":"a.example.com","ttl":"1h"}"#),
    ));
    let serial = issued["data"]["serial_number"]
        .as_str()
        .unwrap()
        .to_string();
    let key = issued["data"]["private_key"].as_str().unwrap().to_string();
    ok(curl_as(
        &s,
        Some(&token),
        "POST",
        "pki/revoke",
        Some(&json!({ "serial_number": serial }).to_string()),
    ));
    // Refusals: a path the policy does not grant, a wrong secret ID, a wrong password.
    let (code, _) = curl_as(&s, Some(&token), "GET", "sys/mounts", None);
    assert_eq!(code, 403);
    let (code, _) = curl_as(
        &s,
        None,
        "POST",
        "auth/approle/login",
        Some(&json!({"role_id": role_id, "secret_id": "not-the-secret"}).to_string()),
    );
    assert_eq!(code, 400);
    ok(curl(
        &s,
        "POST",
        "sys/auth/userpass",
        Some(r#"{"type":"userpass"}"#),
    ));
    let password = "correct-horse-battery";
    ok(curl(
        &s,
        "POST",
        "auth/userpass/users/alice",
        Some(&json!({"password": password, "token_policies": "issuer"}).to_string()),
    ));
    let up = ok(curl_as(
        &s,
        None,
        "POST",
        "auth/userpass/login/alice",
        Some(&json!({ "password": password }).to_string()),
    ));
    let up_token = up["auth"]["client_token"].as_str().unwrap().to_string();
    let (code, _) = curl_as(
        &s,
        None,
        "POST",
        "auth/userpass/login/alice",
        Some(r#"{"password":"wrong-password"}"#),
    );
    assert_eq!(code, 400);
    let hash = ok(curl(
        &s,
        "POST",
        "sys/audit-hash/file",
        Some(&json!({ "input": token }).to_string()),
    ))["hash"]
        .as_str()
        .unwrap()
        .to_string();

    let text = std::fs::read_to_string(&log).unwrap();
    let entries = audit_entries(&log);
    println!("{} audit entries", entries.len());
    // One request and one response entry per request (sys/health aside: never audited).
    let requests = entries.iter().filter(|e| e["type"] == "request").count();
    let responses = entries.iter().filter(|e| e["type"] == "response").count();
    assert_eq!(requests, responses, "{text}");
    for e in &entries {
        for key in ["time", "type", "auth", "request", "error"] {
            assert!(e.get(key).is_some(), "{key} missing in {e}");
        }
        assert!(e["request"]["id"].as_str().is_some_and(|i| !i.is_empty()));
        assert_eq!(e["request"]["remote_address"], "127.0.0.1", "{e}");
    }

    // The login: refused and granted, the secret ID HMAC'd, the new token's accessor readable.
    let granted = response(&entries, "auth/approle/login", 0);
    assert_eq!(granted["error"], "");
    assert_eq!(granted["response"]["auth"]["accessor"], accessor);
    assert_eq!(granted["response"]["auth"]["client_token"], hash);
    assert!(granted["request"]["data"]["secret_id"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    let refused = response(&entries, "auth/approle/login", 1);
    assert_eq!(refused["error"], "invalid role or secret ID");
    assert_eq!(refused["response"]["status"], 400);

    // The issuance: who (accessor, policies), the decision, the serial in clear.
    let issue = response(&entries, "pki/issue/web", 0);
    assert_eq!(issue["auth"]["accessor"], accessor);
    assert_eq!(issue["auth"]["client_token"], hash);
    assert_eq!(issue["auth"]["policies"], json!(["default", "issuer"]));
    assert_eq!(issue["auth"]["token_type"], "service");
    assert_eq!(issue["auth"]["display_name"], "approle-web");
    assert_eq!(issue["auth"]["policy_results"]["allowed"], true);
    assert_eq!(
        issue["auth"]["policy_results"]["granting_policies"][0]["name"],
        "issuer"
    );
    assert_eq!(issue["request"]["operation"], "update");
    assert_eq!(issue["request"]["mount_type"], "pki");
    assert_eq!(issue["response"]["data"]["serial_number"], serial);
    assert!(issue["response"]["data"]["private_key"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));

    // The revocation names its serial; the refusal its decision.
    let revoke = response(&entries, "pki/revoke", 0);
    assert_eq!(revoke["request"]["data"]["serial_number"], serial);
    assert_eq!(revoke["auth"]["accessor"], accessor);
    assert_eq!(revoke["auth"]["policy_results"]["allowed"], true);
    let denied = entries
        .iter()
        .find(|e| {
            e["type"] == "response"
                && e["request"]["path"] == "sys/mounts"
                && e["auth"]["accessor"] == accessor.as_str()
        })
        .expect("the refused sys/mounts");
    assert_eq!(denied["error"], "permission denied");
    assert_eq!(denied["auth"]["policy_results"]["allowed"], false);
    assert_eq!(denied["response"]["status"], 403);

    // userpass: granted and refused, the password HMAC'd.
    let up_ok = response(&entries, "auth/userpass/login/alice", 0);
    assert_eq!(up_ok["error"], "");
    let up_bad = response(&entries, "auth/userpass/login/alice", 1);
    assert_eq!(up_bad["error"], "invalid username or password");

    // Nothing secret in clear: tokens, secret ID, password, the private key (any line of it).
    let key_body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
    for secret in [
        token.as_str(),
        up_token.as_str(),
        secret_id.as_str(),
        password,
    ]
    .into_iter()
    .chain(key_body)
    {
        assert!(
            !text.contains(secret),
            "{secret:?} is in the audit log in clear"
        );
    }
    assert!(!text.contains("PRIVATE KEY"));
    assert!(!text.contains("wrong-password") && !text.contains("not-the-secret"));
}

#[test]
fn a_request_that_cannot_be_audited_fails_with_500() {
    // /dev/full opens, and every write to it fails (ENOSPC).
    let s = mutual_dev_with(&["--audit-log", "/dev/full"]);
    let (code, body) = curl(&s, "GET", "sys/mounts", None);
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("could not be audited"), "{body}");
    // A write fails the same way, before it is handled.
    let (code, _) = curl(&s, "POST", "sys/mounts/pki", Some(r#"{"type":"pki"}"#));
    assert_eq!(code, 500);
    // Vault answers health outside its router, unaudited; so does mutual.
    let (code, _) = curl(&s, "GET", "sys/health", None);
    assert_eq!(code, 200);
}
