//! Changes committed on one node, told to the others: on PostgreSQL a `NOTIFY` on
//! [`CHANNEL`], sent inside the changing transaction (so it is delivered only if that commits),
//! and a per-kind counter in `change_epochs` that a node re-reads periodically, the backstop for
//! a notification lost while its listening connection was down. On SQLite, one process or
//! several on one file, only the counters exist; the periodic re-read does the rest.

use sqlx::{Any, Transaction};
use tokio::sync::mpsc;

use crate::{db::Engine, error::db_err, Store, StoreError};

/// The notification channel of mutual's nodes.
pub const CHANNEL: &str = "mutual_changes";

/// A change committed by some node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A certificate revocation, with its feed sequence number.
    Revoked(u64),
    /// Cached state of this kind changed (`tokens`, `policies`, `mounts`, …).
    Changed(String),
    /// The listening connection was lost and is back: anything may have changed meanwhile.
    Resync,
}

impl Change {
    fn parse(payload: &str) -> Change {
        match payload.split_once(' ') {
            Some(("revoked", n)) => n.parse().map(Change::Revoked).unwrap_or(Change::Resync),
            Some(("changed", kind)) => Change::Changed(kind.to_string()),
            _ => Change::Resync,
        }
    }
}

/// Inside a revoking transaction: tells the other nodes at its commit.
pub(crate) async fn revoked_in(
    tx: &mut Transaction<'_, Any>,
    engine: Engine,
    seq: i64,
) -> Result<(), StoreError> {
    if engine == Engine::Postgres {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(format!("revoked {seq}"))
            .execute(&mut **tx)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

impl Store {
    /// Records that cached state of `kind` changed (a token revoked, a policy or role written):
    /// its counter is bumped and, on PostgreSQL, every node is told at once.
    pub async fn note_change(&self, kind: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO change_epochs (kind, epoch) VALUES ($1, 1) \
             ON CONFLICT (kind) DO UPDATE SET epoch = change_epochs.epoch + 1",
        )
        .bind(kind)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(format!("changed {kind}"))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }

    /// Every kind's change counter, by kind: compared with the last read, it says what to
    /// reload.
    pub async fn change_epochs(&self) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as("SELECT kind, epoch FROM change_epochs ORDER BY kind")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    /// Subscribes to the changes every node commits (PostgreSQL; `None` on SQLite). The
    /// listener reconnects by itself; after a reconnection it says [`Change::Resync`].
    pub async fn listen(&self) -> Result<Option<mpsc::Receiver<Change>>, StoreError> {
        let Some(url) = self.url.clone() else {
            return Ok(None);
        };
        let mut listener = sqlx::postgres::PgListener::connect(&url)
            .await
            .map_err(|e| crate::error::connect_err(&url, e))?;
        listener.listen(CHANNEL).await.map_err(db_err)?;
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                // `try_recv` reconnects after a lost connection, and says so with `None`.
                let change = match listener.try_recv().await {
                    Ok(Some(n)) => Change::parse(n.payload()),
                    Ok(None) => Change::Resync,
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                        Change::Resync
                    }
                };
                if tx.send(change).await.is_err() {
                    return;
                }
            }
        });
        Ok(Some(rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_read_back() {
        let cases = [
            ("revoked 42", Change::Revoked(42)),
            ("changed tokens", Change::Changed("tokens".into())),
            ("revoked x", Change::Resync),
            ("junk", Change::Resync),
        ];
        for (payload, want) in cases {
            assert_eq!(Change::parse(payload), want, "{payload}");
        }
    }
}
