//! Group commit of issued certificates. Callers hand a certificate to one writer task and wait;
//! the writer takes every certificate that arrived while the previous commit was syncing and
//! writes them in one transaction. A caller is answered only after the transaction holding its
//! certificate has committed (and, on a durable store, been fsynced), so nothing is
//! acknowledged before it is on disk, and concurrent callers share one fsync.

use mutual_pki::serial::Serial;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{sqlite::db_err, Store, StoreError};

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
}

struct Job {
    cert: OwnedCert,
    done: oneshot::Sender<Result<(), String>>,
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
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { cert, done })
            .await
            .map_err(|_| StoreError::Db("the certificate writer has stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(msg)) => Err(StoreError::Db(msg)),
            Err(_) => Err(StoreError::Db("the certificate writer has stopped".into())),
        }
    }
}

impl Store {
    /// Starts the group-commit writer of this store on the current tokio runtime.
    pub fn cert_writer(&self) -> CertWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let store = self.clone();
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let result = store
                    .insert_certs(batch.iter().map(|j| &j.cert))
                    .await
                    .map_err(|e| e.to_string());
                for job in batch {
                    let _ = job.done.send(result.clone());
                }
            }
        });
        CertWriter { tx }
    }

    /// Writes certificates in one transaction, as few multi-row statements as possible.
    pub async fn insert_certs<'a>(
        &self,
        certs: impl Iterator<Item = &'a OwnedCert>,
    ) -> Result<(), StoreError> {
        // 7 parameters a row; SQLite allows 32,766 per statement.
        const ROWS: usize = 512;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let all: Vec<&OwnedCert> = certs.collect();
        let mut tx = self.pool().begin().await.map_err(db_err)?;
        for chunk in all.chunks(ROWS) {
            let mut sql = String::from(
                "INSERT INTO certs (serial, ca, common_name, not_before, not_after, cert_pem, issued_at) VALUES ",
            );
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 {
                    "(?, ?, ?, ?, ?, ?, ?)"
                } else {
                    ", (?, ?, ?, ?, ?, ?, ?)"
                });
            }
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(c.serial.to_hex())
                    .bind(&c.ca)
                    .bind(&c.common_name)
                    .bind(c.not_before.unix_timestamp())
                    .bind(c.not_after.unix_timestamp())
                    .bind(&c.cert_pem)
                    .bind(now);
            }
            q.execute(&mut *tx).await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)
    }
}
