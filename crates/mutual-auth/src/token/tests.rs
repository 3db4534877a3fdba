// Tables of cases read best with their types inline.
#![allow(clippy::type_complexity)]

use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[test]
fn sanitize_as_vault() {
    assert_eq!(
        sanitize_policies(&[" PKI", "pki", "", "a"], true),
        s(&["a", "default", "pki"])
    );
    assert_eq!(sanitize_policies(&["a", "root", "b"], true), s(&["root"]));
    assert_eq!(sanitize_policies::<&str>(&[], false), Vec::<String>::new());
    assert_eq!(sanitize_policies::<&str>(&[], true), s(&["default"]));
}

#[test]
fn child_policies_table() {
    let parent_pki = s(&["default", "pki"]);
    let root = s(&["root"]);
    let no_default = s(&["pki"]);
    let limited = s(&["pki"]);
    let p = |policies, sudo, num_uses| Parent {
        policies,
        sudo,
        num_uses,
    };
    let req = |policies: &[&str]| ChildRequest {
        policies: s(policies),
        ..ChildRequest::default()
    };
    let cases: Vec<(
        &str,
        Parent,
        ChildRequest,
        Result<Vec<String>, CreateRefusal>,
    )> = vec![
        (
            "inherits",
            p(&parent_pki, false, 0),
            req(&[]),
            Ok(s(&["default", "pki"])),
        ),
        (
            "inherits without default",
            p(&no_default, false, 0),
            req(&[]),
            Ok(s(&["pki"])),
        ),
        (
            "subset + default",
            p(&parent_pki, false, 0),
            req(&["PKI"]),
            Ok(s(&["default", "pki"])),
        ),
        (
            "default counts too, as in Vault",
            p(&no_default, false, 0),
            req(&["default"]),
            Err(CreateRefusal::NotSubset {
                missing: s(&["default"]),
            }),
        ),
        (
            "not a subset",
            p(&parent_pki, false, 0),
            req(&["pki", "admin", "ops"]),
            Err(CreateRefusal::NotSubset {
                missing: s(&["admin", "ops"]),
            }),
        ),
        (
            "root may give anything",
            p(&root, true, 0),
            req(&["admin"]),
            Ok(s(&["admin", "default"])),
        ),
        (
            "root child of root",
            p(&root, true, 0),
            req(&[]),
            Ok(s(&["root"])),
        ),
        (
            "sudo non-root cannot mint root",
            p(&parent_pki, true, 0),
            req(&["root"]),
            Err(CreateRefusal::RootFromNonRoot),
        ),
        (
            "no root through subset either",
            p(&parent_pki, false, 0),
            req(&["root"]),
            Err(CreateRefusal::NotSubset {
                missing: s(&["root"]),
            }),
        ),
        (
            "restricted use",
            p(&limited, false, 3),
            req(&[]),
            Err(CreateRefusal::RestrictedUse),
        ),
        (
            "orphan needs sudo",
            p(&parent_pki, false, 0),
            ChildRequest {
                no_parent: true,
                ..ChildRequest::default()
            },
            Err(CreateRefusal::OrphanNeedsSudo),
        ),
        (
            "period needs sudo",
            p(&parent_pki, false, 0),
            ChildRequest {
                period: 60,
                ..ChildRequest::default()
            },
            Err(CreateRefusal::PeriodNeedsSudo),
        ),
        (
            "no_default_policy",
            p(&parent_pki, false, 0),
            ChildRequest {
                policies: s(&["pki"]),
                no_default_policy: true,
                ..ChildRequest::default()
            },
            Ok(s(&["pki"])),
        ),
        (
            "internal policy",
            p(&root, true, 0),
            req(&["response-wrapping"]),
            Err(CreateRefusal::NonAssignable("response-wrapping".into())),
        ),
    ];
    for (what, parent, r, want) in cases {
        let got = child_token(&parent, &r).map(|c| c.policies);
        assert_eq!(got, want, "{what}");
    }
    let orphan = child_token(
        &p(&parent_pki, false, 0),
        &ChildRequest {
            create_orphan: true,
            ..ChildRequest::default()
        },
    )
    .unwrap();
    assert!(orphan.orphan);
    assert_eq!(
        CreateRefusal::NotSubset {
            missing: s(&["admin"])
        }
        .to_string(),
        "child policies must be subset of parent: the parent token lacks \"admin\""
    );
}

#[test]
fn uses_are_counted_down_to_revocation() {
    assert_eq!(use_token(0), Use::Unlimited);
    assert_eq!(use_token(1), Use::Last);
    assert_eq!(use_token(3), Use::Counted { remaining: 2 });
}

#[test]
fn lifetimes_create_expire_and_renew() {
    let sys = SystemTtl {
        default_ttl: 3600,
        max_ttl: 24 * 3600,
    };
    let inputs = |ttl, max, explicit, period| LeaseInputs {
        increment: 0,
        backend_ttl: ttl,
        period,
        backend_max_ttl: max,
        explicit_max_ttl: explicit,
    };
    // A role token: 10m TTL, 30m max.
    let (life, w) = Lifetime::create(sys, inputs(600, 1800, 0, 0), true, false, 1000).unwrap();
    assert!(w.is_empty());
    assert_eq!((life.expires, life.ttl_left(1000)), (Some(1600), 600));
    assert_eq!(life.validity(1599), Validity::Valid);
    assert_eq!(life.validity(1600), Validity::Expired { at: 1600 });
    // Renewed at 1500 by the default: 10m more.
    let (life, ttl, _) = life.renew(sys, 0, 1500).unwrap();
    assert_eq!((ttl, life.expires), (600, Some(2100)));
    // Asked an hour at 2000: capped to the 30m max from issue (2800).
    let (life, ttl, w) = life.renew(sys, 3600, 2000).unwrap();
    assert_eq!((ttl, life.expires, w.len()), (800, Some(2800), 1));
    // Past the max: refused.
    let at_max = Lifetime {
        expires: Some(3000),
        ..life
    };
    assert_eq!(
        at_max.renew(sys, 0, 2800),
        Err(RenewRefusal::Ttl(TtlError::PastMaxTtl { max_end: 2800 }))
    );
    assert_eq!(life.renew(sys, 0, 2800), Err(RenewRefusal::Expired));
    // Not renewable.
    let (fixed, _) = Lifetime::create(sys, inputs(600, 0, 0, 0), false, false, 0).unwrap();
    assert_eq!(fixed.renew(sys, 0, 10), Err(RenewRefusal::NotRenewable));
    // A root token without a TTL never expires and is not renewable.
    let (root, _) = Lifetime::create(sys, inputs(0, 0, 0, 0), true, true, 0).unwrap();
    assert_eq!((root.expires, root.renewable), (None, false));
    assert_eq!(root.validity(i64::MAX), Validity::Valid);
    assert_eq!(root.renew(sys, 0, 10), Err(RenewRefusal::NotRenewable));
    // ... unless it has an explicit max.
    let (root, _) = Lifetime::create(sys, inputs(0, 0, 7200, 0), true, true, 0).unwrap();
    assert_eq!(root.expires, Some(7200));
    // A non-root token without TTL gets the system default.
    let (plain, _) = Lifetime::create(sys, inputs(0, 0, 0, 0), true, false, 0).unwrap();
    assert_eq!(plain.expires, Some(3600));
    // A periodic token renews to its period past the system max.
    let (per, _) = Lifetime::create(sys, inputs(0, 0, 0, 600), true, false, 0).unwrap();
    let (per, ttl, _) = per.renew(sys, 0, 500).unwrap();
    assert_eq!((ttl, per.expires), (600, Some(1100)));
    let late = Lifetime {
        expires: Some(30 * 3600 + 10),
        ..per
    };
    let (late, ttl, _) = late.renew(sys, 0, 30 * 3600).unwrap();
    assert_eq!((ttl, late.expires), (600, Some(30 * 3600 + 600)));
}

#[test]
fn token_roles_decide_policies_orphans_and_refusals() {
    let held = vec!["default".to_string(), "issuer".to_string()];
    let parent = Parent {
        policies: &held,
        sudo: false,
        num_uses: 0,
    };
    let role = |allowed: &[&str], disallowed: &[&str], orphan: bool| TokenRole {
        allowed_policies: allowed.iter().map(|s| s.to_string()).collect(),
        disallowed_policies: disallowed.iter().map(|s| s.to_string()).collect(),
        orphan,
        period: 0,
        no_default_policy: false,
    };
    let ask = |p: &[&str]| ChildRequest {
        policies: p.iter().map(|s| s.to_string()).collect(),
        ..ChildRequest::default()
    };
    let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // (role, request, outcome)
    let cases: Vec<(TokenRole, ChildRequest, Result<(Vec<String>, bool), String>)> = vec![
        // allowed_policies given when none asked, beyond the parent's, orphan from the role.
        (role(&["signer"], &[], true), ask(&[]), Ok((v(&["default", "signer"]), true))),
        (role(&["signer", "reader"], &[], false), ask(&["reader"]), Ok((v(&["default", "reader"]), false))),
        (
            role(&["signer"], &[], false),
            ask(&["admin"]),
            Err("token policies (\"admin\") must be subset of the role's allowed policies (\"signer\")".into()),
        ),
        // Without allowed_policies: the parent's rules.
        (role(&[], &[], false), ask(&[]), Ok((v(&["default", "issuer"]), false))),
        (
            role(&[], &[], false),
            ask(&["admin"]),
            Err("child policies must be subset of parent: the parent token lacks \"admin\"".into()),
        ),
        (
            role(&[], &["issuer"], false),
            ask(&[]),
            Err("token policies (\"default\", \"issuer\") contain disallowed policies (\"issuer\")".into()),
        ),
        (
            role(&["signer", "admin"], &["admin"], false),
            ask(&["admin"]),
            Err("token policies (\"admin\", \"default\") contain disallowed policies (\"admin\")".into()),
        ),
    ];
    for (role, req, want) in cases {
        let got = role_child_token(&parent, &req, &role)
            .map(|c| (c.policies, c.orphan))
            .map_err(|e| e.to_string());
        assert_eq!(got, want, "{role:?} {req:?}");
    }
    let limited = Parent {
        policies: &held,
        sudo: false,
        num_uses: 3,
    };
    assert_eq!(
        role_child_token(&limited, &ask(&[]), &role(&["signer"], &[], false))
            .unwrap_err()
            .to_string(),
        "restricted use token cannot generate child tokens"
    );
}
