//! Schema versions on SQLite: a new store records the version this build knows, a store made
//! before versions existed is brought up to it, and a store from a newer mutual is refused
//! with both versions named, before anything is written.

use mutual_store::{Store, StoreError};

fn version(db: &std::path::Path) -> Option<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'schema_version'",
        [],
        |r| r.get(0),
    )
    .ok()
}

#[tokio::test]
async fn versions_are_recorded_upgraded_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let store = Store::create(&data).await.unwrap();
    drop(store);
    let db = data.join("mutual.db");
    let known = version(&db).expect("a new store records its schema version");
    assert!(known.parse::<i64>().unwrap() >= 2);

    // As an older release left it: no version row, no change counters.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "DELETE FROM meta WHERE key = 'schema_version'; DROP TABLE change_epochs;",
        )
        .unwrap();
    }
    let store = Store::open(&data).await.unwrap();
    assert!(store.change_epochs().await.unwrap().is_empty());
    drop(store);
    assert_eq!(version(&db).as_deref(), Some(known.as_str()));

    // From a newer mutual.
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE meta SET value = '1000' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    }
    let err = Store::open(&data).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found: 1000, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("the store's schema is version 1000, newer than this mutual knows (version {known}); run a mutual at least as new as the one that upgraded it")
    );
    assert_eq!(version(&db).as_deref(), Some("1000"), "nothing was written");
}
