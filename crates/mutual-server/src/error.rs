//! API errors and the one place they become Vault's status codes and `{"errors": [...]}` bodies.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use mutual_pki::{role::RoleRefusal, PkiError};
use mutual_store::{AuthorityError, StoreError};

/// Why a request failed, as the API tells it. The failures of the layers below keep their
/// type (and their inputs) up to here; [`ApiError::status`] and [`ApiError::body`] are the one
/// place that turns them into HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, or one that does not allow this path (Vault: 403 `permission denied`).
    #[error("permission denied")]
    PermissionDenied,
    /// Refused, with the reason (403): a bootstrap token used outside its scope, used up or
    /// expired; a certificate that may not renew.
    #[error("{0}")]
    Forbidden(String),
    /// A bad parameter, a refused request, anything the caller must fix (400).
    #[error("{0}")]
    BadRequest(String),
    /// No mount or no handler at this path (404, Vault's words).
    #[error("no handler for route \"{0}\". route entry not found.")]
    NoRoute(String),
    /// A path of a mount that this server does not serve (404).
    #[error("unsupported path")]
    UnsupportedPath,
    /// A thing read by name that does not exist (404 with an empty `errors`, as Vault).
    #[error("")]
    NotFound,
    /// The method is not one this path takes (405).
    #[error("unsupported operation")]
    MethodNotAllowed,
    /// The body is larger than the server accepts (413).
    #[error("http: request body too large")]
    TooLarge,
    /// The role refused what was asked (400, with the role's reason).
    #[error(transparent)]
    Refused(RoleRefusal),
    /// Input bytes that are not what they claim (a CSR, a key, PEM), or an unsupported key
    /// (400).
    #[error(transparent)]
    Pki(PkiError),
    /// The store failed (500), or a name is taken (400).
    #[error(transparent)]
    Store(StoreError),
    /// An ACL policy that does not parse (400, with its line and what is wrong).
    #[error("failed to parse policy: {0}")]
    Policy(#[from] mutual_auth::PolicyError),
    /// A token request Vault's rules refuse (400): a child asking for policies its parent
    /// lacks, an orphan without sudo, a token with limited uses making children.
    #[error(transparent)]
    TokenRefused(#[from] mutual_auth::token::CreateRefusal),
    /// A token role refused the request (400): a policy outside its `allowed_policies`.
    #[error(transparent)]
    TokenRoleRefused(#[from] mutual_auth::token::RoleRefusal),
    /// A renewal refused (400): not renewable, expired, past its max TTL.
    #[error(transparent)]
    RenewRefused(#[from] mutual_auth::token::RenewRefusal),
    /// A TTL that cannot be given (400).
    #[error(transparent)]
    Ttl(#[from] mutual_auth::ttl::TtlError),
    /// An AppRole login refused (400, as Vault): unknown role or secret ID, expired, used up.
    #[error(transparent)]
    LoginRefused(#[from] mutual_auth::approle::LoginRefusal),
    /// An AppRole role or secret ID request refused (400).
    #[error(transparent)]
    AppRoleRefused(#[from] mutual_auth::approle::RoleRefusal),
    /// A CIDR block that does not parse (400).
    #[error(transparent)]
    Cidr(#[from] mutual_auth::approle::CidrError),
    /// No audit device could write the request's entry (500; Vault fails such a request
    /// too).
    #[error("the request could not be audited: no audit device could write its entry")]
    Audit,
    /// A task on the blocking pool (RSA key generation, signing) ended without an answer:
    /// it panicked or the runtime is shutting down (500).
    #[error("worker failed: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

impl ApiError {
    /// A 400 with this message.
    pub fn bad(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    /// The HTTP status Vault answers this error with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::PermissionDenied | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::BadRequest(_)
            | ApiError::Refused(_)
            | ApiError::Pki(_)
            | ApiError::Policy(_)
            | ApiError::TokenRefused(_)
            | ApiError::TokenRoleRefused(_)
            | ApiError::RenewRefused(_)
            | ApiError::Ttl(_)
            | ApiError::LoginRefused(_)
            | ApiError::AppRoleRefused(_)
            | ApiError::Cidr(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(StoreError::Duplicate { .. }) => StatusCode::BAD_REQUEST,
            // The database is out of reach: nothing was stored; another node may do better.
            ApiError::Store(StoreError::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NoRoute(_) | ApiError::UnsupportedPath | ApiError::NotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Store(_) | ApiError::Worker(_) | ApiError::Audit => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The `{"errors": [...]}` body.
    pub fn body(&self) -> serde_json::Value {
        let errors: Vec<String> = match self {
            ApiError::NotFound => vec![],
            other => vec![other.to_string()],
        };
        serde_json::json!({ "errors": errors })
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            // Vault answers a missing name with a bare 404.
            StoreError::NotFound { .. } => ApiError::NotFound,
            other => ApiError::Store(other),
        }
    }
}

impl From<PkiError> for ApiError {
    fn from(e: PkiError) -> ApiError {
        ApiError::Pki(e)
    }
}

impl From<RoleRefusal> for ApiError {
    fn from(r: RoleRefusal) -> ApiError {
        ApiError::Refused(r)
    }
}

impl From<AuthorityError> for ApiError {
    fn from(e: AuthorityError) -> ApiError {
        match e {
            AuthorityError::Store(s) => s.into(),
            AuthorityError::Refused(r) => r.into(),
            AuthorityError::Pki(p) => p.into(),
            AuthorityError::OutsideConstraints(v) => ApiError::bad(v.to_string()),
            AuthorityError::Denied(why) => ApiError::bad(why),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `JoinError`: a blocking task that ends without an answer.
    fn join_error() -> tokio::task::JoinError {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let task = tokio::spawn(std::future::pending::<()>());
            task.abort();
            task.await.unwrap_err()
        })
    }

    #[test]
    fn each_error_has_its_status_and_vault_body() {
        let pki = mutual_pki::cert::pem_certs(b"junk").unwrap_err();
        let pki_text = pki.to_string();
        let cases: Vec<(ApiError, u16, Vec<String>)> = vec![
            (ApiError::PermissionDenied, 403, vec!["permission denied".into()]),
            (ApiError::bad("csr contains no data"), 400, vec!["csr contains no data".into()]),
            (ApiError::from(pki), 400, vec![pki_text]),
            (
                ApiError::from(StoreError::NotFound {
                    kind: "role",
                    name: "web".into(),
                }),
                404,
                vec![],
            ),
            (
                ApiError::from(StoreError::Duplicate {
                    kind: "CA",
                    name: "root".into(),
                }),
                400,
                vec!["CA \"root\" already exists".into()],
            ),
            (
                ApiError::from(StoreError::Locked(10)),
                500,
                vec!["the store is locked by another process (waited 10 s); try again when it has finished".into()],
            ),
            (ApiError::NoRoute("pki/nope".into()), 404, vec!["no handler for route \"pki/nope\". route entry not found.".into()]),
            (ApiError::MethodNotAllowed, 405, vec!["unsupported operation".into()]),
            (ApiError::TooLarge, 413, vec!["http: request body too large".into()]),
        ];
        for (err, status, errors) in cases {
            assert_eq!(err.status().as_u16(), status, "{err:?}");
            assert_eq!(
                err.body(),
                serde_json::json!({ "errors": errors }),
                "{err:?}"
            );
        }
        let worker = ApiError::from(join_error());
        assert_eq!(worker.status().as_u16(), 500);
        assert!(
            worker.to_string().starts_with("worker failed: task "),
            "{worker}"
        );
    }
}
