//! Which key signed each revoked certificate, so that a scope with several issuers builds each
//! one's CRL (complete or delta) from an index instead of parsing every revoked certificate.
//!
//! `certs.signer` is the [`mutual_pki::issuers::signing_key_id`] of the issuer that signed the
//! row, written when the certificate is revoked; `''` says none of the scope's issuers did. Rows
//! revoked before the column existed, or imported already revoked, have none:
//! [`Store::attribute_revoked`] fills them before a CRL is built, once.

use mutual_pki::{
    cert::{self, CertFacts},
    crl::{Reason, RevokedEntry},
    issuers as logic,
    serial::Serial,
};

use crate::{error::db_err, sqlite::from_ts, Store, StoreError};

/// The migration that adds the column's indexes (migrate.rs; the column itself is one of
/// sqlite.rs's `ADDED_COLUMNS`, added only where it is missing). They hold revoked rows only,
/// so issuing a certificate never touches them.
pub(crate) const STATEMENTS: &[&str] = &[
    // Covering: a complete CRL is read from the index alone. Without revoked_at and reason in
    // it, each entry cost a read of its row, PEM and all (perf: a pread per row at 1,000,000).
    "CREATE INDEX IF NOT EXISTS certs_revoked_signer ON certs(ca, signer, serial, revoked_at, reason) \
     WHERE revoked_at IS NOT NULL",
    // A delta CRL's query: without it the planner takes the one above and reads every
    // revocation of the key to find the few after its base.
    "CREATE INDEX IF NOT EXISTS certs_revoked_signer_seq ON certs(ca, signer, revoked_seq) WHERE revoked_at IS NOT NULL",
];

/// The certificates of a scope's issuers, in the order [`logic::signer_of`] tries them.
pub(crate) const ISSUER_PEMS: &str =
    "SELECT cert_pem FROM pki_issuers WHERE scope = $1 ORDER BY created_at, id";

/// Rows attributed per transaction by [`Store::attribute_revoked`].
const ATTRIBUTE_BATCH: usize = 1000;

/// The issuers of a scope as [`logic::signer_of`] takes them.
pub(crate) fn signers(pems: &[String]) -> Vec<(CertFacts, String)> {
    pems.iter()
        .filter_map(|pem| {
            let der = cert::pem_certs(pem.as_bytes()).ok()?.into_iter().next()?;
            Some((cert::facts(&der).ok()?, logic::signing_key_id(&der).ok()?))
        })
        .collect()
}

/// The signing key of the issuer among `issuers` that signed the certificate `pem`, or `''`.
pub(crate) fn signer_of_pem(pem: &str, issuers: &[(CertFacts, String)]) -> String {
    cert::pem_certs(pem.as_bytes())
        .ok()
        .and_then(|d| d.first().and_then(|d| cert::facts(d).ok()))
        .and_then(|f| logic::signer_of(&f, issuers).map(str::to_string))
        .unwrap_or_default()
}

/// Revoked rows (serial, time, reason) as CRL entries; a serial that does not parse is skipped.
pub(crate) fn entries(rows: Vec<(String, i64, Option<i64>)>) -> Vec<RevokedEntry> {
    rows.into_iter()
        .filter_map(|(serial, at, reason)| {
            Some(RevokedEntry {
                serial: Serial::parse(&serial).ok()?,
                revoked_at: from_ts(at),
                reason: Reason::from_code(reason.unwrap_or(0)),
            })
        })
        .collect()
}

impl Store {
    /// Attributes the revoked certificates of `scope` that name no signer yet (see the module);
    /// returns how many it attributed. Parses each once, in batches.
    pub async fn attribute_revoked(&self, scope: &str) -> Result<u64, StoreError> {
        let pems: Vec<String> = sqlx::query_scalar(ISSUER_PEMS)
            .bind(scope)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
        let issuers = signers(&pems);
        if let [(_, key)] = issuers.as_slice() {
            // One issuer: what it revoked before the column existed is its own (as its CRL
            // listed it), with no certificate parsed.
            let done = sqlx::query(
                "UPDATE certs SET signer = $1 \
                 WHERE ca = $2 AND signer IS NULL AND revoked_at IS NOT NULL",
            )
            .bind(key)
            .bind(scope)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
            return Ok(done.rows_affected());
        }
        let mut done = 0u64;
        loop {
            let rows: Vec<(String, String)> = sqlx::query_as(
                "SELECT serial, cert_pem FROM certs \
                 WHERE ca = $1 AND signer IS NULL AND revoked_at IS NOT NULL LIMIT $2",
            )
            .bind(scope)
            .bind(ATTRIBUTE_BATCH as i64)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?;
            if rows.is_empty() {
                return Ok(done);
            }
            let n = rows.len();
            // One UPDATE per key rather than per row.
            let mut by_key: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (serial, pem) in rows {
                by_key
                    .entry(signer_of_pem(&pem, &issuers))
                    .or_default()
                    .push(serial);
            }
            let mut tx = self.pool().begin().await.map_err(db_err)?;
            for (key, serials) in by_key {
                let sql = crate::db::numbered(&format!(
                    "UPDATE certs SET signer = ? WHERE serial IN ({})",
                    vec!["?"; serials.len()].join(", ")
                ));
                let mut q = sqlx::query(&sql).bind(key);
                for serial in serials {
                    q = q.bind(serial);
                }
                q.execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
            done += n as u64;
            if n < ATTRIBUTE_BATCH {
                return Ok(done);
            }
        }
    }

    /// The revoked certificates of `scope` that the key `signer` signed, by serial; with
    /// `after`, only those revoked after that point of the revocation sequence (a delta CRL).
    /// Rows not yet attributed are not seen: [`Store::attribute_revoked`] first.
    pub async fn revoked_signed_by(
        &self,
        scope: &str,
        signer: &str,
        after: Option<u64>,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        if self.engine() == crate::Engine::Sqlite {
            return self.revoked_signed_by_sqlite(scope, signer, after).await;
        }
        let rows: Vec<(String, i64, Option<i64>)> = match after {
            None => sqlx::query_as(
                "SELECT serial, revoked_at, reason FROM certs \
                 WHERE ca = $1 AND signer = $2 AND revoked_at IS NOT NULL ORDER BY serial",
            )
            .bind(scope)
            .bind(signer)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?,
            Some(seq) => sqlx::query_as(
                "SELECT serial, revoked_at, reason FROM certs \
                 WHERE revoked_seq > $1 AND ca = $2 AND signer = $3 AND revoked_at IS NOT NULL \
                 ORDER BY serial",
            )
            .bind(seq as i64)
            .bind(scope)
            .bind(signer)
            .fetch_all(self.pool())
            .await
            .map_err(db_err)?,
        };
        Ok(entries(rows))
    }

    /// [`Store::revoked_signed_by`] on SQLite: rusqlite on a blocking thread. sqlx's SQLite
    /// driver hands each row from its worker thread to the task through a channel, which at
    /// 500,000 rows was most of a complete CRL's build (perf: task switches and lock handoffs).
    async fn revoked_signed_by_sqlite(
        &self,
        scope: &str,
        signer: &str,
        after: Option<u64>,
    ) -> Result<Vec<RevokedEntry>, StoreError> {
        use crate::error::sqlite_err;
        let path = self.db_path();
        let (scope, signer) = (scope.to_string(), signer.to_string());
        let read = move || -> Result<Vec<(String, i64, Option<i64>)>, StoreError> {
            let conn = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(sqlite_err)?;
            conn.busy_timeout(std::time::Duration::from_secs(crate::error::busy_secs()))
                .map_err(sqlite_err)?;
            type Row = (String, i64, Option<i64>);
            fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            }
            let rows: rusqlite::Result<Vec<Row>> = match after {
                Some(seq) => conn
                    .prepare(
                        "SELECT serial, revoked_at, reason FROM certs \
                         WHERE revoked_seq > ?1 AND ca = ?2 AND signer = ?3 \
                         AND revoked_at IS NOT NULL ORDER BY serial",
                    )
                    .and_then(|mut st| {
                        st.query_map(rusqlite::params![seq as i64, scope, signer], row)?
                            .collect()
                    }),
                None => conn
                    .prepare(
                        "SELECT serial, revoked_at, reason FROM certs \
                         WHERE ca = ?1 AND signer = ?2 AND revoked_at IS NOT NULL ORDER BY serial",
                    )
                    .and_then(|mut st| {
                        st.query_map(rusqlite::params![scope, signer], row)?
                            .collect()
                    }),
            };
            rows.map_err(sqlite_err)
        };
        let rows = tokio::task::spawn_blocking(read)
            .await
            .map_err(|e| StoreError::Corrupt(format!("reading revocations: {e}")))??;
        Ok(entries(rows))
    }
}

#[cfg(test)]
mod tests {
    use mutual_pki::ca::{self, RootRequest, SigningCa, Urls};
    use time::OffsetDateTime;

    use super::*;

    fn req(cn: &str) -> RootRequest {
        RootRequest {
            common_name: cn.into(),
            ..RootRequest::default()
        }
    }

    /// Two issuers in one scope: each revocation is attributed to its signer's key when it is
    /// made, and rows without one (revoked before the column, or imported) are attributed once
    /// by `attribute_revoked`; a certificate neither signed is on no issuer's list.
    #[tokio::test]
    async fn revocations_go_to_the_key_that_signed_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let urls = Urls::default();
        let (a, b, other) = (
            ca::generate_root(&req("A"), now).unwrap(),
            ca::generate_root(&req("B"), now).unwrap(),
            ca::generate_root(&req("Other"), now).unwrap(),
        );
        for m in [&a, &b] {
            store
                .put_issuer("pki", None, "", &m.cert_pem, "", "")
                .await
                .unwrap();
        }
        let mut by = vec![];
        for (parent, cn) in [(&a, "a1"), (&b, "b1"), (&a, "a2"), (&other, "o1")] {
            let signer = SigningCa {
                cert_der: &parent.cert_der,
                key: &parent.key,
                urls: &urls,
            };
            let leaf = ca::generate_intermediate(&signer, &req(cn), now).unwrap();
            let serial = cert::facts(&leaf.cert_der).unwrap().serial;
            store
                .record_cert(&crate::NewCert {
                    serial: &serial,
                    ca: "pki",
                    common_name: cn,
                    not_before: now,
                    not_after: now + time::Duration::hours(1),
                    cert_pem: &leaf.cert_pem,
                    role: None,
                })
                .await
                .unwrap();
            store
                .revoke(&serial, Reason::Superseded, now)
                .await
                .unwrap();
            by.push(serial);
        }
        let key = |m: &ca::CaMaterial| logic::signing_key_id(&m.cert_der).unwrap();
        let (ka, kb) = (key(&a), key(&b));
        let listed = |v: Vec<RevokedEntry>| v.into_iter().map(|e| e.serial).collect::<Vec<_>>();
        let mut want_a = vec![by[0].clone(), by[2].clone()];
        want_a.sort();
        for round in ["at revocation", "after attribution"] {
            let got_a = listed(store.revoked_signed_by("pki", &ka, None).await.unwrap());
            assert_eq!(got_a, want_a, "{round}");
            let got_b = listed(store.revoked_signed_by("pki", &kb, None).await.unwrap());
            assert_eq!(got_b, vec![by[1].clone()], "{round}");
            assert_eq!(store.revoked("pki").await.unwrap().len(), 4, "{round}");
            // As a store of an older release left them: no signer.
            sqlx::query("UPDATE certs SET signer = NULL")
                .execute(store.pool())
                .await
                .unwrap();
            assert!(store
                .revoked_signed_by("pki", &ka, None)
                .await
                .unwrap()
                .is_empty());
            assert_eq!(store.attribute_revoked("pki").await.unwrap(), 4, "{round}");
            assert_eq!(store.attribute_revoked("pki").await.unwrap(), 0, "once");
        }
        // A delta: only what came after the point given.
        let seq = store.revocation_seq().await.unwrap();
        assert!(store
            .revoked_signed_by("pki", &ka, Some(seq))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            listed(
                store
                    .revoked_signed_by("pki", &ka, Some(seq - 4))
                    .await
                    .unwrap()
            ),
            want_a
        );
    }
}
