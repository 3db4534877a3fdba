//! Auth methods enabled through `sys/auth`, AppRole roles, and their secret IDs — stored as
//! their HMAC under a key the store keeps, never in clear. The rules (what a login does to a
//! secret ID) are `mutual-auth`'s; the store applies their outcome with compare-and-set
//! updates, so two logins racing for a secret ID's last use cannot both win.

use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, Store, StoreError};

/// An enabled auth method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthMount {
    /// Path under `auth/`, without slashes (`approle`).
    pub path: String,
    /// Method type (`approle`).
    pub kind: String,
    /// Vault's accessor (`auth_approle_1a2b3c4d`).
    pub accessor: String,
    /// Free text.
    pub description: String,
}

/// A stored AppRole role: its role ID and its configuration as JSON (the server's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRoleRecord {
    /// Role name.
    pub name: String,
    /// The role ID (not secret, but required at login).
    pub role_id: String,
    /// Configuration, as the server writes it.
    pub body: String,
}

/// A stored secret ID (its HMAC, never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIdRecord {
    /// HMAC of the secret ID.
    pub hmac: String,
    /// Its role.
    pub role: String,
    /// A non-secret name to look it up or destroy it by.
    pub accessor: String,
    /// Logins left, 0 for unlimited.
    pub uses_left: u32,
    /// Created at (unix seconds).
    pub created_at: i64,
    /// Expires at (unix seconds), None for never.
    pub expires_at: Option<i64>,
    /// CIDR blocks it may be used from.
    pub cidrs: Vec<String>,
}

fn secret_from_row(r: &crate::db::Row) -> SecretIdRecord {
    SecretIdRecord {
        hmac: r.get("hmac"),
        role: r.get("role"),
        accessor: r.get("accessor"),
        uses_left: r.get::<i64, _>("uses_left").max(0) as u32,
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        cidrs: serde_json::from_str(&r.get::<String, _>("cidrs")).unwrap_or_default(),
    }
}

impl Store {
    /// The store's key for HMACs of secrets (made on first use, kept in `meta`).
    pub async fn auth_hmac_key(&self) -> Result<Vec<u8>, StoreError> {
        let mut fresh = [0u8; 32];
        aws_lc_rs::rand::fill(&mut fresh).map_err(|_| StoreError::Db {
            code: None,
            message: "the system random generator failed".into(),
        })?;
        sqlx::query("INSERT INTO meta (key, value) VALUES ('auth_hmac_key', $1) ON CONFLICT (key) DO NOTHING")
            .bind(hex::encode(fresh))
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        let row = sqlx::query("SELECT value FROM meta WHERE key = 'auth_hmac_key'")
            .fetch_one(self.pool())
            .await
            .map_err(db_err)?;
        hex::decode(row.get::<String, _>("value")).map_err(|e| StoreError::Db {
            code: None,
            message: format!("auth_hmac_key: {e}"),
        })
    }

    /// Every enabled auth method.
    pub async fn list_auth_mounts(&self) -> Result<Vec<AuthMount>, StoreError> {
        let rows =
            sqlx::query("SELECT path, kind, accessor, description FROM auth_mounts ORDER BY path")
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
        Ok(rows
            .iter()
            .map(|r| AuthMount {
                path: r.get("path"),
                kind: r.get("kind"),
                accessor: r.get("accessor"),
                description: r.get("description"),
            })
            .collect())
    }

    /// Enables an auth method; `Duplicate` when the path is taken.
    pub async fn enable_auth(&self, m: &AuthMount) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_mounts (path, kind, accessor, description, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&m.path)
        .bind(&m.kind)
        .bind(&m.accessor)
        .bind(&m.description)
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .execute(self.pool())
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Db { message, .. } if message.contains("UNIQUE") => StoreError::Duplicate {
                kind: "auth mount",
                name: m.path.clone(),
            },
            other => other,
        })?;
        Ok(())
    }

    /// Disables an auth method and forgets its roles and secret IDs.
    pub async fn disable_auth(&self, path: &str) -> Result<(), StoreError> {
        for stmt in [
            "DELETE FROM approle_secret_ids WHERE mount = $1",
            "DELETE FROM approle_roles WHERE mount = $1",
            "DELETE FROM auth_mounts WHERE path = $1",
        ] {
            sqlx::query(stmt)
                .bind(path)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Writes a role (its role ID kept when it exists and `role_id` is None).
    pub async fn put_approle(
        &self,
        mount: &str,
        name: &str,
        role_id: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approle_roles (mount, name, role_id, body) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (mount, name) DO UPDATE SET role_id = excluded.role_id, body = excluded.body",
        )
        .bind(mount)
        .bind(name)
        .bind(role_id)
        .bind(body)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The role `name`, if any.
    pub async fn get_approle(
        &self,
        mount: &str,
        name: &str,
    ) -> Result<Option<AppRoleRecord>, StoreError> {
        self.approle_where(mount, "name", name).await
    }

    /// The role whose role ID this is, if any.
    pub async fn approle_by_role_id(
        &self,
        mount: &str,
        role_id: &str,
    ) -> Result<Option<AppRoleRecord>, StoreError> {
        self.approle_where(mount, "role_id", role_id).await
    }

    /// The role of `mount` whose `column` (`name` or `role_id`, both unique there) is `value`.
    async fn approle_where(
        &self,
        mount: &str,
        column: &'static str,
        value: &str,
    ) -> Result<Option<AppRoleRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT name, role_id, body FROM approle_roles WHERE mount = $1 AND {column} = $2"
        ))
        .bind(mount)
        .bind(value)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        Ok(row.map(|r| AppRoleRecord {
            name: r.get("name"),
            role_id: r.get("role_id"),
            body: r.get("body"),
        }))
    }

    /// Role names, sorted.
    pub async fn list_approles(&self, mount: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT name FROM approle_roles WHERE mount = $1 ORDER BY name")
            .bind(mount)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(|r| r.get("name")).collect())
    }

    /// Deletes a role and its secret IDs.
    pub async fn delete_approle(&self, mount: &str, name: &str) -> Result<(), StoreError> {
        for stmt in [
            "DELETE FROM approle_secret_ids WHERE mount = $1 AND role = $2",
            "DELETE FROM approle_roles WHERE mount = $1 AND name = $2",
        ] {
            sqlx::query(stmt)
                .bind(mount)
                .bind(name)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// Stores a secret ID (by its HMAC).
    pub async fn put_secret_id(&self, mount: &str, s: &SecretIdRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO approle_secret_ids (hmac, mount, role, accessor, uses_left, created_at, expires_at, cidrs) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.hmac)
        .bind(mount)
        .bind(&s.role)
        .bind(&s.accessor)
        .bind(i64::from(s.uses_left))
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(serde_json::to_string(&s.cidrs).unwrap_or_else(|_| "[]".into()))
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The secret ID with this HMAC, for `role` on `mount`.
    pub async fn get_secret_id(
        &self,
        mount: &str,
        role: &str,
        hmac: &str,
    ) -> Result<Option<SecretIdRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT * FROM approle_secret_ids WHERE mount = $1 AND role = $2 AND hmac = $3",
        )
        .bind(mount)
        .bind(role)
        .bind(hmac)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        Ok(row.as_ref().map(secret_from_row))
    }

    /// Accessors of a role's secret IDs.
    pub async fn list_secret_id_accessors(
        &self,
        mount: &str,
        role: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT accessor FROM approle_secret_ids WHERE mount = $1 AND role = $2 ORDER BY accessor",
        )
        .bind(mount)
        .bind(role)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows.iter().map(|r| r.get("accessor")).collect())
    }

    /// Applies one login to a secret ID that had `uses_left`: `Some(n)` stores `n` left, `None`
    /// deletes it. False when another login changed it first (the caller refuses).
    pub async fn use_secret_id(
        &self,
        hmac: &str,
        uses_left: u32,
        after: Option<u32>,
    ) -> Result<bool, StoreError> {
        let done = match after {
            Some(n) => sqlx::query(
                "UPDATE approle_secret_ids SET uses_left = $1 WHERE hmac = $2 AND uses_left = $3",
            )
            .bind(i64::from(n))
            .bind(hmac)
            .bind(i64::from(uses_left)),
            None => {
                sqlx::query("DELETE FROM approle_secret_ids WHERE hmac = $1 AND uses_left = $2")
                    .bind(hmac)
                    .bind(i64::from(uses_left))
            }
        }
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    /// Destroys a secret ID by its HMAC or its accessor.
    pub async fn destroy_secret_id(
        &self,
        mount: &str,
        hmac_or_accessor: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM approle_secret_ids WHERE mount = $1 AND (hmac = $2 OR accessor = $3)",
        )
        .bind(mount)
        .bind(hmac_or_accessor)
        .bind(hmac_or_accessor)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }
}
