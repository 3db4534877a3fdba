//! The entries of auth methods other than AppRole — `userpass` users (with their password
//! hash), `cert` certificate roles, token roles — and the audit devices: each a name and a
//! JSON body that the server writes and reads, kept by (mount, name). The rules are
//! `mutual-auth`'s; this file only stores.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, Store, StoreError};

/// An audit device enabled through `sys/audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditDevice {
    /// Its path (`file`).
    pub path: String,
    /// Its type (`file`).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Its options (`file_path`, `hmac_accessor`, …) as JSON.
    pub options: String,
    /// The key its HMACs are made with (never shown through the API).
    pub salt: Vec<u8>,
}

impl Store {
    /// Writes (creates or replaces) the entry `name` of the auth mount `mount`.
    pub async fn put_auth_entry(
        &self,
        mount: &str,
        name: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_entries (mount, name, body) VALUES ($1, $2, $3) \
             ON CONFLICT (mount, name) DO UPDATE SET body = excluded.body",
        )
        .bind(mount)
        .bind(name)
        .bind(body)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The entry `name` of `mount`, if any.
    pub async fn get_auth_entry(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT body FROM auth_entries WHERE mount = $1 AND name = $2")
            .bind(mount)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| r.get("body")))
    }

    /// Every entry of `mount`, by name.
    pub async fn list_auth_entries(
        &self,
        mount: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows =
            sqlx::query("SELECT name, body FROM auth_entries WHERE mount = $1 ORDER BY name")
                .bind(mount)
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| (r.get("name"), r.get("body")))
            .collect())
    }

    /// Deletes the entry `name` of `mount` (nothing when there is none).
    pub async fn delete_auth_entry(&self, mount: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM auth_entries WHERE mount = $1 AND name = $2")
            .bind(mount)
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Deletes every entry of `mount` (an auth method disabled).
    pub async fn delete_auth_entries(&self, mount: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM auth_entries WHERE mount = $1")
            .bind(mount)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Every audit device.
    pub async fn list_audit_devices(&self) -> Result<Vec<AuditDevice>, StoreError> {
        let rows = sqlx::query(
            "SELECT path, kind, description, options, salt FROM audit_devices ORDER BY path",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| AuditDevice {
                path: r.get("path"),
                kind: r.get("kind"),
                description: r.get("description"),
                options: r.get("options"),
                salt: hex::decode(r.get::<String, _>("salt")).unwrap_or_default(),
            })
            .collect())
    }

    /// Enables an audit device; `Duplicate` when the path is taken.
    pub async fn enable_audit_device(&self, d: &AuditDevice) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_devices (path, kind, description, options, salt, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&d.path)
        .bind(&d.kind)
        .bind(&d.description)
        .bind(&d.options)
        .bind(hex::encode(&d.salt))
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .execute(self.pool())
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Db { message, .. } if message.contains("UNIQUE") => StoreError::Duplicate {
                kind: "audit device",
                name: d.path.clone(),
            },
            other => other,
        })?;
        Ok(())
    }

    /// Disables an audit device (nothing when there is none).
    pub async fn disable_audit_device(&self, path: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM audit_devices WHERE path = $1")
            .bind(path)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
