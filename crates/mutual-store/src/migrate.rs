//! Versioned migrations that both engines run.
//!
//! A store's schema version is the `schema_version` row of `meta`. Opening a store brings it up
//! to [`SCHEMA_VERSION`]: first the baseline (the idempotent statements of `schema::SCHEMA`,
//! the columns of `ADDED_COLUMNS` that an older SQLite store lacks, the revocation feed's
//! counter), then each entry of [`MIGRATIONS`] newer than the store's version, then the new
//! version is written. A store whose version is newer than this build knows is refused, with
//! both versions named, before anything is written. A SQLite store made before versions
//! existed has no row, reads as version 0, and goes through the same path.
//!
//! On PostgreSQL, several nodes may start at once: one migrates at a time, under an advisory
//! lock, and the others then find the work done.

use std::borrow::Cow;

use sqlx::{pool::PoolConnection, Any};

use crate::{
    db::{Engine, Pool},
    error::db_err,
    schema::{SCHEMA, SCHEMA_AFTER_COLUMNS},
    sqlite::ADDED_COLUMNS,
    StoreError,
};

/// The newest schema this build knows.
pub(crate) const SCHEMA_VERSION: i64 = 4;

/// Changes after the baseline, by the version they bring the store to; each statement in the
/// portable dialect (db.rs), adapted per engine by [`for_engine`].
pub(crate) const MIGRATIONS: &[(i64, &[&str])] = &[
    (
    2,
    // One counter per kind of cached state (`tokens`, `policies`, `roles`, …), bumped in the
    // transaction that changes it: a node's periodic re-read compares them with what it
    // loaded, the backstop of PostgreSQL's notifications (docs/high-availability.md).
    &["CREATE TABLE IF NOT EXISTS change_epochs (kind TEXT PRIMARY KEY, epoch BIGINT NOT NULL)"],
),
    // Many issuers and keys per mount (issuers.rs).
    (3, crate::issuers::STATEMENTS),
    // The key that signed each revoked certificate, for per-issuer CRLs (signers.rs).
    (4, crate::signers::STATEMENTS),
];

/// An advisory lock key of mutual's own ("mutu" in ASCII), held while one node migrates.
const PG_MIGRATION_LOCK: i64 = 0x6d75_7475;

/// Objects PostgreSQL needs that SQLite writes differently (its trigger), or has no use for
/// (the CRL number sequence: SQLite's one writer makes the `cas.crl_number` update enough).
const PG_ONLY: &[&str] = &[
    "CREATE OR REPLACE FUNCTION certs_inventory_gone() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN DELETE FROM cert_names WHERE serial = OLD.serial; \
     DELETE FROM cert_issuers WHERE serial = OLD.serial; RETURN OLD; END $$",
    "CREATE OR REPLACE TRIGGER certs_inventory_gone AFTER DELETE ON certs \
     FOR EACH ROW EXECUTE FUNCTION certs_inventory_gone()",
    // CRL numbers of every CA and node come from one sequence, so that they only grow.
    "CREATE SEQUENCE IF NOT EXISTS crl_number",
];

/// A statement of the portable dialect as `engine` runs it; `None` when the engine has its own
/// form of it (SQLite's triggers, written for PostgreSQL in `PG_ONLY`).
pub(crate) fn for_engine(stmt: &str, engine: Engine) -> Option<Cow<'_, str>> {
    match engine {
        Engine::Sqlite => Some(Cow::Borrowed(stmt)),
        Engine::Postgres => {
            if stmt.trim_start().starts_with("CREATE TRIGGER") {
                return None;
            }
            // PostgreSQL's INTEGER is 4 bytes; SQLite's holds 8, as do Unix times and serials.
            Some(Cow::Owned(
                stmt.replace("INTEGER", "BIGINT")
                    .replace("BLOB", "BYTEA")
                    .replace(" WITHOUT ROWID", ""),
            ))
        }
    }
}

async fn exec(conn: &mut PoolConnection<Any>, sql: &str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(&mut **conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// The schema version a store records (0: none, made before versions existed).
pub(crate) async fn recorded_version(conn: &mut PoolConnection<Any>) -> Result<i64, StoreError> {
    let v: Option<String> =
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'schema_version'")
            .fetch_optional(&mut **conn)
            .await
            .map_err(db_err)?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Refuses a version newer than this build knows.
pub(crate) fn check_version(found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Brings the store's schema up to [`SCHEMA_VERSION`].
pub(crate) async fn migrate(pool: &Pool, engine: Engine) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(db_err)?;
    if engine == Engine::Postgres {
        // "relation … already exists, skipping" of each idempotent statement is not news.
        exec(&mut conn, "SET client_min_messages = warning").await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    let result = migrate_on(&mut conn, engine).await;
    if engine == Engine::Postgres {
        // Released with the session anyway; said here so that the pooled connection is clean.
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
    }
    result
}

async fn migrate_on(conn: &mut PoolConnection<Any>, engine: Engine) -> Result<(), StoreError> {
    // `meta` first: it holds the version to check before anything else changes.
    exec(conn, SCHEMA[0]).await?;
    let found = recorded_version(conn).await?;
    check_version(found)?;
    for stmt in SCHEMA {
        if let Some(sql) = for_engine(stmt, engine) {
            exec(conn, &sql).await?;
        }
    }
    for (table, column, def) in ADDED_COLUMNS {
        match engine {
            Engine::Sqlite => add_sqlite_column(conn, table, column, def).await?,
            Engine::Postgres => {
                let def = for_engine(def, engine).unwrap_or(Cow::Borrowed(def));
                exec(
                    conn,
                    &format!("ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {def}"),
                )
                .await?;
            }
        }
    }
    // The feed's counter lives apart from the rows, so that `tidy` deleting the latest revoked
    // certificate never makes a sequence number come round twice; and it is updated first in
    // the revoking transaction, so that on PostgreSQL its row lock orders revocations.
    let after: &[&str] = &[
        "CREATE INDEX IF NOT EXISTS certs_revoked_seq ON certs(revoked_seq) WHERE revoked_seq IS NOT NULL",
        "CREATE TABLE IF NOT EXISTS revocation_seq (one INTEGER PRIMARY KEY CHECK (one = 1), seq INTEGER NOT NULL)",
        "INSERT INTO revocation_seq (one, seq) SELECT 1, COALESCE(MAX(revoked_seq), 0) FROM certs WHERE 1 = 1 \
         ON CONFLICT (one) DO NOTHING",
    ];
    for stmt in after.iter().chain(SCHEMA_AFTER_COLUMNS) {
        if let Some(sql) = for_engine(stmt, engine) {
            exec(conn, &sql).await?;
        }
    }
    if engine == Engine::Postgres {
        for stmt in PG_ONLY {
            exec(conn, stmt).await?;
        }
    }
    for (version, stmts) in MIGRATIONS {
        if *version <= found {
            continue;
        }
        for stmt in *stmts {
            if let Some(sql) = for_engine(stmt, engine) {
                exec(conn, &sql).await?;
            }
        }
    }
    if found < SCHEMA_VERSION {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(SCHEMA_VERSION.to_string())
        .execute(&mut **conn)
        .await
        .map_err(db_err)?;
    }
    Ok(())
}

/// Adds a column that a SQLite store made by an older release lacks; a column added by a
/// concurrent opener is not an error.
async fn add_sqlite_column(
    conn: &mut PoolConnection<Any>,
    table: &str,
    column: &str,
    def: &str,
) -> Result<(), StoreError> {
    let present: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = $1"
    ))
    .bind(column)
    .fetch_one(&mut **conn)
    .await
    .map_err(db_err)?;
    if present > 0 {
        return Ok(());
    }
    match sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {def}"))
        .execute(&mut **conn)
        .await
    {
        Ok(_) => {}
        Err(e) if e.to_string().contains("duplicate column") => {}
        Err(e) => return Err(db_err(e)),
    }
    if column == "revoked_seq" {
        // Certificates revoked before the feed existed get sequence numbers in the order they
        // were revoked, so that a subscriber starting at 0 sees them too.
        exec(
            conn,
            "UPDATE certs SET revoked_seq = (SELECT COUNT(*) FROM certs c2 \
             WHERE c2.revoked_at IS NOT NULL \
             AND (c2.revoked_at, c2.serial) <= (certs.revoked_at, certs.serial)) \
             WHERE revoked_at IS NOT NULL",
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_adapted_to_postgres() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "CREATE TABLE t (a INTEGER NOT NULL, k BLOB)",
                Some("CREATE TABLE t (a BIGINT NOT NULL, k BYTEA)"),
            ),
            (
                "CREATE TABLE n (k TEXT, PRIMARY KEY (k)) WITHOUT ROWID",
                Some("CREATE TABLE n (k TEXT, PRIMARY KEY (k))"),
            ),
            (
                "CREATE TRIGGER IF NOT EXISTS x AFTER DELETE ON t BEGIN END",
                None,
            ),
        ];
        for (stmt, want) in cases {
            assert_eq!(
                for_engine(stmt, Engine::Postgres).as_deref(),
                *want,
                "{stmt}"
            );
            assert_eq!(for_engine(stmt, Engine::Sqlite).as_deref(), Some(*stmt));
        }
    }

    #[test]
    fn a_newer_schema_is_refused_with_both_versions() {
        assert!(check_version(SCHEMA_VERSION).is_ok());
        assert!(check_version(0).is_ok());
        let err = check_version(SCHEMA_VERSION + 5).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "the store's schema is version {}, newer than this mutual knows (version {}); run a mutual at least as new as the one that upgraded it",
                SCHEMA_VERSION + 5,
                SCHEMA_VERSION
            )
        );
    }
}
