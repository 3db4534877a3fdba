//! The inventory on a real SQLite store: certificates issued by the store's authority (and
//! through the group-commit writer, with the token that asked), found by each filter, paged by
//! keyset without gaps or repeats.

use std::{collections::BTreeSet, time::Duration};

use mutual_pki::{
    ca::RootRequest,
    crl::Reason,
    key::KeyType,
    role::{IssueRequest, Role},
};
use mutual_store::{NameKind, Search, SortKey, Store};
use time::OffsetDateTime;

async fn store_with_ca() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("data")).await.unwrap();
    let req = RootRequest {
        common_name: "Inventory Root".into(),
        key_type: KeyType::EcP256,
        ..RootRequest::default()
    };
    store.init_root("root", &req).await.unwrap();
    for (name, ttl) in [("service", 720), ("short", 2)] {
        store
            .put_role(&Role {
                name: name.into(),
                issuer: "root".into(),
                allowed_domains: vec!["example.com".into()],
                allow_subdomains: true,
                allow_localhost: true,
                allow_ip_sans: true,
                allowed_uri_sans: vec!["spiffe://example.org/*".into()],
                max_ttl: Some(Duration::from_secs(ttl * 3600)),
                ttl: Some(Duration::from_secs(ttl * 3600)),
                key_type: "ec".into(),
                key_bits: 256,
                ..Role::default()
            })
            .await
            .unwrap();
    }
    (dir, store)
}

fn req(cn: &str, dns: &[&str], ips: &[&str], uris: &[&str]) -> IssueRequest {
    IssueRequest {
        common_name: cn.into(),
        alt_names: dns.iter().map(|s| s.to_string()).collect(),
        ip_sans: ips.iter().map(|s| s.to_string()).collect(),
        uri_sans: uris.iter().map(|s| s.to_string()).collect(),
        ..IssueRequest::default()
    }
}

fn cns(page: &mutual_store::Page) -> Vec<String> {
    page.certs
        .iter()
        .map(|f| f.cert.common_name.clone())
        .collect()
}

#[tokio::test]
async fn every_filter_finds_what_it_names() {
    let (_dir, store) = store_with_ca().await;
    let alice = store
        .issue(
            "service",
            &req(
                "alice.example.com",
                &["Alice-Api.example.com"],
                &["127.0.0.1"],
                &["spiffe://example.org/ns/a/sa/alice"],
            ),
        )
        .await
        .unwrap();
    store
        .issue("service", &req("alice2.example.com", &[], &[], &[]))
        .await
        .unwrap();
    let bob = store
        .issue("short", &req("bob.example.com", &["localhost"], &[], &[]))
        .await
        .unwrap();
    store
        .revoke_serial(&bob.serial, Reason::KeyCompromise)
        .await
        .unwrap();

    let find = |s: Search| {
        let store = store.clone();
        async move { store.search_certs(&s).await.unwrap() }
    };
    let by_cn = find(Search {
        cn_prefix: Some("alice".into()),
        sort: SortKey::CommonName,
        ..Search::default()
    })
    .await;
    assert_eq!(cns(&by_cn), ["alice.example.com", "alice2.example.com"]);
    assert_eq!(by_cn.next, None);
    assert_eq!(by_cn.certs[0].cert.role.as_deref(), Some("service"));

    for (kind, value) in [
        (NameKind::Dns, "alice-api.EXAMPLE.com"),
        (NameKind::Ip, "127.0.0.1"),
        (NameKind::Uri, "spiffe://example.org/ns/a/sa/alice"),
    ] {
        let page = find(Search {
            san: Some((kind, value.into())),
            ..Search::default()
        })
        .await;
        assert_eq!(cns(&page), ["alice.example.com"], "{kind:?} {value}");
    }
    let names = store.cert_names(&alice.serial).await.unwrap();
    assert!(names.contains(&(NameKind::Dns, "alice-api.example.com".into())));

    let short = find(Search {
        role: Some("short".into()),
        ..Search::default()
    })
    .await;
    assert_eq!(cns(&short), ["bob.example.com"]);
    let revoked = find(Search {
        revoked: Some(true),
        ..Search::default()
    })
    .await;
    assert_eq!(cns(&revoked), ["bob.example.com"]);
    assert_eq!(revoked.certs[0].cert.reason, Some(Reason::KeyCompromise));
    let valid = find(Search {
        revoked: Some(false),
        ca: Some("root".into()),
        sort: SortKey::CommonName,
        ..Search::default()
    })
    .await;
    assert_eq!(cns(&valid), ["alice.example.com", "alice2.example.com"]);

    let now = OffsetDateTime::now_utc();
    let soon = find(Search {
        expires_after: Some(now),
        expires_before: Some(now + Duration::from_secs(24 * 3600)),
        ..Search::default()
    })
    .await;
    assert_eq!(cns(&soon), ["bob.example.com"]);
    let by_serial = find(Search {
        serial: Some(alice.serial.clone()),
        ..Search::default()
    })
    .await;
    assert_eq!(cns(&by_serial), ["alice.example.com"]);
    let nobody = find(Search {
        visible_cas: Some(vec!["other".into()]),
        ..Search::default()
    })
    .await;
    assert!(nobody.certs.is_empty());

    let days = store.issued_per_day(7, None, now).await.unwrap();
    assert_eq!(days.last().map(|d| d.issued), Some(3));
}

/// An issuing path records the names it signed, without reading the certificate back: they
/// must be the names the certificate carries, as the inventory reads them from it.
#[tokio::test]
async fn the_names_recorded_at_issue_are_the_names_in_the_certificate() {
    let (_dir, store) = store_with_ca().await;
    let ca = store.get_ca("root").await.unwrap();
    let role = store.get_role("service").await.unwrap();
    let now = OffsetDateTime::now_utc();
    // (CN, DNS SANs, IP SANs, URI SANs)
    type Row<'a> = (&'a str, &'a [&'a str], &'a [&'a str], &'a [&'a str]);
    let table: &[Row] = &[
        ("a.example.com", &[], &[], &[]),
        (
            "b.example.com",
            &["x.example.com", "b.example.com", "localhost"],
            &[],
            &[],
        ),
        ("C.Example.COM", &["Mixed.Example.com"], &[], &[]),
        (
            "d.example.com",
            &[],
            &["127.0.0.1", "::1", "10.0.0.2", "2001:db8::1"],
            &[],
        ),
        (
            "e.example.com",
            &[],
            &[],
            &["spiffe://example.org/ns/e", "spiffe://example.org/a"],
        ),
        (
            "f.example.com",
            &["f.example.com", "g.example.com"],
            &["192.0.2.1"],
            &["spiffe://example.org/f"],
        ),
    ];
    for (cn, dns, ips, uris) in table {
        let signed = mutual_store::issue_signed(
            &ca,
            &role,
            mutual_store::SYSTEM_MAX_TTL,
            &req(cn, dns, ips, uris),
            now,
        )
        .unwrap();
        let (issued, _) = signed.into_issued(&ca).unwrap();
        assert!(!issued.names.is_empty(), "{cn}: no names");
        assert_eq!(
            issued.names,
            mutual_store::names_of(&issued.cert_pem),
            "{cn}: the names recorded are not the names signed"
        );
    }
}

#[tokio::test]
async fn the_writer_records_names_and_the_token_and_pages_have_no_gaps() {
    let (_dir, store) = store_with_ca().await;
    let writer = store.cert_writer().unwrap();
    let ca = store.get_ca("root").await.unwrap();
    let role = store.get_role("service").await.unwrap();
    let now = OffsetDateTime::now_utc();
    let mut all = BTreeSet::new();
    for i in 0..23 {
        let signed = mutual_store::issue_signed(
            &ca,
            &role,
            mutual_store::SYSTEM_MAX_TTL,
            &req(&format!("svc{i:02}.example.com"), &[], &[], &[]),
            now,
        )
        .unwrap();
        let (_, row) = signed.into_issued(&ca).unwrap();
        all.insert(row.serial.to_hex());
        let by = (i % 2 == 0).then(|| "acc-even".to_string());
        writer.record_by(row, by).await.unwrap();
    }
    let even = store
        .search_certs(&Search {
            issued_by: Some("acc-even".into()),
            limit: 100,
            ..Search::default()
        })
        .await
        .unwrap();
    assert_eq!(even.certs.len(), 12);
    assert!(even
        .certs
        .iter()
        .all(|f| f.issued_by.as_deref() == Some("acc-even")));
    let san = store
        .search_certs(&Search {
            san: Some((NameKind::Dns, "svc07.example.com".into())),
            ..Search::default()
        })
        .await
        .unwrap();
    assert_eq!(cns(&san), ["svc07.example.com"]);

    for (sort, descending) in [
        (SortKey::CommonName, false),
        (SortKey::CommonName, true),
        (SortKey::Expiry, false),
        (SortKey::Issued, true),
        (SortKey::Serial, false),
    ] {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let page = store
                .search_certs(&Search {
                    cn_prefix: Some("svc".into()),
                    sort,
                    descending,
                    limit: 5,
                    cursor: cursor
                        .as_deref()
                        .map(|c| mutual_store::Cursor::decode(c).unwrap()),
                    ..Search::default()
                })
                .await
                .unwrap();
            seen.extend(page.certs.iter().map(|f| f.cert.serial.to_hex()));
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        let unique: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 23, "{sort:?} {descending}");
        assert_eq!(unique, all, "{sort:?} {descending}");
    }
    let first = store
        .search_certs(&Search {
            cn_prefix: Some("svc".into()),
            sort: SortKey::CommonName,
            descending: true,
            limit: 2,
            ..Search::default()
        })
        .await
        .unwrap();
    assert_eq!(cns(&first), ["svc22.example.com", "svc21.example.com"]);
}

#[tokio::test]
async fn a_store_made_before_the_inventory_gets_its_names_on_open() {
    let (dir, store) = store_with_ca().await;
    store
        .issue(
            "service",
            &req("old.example.com", &["legacy.example.com"], &[], &[]),
        )
        .await
        .unwrap();
    // As a store written by a release without the inventory: no side rows, no marker.
    let db = dir.path().join("data/mutual.db");
    drop(store);
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("DELETE FROM cert_names; DELETE FROM meta WHERE key = 'inventory_names';")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let store = Store::open(&dir.path().join("data")).await.unwrap();
    let page = store
        .search_certs(&Search {
            san: Some((NameKind::Dns, "legacy.example.com".into())),
            ..Search::default()
        })
        .await
        .unwrap();
    assert_eq!(cns(&page), ["old.example.com"]);
}
