//! The store on PostgreSQL: any number of `mutual server` nodes on one database.
//!
//! The tables are the SQLite store's (migrate.rs adapts them); what differs is how a node
//! opens the database (the KEK comes from `MUTUAL_KEK` alone, and a `kek_check` row refuses a
//! node whose key is not the one the store was made with), how CRL numbers are drawn (one
//! sequence), and how issued certificates are committed: batches in one transaction over the
//! pool, each caller answered after COMMIT (commit.rs's promise, kept on PostgreSQL).

use std::{path::PathBuf, sync::Arc, time::Instant};

use time::OffsetDateTime;

use crate::{
    commit::Job,
    db::{self, Engine, Pool},
    error::{db_err, DbFailure},
    migrate::migrate,
    sqlite::FORMAT,
    Kek, Store, StoreError,
};

impl Store {
    /// Opens the mutual store in the PostgreSQL database at `url`
    /// (`postgres://USER[:PASSWORD]@HOST:PORT/DB`), creating its tables when the database is
    /// empty: the first node (or `mutual server init`) makes the store, the others join it.
    /// `MUTUAL_KEK` must be set, the same on every node.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let kek =
            match std::env::var("MUTUAL_KEK") {
                Ok(text) => Kek::parse(&text)?,
                Err(_) => return Err(StoreError::Kek(
                    "MUTUAL_KEK must be set for a PostgreSQL store: every node seals and opens \
                     the CA keys with that same key, which never goes into the database"
                        .into(),
                )),
            };
        Store::open_postgres_with(url, kek).await
    }

    /// [`Store::open_postgres`] with the key-encryption key given.
    pub async fn open_postgres_with(url: &str, kek: Kek) -> Result<Store, StoreError> {
        let shown = db::redact(url);
        let pool = db::postgres(url).await?;
        refuse_foreign(&pool, &shown).await?;
        migrate(&pool, Engine::Postgres).await?;
        // The first node writes the format and the KEK check; every node then checks the KEK.
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('format', $1), ('kek_check', $2) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(FORMAT)
        .bind(hex::encode(kek.seal("kek-check", b"mutual")))
        .execute(&pool)
        .await
        .map_err(db_err)?;
        let check: Option<String> =
            sqlx::query_scalar("SELECT value FROM meta WHERE key = 'kek_check'")
                .fetch_optional(&pool)
                .await
                .map_err(db_err)?;
        let sealed = check.and_then(|c| hex::decode(c).ok()).unwrap_or_default();
        kek.open("kek-check", &sealed).map_err(|_| {
            StoreError::Kek(format!(
                "MUTUAL_KEK does not open the store in {shown}: it is not the key the store was made with"
            ))
        })?;
        let store = Store {
            pool,
            engine: Engine::Postgres,
            kek: Arc::new(kek),
            dir: PathBuf::from(shown),
            durable: true,
            url: Some(Arc::from(url)),
        };
        store.backfill_inventory().await?;
        Ok(store)
    }

    /// True when the database answers a query now (`/v1/sys/health`).
    pub async fn reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// Refuses a database that holds another application's tables: mutual's tables would be mixed
/// with them, and a `meta` or `certs` of theirs misread.
async fn refuse_foreign(pool: &Pool, shown: &str) -> Result<(), StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    if tables.is_empty() {
        return Ok(());
    }
    let format: Option<String> = if tables.iter().any(|t| t == "meta") {
        sqlx::query_scalar("SELECT value FROM meta WHERE key = 'format'")
            .fetch_optional(pool)
            .await
            .unwrap_or(None)
    } else {
        None
    };
    match format {
        Some(f) if f == FORMAT => Ok(()),
        // Only `meta`, and nothing in it: a first start that stopped half-way.
        None if tables.len() == 1 && tables[0] == "meta" => Ok(()),
        _ => Err(StoreError::Foreign(shown.to_string())),
    }
}

/// Commits one batch of issued certificates in one transaction and returns its outcome for
/// every caller of the batch.
pub(crate) async fn write_batch(pool: &Pool, batch: &[Job]) -> Result<(), DbFailure> {
    let started = Instant::now();
    let result = insert(pool, batch).await.map_err(|e| DbFailure::from(&e));
    crate::metrics::commit_done(started.elapsed(), result.is_ok());
    result
}

/// `INSERT INTO table (columns) VALUES ($1, …), ($k, …), …` for `rows` rows, then `tail`.
fn multi_row(head: &str, width: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * width * 5 + tail.len());
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..width {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * width + c + 1).to_string());
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// Rows per statement: well under PostgreSQL's 65,535 bind parameters.
const ROWS_PER_STATEMENT: usize = 1000;

/// The batch in one transaction, each table in multi-row statements: a round trip per table
/// rather than per row, which is most of a commit's cost on a loopback or LAN database.
async fn insert(pool: &Pool, batch: &[Job]) -> Result<(), sqlx::Error> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let mut tx = pool.begin().await?;
    // The primary key makes a serial unique across every node: a duplicate fails the batch,
    // and no caller of it is told its certificate was stored.
    for jobs in batch.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_row(
            "INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at, role, request)",
            9,
            jobs.len(),
            "",
        );
        let mut q = sqlx::query(&sql);
        for job in jobs {
            let c = &job.cert;
            q = q
                .bind(c.serial.to_hex())
                .bind(&c.ca)
                .bind(&c.common_name)
                .bind(c.not_before.unix_timestamp())
                .bind(c.not_after.unix_timestamp())
                .bind(&c.cert_pem)
                .bind(now)
                .bind(&c.role)
                .bind(&job.request);
        }
        q.execute(&mut *tx).await?;
    }
    let names: Vec<(&str, &str, String)> = batch
        .iter()
        .flat_map(|job| {
            let serial = job.cert.serial.to_hex();
            job.names
                .iter()
                .map(move |(kind, value)| (kind.as_str(), value.as_str(), serial.clone()))
        })
        .collect();
    for rows in names.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_row(
            "INSERT INTO cert_names (kind, value, serial)",
            3,
            rows.len(),
            " ON CONFLICT (kind, value, serial) DO NOTHING",
        );
        let mut q = sqlx::query(&sql);
        for (kind, value, serial) in rows {
            q = q.bind(*kind).bind(*value).bind(serial);
        }
        q.execute(&mut *tx).await?;
    }
    let issuers: Vec<(&Job, &str)> = batch
        .iter()
        .filter_map(|j| j.issued_by.as_deref().map(|a| (j, a)))
        .collect();
    for jobs in issuers.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_row(
            "INSERT INTO cert_issuers (serial, accessor)",
            2,
            jobs.len(),
            " ON CONFLICT (serial) DO UPDATE SET accessor = excluded.accessor",
        );
        let mut q = sqlx::query(&sql);
        for (job, accessor) in jobs {
            q = q.bind(job.cert.serial.to_hex()).bind(*accessor);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_statements_number_every_value() {
        assert_eq!(
            multi_row("INSERT INTO t (a, b)", 2, 3, " ON CONFLICT (a) DO NOTHING"),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4), ($5, $6) ON CONFLICT (a) DO NOTHING"
        );
        assert_eq!(
            multi_row("INSERT INTO t (a)", 1, 1, ""),
            "INSERT INTO t (a) VALUES ($1)"
        );
    }
}
