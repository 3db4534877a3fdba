//! Many issuers and keys per mount (issue 14, item 1) against the real clients: the `bao` CLI
//! (`pki issue`, `pki verify-sign`, `pki list-intermediates`, `pki reissue`) and hvac's issuer
//! methods run against `mutual server --dev` and OpenBao's dev server in the same test, with
//! the same facts asserted and both printed; then the bad inputs (a key that does not match
//! the certificate, a bundle of two unrelated CAs, deleting the default issuer), each refused
//! by mutual with a clear error and nothing changed.

mod server;

use std::process::Command;

use serde_json::Value;
use server::{assert_ok, curl, facts, have_bao, mutual_dev, openbao_dev, run_script, Server};

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
            println!("mutual:\n{}", String::from_utf8_lossy(&out.stdout));
            assert_ok(&server, &script, &out);
            work
        }
    });
    let server = openbao_dev();
    let work = tempfile::tempdir().unwrap();
    let out = run_script(&server, script, work.path());
    println!("openbao:\n{}", String::from_utf8_lossy(&out.stdout));
    assert_ok(&server, script, &out);
    Some((ours.join().expect("mutual's run"), work))
}

#[test]
fn bao_pki_issue_verify_sign_list_intermediates_and_reissue_agree_with_openbao() {
    let Some((ours, theirs)) = both("issuers_story.sh") else {
        return;
    };
    let ours = facts(&ours.path().join("facts"));
    let theirs = facts(&theirs.path().join("facts"));
    println!("{:<34} {:<40} openbao", "fact", "mutual");
    for ((k, a), (_, b)) in ours.iter().zip(&theirs) {
        println!("{k:<34} {a:<40} {b}");
    }
    assert_eq!(ours.len(), theirs.len(), "both scripts wrote every fact");
    for ((k, a), (k2, b)) in ours.iter().zip(&theirs) {
        assert_eq!(k, k2);
        assert_eq!(a, b, "{k}: mutual says {a}, OpenBao says {b}");
    }
}

#[test]
fn hvac_issuer_methods_agree_with_openbao() {
    let Some((ours, theirs)) = both("hvac_issuers.py") else {
        return;
    };
    let read = |d: &tempfile::TempDir| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.path().join("hvac-issuers-facts")).unwrap())
            .unwrap()
    };
    let (a, b) = (read(&ours), read(&theirs));
    println!("mutual:  {a}\nopenbao: {b}");
    assert_eq!(a, b);
}

fn json(resp: (u16, String)) -> (u16, Value) {
    (resp.0, serde_json::from_str(&resp.1).unwrap_or(Value::Null))
}

fn body(v: Value) -> String {
    v.to_string()
}

/// What a refusal must leave as it was: the issuers, the keys and the default.
fn state(s: &Server, mount: &str) -> (Value, Value, Value) {
    let data = |method: &str, path: &str| {
        json(curl(s, method, &format!("{mount}/{path}"), None)).1["data"].clone()
    };
    (
        data("LIST", "issuers"),
        data("LIST", "keys"),
        data("GET", "config/issuers"),
    )
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed EC CA made by openssl: (key PEM, certificate PEM).
fn openssl_ca(dir: &std::path::Path, name: &str) -> (String, String) {
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &format!("{name}.key"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
            "-out",
            &format!("{name}.crt"),
            "-addext",
            "basicConstraints=critical,CA:true",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    let read = |f: String| std::fs::read_to_string(dir.join(f)).unwrap();
    (read(format!("{name}.key")), read(format!("{name}.crt")))
}

#[test]
fn bad_input_is_refused_with_a_clear_error_and_nothing_changes() {
    if !have_bao("bad input") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key_a, cert_a) = openssl_ca(dir.path(), "Unrelated A");
    let (_key_b, cert_b) = openssl_ca(dir.path(), "Unrelated B");
    let ours = mutual_dev();
    let theirs = openbao_dev();
    let cases: Vec<(&str, &str, &str, Option<String>, &str)> = vec![
        (
            "key that does not match the certificate",
            "POST",
            "bad/issuers/import/bundle",
            Some(body(serde_json::json!({ "pem_bundle": format!("{key_a}{cert_b}") }))),
            "the private key in the bundle does not match the certificate \"CN=Unrelated B\" (nor any other in the bundle)",
        ),
        (
            "bundle of two unrelated CAs",
            "POST",
            "bad/issuers/import/bundle",
            Some(body(serde_json::json!({ "pem_bundle": format!("{cert_a}{cert_b}") }))),
            "the bundle holds unrelated CAs: \"CN=Unrelated A\" and \"CN=Unrelated B\" are not in one chain; import them separately",
        ),
        (
            "config/ca with a mismatched key",
            "POST",
            "bad/config/ca",
            Some(body(serde_json::json!({ "pem_bundle": format!("{key_a}{cert_b}") }))),
            "the private key in the bundle does not match the certificate \"CN=Unrelated B\" (nor any other in the bundle)",
        ),
        (
            "delete the default issuer",
            "DELETE",
            "bad/issuer/default",
            None,
            "is the default issuer of mount \"bad\" and was not deleted; make another issuer the default first (config/issuers or root/replace)",
        ),
        (
            "a key with import/cert",
            "POST",
            "bad/issuers/import/cert",
            Some(body(serde_json::json!({ "pem_bundle": format!("{key_a}{cert_a}") }))),
            "private keys found in the PEM bundle but not allowed by this endpoint (use issuers/import/bundle)",
        ),
    ];
    for s in [&ours, &theirs] {
        assert_eq!(
            curl(s, "POST", "sys/mounts/bad", Some(r#"{"type":"pki"}"#)).0 / 100,
            2
        );
        let (code, _) = curl(
            s,
            "POST",
            "bad/root/generate/internal",
            Some(r#"{"common_name":"Bad Root","key_type":"ec","issuer_name":"only"}"#),
        );
        assert_eq!(code, 200, "{}: root", s.name);
    }
    println!(
        "{:<40} {:>6} {:>7}  mutual's error",
        "case", "mutual", "openbao"
    );
    for (label, method, path, payload, want) in &cases {
        let before = state(&ours, "bad");
        let (code, answer) = json(curl(&ours, method, path, payload.as_deref()));
        let after = state(&ours, "bad");
        // OpenBao runs the same request on its own mount, for the table (it accepts some of
        // these: Vault imports a lone key, a set of unrelated CAs, and deletes a default).
        let theirs_before = state(&theirs, "bad");
        let (their_code, _) = json(curl(&theirs, method, path, payload.as_deref()));
        let error = answer["errors"][0].as_str().unwrap_or("").to_string();
        println!("{label:<40} {code:>6} {their_code:>7}  {error}");
        assert_eq!(code, 400, "{label}: {answer}");
        assert!(error.contains(want), "{label}: {error}");
        assert_eq!(before, after, "{label}: mutual changed its issuers or keys");
        // Put OpenBao back where it was when it accepted, so each case starts alike.
        if state(&theirs, "bad") != theirs_before {
            curl(&theirs, "DELETE", "sys/mounts/bad", None);
            curl(&theirs, "POST", "sys/mounts/bad", Some(r#"{"type":"pki"}"#));
            curl(
                &theirs,
                "POST",
                "bad/root/generate/internal",
                Some(r#"{"common_name":"Bad Root","key_type":"ec","issuer_name":"only"}"#),
            );
        }
    }
    // Both refuse a certificate that is not a CA, and an empty bundle.
    for s in [&ours, &theirs] {
        let (code, _) = curl(
            s,
            "POST",
            "bad/issuers/import/bundle",
            Some(r#"{"pem_bundle":""}"#),
        );
        assert_eq!(code, 400, "{}: an empty bundle", s.name);
    }
}

fn pem_of(v: &Value, key: &str) -> String {
    v["data"][key].as_str().unwrap_or_default().to_string()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// `openssl verify` of `leaf` with `trust` as the CA file and `untrusted` intermediates: its
/// last line (`…: OK`, or the error).
fn verify(trust: &str, untrusted: Option<&str>, extra: &[&str], leaf: &str) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-CAfile", trust]);
    if let Some(u) = untrusted {
        cmd.args(["-untrusted", u]);
    }
    let out = cmd.args(extra).arg(leaf).output().expect("openssl verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

fn post(s: &Server, path: &str, v: Value) -> Value {
    let (code, answer) = json(curl(s, "POST", path, Some(&v.to_string())));
    assert!(code / 100 == 2, "{}: POST {path}: {code} {answer}", s.name);
    answer
}

#[test]
fn a_ca_made_in_openbao_moves_into_mutual_with_its_leaves_and_revocations() {
    if !have_bao("migration") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bao = openbao_dev();
    // In OpenBao: a root, an intermediate with its key exported, leaves, one revoked.
    post(
        &bao,
        "sys/mounts/ob_root",
        serde_json::json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
    );
    post(
        &bao,
        "sys/mounts/ob_int",
        serde_json::json!({"type": "pki", "config": {"max_lease_ttl": "43800h"}}),
    );
    let root = post(
        &bao,
        "ob_root/root/generate/internal",
        serde_json::json!({"common_name": "OpenBao Root", "key_type": "ec", "ttl": "8760h"}),
    );
    let root_crt = write(d, "root.crt", &pem_of(&root, "certificate"));
    let csr = post(
        &bao,
        "ob_int/intermediate/generate/exported",
        serde_json::json!({"common_name": "OpenBao Int", "key_type": "ec"}),
    );
    let int_key = write(d, "int.key", &pem_of(&csr, "private_key"));
    let signed = post(
        &bao,
        "ob_root/root/sign-intermediate",
        serde_json::json!({"csr": pem_of(&csr, "csr"), "ttl": "4380h"}),
    );
    let int_pem = pem_of(&signed, "certificate");
    let int_crt = write(d, "int.crt", &int_pem);
    post(
        &bao,
        "ob_int/intermediate/set-signed",
        serde_json::json!({"certificate": format!("{int_pem}\n{}", pem_of(&root, "certificate"))}),
    );
    post(
        &bao,
        "ob_int/roles/web",
        serde_json::json!({"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "72h", "key_type": "ec"}),
    );
    let mut leaves = vec![];
    for cn in ["a.example.com", "b.example.com", "c.example.com"] {
        let l = post(
            &bao,
            "ob_int/issue/web",
            serde_json::json!({"common_name": cn, "ttl": "24h"}),
        );
        leaves.push((
            pem_of(&l, "serial_number"),
            write(d, &format!("{cn}.crt"), &pem_of(&l, "certificate")),
        ));
    }
    let revoked = leaves[1].0.clone();
    post(
        &bao,
        "ob_int/revoke",
        serde_json::json!({"serial_number": revoked}),
    );

    // Into mutual with the documented command, then served.
    let data = d.join("data");
    let init = server::mutual(&["server", "init", "--data", data.to_str().unwrap()]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let token = String::from_utf8_lossy(&init.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Root Token: ").map(|t| t.trim().to_string()))
        .expect("root token");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "--data",
            data.to_str().unwrap(),
            "ca",
            "import-vault",
            "--from-addr",
            &bao.addr,
            "--from-token",
            "root",
            "--from-mount",
            "ob_int",
            "--mount",
            "pki",
        ];
        args.extend_from_slice(extra);
        server::mutual(&args)
    };
    // A key that is not the CA's is refused, and nothing is imported.
    let (other_key, _) = openssl_ca(d, "Other");
    let other = write(d, "other.key", &other_key);
    let refused = import(&["--key-file", &other]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    println!("wrong key: {stderr}");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr.contains("is not the key of the CA on ob_int"),
        "{stderr}"
    );
    let out = import(&["--key-file", &int_key]);
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("certificates 3 (1 revoked"));
    // Again: nothing new (idempotent).
    let again = import(&["--key-file", &int_key]);
    assert!(again.status.success());
    let ours = server::mutual_data(&data, &token);

    // The old leaves are listed and verify with the chain mutual serves.
    let (_, listed) = json(curl(&ours, "LIST", "pki/certs", None));
    for (serial, _) in &leaves {
        assert!(
            listed["data"]["keys"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k == serial.as_str()),
            "{serial} listed"
        );
    }
    let (_, chain) = json(curl(&ours, "GET", "pki/issuer/default/json", None));
    let served: Vec<String> = chain["data"]["ca_chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(served.len(), 2, "the intermediate and the root");
    let served_root = write(d, "served-root.crt", &served[1]);
    let served_int = write(d, "served-int.crt", &served[0]);
    for (serial, leaf) in &leaves {
        let (ok, text) = verify(&served_root, Some(&served_int), &[], leaf);
        println!("old leaf {serial}: {text}");
        assert!(ok, "{text}");
    }
    // mutual keeps issuing under it, with the role that came with it.
    let (_, role) = json(curl(&ours, "GET", "pki/roles/web", None));
    println!("role web in mutual: {}", role["data"]);
    assert_eq!(
        role["data"]["allowed_domains"],
        serde_json::json!(["example.com"])
    );
    assert_eq!(role["data"]["max_ttl"], serde_json::json!(259200));
    let fresh = post(
        &ours,
        "pki/issue/web",
        serde_json::json!({"common_name": "d.example.com", "ttl": "1h"}),
    );
    let fresh_crt = write(d, "fresh.crt", &pem_of(&fresh, "certificate"));
    let (ok, text) = verify(&root_crt, Some(&int_crt), &[], &fresh_crt);
    println!("new leaf from mutual: {text}");
    assert!(ok, "{text}");
    // The revoked one is in mutual's CRL; an old leaf is revocable in mutual.
    let crl = write(d, "mutual.crl", &curl(&ours, "GET", "pki/crl/pem", None).1);
    let text = Command::new("openssl")
        .args(["crl", "-noout", "-text", "-in", &crl])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout).to_uppercase();
    assert!(
        text.contains(&revoked.replace(':', "").to_uppercase()),
        "revoked serial {revoked} in mutual's CRL:\n{text}"
    );
    post(
        &ours,
        "pki/revoke",
        serde_json::json!({"serial_number": leaves[2].0}),
    );
    let crl = write(d, "mutual2.crl", &curl(&ours, "GET", "pki/crl/pem", None).1);
    let bundle = write(d, "bundle.pem", &format!("{}{}", served[1], served[0]));
    for (i, (serial, leaf)) in leaves.iter().enumerate() {
        let (ok, text) = verify(&bundle, None, &["-crl_check", "-CRLfile", &crl], leaf);
        println!("old leaf {serial} with mutual's CRL: {text}");
        assert_eq!(ok, i == 0, "{text}");
    }
    let _ = crl;
}

/// Polls `cond` every 250 ms for at most `secs` seconds.
fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..secs * 4 {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    cond()
}

#[test]
fn rotation_stages_cross_signs_switches_and_retires_with_no_leaf_left_unverifiable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = mutual_dev();
    post(
        &s,
        "sys/mounts/pki",
        serde_json::json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
    );
    let root = post(
        &s,
        "pki/root/generate/internal",
        serde_json::json!({"common_name": "Rotating Root", "key_type": "ec", "ttl": "8760h"}),
    );
    let old_root = write(d, "old-root.crt", &pem_of(&root, "certificate"));
    post(
        &s,
        "pki/roles/web",
        serde_json::json!({"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "72h", "key_type": "ec"}),
    );
    let issue = |name: &str, ttl: &str| {
        let l = post(
            &s,
            "pki/issue/web",
            serde_json::json!({"common_name": format!("{name}.example.com"), "ttl": ttl}),
        );
        write(d, &format!("{name}.crt"), &pem_of(&l, "certificate"))
    };
    let bundle = |name: &str| write(d, name, &curl(&s, "GET", "pki/trust-bundle", None).1);
    let roots_in = |file: &str| {
        std::fs::read_to_string(file)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count()
    };
    // Old leaves: one short-lived (the old issuer retires once it expires), one that the
    // switch must not strand.
    let l1 = issue("l1", "6s");

    // Stage: switch in 3 s.
    let staged = post(
        &s,
        "pki/rotation",
        serde_json::json!({"switch_after": "3s"}),
    );
    println!("staged: {}", staged["data"]);
    assert_eq!(staged["data"]["phase"], "staged");
    let b1 = bundle("bundle-staged.pem");
    assert_eq!(roots_in(&b1), 2, "old and new roots published side by side");
    let (ok, text) = verify(&b1, None, &[], &l1);
    println!("staged, old leaf against the bundle: {text}");
    assert!(ok);
    let l2 = issue("l2", "6s");
    let (ok, text) = verify(&old_root, None, &[], &l2);
    println!("staged, a new leaf still comes from the old root: {text}");
    assert!(ok);

    // A second rotation while this one runs: refused, nothing changed.
    let before = state(&s, "pki");
    let (code, answer) = json(curl(&s, "POST", "pki/rotation", Some("{}")));
    let error = answer["errors"][0].as_str().unwrap_or("").to_string();
    println!("second rotation: {code} {error}");
    assert_eq!(code, 400);
    assert!(
        error.contains("a rotation of \"pki\" is in progress (staged since"),
        "{error}"
    );
    assert_eq!(before, state(&s, "pki"));
    // Nor may the old issuer be deleted meanwhile (it is not the default yet: the rule says so).
    let new_id = staged["data"]["new_issuer"].as_str().unwrap().to_string();
    let cross_id = staged["data"]["cross_signed_issuer"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = json(curl(&s, "DELETE", &format!("pki/issuer/{cross_id}"), None));
    assert_eq!(
        code, 400,
        "the cross-signed issuer stays while the rotation runs"
    );
    let (_, new_issuer) = json(curl(&s, "GET", &format!("pki/issuer/{new_id}"), None));
    let new_root = write(d, "new-root.crt", &pem_of(&new_issuer, "certificate"));
    let (_, cross) = json(curl(&s, "GET", &format!("pki/issuer/{cross_id}"), None));
    let cross = write(d, "cross.crt", &pem_of(&cross, "certificate"));

    // Switch: issuance moves to the new root at the chosen time.
    assert!(wait_for(10, || {
        let (_, r) = json(curl(&s, "GET", "pki/rotation", None));
        r["data"]["phase"] == "switched"
    }));
    let l3 = issue("l3", "1h");
    let b2 = bundle("bundle-switched.pem");
    for (what, trust, untrusted, leaf, want) in [
        ("new leaf, new root", new_root.as_str(), None, &l3, true),
        (
            "new leaf, old root alone",
            old_root.as_str(),
            None,
            &l3,
            false,
        ),
        (
            "new leaf, old root through the cross-signed certificate",
            old_root.as_str(),
            Some(cross.as_str()),
            &l3,
            true,
        ),
        ("new leaf, published bundle", b2.as_str(), None, &l3, true),
        ("old leaf, published bundle", b2.as_str(), None, &l1, true),
        (
            "old leaf, new root alone",
            new_root.as_str(),
            None,
            &l2,
            false,
        ),
    ] {
        let (ok, text) = verify(trust, untrusted, &[], leaf);
        println!("switched, {what}: {text}");
        assert_eq!(ok, want, "{what}: {text}");
    }
    assert_eq!(
        roots_in(&b2),
        2,
        "the old root stays while its leaves are valid"
    );
    // OCSP answers for both: the old root's leaves by the old root, the new one's by the new.
    for (leaf, root) in [(&l1, &old_root), (&l3, &new_root)] {
        let out = Command::new("openssl")
            .args([
                "ocsp", "-issuer", root, "-CAfile", root, "-cert", leaf, "-url",
            ])
            .arg(format!("{}/v1/pki/ocsp", s.addr))
            .output()
            .expect("openssl ocsp");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        println!("switched, OCSP: {} {}", text.trim(), err.trim());
        assert!(
            text.contains(": good") && err.contains("Response verify OK"),
            "{text} {err}"
        );
    }
    let list = server::mutual(&["ca", "list", "--addr", &s.addr, "--token", "root"]);
    let table = String::from_utf8_lossy(&list.stdout).into_owned();
    println!("{table}");
    assert!(
        table.contains("old (switched)") && table.contains("default, new (switched)"),
        "{table}"
    );

    // Retire: once the old root's last leaf has expired, the bundle holds the new root only.
    assert!(wait_for(15, || {
        let (_, r) = json(curl(&s, "GET", "pki/rotation", None));
        r["data"]["phase"] == "retired"
    }));
    let b3 = bundle("bundle-retired.pem");
    assert_eq!(roots_in(&b3), 1);
    let (ok, text) = verify(&b3, None, &[], &l3);
    println!("retired, new leaf against the bundle: {text}");
    assert!(ok);
    // A new rotation may start now.
    let (code, _) = json(curl(
        &s,
        "POST",
        "pki/rotation",
        Some(r#"{"switch_after":"1h"}"#),
    ));
    assert_eq!(code, 200);
}

#[test]
fn the_offline_cli_rotates_and_shows_it_in_ca_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let mut all = vec!["--data", data.to_str().unwrap()];
        all.extend_from_slice(args);
        server::mutual(&all)
    };
    assert!(run(&["ca", "init", "--name", "Offline Root"])
        .status
        .success());
    let past = run(&[
        "ca",
        "rotate",
        "root",
        "--switch-at",
        "2000-01-01T00:00:00Z",
    ]);
    let err = String::from_utf8_lossy(&past.stderr).into_owned();
    assert_eq!(past.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the switch time 2000-01-01T00:00:00Z is in the past"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&run(&["ca", "list"]).stdout).contains("staged"));
    let first = run(&["ca", "rotate", "root", "--switch-after", "1h"]);
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    println!("{text}");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(text.contains("rotation of root: staged"), "{text}");
    let list = String::from_utf8_lossy(&run(&["ca", "list"]).stdout).into_owned();
    println!("{list}");
    assert!(
        list.contains("default, old (staged)")
            && list.contains("new (staged)")
            && list.contains("cross-signed (staged)"),
        "{list}"
    );
    let second = run(&["ca", "rotate", "root"]);
    let err = String::from_utf8_lossy(&second.stderr).into_owned();
    println!("{err}");
    assert_eq!(second.status.code(), Some(1));
    assert!(
        err.contains("a rotation of \"root\" is in progress"),
        "{err}"
    );
    assert_eq!(
        list,
        String::from_utf8_lossy(&run(&["ca", "list"]).stdout),
        "nothing changed"
    );
}

#[test]
fn an_intermediate_rotates_under_its_parent_and_old_and_new_leaves_verify() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    let run = |args: &[&str]| {
        let mut all = vec!["--data", data.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = server::mutual(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["ca", "init", "--name", "Offline Root"]);
    run(&["ca", "intermediate", "alice", "--name", "Alice Int"]);
    run(&[
        "role",
        "set",
        "svc",
        "--ca",
        "alice",
        "--allowed-domains",
        "example.com",
        "--allow-subdomains",
    ]);
    let out = d.join("out");
    let out_s = out.to_str().unwrap();
    run(&["issue", "a.example.com", "--role", "svc", "--out", out_s]);
    let root = write(d, "root.pem", &run(&["ca", "cert", "root"]));
    let old_int = run(&["ca", "cert", "alice"]);
    // Switch at once: the rotation is staged and switched in one step.
    let text = run(&["ca", "rotate", "alice"]);
    println!("{text}");
    assert!(text.contains("rotation of alice: switched"), "{text}");
    run(&["issue", "b.example.com", "--role", "svc", "--out", out_s]);
    let new_int = run(&["ca", "cert", "alice"]);
    assert_ne!(old_int, new_int, "alice issues from its new intermediate");
    for leaf in ["a.example.com.crt", "b.example.com.crt"] {
        let file = out.join(leaf);
        let f = file.to_str().unwrap();
        let (ok, text) = verify(&root, Some(f), &[], f);
        println!("{leaf}: {text}");
        assert!(ok, "{text}");
    }
    let list = run(&["ca", "list"]);
    println!("{list}");
    assert!(
        list.contains("default, new (switched)") && list.contains("old (switched)"),
        "{list}"
    );
}
