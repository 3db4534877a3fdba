//! API errors and the one place they become Vault's status codes and `{"errors": [...]}` bodies.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use mutual_pki::PkiError;
use mutual_store::{AuthorityError, StoreError};

/// Why a request failed, as the API tells it.
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
    /// The store failed (500).
    #[error("{0}")]
    Internal(String),
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
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoRoute(_) | ApiError::UnsupportedPath | ApiError::NotFound => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
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
            StoreError::NotFound { .. } => ApiError::NotFound,
            StoreError::Duplicate { .. } => ApiError::BadRequest(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<PkiError> for ApiError {
    fn from(e: PkiError) -> ApiError {
        ApiError::BadRequest(e.to_string())
    }
}

impl From<AuthorityError> for ApiError {
    fn from(e: AuthorityError) -> ApiError {
        match e {
            AuthorityError::Store(s) => s.into(),
            AuthorityError::Refused(r) => ApiError::BadRequest(r.to_string()),
            AuthorityError::Pki(p) => p.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(msg) = &self {
            tracing::error!(error = %msg, "request failed");
        }
        (self.status(), Json(self.body())).into_response()
    }
}
