// Tables of cases read best with their types inline.
#![allow(clippy::type_complexity)]

use super::*;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn cidrs() {
    let cases = [
        ("10.0.0.0/8", "10.1.2.3", true),
        ("10.0.0.0/8", "11.0.0.1", false),
        ("127.0.0.1", "127.0.0.1", true),
        ("127.0.0.1", "127.0.0.2", false),
        ("0.0.0.0/0", "192.0.2.1", true),
        ("::1/128", "::1", true),
        ("127.0.0.0/8", "::ffff:127.0.0.1", true),
        ("fd00::/8", "fd12::1", true),
        ("fd00::/8", "10.0.0.1", false),
    ];
    for (cidr, addr, want) in cases {
        let c: Cidr = cidr.parse().unwrap();
        assert_eq!(c.contains(addr.parse().unwrap()), want, "{cidr} {addr}");
    }
    for bad in ["10.0.0.0/33", "x/8", "10.0.0/8", "::1/129"] {
        assert_eq!(
            bad.parse::<Cidr>().unwrap_err().to_string(),
            format!("invalid CIDR block \"{bad}\" (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8)")
        );
    }
    assert_eq!(parse_cidrs(&["10.0.0.0/8, 127.0.0.1"]).unwrap().len(), 2);
}

#[test]
fn roles_and_secret_ids() {
    let role = SecretIdPolicy {
        secret_id_num_uses: 2,
        secret_id_ttl: 600,
        ..SecretIdPolicy::default()
    };
    assert_eq!(role.check(), Ok(()));
    let unbound = SecretIdPolicy {
        bind_secret_id: false,
        ..SecretIdPolicy::default()
    };
    assert_eq!(unbound.check(), Err(RoleRefusal::NoConstraint));
    let s = role.new_secret_id(0, 0, vec![], 100).unwrap();
    assert_eq!((s.uses_left, s.expires), (2, Some(700)));
    let s1 = role.new_secret_id(1, 60, vec![], 100).unwrap();
    assert_eq!((s1.uses_left, s1.expires), (1, Some(160)));
    assert_eq!(
        role.new_secret_id(3, 0, vec![], 100),
        Err(RoleRefusal::TooManyUses { role: 2 })
    );
    assert_eq!(
        role.new_secret_id(0, 601, vec![], 100),
        Err(RoleRefusal::TooLong { role: 600 })
    );
    let bound = SecretIdPolicy {
        secret_id_bound_cidrs: parse_cidrs(&["127.0.0.0/8"]).unwrap(),
        ..SecretIdPolicy::default()
    };
    assert!(bound
        .new_secret_id(0, 0, parse_cidrs(&["127.0.0.1/32"]).unwrap(), 0)
        .is_ok());
    assert_eq!(
        bound.new_secret_id(0, 0, parse_cidrs(&["10.0.0.0/8"]).unwrap(), 0),
        Err(RoleRefusal::CidrOutsideRole("10.0.0.0/8".into()))
    );
}

#[test]
fn logins_table() {
    let role = SecretIdPolicy::default();
    let fresh = SecretIdState {
        uses_left: 2,
        created: 0,
        expires: Some(600),
        cidrs: vec![],
    };
    let last = SecretIdState {
        uses_left: 1,
        ..fresh.clone()
    };
    let forever = SecretIdState {
        uses_left: 0,
        expires: None,
        ..fresh.clone()
    };
    let local = SecretIdState {
        cidrs: parse_cidrs(&["127.0.0.1/32"]).unwrap(),
        ..forever.clone()
    };
    let no_secret = SecretIdPolicy {
        bind_secret_id: false,
        token_bound_cidrs: parse_cidrs(&["127.0.0.0/8"]).unwrap(),
        ..SecretIdPolicy::default()
    };
    let lo = ip("127.0.0.1");
    let cases: Vec<(
        &str,
        &SecretIdPolicy,
        bool,
        Option<&SecretIdState>,
        Option<IpAddr>,
        i64,
        Result<AfterLogin, LoginRefusal>,
    )> = vec![
        (
            "counted",
            &role,
            true,
            Some(&fresh),
            lo,
            10,
            Ok(AfterLogin::Decrement { uses_left: 1 }),
        ),
        (
            "last use deletes",
            &role,
            true,
            Some(&last),
            lo,
            10,
            Ok(AfterLogin::Delete),
        ),
        (
            "unlimited",
            &role,
            true,
            Some(&forever),
            lo,
            i64::MAX,
            Ok(AfterLogin::Keep),
        ),
        (
            "expired",
            &role,
            true,
            Some(&fresh),
            lo,
            600,
            Err(LoginRefusal::Expired { at: 600 }),
        ),
        (
            "unknown",
            &role,
            true,
            None,
            lo,
            0,
            Err(LoginRefusal::Invalid),
        ),
        (
            "missing",
            &role,
            false,
            None,
            lo,
            0,
            Err(LoginRefusal::MissingSecretId),
        ),
        (
            "secret id cidr ok",
            &role,
            true,
            Some(&local),
            lo,
            0,
            Ok(AfterLogin::Keep),
        ),
        (
            "secret id cidr refused",
            &role,
            true,
            Some(&local),
            ip("127.0.0.2"),
            0,
            Err(LoginRefusal::SecretIdSource(ip("127.0.0.2"))),
        ),
        (
            "no secret, source bound",
            &no_secret,
            false,
            None,
            lo,
            0,
            Ok(AfterLogin::Keep),
        ),
        (
            "no secret, wrong source",
            &no_secret,
            false,
            None,
            ip("10.0.0.1"),
            0,
            Err(LoginRefusal::TokenSource(ip("10.0.0.1"))),
        ),
    ];
    for (what, role, presented, state, ip, now, want) in cases {
        assert_eq!(login(role, presented, state, ip, now), want, "{what}");
    }
    assert_eq!(
        LoginRefusal::Expired { at: 600 }.to_string(),
        "invalid role or secret ID (the secret ID expired at unix time 600)"
    );
    assert_eq!(
        LoginRefusal::SecretIdSource(ip("10.0.0.1")).to_string(),
        "source address \"10.0.0.1\" unauthorized through CIDR restrictions on the secret ID"
    );
}
