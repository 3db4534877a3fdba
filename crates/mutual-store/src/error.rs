use std::path::PathBuf;

use thiserror::Error;

/// Why the store could not do what was asked. Each message is one line a user can act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The directory holds no mutual store.
    #[error("\"{}\" is not a mutual store (no mutual.db there); create one with `mutual ca init --data {}`", .0.display(), .0.display())]
    NotAStore(PathBuf),
    /// `ca init` on a directory that already holds a store.
    #[error("\"{}\" already holds a mutual store", .0.display())]
    AlreadyExists(PathBuf),
    /// Another process holds the write lock for longer than we waited.
    #[error(
        "the store is locked by another process (waited {0} s); try again when it has finished"
    )]
    Locked(u64),
    /// The database file is damaged or is not a mutual database.
    #[error("the store's database is corrupt or not a mutual database: {0}")]
    Corrupt(String),
    /// A named thing does not exist.
    #[error("{kind} \"{name}\" not found")]
    NotFound {
        /// `CA`, `role`, `certificate`.
        kind: &'static str,
        /// The name or serial asked for.
        name: String,
    },
    /// A named thing exists already.
    #[error("{kind} \"{name}\" already exists")]
    Duplicate {
        /// `CA`, `role`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The key-encryption key is missing, malformed, or not the one this store was made with.
    #[error("{0}")]
    Kek(String),
    /// Reading or writing files of the data directory.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate writer's task or thread has ended; nothing more can be recorded.
    #[error("the certificate writer has stopped")]
    WriterStopped,
    /// A value could not be encoded for the database.
    #[error("encoding {what} for the store: {source}")]
    Encode {
        /// What was being encoded (`URLs`, `role`, …).
        what: &'static str,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// Anything else the database said, named by its SQLite result code when it has one.
    #[error("database error: {message}{}", code_suffix(.code))]
    Db {
        /// SQLite's extended result code, when the error came from SQLite itself (not from
        /// the pool or the driver).
        code: Option<i32>,
        /// What the database said.
        message: String,
    },
    /// A search asked something the inventory cannot answer (a malformed cursor or filter).
    #[error("{0}")]
    BadQuery(String),
    /// The database cannot be reached or refused the connection (PostgreSQL): the message
    /// names the database (without its password) and what went wrong.
    #[error("{0}")]
    Unavailable(String),
    /// The database was made or upgraded by a newer mutual.
    #[error("the store's schema is version {found}, newer than this mutual knows (version {known}); run a mutual at least as new as the one that upgraded it")]
    SchemaTooNew {
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database holds another application's tables and no mutual store.
    #[error("the database {0} holds tables of another application and no mutual store; give mutual a database of its own")]
    Foreign(String),
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn encode(what: &'static str) -> impl FnOnce(serde_json::Error) -> StoreError {
        move |source| StoreError::Encode { what, source }
    }
}

/// How long a writer waits for another process's write lock before saying so; 10 s unless
/// `MUTUAL_LOCK_TIMEOUT` (a duration such as `2s`) says otherwise. Both drivers wait this long,
/// and [`Locked`](StoreError::Locked) says how long was waited.
pub(crate) fn busy_secs() -> u64 {
    std::env::var("MUTUAL_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| mutual_pki::duration::parse(&v).ok())
        .map_or(10, |d| d.as_secs().max(1))
}

/// What SQLite said, whichever driver carried it (sqlx for the pool, rusqlite for the
/// certificate writer): the input of the store's one translation point, [`translate`].
/// Cloneable, so that one failed batch answers each of its callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbFailure {
    /// SQLite's extended result code; `None` when the failure is not SQLite's (pool, IO,
    /// decoding).
    pub code: Option<i32>,
    /// The message, without the code.
    pub message: String,
    /// PostgreSQL's SQLSTATE (`23505`, `08006`, …), or `CONN` when the connection itself
    /// failed (refused, reset, timed out waiting for one): the database is out of reach.
    pub sqlstate: Option<String>,
}

impl From<&sqlx::Error> for DbFailure {
    fn from(err: &sqlx::Error) -> DbFailure {
        match err {
            sqlx::Error::Database(db) => {
                if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    return DbFailure {
                        code: None,
                        message: pg.message().to_string(),
                        sqlstate: Some(pg.code().to_string()),
                    };
                }
                DbFailure {
                    code: db.code().and_then(|c| c.parse().ok()),
                    message: db.message().to_string(),
                    sqlstate: None,
                }
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => DbFailure {
                code: None,
                message: err.to_string(),
                sqlstate: Some("CONN".into()),
            },
            other => DbFailure {
                code: None,
                message: other.to_string(),
                sqlstate: None,
            },
        }
    }
}

impl From<&rusqlite::Error> for DbFailure {
    fn from(err: &rusqlite::Error) -> DbFailure {
        DbFailure {
            code: err.sqlite_error().map(|e| e.extended_code),
            // For an SQLite failure this is SQLite's message alone.
            message: err.to_string(),
            sqlstate: None,
        }
    }
}

/// The primary result codes the translation tells apart (<https://sqlite.org/rescode.html>).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_NOTADB: i32 = 26;

/// The store's one translation point from a database failure to a [`StoreError`]: a lock
/// held past the busy timeout is [`Locked`](StoreError::Locked), a damaged file
/// [`Corrupt`](StoreError::Corrupt), anything else [`Db`](StoreError::Db) with its code.
pub(crate) fn translate(f: DbFailure) -> StoreError {
    crate::metrics::db_error();
    if let Some(state) = &f.sqlstate {
        // Class 08 (connection exception), 57P01-03 (the server shutting down or starting):
        // the database is out of reach, not the request wrong.
        if state == "CONN" || state.starts_with("08") || state.starts_with("57P") {
            return StoreError::Unavailable(format!("the database is unreachable: {}", f.message));
        }
        return StoreError::Db {
            code: None,
            message: format!("{} (SQLSTATE {state})", f.message),
        };
    }
    // Extended codes (SQLITE_BUSY_SNAPSHOT = 517, …) carry the primary code in the low byte.
    match f.code.map(|c| c & 0xff) {
        Some(SQLITE_BUSY | SQLITE_LOCKED) => StoreError::Locked(busy_secs()),
        Some(SQLITE_CORRUPT | SQLITE_NOTADB) => StoreError::Corrupt(f.message),
        Some(_) => StoreError::Db {
            code: f.code,
            message: f.message,
        },
        // Without a code, only the words say what happened.
        None if f.message.contains("database is locked") => StoreError::Locked(busy_secs()),
        None if f.message.contains("not a database") || f.message.contains("malformed") => {
            StoreError::Corrupt(f.message)
        }
        None => StoreError::Db {
            code: None,
            message: f.message,
        },
    }
}

/// A failure to connect to the PostgreSQL database at `url`, in one line that names it
/// (without its password) and says what to fix.
pub(crate) fn connect_err(url: &str, err: sqlx::Error) -> StoreError {
    let shown = crate::db::redact(url);
    let f = DbFailure::from(&err);
    let why = match f.sqlstate.as_deref() {
        Some("28P01") | Some("28000") => {
            format!("the database {shown} refused the login: {}", f.message)
        }
        Some("3D000") => format!("the database {shown} does not exist: {}", f.message),
        Some("CONN") => format!("cannot reach the database {shown}: {}", f.message),
        _ => match &err {
            sqlx::Error::Configuration(e) => format!("bad database URL {shown}: {e}"),
            _ => format!("cannot connect to the database {shown}: {}", f.message),
        },
    };
    StoreError::Unavailable(why)
}

/// A failure of the sqlx pool, translated.
pub(crate) fn db_err(err: sqlx::Error) -> StoreError {
    translate(DbFailure::from(&err))
}

/// A failure of a rusqlite connection (the certificate writer), translated.
pub(crate) fn sqlite_err(err: rusqlite::Error) -> StoreError {
    translate(DbFailure::from(&err))
}

/// ` (SQLITE_NAME)` for a known result code, ` (SQLite code N)` for another, nothing without.
fn code_suffix(code: &Option<i32>) -> String {
    let Some(code) = *code else {
        return String::new();
    };
    let name = match code & 0xff {
        1 => "SQLITE_ERROR",
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        13 => "SQLITE_FULL",
        14 => "SQLITE_CANTOPEN",
        15 => "SQLITE_PROTOCOL",
        17 => "SQLITE_SCHEMA",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        22 => "SQLITE_NOLFS",
        23 => "SQLITE_AUTH",
        25 => "SQLITE_RANGE",
        _ => return format!(" (SQLite code {code})"),
    };
    format!(" ({name})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: Option<i32>, message: &str) -> DbFailure {
        DbFailure {
            code,
            message: message.into(),
            sqlstate: None,
        }
    }

    #[test]
    fn each_failure_is_translated_by_its_code_then_by_its_words() {
        let wait = busy_secs();
        let locked = format!(
            "the store is locked by another process (waited {wait} s); try again when it has finished"
        );
        let cases: &[(Option<i32>, &str, &str)] = &[
            (Some(5), "database is locked", &locked),
            // SQLITE_BUSY_SNAPSHOT and SQLITE_LOCKED_SHAREDCACHE: extended codes of the same.
            (Some(517), "database is locked", &locked),
            (Some(262), "database table is locked", &locked),
            (None, "database is locked", &locked),
            (
                Some(26),
                "file is not a database",
                "the store's database is corrupt or not a mutual database: file is not a database",
            ),
            (
                None,
                "database disk image is malformed",
                "the store's database is corrupt or not a mutual database: database disk image is malformed",
            ),
            (
                Some(2067),
                "UNIQUE constraint failed: certs.serial",
                "database error: UNIQUE constraint failed: certs.serial (SQLITE_CONSTRAINT)",
            ),
            (
                Some(13),
                "database or disk is full",
                "database error: database or disk is full (SQLITE_FULL)",
            ),
            (Some(99), "odd", "database error: odd (SQLite code 99)"),
            (
                None,
                "pool timed out while waiting for an open connection",
                "database error: pool timed out while waiting for an open connection",
            ),
        ];
        for (code, message, want) in cases {
            let got = translate(failure(*code, message)).to_string();
            assert_eq!(&got, want, "code {code:?}, {message:?}");
        }
    }

    /// PostgreSQL's failures by SQLSTATE: out of reach (connection classes, shutdown, pool
    /// timeouts) is `Unavailable`; anything else keeps its SQLSTATE in the message.
    #[test]
    fn postgres_failures_are_told_apart_by_sqlstate() {
        let pg = |state: &str, message: &str| DbFailure {
            code: None,
            message: message.into(),
            sqlstate: Some(state.into()),
        };
        let cases = [
            (
                pg("57P01", "terminating connection due to administrator command"),
                "the database is unreachable: terminating connection due to administrator command",
            ),
            (
                pg("08006", "connection failure"),
                "the database is unreachable: connection failure",
            ),
            (
                pg("CONN", "pool timed out while waiting for an open connection"),
                "the database is unreachable: pool timed out while waiting for an open connection",
            ),
            (
                pg("23505", "duplicate key value violates unique constraint \"certs_pkey\""),
                "database error: duplicate key value violates unique constraint \"certs_pkey\" (SQLSTATE 23505)",
            ),
        ];
        for (failure, want) in cases {
            assert_eq!(translate(failure).to_string(), want);
        }
    }

    /// A real lock, held by a second connection, through rusqlite as the certificate writer
    /// meets it.
    #[test]
    fn a_lock_met_by_rusqlite_says_the_store_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mutual.db");
        let holder = rusqlite::Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (x INTEGER); BEGIN EXCLUSIVE;")
            .unwrap();
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer.busy_timeout(std::time::Duration::ZERO).unwrap();
        let err = writer
            .execute("INSERT INTO t (x) VALUES (1)", [])
            .unwrap_err();
        assert!(
            matches!(sqlite_err(err), StoreError::Locked(_)),
            "a held lock must read as Locked"
        );
        holder.execute_batch("ROLLBACK").unwrap();
        writer.execute("INSERT INTO t (x) VALUES (1)", []).unwrap();
    }

    #[test]
    fn other_rusqlite_failures_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![7u8; 4096]).unwrap();
        let conn = rusqlite::Connection::open(&junk).unwrap();
        let err = conn
            .execute_batch("SELECT * FROM sqlite_master")
            .unwrap_err();
        assert_eq!(
            sqlite_err(err).to_string(),
            "the store's database is corrupt or not a mutual database: file is not a database"
        );

        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);")
            .unwrap();
        let err = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert_eq!(
            sqlite_err(err).to_string(),
            "database error: UNIQUE constraint failed: t.x (SQLITE_CONSTRAINT)"
        );
        let err = conn
            .query_row("SELECT x FROM t", [], |r| r.get::<_, String>(0))
            .unwrap_err();
        assert!(
            matches!(sqlite_err(err), StoreError::Db { code: None, .. }),
            "a driver error has no SQLite code"
        );
    }
}
