//! The one translation point from rustls-webpki's errors to a [`Diagnosis`], filling in from
//! the inputs what webpki does not say (which certificate, which CA, which CRL).

use std::net::IpAddr;

use ::time::OffsetDateTime;
use rustls_pki_types::{ServerName, UnixTime};
use x509_parser::prelude::*;

use super::crl::reason_name;
use super::names::presented_names;
use super::parsed::{names_equal, parse_crls, Cert};
use super::strength::weak_signature;
use super::{VerifyInput, MAX_DEPTH};
use crate::cert::{dn_string, facts, facts_of, CertFacts};
use crate::diagnosis::{CaRequirement, CrlProblem, Diagnosis, Purpose, PurposeProblem};
use crate::serial::Serial;

/// What can be read of the inputs when webpki (or rustls) refused them: the presented chain's
/// facts, best effort.
struct Context<'i> {
    input: &'i VerifyInput<'i>,
    chain: Vec<(CertFacts, &'i [u8])>,
}

impl<'i> Context<'i> {
    fn new(input: &'i VerifyInput<'i>) -> Self {
        let chain = input
            .chain
            .iter()
            .filter_map(|der| facts(der).ok().map(|f| (f, der.as_slice())))
            .collect();
        Context { input, chain }
    }

    fn leaf(&self) -> Option<&CertFacts> {
        self.chain.first().map(|(f, _)| f)
    }

    fn leaf_subject(&self) -> String {
        self.leaf()
            .map(|f| f.subject.clone())
            .unwrap_or_else(|| "(unreadable certificate)".into())
    }

    fn purpose(&self) -> Purpose {
        self.input.purpose.unwrap_or(Purpose::Client)
    }

    fn time(&self, t: UnixTime) -> OffsetDateTime {
        i64::try_from(t.as_secs())
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(self.input.now)
    }

    /// The presented chain followed by issuer names from the leaf, as far as it goes.
    fn walk(&self) -> Vec<&CertFacts> {
        let mut out: Vec<&CertFacts> = Vec::new();
        let mut curr = match self.leaf() {
            Some(f) => f,
            None => return out,
        };
        out.push(curr);
        while out.len() < MAX_DEPTH && !curr.self_issued {
            let next =
                self.chain.iter().map(|(f, _)| f).find(|f| {
                    f.subject == curr.issuer && !out.iter().any(|o| std::ptr::eq(*o, *f))
                });
            match next {
                Some(f) => {
                    out.push(f);
                    curr = f;
                }
                None => break,
            }
        }
        out
    }

    fn find(&self, pred: impl Fn(&CertFacts) -> bool) -> Option<&CertFacts> {
        self.chain.iter().map(|(f, _)| f).find(|f| pred(f))
    }
}

/// Maps a refusal of rustls-webpki to a [`Diagnosis`], filling in what webpki does not say
/// (which certificate, which CA, which CRL) from the inputs. This is the one translation point
/// from webpki's errors: the TLS layer maps rustls' certificate errors through it too.
#[allow(deprecated)]
pub fn from_webpki(err: &webpki::Error, input: &VerifyInput<'_>) -> Diagnosis {
    use webpki::Error as E;
    let ctx = Context::new(input);
    let leaf_subject = ctx.leaf_subject();
    match err {
        E::UnknownIssuer => ctx.unknown_issuer(),
        E::CertExpired { time, not_after } => ctx.expired(*time, *not_after),
        E::CertNotValidYet { time, not_before } => ctx.not_yet_valid(*time, *not_before),
        E::CertNotValidForName(name_ctx) => Diagnosis::NameMismatch {
            subject: leaf_subject,
            name: input
                .name
                .map(str::to_string)
                .unwrap_or_else(|| server_name_text(&name_ctx.expected)),
            presented: match ctx.leaf() {
                Some(f) => presented_names(f),
                None => name_ctx.presented.clone(),
            },
        },
        E::CertRevoked => revoked_in_chain(&ctx).unwrap_or_else(|| Diagnosis::Revoked {
            subject: leaf_subject,
            serial: ctx.leaf().map(|f| f.serial.clone()).unwrap_or(Serial::from_bytes(&[])),
            revoked_at: None,
            reason: None,
        }),
        E::CrlExpired { time, next_update } => ctx.crl_stale(*time, *next_update),
        E::UnknownRevocationStatus => ctx.crl_missing(),
        E::InvalidCrlSignatureForPublicKey => Diagnosis::CrlInvalid {
            issuer: ctx.leaf_issuer(),
            problem: CrlProblem::BadSignature,
        },
        E::IssuerNotCrlSigner => Diagnosis::CrlInvalid {
            issuer: ctx.leaf_issuer(),
            problem: CrlProblem::IssuerMayNotSignCrls,
        },
        E::InvalidSignatureForPublicKey => bad_signature_in_chain(&ctx).unwrap_or_else(|| {
            Diagnosis::BadSignature {
                subject: leaf_subject,
                issuer: ctx.leaf_issuer(),
            }
        }),
        E::RequiredEkuNotFoundContext(c) => {
            let server = webpki::KeyUsage::SERVER_AUTH_REPR.iter().copied();
            let wanted = if c.required.oid_values().eq(server) {
                Purpose::Server
            } else {
                Purpose::Client
            };
            ctx.wrong_eku(wanted)
        }
        E::RequiredEkuNotFound | E::EmptyEkuExtension => ctx.wrong_eku(ctx.purpose()),
        E::CaUsedAsEndEntity => Diagnosis::WrongPurpose {
            subject: leaf_subject,
            wanted: ctx.purpose(),
            has: ctx.leaf().map(|f| f.extended_key_usage.clone()).unwrap_or_default(),
            problem: PurposeProblem::CaCertificate,
        },
        E::EndEntityUsedAsCa => ctx.not_a_ca(),
        E::PathLenConstraintViolated => ctx.path_len_exceeded(),
        E::NameConstraintViolation => Diagnosis::NameConstraintViolation {
            subject: leaf_subject,
        },
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => ctx.unsupported_algorithm(),
        E::UnsupportedCriticalExtension => ctx.unsupported_critical_extension(),
        E::MaximumPathDepthExceeded => Diagnosis::ChainTooLong {
            subject: leaf_subject,
            max_depth: MAX_DEPTH,
        },
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::UnsupportedCertVersion
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::InvalidSerialNumber
        | E::InvalidCertValidity
        | E::MalformedDnsIdentifier
        | E::MalformedNameConstraint
        | E::InvalidNetworkMaskConstraint => Diagnosis::CertificateUnparsable {
            detail: format!("rustls-webpki cannot use the chain of \"{leaf_subject}\": {err:?}"),
        },
        E::UnsupportedCrlVersion
        | E::UnsupportedDeltaCrl
        | E::UnsupportedIndirectCrl
        | E::UnsupportedRevocationReason
        | E::UnsupportedRevocationReasonsPartitioning
        | E::UnsupportedCrlIssuingDistributionPoint
        | E::InvalidCrlNumber
        | E::UnsupportedCrlSignatureAlgorithm
        | E::UnsupportedCrlSignatureAlgorithmContext(_)
        | E::UnsupportedCrlSignatureAlgorithmForPublicKey
        | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_) => Diagnosis::Other {
            detail: format!(
                "a CRL given cannot be used ({err:?}); give full version 2 CRLs signed by the issuing CA"
            ),
        },
        other => Diagnosis::Other {
            detail: format!("certificate \"{leaf_subject}\" was refused by rustls-webpki ({other:?})"),
        },
    }
}

/// The diagnoses that take a search of the inputs, one per webpki error.
impl Context<'_> {
    fn leaf_issuer(&self) -> String {
        self.leaf().map(|f| f.issuer.clone()).unwrap_or_default()
    }

    /// The top of the chain as far as it goes, and the issuer no one presented.
    fn unknown_issuer(&self) -> Diagnosis {
        let walk = self.walk();
        let top = walk.last();
        Diagnosis::UnknownIssuer {
            subject: top
                .map(|f| f.subject.clone())
                .unwrap_or_else(|| self.leaf_subject()),
            issuer: top.map(|f| f.issuer.clone()).unwrap_or_default(),
            path: walk.iter().map(|f| f.subject.clone()).collect(),
            trusted: crate::trust::summarize_anchors(self.input.trusted),
        }
    }

    /// The certificate whose notAfter webpki reports.
    fn expired(&self, time: UnixTime, not_after: UnixTime) -> Diagnosis {
        let not_after = self.time(not_after);
        let subject = self
            .find(|f| f.not_after == not_after)
            .map(|f| f.subject.clone())
            .unwrap_or_else(|| self.leaf_subject());
        Diagnosis::Expired {
            subject,
            not_after,
            now: self.time(time),
        }
    }

    /// The certificate whose notBefore webpki reports.
    fn not_yet_valid(&self, time: UnixTime, not_before: UnixTime) -> Diagnosis {
        let not_before = self.time(not_before);
        let subject = self
            .find(|f| f.not_before == not_before)
            .map(|f| f.subject.clone())
            .unwrap_or_else(|| self.leaf_subject());
        Diagnosis::NotYetValid {
            subject,
            not_before,
            now: self.time(time),
        }
    }

    /// The CRL whose nextUpdate webpki reports, by its issuer.
    fn crl_stale(&self, time: UnixTime, next_update: UnixTime) -> Diagnosis {
        let next_update = self.time(next_update);
        let issuer = parse_crls(self.input.crls)
            .ok()
            .and_then(|crls| {
                crls.iter()
                    .find(|c| c.x.next_update().map(|n| n.to_datetime()) == Some(next_update))
                    .map(|c| c.issuer.clone())
            })
            .or_else(|| self.leaf().map(|f| f.issuer.clone()))
            .unwrap_or_default();
        Diagnosis::CrlStale {
            issuer,
            next_update,
            now: self.time(time),
        }
    }

    /// The first certificate of the chain whose issuer gave no CRL.
    fn crl_missing(&self) -> Diagnosis {
        let crl_issuers: Vec<String> = parse_crls(self.input.crls)
            .map(|crls| crls.into_iter().map(|c| c.issuer).collect())
            .unwrap_or_default();
        let walk = self.walk();
        let uncovered = walk.iter().find(|f| {
            !crl_issuers
                .iter()
                .any(|i| i.eq_ignore_ascii_case(&f.issuer))
        });
        let f = uncovered.or(walk.first());
        Diagnosis::CrlMissing {
            subject: f
                .map(|f| f.subject.clone())
                .unwrap_or_else(|| self.leaf_subject()),
            issuer: f.map(|f| f.issuer.clone()).unwrap_or_default(),
        }
    }

    /// The first certificate whose EKU lacks the purpose, else the leaf.
    fn wrong_eku(&self, wanted: Purpose) -> Diagnosis {
        let f = self
            .find(|f| {
                f.has_extended_key_usage
                    && !f.extended_key_usage.iter().any(|e| e == wanted.eku_name())
            })
            .or(self.leaf());
        Diagnosis::WrongPurpose {
            subject: f
                .map(|f| f.subject.clone())
                .unwrap_or_else(|| self.leaf_subject()),
            wanted,
            has: f.map(|f| f.extended_key_usage.clone()).unwrap_or_default(),
            problem: PurposeProblem::ExtendedKeyUsage,
        }
    }

    /// The first issuer up the chain that is not a CA, and what it issued.
    fn not_a_ca(&self) -> Diagnosis {
        let walk = self.walk();
        let pos = walk.iter().skip(1).position(|f| !f.is_ca).map(|p| p + 1);
        match pos {
            Some(p) => Diagnosis::NotACa {
                subject: walk[p].subject.clone(),
                issued: walk[p - 1].subject.clone(),
                missing: CaRequirement::BasicConstraints,
            },
            None => Diagnosis::NotACa {
                subject: self.leaf_issuer(),
                issued: self.leaf_subject(),
                missing: CaRequirement::BasicConstraints,
            },
        }
    }

    /// The first CA with more CAs below it than its pathLenConstraint allows.
    fn path_len_exceeded(&self) -> Diagnosis {
        let walk = self.walk();
        let found = walk.iter().enumerate().skip(1).find_map(|(i, f)| {
            let below = u32::try_from(i.saturating_sub(1)).unwrap_or(u32::MAX);
            f.path_len
                .filter(|p| below > *p)
                .map(|p| (f.subject.clone(), p, below))
        });
        let (subject, path_len, below) = found.unwrap_or_else(|| {
            (
                self.leaf_subject(),
                0,
                u32::try_from(walk.len()).unwrap_or(0),
            )
        });
        Diagnosis::PathLenExceeded {
            subject,
            path_len,
            below,
        }
    }

    /// A weak signature in the chain, else the leaf's algorithm and key.
    fn unsupported_algorithm(&self) -> Diagnosis {
        let weak = self.input.chain.iter().find_map(|der| {
            let (_, x) = X509Certificate::from_der(der).ok()?;
            let c = Cert {
                der,
                facts: facts_of(&x, der),
                x,
            };
            weak_signature(&c).then(|| Diagnosis::WeakAlgorithm {
                subject: c.facts.subject.clone(),
                algorithm: c.facts.signature_algorithm.clone(),
            })
        });
        weak.unwrap_or_else(|| Diagnosis::UnsupportedAlgorithm {
            subject: self.leaf_subject(),
            algorithm: self
                .leaf()
                .map(|f| format!("{} with a {} key", f.signature_algorithm, f.key))
                .unwrap_or_else(|| "an unknown algorithm".into()),
        })
    }

    /// The first critical extension of the chain that is not understood.
    fn unsupported_critical_extension(&self) -> Diagnosis {
        let found = self.input.chain.iter().find_map(|der| {
            let (_, x) = X509Certificate::from_der(der).ok()?;
            let ext = x
                .extensions()
                .iter()
                .find(|e| e.critical && e.parsed_extension().unsupported())?;
            Some((dn_string(x.subject()), ext.oid.to_id_string()))
        });
        let (subject, oid) = found.unwrap_or_else(|| (self.leaf_subject(), "(unknown)".into()));
        Diagnosis::UnsupportedCriticalExtension { subject, oid }
    }
}

fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(d) => d.as_ref().to_string(),
        ServerName::IpAddress(ip) => IpAddr::from(*ip).to_string(),
        other => format!("{other:?}"),
    }
}

/// Which presented certificate a given CRL lists, with date and reason.
fn revoked_in_chain(ctx: &Context<'_>) -> Option<Diagnosis> {
    let crls = parse_crls(ctx.input.crls).ok()?;
    for (f, _) in &ctx.chain {
        for crl in crls
            .iter()
            .filter(|c| c.issuer.eq_ignore_ascii_case(&f.issuer))
        {
            if let Some(entry) = crl
                .x
                .iter_revoked_certificates()
                .find(|r| Serial::from_bytes(r.raw_serial()) == f.serial)
            {
                return Some(Diagnosis::Revoked {
                    subject: f.subject.clone(),
                    serial: f.serial.clone(),
                    revoked_at: Some(entry.revocation_date.to_datetime()),
                    reason: entry
                        .reason_code()
                        .map(|(_, code)| reason_name(code.0).to_string()),
                });
            }
        }
    }
    None
}

/// The first presented certificate whose signature no certificate of its issuer's name (in the
/// chain or the CA file) verifies.
fn bad_signature_in_chain(ctx: &Context<'_>) -> Option<Diagnosis> {
    let all: Vec<X509Certificate<'_>> = ctx
        .input
        .chain
        .iter()
        .chain(ctx.input.trusted.iter())
        .filter_map(|der| X509Certificate::from_der(der).ok().map(|(_, x)| x))
        .collect();
    for (f, der) in &ctx.chain {
        let (_, x) = X509Certificate::from_der(der).ok()?;
        let issuers: Vec<&X509Certificate<'_>> = all
            .iter()
            .filter(|i| names_equal(i.subject(), x.issuer()))
            .collect();
        let verifies = issuers
            .iter()
            .any(|i| x.verify_signature(Some(i.public_key())).is_ok());
        if !issuers.is_empty() && !verifies {
            return Some(Diagnosis::BadSignature {
                subject: f.subject.clone(),
                issuer: f.issuer.clone(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_pki::*;
    use super::*;
    use ::time::Duration;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn verify_from_webpki_mapping() {
        let pki = Pki::new();
        let chain = vec![pki.bob.der.clone(), pki.bob_int.der.clone()];
        let trusted = vec![pki.alice_int.der.clone()];
        let input = VerifyInput {
            chain: &chain,
            trusted: &trusted,
            purpose: Some(Purpose::Client),
            name: Some("bob.example.org"),
            crls: &[],
            now: NOW,
        };
        let secs = |t: OffsetDateTime| {
            UnixTime::since_unix_epoch(Duration::seconds(t.unix_timestamp()).unsigned_abs())
        };
        let bob_after = pki.bob.params.not_after;
        let cases: Vec<(webpki::Error, &str, &str)> = vec![
            (webpki::Error::UnknownIssuer, "unknown_issuer", "the chain of \"CN=bob.example.com\" ends at \"CN=Bob Intermediate Authority\", which was issued by \"CN=Local Root CA\", which is not among the trusted CAs (CN=Alice Intermediate Authority)"),
            (webpki::Error::CertExpired { time: secs(bob_after + Duration::days(1)), not_after: secs(bob_after) }, "expired", "certificate \"CN=bob.example.com\" expired at"),
            (webpki::Error::CaUsedAsEndEntity, "wrong_purpose", "is a CA certificate"),
            (webpki::Error::EndEntityUsedAsCa, "not_a_ca", "CN=Bob Intermediate Authority"),
            (webpki::Error::CertRevoked, "revoked", "CN=bob.example.com"),
            (webpki::Error::UnknownRevocationStatus, "crl_missing", "CN=Bob Intermediate Authority"),
            (webpki::Error::InvalidSignatureForPublicKey, "bad_signature", "CN=bob.example.com"),
            (webpki::Error::NameConstraintViolation, "name_constraint_violation", "CN=bob.example.com"),
            (webpki::Error::PathLenConstraintViolated, "path_len_exceeded", "CN=bob.example.com"),
            (webpki::Error::BadDer, "certificate_unparsable", "BadDer"),
            (webpki::Error::UnsupportedCriticalExtension, "unsupported_critical_extension", "CN=bob.example.com"),
            (webpki::Error::MaximumPathDepthExceeded, "chain_too_long", "CN=bob.example.com"),
            (webpki::Error::UnsupportedDeltaCrl, "other", "a CRL given cannot be used"),
            (webpki::Error::CertDistrusted, "other", "refused by rustls-webpki"),
        ];
        for (err, code, contains) in cases {
            let d = from_webpki(&err, &input);
            assert_eq!(d.code(), code, "{err:?}: {d}");
            assert!(d.to_string().contains(contains), "{err:?}: {d}");
        }
        let name_err =
            webpki::EndEntityCert::try_from(&CertificateDer::from(pki.bob.der.as_slice()))
                .unwrap()
                .verify_is_valid_for_subject_name(&ServerName::try_from("bob.example.org").unwrap())
                .unwrap_err();
        assert_eq!(
            from_webpki(&name_err, &input),
            Diagnosis::NameMismatch {
                subject: "CN=bob.example.com".into(),
                name: "bob.example.org".into(),
                presented: vec!["DNS:bob.example.com".into()],
            }
        );
    }
}
