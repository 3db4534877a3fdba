//! API tokens: random secrets shown once and stored only as their SHA-256, each scoped to a
//! list of mounts (`*` for all, the root token's scope).

use aws_lc_rs::digest;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, Store, StoreError};

/// The scope of a token that may do everything, `sys/` included.
pub const ALL_MOUNTS: &str = "*";

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    /// A non-secret name for the token, to revoke or audit it by.
    pub accessor: String,
    /// Free text shown in `lookup-self`.
    pub display_name: String,
    /// Mounts the token may use; `*` means all, and the `sys/` API.
    pub mounts: Vec<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl TokenRecord {
    /// True for a token that may do everything (the root token).
    pub fn is_root(&self) -> bool {
        self.mounts.iter().any(|m| m == ALL_MOUNTS)
    }

    /// True when the token may use `mount`.
    pub fn allows(&self, mount: &str) -> bool {
        self.is_root() || self.mounts.iter().any(|m| m == mount)
    }
}

/// The stored form of a secret: hex SHA-256.
pub fn token_hash(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("the system random generator failed");
    hex::encode(b)
}

impl Store {
    /// Creates a token scoped to `mounts` and returns its secret (shown once, stored hashed).
    pub async fn create_token(
        &self,
        display_name: &str,
        mounts: &[String],
    ) -> Result<(String, TokenRecord), StoreError> {
        let secret = format!("mutual.{}", random_hex(24));
        let record = TokenRecord {
            accessor: random_hex(12),
            display_name: display_name.to_string(),
            mounts: mounts.to_vec(),
            created_at: OffsetDateTime::now_utc(),
        };
        self.put_token(&secret, &record).await?;
        Ok((secret, record))
    }

    /// Stores a token with a secret chosen by the caller (the dev server's root token).
    pub async fn put_token(&self, secret: &str, record: &TokenRecord) -> Result<(), StoreError> {
        let mounts =
            serde_json::to_string(&record.mounts).map_err(StoreError::encode("token mounts"))?;
        sqlx::query(
            "INSERT OR REPLACE INTO tokens (hash, accessor, display_name, mounts, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash(secret))
        .bind(&record.accessor)
        .bind(&record.display_name)
        .bind(mounts)
        .bind(record.created_at.unix_timestamp())
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The token whose secret this is, if any.
    pub async fn lookup_token(&self, secret: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT accessor, display_name, mounts, created_at FROM tokens WHERE hash = ?",
        )
        .bind(token_hash(secret))
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| token_from_row(&r)))
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT accessor, display_name, mounts, created_at FROM tokens ORDER BY created_at, accessor",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// Revokes the token given by its secret or its accessor; true when one was revoked.
    pub async fn revoke_token(&self, secret_or_accessor: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE hash = ? OR accessor = ?")
            .bind(token_hash(secret_or_accessor))
            .bind(secret_or_accessor)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }
}

fn token_from_row(r: &sqlx::sqlite::SqliteRow) -> TokenRecord {
    let mounts: String = r.get("mounts");
    TokenRecord {
        accessor: r.get("accessor"),
        display_name: r.get("display_name"),
        mounts: serde_json::from_str(&mounts).unwrap_or_default(),
        created_at: OffsetDateTime::from_unix_timestamp(r.get("created_at"))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
    }
}
