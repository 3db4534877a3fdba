use super::*;

#[test]
fn parses_vault_policies_in_hcl_and_json() {
    let text = r#"
# PKI for the web fleet
path "pki/issue/*" {
  capabilities = ["create", "update"]
}
path "/pki/roles/web" { capabilities = ["read", "deny", "list"] }
path "secret/+/config" {
  policy = "write"
  allowed_parameters = { "ttl" = ["1h", "2h"], common_name = [] }
  denied_parameters = { "Key_Type" = ["rsa"] }
  required_parameters = ["common_name"]
  comment = "old style"
}
"#;
    let p = Policy::parse("Web", text).unwrap();
    assert_eq!(p.name, "web");
    let got: Vec<(&str, usize, Vec<&str>)> = p
        .rules
        .iter()
        .map(|r| (r.path.as_str(), r.line, r.capabilities.names()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("pki/issue/*", 3, vec!["update", "create"]),
            ("pki/roles/web", 6, vec!["deny"]),
            (
                "secret/+/config",
                7,
                vec!["read", "list", "update", "delete", "create"]
            ),
        ]
    );
    let r = &p.rules[2];
    let allowed = r.allowed_parameters.as_ref().unwrap();
    assert_eq!(allowed["ttl"], vec![Value::from("1h"), Value::from("2h")]);
    assert!(allowed["common_name"].is_empty());
    assert!(r
        .denied_parameters
        .as_ref()
        .unwrap()
        .contains_key("key_type"));
    assert_eq!(r.required_parameters, vec!["common_name"]);

    let json = r#"{"path": {"pki/issue/*": {"capabilities": ["update"]},
  "sys/policies/acl/*": {"capabilities": ["read", "list"]}}}"#;
    let p = Policy::parse("j", json).unwrap();
    assert_eq!(p.rules.len(), 2);
    assert_eq!(p.rules[1].line, 2);
    assert!(Policy::parse("empty", "").unwrap().rules.is_empty());
    assert!(Policy::parse("named", "name = \"x\"\n")
        .unwrap()
        .rules
        .is_empty());
}

#[test]
fn refusals_name_the_line_and_what_is_wrong() {
    let cases: &[(&str, &str)] = &[
        (
            "path \"pki/*\" {\n  capabilities = [\"reed\"]\n}\n",
            "line 2: path \"pki/*\": invalid capability \"reed\" (expected one of create, read, update, delete, list, sudo, deny, patch, scan)",
        ),
        (
            "\n\npath \"pki/*\" {\n  capabilites = [\"read\"]\n}\n",
            "line 4: path \"pki/*\": unknown key \"capabilites\"",
        ),
        (
            "path \"a\" {\n capabilities = [\"read\"]\n}\nroles \"x\" {}\n",
            "line 4: unknown key \"roles\" (a policy holds path \"…\" { … } blocks)",
        ),
        (
            "path {\n}\n",
            "line 1: a path block needs exactly one label, as in path \"pki/issue/*\" { … }",
        ),
        (
            "path \"a/+*\" { capabilities = [\"read\"] }\n",
            "line 1: path \"a/+*\": invalid use of wildcards ('+*' is forbidden)",
        ),
        (
            "path \"a\" {\n  policy = \"admin\"\n}\n",
            "line 2: path \"a\": invalid policy \"admin\" (expected deny, read, write or sudo)",
        ),
        (
            "path \"a\" {\n  capabilities = 3\n}\n",
            "line 2: path \"a\": capabilities must be a list of strings",
        ),
        (
            "path \"a\" {\n  capabilities = [\"${var.x}\"]\n}\n",
            "line 2: path \"a\": capabilities must be a plain value (no interpolation or expression)",
        ),
        (
            "path \"a\" {\n  capabilities = [\"read\"]\n  min_wrapping_ttl = \"1h\"\n}\n",
            "line 3: path \"a\": min_wrapping_ttl is not supported by mutual",
        ),
        (
            "path \"a\" {\n  control_group = {}\n}\n",
            "line 2: path \"a\": control_group is not supported by mutual",
        ),
        (
            "{\"path\": {\"a\": {\"capabilities\": [\"nope\"]}}}",
            "line 1: path \"a\": invalid capability \"nope\" (expected one of create, read, update, delete, list, sudo, deny, patch, scan)",
        ),
        ("{\"path\": ", "line 1: invalid JSON: EOF while parsing a value at line 1 column 9 at column 9"),
    ];
    for (text, want) in cases {
        let e = Policy::parse("p", text).expect_err(text);
        assert_eq!(e.to_string(), *want, "{text}");
    }
    // A syntax error from the HCL parser names its line and column.
    let e = Policy::parse("p", "path \"a\" {\n  capabilities = [\"read\"\n}\n").unwrap_err();
    assert_eq!(e.line, Some(3), "{e}");
    assert!(matches!(e.kind, PolicyErrorKind::Syntax { .. }), "{e}");
    assert!(e.to_string().starts_with("line 3: "), "{e}");
    for bad in ["", "  ", "a/b", "..", "x\ny"] {
        assert!(policy_name(bad).is_err(), "{bad:?}");
    }
}
