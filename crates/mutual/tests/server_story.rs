//! `mutual server` against the real clients: the `bao` CLI through DESIGN.md's story and hvac
//! as an application or cert-manager drives it, every certificate and CRL checked by openssl.
//! The same scripts run against OpenBao's dev server in the same test, so that passing proves
//! compatibility rather than agreement with ourselves.

mod server;

use server::{
    assert_ok, curl, curl_as, facts, have_bao, mutual_dev, openbao_dev, run_script, Server,
};

/// Runs a script against mutual and OpenBao side by side; returns the two work dirs.
fn both(script: &str) -> Option<(tempfile::TempDir, tempfile::TempDir)> {
    if !have_bao(script) {
        return None;
    }
    let ours = std::thread::spawn({
        let script = script.to_string();
        move || {
            let server = mutual_dev();
            let work = tempfile::tempdir().unwrap();
            let out = run_script(&server, &script, work.path());
            assert_ok(&server, &script, &out);
            work
        }
    });
    let server = openbao_dev();
    let work = tempfile::tempdir().unwrap();
    let out = run_script(&server, script, work.path());
    assert_ok(&server, script, &out);
    Some((ours.join().expect("mutual's run"), work))
}

#[test]
fn bao_cli_story_passes_against_mutual_and_openbao_with_the_same_answers() {
    let Some((ours, theirs)) = both("bao_story.sh") else {
        return;
    };
    let ours = facts(&ours.path().join("facts"));
    let theirs = facts(&theirs.path().join("facts"));
    assert_eq!(ours.len(), theirs.len());
    for ((k, a), (_, b)) in ours.iter().zip(&theirs) {
        if k == "sign_intermediate_bundle_certs" {
            // DESIGN.md, Pitfalls: Vault 1.5's documented pem_bundle is the intermediate alone
            // when the signer is a self-signed root; today's OpenBao appends the root.
            assert_eq!(a, "1", "mutual returns the intermediate alone");
            continue;
        }
        assert_eq!(a, b, "{k}: mutual says {a}, OpenBao says {b}");
    }
}

#[test]
fn hvac_story_passes_against_mutual_and_openbao_with_the_same_answers() {
    let Some((ours, theirs)) = both("hvac_story.py") else {
        return;
    };
    let read =
        |d: &tempfile::TempDir| std::fs::read_to_string(d.path().join("hvac-facts")).unwrap();
    assert_eq!(read(&ours), read(&theirs));
}

/// A mount with a root and the story's role, through the API.
fn setup(server: &Server, mount: &str, max: &str) {
    let ok = |(code, body): (u16, String)| assert!(code / 100 == 2, "{code} {body}");
    ok(curl(
        server,
        "POST",
        &format!("sys/mounts/{mount}"),
        Some(&format!(
            r#"{{"type":"pki","config":{{"max_lease_ttl":"{max}"}}}}"#
        )),
    ));
    ok(curl(
        server,
        "POST",
        &format!("{mount}/root/generate/internal"),
        Some(r#"{"common_name":"Test Root","key_type":"ec","ttl":"8760h"}"#),
    ));
    ok(curl(
        server,
        "POST",
        &format!("{mount}/roles/service"),
        Some(
            r#"{"allowed_domains":"example.com","allow_subdomains":"true","max_ttl":"720h","key_type":"ec"}"#,
        ),
    ));
}

fn cert_count(server: &Server, mount: &str) -> usize {
    let (code, body) = curl(server, "LIST", &format!("{mount}/certs"), None);
    if code == 404 {
        return 0;
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["data"]["keys"].as_array().map_or(0, |k| k.len())
}

/// One bad request: what, expected status, (status, body) received, text the error must hold.
type Case<'a> = (&'a str, u16, (u16, String), Option<&'a str>);

/// Each bad request gets Vault's status from both servers, one clear message, and stores
/// nothing.
#[test]
fn bad_input_gets_vaults_status_codes_and_stores_nothing() {
    if !have_bao("bad_input") {
        return;
    }
    let huge = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        huge.path(),
        format!(r#"{{"common_name":"{}"}}"#, "a".repeat(33 << 20)),
    )
    .unwrap();
    let huge_arg = format!("@{}", huge.path().display());
    for server in [mutual_dev(), openbao_dev()] {
        setup(&server, "pki_bad", "87600h");
        let before = cert_count(&server, "pki_bad");
        let issue = "pki_bad/issue/service";
        let www = Some(r#"{"common_name":"www.example.com"}"#);
        let cases: Vec<Case> = vec![
            (
                "no token",
                403,
                curl_as(&server, None, "POST", issue, www),
                Some("permission denied"),
            ),
            (
                "wrong token",
                403,
                curl_as(&server, Some("nope"), "POST", issue, www),
                Some("permission denied"),
            ),
            (
                "refused name",
                400,
                curl(
                    &server,
                    "POST",
                    issue,
                    Some(r#"{"common_name":"evil.com"}"#),
                ),
                Some("evil.com"),
            ),
            (
                "refused SAN",
                400,
                curl(
                    &server,
                    "POST",
                    issue,
                    Some(r#"{"common_name":"www.example.com","alt_names":"evil.org"}"#),
                ),
                Some("evil.org"),
            ),
            (
                "unknown mount",
                404,
                curl(&server, "POST", "pki_nope/issue/service", www),
                Some("pki_nope"),
            ),
            (
                "unknown role",
                400,
                curl(&server, "POST", "pki_bad/issue/nope", www),
                Some("nope"),
            ),
            (
                "malformed JSON",
                400,
                curl(&server, "POST", issue, Some(r#"{"common_name":"#)),
                Some("JSON"),
            ),
            (
                "huge body",
                413,
                curl(&server, "POST", issue, Some(&huge_arg)),
                None,
            ),
            (
                "CSR that does not parse",
                400,
                curl(
                    &server,
                    "POST",
                    "pki_bad/sign/service",
                    Some(
                        r#"{"csr":"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}"#,
                    ),
                ),
                None,
            ),
            (
                "empty CSR",
                400,
                curl(
                    &server,
                    "POST",
                    "pki_bad/sign/service",
                    Some(r#"{"csr":""}"#),
                ),
                None,
            ),
            (
                "missing role",
                404,
                curl(&server, "GET", "pki_bad/roles/nope", None),
                None,
            ),
            (
                "missing cert",
                404,
                curl(&server, "GET", "pki_bad/cert/01:02:03", None),
                None,
            ),
            (
                "revoke of an unknown serial",
                400,
                curl(
                    &server,
                    "POST",
                    "pki_bad/revoke",
                    Some(r#"{"serial_number":"01:02:03"}"#),
                ),
                Some("01:02:03"),
            ),
        ];
        for (what, want, (code, body), needle) in cases {
            assert_eq!(code, want, "{}: {what}: {body}", server.name);
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| {
                panic!("{}: {what}: body is not JSON ({e}): {body}", server.name)
            });
            let errors = v["errors"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: {what}: no errors: {body}", server.name));
            if let Some(needle) = needle {
                assert_eq!(errors.len(), 1, "{}: {what}: {body}", server.name);
                assert!(
                    errors[0].as_str().unwrap().contains(needle),
                    "{}: {what}: {body} should name {needle}",
                    server.name
                );
            }
        }
        assert_eq!(
            cert_count(&server, "pki_bad"),
            before,
            "{}: nothing stored",
            server.name
        );
    }
}
