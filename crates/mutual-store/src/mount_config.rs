//! Per-mount configuration documents (Vault's `config/crl`, `config/auto-tidy`) as JSON text by
//! kind, and the reads that delta CRLs and tidy need: the store's revocation sequence and the
//! removal of expired certificates (a delta CRL's entries: signers.rs).

use sqlx::Row;

use crate::{error::db_err, Store, StoreError};

impl Store {
    /// The configuration document `kind` of `mount`, if written.
    pub async fn mount_config(
        &self,
        mount: &str,
        kind: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM mount_config WHERE mount = $1 AND kind = $2")
            .bind(mount)
            .bind(kind)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| r.get("body")))
    }

    /// Writes (creates or replaces) the configuration document `kind` of `mount`.
    pub async fn put_mount_config(
        &self,
        mount: &str,
        kind: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO mount_config (mount, kind, body) VALUES ($1, $2, $3) ON CONFLICT (mount, kind) DO UPDATE SET body = excluded.body")
            .bind(mount)
            .bind(kind)
            .bind(body)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// The store's latest revocation sequence number: a complete CRL built after reading it
    /// holds every revocation up to it.
    pub async fn revocation_seq(&self) -> Result<u64, StoreError> {
        let seq: Option<i64> = sqlx::query_scalar("SELECT seq FROM revocation_seq")
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(seq.unwrap_or(0).max(0) as u64)
    }

    /// How many certificates of CA `ca` are stored, and how many of them are revoked.
    pub async fn cert_counts(&self, ca: &str) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS total, COUNT(revoked_at) AS revoked FROM certs WHERE ca = $1",
        )
        .bind(ca)
        .fetch_one(self.pool())
        .await
        .map_err(db_err)?;
        let n = |k: &str| row.get::<i64, _>(k).max(0) as u64;
        Ok((n("total"), n("revoked")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mutual_pki::{crl::Reason, serial::Serial};
    use time::OffsetDateTime;

    #[tokio::test]
    async fn documents_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).await.unwrap();
        assert_eq!(store.mount_config("pki", "crl").await.unwrap(), None);
        store
            .put_mount_config("pki", "crl", "{\"a\":1}")
            .await
            .unwrap();
        store
            .put_mount_config("pki", "crl", "{\"a\":2}")
            .await
            .unwrap();
        assert_eq!(
            store.mount_config("pki", "crl").await.unwrap().as_deref(),
            Some("{\"a\":2}")
        );
        assert_eq!(store.mount_config("pki", "auto-tidy").await.unwrap(), None);

        let now = OffsetDateTime::now_utc();
        let serials: Vec<Serial> = (0..3).map(|_| Serial::random()).collect();
        for s in &serials {
            store
                .record_cert(&crate::NewCert {
                    serial: s,
                    ca: "pki",
                    common_name: "a.example.com",
                    not_before: now,
                    not_after: now + time::Duration::hours(1),
                    cert_pem: "",
                    role: None,
                })
                .await
                .unwrap();
        }
        store
            .revoke(&serials[0], Reason::Superseded, now)
            .await
            .unwrap();
        store
            .revoke(&serials[2], Reason::KeyCompromise, now)
            .await
            .unwrap();
        assert_eq!(store.cert_counts("pki").await.unwrap(), (3, 2));
    }
}
