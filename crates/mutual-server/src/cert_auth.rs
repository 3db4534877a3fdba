//! `auth/cert/login`: Vault's `cert` auth method. The TLS listener verifies the caller's
//! client certificate and puts a [`ClientCert`] into the request's extensions; a login turns
//! it into a new token scoped to the mounts that the operator granted to that identity.

use serde_json::json;

use crate::{error::ApiError, reply::Reply, state::App, Op};

/// A client certificate that the TLS listener verified against its client CA, with the mounts
/// that the server's configuration grants to it. The listener inserts it into the extensions
/// of every request of the connection; a request without one presented no certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The certificate's common name (empty when it has none).
    pub common_name: String,
    /// The certificate's subject, as text.
    pub subject: String,
    /// The mounts a login with this certificate may use; empty when no rule grants any.
    pub mounts: Vec<String>,
    /// The chain as the listener verified it, leaf first (DER).
    pub chain: Vec<Vec<u8>>,
}

/// Answers `auth/cert/login`: 400 without a verified certificate, 403 when no rule grants
/// it a mount, else a new token scoped to the granted mounts in Vault's `{"auth": …}` shape.
pub(crate) async fn login(app: &App, op: Op, cert: Option<&ClientCert>) -> Result<Reply, ApiError> {
    if op != Op::Write {
        return Err(ApiError::MethodNotAllowed);
    }
    let cert = cert.ok_or_else(|| ApiError::bad("client certificate required"))?;
    if cert.mounts.is_empty() || cert.mounts.iter().any(|m| m == mutual_store::ALL_MOUNTS) {
        return Err(ApiError::PermissionDenied);
    }
    let name = if cert.common_name.is_empty() {
        &cert.subject
    } else {
        &cert.common_name
    };
    let (secret, rec) = app
        .store
        .create_token(&format!("cert-{name}"), &cert.mounts)
        .await?;
    Ok(Reply::Auth(json!({
        "client_token": secret,
        "accessor": rec.accessor,
        "policies": rec.mounts,
        "token_policies": rec.mounts,
        "metadata": {"common_name": cert.common_name, "subject": cert.subject},
        "lease_duration": 0,
        "renewable": false,
        "entity_id": "",
        "token_type": "service",
        "orphan": true,
    })))
}
