//! The one seam between the store's SQL and the two engines it runs on: SQLite (one file, the
//! embedded default) and PostgreSQL (several nodes on one database).
//!
//! Why sqlx's `Any` driver rather than an enum over `SqlitePool` / `PgPool`: each module writes
//! a query once, `sqlx::query("… $1 …").bind(x).fetch_one(self.pool())`, and the one pool
//! carries it to either engine; with an enum each of the ~150 queries would be a `match` with
//! its binds written twice, and every helper adding a module would have to do the same. What
//! `Any` costs: a row is converted once more, and only the types both engines share decode
//! (`i64`, `String`, `Vec<u8>`, `bool` and their `Option`s). The hot path of issuance does not
//! go through it on SQLite (commit.rs keeps its own rusqlite connection).
//!
//! How to write a store module, or port one written against `SqlitePool`:
//! - `self.pool()` is an [`sqlx::AnyPool`]; a row is [`Row`] (`sqlx::any::AnyRow`): replace
//!   `sqlx::sqlite::SqliteRow` by `crate::db::Row` and `&SqlitePool` by `&crate::db::Pool`;
//! - placeholders are `$1, $2, …` (sqlx-sqlite binds `$N` by its number); SQL built at run time
//!   with `?` goes through [`numbered`] once, at the end;
//! - `INSERT … ON CONFLICT (key) DO NOTHING` or `DO UPDATE SET c = excluded.c`, never
//!   `INSERT OR IGNORE/REPLACE`; `1 = 0` rather than a bare `0` for false;
//! - integers are bound and decoded as `i64` (an `INTEGER` column is 4 bytes on PostgreSQL: the
//!   schema says `BIGINT`, or `INTEGER` that migrate.rs widens); no `pragma`, no SQLite
//!   functions; text rather than `BLOB` for new columns;
//! - tables: append to `schema::SCHEMA`, which both engines run (migrate.rs adapts the types for
//!   PostgreSQL); a change to an existing table is a new entry of `migrate::MIGRATIONS`; a
//!   `CREATE TRIGGER` (SQLite's form) is skipped on PostgreSQL, so add its PL/pgSQL twin to
//!   `migrate::PG_ONLY`;
//! - a change other nodes cache (tokens, policies, mounts) calls `Store::note_change(kind)`
//!   (notify.rs), so that every node drops or reloads it within a second.

use std::{path::Path, time::Duration};

use sqlx::{any::AnyPoolOptions, Connection, Executor};

use crate::{
    error::{busy_secs, db_err},
    StoreError,
};

/// The pool every store module queries.
pub(crate) type Pool = sqlx::AnyPool;
/// A row of [`Pool`].
pub(crate) type Row = sqlx::any::AnyRow;

/// Which engine holds the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One SQLite file in a data directory.
    Sqlite,
    /// A PostgreSQL database, shared by any number of nodes.
    Postgres,
}

/// True for a `postgres://` or `postgresql://` URL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` without its password, for logs and messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rsplit_once('@') {
        Some(parts) => parts,
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Replaces each `?` placeholder outside quotes by `$1, $2, …`, in order: for SQL built at run
/// time, so that PostgreSQL reads it too.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// The pool of an SQLite file: WAL, every commit fsynced on a durable store.
pub(crate) async fn sqlite(path: &Path, create: bool, durable: bool) -> Result<Pool, StoreError> {
    sqlx::any::install_default_drivers();
    let mut url = String::from("sqlite://");
    for c in path.to_string_lossy().chars() {
        // The URL's query and fragment start at these; the driver decodes them back.
        match c {
            '%' => url.push_str("%25"),
            '?' => url.push_str("%3F"),
            '#' => url.push_str("%23"),
            c => url.push(c),
        }
    }
    url.push_str(if create { "?mode=rwc" } else { "?mode=rw" });
    let sync = if durable { "FULL" } else { "OFF" };
    let busy_ms = busy_secs() * 1000;
    // One connection first, by hand: a file that is not a database fails here with SQLite's
    // own words, where the pool would retry it until its acquire timeout.
    let mut first = sqlx::AnyConnection::connect(&url).await.map_err(db_err)?;
    first
        .execute("PRAGMA journal_mode = WAL")
        .await
        .map_err(db_err)?;
    let _ = first.close().await;
    AnyPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(busy_secs() + 5))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // A certificate returned to a caller must survive a crash: fsync every commit.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute(format!("PRAGMA synchronous = {sync}").as_str())
                    .await?;
                conn.execute(format!("PRAGMA busy_timeout = {busy_ms}").as_str())
                    .await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
        .connect(&url)
        .await
        .map_err(db_err)
}

/// How long a request waits for a PostgreSQL connection before it fails with a clear error:
/// short, so that a database outage is a prompt 5xx rather than a hung request.
pub(crate) const PG_ACQUIRE: Duration = Duration::from_secs(5);

/// The pool of a PostgreSQL database. Connections are checked before use, so that a node
/// reconnects by itself after the database restarts.
pub(crate) async fn postgres(url: &str) -> Result<Pool, StoreError> {
    sqlx::any::install_default_drivers();
    // One connection first, by hand: a refused connection, a wrong password or a missing
    // database is reported in the server's own words at once, where the pool would retry
    // until its acquire timeout and say only that it timed out.
    let first = tokio::time::timeout(PG_ACQUIRE, sqlx::AnyConnection::connect(url))
        .await
        .map_err(|_| {
            StoreError::Unavailable(format!(
                "cannot reach the database {}: no answer within {} s",
                redact(url),
                PG_ACQUIRE.as_secs()
            ))
        })?
        .map_err(|e| crate::error::connect_err(url, e))?;
    let _ = first.close().await;
    AnyPoolOptions::new()
        .max_connections(16)
        .min_connections(0)
        .acquire_timeout(PG_ACQUIRE)
        .test_before_acquire(true)
        .connect(url)
        .await
        .map_err(|e| crate::error::connect_err(url, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        let cases = [
            ("SELECT 1", "SELECT 1"),
            ("a = ? AND b = ?", "a = $1 AND b = $2"),
            ("x IN (?, ?, ?)", "x IN ($1, $2, $3)"),
            ("k = '?' AND v = ?", "k = '?' AND v = $1"),
        ];
        for (sql, want) in cases {
            assert_eq!(numbered(sql), want, "{sql}");
        }
    }

    #[test]
    fn passwords_are_not_shown() {
        let cases = [
            (
                "postgres://u:secret@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u@h:5432/db", "postgres://u@h:5432/db"),
            ("postgres://h/db", "postgres://h/db"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want);
        }
    }
}
