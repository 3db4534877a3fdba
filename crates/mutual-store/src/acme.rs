//! The ACME server's objects (accounts, orders, authorizations, EAB keys, issued certificates)
//! as JSON documents by mount, kind and ID. The protocol's rules are `mutual-acme`'s and the
//! documents' shape `mutual-server`'s; this module only keeps them. Portable SQL: it runs on
//! SQLite and on PostgreSQL.

use sqlx::Row;

use crate::{error::db_err, Store, StoreError};

/// One stored ACME object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeObject {
    /// Its ID (the last segment of its URL).
    pub id: String,
    /// The account it belongs to (empty for an account or an EAB key).
    pub account: String,
    /// A secondary key: an account's key thumbprint, an EAB key's account once used.
    pub lookup: String,
    /// The JSON document.
    pub body: String,
    /// Unix seconds after which tidy may remove it (0: never).
    pub expires: i64,
}

fn object(r: &crate::db::Row) -> AcmeObject {
    AcmeObject {
        id: r.get("id"),
        account: r.get("account"),
        lookup: r.get("lookup"),
        body: r.get("body"),
        expires: r.get("expires"),
    }
}

impl Store {
    /// Creates or replaces object `o.id` of `kind` on `mount`.
    pub async fn acme_put(
        &self,
        mount: &str,
        kind: &str,
        o: &AcmeObject,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO acme_objects (mount, kind, id, account, lookup, body, expires) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (mount, kind, id) DO UPDATE SET \
             account = excluded.account, lookup = excluded.lookup, body = excluded.body, \
             expires = excluded.expires",
        )
        .bind(mount)
        .bind(kind)
        .bind(&o.id)
        .bind(&o.account)
        .bind(&o.lookup)
        .bind(&o.body)
        .bind(o.expires)
        .execute(self.pool())
        .await
        .map_err(db_err)?;
        Ok(())
    }

    /// Object `id` of `kind` on `mount`.
    pub async fn acme_get(
        &self,
        mount: &str,
        kind: &str,
        id: &str,
    ) -> Result<Option<AcmeObject>, StoreError> {
        let row = sqlx::query(
            "SELECT id, account, lookup, body, expires FROM acme_objects \
             WHERE mount = $1 AND kind = $2 AND id = $3",
        )
        .bind(mount)
        .bind(kind)
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        Ok(row.as_ref().map(object))
    }

    /// The object of `kind` on `mount` whose lookup key is `lookup`.
    pub async fn acme_find(
        &self,
        mount: &str,
        kind: &str,
        lookup: &str,
    ) -> Result<Option<AcmeObject>, StoreError> {
        let row = sqlx::query(
            "SELECT id, account, lookup, body, expires FROM acme_objects \
             WHERE mount = $1 AND kind = $2 AND lookup = $3 ORDER BY id LIMIT 1",
        )
        .bind(mount)
        .bind(kind)
        .bind(lookup)
        .fetch_optional(self.pool())
        .await
        .map_err(db_err)?;
        Ok(row.as_ref().map(object))
    }

    /// Every object of `kind` on `mount`, or only `account`'s when given, by ID.
    pub async fn acme_list(
        &self,
        mount: &str,
        kind: &str,
        account: Option<&str>,
    ) -> Result<Vec<AcmeObject>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, account, lookup, body, expires FROM acme_objects \
             WHERE mount = $1 AND kind = $2 AND ($3 = '' OR account = $3) ORDER BY id",
        )
        .bind(mount)
        .bind(kind)
        .bind(account.unwrap_or(""))
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        Ok(rows.iter().map(object).collect())
    }

    /// Removes object `id` of `kind` on `mount`; true when it existed.
    pub async fn acme_delete(&self, mount: &str, kind: &str, id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM acme_objects WHERE mount = $1 AND kind = $2 AND id = $3")
                .bind(mount)
                .bind(kind)
                .bind(id)
                .execute(self.pool())
                .await
                .map_err(db_err)?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the objects of `kinds` on `mount` whose expiry is set and before `before` (Unix
    /// seconds): stale orders and authorizations. Returns how many went.
    pub async fn acme_tidy(
        &self,
        mount: &str,
        kinds: &[&str],
        before: i64,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        for kind in kinds {
            let done = sqlx::query(
                "DELETE FROM acme_objects \
                 WHERE mount = $1 AND kind = $2 AND expires > 0 AND expires < $3",
            )
            .bind(mount)
            .bind(kind)
            .bind(before)
            .execute(self.pool())
            .await
            .map_err(db_err)?;
            n += done.rows_affected();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(id: &str, account: &str, lookup: &str, expires: i64) -> AcmeObject {
        AcmeObject {
            id: id.into(),
            account: account.into(),
            lookup: lookup.into(),
            body: format!("{{\"id\":\"{id}\"}}"),
            expires,
        }
    }

    #[tokio::test]
    async fn objects_kept_found_listed_and_tidied() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(dir.path()).await.unwrap();
        store
            .acme_put("pki", "account", &obj("a1", "", "thumb1", 0))
            .await
            .unwrap();
        store
            .acme_put("pki", "order", &obj("o1", "a1", "", 100))
            .await
            .unwrap();
        store
            .acme_put("pki", "order", &obj("o2", "a1", "", 300))
            .await
            .unwrap();
        store
            .acme_put("pki", "order", &obj("o3", "a2", "", 0))
            .await
            .unwrap();
        store
            .acme_put("other", "order", &obj("o4", "a1", "", 100))
            .await
            .unwrap();
        // A second put replaces.
        let mut a1 = obj("a1", "", "thumb2", 0);
        a1.body = "{\"status\":\"deactivated\"}".into();
        store.acme_put("pki", "account", &a1).await.unwrap();
        assert_eq!(
            store.acme_get("pki", "account", "a1").await.unwrap(),
            Some(a1.clone())
        );
        assert_eq!(
            store.acme_find("pki", "account", "thumb2").await.unwrap(),
            Some(a1)
        );
        assert_eq!(
            store.acme_find("pki", "account", "thumb1").await.unwrap(),
            None
        );
        let ids = |v: Vec<AcmeObject>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.acme_list("pki", "order", Some("a1")).await.unwrap()),
            ["o1", "o2"]
        );
        assert_eq!(
            ids(store.acme_list("pki", "order", None).await.unwrap()),
            ["o1", "o2", "o3"]
        );
        assert_eq!(
            store
                .acme_tidy("pki", &["order", "authz"], 200)
                .await
                .unwrap(),
            1,
            "o1 only: o2 is fresh, o3 never expires, o4 is another mount's"
        );
        assert_eq!(
            ids(store.acme_list("pki", "order", None).await.unwrap()),
            ["o2", "o3"]
        );
        assert!(store.acme_delete("pki", "order", "o2").await.unwrap());
        assert!(!store.acme_delete("pki", "order", "o2").await.unwrap());
        assert_eq!(store.acme_get("pki", "order", "o2").await.unwrap(), None);
    }
}
