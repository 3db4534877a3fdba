//! Group commit of issued certificates. Callers hand a certificate to one writer task and wait;
//! the writer takes every certificate that arrived while the previous commit was syncing and
//! writes them in one transaction. A caller is answered only after the transaction holding its
//! certificate has committed (and, on a durable store, been fsynced), so nothing is
//! acknowledged before it is on disk, and concurrent callers share one fsync.

use mutual_pki::serial::Serial;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::error::{busy_secs, sqlite_err, translate, DbFailure};
use crate::inventory::{insert_side_rows, names_of, NameKind};
use crate::{Store, StoreError};

/// Most certificates written by one transaction.
const MAX_BATCH: usize = 1024;

/// An issued certificate to record, owned so that it can travel to the writer task.
#[derive(Debug, Clone)]
pub struct OwnedCert {
    /// Serial.
    pub serial: Serial,
    /// Issuing CA's name.
    pub ca: String,
    /// Subject CN.
    pub common_name: String,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// PEM of the certificate alone.
    pub cert_pem: String,
    /// The role it was issued under (None for CA certificates).
    pub role: Option<String>,
}

pub(crate) struct Job {
    pub(crate) cert: OwnedCert,
    /// Its subject alternative names for the inventory, read on the caller's task so that
    /// the one writer thread does no parsing.
    pub(crate) names: Vec<(NameKind, String)>,
    /// The accessor of the token that asked for it.
    pub(crate) issued_by: Option<String>,
    /// The request that produced it.
    pub(crate) request: Option<String>,
    pub(crate) done: oneshot::Sender<Result<(), DbFailure>>,
}

/// The handle to a store's group-commit writer; cheap to clone.
#[derive(Debug, Clone)]
pub struct CertWriter {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("serial", &self.cert.serial)
            .finish()
    }
}

impl CertWriter {
    /// Records a certificate; returns once it is committed.
    pub async fn record(&self, cert: OwnedCert) -> Result<(), StoreError> {
        self.record_by(cert, None).await
    }

    /// Records a certificate with the accessor of the token that asked for it (the
    /// inventory's "issued by"); returns once it is committed.
    pub async fn record_by(
        &self,
        cert: OwnedCert,
        issued_by: Option<String>,
    ) -> Result<(), StoreError> {
        self.record_for(cert, issued_by, None).await
    }

    /// Records a certificate with the token that asked for it and the request that produced
    /// it (`pki/issue/web`, `pki/renew of 3a:…`); returns once it is committed.
    pub async fn record_for(
        &self,
        cert: OwnedCert,
        issued_by: Option<String>,
        request: Option<String>,
    ) -> Result<(), StoreError> {
        let names = names_of(&cert.cert_pem);
        self.send(cert, names, issued_by, request).await
    }

    /// [`record_for`](Self::record_for) for a certificate just signed: its names are the ones
    /// it was signed with ([`Issued::names`](crate::authority::Issued::names)), not read back
    /// from it.
    pub async fn record_issued(
        &self,
        cert: OwnedCert,
        names: Vec<(NameKind, String)>,
        issued_by: Option<String>,
        request: Option<String>,
    ) -> Result<(), StoreError> {
        self.send(cert, names, issued_by, request).await
    }

    async fn send(
        &self,
        cert: OwnedCert,
        names: Vec<(NameKind, String)>,
        issued_by: Option<String>,
        request: Option<String>,
    ) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                cert,
                names,
                issued_by,
                request,
                done,
            })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(failure)) => Err(translate(failure)),
            Err(_) => Err(StoreError::WriterStopped),
        }
    }
}

impl Store {
    /// Starts the group-commit writer of this store (call inside a tokio runtime): a task
    /// that gathers the certificates of one turn of the event loop into a batch, and a thread
    /// of its own holding one SQLite connection that commits the batches. Measured by
    /// bench/ca-server.sh, this is far cheaper than going through the pool: without the
    /// gathering, the idle thread woke for every certificate and committed batches of one; a
    /// batch now costs one wake-up of the thread, and the one connection's page cache stays
    /// warm because nothing else writes certificates.
    pub fn cert_writer(&self) -> Result<CertWriter, StoreError> {
        if self.engine == crate::db::Engine::Postgres {
            return Ok(self.pg_writer());
        }
        let conn = self.writer_connection()?;
        let (tx, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let (batches, incoming) = std::sync::mpsc::channel::<Vec<Job>>();
        let (answers, mut answered) = mpsc::unbounded_channel::<Answered>();
        std::thread::Builder::new()
            .name("mutual-cert-writer".into())
            .spawn(move || write_loop(conn, incoming, answers))
            .map_err(|e| StoreError::io("starting the certificate writer", e))?;
        // The callers of a batch are answered from the runtime: a send from the writer thread
        // to each caller's channel would wake the runtime's thread (a write to its eventfd, and
        // often a switch to it) once per certificate; this wakes it once per batch.
        tokio::spawn(async move {
            while let Some((waiting, result)) = answered.recv().await {
                for done in waiting {
                    let _ = done.send(result.clone());
                }
            }
        });
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                // Let the requests already read from their sockets reach `record`, for as
                // long as each turn of the event loop brings more.
                loop {
                    tokio::task::yield_now().await;
                    let before = batch.len();
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if batch.len() == before || batch.len() == MAX_BATCH {
                        break;
                    }
                }
                if batches.send(batch).is_err() {
                    break;
                }
            }
        });
        Ok(CertWriter { tx })
    }

    /// The writer on PostgreSQL: one task gathers a batch as above, commits it in one
    /// transaction over the pool and answers its callers after COMMIT; what arrives meanwhile
    /// is the next batch.
    fn pg_writer(&self) -> CertWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                tokio::task::yield_now().await;
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let result = crate::postgres::write_batch(&pool, &batch).await;
                for job in batch {
                    let _ = job.done.send(result.clone());
                }
            }
        });
        CertWriter { tx }
    }

    fn writer_connection(&self) -> Result<rusqlite::Connection, StoreError> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            self.db_path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(busy_secs()))
            .map_err(sqlite_err)?;
        // As the pool's connections: a certificate returned to a caller must survive a crash.
        let sync = if self.is_durable() { "FULL" } else { "OFF" };
        conn.pragma_update(None, "synchronous", sync)
            .map_err(sqlite_err)?;
        // Index pages rewritten by every batch are copied back to the database once per
        // checkpoint: checkpointing every 16 MiB of WAL instead of 4 MiB copies fewer of them.
        conn.pragma_update(None, "wal_autocheckpoint", 4000)
            .map_err(sqlite_err)?;
        Ok(conn)
    }
}

/// The callers of one committed batch, and what the commit came to.
type Answered = (
    Vec<oneshot::Sender<Result<(), DbFailure>>>,
    Result<(), DbFailure>,
);

fn write_loop(
    mut conn: rusqlite::Connection,
    incoming: std::sync::mpsc::Receiver<Vec<Job>>,
    answers: mpsc::UnboundedSender<Answered>,
) {
    while let Ok(mut batch) = incoming.recv() {
        // Batches that queued up while the last commit was syncing share the next one.
        while let Ok(more) = incoming.try_recv() {
            batch.extend(more);
        }
        // Each caller of the batch gets the failure, translated on its side (the store's one
        // translation point, as for the pool): a lock held too long says so.
        let started = std::time::Instant::now();
        let result = insert(&mut conn, batch.iter()).map_err(|e| DbFailure::from(&e));
        crate::metrics::commit_done(started.elapsed(), result.is_ok());
        let waiting = batch.into_iter().map(|job| job.done).collect();
        if answers.send((waiting, result)).is_err() {
            break;
        }
    }
}

fn insert<'a>(
    conn: &mut rusqlite::Connection,
    jobs: impl Iterator<Item = &'a Job>,
) -> rusqlite::Result<()> {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at, role, request) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?;
        for job in jobs {
            let c = &job.cert;
            let serial = c.serial.to_hex();
            stmt.execute(rusqlite::params![
                serial,
                c.ca,
                c.common_name,
                c.not_before.unix_timestamp(),
                c.not_after.unix_timestamp(),
                c.cert_pem,
                now,
                c.role,
                job.request,
            ])?;
            insert_side_rows(&tx, &serial, &job.names, job.issued_by.as_deref())?;
        }
    }
    tx.commit()
}
