//! Where the CA commands do their work: the local store of `--data`, or a running
//! `mutual server` at `--addr`. The commands call one [`Backend`] and print the same way
//! whichever it is.

use std::path::PathBuf;

use anyhow::Result;
use mutual_pki::{
    ca::{RootRequest, Urls},
    crl::Reason,
    csr,
    role::{IssueRequest, Role},
    serial::Serial,
};
use mutual_store::{CertFilter, CertRecord, Issued, RevokeOutcome, Store, StoreError};

use super::ca_info::CaInfo;
use super::remote::Remote;

/// The global flags that choose a backend.
#[derive(Debug, Clone)]
pub struct Target {
    /// `--data`.
    pub data: PathBuf,
    /// `--addr`.
    pub addr: Option<String>,
    /// `--token`.
    pub token: Option<String>,
    /// `--cacert`, for an `https://` `--addr`.
    pub cacert: Option<PathBuf>,
}

impl Target {
    /// Opens the store, or prepares the client of `--addr`.
    pub async fn open(&self) -> Result<Backend> {
        match &self.addr {
            Some(addr) => Ok(Backend::Remote(Remote::new(
                addr,
                self.token.clone(),
                self.cacert.as_deref(),
            )?)),
            None => Ok(Backend::Local(super::open(&self.data).await?)),
        }
    }

    /// As [`Target::open`], creating the local store when there is none (`ca init`).
    pub async fn open_or_create(&self) -> Result<Backend> {
        if self.addr.is_some() {
            return self.open().await;
        }
        if super::database().is_some() {
            return Ok(Backend::Local(super::open(&self.data).await?));
        }
        let store = match Store::open(&self.data).await {
            Ok(s) => s,
            Err(StoreError::NotAStore(_)) => Store::create(&self.data).await?,
            Err(e) => return Err(e.into()),
        };
        Ok(Backend::Local(store))
    }
}

/// The local store or a remote server.
pub enum Backend {
    /// The embedded store of `--data`.
    Local(Store),
    /// A `mutual server` (or Vault) at `--addr`.
    Remote(Remote),
}

impl Backend {
    /// Where the work happened, for the last line of `ca init`: `store DIR` or `server URL`.
    pub fn location(&self) -> (&'static str, String) {
        match self {
            Backend::Local(s) => ("store", s.dir().display().to_string()),
            Backend::Remote(r) => ("server", r.addr.clone()),
        }
    }

    /// Creates the root CA `name`.
    pub async fn init_root(&self, name: &str, req: &RootRequest) -> Result<CaInfo> {
        match self {
            Backend::Local(s) => Ok(s.init_root(name, req).await?.into()),
            Backend::Remote(r) => r.init_root(name, req).await,
        }
    }

    /// Creates the intermediate `name` signed by `parent`.
    pub async fn create_intermediate(
        &self,
        name: &str,
        parent: &str,
        req: &RootRequest,
    ) -> Result<CaInfo> {
        match self {
            Backend::Local(s) => Ok(s.create_intermediate(name, parent, req).await?.into()),
            Backend::Remote(r) => r.create_intermediate(name, parent, req).await,
        }
    }

    /// Every CA.
    pub async fn list_cas(&self) -> Result<Vec<CaInfo>> {
        match self {
            Backend::Local(s) => Ok(s.list_cas().await?.into_iter().map(Into::into).collect()),
            Backend::Remote(r) => r.list_cas().await,
        }
    }

    /// One CA.
    pub async fn issuers(&self, name: &str) -> Result<Vec<super::ca_info::IssuerInfo>> {
        match self {
            Backend::Local(s) => {
                let defaults = s.issuer_defaults(name).await?;
                let rotation = s
                    .advance_rotation(name, time::OffsetDateTime::now_utc())
                    .await?;
                Ok(s.list_issuers(name)
                    .await?
                    .iter()
                    .map(|i| {
                        super::ca_info::IssuerInfo::new(
                            &i.id,
                            &i.name,
                            i.id == defaults.default,
                            &i.cert_der,
                            rotation.as_ref(),
                        )
                    })
                    .collect())
            }
            Backend::Remote(r) => r.issuers(name).await,
        }
    }

    /// A CA by name.
    pub async fn get_ca(&self, name: &str) -> Result<CaInfo> {
        match self {
            Backend::Local(s) => Ok(s.get_ca(name).await?.into()),
            Backend::Remote(r) => r.get_ca(name).await,
        }
    }

    /// Sets a CA's URLs.
    pub async fn set_urls(&self, name: &str, urls: &Urls) -> Result<()> {
        match self {
            Backend::Local(s) => Ok(s.set_urls(name, urls).await?),
            Backend::Remote(r) => r.set_urls(name, urls).await,
        }
    }

    /// Creates or replaces a role of an existing CA.
    pub async fn put_role(&self, role: &Role) -> Result<()> {
        match self {
            Backend::Local(s) => {
                s.get_ca(&role.issuer).await?;
                Ok(s.put_role(role).await?)
            }
            Backend::Remote(r) => r.put_role(role).await,
        }
    }

    /// Every role.
    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        match self {
            Backend::Local(s) => Ok(s.list_roles().await?),
            Backend::Remote(r) => r.list_roles().await,
        }
    }

    /// One role.
    pub async fn get_role(&self, name: &str) -> Result<Role> {
        match self {
            Backend::Local(s) => Ok(s.get_role(name).await?),
            Backend::Remote(r) => r.get_role(name).await,
        }
    }

    /// A new key and certificate under a role.
    pub async fn issue(&self, role: &str, req: &IssueRequest) -> Result<Issued> {
        match self {
            Backend::Local(s) => Ok(s.issue(role, req).await?),
            Backend::Remote(r) => r.issue(role, req).await,
        }
    }

    /// A certificate for a CSR (PEM or DER bytes, already checked to parse).
    pub async fn sign(&self, role: &str, csr_bytes: &[u8], req: &IssueRequest) -> Result<Issued> {
        match self {
            Backend::Local(s) => Ok(s.sign(role, &csr::parse(csr_bytes)?, req).await?),
            Backend::Remote(r) => {
                let text = match std::str::from_utf8(csr_bytes) {
                    Ok(t) if t.contains("-----BEGIN") => t.to_string(),
                    _ => pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", csr_bytes.to_vec())),
                };
                r.sign(role, &text, req).await
            }
        }
    }

    /// Revokes a serial; returns its record (as before) and what happened.
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: Reason,
    ) -> Result<(CertRecord, RevokeOutcome)> {
        match self {
            Backend::Local(s) => {
                let cert = s.get_cert(serial).await?;
                let outcome = s.revoke_serial(serial, reason).await?;
                Ok((cert, outcome))
            }
            Backend::Remote(r) => r.revoke(serial, reason).await,
        }
    }

    /// A CA's current CRL (DER) and how many serials it lists.
    pub async fn crl(&self, ca: &str) -> Result<(Vec<u8>, usize)> {
        match self {
            Backend::Local(s) => {
                let der = s.build_crl(ca).await?;
                let revoked = s.revoked(ca).await?.len();
                Ok((der, revoked))
            }
            Backend::Remote(r) => r.crl(ca).await,
        }
    }

    /// Every issued certificate matching the inventory query `query` (the parameters of
    /// `GET <mount>/inventory`), all pages; `None` from a server without the inventory.
    pub async fn search_certs(
        &self,
        query: &str,
        ca: Option<&str>,
    ) -> Result<Option<Vec<CertRecord>>> {
        match self {
            Backend::Local(s) => {
                let params = mutual_server::Params::parse(b"", Some(query))
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut search =
                    mutual_server::search_from(&params, time::OffsetDateTime::now_utc())
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                search.limit = mutual_store::MAX_PAGE;
                let mut out = Vec::new();
                // Bounded: a million certificates are 2,000 pages.
                for _ in 0..100_000 {
                    let page = s.search_certs(&search).await?;
                    out.extend(page.certs.into_iter().map(|f| f.cert));
                    match page.next {
                        Some(next) => search.cursor = Some(mutual_store::Cursor::decode(&next)?),
                        None => break,
                    }
                }
                Ok(Some(out))
            }
            Backend::Remote(r) => r.search_certs(query, ca).await,
        }
    }

    /// Issued certificates, filtered.
    pub async fn list_certs(&self, filter: &CertFilter) -> Result<Vec<CertRecord>> {
        match self {
            Backend::Local(s) => Ok(s.list_certs(filter).await?),
            Backend::Remote(r) => r.list_certs(filter).await,
        }
    }
}
