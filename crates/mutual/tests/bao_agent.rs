//! The real `bao agent` against `mutual server`: auto-auth with AppRole (role ID and secret ID
//! files) or with a client certificate (`cert`, over the server's TLS), and a `pkiCert`
//! template rendering a certificate and its key. The certificate lives 30 seconds, so the
//! agent must fetch a new one before it expires, within a bounded time; and its token has a
//! real, renewable lease, so the agent logs in once instead of in a loop (the audit log counts
//! the logins; with the lease of 0 that `cert` logins used to get, it counted 12513 in 25s).

#[path = "support/child.rs"]
mod child;
mod common;
mod server;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use child::Running;
use serde_json::{json, Value};
use server::{audit_entries, curl, have_bao, mutual_dev_with};

#[track_caller]
fn ok((code, body): (u16, String)) -> Value {
    assert!(code / 100 == 2, "{code} {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The serial of the certificate the agent rendered, once the file holds a certificate and
/// its key (the agent writes it whole, but a read may race the write).
fn rendered_serial(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    if !text.contains("BEGIN CERTIFICATE") || !text.contains("PRIVATE KEY-----") {
        return None;
    }
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(path)
        .output()
        .ok()?;
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !serial.is_empty()).then_some(serial)
}

#[test]
fn bao_agent_renders_a_pki_cert_renews_it_before_expiry_and_does_not_loop_on_login() {
    if !have_bao("bao_agent") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let log = work.join("audit.log");
    let s = mutual_dev_with(&["--audit-log", log.to_str().unwrap()]);

    ok(curl(
        &s,
        "POST",
        "sys/mounts/pki",
        Some(r#"{"type":"pki"}"#),
    ));
    let root = ok(curl(
        &s,
        "POST",
        "pki/root/generate/internal",
        Some(r#"{"common_name":"Agent Root","key_type":"ec","ttl":"24h"}"#),
    ));
    std::fs::write(
        work.join("root.crt"),
        root["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    ok(curl(
        &s,
        "POST",
        "pki/roles/web",
        Some(
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","max_ttl":"1h"}"#,
        ),
    ));
    let policy = r#"path "pki/issue/web" { capabilities = ["create", "update"] }"#;
    ok(curl(
        &s,
        "PUT",
        "sys/policies/acl/agent",
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
        "auth/approle/role/agent",
        Some(r#"{"token_policies":"agent","token_ttl":"1h","token_max_ttl":"4h"}"#),
    ));
    let role_id = ok(curl(&s, "GET", "auth/approle/role/agent/role-id", None))["data"]["role_id"]
        .as_str()
        .unwrap()
        .to_string();
    let secret_id = ok(curl(&s, "POST", "auth/approle/role/agent/secret-id", None))["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(work.join("role_id"), &role_id).unwrap();
    std::fs::write(work.join("secret_id"), &secret_id).unwrap();
    write_template(work);
    let auth = format!(
        r#"
  method "approle" {{
    config = {{
      role_id_file_path = "{dir}/role_id"
      secret_id_file_path = "{dir}/secret_id"
      remove_secret_id_file_after_reading = false
    }}
  }}"#,
        dir = work.display()
    );
    run_agent(work, &s.addr, "", &auth, &log, "auth/approle/login");
}

/// Runs `bao agent` with this auto-auth `method` block against `addr` until it has rendered
/// two certificates (bounded), then checks them and counts the logins at `login_path` in the
/// audit log.
fn run_agent(
    work: &Path,
    addr: &str,
    vault_extra: &str,
    method: &str,
    log: &Path,
    login_path: &str,
) {
    std::fs::write(
        work.join("agent.hcl"),
        format!(
            r#"
vault {{
  address = "{addr}"
  {vault_extra}
}}
auto_auth {{
  {method}
  sink "file" {{
    config = {{
      path = "{dir}/token"
    }}
  }}
}}
template {{
  source = "{dir}/cert.tpl"
  destination = "{dir}/agent.pem"
}}
"#,
            dir = work.display()
        ),
    )
    .unwrap();
    let agent_log = std::fs::File::create(work.join("agent.log")).unwrap();
    let agent = Running::new(
        Command::new("bao")
            .arg("agent")
            .arg(format!("-config={}", work.join("agent.hcl").display()))
            .current_dir(work)
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_TOKEN")
            .env("BAO_ADDR", addr)
            .stdout(Stdio::from(agent_log.try_clone().unwrap()))
            .stderr(Stdio::from(agent_log))
            .spawn()
            .expect("starting bao agent"),
    );

    // Bounded: a 30s certificate must be replaced well within 120s.
    let start = Instant::now();
    let mut serials: Vec<(String, Duration)> = Vec::new();
    while start.elapsed() < Duration::from_secs(120) && serials.len() < 2 {
        if let Some(serial) = rendered_serial(&work.join("agent.pem")) {
            if serials.last().is_none_or(|(s, _)| *s != serial) {
                println!("rendered {serial} after {:?}", start.elapsed());
                if serials.is_empty() {
                    std::fs::copy(work.join("agent.pem"), work.join("first.pem")).unwrap();
                } else {
                    // Renewed before it expired: the first certificate is still valid now.
                    let first_valid = Command::new("openssl")
                        .args(["x509", "-noout", "-checkend", "0", "-in"])
                        .arg(work.join("first.pem"))
                        .stdout(Stdio::null())
                        .status()
                        .unwrap();
                    assert!(first_valid.success(), "the first certificate expired first");
                }
                serials.push((serial, start.elapsed()));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(agent);
    let agent_says = std::fs::read_to_string(work.join("agent.log")).unwrap_or_default();
    assert!(
        serials.len() >= 2,
        "the agent rendered {serials:?}; its log:\n{agent_says}"
    );
    assert!(
        serials[1].1 - serials[0].1 < Duration::from_secs(60),
        "{serials:?}"
    );
    // The rendered key is the certificate's, and the certificate chains to the root.
    let pem = work.join("agent.pem");
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(work.join("root.crt"))
        .arg(&pem)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    let pubkey = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .arg(&pem)
            .output()
            .unwrap()
            .stdout
    };
    assert_eq!(
        pubkey(&["x509", "-noout", "-pubkey", "-in"]),
        pubkey(&["pkey", "-pubout", "-in"]),
        "the rendered key is the certificate's"
    );

    // No login loop: one login (two at most, should the agent re-authenticate once), over a
    // run that issued at least two certificates.
    let entries = audit_entries(log);
    let logins = entries
        .iter()
        .filter(|e| {
            e["type"] == "response" && e["request"]["path"] == login_path && e["error"] == ""
        })
        .count();
    let issued = entries
        .iter()
        .filter(|e| e["type"] == "response" && e["request"]["path"] == "pki/issue/web")
        .count();
    println!("logins: {logins}, issuances: {issued}");
    assert!((1..=2).contains(&logins), "{logins} logins:\n{agent_says}");
    assert!(issued >= 2);
}

#[test]
fn bao_agent_with_a_client_certificate_logs_in_once_and_renews_its_certificates() {
    if !have_bao("bao_agent cert") {
        return;
    }
    // The API's TLS identity and Alice's client certificate, from mutual's own CA.
    let story = common::Story::new();
    story.mutual(&["ca", "init"]).ok();
    story
        .mutual(&[
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
            "--server",
            "--client",
        ])
        .ok();
    story
        .mutual(&[
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
    story
        .mutual(&[
            "issue",
            "alice.example.com",
            "--role",
            "service",
            "--out",
            "certs",
        ])
        .ok();
    let root = story.mutual(&["ca", "cert", "root"]).ok().stdout;
    story.write("certs/root.pem", &root);
    let work = story.dir.path();
    let log = work.join("audit.log");
    // The rule that looped before logins had a lease: a certificate granted a mount.
    let srv = server::mutual_tls_dev(
        work,
        &[
            "--tls-client-ca",
            "certs/root.pem",
            "--cert-login",
            "cn=alice.example.com=pki",
            "--audit-log",
            log.to_str().unwrap(),
        ],
    );
    ok(srv.call(work, "POST", "sys/mounts/pki", Some(r#"{"type":"pki"}"#)));
    let ca = ok(srv.call(
        work,
        "POST",
        "pki/root/generate/internal",
        Some(r#"{"common_name":"Agent Root","key_type":"ec","ttl":"24h"}"#),
    ));
    std::fs::write(
        work.join("root.crt"),
        ca["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    ok(srv.call(
        work,
        "POST",
        "pki/roles/web",
        Some(
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","max_ttl":"1h"}"#,
        ),
    ));
    write_template(work);
    let url = srv.localhost();
    let method = format!(
        r#"
  method "cert" {{
    config = {{
      ca_cert = "{dir}/certs/root.pem"
      client_cert = "{dir}/certs/alice.example.com.crt"
      client_key = "{dir}/certs/alice.example.com.key"
    }}
  }}"#,
        dir = work.display()
    );
    let ca_cert = format!(r#"ca_cert = "{}/certs/root.pem""#, work.display());
    run_agent(work, &url, &ca_cert, &method, &log, "auth/cert/login");
}

/// The `pkiCert` template: a 30-second certificate and its key.
fn write_template(work: &Path) {
    std::fs::write(
        work.join("cert.tpl"),
        r#"{{- with pkiCert "pki/issue/web" "common_name=agent.example.com" "ttl=30s" -}}
{{ .Cert }}{{ .Key }}
{{- end -}}
"#,
    )
    .unwrap();
}
