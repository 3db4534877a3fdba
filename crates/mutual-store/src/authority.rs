//! The CA's operations over a store: create roots and intermediates, issue and sign under a
//! role, revoke, build CRLs. The command line and the HTTP server both call these, so a
//! certificate comes out the same whichever door the request came through.

use std::time::Duration;

use mutual_pki::{
    ca::{self, RootRequest, SigningCa},
    cert,
    constraints::{self, Violation},
    crl::{self, Reason},
    csr::ParsedCsr,
    issue,
    key::{KeyType, PrivateKey},
    role::{CheckContext, Checked, IssueRequest, RequestKey, Role, RoleRefusal},
    serial::Serial,
    PkiError,
};
use time::OffsetDateTime;

use crate::inventory::{inventory_names, NameKind};
use crate::{CaRecord, NewCa, NewCert, OwnedCert, RevokeOutcome, Store, StoreError};

/// Vault's default max lease TTL (32 days), the last bound on a leaf's lifetime when its role
/// sets none.
pub const SYSTEM_MAX_TTL: Duration = Duration::from_secs(768 * 3600);

/// How long a CRL is valid before its nextUpdate (Vault's default `crl` expiry: 72h).
pub const CRL_VALIDITY: Duration = Duration::from_secs(72 * 3600);

/// Why an operation of the authority failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// The store failed or the thing asked for is missing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The role refused the request.
    #[error(transparent)]
    Refused(#[from] RoleRefusal),
    /// Bad input bytes or an unsupported key.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A name of the request is outside the name constraints of the CA or a CA above it.
    #[error(transparent)]
    OutsideConstraints(#[from] Violation),
    /// An operation refused in the state the CA is in (a rotation in progress, no default
    /// issuer to rotate), with the reason.
    #[error("{0}")]
    Denied(String),
}

/// Refuses a checked request whose names a CA of the issuing chain may not certify.
fn check_constraints(ca: &CaRecord, checked: &Checked) -> Result<(), Violation> {
    if ca.constraints.is_empty() {
        return Ok(());
    }
    let names = constraints::names_of_request(checked);
    // The top of the chain first, as verifiers walk it.
    for (subject, nc) in ca.constraints.iter().rev() {
        nc.check_all(&names, subject)?;
    }
    Ok(())
}

/// A freshly issued (or signed) certificate and everything a caller needs with it.
#[derive(Debug)]
pub struct Issued {
    /// Serial.
    pub serial: Serial,
    /// Subject CN.
    pub common_name: String,
    /// The leaf, DER.
    pub cert_der: Vec<u8>,
    /// The leaf, PEM.
    pub cert_pem: String,
    /// The issuing CA's certificate, PEM (Vault's `issuing_ca`).
    pub issuing_ca_pem: String,
    /// The issuing CA and every CA above it up to the root, PEM, nearest first (Vault's
    /// `ca_chain`).
    pub ca_chain_pem: Vec<String>,
    /// The generated key, for `issue` (None for `sign`).
    pub key: Option<PrivateKey>,
    /// notBefore of the leaf (Vault's `not_before`).
    pub not_before: OffsetDateTime,
    /// notAfter of the leaf.
    pub not_after: OffsetDateTime,
    /// Name of the issuing CA.
    pub ca_name: String,
    /// Warnings from the role check.
    pub warnings: Vec<String>,
    /// Its subject alternative names as the inventory stores them (typed, normalised), as it
    /// was signed with them.
    pub names: Vec<(NameKind, String)>,
}

impl Issued {
    /// The leaf followed by the issuing chain up to, not including, the self-signed root: what
    /// a server or client presents.
    pub fn presented_chain_pem(&self) -> String {
        let mut out = self.cert_pem.clone();
        for pem in &self.ca_chain_pem {
            let self_signed = cert::pem_certs(pem.as_bytes())
                .ok()
                .and_then(|d| cert::facts(&d[0]).ok())
                .is_some_and(|f| f.self_issued);
            if !self_signed {
                out.push_str(pem);
            }
        }
        out
    }
}

impl CaRecord {
    /// This CA as a signer.
    pub fn signer(&self) -> SigningCa<'_> {
        SigningCa {
            cert_der: &self.cert_der,
            key: &self.key,
            urls: &self.urls,
        }
    }

    /// This CA and the CAs above it, PEM, nearest first.
    pub fn chain_with_self(&self) -> Vec<String> {
        self.chain.clone()
    }
}

/// A certificate signed and not yet recorded: what the CPU-heavy half of issuing produces
/// (run it off the async workers), before [`Signed::into_issued`] and a commit.
#[derive(Debug)]
pub struct Signed {
    /// Serial.
    pub serial: Serial,
    /// The leaf, DER.
    pub der: Vec<u8>,
    /// The generated key, for `issue`.
    pub key: Option<PrivateKey>,
    /// Warnings from the role check.
    pub warnings: Vec<String>,
    /// Subject CN, as signed.
    pub common_name: String,
    /// Validity start, as signed.
    pub not_before: OffsetDateTime,
    /// Validity end, as signed.
    pub not_after: OffsetDateTime,
    /// The role it was issued under (recorded with it; renewal applies it again).
    pub role: String,
    /// Its subject alternative names, as the inventory stores them.
    pub names: Vec<(NameKind, String)>,
}

impl Signed {
    /// The answer to the caller and the row to record.
    pub fn into_issued(self, ca: &CaRecord) -> Result<(Issued, OwnedCert), AuthorityError> {
        let pem = cert::to_pem(&self.der);
        let common_name = self.common_name.clone();
        let record = OwnedCert {
            serial: self.serial.clone(),
            ca: ca.name.clone(),
            common_name: common_name.clone(),
            not_before: self.not_before,
            not_after: self.not_after,
            cert_pem: pem.clone(),
            role: Some(self.role.clone()),
        };
        Ok((
            Issued {
                serial: self.serial,
                common_name,
                cert_der: self.der,
                cert_pem: pem,
                issuing_ca_pem: ca.cert_pem.clone(),
                ca_chain_pem: ca.chain_with_self(),
                key: self.key,
                not_before: self.not_before,
                not_after: self.not_after,
                ca_name: ca.name.clone(),
                warnings: self.warnings,
                names: self.names,
            },
            record,
        ))
    }
}

/// The names `checked` puts in the certificate's subjectAltName (mutual_pki::issue), typed
/// for the inventory.
fn signed_names(checked: &Checked) -> Vec<(NameKind, String)> {
    inventory_names(
        &checked.dns_sans,
        &checked.ip_sans,
        &checked.uri_sans,
        &checked.email_sans,
    )
}

fn context(
    ca: &CaRecord,
    max_ttl: Duration,
    now: OffsetDateTime,
) -> Result<CheckContext, AuthorityError> {
    Ok(CheckContext {
        now,
        ca_name: ca.name.clone(),
        ca_not_after: ca.not_after,
        system_max_ttl: if max_ttl.is_zero() {
            SYSTEM_MAX_TTL
        } else {
            max_ttl
        },
    })
}

/// Issues under `role` by `ca` with a new key: role check, key generation, signature. CPU only;
/// `max_ttl` is the mount's max lease TTL (zero: the system's).
pub fn issue_signed(
    ca: &CaRecord,
    role: &Role,
    max_ttl: Duration,
    req: &IssueRequest,
    now: OffsetDateTime,
) -> Result<Signed, AuthorityError> {
    let ctx = context(ca, max_ttl, now)?;
    let checked = role.check(req, &ctx)?;
    check_constraints(ca, &checked)?;
    let key_type = KeyType::from_parts(
        if role.key_type == "any" {
            "rsa"
        } else {
            &role.key_type
        },
        role.key_bits,
    )?;
    let key = key_type.generate()?;
    let serial = Serial::random();
    let der = issue::sign_leaf_prepared(
        &ca.prepared,
        &checked,
        &key.public_key_der(),
        &key_type.key_kind(),
        &serial,
    )?;
    let names = signed_names(&checked);
    Ok(Signed {
        serial,
        der,
        key: Some(key),
        common_name: checked.common_name,
        not_before: checked.not_before,
        not_after: checked.not_after,
        names,
        warnings: checked.warnings,
        role: role.name.clone(),
    })
}

/// Signs a CSR under `role` by `ca`, with Vault's precedence: the CN is the CSR's when the role
/// has `use_csr_common_name` (and the CSR has one), else the request's; the SANs are the CSR's
/// when the role has `use_csr_sans`, else the request's. CPU only.
pub fn sign_csr(
    ca: &CaRecord,
    role: &Role,
    max_ttl: Duration,
    csr: &ParsedCsr,
    req: &IssueRequest,
    now: OffsetDateTime,
) -> Result<Signed, AuthorityError> {
    let ctx = context(ca, max_ttl, now)?;
    let mut req = req.clone();
    if role.use_csr_common_name && !csr.common_name.is_empty() {
        req.common_name = csr.common_name.clone();
    }
    if role.use_csr_sans {
        req.alt_names = csr.dns_names.clone();
        req.alt_names.extend(csr.emails.iter().cloned());
        req.ip_sans = csr.ip_addresses.iter().map(|ip| ip.to_string()).collect();
        req.uri_sans = csr.uris.clone();
    }
    req.key = RequestKey::Csr(csr.key.clone());
    let checked = role.check(&req, &ctx)?;
    check_constraints(ca, &checked)?;
    let serial = Serial::random();
    let der = issue::sign_leaf_prepared(
        &ca.prepared,
        &checked,
        &csr.public_key_der,
        &csr.key,
        &serial,
    )?;
    let names = signed_names(&checked);
    Ok(Signed {
        serial,
        der,
        key: None,
        common_name: checked.common_name,
        not_before: checked.not_before,
        not_after: checked.not_after,
        names,
        warnings: checked.warnings,
        role: role.name.clone(),
    })
}

/// The role Vault applies to `sign-verbatim`: any name, any key, the CSR's names, with the
/// TTLs of `base` when a role was named.
pub fn sign_verbatim_role(base: Option<&Role>) -> Role {
    let mut role = Role {
        name: "sign-verbatim".into(),
        allow_any_name: true,
        enforce_hostnames: false,
        allow_ip_sans: true,
        allowed_uri_sans: vec!["*".into()],
        key_type: "any".into(),
        require_cn: false,
        ..Role::default()
    };
    if let Some(base) = base {
        role.ttl = base.ttl;
        role.max_ttl = base.max_ttl;
        role.no_store = base.no_store;
        role.leaf_not_after_behavior = base.leaf_not_after_behavior;
        role.not_before_duration = base.not_before_duration;
    }
    role
}

impl Store {
    /// Creates the root CA `name` (self-signed).
    pub async fn init_root(
        &self,
        name: &str,
        req: &RootRequest,
    ) -> Result<CaRecord, AuthorityError> {
        if self.get_ca(name).await.is_ok() {
            return Err(StoreError::Duplicate {
                kind: "CA",
                name: name.to_string(),
            }
            .into());
        }
        let material = ca::generate_root(req, OffsetDateTime::now_utc())?;
        self.put_ca(&NewCa {
            name,
            cert_pem: &material.cert_pem,
            key: &material.key,
            parent: None,
            chain_pem: "",
        })
        .await?;
        self.adopt_ca(name, None).await?;
        Ok(self.get_ca(name).await?)
    }

    /// Creates the intermediate CA `name`, signed by `parent`, in one step.
    pub async fn create_intermediate(
        &self,
        name: &str,
        parent: &str,
        req: &RootRequest,
    ) -> Result<CaRecord, AuthorityError> {
        if self.get_ca(name).await.is_ok() {
            return Err(StoreError::Duplicate {
                kind: "CA",
                name: name.to_string(),
            }
            .into());
        }
        let parent_ca = self.get_ca(parent).await?;
        let material =
            ca::generate_intermediate(&parent_ca.signer(), req, OffsetDateTime::now_utc())?;
        let chain: String = parent_ca.chain_with_self().concat();
        self.put_ca(&NewCa {
            name,
            cert_pem: &material.cert_pem,
            key: &material.key,
            parent: Some(parent),
            chain_pem: &chain,
        })
        .await?;
        self.adopt_ca(name, None).await?;
        Ok(self.get_ca(name).await?)
    }

    /// Issues a certificate with a new key under `role_name`.
    pub async fn issue(
        &self,
        role_name: &str,
        req: &IssueRequest,
    ) -> Result<Issued, AuthorityError> {
        let role = self.get_role(role_name).await?;
        let ca = self.get_ca(&role.issuer).await?;
        let signed = issue_signed(&ca, &role, SYSTEM_MAX_TTL, req, OffsetDateTime::now_utc())?;
        self.finish(&ca, role.no_store, signed).await
    }

    /// Signs a CSR under `role_name`, with Vault's precedence between the CSR and `req` (see
    /// [`sign_csr`]).
    pub async fn sign(
        &self,
        role_name: &str,
        csr: &ParsedCsr,
        req: &IssueRequest,
    ) -> Result<Issued, AuthorityError> {
        let role = self.get_role(role_name).await?;
        let ca = self.get_ca(&role.issuer).await?;
        let signed = sign_csr(
            &ca,
            &role,
            SYSTEM_MAX_TTL,
            csr,
            req,
            OffsetDateTime::now_utc(),
        )?;
        self.finish(&ca, role.no_store, signed).await
    }

    async fn finish(
        &self,
        ca: &CaRecord,
        no_store: bool,
        signed: Signed,
    ) -> Result<Issued, AuthorityError> {
        let (issued, record) = signed.into_issued(ca)?;
        if !no_store {
            // The certificate is handed out only after this commit (and its fsync) returns.
            self.record_cert(&NewCert {
                serial: &record.serial,
                ca: &record.ca,
                common_name: &record.common_name,
                not_before: record.not_before,
                not_after: record.not_after,
                cert_pem: &record.cert_pem,
                role: record.role.as_deref(),
            })
            .await?;
        }
        Ok(issued)
    }

    /// Revokes a certificate by serial.
    pub async fn revoke_serial(
        &self,
        serial: &Serial,
        reason: Reason,
    ) -> Result<RevokeOutcome, AuthorityError> {
        Ok(self
            .revoke(serial, reason, OffsetDateTime::now_utc())
            .await?)
    }

    /// Builds and signs the current CRL of a CA (DER), with the next CRL number: the
    /// certificates its key signed (after a rotation, the old key's leaves are not on it).
    pub async fn build_crl(&self, ca_name: &str) -> Result<Vec<u8>, AuthorityError> {
        let ca = self.get_ca(ca_name).await?;
        self.attribute_revoked(ca_name).await?;
        let key = mutual_pki::issuers::signing_key_id(&ca.cert_der)?;
        let entries = self.revoked_signed_by(ca_name, &key, None).await?;
        let number = self.next_crl_number(ca_name).await?;
        Ok(crl::build(
            &ca.signer(),
            number,
            &entries,
            OffsetDateTime::now_utc(),
            CRL_VALIDITY,
        )?)
    }
}
