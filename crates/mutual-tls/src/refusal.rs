//! Why the server refused a handshake, and which TLS alert says so. Pure: the one place where a
//! [`Diagnosis`] or a policy [`Denial`] becomes a rustls error (and so an alert on the wire).

use std::fmt;

use mutual_pki::diagnosis::Diagnosis;
use rustls::CertificateError;

use crate::policy::Denial;

/// Why a server refused a client in the handshake. One of these is logged per refused
/// handshake, with the peer's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client sent no certificate; the server had asked for one from these CAs.
    NoCertificate {
        /// Subjects of the CAs named in the CertificateRequest.
        asked_for: Vec<String>,
    },
    /// The client's certificate failed verification.
    Certificate {
        /// Subject of the presented leaf.
        subject: String,
        /// Its issuer.
        issuer: String,
        /// The first failed check.
        diagnosis: Diagnosis,
    },
    /// The certificate is valid but the policy does not allow this peer (`--deny-at handshake`).
    NotAllowed(Denial),
    /// The handshake failed for another reason (not TLS, no common version or suite, …).
    Handshake {
        /// What rustls or the socket said.
        detail: String,
    },
    /// The client did not finish the handshake in time.
    Timeout {
        /// The limit, in seconds.
        seconds: u64,
    },
}

impl Refusal {
    /// A stable code for logs and `--json`: the diagnosis code, or `no_certificate`,
    /// `not_allowed`, `handshake`, `timeout`.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoCertificate { .. } => "no_certificate",
            Refusal::Certificate { diagnosis, .. } => diagnosis.code(),
            Refusal::NotAllowed(_) => "not_allowed",
            Refusal::Handshake { .. } => "handshake",
            Refusal::Timeout { .. } => "timeout",
        }
    }

    /// The presented subject, when a certificate was presented.
    pub fn subject(&self) -> Option<&str> {
        match self {
            Refusal::Certificate { subject, .. } => Some(subject),
            Refusal::NotAllowed(d) => Some(&d.subject),
            _ => None,
        }
    }

    /// The presented certificate's issuer, when a certificate was presented.
    pub fn issuer(&self) -> Option<&str> {
        match self {
            Refusal::Certificate { issuer, .. } => Some(issuer),
            Refusal::NotAllowed(d) => Some(&d.issuer),
            _ => None,
        }
    }

    /// The rustls error whose alert tells the client, as OpenSSL would
    /// (`ssl_verify_alarm_type`): unknown_ca, certificate_expired, certificate_revoked,
    /// unsupported_certificate, decrypt_error, access_denied, else bad_certificate.
    pub fn to_rustls(&self) -> rustls::Error {
        let e = match self {
            Refusal::NoCertificate { .. } => return rustls::Error::NoCertificatesPresented,
            Refusal::NotAllowed(_) => CertificateError::ApplicationVerificationFailure,
            Refusal::Handshake { detail } => return rustls::Error::General(detail.clone()),
            Refusal::Timeout { .. } => return rustls::Error::General("timeout".into()),
            Refusal::Certificate { diagnosis, .. } => match diagnosis {
                Diagnosis::UnknownIssuer { .. }
                | Diagnosis::NotACa { .. }
                | Diagnosis::PathLenExceeded { .. }
                | Diagnosis::ChainTooLong { .. }
                | Diagnosis::CrlMissing { .. } => CertificateError::UnknownIssuer,
                Diagnosis::CrlStale { .. } => CertificateError::ExpiredRevocationList,
                Diagnosis::Expired { .. } => CertificateError::Expired,
                Diagnosis::NotYetValid { .. } => CertificateError::NotValidYet,
                Diagnosis::Revoked { .. } => CertificateError::Revoked,
                Diagnosis::WrongPurpose { .. } => CertificateError::InvalidPurpose,
                Diagnosis::BadSignature { .. } => CertificateError::BadSignature,
                Diagnosis::UnsupportedCriticalExtension { .. } => {
                    CertificateError::UnhandledCriticalExtension
                }
                _ => CertificateError::BadEncoding,
            },
        };
        rustls::Error::InvalidCertificate(e)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoCertificate { asked_for } => write!(
                f,
                "no client certificate arrived; the server asked for one issued by {}",
                if asked_for.is_empty() {
                    "any CA".to_string()
                } else {
                    asked_for.join(", ")
                }
            ),
            Refusal::Certificate {
                subject, diagnosis, ..
            } => write!(f, "refused client certificate \"{subject}\": {diagnosis}"),
            Refusal::NotAllowed(d) => write!(f, "{d}"),
            Refusal::Handshake { detail } => write!(f, "handshake failed: {detail}"),
            Refusal::Timeout { seconds } => {
                write!(
                    f,
                    "the client did not finish the handshake within {seconds}s"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription as A;

    fn alert(r: &Refusal) -> Option<A> {
        match r.to_rustls() {
            rustls::Error::InvalidCertificate(c) => Some(A::from(c)),
            _ => None,
        }
    }

    #[test]
    fn refusal_codes_alerts_and_messages() {
        let unknown = Refusal::Certificate {
            subject: "CN=bob.example.com".into(),
            issuer: "CN=Bob Intermediate Authority".into(),
            diagnosis: Diagnosis::UnknownIssuer {
                subject: "CN=bob.example.com".into(),
                issuer: "CN=Bob Intermediate Authority".into(),
                path: vec!["CN=bob.example.com".into()],
                trusted: vec!["CN=Alice Intermediate Authority".into()],
            },
        };
        let denied = Refusal::NotAllowed(Denial {
            peer: "bob.example.com".into(),
            subject: "CN=bob.example.com".into(),
            issuer: "CN=Local Root CA".into(),
            allowed: vec!["cn=alice.example.com".into()],
        });
        let none = Refusal::NoCertificate {
            asked_for: vec!["CN=Alice Intermediate Authority".into()],
        };
        let table: Vec<(&Refusal, &str, Option<A>, &str)> = vec![
            (&unknown, "unknown_issuer", Some(A::UnknownCA), "refused client certificate \"CN=bob.example.com\": certificate \"CN=bob.example.com\" was issued by \"CN=Bob Intermediate Authority\", which is not among the trusted CAs (CN=Alice Intermediate Authority); trust its issuer or use a certificate from one of them"),
            (&denied, "not_allowed", Some(A::AccessDenied), "you cannot be here bob.example.com: only cn=alice.example.com may call"),
            (&none, "no_certificate", None, "no client certificate arrived; the server asked for one issued by CN=Alice Intermediate Authority"),
            (&Refusal::Timeout { seconds: 10 }, "timeout", None, "the client did not finish the handshake within 10s"),
        ];
        for (r, code, a, msg) in table {
            assert_eq!(r.code(), code);
            assert_eq!(alert(r), a, "{code}");
            assert_eq!(r.to_string(), msg);
        }
        assert_eq!(unknown.subject(), Some("CN=bob.example.com"));
        assert_eq!(denied.issuer(), Some("CN=Local Root CA"));
    }
}
