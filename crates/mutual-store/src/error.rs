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
    /// Anything else the database said.
    #[error("database error: {0}")]
    Db(String),
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

pub(crate) fn map_db(err: sqlx::Error, busy_secs: u64) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        let msg = db.message().to_string();
        let code = db.code().unwrap_or_default();
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6) after the busy timeout.
        if code == "5" || code == "6" || msg.contains("database is locked") {
            return StoreError::Locked(busy_secs);
        }
        // SQLITE_CORRUPT (11), SQLITE_NOTADB (26).
        if code == "11"
            || code == "26"
            || msg.contains("not a database")
            || msg.contains("malformed")
        {
            return StoreError::Corrupt(msg);
        }
        return StoreError::Db(msg);
    }
    StoreError::Db(err.to_string())
}
