//! Problem documents (RFC 7807) with ACME's error types (RFC 8555 §6.7).

use serde::Serialize;

/// ACME's error types, each `urn:ietf:params:acme:error:<code>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemType {
    /// The request named an account that does not exist.
    AccountDoesNotExist,
    /// The certificate was already revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable (names, key, size).
    BadCsr,
    /// The nonce was missing, unknown, used or expired.
    BadNonce,
    /// The JWS key is unacceptable.
    BadPublicKey,
    /// The revocation reason is not allowed.
    BadRevocationReason,
    /// The JWS algorithm is not supported.
    BadSignatureAlgorithm,
    /// The server could not connect to the validation target.
    Connection,
    /// A DNS lookup failed during validation.
    Dns,
    /// This directory requires an external account binding.
    ExternalAccountRequired,
    /// The response to a challenge did not match.
    IncorrectResponse,
    /// The request is malformed.
    Malformed,
    /// The order is not ready to be finalized.
    OrderNotReady,
    /// Too many requests from this account.
    RateLimited,
    /// The server will not issue for this identifier.
    RejectedIdentifier,
    /// The server failed internally.
    ServerInternal,
    /// The TLS connection of a tls-alpn-01 validation failed.
    Tls,
    /// The client lacks authorization.
    Unauthorized,
    /// The identifier type is not supported.
    UnsupportedIdentifier,
}

impl ProblemType {
    /// The code after `urn:ietf:params:acme:error:`.
    pub fn code(self) -> &'static str {
        match self {
            ProblemType::AccountDoesNotExist => "accountDoesNotExist",
            ProblemType::AlreadyRevoked => "alreadyRevoked",
            ProblemType::BadCsr => "badCSR",
            ProblemType::BadNonce => "badNonce",
            ProblemType::BadPublicKey => "badPublicKey",
            ProblemType::BadRevocationReason => "badRevocationReason",
            ProblemType::BadSignatureAlgorithm => "badSignatureAlgorithm",
            ProblemType::Connection => "connection",
            ProblemType::Dns => "dns",
            ProblemType::ExternalAccountRequired => "externalAccountRequired",
            ProblemType::IncorrectResponse => "incorrectResponse",
            ProblemType::Malformed => "malformed",
            ProblemType::OrderNotReady => "orderNotReady",
            ProblemType::RateLimited => "rateLimited",
            ProblemType::RejectedIdentifier => "rejectedIdentifier",
            ProblemType::ServerInternal => "serverInternal",
            ProblemType::Tls => "tls",
            ProblemType::Unauthorized => "unauthorized",
            ProblemType::UnsupportedIdentifier => "unsupportedIdentifier",
        }
    }

    /// The HTTP status a problem of this type is answered with.
    pub fn status(self) -> u16 {
        match self {
            ProblemType::Unauthorized | ProblemType::OrderNotReady => 403,
            ProblemType::RateLimited => 429,
            ProblemType::ServerInternal => 500,
            _ => 400,
        }
    }
}

/// A problem document: the type, a detail a human reads, the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `urn:ietf:params:acme:error:<code>`.
    #[serde(rename = "type")]
    pub urn: String,
    /// What went wrong, naming the thing and the rule.
    pub detail: String,
    /// The HTTP status.
    pub status: u16,
    #[serde(skip)]
    kind: ProblemType,
}

impl Problem {
    /// A problem of `kind` with `detail`.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Problem {
        Problem {
            urn: format!("urn:ietf:params:acme:error:{}", kind.code()),
            detail: detail.into(),
            status: kind.status(),
            kind,
        }
    }

    /// `malformed` with `detail`.
    pub fn malformed(detail: impl Into<String>) -> Problem {
        Problem::new(ProblemType::Malformed, detail)
    }

    /// The same problem answered with another status (404 for an unknown object).
    pub fn with_status(mut self, status: u16) -> Problem {
        self.status = status;
        self
    }

    /// Its type.
    pub fn kind(&self) -> ProblemType {
        self.kind
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns_and_statuses() {
        for (kind, urn, status) in [
            (
                ProblemType::BadNonce,
                "urn:ietf:params:acme:error:badNonce",
                400,
            ),
            (
                ProblemType::BadCsr,
                "urn:ietf:params:acme:error:badCSR",
                400,
            ),
            (
                ProblemType::Unauthorized,
                "urn:ietf:params:acme:error:unauthorized",
                403,
            ),
            (
                ProblemType::RateLimited,
                "urn:ietf:params:acme:error:rateLimited",
                429,
            ),
            (
                ProblemType::OrderNotReady,
                "urn:ietf:params:acme:error:orderNotReady",
                403,
            ),
            (
                ProblemType::ServerInternal,
                "urn:ietf:params:acme:error:serverInternal",
                500,
            ),
        ] {
            let p = Problem::new(kind, "x");
            assert_eq!((p.urn.as_str(), p.status), (urn, status));
        }
        let json = serde_json::to_value(Problem::malformed("bad")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "urn:ietf:params:acme:error:malformed", "detail": "bad", "status": 400})
        );
    }
}
