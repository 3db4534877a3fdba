//! Why a certificate, a chain or a handshake is refused.
//!
//! One enum, [`Diagnosis`], whose variants carry the inputs of the rule they report (the
//! certificate's subject, the times compared, the names presented, …). Its `Display` is the
//! sentence a human reads: it names the thing, the rule, and the fix. [`Diagnosis::code`] is the
//! stable snake_case code for `--json`, and the serde form is tagged with the same code.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::serial::Serial;

/// What a certificate is checked for: the TLS side it authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A TLS server certificate (extendedKeyUsage `serverAuth`).
    Server,
    /// A TLS client certificate (extendedKeyUsage `clientAuth`).
    Client,
}

impl Purpose {
    /// The extendedKeyUsage name this purpose requires: `serverAuth` or `clientAuth`.
    pub fn eku_name(self) -> &'static str {
        match self {
            Purpose::Server => "serverAuth",
            Purpose::Client => "clientAuth",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Purpose::Server => "server",
            Purpose::Client => "client",
        })
    }
}

impl FromStr for Purpose {
    type Err = String;

    /// Parses `server` or `client` (openssl's `sslserver` / `sslclient` too).
    fn from_str(s: &str) -> Result<Purpose, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "server" | "sslserver" => Ok(Purpose::Server),
            "client" | "sslclient" => Ok(Purpose::Client),
            other => Err(format!(
                "invalid purpose \"{other}\": expected server or client"
            )),
        }
    }
}

/// Which rule of a purpose a certificate breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurposeProblem {
    /// The extendedKeyUsage extension is present and lacks the purpose's usage.
    ExtendedKeyUsage,
    /// The keyUsage extension is present and lacks the bit TLS needs (`digitalSignature`, or
    /// `keyEncipherment` for an RSA server).
    KeyUsage,
    /// The certificate is a CA (basicConstraints CA:TRUE) presented as a TLS peer.
    CaCertificate,
}

/// What a certificate lacks to be allowed to issue certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaRequirement {
    /// basicConstraints with CA:TRUE.
    BasicConstraints,
    /// keyUsage `keyCertSign` (when keyUsage is present).
    KeyCertSign,
}

/// Why a CRL that covers a certificate cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrlProblem {
    /// Its signature does not verify with the issuing CA's public key.
    BadSignature,
    /// The CA's keyUsage is present and lacks `cRLSign`.
    IssuerMayNotSignCrls,
    /// Its thisUpdate is in the future.
    NotYetValid,
}

/// A rule of RFC 5280 that strict verification (`openssl verify -x509_strict`) enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrictRule {
    /// An extension appears twice.
    DuplicateExtension,
    /// pathLenConstraint on a certificate that is not a CA.
    PathLenWithoutCa,
    /// pathLenConstraint without keyUsage `keyCertSign`.
    PathLenWithoutKeyCertSign,
    /// A CA certificate without a keyUsage extension.
    CaWithoutKeyUsage,
    /// keyUsage `keyCertSign` on a certificate that is not a CA.
    KeyCertSignWithoutCa,
    /// An empty issuer name.
    EmptyIssuer,
    /// An empty subject name where one is required.
    EmptySubject,
    /// A subjectAltName extension with no names.
    EmptySubjectAltName,
    /// The signature algorithm inside and outside the signed part differ.
    SignatureAlgorithmMismatch,
    /// No authorityKeyIdentifier on a certificate issued by another.
    MissingAuthorityKeyId,
    /// No subjectKeyIdentifier on a CA certificate.
    MissingSubjectKeyId,
    /// Extensions in a certificate older than version 3.
    ExtensionsBeforeV3,
}

impl fmt::Display for StrictRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StrictRule::DuplicateExtension => "an extension appears more than once",
            StrictRule::PathLenWithoutCa => "it sets a path length but is not a CA",
            StrictRule::PathLenWithoutKeyCertSign => {
                "it sets a path length but its keyUsage lacks keyCertSign"
            }
            StrictRule::CaWithoutKeyUsage => "a CA certificate must carry a keyUsage extension",
            StrictRule::KeyCertSignWithoutCa => {
                "its keyUsage has keyCertSign but it is not a CA (no basicConstraints CA:TRUE)"
            }
            StrictRule::EmptyIssuer => "its issuer name is empty",
            StrictRule::EmptySubject => "its subject name is empty",
            StrictRule::EmptySubjectAltName => "its subjectAltName extension holds no name",
            StrictRule::SignatureAlgorithmMismatch => "its two signature algorithm fields disagree",
            StrictRule::MissingAuthorityKeyId => {
                "it has no authorityKeyIdentifier naming the key that issued it"
            }
            StrictRule::MissingSubjectKeyId => "a CA certificate must carry a subjectKeyIdentifier",
            StrictRule::ExtensionsBeforeV3 => {
                "it has extensions but is not a version 3 certificate"
            }
        })
    }
}

/// Why a certificate, a chain or a handshake is refused. Every variant carries its inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Diagnosis {
    /// No trusted CA issued the chain: `subject` (the top of the chain that could be built) was
    /// issued by `issuer`, which is not among the CAs given.
    UnknownIssuer {
        /// The certificate whose issuer is missing.
        subject: String,
        /// The issuer DN that would have been needed.
        issuer: String,
        /// Subjects of the certificates built into the chain, leaf first, ending at `subject`.
        path: Vec<String>,
        /// Subjects of the trusted CAs.
        trusted: Vec<String>,
    },
    /// A certificate's notAfter is in the past.
    Expired {
        /// The certificate.
        subject: String,
        /// Its end of validity.
        #[serde(with = "time::serde::rfc3339")]
        not_after: OffsetDateTime,
        /// The time of the check.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
    },
    /// A certificate's notBefore is in the future.
    NotYetValid {
        /// The certificate.
        subject: String,
        /// Its start of validity.
        #[serde(with = "time::serde::rfc3339")]
        not_before: OffsetDateTime,
        /// The time of the check.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
    },
    /// A certificate may not be used for the TLS side asked for.
    WrongPurpose {
        /// The certificate.
        subject: String,
        /// The purpose asked for.
        wanted: Purpose,
        /// What it has: its extendedKeyUsage names (or keyUsage names, for a keyUsage problem).
        has: Vec<String>,
        /// The rule broken.
        problem: PurposeProblem,
    },
    /// The leaf does not name the host or IP address asked for.
    NameMismatch {
        /// The leaf certificate.
        subject: String,
        /// The name asked for.
        name: String,
        /// The names it presents (`DNS:…`, `IP:…`).
        presented: Vec<String>,
    },
    /// A certificate is listed in its issuer's CRL.
    Revoked {
        /// The certificate.
        subject: String,
        /// Its serial number.
        #[serde(serialize_with = "ser_display")]
        serial: Serial,
        /// When it was revoked, when known.
        #[serde(with = "time::serde::rfc3339::option")]
        revoked_at: Option<OffsetDateTime>,
        /// The CRL reason (`keyCompromise`, …), when given.
        reason: Option<String>,
    },
    /// A certificate's signature does not verify with its issuer's public key.
    BadSignature {
        /// The certificate.
        subject: String,
        /// The issuer whose key was used.
        issuer: String,
    },
    /// A key is weaker than the minimum (112-bit security, openssl's auth level 2).
    WeakKey {
        /// The certificate.
        subject: String,
        /// Its key (`RSA 1024`, …).
        key: String,
        /// The minimum accepted.
        minimum: String,
    },
    /// A certificate is signed with a broken digest (SHA-1, MD5).
    WeakAlgorithm {
        /// The certificate.
        subject: String,
        /// The signature algorithm.
        algorithm: String,
    },
    /// A signature or key algorithm that the verifier does not support.
    UnsupportedAlgorithm {
        /// The certificate.
        subject: String,
        /// The algorithm.
        algorithm: String,
    },
    /// A certificate in the issuer position may not issue certificates.
    NotACa {
        /// The would-be CA.
        subject: String,
        /// The certificate it issued in this chain.
        issued: String,
        /// What it lacks.
        missing: CaRequirement,
    },
    /// A CA's pathLenConstraint allows fewer intermediates below it than the chain has.
    PathLenExceeded {
        /// The constrained CA.
        subject: String,
        /// Its pathLenConstraint.
        path_len: u32,
        /// How many intermediates the chain has below it.
        below: u32,
    },
    /// The chain grew past the depth limit without reaching a trusted CA.
    ChainTooLong {
        /// The leaf.
        subject: String,
        /// The depth limit.
        max_depth: usize,
    },
    /// A certificate carries a critical extension the verifier does not understand.
    UnsupportedCriticalExtension {
        /// The certificate.
        subject: String,
        /// The extension's OID.
        oid: String,
    },
    /// A name in a certificate is outside the name constraints of an issuing CA.
    NameConstraintViolation {
        /// The certificate.
        subject: String,
    },
    /// A name in a certificate is outside the name constraints of a CA above it: which name,
    /// which CA, which rule (found by mutual's own check, which knows all three).
    #[serde(rename = "name_constraint_violation")]
    OutsideNameConstraints {
        /// The certificate.
        subject: String,
        /// The name, with its form (`DNS:evil.org`).
        name: String,
        /// The constraining CA.
        ca: String,
        /// The constraint, named as Vault's field: `permitted_dns_domains: example.com`.
        rule: String,
    },
    /// A certificate breaks a structural rule of RFC 5280 that strict verification enforces.
    Malformed {
        /// The certificate.
        subject: String,
        /// The rule broken.
        rule: StrictRule,
    },
    /// CRLs were given, but none from the issuer of a certificate of the chain.
    CrlMissing {
        /// The certificate whose revocation cannot be checked.
        subject: String,
        /// Its issuer, whose CRL is needed.
        issuer: String,
    },
    /// The CRL covering a certificate is past its nextUpdate.
    CrlStale {
        /// The CA that issued the CRL.
        issuer: String,
        /// The CRL's nextUpdate.
        #[serde(with = "time::serde::rfc3339")]
        next_update: OffsetDateTime,
        /// The time of the check.
        #[serde(with = "time::serde::rfc3339")]
        now: OffsetDateTime,
    },
    /// The CRL covering a certificate cannot be used.
    CrlInvalid {
        /// The CA named as the CRL's issuer.
        issuer: String,
        /// What is wrong with it.
        problem: CrlProblem,
    },
    /// The peer sent no certificate.
    NoCertificate {
        /// Subjects of the CAs the server asked for (its CertificateRequest).
        asked_for: Vec<String>,
    },
    /// Bytes that should have been a certificate (or CRL) could not be parsed.
    CertificateUnparsable {
        /// What the parser said, and which input it was.
        detail: String,
    },
    /// Anything else, said in words.
    Other {
        /// The explanation.
        detail: String,
    },
}

fn ser_display<S: serde::Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Diagnosis {
    /// The stable snake_case code of the variant, for `--json` and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Diagnosis::UnknownIssuer { .. } => "unknown_issuer",
            Diagnosis::Expired { .. } => "expired",
            Diagnosis::NotYetValid { .. } => "not_yet_valid",
            Diagnosis::WrongPurpose { .. } => "wrong_purpose",
            Diagnosis::NameMismatch { .. } => "name_mismatch",
            Diagnosis::Revoked { .. } => "revoked",
            Diagnosis::BadSignature { .. } => "bad_signature",
            Diagnosis::WeakKey { .. } => "weak_key",
            Diagnosis::WeakAlgorithm { .. } => "weak_algorithm",
            Diagnosis::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Diagnosis::NotACa { .. } => "not_a_ca",
            Diagnosis::PathLenExceeded { .. } => "path_len_exceeded",
            Diagnosis::ChainTooLong { .. } => "chain_too_long",
            Diagnosis::UnsupportedCriticalExtension { .. } => "unsupported_critical_extension",
            Diagnosis::NameConstraintViolation { .. } => "name_constraint_violation",
            Diagnosis::OutsideNameConstraints { .. } => "name_constraint_violation",
            Diagnosis::Malformed { .. } => "malformed",
            Diagnosis::CrlMissing { .. } => "crl_missing",
            Diagnosis::CrlStale { .. } => "crl_stale",
            Diagnosis::CrlInvalid { .. } => "crl_invalid",
            Diagnosis::NoCertificate { .. } => "no_certificate",
            Diagnosis::CertificateUnparsable { .. } => "certificate_unparsable",
            Diagnosis::Other { .. } => "other",
        }
    }

    /// The JSON form for `--json`: the variant's fields, its `code`, and the human `message`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self)
            .unwrap_or_else(|_| serde_json::json!({ "code": self.code() }));
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "message".into(),
                serde_json::Value::String(self.to_string()),
            );
        }
        value
    }
}

/// `2026-01-01 00:00:00 UTC`: a time as the messages print it.
pub(crate) fn format_time(t: OffsetDateTime) -> String {
    let fmt =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| t.to_string())
}

/// The span between two times, compact: `3d`, `29d 23h`, `4h 10m`, `50s`.
pub(crate) fn span(from: OffsetDateTime, to: OffsetDateTime) -> String {
    let d = (to - from).unsigned_abs();
    let text = crate::duration::human(d);
    for zero in [" 0h", " 0m", " 0s"] {
        if let Some(stripped) = text.strip_suffix(zero) {
            return stripped.to_string();
        }
    }
    text
}

fn list(items: &[String], empty: &str) -> String {
    if items.is_empty() {
        empty.to_string()
    } else {
        items.join(", ")
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnosis::UnknownIssuer {
                subject,
                issuer,
                path,
                trusted,
            } => {
                let trusted = list(trusted, "none given");
                if subject == issuer {
                    write!(
                        f,
                        "certificate \"{subject}\" is self-signed and is not among the trusted CAs ({trusted}); trust it or use a certificate from one of them"
                    )
                } else if path.len() > 1 {
                    write!(
                        f,
                        "the chain of \"{}\" ends at \"{subject}\", which was issued by \"{issuer}\", which is not among the trusted CAs ({trusted}); trust \"{issuer}\" or use a certificate from one of them",
                        path[0]
                    )
                } else {
                    write!(
                        f,
                        "certificate \"{subject}\" was issued by \"{issuer}\", which is not among the trusted CAs ({trusted}); trust its issuer or use a certificate from one of them"
                    )
                }
            }
            Diagnosis::Expired {
                subject,
                not_after,
                now,
            } => write!(
                f,
                "certificate \"{subject}\" expired at {} ({} ago); issue a new one",
                format_time(*not_after),
                span(*not_after, *now)
            ),
            Diagnosis::NotYetValid {
                subject,
                not_before,
                now,
            } => write!(
                f,
                "certificate \"{subject}\" is not valid before {} (in {}); check this machine's clock, or wait",
                format_time(*not_before),
                span(*now, *not_before)
            ),
            Diagnosis::WrongPurpose {
                subject,
                wanted,
                has,
                problem,
            } => match problem {
                PurposeProblem::ExtendedKeyUsage => write!(
                    f,
                    "certificate \"{subject}\" may not be used as a TLS {wanted}: its extended key usage allows {} but not {}; use one issued for {} (a role with --{wanted})",
                    list(has, "nothing"),
                    wanted.eku_name(),
                    wanted.eku_name()
                ),
                PurposeProblem::KeyUsage => write!(
                    f,
                    "certificate \"{subject}\" may not be used as a TLS {wanted}: its key usage ({}) lacks digitalSignature; use one whose key usage includes digitalSignature",
                    list(has, "empty")
                ),
                PurposeProblem::CaCertificate => write!(
                    f,
                    "certificate \"{subject}\" is a CA certificate (CA:TRUE) and may not be used as a TLS {wanted}; use a certificate issued by it"
                ),
            },
            Diagnosis::NameMismatch {
                subject,
                name,
                presented,
            } => write!(
                f,
                "certificate \"{subject}\" is not valid for \"{name}\": it names {}; connect with one of its names or use a certificate whose subject alternative names include \"{name}\"",
                list(presented, "no DNS or IP subject alternative name")
            ),
            Diagnosis::Revoked {
                subject,
                serial,
                revoked_at,
                reason,
            } => {
                write!(f, "certificate \"{subject}\" (serial {serial}) was revoked")?;
                if let Some(at) = revoked_at {
                    write!(f, " at {}", format_time(*at))?;
                }
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                f.write_str("; issue a new one")
            }
            Diagnosis::BadSignature { subject, issuer } => write!(
                f,
                "the signature of certificate \"{subject}\" does not verify with the public key of \"{issuer}\": it was signed by another key of that name, or altered; use the CA certificate that really issued it, or issue a new one"
            ),
            Diagnosis::WeakKey {
                subject,
                key,
                minimum,
            } => write!(
                f,
                "certificate \"{subject}\" has a {key} key, weaker than the minimum ({minimum}); issue a new one with a stronger key"
            ),
            Diagnosis::WeakAlgorithm { subject, algorithm } => write!(
                f,
                "certificate \"{subject}\" is signed with {algorithm}, a broken digest (SHA-1 and MD5 are refused); issue it again with SHA-256 or better"
            ),
            Diagnosis::UnsupportedAlgorithm { subject, algorithm } => write!(
                f,
                "certificate \"{subject}\" uses {algorithm}, which is not supported; use RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519 with SHA-256 or better"
            ),
            Diagnosis::NotACa {
                subject,
                issued,
                missing,
            } => {
                let lacks = match missing {
                    CaRequirement::BasicConstraints => "it is not a CA (no basicConstraints CA:TRUE)",
                    CaRequirement::KeyCertSign => "its keyUsage lacks keyCertSign",
                };
                write!(
                    f,
                    "certificate \"{subject}\" issued \"{issued}\" but may not issue certificates: {lacks}; get \"{issued}\" from a real CA"
                )
            }
            Diagnosis::PathLenExceeded {
                subject,
                path_len,
                below,
            } => write!(
                f,
                "CA \"{subject}\" allows {path_len} intermediate CA(s) below it (pathlen:{path_len}) but this chain has {below}; issue from a CA closer to it, or re-create it with a larger path length"
            ),
            Diagnosis::ChainTooLong { subject, max_depth } => write!(
                f,
                "the chain of \"{subject}\" is longer than {max_depth} certificates without reaching a trusted CA; trust a CA closer to it"
            ),
            Diagnosis::UnsupportedCriticalExtension { subject, oid } => write!(
                f,
                "certificate \"{subject}\" has a critical extension {oid} that is not understood, so it must be refused; issue it again without that extension"
            ),
            Diagnosis::NameConstraintViolation { subject } => write!(
                f,
                "certificate \"{subject}\" names something its issuing CAs may not certify (name constraints); issue it from a CA whose constraints allow those names"
            ),
            Diagnosis::OutsideNameConstraints {
                subject,
                name,
                ca,
                rule,
            } => write!(
                f,
                "certificate \"{subject}\" names {name}, which CA \"{ca}\" may not certify (name constraints, {rule}); issue it from a CA whose constraints allow that name"
            ),
            Diagnosis::Malformed { subject, rule } => write!(
                f,
                "certificate \"{subject}\" breaks RFC 5280: {rule}; issue it again from a conforming CA"
            ),
            Diagnosis::CrlMissing { subject, issuer } => write!(
                f,
                "no CRL from \"{issuer}\" was given, so the revocation of \"{subject}\" cannot be checked; add the current CRL of \"{issuer}\""
            ),
            Diagnosis::CrlStale {
                issuer,
                next_update,
                now,
            } => write!(
                f,
                "the CRL of \"{issuer}\" was due to be replaced at {} ({} ago); fetch a fresh one",
                format_time(*next_update),
                span(*next_update, *now)
            ),
            Diagnosis::CrlInvalid { issuer, problem } => match problem {
                CrlProblem::BadSignature => write!(
                    f,
                    "the CRL of \"{issuer}\" does not verify with that CA's public key; fetch the CRL from the CA that issued the certificate"
                ),
                CrlProblem::IssuerMayNotSignCrls => write!(
                    f,
                    "the CRL of \"{issuer}\" cannot be used: that CA's keyUsage lacks cRLSign; re-create the CA with cRLSign"
                ),
                CrlProblem::NotYetValid => write!(
                    f,
                    "the CRL of \"{issuer}\" is not valid yet (its thisUpdate is in the future); check this machine's clock"
                ),
            },
            Diagnosis::NoCertificate { asked_for } => write!(
                f,
                "no client certificate was sent; the server asked for one issued by {}; give the client a certificate from one of those CAs",
                list(asked_for, "any CA (it named none)")
            ),
            Diagnosis::CertificateUnparsable { detail } => write!(
                f,
                "a certificate could not be read ({detail}); check that the file holds PEM or DER certificates"
            ),
            Diagnosis::Other { detail } => f.write_str(detail),
        }
    }
}

impl std::error::Error for Diagnosis {}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn all() -> Vec<(Diagnosis, &'static str)> {
        let now = datetime!(2026-01-04 00:00 UTC);
        vec![
            (
                Diagnosis::UnknownIssuer {
                    subject: "CN=bob.example.com".into(),
                    issuer: "CN=Bob Intermediate Authority".into(),
                    path: vec!["CN=bob.example.com".into()],
                    trusted: vec!["CN=Alice Intermediate Authority".into()],
                },
                "certificate \"CN=bob.example.com\" was issued by \"CN=Bob Intermediate Authority\", which is not among the trusted CAs (CN=Alice Intermediate Authority); trust its issuer or use a certificate from one of them",
            ),
            (
                Diagnosis::UnknownIssuer {
                    subject: "CN=Bob Intermediate Authority".into(),
                    issuer: "CN=Local Root CA".into(),
                    path: vec![
                        "CN=bob.example.com".into(),
                        "CN=Bob Intermediate Authority".into(),
                    ],
                    trusted: vec!["CN=Alice Intermediate Authority".into()],
                },
                "the chain of \"CN=bob.example.com\" ends at \"CN=Bob Intermediate Authority\", which was issued by \"CN=Local Root CA\", which is not among the trusted CAs (CN=Alice Intermediate Authority); trust \"CN=Local Root CA\" or use a certificate from one of them",
            ),
            (
                Diagnosis::UnknownIssuer {
                    subject: "CN=Other Root".into(),
                    issuer: "CN=Other Root".into(),
                    path: vec!["CN=Other Root".into()],
                    trusted: vec![],
                },
                "certificate \"CN=Other Root\" is self-signed and is not among the trusted CAs (none given); trust it or use a certificate from one of them",
            ),
            (
                Diagnosis::Expired {
                    subject: "CN=alice.example.com".into(),
                    not_after: datetime!(2026-01-01 00:00 UTC),
                    now,
                },
                "certificate \"CN=alice.example.com\" expired at 2026-01-01 00:00:00 UTC (3d ago); issue a new one",
            ),
            (
                Diagnosis::NotYetValid {
                    subject: "CN=alice.example.com".into(),
                    not_before: datetime!(2026-01-04 02:30 UTC),
                    now,
                },
                "certificate \"CN=alice.example.com\" is not valid before 2026-01-04 02:30:00 UTC (in 2h 30m); check this machine's clock, or wait",
            ),
            (
                Diagnosis::WrongPurpose {
                    subject: "CN=www.example.com".into(),
                    wanted: Purpose::Client,
                    has: vec!["serverAuth".into()],
                    problem: PurposeProblem::ExtendedKeyUsage,
                },
                "certificate \"CN=www.example.com\" may not be used as a TLS client: its extended key usage allows serverAuth but not clientAuth; use one issued for clientAuth (a role with --client)",
            ),
            (
                Diagnosis::WrongPurpose {
                    subject: "CN=alice.example.com".into(),
                    wanted: Purpose::Server,
                    has: vec!["keyEncipherment".into()],
                    problem: PurposeProblem::KeyUsage,
                },
                "certificate \"CN=alice.example.com\" may not be used as a TLS server: its key usage (keyEncipherment) lacks digitalSignature; use one whose key usage includes digitalSignature",
            ),
            (
                Diagnosis::WrongPurpose {
                    subject: "CN=Local Root CA".into(),
                    wanted: Purpose::Client,
                    has: vec![],
                    problem: PurposeProblem::CaCertificate,
                },
                "certificate \"CN=Local Root CA\" is a CA certificate (CA:TRUE) and may not be used as a TLS client; use a certificate issued by it",
            ),
            (
                Diagnosis::NameMismatch {
                    subject: "CN=www.example.com".into(),
                    name: "evil.example.com".into(),
                    presented: vec!["DNS:www.example.com".into(), "IP:127.0.0.1".into()],
                },
                "certificate \"CN=www.example.com\" is not valid for \"evil.example.com\": it names DNS:www.example.com, IP:127.0.0.1; connect with one of its names or use a certificate whose subject alternative names include \"evil.example.com\"",
            ),
            (
                Diagnosis::Revoked {
                    subject: "CN=alice.example.com".into(),
                    serial: Serial::from_bytes(&[0x3a, 0x9f]),
                    revoked_at: Some(datetime!(2026-01-02 12:00 UTC)),
                    reason: Some("keyCompromise".into()),
                },
                "certificate \"CN=alice.example.com\" (serial 3a:9f) was revoked at 2026-01-02 12:00:00 UTC (keyCompromise); issue a new one",
            ),
            (
                Diagnosis::BadSignature {
                    subject: "CN=alice.example.com".into(),
                    issuer: "CN=Alice Intermediate Authority".into(),
                },
                "the signature of certificate \"CN=alice.example.com\" does not verify with the public key of \"CN=Alice Intermediate Authority\": it was signed by another key of that name, or altered; use the CA certificate that really issued it, or issue a new one",
            ),
            (
                Diagnosis::WeakKey {
                    subject: "CN=weak.example.com".into(),
                    key: "RSA 1024".into(),
                    minimum: "RSA 2048, EC P-256 or Ed25519".into(),
                },
                "certificate \"CN=weak.example.com\" has a RSA 1024 key, weaker than the minimum (RSA 2048, EC P-256 or Ed25519); issue a new one with a stronger key",
            ),
            (
                Diagnosis::WeakAlgorithm {
                    subject: "CN=legacy.example.com".into(),
                    algorithm: "ecdsa-with-SHA1".into(),
                },
                "certificate \"CN=legacy.example.com\" is signed with ecdsa-with-SHA1, a broken digest (SHA-1 and MD5 are refused); issue it again with SHA-256 or better",
            ),
            (
                Diagnosis::UnsupportedAlgorithm {
                    subject: "CN=x".into(),
                    algorithm: "1.2.3.4".into(),
                },
                "certificate \"CN=x\" uses 1.2.3.4, which is not supported; use RSA (2048 bits or more), ECDSA P-256/P-384 or Ed25519 with SHA-256 or better",
            ),
            (
                Diagnosis::NotACa {
                    subject: "CN=alice.example.com".into(),
                    issued: "CN=mallory.example.com".into(),
                    missing: CaRequirement::BasicConstraints,
                },
                "certificate \"CN=alice.example.com\" issued \"CN=mallory.example.com\" but may not issue certificates: it is not a CA (no basicConstraints CA:TRUE); get \"CN=mallory.example.com\" from a real CA",
            ),
            (
                Diagnosis::NotACa {
                    subject: "CN=Signer".into(),
                    issued: "CN=x".into(),
                    missing: CaRequirement::KeyCertSign,
                },
                "certificate \"CN=Signer\" issued \"CN=x\" but may not issue certificates: its keyUsage lacks keyCertSign; get \"CN=x\" from a real CA",
            ),
            (
                Diagnosis::PathLenExceeded {
                    subject: "CN=Alice Intermediate Authority".into(),
                    path_len: 0,
                    below: 1,
                },
                "CA \"CN=Alice Intermediate Authority\" allows 0 intermediate CA(s) below it (pathlen:0) but this chain has 1; issue from a CA closer to it, or re-create it with a larger path length",
            ),
            (
                Diagnosis::ChainTooLong {
                    subject: "CN=deep".into(),
                    max_depth: 10,
                },
                "the chain of \"CN=deep\" is longer than 10 certificates without reaching a trusted CA; trust a CA closer to it",
            ),
            (
                Diagnosis::UnsupportedCriticalExtension {
                    subject: "CN=x".into(),
                    oid: "1.2.3.4".into(),
                },
                "certificate \"CN=x\" has a critical extension 1.2.3.4 that is not understood, so it must be refused; issue it again without that extension",
            ),
            (
                Diagnosis::NameConstraintViolation {
                    subject: "CN=evil.org".into(),
                },
                "certificate \"CN=evil.org\" names something its issuing CAs may not certify (name constraints); issue it from a CA whose constraints allow those names",
            ),
            (
                Diagnosis::OutsideNameConstraints {
                    subject: "CN=evil.org".into(),
                    name: "DNS:evil.org".into(),
                    ca: "CN=Alice Intermediate Authority".into(),
                    rule: "permitted_dns_domains: example.com".into(),
                },
                "certificate \"CN=evil.org\" names DNS:evil.org, which CA \"CN=Alice Intermediate Authority\" may not certify (name constraints, permitted_dns_domains: example.com); issue it from a CA whose constraints allow that name",
            ),
            (
                Diagnosis::Malformed {
                    subject: "CN=Local Root CA".into(),
                    rule: StrictRule::CaWithoutKeyUsage,
                },
                "certificate \"CN=Local Root CA\" breaks RFC 5280: a CA certificate must carry a keyUsage extension; issue it again from a conforming CA",
            ),
            (
                Diagnosis::CrlMissing {
                    subject: "CN=alice.example.com".into(),
                    issuer: "CN=Alice Intermediate Authority".into(),
                },
                "no CRL from \"CN=Alice Intermediate Authority\" was given, so the revocation of \"CN=alice.example.com\" cannot be checked; add the current CRL of \"CN=Alice Intermediate Authority\"",
            ),
            (
                Diagnosis::CrlStale {
                    issuer: "CN=Local Root CA".into(),
                    next_update: datetime!(2026-01-03 00:00 UTC),
                    now,
                },
                "the CRL of \"CN=Local Root CA\" was due to be replaced at 2026-01-03 00:00:00 UTC (1d ago); fetch a fresh one",
            ),
            (
                Diagnosis::CrlInvalid {
                    issuer: "CN=Local Root CA".into(),
                    problem: CrlProblem::BadSignature,
                },
                "the CRL of \"CN=Local Root CA\" does not verify with that CA's public key; fetch the CRL from the CA that issued the certificate",
            ),
            (
                Diagnosis::CrlInvalid {
                    issuer: "CN=Local Root CA".into(),
                    problem: CrlProblem::IssuerMayNotSignCrls,
                },
                "the CRL of \"CN=Local Root CA\" cannot be used: that CA's keyUsage lacks cRLSign; re-create the CA with cRLSign",
            ),
            (
                Diagnosis::CrlInvalid {
                    issuer: "CN=Local Root CA".into(),
                    problem: CrlProblem::NotYetValid,
                },
                "the CRL of \"CN=Local Root CA\" is not valid yet (its thisUpdate is in the future); check this machine's clock",
            ),
            (
                Diagnosis::NoCertificate {
                    asked_for: vec!["CN=Alice Intermediate Authority".into()],
                },
                "no client certificate was sent; the server asked for one issued by CN=Alice Intermediate Authority; give the client a certificate from one of those CAs",
            ),
            (
                Diagnosis::CertificateUnparsable {
                    detail: "certificate 1 of the chain: bad DER".into(),
                },
                "a certificate could not be read (certificate 1 of the chain: bad DER); check that the file holds PEM or DER certificates",
            ),
            (
                Diagnosis::Other {
                    detail: "something else".into(),
                },
                "something else",
            ),
        ]
    }

    #[test]
    fn diagnosis_messages_are_pinned() {
        for (d, want) in all() {
            assert_eq!(d.to_string(), want, "{}", d.code());
        }
    }

    #[test]
    fn diagnosis_json_is_tagged_with_the_code() {
        let mut codes = std::collections::BTreeSet::new();
        for (d, want) in all() {
            let json = d.to_json();
            assert_eq!(json["code"], d.code(), "{d:?}");
            assert_eq!(json["message"], want);
            codes.insert(d.code());
        }
        // every variant appears in the table
        assert_eq!(codes.len(), 22);
        let expired = all()
            .into_iter()
            .find(|(d, _)| d.code() == "expired")
            .map(|(d, _)| d.to_json());
        assert_eq!(
            expired.as_ref().map(|j| j["not_after"].clone()),
            Some(serde_json::json!("2026-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn diagnosis_purpose_names() {
        assert_eq!(Purpose::Server.to_string(), "server");
        assert_eq!(Purpose::Client.to_string(), "client");
        assert_eq!(Purpose::Server.eku_name(), "serverAuth");
        assert_eq!(Purpose::Client.eku_name(), "clientAuth");
        assert_eq!("sslclient".parse::<Purpose>(), Ok(Purpose::Client));
        assert_eq!("Server".parse::<Purpose>(), Ok(Purpose::Server));
        assert!("both".parse::<Purpose>().is_err());
    }
}
