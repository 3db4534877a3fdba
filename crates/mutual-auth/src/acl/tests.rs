// Tables of cases read best with their types inline.
#![allow(clippy::type_complexity)]

use super::*;
use Capability::*;

fn policy(name: &str, text: &str) -> Policy {
    Policy::parse(name, text).unwrap()
}

fn rule(path: &str, caps: &[&str]) -> String {
    let caps: Vec<String> = caps.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "path \"{path}\" {{ capabilities = [{}] }}\n",
        caps.join(", ")
    )
}

/// Which rule decides, for rules that each grant a different marker capability.
#[test]
fn most_specific_rule_wins_as_in_vault() {
    // Each case: the rules (path, the one capability it grants), the request path, and the
    // path of the rule that must decide.
    let cases: &[(&[&str], &str, Option<&str>)] = &[
        (
            &["secret/foo", "secret/*"],
            "secret/foo",
            Some("secret/foo"),
        ),
        (
            &["secret/foo", "secret/*"],
            "secret/foobar",
            Some("secret/*"),
        ),
        (
            &["secret/*", "secret/fo*"],
            "secret/foo",
            Some("secret/fo*"),
        ),
        (
            &["secret/+/bar", "secret/*"],
            "secret/x/bar",
            Some("secret/+/bar"),
        ),
        // The first wildcard later wins: foo/a* over foo/+.
        (&["foo/a*", "foo/+"], "foo/ab", Some("foo/a*")),
        // Not a prefix wins at the same position: foo/+ over foo/*.
        (&["foo/+", "foo/*"], "foo/x", Some("foo/+")),
        // Fewer + segments win: foo/bar/+/baz over foo/+/+/baz ... after position.
        (
            &["foo/+/+/baz", "foo/+/bar/baz"],
            "foo/x/bar/baz",
            Some("foo/+/bar/baz"),
        ),
        // Longer wins: foo/+/bar/ba* over foo/+/bar/b*.
        (
            &["foo/+/bar/b*", "foo/+/bar/ba*"],
            "foo/x/bar/bat",
            Some("foo/+/bar/ba*"),
        ),
        // + matches exactly one segment.
        (&["foo/+"], "foo/x/y", None),
        (&["foo/+/*"], "foo/x/y/z", Some("foo/+/*")),
        (&["+/config"], "kv/config", Some("+/config")),
        (&["pki/issue/*"], "pki/issue", None),
        (&["*"], "anything/at/all", Some("*")),
        (&["a/b"], "a/b/c", None),
    ];
    let caps = [Create, Read, Update, Delete, List];
    for (rules, path, want) in cases {
        let text: String = rules
            .iter()
            .zip(caps)
            .map(|(p, c)| rule(p, &[c.as_str()]))
            .collect();
        let acl = Acl::new([&policy("p", &text)]).unwrap();
        let found = acl.find(path, Read).map(|m| m.path.as_str());
        assert_eq!(found, *want, "rules {rules:?} on {path}");
    }
}

#[test]
fn decisions_table() {
    let pki = policy(
        "pki",
        &[
            rule("pki/issue/*", &["create", "update"]),
            rule("pki/roles", &["list"]),
            rule("pki/roles/*", &["read"]),
            rule("pki/revoke", &["update", "sudo"]),
            rule("sys/*", &["read"]),
        ]
        .concat(),
    );
    let guard = policy(
        "guard",
        &[rule("pki/issue/admin", &["deny"]), rule("sys/*", &["deny"])].concat(),
    );
    let more = policy("more", &rule("pki/issue/admin", &["update"]));
    let acl = Acl::new([&pki, &guard, &more]).unwrap();
    let cases: &[(&str, Capability, Reason, bool)] = &[
        ("pki/issue/web", Update, Reason::Granted, false),
        ("pki/issue/web", Create, Reason::Granted, false),
        ("pki/issue/web", Delete, Reason::CapabilityMissing, false),
        // Deny merged into the same path wins over another policy's grant.
        ("pki/issue/admin", Update, Reason::ExplicitDeny, false),
        ("sys/mounts", Read, Reason::ExplicitDeny, false),
        ("pki/roles", List, Reason::Granted, false),
        ("pki/roles/", List, Reason::Granted, false),
        ("pki/roles/web", Read, Reason::Granted, false),
        ("pki/revoke", Update, Reason::Granted, true),
        ("pki/tidy", Update, Reason::NoMatchingRule, false),
        ("/pki/issue/web", Update, Reason::Granted, false),
    ];
    for (path, cap, reason, sudo) in cases {
        let d = acl.allows(path, *cap);
        assert_eq!(
            (&d.reason, d.has_sudo()),
            (reason, *sudo),
            "{cap} {path}: {d}"
        );
        assert_eq!(d.is_allowed(), *reason == Reason::Granted, "{d}");
    }
    let d = acl.allows("pki/issue/web", Update);
    assert_eq!(d.granting_policies(), vec!["pki"]);
    assert_eq!(
        d.to_string(),
        "update on \"pki/issue/web\" allowed by path \"pki/issue/*\" (policy \"pki\" line 1)"
    );
    assert_eq!(
        acl.allows("pki/issue/admin", Update).to_string(),
        "update on \"pki/issue/admin\" denied by path \"pki/issue/admin\" (policy \"guard\" line 1, policy \"more\" line 1)"
    );
    assert_eq!(
        acl.allows("pki/issue/web", Delete).to_string(),
        "delete on \"pki/issue/web\" denied: path \"pki/issue/*\" (policy \"pki\" line 1) grants only [update, create]"
    );
    assert_eq!(
        acl.allows("pki/tidy", Update).to_string(),
        "update on \"pki/tidy\" denied: no policy has a rule for this path"
    );
    assert_eq!(acl.capabilities("pki/revoke"), vec!["sudo", "update"]);
    assert_eq!(acl.capabilities("pki/nothing"), vec!["deny"]);
    assert!(acl.any_under("pki"));
    assert!(!acl.any_under("pki_other"));
    assert!(!acl.any_under("sys"), "sys/* is denied by guard");
}

#[test]
fn root_stands_alone_and_allows_everything() {
    let root = Policy {
        name: "root".into(),
        raw: String::new(),
        rules: Vec::new(),
    };
    let acl = Acl::new([&root]).unwrap();
    let d = acl.allows("sys/anything", Sudo);
    assert!(d.is_allowed() && d.has_sudo() && acl.is_root());
    assert_eq!(d.granting_policies(), vec!["root"]);
    assert_eq!(acl.capabilities("x"), vec!["root"]);
    let other = policy("other", "");
    assert_eq!(
        Acl::new([&root, &other]).unwrap_err(),
        AclError::RootNotAlone
    );
    // No policy at all: nothing allowed.
    let none = Acl::new([]).unwrap();
    assert_eq!(none.allows("pki/ca", Read).reason, Reason::NoMatchingRule);
}

#[test]
fn parameter_constraints() {
    let p = policy(
        "p",
        r#"
path "pki/issue/web" {
  capabilities = ["update"]
  allowed_parameters = { "common_name" = ["*.example.com", "example.com"], "ttl" = [] }
  denied_parameters = { "ip_sans" = [] }
}
path "pki/sign/*" {
  capabilities = ["update"]
  required_parameters = ["csr"]
  allowed_parameters = { "*" = [] }
  denied_parameters = { "ttl" = ["8760h"] }
}
"#,
    );
    let acl = Acl::new([&p]).unwrap();
    let params = |kv: &[(&str, &str)]| -> BTreeMap<String, Value> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect()
    };
    let cases: &[(&str, &[(&str, &str)], Reason)] = &[
        (
            "pki/issue/web",
            &[("common_name", "www.example.com")],
            Reason::Granted,
        ),
        (
            "pki/issue/web",
            &[("Common_Name", "example.com"), ("ttl", "1h")],
            Reason::Granted,
        ),
        (
            "pki/issue/web",
            &[("common_name", "evil.com")],
            Reason::ParameterNotAllowed("common_name".into()),
        ),
        (
            "pki/issue/web",
            &[("alt_names", "a.example.com")],
            Reason::ParameterNotAllowed("alt_names".into()),
        ),
        (
            "pki/issue/web",
            &[("ip_sans", "127.0.0.1")],
            Reason::ParameterDenied("ip_sans".into()),
        ),
        ("pki/issue/web", &[], Reason::Granted),
        (
            "pki/sign/web",
            &[("csr", "x"), ("ttl", "1h")],
            Reason::Granted,
        ),
        (
            "pki/sign/web",
            &[("csr", "x"), ("ttl", "8760h")],
            Reason::ParameterDenied("ttl".into()),
        ),
        (
            "pki/sign/web",
            &[("ttl", "1h")],
            Reason::RequiredParameterMissing("csr".into()),
        ),
    ];
    for (path, kv, want) in cases {
        let d = acl.allows_with(path, Update, &params(kv));
        assert_eq!(&d.reason, want, "{path} {kv:?}: {d}");
    }
    assert!(globbed_match("*.example.com", "a.example.com"));
    assert!(globbed_match("www*", "www.example.com"));
    assert!(globbed_match("*mid*", "a-mid-b"));
    assert!(!globbed_match("*.example.com", "example.com"));
}
