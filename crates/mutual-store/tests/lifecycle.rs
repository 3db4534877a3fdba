//! Bootstrap tokens, the revocation feed's sequence numbers and the migration of stores made
//! before them, on a real SQLite store in a temporary directory.

use std::time::Duration;

use mutual_pki::{crl::Reason, serial::Serial};
use mutual_store::{NewCert, Store, TokenSpec, TokenUse};
use time::OffsetDateTime;

async fn record(store: &Store, serial: &Serial, ca: &str) {
    let now = OffsetDateTime::now_utc();
    store
        .record_cert(&NewCert {
            serial,
            ca,
            common_name: "x.example.com",
            not_before: now,
            not_after: now + Duration::from_secs(3600),
            cert_pem: "",
            role: Some("service"),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_bootstrap_token_gives_exactly_its_uses_even_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("data")).await.unwrap();
    let (secret, rec) = store
        .create_token_with(&TokenSpec {
            display_name: "bootstrap".into(),
            mounts: vec!["pki".into()],
            role: Some("service".into()),
            num_uses: 3,
            ttl: Some(Duration::from_secs(3600)),
            ..TokenSpec::default()
        })
        .await
        .unwrap();
    assert_eq!(rec.role.as_deref(), Some("service"));
    assert!(rec.expires_at.is_some());
    let now = OffsetDateTime::now_utc();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (store, secret) = (store.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            store.take_token_use(&secret, now).await.unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        match t.await.unwrap() {
            TokenUse::Taken { of: 3, .. } => taken += 1,
            TokenUse::UsedUp { of: 3 } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(taken, 3);
    // A use given back can be taken again, once.
    store.return_token_use(&secret).await.unwrap();
    assert_eq!(
        store.take_token_use(&secret, now).await.unwrap(),
        TokenUse::Taken { used: 3, of: 3 }
    );
    assert_eq!(
        store.take_token_use(&secret, now).await.unwrap(),
        TokenUse::UsedUp { of: 3 }
    );
    let later = now + Duration::from_secs(7200);
    assert!(matches!(
        store.take_token_use(&secret, later).await.unwrap(),
        TokenUse::Expired { .. }
    ));
    assert_eq!(
        store.take_token_use("mutual.nope", now).await.unwrap(),
        TokenUse::Gone
    );
    let looked = store.lookup_token(&secret).await.unwrap().unwrap();
    assert_eq!((looked.uses, looked.num_uses), (3, 3));
}

#[tokio::test]
async fn revocations_are_numbered_and_paged_by_since() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(&dir.path().join("data")).await.unwrap();
    let serials: Vec<Serial> = (0..4).map(|_| Serial::random()).collect();
    for (i, s) in serials.iter().enumerate() {
        let ca = if i == 1 { "other" } else { "pki" };
        record(&store, s, ca).await;
    }
    let (none, next) = store.revocations_since("pki", 0, 100).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(next, 0);
    let at = OffsetDateTime::now_utc();
    for s in &serials {
        store.revoke(s, Reason::KeyCompromise, at).await.unwrap();
    }
    // Revoking again gives no new number.
    store
        .revoke(&serials[0], Reason::Superseded, at)
        .await
        .unwrap();
    let (all, next) = store.revocations_since("pki", 0, 100).await.unwrap();
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 3, 4], "the other CA's revocation (2) is skipped");
    assert_eq!(next, 4);
    assert_eq!(all[0].serial, serials[0]);
    assert_eq!(all[0].reason, Reason::KeyCompromise);
    let (page, next) = store.revocations_since("pki", 0, 2).await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(next, 3, "a full page resumes after its last entry");
    let (rest, next) = store.revocations_since("pki", 3, 2).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
    assert_eq!(next, 4);
    let rec = store.get_cert(&serials[0]).await.unwrap();
    assert_eq!(rec.role.as_deref(), Some("service"));
}

#[tokio::test]
async fn a_store_made_before_roles_and_the_feed_is_migrated_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let serials: Vec<Serial> = (0..2).map(|_| Serial::random()).collect();
    {
        let store = Store::create(&data).await.unwrap();
        for s in &serials {
            record(&store, s, "pki").await;
        }
    }
    // Back to the old schema: no role, no sequence numbers; two certificates revoked then.
    {
        let conn = rusqlite::Connection::open(data.join("mutual.db")).unwrap();
        for stmt in [
            // What later versions added, so that the store is as that release left it.
            "DROP INDEX certs_revoked_signer_seq",
            "DROP INDEX certs_revoked_signer",
            "ALTER TABLE certs DROP COLUMN signer",
            "DELETE FROM meta WHERE key = 'schema_version'",
            "DROP INDEX certs_revoked_seq",
            "DROP INDEX certs_role",
            "ALTER TABLE certs DROP COLUMN role",
            "ALTER TABLE certs DROP COLUMN revoked_seq",
            "DROP TABLE revocation_seq",
            "ALTER TABLE tokens DROP COLUMN role",
            "ALTER TABLE tokens DROP COLUMN num_uses",
            "ALTER TABLE tokens DROP COLUMN uses",
            "ALTER TABLE tokens DROP COLUMN expires_at",
        ] {
            conn.execute(stmt, []).unwrap();
        }
        conn.execute(
            "UPDATE certs SET revoked_at = 100, reason = 1 WHERE serial = ?",
            [serials[1].to_hex()],
        )
        .unwrap();
        conn.execute(
            "UPDATE certs SET revoked_at = 200, reason = 4 WHERE serial = ?",
            [serials[0].to_hex()],
        )
        .unwrap();
    }
    let store = Store::open(&data).await.unwrap();
    let (old, next) = store.revocations_since("pki", 0, 100).await.unwrap();
    assert_eq!(
        old.iter()
            .map(|e| (e.seq, e.serial.clone()))
            .collect::<Vec<_>>(),
        [(1, serials[1].clone()), (2, serials[0].clone())],
        "numbered in the order they were revoked"
    );
    assert_eq!(next, 2);
    assert_eq!(store.get_cert(&serials[0]).await.unwrap().role, None);
    let (secret, _) = store.create_token("t", &["pki".into()]).await.unwrap();
    let t = store.lookup_token(&secret).await.unwrap().unwrap();
    assert_eq!((t.role, t.num_uses, t.expires_at), (None, 0, None));
}
