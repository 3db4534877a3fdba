//! A CA rotation over the store (the state and its timing are `mutual_pki::rotation`'s): stage
//! the next issuer of a scope with a new key (a root cross-signed by the old key, or an
//! intermediate signed by the old one's parent in this store), switch the default to it when
//! due, retire the old one after its last leaf. The state is the scope's `rotation` document.

use std::time::Duration;

use mutual_pki::{
    ca::RootRequest,
    cert, issuers as logic,
    rotation::{Phase, Rotation, Step},
    serial::Serial,
};
use time::OffsetDateTime;

use crate::{error::db_err, sqlite::from_ts, AuthorityError, IssuerRecord, Store, StoreError};

impl Store {
    /// The scope's rotation, the latest one (finished or not).
    pub async fn rotation(&self, scope: &str) -> Result<Option<Rotation>, StoreError> {
        match self.mount_config(scope, "rotation").await? {
            Some(body) => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("rotation of \"{scope}\": {e}"))),
            None => Ok(None),
        }
    }

    async fn put_rotation(&self, scope: &str, r: &Rotation) -> Result<(), StoreError> {
        let body = serde_json::to_string(r).map_err(StoreError::encode("rotation"))?;
        self.put_mount_config(scope, "rotation", &body).await
    }

    /// Stages a rotation of the scope's default issuer: refused while one is in progress or
    /// when the default cannot be replaced here; issuance switches at `switch_at`.
    pub async fn stage_rotation(
        &self,
        scope: &str,
        switch_at: OffsetDateTime,
        common_name: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Rotation, AuthorityError> {
        let current = self.advance_rotation(scope, now).await?;
        Rotation::may_start(scope, current.as_ref(), now, switch_at)
            .map_err(|e| AuthorityError::Denied(e.to_string()))?;
        let defaults = self.issuer_defaults(scope).await?;
        let issuers = self.list_issuers(scope).await?;
        let old = issuers
            .iter()
            .find(|i| i.id == defaults.default)
            .ok_or_else(|| {
                AuthorityError::Denied(format!("\"{scope}\" has no default issuer to rotate"))
            })?;
        let old_ca = self.issuer_ca(old).await?.ok_or_else(|| {
            AuthorityError::Denied(format!("the default issuer of \"{scope}\" has no key here"))
        })?;
        let facts = cert::facts(&old.cert_der)?;
        let lifetime = (facts.not_after - facts.not_before)
            .try_into()
            .unwrap_or(Duration::from_secs(3600));
        let cn = match common_name {
            Some(cn) => cn.to_string(),
            None => format!(
                "{} {}",
                facts
                    .common_name
                    .clone()
                    .unwrap_or_else(|| scope.to_string()),
                now.date()
            ),
        };
        let req = RootRequest {
            common_name: cn,
            organization: vec![],
            ou: vec![],
            key_type: old_ca.key.key_type(),
            ttl: lifetime,
            path_len: facts.path_len.map(|n| u8::try_from(n).unwrap_or(u8::MAX)),
            name_constraints: Default::default(),
        };
        let key = req.key_type.generate()?;
        let (new_pem, cross_pem) = if facts.self_issued {
            let material = logic::root_with_key(
                &req,
                mutual_pki::key::PrivateKey::from_pkcs8_der(&key.to_der())?,
                now,
            )?;
            // Old trust verifies the new root's leaves through this certificate.
            let cross = logic::resign(
                &old_ca.signer(),
                &material.cert_der,
                Some(&Serial::random()),
                now,
            )?;
            (material.cert_pem, Some(cert::to_pem(&cross)))
        } else {
            let parent = self.parent_of(&old.cert_der).await?.ok_or_else(|| {
                AuthorityError::Denied(format!(
                    "the issuer of \"{}\" is not in this store; rotate \"{scope}\" where its parent CA is",
                    facts.subject
                ))
            })?;
            let csr_pem = logic::csr_with_key(&req.common_name, &[], &[], &key)?;
            let csr = mutual_pki::csr::parse(csr_pem.as_bytes())?;
            let signed = mutual_pki::ca::sign_intermediate(
                &parent.signer(),
                &csr,
                lifetime,
                req.path_len,
                now,
            )?;
            (signed.cert_pem, None)
        };
        let (krec, _) = self.put_issuer_key(scope, "", &key).await?;
        let chain = if facts.self_issued {
            String::new()
        } else {
            old_ca.chain_pem.clone()
        };
        let (new, _) = self
            .put_issuer(scope, None, "", &new_pem, &chain, &krec.id)
            .await?;
        let cross = match cross_pem {
            Some(pem) => {
                let (c, _) = self
                    .put_issuer(scope, None, "", &pem, &old.cert_pem, &krec.id)
                    .await?;
                c.id
            }
            None => String::new(),
        };
        let r = Rotation {
            old: old.id.clone(),
            new: new.id,
            cross,
            phase: Phase::Staged,
            staged_at: now.unix_timestamp(),
            switch_at: switch_at.unix_timestamp().max(now.unix_timestamp()),
            switched_at: None,
            retired_at: None,
            retire_after: None,
        };
        self.put_rotation(scope, &r).await?;
        Ok(self.advance_rotation(scope, now).await?.unwrap_or(r))
    }

    /// Brings the scope's rotation up to `now`: switches issuance when due, retires the old
    /// issuer once its last leaf has expired. Returns it as it then stands.
    pub async fn advance_rotation(
        &self,
        scope: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Rotation>, StoreError> {
        let Some(mut r) = self.rotation(scope).await? else {
            return Ok(None);
        };
        for _ in 0..2 {
            let issuers = self.list_issuers(scope).await?;
            let old = issuers.iter().find(|i| i.id == r.old);
            let last = match (r.phase, old) {
                (Phase::Switched, Some(_)) => r.retire_after.map(from_ts).filter(|t| *t > now),
                _ => None,
            };
            let Some(step) = r.due(now, last) else { break };
            match step {
                Step::Switch => {
                    let mut d = self.issuer_defaults(scope).await?;
                    d.default = r.new.clone();
                    self.set_issuer_defaults(scope, &d).await?;
                    // From here on the old issuer issues nothing: its last leaf is known.
                    r.retire_after = match old {
                        Some(o) => self.last_leaf_of(scope, o, now).await?,
                        None => None,
                    }
                    .map(|t| t.unix_timestamp());
                }
                Step::Retire => {
                    if let Some(o) = old {
                        let mut o = o.clone();
                        o.usage = "crl-signing,read-only".into();
                        self.update_issuer(&o).await?;
                    }
                }
            }
            r.apply(step, now);
            self.put_rotation(scope, &r).await?;
        }
        Ok(Some(r))
    }

    /// The certificates a scope's trust bundle carries besides its default's roots while a
    /// rotation is under way: the other side's root.
    pub async fn rotation_roots(&self, scope: &str) -> Result<Vec<String>, StoreError> {
        let Some(r) = self.rotation(scope).await? else {
            return Ok(vec![]);
        };
        if !r.publishes_old() {
            return Ok(vec![]);
        }
        let issuers = self.list_issuers(scope).await?;
        Ok(issuers
            .iter()
            .filter(|i| i.id == r.old || i.id == r.new)
            .filter(|i| cert::facts(&i.cert_der).is_ok_and(|f| f.self_issued))
            .map(|i| i.cert_pem.clone())
            .collect())
    }

    /// The notAfter of the last unexpired, unrevoked leaf `issuer` signed in `scope`.
    pub async fn last_leaf_of(
        &self,
        scope: &str,
        issuer: &IssuerRecord,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT cert_pem, not_after FROM certs WHERE ca = $1 AND revoked_at IS NULL AND not_after > $2",
        )
        .bind(scope)
        .bind(now.unix_timestamp())
        .fetch_all(self.pool())
        .await
        .map_err(db_err)?;
        let parent = cert::facts(&issuer.cert_der).map_err(corrupt)?;
        Ok(rows
            .into_iter()
            .filter(|(pem, _)| signed_by(pem, &parent))
            .map(|(_, t)| from_ts(t))
            .max())
    }

    /// The CA of this store (any scope's issuer with its key) that signed `der`.
    async fn parent_of(&self, der: &[u8]) -> Result<Option<crate::CaRecord>, StoreError> {
        let child = cert::facts(der).map_err(corrupt)?;
        for scope in self.issuer_scopes().await? {
            for i in self.list_issuers(&scope).await? {
                let Ok(f) = cert::facts(&i.cert_der) else {
                    continue;
                };
                if logic::issued_by(&child, &f) {
                    if let Some(ca) = self.issuer_ca(&i).await? {
                        return Ok(Some(ca));
                    }
                }
            }
        }
        Ok(None)
    }
}

fn signed_by(pem: &str, parent: &cert::CertFacts) -> bool {
    cert::pem_certs(pem.as_bytes())
        .ok()
        .and_then(|d| d.first().and_then(|d| cert::facts(d).ok()))
        .is_some_and(|f| logic::issued_by(&f, parent))
}

fn corrupt(e: mutual_pki::PkiError) -> StoreError {
    StoreError::Corrupt(format!("an issuer certificate: {e}"))
}
