//! `mutual server --tls-client-ca --cert-login`: Vault's `cert` auth method. A caller that
//! holds a mutual certificate logs in at `auth/cert/login` with real curl and gets a token
//! scoped to the mounts granted to its identity; others get 403, callers without a
//! certificate 400, and a certificate of another CA is refused at the handshake.

mod common;
mod server;

use common::Story;
use serde_json::Value;
use server::TlsServer;

/// A root, a role for servers and clients, the server's certificate (localhost, 127.0.0.1),
/// Alice's and Bob's client certificates, all under `certs/`.
fn story() -> Story {
    let s = Story::new();
    s.mutual(&["ca", "init"]).ok();
    s.mutual(&[
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
    s.mutual(&[
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
    for who in ["alice.example.com", "bob.example.com"] {
        s.mutual(&["issue", who, "--role", "service", "--out", "certs"])
            .ok();
    }
    let root = s.mutual(&["ca", "cert", "root"]).ok().stdout;
    s.write("certs/root.pem", &root);
    s
}

fn start(s: &Story) -> TlsServer {
    server::mutual_tls_dev(
        s.dir.path(),
        &[
            "--tls-client-ca",
            "certs/root.pem",
            "--cert-login",
            "cn=alice.example.com=pki",
        ],
    )
}

/// Runs curl trusting the story's root with `extra` arguments; the HTTP status and the body.
fn curl(s: &Story, srv: &TlsServer, extra: &[&str], method: &str, path: &str) -> (u16, String) {
    fetch(s, srv, extra, method, &format!("/v1/{path}"))
}

/// [`curl`] for any path of the server, not only the API's.
fn fetch(s: &Story, srv: &TlsServer, extra: &[&str], method: &str, path: &str) -> (u16, String) {
    let url = format!("{}{path}", srv.localhost());
    let mut args = vec![
        "-sS",
        "-o",
        "body.out",
        "-w",
        "%{http_code}",
        "--cacert",
        "certs/root.pem",
        "-X",
        method,
    ];
    args.extend(extra);
    args.push(&url);
    let out = s.run("curl", &args).ok();
    let code = out.stdout.trim().parse().expect("curl's status code");
    (code, s.read("body.out"))
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

#[test]
fn a_client_certificate_logs_in_to_a_token_scoped_to_its_mounts() {
    let s = story();
    let srv = start(&s);
    let root = ["-H", "X-Vault-Token: root"];
    for mount in ["pki", "pki_other"] {
        let mut args = root.to_vec();
        args.extend(["-d", r#"{"type":"pki"}"#]);
        let (code, body) = curl(&s, &srv, &args, "POST", &format!("sys/mounts/{mount}"));
        assert_eq!(code, 204, "{body}");
    }

    let alice = [
        "--cert",
        "certs/alice.example.com.crt",
        "--key",
        "certs/alice.example.com.key",
    ];
    let (code, body) = curl(&s, &srv, &alice, "POST", "auth/cert/login");
    assert_eq!(code, 200, "{body}");
    let auth = &json(&body)["auth"];
    let token = auth["client_token"].as_str().expect("client_token");
    assert!(!token.is_empty() && token != "root", "{body}");
    assert!(auth["accessor"].as_str().is_some_and(|a| !a.is_empty()));
    assert_eq!(auth["policies"], serde_json::json!(["pki"]), "{body}");
    assert_eq!(auth["metadata"]["common_name"], "alice.example.com");
    // A real, renewable lease: a lease of 0 made Vault Agent log in again at once, in a loop.
    assert_eq!(auth["renewable"], true, "{body}");
    assert!(auth["lease_duration"].as_u64() > Some(0), "{body}");

    // The token works on the granted mount, and only there. It is a token like any other:
    // sent without the certificate.
    let header = format!("X-Vault-Token: {token}");
    let mut role = vec!["-H", header.as_str()];
    role.extend([
        "-d",
        r#"{"allowed_domains":"example.com","allow_subdomains":true}"#,
    ]);
    let (code, body) = curl(&s, &srv, &role, "POST", "pki/roles/web");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        json(&body)["data"]["allowed_domains"],
        serde_json::json!(["example.com"])
    );
    let (code, body) = curl(&s, &srv, &role, "POST", "pki_other/roles/web");
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json(&body)["errors"],
        serde_json::json!(["permission denied"])
    );
    let (code, body) = curl(&s, &srv, &["-H", &header], "GET", "sys/mounts");
    assert_eq!(code, 403, "{body}");

    // Bob's certificate is valid, but no rule grants it anything.
    let bob = [
        "--cert",
        "certs/bob.example.com.crt",
        "--key",
        "certs/bob.example.com.key",
    ];
    let (code, body) = curl(&s, &srv, &bob, "POST", "auth/cert/login");
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        json(&body)["errors"],
        serde_json::json!(["permission denied"])
    );

    // Without a certificate the handshake succeeds (it is asked for, not required) and the
    // login says what is missing.
    let (code, body) = curl(&s, &srv, &[], "POST", "auth/cert/login");
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        json(&body)["errors"],
        serde_json::json!(["client certificate required"])
    );
    // The rest of the API still works without a certificate.
    let (code, body) = curl(&s, &srv, &[], "GET", "sys/health");
    assert_eq!(code, 200, "{body}");
    // Login takes POST only.
    let (code, _) = curl(&s, &srv, &alice, "GET", "auth/cert/login");
    assert_eq!(code, 405);
}

#[test]
fn a_certificate_of_another_ca_is_refused_at_the_handshake() {
    let s = story();
    let srv = start(&s);
    let other = Story::new();
    other.mutual(&["ca", "init"]).ok();
    other
        .mutual(&[
            "role",
            "set",
            "service",
            "--ca",
            "root",
            "--allowed-domains",
            "example.com",
            "--allow-subdomains",
            "--client",
        ])
        .ok();
    other
        .mutual(&[
            "issue",
            "alice.example.com",
            "--role",
            "service",
            "--out",
            ".",
        ])
        .ok();
    let cert = other.path("alice.example.com.crt");
    let key = other.path("alice.example.com.key");
    let url = format!("{}/v1/auth/cert/login", srv.localhost());
    let out = s.run(
        "curl",
        &[
            "-sS",
            "-m",
            "10",
            "--cacert",
            "certs/root.pem",
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-X",
            "POST",
            &url,
        ],
    );
    assert_ne!(out.code, 0, "{}", out.stdout);
    assert!(!out.stdout.contains("client_token"), "{}", out.stdout);
}

#[test]
fn bad_cert_login_rules_are_refused_before_listening() {
    let s = story();
    let base = [
        "server",
        "--dev",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        "certs/ca.example.com.crt",
        "--tls-key",
        "certs/ca.example.com.key",
        "--tls-client-ca",
        "certs/root.pem",
        "--cert-login",
    ];
    for rule in [
        "cn=alice.example.com",
        "bogus=x=pki",
        "cn=alice.example.com=*",
    ] {
        let mut args = base.to_vec();
        args.push(rule);
        let out = s.mutual(&args).fails(1);
        assert!(out.stdout.is_empty(), "{rule}: {}", out.stdout);
        assert!(
            out.stderr.contains("--cert-login"),
            "{rule}: {}",
            out.stderr
        );
    }
    // --cert-login needs --tls-client-ca, which needs --tls-cert.
    s.mutual(&["server", "--dev", "--cert-login", "cn=a=pki"])
        .fails(2);
    s.mutual(&["server", "--dev", "--tls-client-ca", "certs/root.pem"])
        .fails(2);
}

#[test]
fn cert_roles_written_through_the_api_grant_policies_and_a_renewable_lease() {
    let s = story();
    // No --cert-login flag: the roles come from the API alone.
    let srv = server::mutual_tls_dev(s.dir.path(), &["--tls-client-ca", "certs/root.pem"]);
    let root = ["-H", "X-Vault-Token: root"];
    let post = |path: &str, body: serde_json::Value| {
        s.write("req.json", &body.to_string());
        let mut args = root.to_vec();
        args.extend(["-d", "@req.json"]);
        curl(&s, &srv, &args, "POST", path)
    };
    let (code, body) = post("sys/auth/cert", serde_json::json!({"type": "cert"}));
    assert_eq!(code, 204, "{body}");
    let policy = r#"path "sys/mounts" { capabilities = ["read"] }"#;
    let (code, body) = post(
        "sys/policies/acl/reader",
        serde_json::json!({ "policy": policy }),
    );
    assert_eq!(code, 204, "{body}");
    let (code, body) = post(
        "auth/cert/certs/web",
        serde_json::json!({
            "certificate": s.read("certs/root.pem"),
            "allowed_common_names": "alice.example.com",
            "token_policies": "reader",
            "token_ttl": "10m",
        }),
    );
    assert_eq!(code, 204, "{body}");
    let (code, body) = post(
        "auth/cert/certs/junk",
        serde_json::json!({ "certificate": "not a certificate" }),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("failed to parse certificate"), "{body}");
    let (code, body) = curl(&s, &srv, &root, "GET", "auth/cert/certs/web");
    assert_eq!(code, 200, "{body}");
    let role = &json(&body)["data"];
    assert_eq!(
        role["allowed_common_names"],
        serde_json::json!(["alice.example.com"])
    );
    assert_eq!(role["token_policies"], serde_json::json!(["reader"]));
    assert_eq!(role["token_ttl"], 600);
    let (code, body) = curl(&s, &srv, &root, "LIST", "auth/cert/certs");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["data"]["keys"], serde_json::json!(["web"]));

    let alice = [
        "--cert",
        "certs/alice.example.com.crt",
        "--key",
        "certs/alice.example.com.key",
    ];
    let (code, body) = curl(&s, &srv, &alice, "POST", "auth/cert/login");
    assert_eq!(code, 200, "{body}");
    let auth = &json(&body)["auth"];
    assert_eq!(
        auth["policies"],
        serde_json::json!(["default", "reader"]),
        "{body}"
    );
    assert_eq!(auth["lease_duration"], 600, "{body}");
    assert_eq!(auth["renewable"], true, "{body}");
    assert_eq!(auth["metadata"]["cert_name"], "web");
    let header = format!("X-Vault-Token: {}", auth["client_token"].as_str().unwrap());
    let (code, body) = curl(&s, &srv, &["-H", &header], "GET", "sys/mounts");
    assert_eq!(code, 200, "{body}");
    let (code, body) = curl(&s, &srv, &["-H", &header], "POST", "auth/token/renew-self");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["auth"]["lease_duration"], 600, "{body}");
    let (code, _) = curl(&s, &srv, &["-H", &header], "GET", "sys/policies/acl");
    assert_eq!(code, 403);

    // Bob's certificate chains to the root but its name is not allowed; a role asked for by
    // name that does not admit Alice refuses her.
    let bob = [
        "--cert",
        "certs/bob.example.com.crt",
        "--key",
        "certs/bob.example.com.key",
    ];
    let (code, body) = curl(&s, &srv, &bob, "POST", "auth/cert/login");
    assert_eq!(code, 403, "{body}");
    let mut named = alice.to_vec();
    named.extend(["-d", r#"{"name":"other"}"#]);
    let (code, body) = curl(&s, &srv, &named, "POST", "auth/cert/login");
    assert_eq!(code, 403, "{body}");
}

/// The dashboard, on a connection that presents a client certificate: its sign-in page offers
/// the certificate, a POST with the page's CSRF token signs in with the token the cert login
/// gives (here from `--cert-login`), and the session opens the overview. Without the CSRF
/// token, with a certificate no rule grants anything, or with no certificate, nothing is
/// signed in.
#[test]
fn a_client_certificate_signs_in_to_the_dashboard() {
    let s = story();
    let srv = start(&s);
    let ui = |extra: &[&str], method: &str, path: &str| fetch(&s, &srv, extra, method, path);
    let csrf_of = |page: &str| -> String {
        let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
        page[at..].split('"').next().unwrap().to_string()
    };
    let as_alice = [
        "--cert",
        "certs/alice.example.com.crt",
        "--key",
        "certs/alice.example.com.key",
    ];
    let with = |who: &[&str], more: &[&str]| -> Vec<String> {
        who.iter().chain(more).map(|a| a.to_string()).collect()
    };

    let args = with(&as_alice, &["-c", "alice.jar"]);
    let (code, page) = ui(&refs(&args), "GET", "/ui/login");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Sign in with your certificate"), "{page}");
    assert!(page.contains("alice.example.com"), "{page}");
    let csrf = csrf_of(&page);

    // Without the page's CSRF token: refused, no session.
    let args = with(&as_alice, &["-b", "alice.jar", "-d", "csrf=forged"]);
    let (code, page) = ui(&refs(&args), "POST", "/ui/login/cert");
    assert_eq!(code, 403, "{page}");
    assert!(page.contains("CSRF"), "{page}");

    let form = format!("csrf={csrf}");
    let args = with(
        &as_alice,
        &["-b", "alice.jar", "-c", "alice.jar", "-d", &form],
    );
    let (code, _) = ui(&refs(&args), "POST", "/ui/login/cert");
    assert_eq!(code, 303);
    let args = with(&as_alice, &["-b", "alice.jar"]);
    let (code, page) = ui(&refs(&args), "GET", "/ui/");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains("Overview"), "{page}");

    // Bob's certificate passes the handshake, but no rule grants it anything.
    let as_bob = [
        "--cert",
        "certs/bob.example.com.crt",
        "--key",
        "certs/bob.example.com.key",
    ];
    let args = with(&as_bob, &["-c", "bob.jar"]);
    let (_, page) = ui(&refs(&args), "GET", "/ui/login");
    let form = format!("csrf={}", csrf_of(&page));
    let args = with(&as_bob, &["-b", "bob.jar", "-c", "bob.jar", "-d", &form]);
    let (code, page) = ui(&refs(&args), "POST", "/ui/login/cert");
    assert_eq!(code, 403, "{page}");
    assert!(page.contains("grants no access"), "{page}");
    let args = with(&as_bob, &["-b", "bob.jar"]);
    let (code, _) = ui(&refs(&args), "GET", "/ui/");
    assert_eq!(code, 303, "Bob has no session");

    // No certificate on the connection: only the token form, and the POST is refused.
    let (code, page) = ui(&["-c", "anon.jar"], "GET", "/ui/login");
    assert_eq!(code, 200);
    assert!(!page.contains("Sign in with your certificate"), "{page}");
    let form = format!("csrf={}", csrf_of(&page));
    let (code, page) = ui(&["-b", "anon.jar", "-d", &form], "POST", "/ui/login/cert");
    assert_eq!(code, 403, "{page}");
    assert!(page.contains("presented no client certificate"), "{page}");
}
