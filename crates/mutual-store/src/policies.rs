//! ACL policies as their text, by name. The store keeps the text only; parsing and checking
//! are `mutual-auth`'s, done by the server before a write.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, Store, StoreError};

impl Store {
    /// Writes (creates or replaces) the policy `name`.
    pub async fn put_policy(&self, name: &str, body: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acl_policies (name, body, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(body)
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        // Every node drops the policies it holds parsed (notify.rs).
        self.note_change("policies").await
    }

    /// The text of the policy `name`, if stored.
    pub async fn get_policy(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM acl_policies WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| r.get("body")))
    }

    /// The names of every stored policy, sorted.
    pub async fn list_policies(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM acl_policies ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| r.get("name")).collect())
    }

    /// Deletes the policy `name`; true when it existed.
    pub async fn delete_policy(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM acl_policies WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        if done.rows_affected() > 0 {
            self.note_change("policies").await?;
        }
        Ok(done.rows_affected() > 0)
    }
}
