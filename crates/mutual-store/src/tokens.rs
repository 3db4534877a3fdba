//! API tokens: random secrets shown once and stored only as their SHA-256, each scoped to a
//! list of mounts (`*` for all, the root token's scope). A bootstrap token (one with a role)
//! may only issue under that role, a limited number of times, until it expires: each use is
//! taken by one conditional UPDATE, so two concurrent uses of the last one cannot both win.

use aws_lc_rs::digest;
use sqlx::Row;
use time::OffsetDateTime;

use crate::{error::db_err, Store, StoreError};

/// The scope of a token that may do everything, `sys/` included.
pub const ALL_MOUNTS: &str = "*";

/// A stored token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    /// A non-secret name for the token, to revoke or audit it by.
    pub accessor: String,
    /// Free text shown in `lookup-self`.
    pub display_name: String,
    /// Mounts the token may use; `*` means all, and the `sys/` API.
    pub mounts: Vec<String>,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// For a bootstrap token, the one role it may issue under (on its one mount).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// How many issuances it allows; 0 for no limit.
    pub num_uses: u32,
    /// How many it has made.
    pub uses: u32,
    /// When it stops working (None: never).
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Its ACL policies (Vault's); a token made before policies has none, and its `mounts`
    /// stand for them.
    pub policies: Vec<String>,
    /// The accessor of the token that created it; `None` for an orphan. Revoking a token
    /// revokes its children.
    pub parent: Option<String>,
    /// How it lives and renews.
    pub lease: TokenLease,
}

/// The lease of a token: what a renewal and `lookup` need besides its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TokenLease {
    /// The TTL (seconds) a renewal without increment gives back.
    pub ttl: u64,
    /// The backend's max TTL (a role's `token_max_ttl`), 0 for none.
    pub max_ttl: u64,
    /// `explicit_max_ttl`, 0 for none.
    pub explicit_max_ttl: u64,
    /// `period`, 0 for none.
    pub period: u64,
    /// Whether it may be renewed.
    pub renewable: bool,
    /// The path that created it (`auth/token/create`, `auth/approle/login`).
    pub path: String,
    /// Free metadata (`role_name` of an AppRole login).
    pub meta: std::collections::BTreeMap<String, String>,
    /// CIDR blocks the token may be used from (`token_bound_cidrs`); empty for anywhere.
    pub bound_cidrs: Vec<String>,
}

/// What a new token may do.
#[derive(Debug, Clone, Default)]
pub struct TokenSpec {
    /// Free text shown in `lookup-self`.
    pub display_name: String,
    /// Mounts it may use (`*`: all).
    pub mounts: Vec<String>,
    /// A bootstrap token's role (exactly one mount then).
    pub role: Option<String>,
    /// How many issuances a bootstrap token allows (0: no limit).
    pub num_uses: u32,
    /// How long it works (None: until revoked).
    pub ttl: Option<std::time::Duration>,
    /// ACL policies.
    pub policies: Vec<String>,
    /// The parent's accessor (None: an orphan).
    pub parent: Option<String>,
    /// Lease.
    pub lease: TokenLease,
}

/// What taking one use of a bootstrap token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenUse {
    /// Taken: this was use `used` of `of` (0: no limit).
    Taken {
        /// Uses made, this one included.
        used: u32,
        /// Uses allowed.
        of: u32,
    },
    /// Every use was taken before.
    UsedUp {
        /// Uses allowed.
        of: u32,
    },
    /// It expired at this time.
    Expired {
        /// When.
        at: OffsetDateTime,
    },
    /// No such token (revoked meanwhile).
    Gone,
}

impl TokenRecord {
    /// True for a token that may do everything (the root token).
    pub fn is_root(&self) -> bool {
        self.mounts.iter().any(|m| m == ALL_MOUNTS) || self.policies.iter().any(|p| p == "root")
    }

    /// True when the token may use `mount`.
    pub fn allows(&self, mount: &str) -> bool {
        self.is_root() || self.mounts.iter().any(|m| m == mount)
    }

    /// True once its TTL has passed at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The stored form of a secret: hex SHA-256.
pub fn token_hash(secret: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("the system random generator failed");
    hex::encode(b)
}

impl Store {
    /// Creates a token scoped to `mounts` and returns its secret (shown once, stored hashed).
    pub async fn create_token(
        &self,
        display_name: &str,
        mounts: &[String],
    ) -> Result<(String, TokenRecord), StoreError> {
        self.create_token_with(&TokenSpec {
            display_name: display_name.to_string(),
            mounts: mounts.to_vec(),
            ..TokenSpec::default()
        })
        .await
    }

    /// Creates a token as `spec` says and returns its secret (shown once, stored hashed).
    pub async fn create_token_with(
        &self,
        spec: &TokenSpec,
    ) -> Result<(String, TokenRecord), StoreError> {
        let secret = format!("mutual.{}", random_hex(24));
        let now = OffsetDateTime::now_utc();
        let record = TokenRecord {
            accessor: random_hex(12),
            display_name: spec.display_name.clone(),
            mounts: spec.mounts.clone(),
            created_at: now,
            role: spec.role.clone(),
            num_uses: spec.num_uses,
            uses: 0,
            expires_at: spec.ttl.map(|t| now + t),
            policies: spec.policies.clone(),
            parent: spec.parent.clone(),
            lease: spec.lease.clone(),
        };
        self.put_token(&secret, &record).await?;
        Ok((secret, record))
    }

    /// Takes one use of a bootstrap token, atomically: of concurrent callers for the last use,
    /// exactly one gets [`TokenUse::Taken`].
    pub async fn take_token_use(
        &self,
        secret: &str,
        now: OffsetDateTime,
    ) -> Result<TokenUse, StoreError> {
        let hash = token_hash(secret);
        let taken: Option<(i64, i64)> = sqlx::query_as(
            "UPDATE tokens SET uses = uses + 1 WHERE hash = $1 \
             AND (num_uses = 0 OR uses < num_uses) \
             AND (expires_at IS NULL OR expires_at > $2) RETURNING uses, num_uses",
        )
        .bind(&hash)
        .bind(now.unix_timestamp())
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        if let Some((used, of)) = taken {
            return Ok(TokenUse::Taken {
                used: used as u32,
                of: of as u32,
            });
        }
        let row: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT num_uses, expires_at FROM tokens WHERE hash = $1")
                .bind(&hash)
                .fetch_optional(self.pool())
                .await
                .map_err(db_err)?;
        Ok(match row {
            None => TokenUse::Gone,
            Some((_, Some(at))) if at <= now.unix_timestamp() => TokenUse::Expired {
                at: OffsetDateTime::from_unix_timestamp(at).unwrap_or(now),
            },
            Some((of, _)) => TokenUse::UsedUp { of: of as u32 },
        })
    }

    /// Gives back a use taken by [`Store::take_token_use`] for an issuance that then failed
    /// (a refused name must not burn a one-time token).
    pub async fn return_token_use(&self, secret: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET uses = uses - 1 WHERE hash = $1 AND uses > 0")
            .bind(token_hash(secret))
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Stores a token with a secret chosen by the caller (the dev server's root token).
    pub async fn put_token(&self, secret: &str, record: &TokenRecord) -> Result<(), StoreError> {
        let mounts =
            serde_json::to_string(&record.mounts).map_err(StoreError::encode("token mounts"))?;
        sqlx::query(
            "INSERT INTO tokens (hash, accessor, display_name, mounts, created_at, role, num_uses, uses, expires_at, policies, parent, lease) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (hash) DO UPDATE SET accessor = excluded.accessor, display_name = excluded.display_name, \
             mounts = excluded.mounts, created_at = excluded.created_at, role = excluded.role, \
             num_uses = excluded.num_uses, uses = excluded.uses, expires_at = excluded.expires_at, \
             policies = excluded.policies, parent = excluded.parent, lease = excluded.lease",
        )
        .bind(token_hash(secret))
        .bind(&record.accessor)
        .bind(&record.display_name)
        .bind(mounts)
        .bind(record.created_at.unix_timestamp())
        .bind(&record.role)
        .bind(i64::from(record.num_uses))
        .bind(i64::from(record.uses))
        .bind(record.expires_at.map(|t| t.unix_timestamp()))
        .bind(serde_json::to_string(&record.policies).map_err(StoreError::encode("token policies"))?)
        .bind(&record.parent)
        .bind(serde_json::to_string(&record.lease).map_err(StoreError::encode("token lease"))?)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// The token whose secret this is, if any.
    pub async fn lookup_token(&self, secret: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens WHERE hash = $1"))
            .bind(token_hash(secret))
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| token_from_row(&r)))
    }

    /// Every token, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM tokens ORDER BY created_at, accessor"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows.iter().map(token_from_row).collect())
    }

    /// Revokes the token given by its secret or its accessor, and with it every token it
    /// created (children, their children, …); true when one was revoked.
    pub async fn revoke_token(&self, secret_or_accessor: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "WITH RECURSIVE tree(a) AS ( \
               SELECT accessor FROM tokens WHERE hash = $1 OR accessor = $2 \
               UNION SELECT t.accessor FROM tokens t JOIN tree ON t.parent = tree.a) \
             DELETE FROM tokens WHERE accessor IN (SELECT a FROM tree)",
        )
        .bind(token_hash(secret_or_accessor))
        .bind(secret_or_accessor)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Every node drops the tokens it holds in memory (notify.rs).
        self.note_change("tokens").await?;
        Ok(true)
    }

    /// The token with this accessor, if any.
    pub async fn lookup_token_accessor(
        &self,
        accessor: &str,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tokens WHERE accessor = $1"))
            .bind(accessor)
            .fetch_optional(self.pool())
            .await
            .map_err(db_err)?;
        Ok(row.map(|r| token_from_row(&r)))
    }

    /// Sets a token's expiry after a renewal.
    pub async fn renew_token(
        &self,
        accessor: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE tokens SET expires_at = $1 WHERE accessor = $2")
            .bind(expires_at.unix_timestamp())
            .bind(accessor)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
        Ok(())
    }
}

const COLUMNS: &str =
    "accessor, display_name, mounts, created_at, role, num_uses, uses, expires_at, policies, parent, lease";

fn token_from_row(r: &crate::db::Row) -> TokenRecord {
    let mounts: String = r.get("mounts");
    TokenRecord {
        accessor: r.get("accessor"),
        display_name: r.get("display_name"),
        mounts: serde_json::from_str(&mounts).unwrap_or_default(),
        created_at: OffsetDateTime::from_unix_timestamp(r.get("created_at"))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        role: r.get("role"),
        num_uses: r.get::<i64, _>("num_uses").max(0) as u32,
        uses: r.get::<i64, _>("uses").max(0) as u32,
        expires_at: r
            .get::<Option<i64>, _>("expires_at")
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        policies: r
            .get::<Option<String>, _>("policies")
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        parent: r.get("parent"),
        lease: r
            .get::<Option<String>, _>("lease")
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_default(),
    }
}
