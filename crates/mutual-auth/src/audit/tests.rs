// Tables of cases read best with their types inline.
#![allow(clippy::type_complexity)]

use serde_json::json;

use super::*;

fn h() -> Hasher {
    Hasher::new(b"salt of the device")
}

#[test]
fn secrets_are_hmacd_wherever_they_are_and_the_rest_stays_readable() {
    let key = "-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n";
    let bundle = format!("CERT\n{key}");
    // (input, expected: None = unchanged, Some(secret) = its HMAC)
    let cases: Vec<(Value, Vec<(&str, Option<&str>)>)> = vec![
        (
            json!({"client_token": "s.abc"}),
            vec![("/client_token", Some("s.abc"))],
        ),
        (json!({"token": "s.t"}), vec![("/token", Some("s.t"))]),
        (
            json!({"secret_id": "sid"}),
            vec![("/secret_id", Some("sid"))],
        ),
        (
            json!({"password": "hunter2"}),
            vec![("/password", Some("hunter2"))],
        ),
        (
            json!({"private_key": key}),
            vec![("/private_key", Some(key))],
        ),
        // A PEM bundle in a field with an innocent name still holds a key.
        (
            json!({ "certificate": bundle }),
            vec![("/certificate", Some(bundle.as_str()))],
        ),
        (
            json!({"auth": {"client_token": "s.x", "accessor": "acc", "policies": ["p"]}}),
            vec![
                ("/auth/client_token", Some("s.x")),
                ("/auth/accessor", None),
                ("/auth/policies/0", None),
            ],
        ),
        (
            json!({"serial_number": "1a:2b", "common_name": "a.example.com", "role_id": "r"}),
            vec![
                ("/serial_number", None),
                ("/common_name", None),
                ("/role_id", None),
            ],
        ),
        (json!({"keys": ["web", "db"]}), vec![("/keys/0", None)]),
        (json!({"secret_id": ""}), vec![("/secret_id", None)]),
    ];
    for (input, expect) in cases {
        let mut v = input.clone();
        redact(&h(), Options::default(), &mut v);
        for (ptr, secret) in expect {
            let got = v.pointer(ptr).unwrap_or_else(|| panic!("{ptr} in {v}"));
            match secret {
                Some(s) => assert_eq!(got, &json!(h().hash(s)), "{ptr} of {input}"),
                None => assert_eq!(got, input.pointer(ptr).unwrap(), "{ptr} of {input}"),
            }
        }
        let text = v.to_string();
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
    // Redacting twice changes nothing (an HMAC is not HMAC'd again).
    let mut v = json!({"token": "s.abc"});
    redact(&h(), Options::default(), &mut v);
    let once = v.clone();
    redact(&h(), Options::default(), &mut v);
    assert_eq!(v, once);
}

#[test]
fn accessors_are_hmacd_only_when_the_device_asks() {
    let mut v = json!({"accessor": "acc", "secret_id_accessor": "sacc"});
    redact(&h(), Options::default(), &mut v);
    assert_eq!(v, json!({"accessor": "acc", "secret_id_accessor": "sacc"}));
    redact(
        &h(),
        Options {
            hmac_accessor: true,
        },
        &mut v,
    );
    assert_eq!(v["accessor"], json!(h().hash("acc")));
    assert_eq!(v["secret_id_accessor"], json!(h().hash("sacc")));
}

fn caller() -> Caller {
    Caller {
        client_token: "mutual.secret".into(),
        accessor: "acc1".into(),
        display_name: "approle-web".into(),
        policies: vec!["default".into(), "issuer".into()],
        metadata: json!({"role_name": "web"}),
        token_ttl: 1200,
        token_issue_time: "2026-11-30T08:00:00Z".into(),
    }
}

fn request() -> Request {
    Request {
        id: "req-1".into(),
        operation: "update".into(),
        path: "pki/issue/web".into(),
        data: json!({"common_name": "a.example.com"}),
        remote_address: "127.0.0.1".into(),
        remote_port: 40000,
        mount_point: "pki/".into(),
        mount_type: "pki".into(),
    }
}

#[test]
fn request_and_response_entries_have_vaults_shape() {
    let t = "2026-11-30T08:00:01.000000001Z";
    let req = request_entry(&h(), Options::default(), t, Some(&caller()), &request());
    assert_eq!(req["type"], "request");
    assert_eq!(req["time"], t);
    assert_eq!(req["error"], "");
    assert_eq!(req["auth"]["accessor"], "acc1");
    assert_eq!(
        req["auth"]["client_token"],
        json!(h().hash("mutual.secret"))
    );
    assert_eq!(req["auth"]["policies"], json!(["default", "issuer"]));
    assert_eq!(req["auth"]["token_type"], "service");
    assert_eq!(req["auth"]["display_name"], "approle-web");
    assert_eq!(req["request"]["id"], "req-1");
    assert_eq!(req["request"]["operation"], "update");
    assert_eq!(req["request"]["path"], "pki/issue/web");
    assert_eq!(req["request"]["remote_address"], "127.0.0.1");
    assert_eq!(
        req["request"]["client_token"],
        json!(h().hash("mutual.secret"))
    );
    assert_eq!(req["request"]["client_token_accessor"], "acc1");
    assert_eq!(req["request"]["data"]["common_name"], "a.example.com");
    assert!(req.get("response").is_none());

    let resp = Response {
        status: 200,
        data: json!({"serial_number": "1a:2b", "private_key": "-----BEGIN PRIVATE KEY-----"}),
        ..Response::default()
    };
    let results = PolicyResults {
        allowed: true,
        granting_policies: vec!["issuer".into()],
    };
    let out = response_entry(
        &h(),
        Options::default(),
        t,
        Some(&caller()),
        Some(&results),
        &request(),
        &resp,
    );
    assert_eq!(out["type"], "response");
    assert_eq!(out["response"]["data"]["serial_number"], "1a:2b");
    assert_eq!(
        out["response"]["data"]["private_key"],
        json!(h().hash("-----BEGIN PRIVATE KEY-----"))
    );
    assert_eq!(out["auth"]["policy_results"]["allowed"], true);
    assert_eq!(
        out["auth"]["policy_results"]["granting_policies"][0]["name"],
        "issuer"
    );
    assert_eq!(out["response"]["status"], 200);
    assert!(!out.to_string().contains("mutual.secret"));

    // A login: no caller, a refusal, and then a login's token in the response.
    let mut login = request();
    login.path = "auth/approle/login".into();
    login.data = json!({"role_id": "r", "secret_id": "s3cr3t"});
    let refused = Response {
        status: 400,
        error: "invalid role or secret ID".into(),
        ..Response::default()
    };
    let out = response_entry(&h(), Options::default(), t, None, None, &login, &refused);
    assert_eq!(out["error"], "invalid role or secret ID");
    assert_eq!(
        out["request"]["data"]["secret_id"],
        json!(h().hash("s3cr3t"))
    );
    assert_eq!(out["request"]["data"]["role_id"], "r");
    let granted = Response {
        status: 200,
        auth: json!({"client_token": "mutual.new", "accessor": "acc2"}),
        ..Response::default()
    };
    let out = response_entry(&h(), Options::default(), t, None, None, &login, &granted);
    assert_eq!(
        out["response"]["auth"]["client_token"],
        json!(h().hash("mutual.new"))
    );
    assert_eq!(out["response"]["auth"]["accessor"], "acc2");
    assert!(!out.to_string().contains("mutual.new") && !out.to_string().contains("s3cr3t"));
}
