//! ACL policies and Vault's token rules through the real `bao` CLI, run against
//! `mutual server --dev` and OpenBao's dev server side by side: each step's outcome is printed
//! for both in one table, and they must agree.

mod server;

use std::process::Command;

use server::{assert_ok, facts, have_bao, mutual_dev, openbao_dev, openbao_dev_with, run_script};

#[test]
fn policies_and_tokens_behave_as_in_openbao() {
    if !have_bao("policies_and_tokens_behave_as_in_openbao") {
        return;
    }
    let script = "auth_story.sh";
    let ours = std::thread::spawn(move || {
        let server = mutual_dev();
        let work = tempfile::tempdir().unwrap();
        let out = run_script(&server, script, work.path());
        (work, out)
    });
    let theirs_server = openbao_dev();
    let theirs = tempfile::tempdir().unwrap();
    let out = run_script(&theirs_server, script, theirs.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ours, our_out) = ours.join().expect("mutual's run");
    assert!(
        our_out.status.success(),
        "{}",
        String::from_utf8_lossy(&our_out.stderr)
    );

    let ours = facts(&ours.path().join("facts"));
    let theirs = facts(&theirs.path().join("facts"));
    println!("{:<32} {:<28} {:<28}", "step", "mutual", "openbao");
    let mut differ = Vec::new();
    for ((k, a), (k2, b)) in ours.iter().zip(&theirs) {
        assert_eq!(k, k2, "the scripts ran the same steps");
        let mark = if a == b { "" } else { "   <-- differs" };
        println!("{k:<32} {a:<28} {b:<28}{mark}");
        if a != b {
            differ.push(k.clone());
        }
    }
    assert_eq!(ours.len(), theirs.len());
    assert!(differ.is_empty(), "mutual and OpenBao differ on {differ:?}");
    // The story holds refusals, not just successes: pin the important ones.
    let get = |k: &str| ours.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    for (k, want) in [
        ("policy_bad", "refused"),
        ("child_escalates", "refused"),
        ("child_after_parent_revoked", "refused"),
        ("uses_3", "refused"),
        ("past_max_ttl", "refused"),
        ("issue_with_policy", "ok"),
        ("child_issue", "ok"),
        ("approle_issue", "ok"),
        ("login_3_used_up", "refused"),
        ("login_expired_secret", "refused"),
    ] {
        assert_eq!(get(k), Some(want), "{k}");
    }
}

/// Runs `script` against `mutual server --dev` and OpenBao's dev server at once; returns
/// both work directories (mutual's first), or None when `bao` is missing.
fn side_by_side(script: &'static str) -> Option<(tempfile::TempDir, tempfile::TempDir)> {
    if !have_bao(script) {
        return None;
    }
    let ours = std::thread::spawn(move || {
        let server = mutual_dev();
        let work = tempfile::tempdir().unwrap();
        let out = run_script(&server, script, work.path());
        (work, out)
    });
    // OpenBao enables audit devices through the API only when its config allows it.
    let theirs_server = openbao_dev_with(&["unsafe_allow_api_audit_creation = true"]);
    let theirs = tempfile::tempdir().unwrap();
    let out = run_script(&theirs_server, script, theirs.path());
    assert_ok(&theirs_server, script, &out);
    let (ours, our_out) = ours.join().expect("mutual's run");
    let stderr = String::from_utf8_lossy(&our_out.stderr);
    assert!(
        our_out.status.success(),
        "{script} against mutual: {stderr}"
    );
    Some((ours, theirs))
}

/// Prints a table of both servers' facts; returns the keys where they differ.
fn compare(ours: &[(String, String)], theirs: &[(String, String)]) -> Vec<String> {
    println!("{:<28} {:<40} {:<40}", "step", "mutual", "openbao");
    let mut differ = Vec::new();
    for ((k, a), (k2, b)) in ours.iter().zip(theirs) {
        assert_eq!(k, k2, "the scripts ran the same steps");
        let mark = if a == b { "" } else { "   <-- differs" };
        println!("{k:<28} {a:<40} {b:<40}{mark}");
        if a != b {
            differ.push(k.clone());
        }
    }
    assert_eq!(ours.len(), theirs.len());
    differ
}

#[test]
fn userpass_token_roles_cidrs_and_audit_behave_as_in_openbao() {
    let Some((ours, theirs)) = side_by_side("authx_story.sh") else {
        return;
    };
    let ours = facts(&ours.path().join("facts"));
    let theirs = facts(&theirs.path().join("facts"));
    let differ = compare(&ours, &theirs);
    assert!(differ.is_empty(), "mutual and OpenBao differ on {differ:?}");
    let get = |k: &str| ours.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    for (k, want) in [
        ("up_issue", "ok"),
        ("up_bad_password", "refused"),
        ("up_bad_password_says", "1"),
        ("up_unknown_user", "refused"),
        ("up_old_password", "refused"),
        ("up_new_password", "ok"),
        ("up_after_delete", "refused"),
        ("role_token_issue", "ok"),
        ("role_escalates", "refused"),
        ("role_from_weak_parent", "ok"),
        ("role_after_delete", "refused"),
        ("role_fixed_renew", "refused"),
        ("cidr_far", "refused"),
        ("cidr_near", "ok"),
        ("cidr_role_near", "ok"),
        ("cidr_old_name_far", "refused"),
        ("cidr_token_far_use", "refused"),
        ("audit_enable", "ok"),
        ("audit_has_lines", "yes"),
    ] {
        assert_eq!(get(k), Some(want), "{k}");
    }
}

#[test]
fn hvac_logs_in_with_approle_and_a_child_token_signs_under_its_parents_policies() {
    if Command::new("python3")
        .args(["-c", "import hvac"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("SKIP: hvac is not installed (pip install hvac)");
        return;
    }
    let Some((ours, theirs)) = side_by_side("hvac_auth.py") else {
        return;
    };
    let read = |d: &tempfile::TempDir| {
        let text = std::fs::read_to_string(d.path().join("hvac-auth-facts")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()
    };
    let (ours, theirs) = (read(&ours), read(&theirs));
    println!("mutual:  {ours}\nopenbao: {theirs}");
    assert_eq!(ours, theirs);
    assert_eq!(
        ours["child"][0],
        serde_json::json!(["cert-manager", "default"])
    );
    assert_eq!(ours["issue_denied"], "Forbidden");
    assert_eq!(ours["child_after_revoke"], "Forbidden");
}

#[test]
fn bad_inputs_get_one_clear_error_each_and_grant_nothing() {
    use serde_json::{json, Value};
    let s = mutual_dev();
    let call = |token: Option<&str>, method: &str, path: &str, body: Value| {
        let body = body.to_string();
        let (code, text) = server::curl_as(&s, token, method, path, Some(&body));
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (code, v)
    };
    let root = Some("root");
    let ok = |(code, v): (u16, Value)| {
        assert!(code / 100 == 2, "{code} {v}");
        v
    };
    let error = |(code, v): (u16, Value)| (code, v["errors"][0].as_str().unwrap_or("").to_string());
    let policy = r#"path "auth/token/create" { capabilities = ["update"] }"#;
    ok(call(
        root,
        "PUT",
        "sys/policies/acl/issuer",
        json!({ "policy": policy }),
    ));
    ok(call(
        root,
        "POST",
        "sys/auth/approle",
        json!({"type": "approle"}),
    ));
    ok(call(
        root,
        "POST",
        "sys/auth/userpass",
        json!({"type": "userpass"}),
    ));
    ok(call(
        root,
        "POST",
        "auth/approle/role/web",
        json!({"token_policies": "issuer", "secret_id_num_uses": 1}),
    ));
    let role_id = ok(call(
        root,
        "GET",
        "auth/approle/role/web/role-id",
        Value::Null,
    ))["data"]["role_id"]
        .clone();
    let secret = |extra: Value| {
        ok(call(root, "POST", "auth/approle/role/web/secret-id", extra))["data"]["secret_id"]
            .clone()
    };
    let login = |sid: &Value| {
        call(
            None,
            "POST",
            "auth/approle/login",
            json!({"role_id": role_id, "secret_id": sid}),
        )
    };
    let once = secret(json!({}));
    let short = secret(json!({"ttl": "1s"}));
    let far = secret(json!({"cidr_list": "10.0.0.0/8"}));
    let t = ok(call(
        root,
        "POST",
        "auth/token/create",
        json!({"policies": "issuer"}),
    ))["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let c = ok(call(Some(&t), "POST", "auth/token/create", json!({})))["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let e = ok(call(
        root,
        "POST",
        "auth/token/create",
        json!({"policies": "issuer", "explicit_max_ttl": "2s"}),
    ))["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    ok(call(
        root,
        "POST",
        "auth/userpass/users/alice",
        json!({"password": "right-one", "token_policies": "issuer"}),
    ));
    ok(call(
        root,
        "POST",
        "auth/token/roles/signer",
        json!({"allowed_policies": "issuer"}),
    ));

    ok(login(&once));
    std::thread::sleep(std::time::Duration::from_secs(3));
    let cases: Vec<(&str, (u16, String), u16, &str)> =
        vec![
        (
            "secret ID past its uses",
            error(login(&once)),
            400,
            "invalid role or secret ID",
        ),
        (
            "secret ID past its TTL",
            error(login(&short)),
            400,
            "invalid role or secret ID (the secret ID expired at unix time",
        ),
        (
            "secret ID from outside its CIDRs",
            error(login(&far)),
            400,
            "source address \"127.0.0.1\" unauthorized through CIDR restrictions on the secret ID",
        ),
        (
            "child asking for a policy its parent lacks",
            error(call(Some(&t), "POST", "auth/token/create", json!({"policies": "admin"}))),
            400,
            "child policies must be subset of parent: the parent token lacks \"admin\"",
        ),
        (
            "token role asked for a policy it does not allow",
            error(call(root, "POST", "auth/token/create/signer", json!({"policies": "admin"}))),
            400,
            "token policies (\"admin\") must be subset of the role's allowed policies (\"issuer\")",
        ),
        (
            "token past its max TTL",
            error(call(Some(&e), "GET", "auth/token/lookup-self", Value::Null)),
            403,
            "permission denied",
        ),
        (
            "wrong userpass password",
            error(call(
                None,
                "POST",
                "auth/userpass/login/alice",
                json!({"password": "wrong-one"}),
            )),
            400,
            "invalid username or password",
        ),
        (
            "unknown userpass user",
            error(call(
                None,
                "POST",
                "auth/userpass/login/mallory",
                json!({"password": "right-one"}),
            )),
            400,
            "invalid username or password",
        ),
    ];
    ok(call(
        root,
        "POST",
        "auth/token/revoke",
        json!({ "token": t }),
    ));
    let revoked_child = error(call(Some(&c), "GET", "auth/token/lookup-self", Value::Null));
    for (what, (code, message), want_code, want) in cases.into_iter().chain([(
        "a revoked parent's child",
        revoked_child,
        403,
        "permission denied",
    )]) {
        println!("{what:<48} {code} {message}");
        assert_eq!(code, want_code, "{what}: {message}");
        assert!(message.starts_with(want), "{what}: {message}");
    }
}
