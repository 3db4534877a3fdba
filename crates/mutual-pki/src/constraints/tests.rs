use super::*;

fn nc(f: impl FnOnce(&mut NameConstraints)) -> NameConstraints {
    let mut n = NameConstraints::default();
    f(&mut n);
    n
}

fn ip(s: &str) -> Name {
    Name::Ip(s.parse().unwrap())
}

/// RFC 5280 / OpenSSL matching, one row per rule: (constraints, name, refusal or None).
#[test]
fn matching_table() {
    let dns = nc(|n| n.permitted_dns_domains = vec!["example.com".into()]);
    let dot = nc(|n| n.permitted_dns_domains = vec![".example.com".into()]);
    let excl = nc(|n| {
        n.permitted_dns_domains = vec!["example.com".into()];
        n.excluded_dns_domains = vec!["bad.example.com".into()];
    });
    let ips = nc(|n| {
        n.permitted_ip_ranges = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        n.excluded_ip_ranges = vec!["10.9.0.0/16".parse().unwrap()];
    });
    let mail = nc(|n| {
        n.permitted_email_addresses = vec![
            "boss@corp.example".into(),
            "example.com".into(),
            ".example.org".into(),
        ]
    });
    let uri = nc(|n| {
        n.permitted_uri_domains = vec!["example.org".into(), ".example.net".into()];
        n.excluded_uri_domains = vec!["bad.example.net".into()];
    });
    let none = NameConstraints::default();
    let cases: Vec<(&NameConstraints, Name, Option<&str>)> = vec![
        (&dns, Name::Dns("example.com".into()), None),
        (&dns, Name::Dns("a.example.com".into()), None),
        (&dns, Name::Dns("A.B.Example.COM".into()), None),
        (
            &dns,
            Name::Dns("aexample.com".into()),
            Some("permitted_dns_domains: example.com"),
        ),
        (
            &dns,
            Name::Dns("example.com.evil.org".into()),
            Some("permitted_dns_domains: example.com"),
        ),
        (
            &dns,
            Name::Dns("com".into()),
            Some("permitted_dns_domains: example.com"),
        ),
        (&dot, Name::Dns("a.example.com".into()), None),
        (
            &dot,
            Name::Dns("example.com".into()),
            Some("permitted_dns_domains: .example.com"),
        ),
        (
            &excl,
            Name::Dns("x.bad.example.com".into()),
            Some("excluded_dns_domains: bad.example.com"),
        ),
        (&excl, Name::Dns("good.example.com".into()), None),
        // A constraint of one form says nothing about the others.
        (&dns, ip("192.0.2.1"), None),
        (&dns, Name::Email("a@evil.org".into()), None),
        (&ips, ip("10.1.2.3"), None),
        (&ips, ip("fd12::1"), None),
        (
            &ips,
            ip("11.0.0.1"),
            Some("permitted_ip_ranges: 10.0.0.0/8, fd00::/8"),
        ),
        (
            &ips,
            ip("10.9.1.1"),
            Some("excluded_ip_ranges: 10.9.0.0/16"),
        ),
        (
            &ips,
            ip("fe80::1"),
            Some("permitted_ip_ranges: 10.0.0.0/8, fd00::/8"),
        ),
        (&mail, Name::Email("boss@CORP.example".into()), None),
        (
            &mail,
            Name::Email("intern@corp.example".into()),
            Some("permitted_email_addresses: boss@corp.example, example.com, .example.org"),
        ),
        (&mail, Name::Email("anyone@example.com".into()), None),
        (
            &mail,
            Name::Email("anyone@sub.example.com".into()),
            Some("permitted_email_addresses"),
        ),
        (&mail, Name::Email("anyone@sub.example.org".into()), None),
        (
            &mail,
            Name::Email("anyone@example.org".into()),
            Some("permitted_email_addresses"),
        ),
        (
            &mail,
            Name::Email("no-at-sign".into()),
            Some("permitted_email_addresses"),
        ),
        (
            &uri,
            Name::Uri("spiffe://example.org/ns/a/sa/b".into()),
            None,
        ),
        (
            &uri,
            Name::Uri("https://user@EXAMPLE.org:8443/x".into()),
            None,
        ),
        (
            &uri,
            Name::Uri("spiffe://sub.example.org/x".into()),
            Some("permitted_uri_domains: example.org, .example.net"),
        ),
        (&uri, Name::Uri("https://a.example.net/".into()), None),
        (
            &uri,
            Name::Uri("https://example.net/".into()),
            Some("permitted_uri_domains"),
        ),
        (
            &uri,
            Name::Uri("https://bad.example.net/".into()),
            Some("excluded_uri_domains: bad.example.net"),
        ),
        (
            &uri,
            Name::Uri("urn:uuid:1234".into()),
            Some("permitted_uri_domains"),
        ),
        (&none, Name::Dns("anything.org".into()), None),
    ];
    for (c, name, want) in cases {
        let got = c.check(&name, "CN=Constrained");
        match want {
            None => assert!(got.is_ok(), "{name}: {got:?}"),
            Some(rule) => {
                let v = got.expect_err(&name.to_string());
                assert!(v.rule.starts_with(rule), "{name}: {} !~ {rule}", v.rule);
                assert_eq!(v.name, name.to_string());
            }
        }
    }
}

#[test]
fn refusal_names_the_name_the_ca_and_the_rule() {
    let c = nc(|n| n.permitted_dns_domains = vec!["example.com".into()]);
    let v = c.check(
        &Name::Dns("evil.org".into()),
        "CN=Alice Intermediate Authority",
    );
    assert_eq!(
        v.unwrap_err().to_string(),
        "DNS:evil.org is outside the name constraints of CA \"CN=Alice Intermediate Authority\" (permitted_dns_domains: example.com); issue it from a CA whose constraints allow it"
    );
}

#[test]
fn ip_ranges_parse_and_print() {
    let cases = [
        ("10.0.0.0/8", Ok("10.0.0.0/8")),
        ("192.0.2.7", Ok("192.0.2.7/32")),
        ("fd00::/8", Ok("fd00::/8")),
        ("10.0.0.0/33", Err("prefix length outside 0-32")),
        ("example.com/8", Err("is not an IP range")),
    ];
    for (s, want) in cases {
        match (s.parse::<IpRange>(), want) {
            (Ok(r), Ok(w)) => assert_eq!(r.to_string(), w),
            (Err(e), Err(w)) => assert!(e.contains(w), "{e}"),
            (got, _) => panic!("{s}: {got:?}"),
        }
    }
}

#[test]
fn cn_is_a_dns_name_only_when_it_looks_like_one() {
    for (cn, dns) in [
        ("www.example.com", true),
        ("localhost", false),
        ("Alice Intermediate Authority", false),
        ("-a.example.com", false),
        ("a..b", false),
    ] {
        assert_eq!(cn_as_dns(cn).is_some(), dns, "{cn}");
    }
}

/// Both encoders (rcgen's, and x509-cert's for URI subtrees) read back as they were written.
#[test]
fn stamped_constraints_read_back() {
    let full = nc(|n| {
        n.permitted_dns_domains = vec!["example.com".into()];
        n.excluded_dns_domains = vec!["bad.example.com".into()];
        n.permitted_ip_ranges = vec!["10.0.0.0/8".parse().unwrap()];
        n.excluded_ip_ranges = vec!["fd00::/16".parse().unwrap()];
        n.permitted_email_addresses = vec!["example.com".into()];
        n.excluded_email_addresses = vec!["x@example.com".into()];
    });
    let with_uri = nc(|n| {
        *n = full.clone();
        n.permitted_uri_domains = vec![".example.org".into()];
        n.excluded_uri_domains = vec!["bad.example.org".into()];
    });
    for c in [full, with_uri] {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        c.stamp(&mut params).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let back = NameConstraints::of_der(cert.der()).unwrap().unwrap();
        assert_eq!(back, c);
        let (_, x) = X509Certificate::from_der(cert.der()).unwrap();
        let ext = x
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.30")
            .unwrap();
        assert!(ext.critical);
    }
}
