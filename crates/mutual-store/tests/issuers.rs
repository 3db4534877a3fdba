//! Issuers and keys per scope on a real SQLite store: a CA written the way releases before
//! issuers wrote it becomes its scope's default issuer when the store is opened (once, keeping
//! a mount's ID), the default is the scope's CA row, and import refuses a key that is not the
//! CA's before anything is stored.

use mutual_pki::{
    ca::{self, RootRequest},
    key::KeyType,
};
use mutual_store::{MountRecord, NewCa, Store};
use time::OffsetDateTime;

fn root(cn: &str) -> ca::CaMaterial {
    let req = RootRequest {
        common_name: cn.into(),
        key_type: KeyType::from_parts("ec", 256).unwrap(),
        ttl: std::time::Duration::from_secs(3600),
        ..RootRequest::default()
    };
    ca::generate_root(&req, OffsetDateTime::now_utc()).unwrap()
}

#[tokio::test]
async fn an_older_store_gains_one_default_issuer_per_ca_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::create(&data).await.unwrap();
    let mount = MountRecord::new("pki", "pki");
    store.create_mount(&mount).await.unwrap();
    // Written as before issuers: a CA row only (put_ca adopts nothing).
    for name in ["pki", "root"] {
        let m = root(name);
        store
            .put_ca(&NewCa {
                name,
                cert_pem: &m.cert_pem,
                key: &m.key,
                parent: None,
                chain_pem: "",
            })
            .await
            .unwrap();
    }
    assert!(store.list_issuers("pki").await.unwrap().is_empty());
    drop(store);
    for _ in 0..2 {
        let store = Store::open(&data).await.unwrap();
        for scope in ["pki", "root"] {
            let issuers = store.list_issuers(scope).await.unwrap();
            assert_eq!(
                issuers.len(),
                1,
                "{scope}: one issuer, however often opened"
            );
            let d = store.issuer_defaults(scope).await.unwrap();
            assert_eq!(d.default, issuers[0].id);
            assert_eq!(store.list_keys(scope).await.unwrap().len(), 1);
            let ca = store.get_ca(scope).await.unwrap();
            assert_eq!(
                ca.cert_der, issuers[0].cert_der,
                "the CA row is the default"
            );
        }
        // A mount keeps the issuer ID it always answered (its UUID).
        assert_eq!(store.list_issuers("pki").await.unwrap()[0].id, mount.uuid);
    }
}

#[tokio::test]
async fn import_refuses_a_foreign_key_and_switching_the_default_moves_the_ca_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("data")).await.unwrap();
    let (a, b) = (root("Import A"), root("Import B"));
    let err = store
        .import_ca("pki", std::slice::from_ref(&a.cert_pem), Some(&b.key))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Import A"), "{err}");
    assert!(store.list_issuers("pki").await.unwrap().is_empty());
    assert!(store.list_keys("pki").await.unwrap().is_empty());

    let ia = store
        .import_ca("pki", std::slice::from_ref(&a.cert_pem), Some(&a.key))
        .await
        .unwrap();
    let again = store
        .import_ca("pki", std::slice::from_ref(&a.cert_pem), Some(&a.key))
        .await
        .unwrap();
    assert_eq!(ia.id, again.id, "idempotent");
    let ib = store
        .import_ca("pki", std::slice::from_ref(&b.cert_pem), Some(&b.key))
        .await
        .unwrap();
    assert_eq!(
        store.get_ca("pki").await.unwrap().cert_pem,
        a.cert_pem,
        "first stays default"
    );
    let mut d = store.issuer_defaults("pki").await.unwrap();
    d.default = ib.id.clone();
    store.set_issuer_defaults("pki", &d).await.unwrap();
    assert_eq!(store.get_ca("pki").await.unwrap().cert_pem, b.cert_pem);
}

#[tokio::test]
async fn a_local_ca_keeps_its_urls_through_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("data")).await.unwrap();
    let req = RootRequest {
        common_name: "Urls Root".into(),
        ttl: std::time::Duration::from_secs(3600),
        ..RootRequest::default()
    };
    store.init_root("root", &req).await.unwrap();
    let urls = mutual_pki::ca::Urls {
        issuing_certificates: vec!["http://127.0.0.1:1/ca".into()],
        crl_distribution_points: vec!["http://127.0.0.1:1/crl".into()],
        ocsp_servers: vec![],
    };
    store.set_urls("root", &urls).await.unwrap();
    let now = OffsetDateTime::now_utc();
    let r = store.stage_rotation("root", now, None, now).await.unwrap();
    // No leaf of the old root to wait for: switched and retired at once.
    assert_eq!(r.phase, mutual_pki::rotation::Phase::Retired);
    let ca = store.get_ca("root").await.unwrap();
    assert_eq!(ca.urls, urls, "the new default keeps the CA's URLs");
    assert_ne!(
        ca.cert_der,
        store.list_issuers("root").await.unwrap()[0].cert_der
    );
}
