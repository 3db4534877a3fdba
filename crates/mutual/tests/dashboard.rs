//! The CA's dashboard (`/ui/` of `mutual server`) in a real headless Chromium driven through
//! WebDriver: sign in, search Alice's certificates, open one, revoke it with a reason, see it
//! revoked and in the CRL (read by openssl); a hostile CN renders as text; a POST without the
//! CSRF token is refused; a token without the revoke policy sees no button and gets 403.
//! Screenshots of each page go to target/ui-screenshots/.

mod lifecycle;
mod webdriver;

use std::{path::PathBuf, process::Command};

use lifecycle::Ca;
use serde_json::Value;
use webdriver::Browser;

fn shots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots")
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Issues `cn` under `role` through the API; returns its serial (colon hex).
fn issue(ca: &Ca, role: &str, body: &str) -> String {
    let (code, text) = ca.call("POST", &format!("pki/issue/{role}"), body);
    assert_eq!(code, 200, "{text}");
    json(&text)["data"]["serial_number"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A POST of a form to the dashboard with a session cookie, as a script on another page or a
/// curl would send it; returns the status.
fn post_form(ca: &Ca, path: &str, session: &str, form: &str) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["-b", &format!("mutual_session={session}")])
        .args(["--data", form])
        .arg(format!("{}{path}", ca.addr()))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The CSRF token of the page's forms.
fn csrf_of(source: &str) -> String {
    let at = source
        .find("name=\"csrf\" value=\"")
        .expect("a csrf field on the page");
    let rest = &source[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn sign_in(b: &Browser, ca: &Ca, token: &str) {
    b.go(&format!("{}/ui/", ca.addr()));
    assert!(b.url().ends_with("/ui/login"), "{}", b.url());
    b.type_in("input[name=token]", token);
    b.click("form.login button[type=submit]");
    b.wait("the overview", |b| b.url().ends_with("/ui/"));
}

fn inventory(ca: &Ca, query: &str) -> Value {
    let (code, text) = ca.call("GET", &format!("pki/inventory?{query}"), "");
    assert_eq!(code, 200, "{text}");
    json(&text)["data"].clone()
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (code, body) = ca.call(
        "POST",
        "pki/roles/anything",
        r#"{"allow_any_name":true,"enforce_hostnames":false,"allow_ip_sans":true,"max_ttl":"720h","key_type":"ec"}"#,
    );
    assert!(code < 300, "{code} {body}");
    let alice = issue(
        &ca,
        "service",
        r#"{"common_name":"alice.example.com","alt_names":"alice-api.example.com","ip_sans":"127.0.0.1","ttl":"240h"}"#,
    );
    issue(
        &ca,
        "service",
        r#"{"common_name":"alice2.example.com","ttl":"24h"}"#,
    );
    let bob = issue(
        &ca,
        "service",
        r#"{"common_name":"bob.example.com","ttl":"240h"}"#,
    );
    let hostile = issue(
        &ca,
        "anything",
        r#"{"common_name":"<script>alert(1)</script>","exclude_cn_from_sans":true,"alt_names":"<img src=x onerror=alert(2)>","ttl":"240h"}"#,
    );

    // The inventory API first: filters, and the token that asked recorded.
    let found = inventory(&ca, "cn=alice");
    let cns: Vec<&str> = found["certs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["common_name"].as_str().unwrap())
        .collect();
    assert_eq!(cns, ["alice.example.com", "alice2.example.com"]);
    assert!(found["certs"][0]["issued_by"]
        .as_str()
        .is_some_and(|a| !a.is_empty()));
    let by_san = inventory(&ca, "san=alice-api.example.com");
    assert_eq!(by_san["certs"][0]["serial_number"], alice);
    let soon = inventory(&ca, "expiring=48h");
    assert_eq!(soon["certs"][0]["common_name"], "alice2.example.com");
    let (code, text) = ca.call("GET", "pki/inventory?sort=size", "");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("sort: \\\"size\\\" is not one of"), "{text}");

    // A token that may read everything on the mount and revoke nothing.
    let (code, text) = ca.call(
        "POST",
        "sys/policies/acl/reader",
        r#"{"policy":"path \"pki/*\" { capabilities = [\"read\", \"list\"] }"}"#,
    );
    assert!(code < 300, "{code} {text}");
    let (code, text) = ca.call("POST", "auth/token/create", r#"{"policies":["reader"]}"#);
    assert_eq!(code, 200, "{text}");
    let reader = json(&text)["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();

    let b = Browser::start();
    let shots = shots();

    // Signing in with a wrong token is refused on the page.
    b.go(&format!("{}/ui/login", ca.addr()));
    b.screenshot(&shots.join("01-login.png"));
    b.type_in("input[name=token]", "not-a-token");
    b.click("form.login button[type=submit]");
    b.wait("the refusal", |b| b.find("p.error").is_some());
    assert!(b.text("p.error").contains("not valid"), "{}", b.source());

    sign_in(&b, &ca, &ca.token);
    let cookie = b.cookie("mutual_session").expect("a session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    let session = cookie["value"].as_str().unwrap().to_string();
    let overview = b.source();
    assert!(overview.contains("Agent Test Root"), "{overview}");
    assert!(
        overview.contains("alice2.example.com"),
        "expiring soon: {overview}"
    );
    b.screenshot(&shots.join("02-overview.png"));

    // Search Alice's certificates with the form.
    b.go(&format!("{}/ui/certs", ca.addr()));
    b.type_in("input[name=cn]", "alice");
    b.click("form.search button[type=submit]");
    b.wait_url("cn=alice");
    let rows = b.find_all("table.certs tbody tr td:first-child a");
    let names: Vec<String> = rows.iter().map(|e| b.text_of(e)).collect();
    assert_eq!(names, ["alice.example.com", "alice2.example.com"]);
    b.screenshot(&shots.join("03-search-alice.png"));

    // Open Alice's certificate: decoded fields, chain, role, the revoke action.
    b.click("table.certs tbody tr td:first-child a");
    b.wait_url("/ui/cert?");
    let page = b.source();
    for want in [
        "alice-api.example.com",
        "127.0.0.1",
        "Agent Test Root",
        "Role service",
        "Usable by servers and by clients.",
    ] {
        assert!(page.contains(want), "{want} missing from {page}");
    }
    b.screenshot(&shots.join("04-certificate.png"));

    // Revoke it: a confirmation page, a reason, then the certificate says revoked.
    b.click("a.button.danger");
    b.wait_url("/ui/revoke?");
    b.click("select[name=reason] option[value=keyCompromise]");
    b.screenshot(&shots.join("05-revoke-confirm.png"));
    b.click("form.confirm button.danger");
    b.wait_url("revoked=1");
    assert!(b.text("p.notice").contains("Revoked"), "{}", b.source());
    assert!(
        b.text("span.revoked").contains("key compromise")
            || b.text("span.revoked").contains("keyCompromise"),
        "{}",
        b.text("span.revoked")
    );
    assert!(b.find("a.button.danger").is_none(), "no second revoke");
    b.screenshot(&shots.join("06-revoked.png"));

    // In the overview's recently revoked list, in the inventory, and in the CRL.
    b.go(&format!("{}/ui/", ca.addr()));
    let recent = b.find_all("section");
    let last = b.text_of(recent.last().unwrap());
    assert!(last.contains("alice.example.com"), "{last}");
    let revoked = inventory(&ca, "revoked=true");
    assert_eq!(revoked["certs"][0]["serial_number"], alice);
    let crl = dir.path().join("pki.crl");
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&crl)
        .arg(format!("{}/v1/pki/crl", ca.addr()))
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new("openssl")
        .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
        .arg(&crl)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let hex = alice.replace(':', "").to_uppercase();
    assert!(text.contains(&hex), "{hex} not in the CRL:\n{text}");
    assert!(text.contains("Key Compromise"), "{text}");

    // The hostile certificate: its CN and SAN render as text; no script ran.
    b.go(&format!("{}/ui/certs?cn=%3Cscript", ca.addr()));
    let link = b
        .find("table.certs tbody tr td:first-child a")
        .expect("the hostile row");
    assert_eq!(b.text_of(&link), "<script>alert(1)</script>");
    b.go(&format!(
        "{}/ui/cert?serial={}",
        ca.addr(),
        hostile.replace(':', "")
    ));
    let src = b.source();
    assert!(!src.contains("<script>alert(1)"), "{src}");
    assert!(
        src.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{src}"
    );
    assert!(b.find("img").is_none(), "the SAN became an element: {src}");
    assert_eq!(b.alert(), None);
    b.screenshot(&shots.join("07-hostile.png"));

    // Issue from a role: the form, then its POST answers the PEM bundle to download.
    b.go(&format!("{}/ui/issue?mount=pki&role=service", ca.addr()));
    assert!(
        b.find("form.issue input[name=common_name]").is_some(),
        "{}",
        b.source()
    );
    b.screenshot(&shots.join("08-issue-form.png"));
    let csrf = csrf_of(&b.source());
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-b", &format!("mutual_session={session}")])
        .args([
            "--data",
            &format!("mount=pki&role=service&common_name=carol.example.com&ttl=48h&csrf={csrf}"),
        ])
        .arg(format!("{}/ui/issue", ca.addr()))
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains("attachment; filename=\"carol.example.com.pem\""),
        "{answer}"
    );
    assert!(answer.contains("PRIVATE KEY-----"), "{answer}");
    let pem = &answer[answer.find("-----BEGIN CERTIFICATE").unwrap()..];
    std::fs::write(dir.path().join("carol.pem"), pem).unwrap();
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-in"])
        .arg(dir.path().join("carol.pem"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("carol.example.com"),
        "{out:?}"
    );
    let p12 = dir.path().join("dave.p12");
    let out = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&p12)
        .args(["-w", "%{http_code} %{content_type}", "-b", &format!("mutual_session={session}")])
        .args(["--data", &format!("mount=pki&role=service&common_name=dave.example.com&p12_password=s3cret&csrf={csrf}")])
        .arg(format!("{}/ui/issue", ca.addr()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 application/x-pkcs12"
    );
    let out = Command::new("openssl")
        .args(["pkcs12", "-nokeys", "-passin", "pass:s3cret", "-in"])
        .arg(&p12)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("subject=CN = dave.example.com"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("subject=CN = Agent Test Root"), "{text}");
    let carol = inventory(&ca, "cn=carol");
    assert_eq!(
        carol["certs"][0]["issued_by"],
        found["certs"][0]["issued_by"]
    );

    // A revoke without the CSRF token (or with a wrong one) is refused; Bob stays valid.
    let bob_hex = bob.replace(':', "");
    for form in [
        format!("serial={bob_hex}&reason=unspecified"),
        format!("serial={bob_hex}&reason=unspecified&csrf=0000"),
    ] {
        assert_eq!(post_form(&ca, "/ui/revoke", &session, &form), 403, "{form}");
    }
    assert_eq!(inventory(&ca, "cn=bob")["certs"][0]["revoked"], false);

    // The reader: no revoke button, and 403 when posting anyway with its own CSRF token.
    let csrf = csrf_of(&b.source());
    b.click("form.signout button");
    b.wait_url("/ui/login");
    // The signed-out session is gone: its cookie opens nothing.
    assert_eq!(
        post_form(
            &ca,
            "/ui/revoke",
            &session,
            &format!("serial={bob_hex}&csrf={csrf}")
        ),
        303
    );
    sign_in(&b, &ca, &reader);
    b.go(&format!("{}/ui/cert?serial={bob_hex}", ca.addr()));
    assert!(b.source().contains("bob.example.com"));
    assert!(b.find("a.button.danger").is_none(), "{}", b.source());
    b.screenshot(&shots.join("09-reader-no-revoke.png"));
    let reader_session = b.cookie("mutual_session").unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    let reader_csrf = csrf_of(&b.source());
    let form = format!("serial={bob_hex}&reason=unspecified&csrf={reader_csrf}");
    assert_eq!(post_form(&ca, "/ui/revoke", &reader_session, &form), 403);
    b.go(&format!("{}/ui/revoke?serial={bob_hex}", ca.addr()));
    assert!(
        b.text("p.error").contains("Permission denied"),
        "{}",
        b.source()
    );
    assert_eq!(inventory(&ca, "cn=bob")["certs"][0]["revoked"], false);
    b.go(&format!("{}/ui/roles", ca.addr()));
    assert!(b.source().contains("Any name may be requested."));
    assert!(b.find("a.button").is_none(), "the reader may not issue");
    b.screenshot(&shots.join("10-roles-reader.png"));
}

#[test]
fn every_dashboard_answer_carries_the_safety_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null"])
        .arg(format!("{}/ui/login", ca.addr()))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    for want in [
        "content-security-policy: default-src 'self'; script-src 'none'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
        "set-cookie: mutual_login=",
        "httponly; samesite=strict",
    ] {
        assert!(head.contains(want), "{want} missing:\n{head}");
    }
    // Signed out, pages send the browser to sign in, and a POST is refused.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg(format!("{}/ui/certs", ca.addr()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("303 "),
        "{out:?}"
    );
    assert_eq!(post_form(&ca, "/ui/login", "none", "token=x&csrf=y"), 403);
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}"])
        .arg(format!("{}/ui/no/such/page", ca.addr()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with("\n404") && text.contains("No such page."),
        "{text}"
    );
}
