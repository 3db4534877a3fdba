//! The client's side of a refusal: when the server refuses our certificate, say which CAs it
//! asked for (its CertificateRequest) and which CAs our certificate chains to, and what is
//! wrong with it as far as we can tell. Pure: inputs are bytes, names and the time.

use std::fmt;

use mutual_pki::cert;
use mutual_pki::diagnosis::{Diagnosis, Purpose};
use mutual_pki::verify::{verify, VerifyInput};
use rustls::AlertDescription;
use time::OffsetDateTime;

/// A DER X.500 name (as in a CertificateRequest) in RFC 2253 text.
pub fn dn_from_der(der: &[u8]) -> String {
    use x509_parser::prelude::FromDer;
    match x509_parser::x509::X509Name::from_der(der) {
        Ok((_, name)) => cert::dn_string(&name),
        Err(_) => format!("<unreadable name {} bytes>", der.len()),
    }
}

/// The alert's name as the RFCs spell it: `unknown_ca`, `bad_certificate`, …
pub fn alert_name(alert: AlertDescription) -> String {
    let debug = format!("{alert:?}");
    let mut out = String::new();
    let mut previous_upper = true;
    for c in debug.chars() {
        if c.is_ascii_uppercase() {
            if !previous_upper {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
        previous_upper = c.is_ascii_uppercase();
    }
    out
}

/// Whether an alert from the server is about the client's certificate.
pub fn is_certificate_alert(alert: AlertDescription) -> bool {
    use AlertDescription as A;
    matches!(
        alert,
        A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired
            | A::DecryptError
            | A::HandshakeFailure
    )
}

/// The server refused our client certificate (or our lack of one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRefused {
    /// The alert the server sent (`unknown_ca`, …).
    pub alert: String,
    /// Subjects of the chain we sent, leaf first; empty when we sent none.
    pub sent: Vec<String>,
    /// The CAs our chain leads to, nearest first (issuer DNs).
    pub chains_to: Vec<String>,
    /// The CAs the server named in its CertificateRequest; `None` when it sent none.
    pub asked_for: Option<Vec<String>>,
    /// What is wrong with our certificate on its own (expired, wrong purpose, …), if anything.
    pub own_problem: Option<Diagnosis>,
}

impl CertificateRefused {
    /// Builds the explanation from what the client saw.
    pub fn new(
        alert: AlertDescription,
        sent_chain: &[Vec<u8>],
        asked_for: Option<Vec<String>>,
        now: OffsetDateTime,
    ) -> CertificateRefused {
        let facts: Vec<_> = sent_chain
            .iter()
            .filter_map(|d| cert::facts(d).ok())
            .collect();
        let mut chains_to = Vec::new();
        for f in &facts {
            if !chains_to.contains(&f.issuer) {
                chains_to.push(f.issuer.clone());
            }
        }
        let own_problem = if sent_chain.len() > 1 {
            // Our own intermediates stand in for the server's trust: what fails then is ours.
            let input = VerifyInput {
                chain: &sent_chain[..1],
                trusted: &sent_chain[1..],
                purpose: Some(Purpose::Client),
                name: None,
                crls: &[],
                now,
            };
            verify(&input)
                .err()
                .filter(|d| d.code() != "unknown_issuer")
        } else {
            None
        };
        CertificateRefused {
            alert: alert_name(alert),
            sent: facts.iter().map(|f| f.subject.clone()).collect(),
            chains_to,
            asked_for,
            own_problem,
        }
    }

    /// Whether our chain reaches one of the CAs the server asked for.
    pub fn reaches_asked_ca(&self) -> bool {
        match &self.asked_for {
            None => true,
            Some(list) if list.is_empty() => true,
            Some(list) => list
                .iter()
                .any(|ca| self.chains_to.contains(ca) || self.sent.contains(ca)),
        }
    }
}

impl fmt::Display for CertificateRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let asked = match &self.asked_for {
            Some(list) if !list.is_empty() => list.join(", "),
            _ => "any CA".to_string(),
        };
        let Some(leaf) = self.sent.first() else {
            return write!(
                f,
                "the server requires a client certificate issued by {asked} and none was sent (alert {}); give --cert and --key",
                self.alert
            );
        };
        write!(
            f,
            "the server refused the client certificate \"{leaf}\" (alert {}): ",
            self.alert
        )?;
        if !self.reaches_asked_ca() {
            return write!(
                f,
                "it accepts certificates issued by {asked}, but this one chains to {}; use a certificate issued by one of the accepted CAs",
                self.chains_to.join(", ")
            );
        }
        if let Some(d) = &self.own_problem {
            return write!(f, "{d}");
        }
        match self.alert.as_str() {
            "access_denied" => write!(
                f,
                "the certificate is valid, but this identity is not allowed to call (its policy names who may)"
            ),
            "certificate_revoked" => write!(f, "the server's CRL lists it as revoked; issue a new one"),
            "certificate_expired" => write!(
                f,
                "the server finds it (or a CA above it) outside its validity; check the dates and both clocks"
            ),
            _ => write!(
                f,
                "it chains to {}, which the server accepts ({asked}); the server's log names the failed check",
                self.chains_to.join(", ")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(alert: &str, sent: &[&str], chains_to: &[&str], asked: Option<&[&str]>) -> String {
        CertificateRefused {
            alert: alert.into(),
            sent: sent.iter().map(|s| s.to_string()).collect(),
            chains_to: chains_to.iter().map(|s| s.to_string()).collect(),
            asked_for: asked.map(|a| a.iter().map(|s| s.to_string()).collect()),
            own_problem: None,
        }
        .to_string()
    }

    #[test]
    fn client_side_explanations_are_pinned() {
        let bob = ["CN=bob.example.com", "CN=Bob Intermediate Authority"];
        let up = ["CN=Bob Intermediate Authority", "CN=Local Root CA"];
        let table = [
            (
                refused("unknown_ca", &bob, &up, Some(&["CN=Alice Intermediate Authority"])),
                "the server refused the client certificate \"CN=bob.example.com\" (alert unknown_ca): it accepts certificates issued by CN=Alice Intermediate Authority, but this one chains to CN=Bob Intermediate Authority, CN=Local Root CA; use a certificate issued by one of the accepted CAs",
            ),
            (
                refused("access_denied", &bob, &up, Some(&["CN=Local Root CA"])),
                "the server refused the client certificate \"CN=bob.example.com\" (alert access_denied): the certificate is valid, but this identity is not allowed to call (its policy names who may)",
            ),
            (
                refused("certificate_required", &[], &[], Some(&["CN=Local Root CA"])),
                "the server requires a client certificate issued by CN=Local Root CA and none was sent (alert certificate_required); give --cert and --key",
            ),
            (
                refused("bad_certificate", &bob, &up, None),
                "the server refused the client certificate \"CN=bob.example.com\" (alert bad_certificate): it chains to CN=Bob Intermediate Authority, CN=Local Root CA, which the server accepts (any CA); the server's log names the failed check",
            ),
        ];
        for (got, want) in table {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn alert_names_follow_the_rfc() {
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown_ca");
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad_certificate"
        );
        assert_eq!(alert_name(AlertDescription::AccessDenied), "access_denied");
        assert_eq!(
            alert_name(AlertDescription::CertificateRequired),
            "certificate_required"
        );
    }
}
