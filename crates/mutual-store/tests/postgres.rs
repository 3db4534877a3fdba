//! The store on a real PostgreSQL (a cluster of the test's own, tests/support/postgres.rs of
//! the `mutual` crate): the same operations as on SQLite, two stores (nodes) on one database,
//! and each way of being refused in one line.

#[path = "../../mutual/tests/support/postgres.rs"]
mod pg;

use std::time::Duration;

use mutual_pki::{
    ca::RootRequest,
    crl::Reason,
    key::KeyType,
    role::{IssueRequest, Role},
    serial::Serial,
};
use mutual_store::{Engine, Kek, OwnedCert, Store, StoreError};
use time::OffsetDateTime;

fn kek() -> Kek {
    Kek::parse(pg::KEK).unwrap()
}

fn owned(serial: &Serial, ca: &str) -> OwnedCert {
    let now = OffsetDateTime::now_utc();
    OwnedCert {
        serial: serial.clone(),
        ca: ca.into(),
        common_name: "x.example.com".into(),
        not_before: now,
        not_after: now + Duration::from_secs(3600),
        cert_pem: String::new(),
        role: Some("service".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database_and_agree() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("nodes");
    let a = Store::open_postgres_with(&url, kek()).await.unwrap();
    let b = Store::open_postgres_with(&url, kek()).await.unwrap();
    assert_eq!(a.engine(), Engine::Postgres);

    // A root made on A is read on B, its key opened with the shared KEK; the key is sealed.
    let req = RootRequest {
        common_name: "PG Root".into(),
        key_type: KeyType::EcP256,
        ..RootRequest::default()
    };
    a.init_root("root", &req).await.unwrap();
    let on_b = b.get_ca("root").await.unwrap();
    assert!(on_b.cert_pem.contains("BEGIN CERTIFICATE"));
    let sealed = cluster.sql("nodes", "SELECT encode(key_sealed, 'hex') FROM cas");
    assert!(!sealed.contains("2d2d2d2d2d"), "no PEM in the clear");
    let role = Role {
        name: "service".into(),
        issuer: "root".into(),
        allowed_domains: vec!["example.com".into()],
        allow_subdomains: true,
        ..Role::default()
    };
    a.put_role(&role).await.unwrap();
    assert_eq!(b.get_role("service").await.unwrap().issuer, "root");
    let issued = b
        .issue(
            "service",
            &IssueRequest {
                common_name: "www.example.com".into(),
                ..IssueRequest::default()
            },
        )
        .await
        .unwrap();
    assert!(a.get_cert(&issued.serial).await.is_ok());

    // Group commit on both nodes at once: every answered serial is stored, once.
    let (wa, wb) = (a.cert_writer().unwrap(), b.cert_writer().unwrap());
    let mut tasks = Vec::new();
    let mut serials = Vec::new();
    for i in 0..200 {
        let s = Serial::random();
        serials.push(s.clone());
        let w = if i % 2 == 0 { wa.clone() } else { wb.clone() };
        tasks.push(tokio::spawn(
            async move { w.record(owned(&s, "root")).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let stored = cluster.sql("nodes", "SELECT COUNT(*) FROM certs WHERE ca = 'root'");
    assert_eq!(stored, "201");
    // The same serial twice is refused by the primary key, and its caller told.
    let again = wa.record(owned(&serials[0], "root")).await.unwrap_err();
    assert!(again.to_string().contains("23505"), "{again}");

    // Revocations from both nodes get numbers in commit order, seen by both.
    let at = OffsetDateTime::now_utc();
    for (i, s) in serials.iter().take(6).enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        node.revoke(s, Reason::KeyCompromise, at).await.unwrap();
    }
    let seen = b.revocations_after(0, 100).await.unwrap();
    let seqs: Vec<u64> = seen.iter().map(|(_, e)| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    // CRL numbers from the one sequence only grow, whichever node draws them.
    let n1 = a.next_crl_number("root").await.unwrap();
    let n2 = b.next_crl_number("root").await.unwrap();
    let n3 = a.next_crl_number("root").await.unwrap();
    assert!(n1 < n2 && n2 < n3, "{n1} {n2} {n3}");

    // A change on A reaches B's listener.
    let mut changes = b.listen().await.unwrap().expect("a listener on PostgreSQL");
    a.note_change("tokens").await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), changes.recv())
        .await
        .expect("a notification within 5 s");
    assert_eq!(got, Some(mutual_store::Change::Changed("tokens".into())));
    let epochs = b.change_epochs().await.unwrap();
    assert_eq!(epochs, vec![("tokens".to_string(), 1)]);
    assert!(a.reachable().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_way_of_being_refused_is_one_line_naming_it() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("refusals");
    Store::open_postgres_with(&url, kek()).await.unwrap();

    // A wrong KEK.
    let other = Kek::parse(&"ab".repeat(32)).unwrap();
    let err = Store::open_postgres_with(&url, other).await.unwrap_err();
    assert!(matches!(err, StoreError::Kek(_)), "{err}");
    let shown = format!("postgres://mutual:***@127.0.0.1:{}/refusals", cluster.port);
    assert_eq!(
        err.to_string(),
        format!("MUTUAL_KEK does not open the store in {shown}: it is not the key the store was made with")
    );

    // A schema from a newer mutual.
    cluster.sql(
        "refusals",
        "UPDATE meta SET value = '999' WHERE key = 'schema_version'",
    );
    let err = Store::open_postgres_with(&url, kek()).await.unwrap_err();
    assert!(
        err.to_string().starts_with(
            "the store's schema is version 999, newer than this mutual knows (version "
        ),
        "{err}"
    );

    // A database of another application.
    let foreign = cluster.database("other_app");
    cluster.sql("other_app", "CREATE TABLE invoices (id BIGINT PRIMARY KEY)");
    let err = Store::open_postgres_with(&foreign, kek())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("the database postgres://mutual:***@127.0.0.1:{}/other_app holds tables of another application and no mutual store; give mutual a database of its own", cluster.port)
    );

    // A wrong password, a database that does not exist, nobody listening.
    let bad_pw = url.replace(pg::PASSWORD, "wrong");
    let err = Store::open_postgres_with(&bad_pw, kek()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("the database {shown} refused the login: "))
            && msg.contains("password"),
        "{msg}"
    );
    let missing = cluster.url("nowhere");
    let err = Store::open_postgres_with(&missing, kek())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nobody = format!("postgres://mutual@127.0.0.1:{closed}/x");
    let err = Store::open_postgres_with(&nobody, kek()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("cannot reach the database {nobody}: ")),
        "{err}"
    );
    assert!(err.to_string().contains("refused"), "the OS's words: {err}");
    let unreachable = err.to_string();
    for e in [&msg, &unreachable] {
        assert!(!e.contains('\n'), "one line: {e}");
        assert!(!e.contains(pg::PASSWORD), "no password shown: {e}");
    }
}
