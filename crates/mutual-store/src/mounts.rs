//! Vault-style mounts. A `pki` mount path owns one CA (stored in `cas` under the mount's path,
//! Vault's default issuer), its roles, its max lease TTL, and the key of an intermediate whose
//! CSR is being signed elsewhere (`intermediate/generate` → `intermediate/set-signed`).

use std::time::Duration;

use mutual_pki::{ca::Urls, key::PrivateKey, role::Role};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, Store, StoreError};

/// A mounted secrets engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRecord {
    /// Path without slashes at either end (`pki_local`, `pki/int`).
    pub path: String,
    /// Engine type; only `pki` is served.
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Longest lifetime of what the mount issues; zero means the system's (768h).
    pub max_lease_ttl: Duration,
    /// Default lifetime; zero means the system's.
    pub default_lease_ttl: Duration,
    /// Vault's mount accessor (`pki_1a2b3c4d`).
    pub accessor: String,
    /// A UUID naming this mount.
    pub uuid: String,
    /// `config/urls`: what the mount's CA stamps into what it issues (kept on the mount so it
    /// can be set before the CA exists, as Vault allows).
    pub urls: Urls,
}

impl MountRecord {
    /// A new mount record at `path` with fresh accessor and UUID.
    pub fn new(path: &str, kind: &str) -> MountRecord {
        let mut id = [0u8; 20];
        aws_lc_rs::rand::fill(&mut id).expect("the system random generator failed");
        let h = hex::encode(id);
        MountRecord {
            path: path.to_string(),
            kind: kind.to_string(),
            description: String::new(),
            max_lease_ttl: Duration::ZERO,
            default_lease_ttl: Duration::ZERO,
            accessor: format!("{kind}_{}", &h[..8]),
            uuid: format!(
                "{}-{}-{}-{}-{}",
                &h[8..16],
                &h[16..20],
                &h[20..24],
                &h[24..28],
                &h[28..40]
            ),
            urls: Urls::default(),
        }
    }
}

fn mount_from_row(row: &crate::db::Row) -> MountRecord {
    let secs = |c: &str| Duration::from_secs(row.get::<i64, _>(c).max(0) as u64);
    MountRecord {
        path: row.get("path"),
        kind: row.get("kind"),
        description: row.get("description"),
        max_lease_ttl: secs("max_lease_ttl"),
        default_lease_ttl: secs("default_lease_ttl"),
        accessor: row.get("accessor"),
        uuid: row.get("uuid"),
        urls: serde_json::from_str(row.get::<&str, _>("urls")).unwrap_or_default(),
    }
}

impl Store {
    /// Records a new mount; a mount already at that path is a `Duplicate`.
    pub async fn create_mount(&self, m: &MountRecord) -> Result<(), StoreError> {
        let res = sqlx::query(
            "INSERT INTO mounts (path, kind, description, max_lease_ttl, default_lease_ttl, accessor, uuid, urls, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&m.path)
        .bind(&m.kind)
        .bind(&m.description)
        .bind(m.max_lease_ttl.as_secs() as i64)
        .bind(m.default_lease_ttl.as_secs() as i64)
        .bind(&m.accessor)
        .bind(&m.uuid)
        .bind(serde_json::to_string(&m.urls).map_err(StoreError::encode("URLs"))?)
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .execute(self.pool())
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                Err(StoreError::Duplicate {
                    kind: "mount",
                    name: m.path.clone(),
                })
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// Every mount, by path.
    pub async fn list_mounts(&self) -> Result<Vec<MountRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM mounts ORDER BY path")
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        Ok(rows.iter().map(mount_from_row).collect())
    }

    /// Changes a mount's TTLs and description (each only when given).
    pub async fn tune_mount(
        &self,
        path: &str,
        max_lease_ttl: Option<Duration>,
        default_lease_ttl: Option<Duration>,
        description: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE mounts SET max_lease_ttl = COALESCE($1, max_lease_ttl),
                default_lease_ttl = COALESCE($2, default_lease_ttl),
                description = COALESCE($3, description) WHERE path = $4",
        )
        .bind(max_lease_ttl.map(|d| d.as_secs() as i64))
        .bind(default_lease_ttl.map(|d| d.as_secs() as i64))
        .bind(description)
        .bind(path)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "mount",
                name: path.to_string(),
            });
        }
        Ok(())
    }

    /// Removes a mount and everything in it (its CA, roles, pending key and certificates), as
    /// Vault's disable does. True when it existed.
    pub async fn delete_mount(&self, path: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        let done = sqlx::query("DELETE FROM mounts WHERE path = $1")
            .bind(path)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        for sql in [
            "DELETE FROM mount_roles WHERE mount = $1",
            "DELETE FROM pending_keys WHERE mount = $1",
            "DELETE FROM certs WHERE ca = $1",
            "DELETE FROM cas WHERE name = $1",
            "DELETE FROM mount_config WHERE mount = $1",
            "DELETE FROM pki_issuers WHERE scope = $1",
            "DELETE FROM pki_keys WHERE scope = $1",
        ] {
            sqlx::query(sql)
                .bind(path)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets a mount's `config/urls`, and its CA's when it has one.
    pub async fn set_mount_urls(&self, path: &str, urls: &Urls) -> Result<(), StoreError> {
        let body = serde_json::to_string(urls).map_err(StoreError::encode("URLs"))?;
        let done = sqlx::query("UPDATE mounts SET urls = $1 WHERE path = $2")
            .bind(&body)
            .bind(path)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "mount",
                name: path.to_string(),
            });
        }
        sqlx::query("UPDATE cas SET urls = $1 WHERE name = $2")
            .bind(&body)
            .bind(path)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Deletes certificates of a CA whose notAfter is before `before` (the unrevoked ones when
    /// `unrevoked`, the revoked ones when `revoked`); returns how many went (Vault's `tidy`).
    pub async fn tidy_certs(
        &self,
        ca: &str,
        before: OffsetDateTime,
        unrevoked: bool,
        revoked: bool,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM certs WHERE ca = $1 AND not_after < $2
             AND ((revoked_at IS NULL AND $3) OR (revoked_at IS NOT NULL AND $4))",
        )
        .bind(ca)
        .bind(before.unix_timestamp())
        .bind(unrevoked)
        .bind(revoked)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected())
    }

    /// Serials of a CA's certificates in order, paged: `after` (exclusive, stored hex form)
    /// and `limit` (0: no limit). Reads the `(ca, serial)` index alone, so a page costs the
    /// same with a thousand or a million certificates stored.
    pub async fn list_serials(
        &self,
        ca: &str,
        revoked_only: bool,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<mutual_pki::serial::Serial>, StoreError> {
        let mut sql = String::from("SELECT serial FROM certs WHERE ca = $1 AND serial > $2");
        if revoked_only {
            sql.push_str(" AND revoked_at IS NOT NULL");
        }
        // ORDER BY the whole (ca, serial) index, so that SQLite walks it rather than the
        // primary key over every CA's certificates.
        sql.push_str(" ORDER BY ca, serial");
        if limit > 0 {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let rows: Vec<String> = sqlx::query_scalar(&sql)
            .bind(ca)
            .bind(after.unwrap_or(""))
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        Ok(rows
            .iter()
            .filter_map(|s| mutual_pki::serial::Serial::parse(s).ok())
            .collect())
    }

    /// Deletes a CA (Vault's `DELETE <mount>/root`); its issued certificates stay recorded.
    pub async fn delete_ca(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM cas WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Creates or replaces a role of a mount.
    pub async fn put_mount_role(&self, mount: &str, role: &Role) -> Result<(), StoreError> {
        let body = serde_json::to_string(role).map_err(StoreError::encode("role"))?;
        sqlx::query(
            "INSERT INTO mount_roles (mount, name, body) VALUES ($1, $2, $3)
             ON CONFLICT(mount, name) DO UPDATE SET body = excluded.body",
        )
        .bind(mount)
        .bind(&role.name)
        .bind(body)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Every role of a mount, by name.
    pub async fn list_mount_roles(&self, mount: &str) -> Result<Vec<Role>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, body FROM mount_roles WHERE mount = $1 ORDER BY name")
                .bind(mount)
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
        rows.into_iter()
            .map(|(name, body)| {
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("role \"{mount}/{name}\": {e}")))
            })
            .collect()
    }

    /// Deletes a role of a mount; true when it existed.
    pub async fn delete_mount_role(&self, mount: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM mount_roles WHERE mount = $1 AND name = $2")
            .bind(mount)
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Keeps (sealed) the key of an intermediate whose CSR was handed out, replacing any
    /// earlier one of the mount.
    pub async fn put_pending_key(&self, mount: &str, key: &PrivateKey) -> Result<(), StoreError> {
        let sealed = self.kek().seal(&format!("pending:{mount}"), &key.to_der());
        sqlx::query(
            "INSERT INTO pending_keys (mount, key_sealed) VALUES ($1, $2)
             ON CONFLICT(mount) DO UPDATE SET key_sealed = excluded.key_sealed",
        )
        .bind(mount)
        .bind(sealed)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The pending intermediate key of a mount, if one was generated.
    pub async fn pending_key(&self, mount: &str) -> Result<Option<PrivateKey>, StoreError> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT key_sealed FROM pending_keys WHERE mount = $1")
                .bind(mount)
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let der = self.kek().open(&format!("pending:{mount}"), &sealed)?;
        PrivateKey::from_pkcs8_der(&der)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("pending key of mount \"{mount}\": {e}")))
    }

    /// Forgets the pending key of a mount (after `set-signed`).
    pub async fn clear_pending_key(&self, mount: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM pending_keys WHERE mount = $1")
            .bind(mount)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}
