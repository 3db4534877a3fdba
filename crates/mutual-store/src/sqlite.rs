use std::path::{Path, PathBuf};

use mutual_pki::{
    ca::Urls,
    crl::{Reason, RevokedEntry},
    key::PrivateKey,
    role::Role,
    serial::Serial,
};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{
    db::{Engine, Pool},
    error::db_err,
    migrate::migrate,
    CaRecord, CertFilter, CertRecord, Kek, NewCa, NewCert, RevokeOutcome, StoreError,
};

const DB_FILE: &str = "mutual.db";
pub(crate) const FORMAT: &str = "mutual-store-1";

/// Columns added after the first release, as (table, column, definition): added to a store
/// that lacks them when it is opened, so that stores made by older versions keep working.
pub(crate) const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // The role a certificate was issued under: renewal applies it again.
    ("certs", "role", "TEXT"),
    // The revocation feed's sequence number, given by `revoke` (see `revocations_since`).
    ("certs", "revoked_seq", "INTEGER"),
    // Bootstrap tokens: the one role they may issue under, how many issuances they allow
    // (0: no limit), how many they made, and when they stop working.
    ("tokens", "role", "TEXT"),
    ("tokens", "num_uses", "INTEGER NOT NULL DEFAULT 0"),
    ("tokens", "uses", "INTEGER NOT NULL DEFAULT 0"),
    ("tokens", "expires_at", "INTEGER"),
    // ACL policies (JSON list), the parent's accessor (children die with it), the lease.
    ("tokens", "policies", "TEXT NOT NULL DEFAULT '[]'"),
    ("tokens", "parent", "TEXT"),
    ("tokens", "lease", "TEXT NOT NULL DEFAULT '{}'"),
    // The request that produced a certificate (`pki/issue/web`, `pki/renew of 3a:…`), for
    // the inventory and the dashboard's certificate page. Certificates recorded before
    // `certs.request` existed keep theirs in `cert_issuers.request`, which is no longer written.
    ("cert_issuers", "request", "TEXT NOT NULL DEFAULT ''"),
    // The key that signed a revoked certificate, for its issuer's CRL (signers.rs).
    ("certs", "signer", "TEXT"),
    // The request on the certificate's own row: a renewal (no token) then writes no
    // `cert_issuers` row, three B-trees fewer per renewal (+4.5–6% renewals/s, README).
    ("certs", "request", "TEXT"),
];

/// One entry of the revocation feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The feed's sequence number (store-wide, increasing).
    pub seq: u64,
    /// The revoked certificate's serial.
    pub serial: Serial,
    /// When it was revoked.
    pub revoked_at: OffsetDateTime,
    /// Why.
    pub reason: Reason,
}

/// The store: a SQLite file in a data directory, or a PostgreSQL database (postgres.rs).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) engine: Engine,
    pub(crate) kek: std::sync::Arc<Kek>,
    /// The data directory; for PostgreSQL, the database's URL without its password.
    pub(crate) dir: PathBuf,
    pub(crate) durable: bool,
    /// The PostgreSQL URL (with its password), for the listener of notifications.
    pub(crate) url: Option<std::sync::Arc<str>>,
}

fn ts(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

pub(crate) fn from_ts(t: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

impl Store {
    async fn connect(path: &Path, create: bool, durable: bool) -> Result<Pool, StoreError> {
        crate::db::sqlite(path, create, durable).await
    }

    /// Creates a new store in `dir` (made with mode 0700 if missing), with a new
    /// key-encryption key.
    pub async fn create(dir: &Path) -> Result<Store, StoreError> {
        Self::create_with(dir, true).await
    }

    /// Creates a throwaway store in `dir` that never fsyncs, for `mutual server --dev` (like
    /// Vault's in-memory dev storage): fast, and lost with the directory.
    pub async fn create_ephemeral(dir: &Path) -> Result<Store, StoreError> {
        Self::create_with(dir, false).await
    }

    async fn create_with(dir: &Path, durable: bool) -> Result<Store, StoreError> {
        let db = dir.join(DB_FILE);
        if db.exists() {
            return Err(StoreError::AlreadyExists(dir.to_path_buf()));
        }
        create_private_dir(dir)?;
        let kek = if dir.join("kek").exists() && std::env::var("MUTUAL_KEK").is_err() {
            Kek::load(dir)?
        } else {
            Kek::create(dir)?
        };
        let pool = Self::connect(&db, true, durable).await?;
        migrate(&pool, Engine::Sqlite).await?;
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('format', $1), ('kek_check', $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(FORMAT)
        .bind(hex::encode(kek.seal("kek-check", b"mutual")))
        .execute(&pool)
        .await
        .map_err(db_err)?;
        let store = Store {
            pool,
            engine: Engine::Sqlite,
            kek: std::sync::Arc::new(kek),
            dir: dir.to_path_buf(),
            durable,
            url: None,
        };
        store.backfill_inventory().await?;
        store.adopt_all().await?;
        Ok(store)
    }

    /// Opens the store in `dir`, checking that it is one and that the key-encryption key
    /// matches it.
    pub async fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = dir.join(DB_FILE);
        if !db.is_file() {
            return Err(StoreError::NotAStore(dir.to_path_buf()));
        }
        let pool = Self::connect(&db, false, true).await?;
        let format: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'format'")
                .fetch_optional(&pool)
                .await
                .map_err(|e| match db_err(e) {
                    StoreError::Db { message, .. } if message.contains("no such table") => {
                        StoreError::Corrupt("it has no mutual tables".into())
                    }
                    other => other,
                })?;
        if format.as_deref() != Some(FORMAT) {
            return Err(StoreError::Corrupt(format!(
                "unknown store format {format:?} (expected {FORMAT})"
            )));
        }
        migrate(&pool, Engine::Sqlite).await?;
        let kek = Kek::load(dir)?;
        let check: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'kek_check'")
                .fetch_optional(&pool)
                .await
                .map_err(db_err)?;
        let sealed = check.and_then(|c| hex::decode(c).ok()).unwrap_or_default();
        kek.open("kek-check", &sealed).map_err(|_| {
            StoreError::Kek(
                "the key-encryption key does not open this store (wrong kek file or MUTUAL_KEK)"
                    .into(),
            )
        })?;
        let store = Store {
            pool,
            engine: Engine::Sqlite,
            kek: std::sync::Arc::new(kek),
            dir: dir.to_path_buf(),
            durable: true,
            url: None,
        };
        store.backfill_inventory().await?;
        store.adopt_all().await?;
        Ok(store)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.dir.join(DB_FILE)
    }

    /// False for a `--dev` store, which never fsyncs.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The engine that holds this store.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub(crate) fn kek(&self) -> &Kek {
        &self.kek
    }

    /// Stores a new CA; its key is sealed first.
    pub async fn put_ca(&self, ca: &NewCa<'_>) -> Result<(), StoreError> {
        let sealed = self.kek.seal(ca.name, &ca.key.to_der());
        let res = sqlx::query(
            "INSERT INTO cas (name, cert_pem, key_sealed, parent, chain_pem, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ca.name)
        .bind(ca.cert_pem)
        .bind(sealed)
        .bind(ca.parent)
        .bind(ca.chain_pem)
        .bind(ts(OffsetDateTime::now_utc()))
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                Err(StoreError::Duplicate {
                    kind: "CA",
                    name: ca.name.to_string(),
                })
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// A CA with its key opened.
    pub async fn get_ca(&self, name: &str) -> Result<CaRecord, StoreError> {
        let row = sqlx::query(
            "SELECT name, cert_pem, key_sealed, parent, chain_pem, urls FROM cas WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?
        .ok_or_else(|| StoreError::NotFound {
            kind: "CA",
            name: name.to_string(),
        })?;
        self.ca_from_row(&row)
    }

    fn ca_from_row(&self, row: &crate::db::Row) -> Result<CaRecord, StoreError> {
        let name: String = row.get("name");
        let sealed: Vec<u8> = row.get("key_sealed");
        let der = self.kek.open(&name, &sealed)?;
        let key = PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| StoreError::Corrupt(format!("key of CA \"{name}\": {e}")))?;
        let urls: String = row.get("urls");
        assemble_ca(
            name,
            row.get("cert_pem"),
            key,
            row.get("parent"),
            row.get("chain_pem"),
            serde_json::from_str(&urls).unwrap_or_default(),
        )
    }

    /// Every CA, by name.
    pub async fn list_cas(&self) -> Result<Vec<CaRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, cert_pem, key_sealed, parent, chain_pem, urls FROM cas ORDER BY created_at, name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(|r| self.ca_from_row(r)).collect()
    }

    /// Sets the URLs a CA stamps into what it issues.
    pub async fn set_urls(&self, name: &str, urls: &Urls) -> Result<(), StoreError> {
        let body = serde_json::to_string(urls).map_err(StoreError::encode("URLs"))?;
        let done = sqlx::query("UPDATE cas SET urls = $1 WHERE name = $2")
            .bind(body)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                kind: "CA",
                name: name.to_string(),
            });
        }
        // The CA of a server mount: its `config/urls` says the same (seen by a server at its
        // next start).
        sqlx::query("UPDATE mounts SET urls = $1 WHERE path = $2")
            .bind(serde_json::to_string(urls).map_err(StoreError::encode("CA URLs"))?)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Takes the next CRL number of a CA (1, 2, …), atomically.
    pub async fn next_crl_number(&self, ca: &str) -> Result<u64, StoreError> {
        // On PostgreSQL the number comes from one sequence that every node draws from: CRLs
        // made by any node only grow, whichever commits first.
        let sql = match self.engine {
            Engine::Sqlite => {
                "UPDATE cas SET crl_number = crl_number + 1 WHERE name = $1 RETURNING crl_number"
            }
            Engine::Postgres => {
                "UPDATE cas SET crl_number = nextval('crl_number') WHERE name = $1 RETURNING crl_number"
            }
        };
        let n: Option<i64> = sqlx::query_scalar(sql)
            .bind(ca)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        n.map(|n| n as u64).ok_or_else(|| StoreError::NotFound {
            kind: "CA",
            name: ca.to_string(),
        })
    }

    /// Creates or replaces a role.
    pub async fn put_role(&self, role: &Role) -> Result<(), StoreError> {
        let body = serde_json::to_string(role).map_err(StoreError::encode("role"))?;
        sqlx::query("INSERT INTO roles (name, body) VALUES ($1, $2) ON CONFLICT(name) DO UPDATE SET body = excluded.body")
            .bind(&role.name)
            .bind(body)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// A role by name.
    pub async fn get_role(&self, name: &str) -> Result<Role, StoreError> {
        let body: String = sqlx::query_scalar("SELECT body FROM roles WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound {
                kind: "role",
                name: name.to_string(),
            })?;
        serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("role \"{name}\": {e}")))
    }

    /// Every role, by name.
    pub async fn list_roles(&self) -> Result<Vec<Role>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, body FROM roles ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        rows.into_iter()
            .map(|(name, body)| {
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("role \"{name}\": {e}")))
            })
            .collect()
    }

    /// Deletes a role; true when it existed.
    pub async fn delete_role(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM roles WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Records an issued certificate. Returns once the row is committed and synced.
    pub async fn record_cert(&self, cert: &NewCert<'_>) -> Result<(), StoreError> {
        let names = crate::inventory::names_of(cert.cert_pem);
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        sqlx::query(
            "INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at, role) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(cert.serial.to_hex())
        .bind(cert.ca)
        .bind(cert.common_name)
        .bind(ts(cert.not_before))
        .bind(ts(cert.not_after))
        .bind(cert.cert_pem)
        .bind(ts(OffsetDateTime::now_utc()))
        .bind(cert.role)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        for (kind, value) in names {
            sqlx::query("INSERT INTO cert_names (kind, value, serial) VALUES ($1, $2, $3) ON CONFLICT (kind, value, serial) DO NOTHING")
                .bind(kind.as_str())
                .bind(value)
                .bind(cert.serial.to_hex())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    /// A recorded certificate by serial.
    pub async fn get_cert(&self, serial: &Serial) -> Result<CertRecord, StoreError> {
        let row = sqlx::query("SELECT * FROM certs WHERE serial = $1")
            .bind(serial.to_hex())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?
            .ok_or_else(|| StoreError::NotFound {
                kind: "certificate",
                name: serial.to_string(),
            })?;
        Ok(cert_from_row(&row))
    }

    /// Lists certificates, ordered by serial, paged by `filter.after` and `filter.limit`.
    pub async fn list_certs(&self, filter: &CertFilter) -> Result<Vec<CertRecord>, StoreError> {
        let mut sql = String::from("SELECT * FROM certs WHERE 1 = 1");
        if filter.ca.is_some() {
            sql.push_str(" AND ca = ?");
        }
        if filter.expiring_before.is_some() {
            sql.push_str(" AND revoked_at IS NULL AND not_after < ?");
        }
        if filter.revoked_only {
            sql.push_str(" AND revoked_at IS NOT NULL");
        }
        if filter.after.is_some() {
            sql.push_str(" AND serial > ?");
        }
        sql.push_str(" ORDER BY serial");
        if filter.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", filter.limit));
        }
        let sql = crate::db::numbered(&sql);
        let mut q = sqlx::query(&sql);
        if let Some(ca) = &filter.ca {
            q = q.bind(ca);
        }
        if let Some(t) = filter.expiring_before {
            q = q.bind(ts(t));
        }
        if let Some(after) = &filter.after {
            q = q.bind(after);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        Ok(rows.iter().map(cert_from_row).collect())
    }

    /// Revokes a certificate. Revoking twice changes nothing and says so.
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: Reason,
        at: OffsetDateTime,
    ) -> Result<RevokeOutcome, StoreError> {
        // Which of the scope's keys signed it, so that its issuer's CRL finds it by index
        // (signers.rs); read before the transaction, which then holds its locks for one
        // UPDATE of the row (a certificate's row changes only by being revoked).
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT ca, cert_pem FROM certs WHERE serial = $1")
                .bind(serial.to_hex())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        let signer = match &row {
            Some((ca, pem)) => {
                let issuers: Vec<String> = sqlx::query_scalar(crate::signers::ISSUER_PEMS)
                    .bind(ca)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db_err)?;
                crate::signers::signer_of_pem(pem, &crate::signers::signers(&issuers))
            }
            None => String::new(),
        };
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // The counter first: its row lock, held to the commit, makes concurrent revokers (on
        // PostgreSQL, other nodes) take their numbers in commit order, so that a reader that
        // has seen number n never misses a smaller one committed later.
        let seq: i64 = sqlx::query_scalar(
            "UPDATE revocation_seq SET seq = seq + 1 WHERE one = 1 RETURNING seq",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let updated: Option<String> = sqlx::query_scalar(
            "UPDATE certs SET revoked_at = $1, reason = $2, revoked_seq = $3, signer = $4 \
             WHERE serial = $5 AND revoked_at IS NULL RETURNING ca",
        )
        .bind(ts(at))
        .bind(reason.code())
        .bind(seq)
        .bind(signer)
        .bind(serial.to_hex())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        if updated.is_some() {
            crate::notify::revoked_in(&mut tx, self.engine, seq).await?;
            tx.commit().await.map_err(db_err)?;
        } else {
            tx.rollback().await.map_err(db_err)?;
        }
        if let Some(ca) = updated {
            return Ok(RevokeOutcome::Revoked { ca, at });
        }
        let existing = self.get_cert(serial).await?;
        Ok(RevokeOutcome::AlreadyRevoked {
            ca: existing.ca,
            at: existing.revoked_at.unwrap_or(at),
        })
    }

    /// The revocation feed of CA `ca`: its revocations with a sequence number above `since`,
    /// oldest first, at most `limit`, and the sequence number to ask from next time (the
    /// store's latest when the page is complete, so that a subscriber skips other CAs'
    /// entries; the last one returned when the page is full).
    pub async fn revocations_since(
        &self,
        ca: &str,
        since: u64,
        limit: u32,
    ) -> Result<(Vec<FeedEntry>, u64), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let latest: Option<i64> = sqlx::query_scalar("SELECT seq FROM revocation_seq")
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let rows: Vec<(i64, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT revoked_seq, serial, revoked_at, reason FROM certs \
             WHERE revoked_seq > $1 AND revoked_seq <= $2 AND ca = $3 ORDER BY revoked_seq LIMIT $4",
        )
        .bind(since as i64)
        .bind(latest.unwrap_or(0))
        .bind(ca)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let full = rows.len() >= limit.max(1) as usize;
        let entries: Vec<FeedEntry> = rows
            .into_iter()
            .filter_map(|(seq, serial, at, reason)| {
                Some(FeedEntry {
                    seq: seq as u64,
                    serial: Serial::parse(&serial).ok()?,
                    revoked_at: from_ts(at),
                    reason: Reason::from_code(reason.unwrap_or(0)),
                })
            })
            .collect();
        let next = match entries.last() {
            Some(last) if full => last.seq,
            _ => since.max(latest.unwrap_or(0) as u64),
        };
        Ok((entries, next))
    }

    /// Every CA's revocations with a sequence number above `since`, oldest first, at most
    /// `limit`, each with its CA: what a server's in-memory revocation index catches up from
    /// (revocations made by other processes on the same store).
    pub async fn revocations_after(
        &self,
        since: u64,
        limit: u32,
    ) -> Result<Vec<(String, FeedEntry)>, StoreError> {
        let rows: Vec<(i64, String, String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT revoked_seq, serial, ca, revoked_at, reason FROM certs \
             WHERE revoked_seq > $1 ORDER BY revoked_seq LIMIT $2",
        )
        .bind(since as i64)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(seq, serial, ca, at, reason)| {
                let entry = FeedEntry {
                    seq: seq as u64,
                    serial: Serial::parse(&serial).ok()?,
                    revoked_at: from_ts(at),
                    reason: Reason::from_code(reason.unwrap_or(0)),
                };
                Some((ca, entry))
            })
            .collect())
    }

    /// The revoked certificates of a CA, for its CRL.
    pub async fn revoked(&self, ca: &str) -> Result<Vec<RevokedEntry>, StoreError> {
        let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT serial, revoked_at, reason FROM certs WHERE ca = $1 AND revoked_at IS NOT NULL ORDER BY serial",
        )
        .bind(ca)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(crate::signers::entries(rows))
    }
}

/// A CA record from its parts: the certificate parsed once, its chain and the name
/// constraints of the chain read.
pub(crate) fn assemble_ca(
    name: String,
    cert_pem: String,
    key: PrivateKey,
    parent: Option<String>,
    chain_pem: String,
    urls: Urls,
) -> Result<CaRecord, StoreError> {
    let cert_der = mutual_pki::cert::pem_certs(cert_pem.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("certificate of CA \"{name}\": {e}")))?
        .remove(0);
    let not_after = mutual_pki::cert::facts(&cert_der)
        .map_err(|e| StoreError::Corrupt(format!("certificate of CA \"{name}\": {e}")))?
        .not_after;
    let mut chain = vec![cert_pem.clone()];
    let mut chain_ders = vec![cert_der.clone()];
    if let Ok(ders) = mutual_pki::cert::pem_certs(chain_pem.as_bytes()) {
        chain.extend(ders.iter().map(|d| mutual_pki::cert::to_pem(d)));
        chain_ders.extend(ders);
    }
    let constraints = mutual_pki::constraints::of_chain(&chain_ders)
        .map_err(|e| StoreError::Corrupt(format!("chain of CA \"{name}\": {e}")))?;
    let prepared = mutual_pki::ca::SigningCa {
        cert_der: &cert_der,
        key: &key,
        urls: &urls,
    }
    .prepare()
    .map_err(|e| StoreError::Corrupt(format!("certificate of CA \"{name}\": {e}")))?;
    Ok(CaRecord {
        name,
        cert_pem,
        cert_der,
        key,
        parent,
        chain_pem,
        urls,
        not_after,
        chain,
        constraints,
        prepared,
    })
}

pub(crate) fn cert_from_row(row: &crate::db::Row) -> CertRecord {
    let serial: String = row.get("serial");
    let revoked_at: Option<i64> = row.get("revoked_at");
    let reason: Option<i64> = row.get("reason");
    CertRecord {
        serial: Serial::parse(&serial).unwrap_or_else(|_| Serial::from_bytes(&[0])),
        ca: row.get("ca"),
        common_name: row.get("common_name"),
        not_before: from_ts(row.get("not_before")),
        not_after: from_ts(row.get("not_after")),
        revoked_at: revoked_at.map(from_ts),
        reason: revoked_at.map(|_| Reason::from_code(reason.unwrap_or(0))),
        cert_pem: row.get("cert_pem"),
        role: row.get("role"),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))
}
