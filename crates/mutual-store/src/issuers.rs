//! Many issuers and keys per CA scope (a server mount's path, or a CA name of the local store),
//! as Vault 1.11+ has them. Each issuer has a UUID, an optional unique name, its certificate,
//! the key it signs with (a row of `pki_keys`, sealed under the KEK), its usage,
//! `leaf_not_after_behavior` and AIA URLs. The scope's default issuer is also the `cas` row of
//! the scope's name, so that every single-issuer path (the CLI, `issue/:role`, `ca`, `crl`)
//! acts on the default without knowing of the others. A store made before issuers existed gets
//! one issuer per CA row when it is opened (idempotent).

use mutual_pki::{ca::Urls, cert, key::PrivateKey};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, sqlite::from_ts, CaRecord, Store, StoreError};

/// The tables of this module, run at every open after `SCHEMA` (portable SQL).
pub(crate) const STATEMENTS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS pki_issuers (
        scope TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        cert_pem TEXT NOT NULL,
        chain_pem TEXT NOT NULL DEFAULT '',
        key_id TEXT NOT NULL DEFAULT '',
        usage TEXT NOT NULL,
        leaf_not_after_behavior TEXT NOT NULL DEFAULT 'err',
        urls TEXT NOT NULL DEFAULT '{}',
        created_at BIGINT NOT NULL,
        revoked_at BIGINT,
        PRIMARY KEY (scope, id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS pki_issuers_name ON pki_issuers(scope, name) WHERE name <> ''",
    "CREATE TABLE IF NOT EXISTS pki_keys (
        scope TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        key_type TEXT NOT NULL,
        key_sealed TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (scope, id))",
    "CREATE UNIQUE INDEX IF NOT EXISTS pki_keys_name ON pki_keys(scope, name) WHERE name <> ''",
];

/// Vault's default usage of a new issuer.
pub const DEFAULT_USAGE: &str = "crl-signing,issuing-certificates,ocsp-signing,read-only";

/// A stored issuer.
#[derive(Debug, Clone)]
pub struct IssuerRecord {
    /// Its scope: the mount path or local CA name.
    pub scope: String,
    /// UUID.
    pub id: String,
    /// Unique name within the scope, or empty.
    pub name: String,
    /// Its certificate, PEM.
    pub cert_pem: String,
    /// Its certificate, DER.
    pub cert_der: Vec<u8>,
    /// PEM of the issuers above it as imported or signed (used when the scope does not hold
    /// them), nearest first.
    pub chain_pem: String,
    /// The key it signs with (empty: a certificate without its key).
    pub key_id: String,
    /// Canonical usage list.
    pub usage: String,
    /// `err`, `truncate` or `permit`.
    pub leaf_not_after_behavior: String,
    /// Its own AIA URLs (empty lists: the mount's).
    pub urls: Urls,
    /// When it was stored.
    pub created_at: OffsetDateTime,
    /// When it was revoked (`issuer/:ref/revoke`), if it was.
    pub revoked_at: Option<OffsetDateTime>,
}

/// A stored key (its private half stays sealed until [`Store::issuer_key`]).
#[derive(Debug, Clone, Serialize)]
pub struct KeyRecord {
    /// UUID.
    pub id: String,
    /// Unique name within the scope, or empty.
    pub name: String,
    /// `rsa`, `ec`, `ed25519`.
    pub key_type: String,
}

/// The scope's `config/issuers` (and `config/keys`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct IssuerDefaults {
    /// The default issuer's ID (empty: none).
    #[serde(default)]
    pub default: String,
    /// A newly generated or imported issuer becomes the default.
    #[serde(default)]
    pub default_follows_latest_issuer: bool,
    /// The default key's ID (empty: none).
    #[serde(default)]
    pub default_key: String,
}

/// A new UUID (v4) as text.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("the system random generator failed");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn seal_context(scope: &str, id: &str) -> String {
    format!("key:{scope}:{id}")
}

fn issuer_from_row(row: &crate::db::Row) -> Result<IssuerRecord, StoreError> {
    let cert_pem: String = row.get("cert_pem");
    let id: String = row.get("id");
    let cert_der = cert::pem_certs(cert_pem.as_bytes())
        .map_err(|e| StoreError::Corrupt(format!("certificate of issuer {id}: {e}")))?
        .remove(0);
    Ok(IssuerRecord {
        scope: row.get("scope"),
        id,
        name: row.get("name"),
        cert_pem,
        cert_der,
        chain_pem: row.get("chain_pem"),
        key_id: row.get("key_id"),
        usage: row.get("usage"),
        leaf_not_after_behavior: row.get("leaf_not_after_behavior"),
        urls: serde_json::from_str(row.get::<&str, _>("urls")).unwrap_or_default(),
        created_at: from_ts(row.get("created_at")),
        revoked_at: row.get::<Option<i64>, _>("revoked_at").map(from_ts),
    })
}

impl Store {
    /// Every issuer of a scope, oldest first.
    pub async fn list_issuers(&self, scope: &str) -> Result<Vec<IssuerRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT * FROM pki_issuers WHERE scope = $1 ORDER BY created_at, id")
                .bind(scope)
                .fetch_all(self.pool())
                .await
                .map_err(db_err)?;
        rows.iter().map(issuer_from_row).collect()
    }

    /// Every key of a scope, oldest first.
    pub async fn list_keys(&self, scope: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, name, key_type FROM pki_keys WHERE scope = $1 ORDER BY created_at, id",
        )
        .bind(scope)
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, key_type)| KeyRecord { id, name, key_type })
            .collect())
    }

    /// A key of a scope, opened.
    pub async fn issuer_key(&self, scope: &str, id: &str) -> Result<PrivateKey, StoreError> {
        let sealed: String =
            sqlx::query_scalar("SELECT key_sealed FROM pki_keys WHERE scope = $1 AND id = $2")
                .bind(scope)
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?
                .ok_or_else(|| StoreError::NotFound {
                    kind: "key",
                    name: id.to_string(),
                })?;
        let sealed = hex::decode(sealed)
            .map_err(|e| StoreError::Corrupt(format!("sealed key {id}: {e}")))?;
        let der = self.kek().open(&seal_context(scope, id), &sealed)?;
        PrivateKey::from_pkcs8_der(&der)
            .map_err(|e| StoreError::Corrupt(format!("key {id} of \"{scope}\": {e}")))
    }

    /// Stores a key; a key whose public half is already stored in the scope is not stored
    /// twice. Returns its record and whether it was there before.
    pub async fn put_issuer_key(
        &self,
        scope: &str,
        name: &str,
        key: &PrivateKey,
    ) -> Result<(KeyRecord, bool), StoreError> {
        for k in self.list_keys(scope).await? {
            if let Ok(existing) = self.issuer_key(scope, &k.id).await {
                if existing.public_key_der() == key.public_key_der() {
                    return Ok((k, true));
                }
            }
        }
        let id = new_uuid();
        let sealed = hex::encode(self.kek().seal(&seal_context(scope, &id), &key.to_der()));
        let key_type = key.key_type().kind().to_string();
        let res = sqlx::query(
            "INSERT INTO pki_keys (scope, id, name, key_type, key_sealed, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(scope)
        .bind(&id)
        .bind(name)
        .bind(&key_type)
        .bind(sealed)
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .execute(self.pool())
        .await;
        unique(res, "key", name)?;
        Ok((
            KeyRecord {
                id,
                name: name.to_string(),
                key_type,
            },
            false,
        ))
    }

    /// Renames a key.
    pub async fn rename_key(&self, scope: &str, id: &str, name: &str) -> Result<(), StoreError> {
        let res = sqlx::query("UPDATE pki_keys SET name = $1 WHERE scope = $2 AND id = $3")
            .bind(name)
            .bind(scope)
            .bind(id)
            .execute(self.pool())
            .await;
        unique(res, "key", name)
    }

    /// Deletes a key; true when it existed.
    pub async fn delete_key(&self, scope: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pki_keys WHERE scope = $1 AND id = $2")
            .bind(scope)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Stores an issuer certificate (with the key it signs with, or none). A certificate
    /// already stored in the scope is not stored twice: its record comes back with `true`.
    pub async fn put_issuer(
        &self,
        scope: &str,
        id: Option<&str>,
        name: &str,
        cert_pem: &str,
        chain_pem: &str,
        key_id: &str,
    ) -> Result<(IssuerRecord, bool), StoreError> {
        let der = cert::pem_certs(cert_pem.as_bytes())
            .map_err(|e| StoreError::Corrupt(format!("issuer certificate: {e}")))?
            .remove(0);
        if let Some(existing) = self
            .list_issuers(scope)
            .await?
            .into_iter()
            .find(|i| i.cert_der == der)
        {
            if existing.key_id.is_empty() && !key_id.is_empty() {
                // Its key arrived later (`bao pki issue` imports the signed certificate after
                // the key was generated): link them.
                sqlx::query("UPDATE pki_issuers SET key_id = $1 WHERE scope = $2 AND id = $3")
                    .bind(key_id)
                    .bind(scope)
                    .bind(&existing.id)
                    .execute(self.pool())
                    .await
                    .map_err(db_err)?;
                return Ok((
                    IssuerRecord {
                        key_id: key_id.to_string(),
                        ..existing
                    },
                    true,
                ));
            }
            return Ok((existing, true));
        }
        let id = id.map(str::to_string).unwrap_or_else(new_uuid);
        // Created in order even within one second: listings and "the latest" rely on it.
        let last: Option<i64> =
            sqlx::query_scalar("SELECT MAX(created_at) FROM pki_issuers WHERE scope = $1")
                .bind(scope)
                .fetch_one(self.pool())
                .await
                .map_err(db_err)?;
        let now = OffsetDateTime::now_utc()
            .unix_timestamp()
            .max(last.unwrap_or(0) + 1);
        let pem = cert::to_pem(&der);
        let res = sqlx::query(
            "INSERT INTO pki_issuers (scope, id, name, cert_pem, chain_pem, key_id, usage, leaf_not_after_behavior, urls, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'err', '{}', $8)",
        )
        .bind(scope)
        .bind(&id)
        .bind(name)
        .bind(&pem)
        .bind(chain_pem)
        .bind(key_id)
        .bind(DEFAULT_USAGE)
        .bind(now)
        .execute(self.pool())
        .await;
        unique(res, "issuer", name)?;
        Ok((
            IssuerRecord {
                scope: scope.to_string(),
                id,
                name: name.to_string(),
                cert_pem: pem,
                cert_der: der,
                chain_pem: chain_pem.to_string(),
                key_id: key_id.to_string(),
                usage: DEFAULT_USAGE.to_string(),
                leaf_not_after_behavior: "err".into(),
                urls: Urls::default(),
                created_at: from_ts(now),
                revoked_at: None,
            },
            false,
        ))
    }

    /// Writes an issuer's name, usage, `leaf_not_after_behavior` and URLs.
    pub async fn update_issuer(&self, issuer: &IssuerRecord) -> Result<(), StoreError> {
        let urls = serde_json::to_string(&issuer.urls).map_err(StoreError::encode("URLs"))?;
        let res = sqlx::query(
            "UPDATE pki_issuers SET name = $1, usage = $2, leaf_not_after_behavior = $3, urls = $4
             WHERE scope = $5 AND id = $6",
        )
        .bind(&issuer.name)
        .bind(&issuer.usage)
        .bind(&issuer.leaf_not_after_behavior)
        .bind(urls)
        .bind(&issuer.scope)
        .bind(&issuer.id)
        .execute(self.pool())
        .await;
        unique(res, "issuer", &issuer.name)?;
        self.project_default(&issuer.scope).await
    }

    /// Revokes an issuer (Vault's `issuer/:ref/revoke`): it issues no more, and when its
    /// certificate was issued in this scope it joins its parent's CRL. Revoking twice changes
    /// nothing.
    pub async fn revoke_issuer(
        &self,
        issuer: &IssuerRecord,
        now: OffsetDateTime,
    ) -> Result<IssuerRecord, StoreError> {
        if issuer.revoked_at.is_some() {
            return Ok(issuer.clone());
        }
        let usage: Vec<&str> = issuer
            .usage
            .split(',')
            .filter(|u| *u != "issuing-certificates")
            .collect();
        let usage = usage.join(",");
        sqlx::query(
            "UPDATE pki_issuers SET revoked_at = $1, usage = $2 WHERE scope = $3 AND id = $4",
        )
        .bind(now.unix_timestamp())
        .bind(&usage)
        .bind(&issuer.scope)
        .bind(&issuer.id)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        let serial = cert::facts(&issuer.cert_der)
            .map_err(|e| StoreError::Corrupt(format!("issuer {}: {e}", issuer.id)))?
            .serial;
        if self
            .get_cert(&serial)
            .await
            .is_ok_and(|c| c.ca == issuer.scope)
        {
            self.revoke(&serial, mutual_pki::crl::Reason::Unspecified, now)
                .await?;
        }
        self.project_default(&issuer.scope).await?;
        Ok(IssuerRecord {
            usage,
            revoked_at: Some(now),
            ..issuer.clone()
        })
    }

    /// Deletes an issuer; true when it existed.
    pub async fn delete_issuer(&self, scope: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM pki_issuers WHERE scope = $1 AND id = $2")
            .bind(scope)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes every issuer and key of a scope and its defaults (Vault's `DELETE root`).
    pub async fn delete_all_issuers(&self, scope: &str) -> Result<(), StoreError> {
        for sql in [
            "DELETE FROM pki_issuers WHERE scope = $1",
            "DELETE FROM pki_keys WHERE scope = $1",
            "DELETE FROM mount_config WHERE mount = $1 AND kind = 'issuers'",
        ] {
            sqlx::query(sql)
                .bind(scope)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }

    /// The scope's defaults.
    pub async fn issuer_defaults(&self, scope: &str) -> Result<IssuerDefaults, StoreError> {
        Ok(match self.mount_config(scope, "issuers").await? {
            Some(body) => serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("config/issuers of \"{scope}\": {e}")))?,
            None => IssuerDefaults::default(),
        })
    }

    /// Writes the scope's defaults and makes the default issuer the scope's CA row.
    pub async fn set_issuer_defaults(
        &self,
        scope: &str,
        defaults: &IssuerDefaults,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(defaults).map_err(StoreError::encode("config/issuers"))?;
        self.put_mount_config(scope, "issuers", &body).await?;
        self.project_default(scope).await
    }

    /// The issuer `issuer` as a signing CA (None when its key is not stored), named after its
    /// scope so that what it issues is recorded in the scope.
    pub async fn issuer_ca(&self, issuer: &IssuerRecord) -> Result<Option<CaRecord>, StoreError> {
        if issuer.key_id.is_empty() {
            return Ok(None);
        }
        let key = self.issuer_key(&issuer.scope, &issuer.key_id).await?;
        let all = self.list_issuers(&issuer.scope).await?;
        let chain = self.chain_pem_of(issuer, &all);
        let urls = self.urls_of(issuer).await?;
        Ok(Some(crate::sqlite::assemble_ca(
            issuer.scope.clone(),
            issuer.cert_pem.clone(),
            key,
            None,
            chain,
            urls,
        )?))
    }

    /// The issuers above `issuer`, PEM, nearest first: found among the scope's issuers, else
    /// as imported.
    pub fn chain_pem_of(&self, issuer: &IssuerRecord, all: &[IssuerRecord]) -> String {
        let facts: Vec<_> = all
            .iter()
            .filter_map(|i| cert::facts(&i.cert_der).ok())
            .collect();
        if facts.len() != all.len() {
            return issuer.chain_pem.clone();
        }
        let Some(start) = all.iter().position(|i| i.id == issuer.id) else {
            return issuer.chain_pem.clone();
        };
        let order = mutual_pki::issuers::chain_of(start, &facts);
        if order.len() == 1 && !facts[start].self_issued {
            return issuer.chain_pem.clone();
        }
        order[1..]
            .iter()
            .map(|&i| all[i].cert_pem.clone())
            .collect()
    }

    /// The URLs an issuer stamps: its own, else its scope's (the mount's `config/urls`, or
    /// for a CA of the local store its CA row's, `mutual ca urls`).
    pub async fn urls_of(&self, issuer: &IssuerRecord) -> Result<Urls, StoreError> {
        let u = &issuer.urls;
        if !u.issuing_certificates.is_empty()
            || !u.crl_distribution_points.is_empty()
            || !u.ocsp_servers.is_empty()
        {
            return Ok(u.clone());
        }
        let mount: Option<String> = sqlx::query_scalar("SELECT urls FROM mounts WHERE path = $1")
            .bind(&issuer.scope)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        if let Some(m) = mount {
            return Ok(serde_json::from_str(&m).unwrap_or_default());
        }
        // A CA of the local store: the URLs `mutual ca urls` gave its CA row.
        let ca: Option<String> = sqlx::query_scalar("SELECT urls FROM cas WHERE name = $1")
            .bind(&issuer.scope)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(ca
            .and_then(|u| serde_json::from_str(&u).ok())
            .unwrap_or_default())
    }

    /// Makes the scope's `cas` row its default issuer (removes it when the default has no key
    /// or there is none), keeping the row's CRL number.
    pub async fn project_default(&self, scope: &str) -> Result<(), StoreError> {
        let defaults = self.issuer_defaults(scope).await?;
        let all = self.list_issuers(scope).await?;
        let Some(issuer) = all.iter().find(|i| i.id == defaults.default) else {
            // No default: the scope has no CA row, unless the scope knows nothing of
            // issuers (a CA made before them: the row stays until it is adopted).
            if !all.is_empty() {
                self.delete_ca(scope).await?;
            }
            return Ok(());
        };
        if issuer.key_id.is_empty() {
            self.delete_ca(scope).await?;
            return Ok(());
        }
        let key = self.issuer_key(scope, &issuer.key_id).await?;
        let sealed = self.kek().seal(scope, &key.to_der());
        let chain = self.chain_pem_of(issuer, &all);
        let urls = serde_json::to_string(&self.urls_of(issuer).await?)
            .map_err(StoreError::encode("URLs"))?;
        sqlx::query(
            "INSERT INTO cas (name, cert_pem, key_sealed, parent, chain_pem, urls, created_at)
             VALUES ($1, $2, $3, NULL, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET cert_pem = excluded.cert_pem,
                key_sealed = excluded.key_sealed, chain_pem = excluded.chain_pem,
                urls = excluded.urls",
        )
        .bind(scope)
        .bind(&issuer.cert_pem)
        .bind(sealed)
        .bind(chain)
        .bind(urls)
        .bind(OffsetDateTime::now_utc().unix_timestamp())
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Makes the `cas` row of `scope` an issuer of the scope when it is not one (a CA made by
    /// a single-issuer path, or by a release before issuers): its key becomes a key, the
    /// issuer the default. Idempotent; `id` is the issuer ID to use when free (a mount keeps
    /// its UUID as the ID it always answered).
    pub async fn adopt_ca(&self, scope: &str, id: Option<&str>) -> Result<(), StoreError> {
        let ca = match self.get_ca(scope).await {
            Ok(ca) => ca,
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let all = self.list_issuers(scope).await?;
        if all.iter().any(|i| i.cert_der == ca.cert_der) {
            return Ok(());
        }
        let id = id.filter(|id| !all.iter().any(|i| i.id == *id));
        let (key, _) = self.put_issuer_key(scope, "", &ca.key).await?;
        let (issuer, _) = self
            .put_issuer(scope, id, "", &ca.cert_pem, &ca.chain_pem, &key.id)
            .await?;
        let mut defaults = self.issuer_defaults(scope).await?;
        defaults.default = issuer.id;
        if defaults.default_key.is_empty() {
            defaults.default_key = key.id;
        }
        self.set_issuer_defaults(scope, &defaults).await
    }

    /// Adopts every CA row of the store (at open): stores older than issuers gain them.
    pub(crate) async fn adopt_all(&self) -> Result<(), StoreError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT cas.name, mounts.uuid FROM cas LEFT JOIN mounts ON mounts.path = cas.name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        for (name, uuid) in rows {
            self.adopt_ca(&name, uuid.as_deref()).await?;
        }
        Ok(())
    }

    /// Imports a CA made elsewhere into `scope` (migration from Vault): `chain` is its
    /// certificate then the issuers above it (PEM), `key` its key when the caller has it
    /// (checked against the certificate before anything is stored). It becomes the default
    /// issuer when the scope has none. Idempotent.
    pub async fn import_ca(
        &self,
        scope: &str,
        chain: &[String],
        key: Option<&PrivateKey>,
    ) -> Result<IssuerRecord, crate::AuthorityError> {
        let first = chain.first().ok_or_else(|| {
            crate::AuthorityError::Denied("the CA to import has no certificate".into())
        })?;
        let der = cert::pem_certs(first.as_bytes())?.remove(0);
        if let Some(key) = key {
            mutual_pki::ca::check_key_matches(&der, key)?;
        }
        let key_id = match key {
            Some(k) => self.put_issuer_key(scope, "", k).await?.0.id,
            None => String::new(),
        };
        let (issuer, _) = self
            .put_issuer(scope, None, "", first, &chain[1..].concat(), &key_id)
            .await?;
        // The issuers above it too (without keys), so that chains and `ca_chain` are whole.
        for (i, pem) in chain.iter().enumerate().skip(1) {
            self.put_issuer(scope, None, "", pem, &chain[i + 1..].concat(), "")
                .await?;
        }
        let mut d = self.issuer_defaults(scope).await?;
        let current = self.list_issuers(scope).await?;
        if !current.iter().any(|i| i.id == d.default) {
            d.default = issuer.id.clone();
            d.default_key = key_id;
            self.set_issuer_defaults(scope, &d).await?;
        }
        Ok(issuer)
    }

    /// Records a certificate issued elsewhere in `scope`, revoked at `revoked` when it was;
    /// true when it was not recorded before.
    pub async fn import_cert(
        &self,
        scope: &str,
        pem: &str,
        revoked: Option<(OffsetDateTime, mutual_pki::crl::Reason)>,
    ) -> Result<bool, crate::AuthorityError> {
        let der = cert::pem_certs(pem.as_bytes())?.remove(0);
        let f = cert::facts(&der)?;
        let new = match self.get_cert(&f.serial).await {
            Ok(_) => false,
            Err(StoreError::NotFound { .. }) => {
                self.record_cert(&crate::NewCert {
                    serial: &f.serial,
                    ca: scope,
                    common_name: f.common_name.as_deref().unwrap_or(""),
                    not_before: f.not_before,
                    not_after: f.not_after,
                    cert_pem: &cert::to_pem(&der),
                    role: None,
                })
                .await?;
                true
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((at, reason)) = revoked {
            self.revoke(&f.serial, reason, at).await?;
        }
        Ok(new)
    }

    /// Every scope that has issuers, with them (for `mutual ca list`).
    pub async fn issuer_scopes(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT DISTINCT scope FROM pki_issuers ORDER BY scope")
            .fetch_all(self.pool())
            .await
            .map_err(db_err)
    }
}

fn unique(
    res: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    kind: &'static str,
    name: &str,
) -> Result<(), StoreError> {
    match res {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::Duplicate {
            kind,
            name: name.to_string(),
        }),
        Err(e) => Err(db_err(e)),
    }
}
