//! Chain verification that says why.
//!
//! [`verify()`] is at least as strict as
//! `openssl verify -partial_chain -x509_strict -auth_level 2 -purpose sslclient|sslserver
//! [-verify_hostname H|-verify_ip IP] -crl_check_all`, and reports the first failure in the
//! order OpenSSL finds it (`crypto/x509/x509_vfy.c`):
//!
//! 0. **leaf key strength** (`x509_verify_x509` → `check_cert_key_level`, "EE key too small"),
//!    before any chain is built: RSA below 2048 bits or an EC curve other than P-256/P-384/P-521
//!    is a [`Diagnosis::WeakKey`].
//! 1. **path building** (`build_chain`, trusted-first): the issuer of the current top is looked
//!    for among the trusted certificates first, then among the untrusted ones of the chain, by
//!    subject DN = issuer DN, authorityKeyIdentifier = subjectKeyIdentifier when both are present,
//!    and a key that fits the signature algorithm; among candidates one valid now wins, else the
//!    latest to expire. Building stops at the first trusted certificate: every certificate of the
//!    CA file is an anchor (`-partial_chain`), and a leaf found verbatim in the CA file is trusted
//!    as is. A self-signed certificate ends the search. Depth is bounded by [`MAX_DEPTH`].
//!    Failure is [`Diagnosis::UnknownIssuer`] (or [`Diagnosis::ChainTooLong`]).
//! 2. **extensions, leaf to anchor** (`check_extensions`): duplicate and unknown critical
//!    extensions; issuers must be CAs (basicConstraints CA:TRUE, keyCertSign when keyUsage is
//!    present) → [`Diagnosis::NotACa`]; the RFC 5280 rules of `-x509_strict`
//!    → [`Diagnosis::Malformed`]; the purpose → [`Diagnosis::WrongPurpose`] (leaf: EKU must hold
//!    serverAuth/clientAuth — `anyExtendedKeyUsage` does not do, as in OpenSSL and webpki —,
//!    keyUsage must hold digitalSignature (or keyEncipherment for an RSA server), and a CA
//!    certificate is never accepted as a TLS peer; issuers: an EKU, when present, must hold the
//!    purpose's usage); pathLenConstraint → [`Diagnosis::PathLenExceeded`].
//! 3. **security level of the issuers** (`check_auth_level`): issuer keys (anchor included) as in
//!    step 0, and signatures of every certificate but the anchor made with SHA-1 or MD5
//!    → [`Diagnosis::WeakAlgorithm`].
//! 4. **name** (`check_id`): a DNS name must match a DNS SAN (a wildcard only as the whole
//!    leftmost label), an IP address an IP SAN; the CN is never consulted
//!    → [`Diagnosis::NameMismatch`].
//! 5. **revocation** (`check_revocation`, `-crl_check_all`), only when CRLs are given: every
//!    certificate below the anchor needs a CRL from its issuer (issuer DN and key identifier,
//!    scope) → [`Diagnosis::CrlMissing`] (the anchor itself is not checked, as in current
//!    OpenSSL's `revocation_check_end`; OpenSSL 3.0 also asks for a CRL covering the anchor); the CA must be allowed to sign CRLs, the CRL must be
//!    current → [`Diagnosis::CrlStale`], and signed by the issuer's key
//!    → [`Diagnosis::CrlInvalid`]; a listed serial → [`Diagnosis::Revoked`].
//! 6. **signatures and times, anchor down to leaf** (`internal_verify`): each signature with
//!    the issuer's key → [`Diagnosis::BadSignature`]; notBefore then notAfter of every
//!    certificate, the anchor's included → [`Diagnosis::NotYetValid`], [`Diagnosis::Expired`].
//! 7. **second opinion**: rustls-webpki verifies the same path (same anchor, same intermediates,
//!    same CRLs, the purpose's EKU) and, when asked, the name; a refusal there is mapped by
//!    [`from_webpki`]. It is skipped when the leaf itself is the anchor, and when no purpose is
//!    asked and the leaf is a CA (webpki only verifies end-entity certificates).

use std::net::IpAddr;
use std::time::Duration;

use ::time::OffsetDateTime;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::cert::{dn_string, facts, facts_of, CertFacts};
use crate::diagnosis::{CaRequirement, CrlProblem, Diagnosis, Purpose, PurposeProblem, StrictRule};
use crate::key::KeyKind;
use crate::serial::Serial;

/// The longest chain built, anchor included.
pub const MAX_DEPTH: usize = 10;

/// The minimum key strength (112-bit security, OpenSSL's auth level 2), as messages print it.
const MINIMUM_KEY: &str = "RSA 2048, EC P-256 or Ed25519";

/// What to verify, and against what. All bytes are DER.
#[derive(Debug, Clone)]
pub struct VerifyInput<'a> {
    /// The leaf first, then any untrusted intermediates, in any order.
    pub chain: &'a [Vec<u8>],
    /// The CA file: every certificate is a trust anchor (an intermediate alone is one).
    pub trusted: &'a [Vec<u8>],
    /// The TLS side the leaf must be fit for; `None` checks no usage.
    pub purpose: Option<Purpose>,
    /// A DNS name or IP address the leaf must name.
    pub name: Option<&'a str>,
    /// CRLs; when any is given, every certificate below the anchor must be covered.
    pub crls: &'a [Vec<u8>],
    /// The time of the check.
    pub now: OffsetDateTime,
}

/// A chain that passed [`verify()`]. Only `verify` builds one.
#[derive(Debug, Clone)]
pub struct Verified {
    path: Vec<Vec<u8>>,
    leaf: CertFacts,
    anchor: CertFacts,
}

impl Verified {
    /// The path built, DER, leaf first, the trusted anchor last (one element when the leaf
    /// itself is trusted).
    pub fn path(&self) -> &[Vec<u8>] {
        &self.path
    }

    /// The leaf's facts.
    pub fn leaf(&self) -> &CertFacts {
        &self.leaf
    }

    /// The anchor's facts: the certificate of the CA file the chain ends at.
    pub fn anchor(&self) -> &CertFacts {
        &self.anchor
    }
}

struct Cert<'a> {
    der: &'a [u8],
    x: X509Certificate<'a>,
    facts: CertFacts,
}

struct Crl<'a> {
    x: CertificateRevocationList<'a>,
    issuer: String,
}

/// Verifies a chain; on refusal, says why with the first failure OpenSSL would report (see the
/// module documentation for the order).
pub fn verify(input: &VerifyInput<'_>) -> Result<Verified, Diagnosis> {
    if input.chain.is_empty() {
        return Err(Diagnosis::NoCertificate {
            asked_for: crate::trust::summarize_anchors(input.trusted),
        });
    }
    let chain = parse_certs(input.chain, "the chain")?;
    let trusted = parse_certs(input.trusted, "the trusted CAs")?;
    let crls = parse_crls(input.crls)?;
    let leaf = &chain[0];

    check_key(leaf)?;
    let path = build_path(&chain, &trusted, input.now)?;
    check_extensions(&path, input.purpose)?;
    check_auth_level(&path)?;
    if let Some(name) = input.name {
        check_name(leaf, name)?;
    }
    if !input.crls.is_empty() {
        check_revocation(&path, &crls, input.now)?;
    }
    check_signatures_and_times(&path, input.now)?;
    webpki_gate(input, &path)?;

    let anchor = path[path.len() - 1];
    Ok(Verified {
        path: path.iter().map(|c| c.der.to_vec()).collect(),
        leaf: leaf.facts.clone(),
        anchor: anchor.facts.clone(),
    })
}

fn parse_certs<'a>(ders: &'a [Vec<u8>], what: &str) -> Result<Vec<Cert<'a>>, Diagnosis> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| {
            match X509Certificate::from_der(der) {
                Ok(([], x)) => Ok(Cert {
                    der,
                    facts: facts_of(&x, der),
                    x,
                }),
                Ok(_) => Err("trailing bytes after the certificate".to_string()),
                Err(e) => Err(e.to_string()),
            }
            .map_err(|e| Diagnosis::CertificateUnparsable {
                detail: format!("certificate {} of {} in {what}: {e}", i + 1, ders.len()),
            })
        })
        .collect()
}

fn parse_crls(ders: &[Vec<u8>]) -> Result<Vec<Crl<'_>>, Diagnosis> {
    ders.iter()
        .enumerate()
        .map(|(i, der)| match CertificateRevocationList::from_der(der) {
            Ok((_, x)) => Ok(Crl {
                issuer: dn_string(x.issuer()),
                x,
            }),
            Err(e) => Err(Diagnosis::CertificateUnparsable {
                detail: format!("CRL {} of {}: {e}", i + 1, ders.len()),
            }),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Relations between certificates

fn names_equal(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    a.as_raw() == b.as_raw() || dn_string(a).eq_ignore_ascii_case(&dn_string(b))
}

/// The authorityKeyIdentifier of `subject` names the key of `issuer`, or one of them is absent.
fn key_ids_agree(issuer: &Cert<'_>, subject: &Cert<'_>) -> bool {
    match (
        &subject.facts.authority_key_id,
        &issuer.facts.subject_key_id,
    ) {
        (Some(akid), Some(skid)) => akid == skid,
        _ => true,
    }
}

/// The issuer's key type can have made the subject's signature (OpenSSL's
/// `check_sig_alg_match`).
fn key_fits_signature(issuer: &Cert<'_>, subject: &Cert<'_>) -> bool {
    let sig = subject.x.signature_algorithm.algorithm.to_id_string();
    let key = issuer.x.public_key().algorithm.algorithm.to_id_string();
    let rsa_key = key == "1.2.840.113549.1.1.1" || key == "1.2.840.113549.1.1.10";
    if sig.starts_with("1.2.840.113549.1.1.") || sig.starts_with("1.3.14.3.2.") {
        rsa_key
    } else if sig.starts_with("1.2.840.10045.4.") {
        key == "1.2.840.10045.2.1"
    } else if sig == "1.3.101.112" {
        key == "1.3.101.112"
    } else {
        true
    }
}

fn likely_issued(issuer: &Cert<'_>, subject: &Cert<'_>) -> bool {
    names_equal(issuer.x.subject(), subject.x.issuer())
        && key_ids_agree(issuer, subject)
        && key_fits_signature(issuer, subject)
}

fn has_key_usage(c: &Cert<'_>) -> bool {
    matches!(c.x.key_usage(), Ok(Some(_)))
}

fn key_usage_allows(c: &Cert<'_>, name: &str) -> bool {
    !has_key_usage(c) || c.facts.key_usage.iter().any(|k| k == name)
}

/// OpenSSL's EXFLAG_SS: self-issued, key identifiers agree, and keyCertSign when keyUsage is
/// present.
fn self_signed(c: &Cert<'_>) -> bool {
    c.facts.self_issued && key_ids_agree(c, c) && key_usage_allows(c, "keyCertSign")
}

fn valid_at(c: &Cert<'_>, now: OffsetDateTime) -> bool {
    c.facts.not_before <= now && now <= c.facts.not_after
}

/// The first candidate valid now, else the one that expires last.
fn best_issuer<'c, 'a>(
    candidates: impl Iterator<Item = &'c Cert<'a>>,
    now: OffsetDateTime,
) -> Option<&'c Cert<'a>> {
    let mut best: Option<&'c Cert<'a>> = None;
    for c in candidates {
        if valid_at(c, now) {
            return Some(c);
        }
        if best.is_none_or(|b| c.facts.not_after > b.facts.not_after) {
            best = Some(c);
        }
    }
    best
}

fn subjects(certs: &[&Cert<'_>]) -> Vec<String> {
    certs.iter().map(|c| c.facts.subject.clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Step 0 and 3: security level

fn key_problem(c: &Cert<'_>) -> Option<Diagnosis> {
    let subject = c.facts.subject.clone();
    match &c.facts.key {
        KeyKind::Rsa { bits } if *bits < 2048 => Some(Diagnosis::WeakKey {
            subject,
            key: c.facts.key.to_string(),
            minimum: MINIMUM_KEY.into(),
        }),
        KeyKind::Rsa { .. } | KeyKind::Ec { .. } | KeyKind::Ed25519 => None,
        KeyKind::Other { oid } => {
            let spki_alg = c.x.public_key().algorithm.algorithm.to_id_string();
            if spki_alg == "1.2.840.10045.2.1" {
                // an EC key on a curve other than P-256/P-384/P-521
                Some(Diagnosis::WeakKey {
                    subject,
                    key: format!("EC key on curve {oid}"),
                    minimum: MINIMUM_KEY.into(),
                })
            } else if spki_alg == "1.3.101.113" {
                None // Ed448
            } else {
                Some(Diagnosis::UnsupportedAlgorithm {
                    subject,
                    algorithm: format!("a key of type {oid}"),
                })
            }
        }
    }
}

fn check_key(c: &Cert<'_>) -> Result<(), Diagnosis> {
    key_problem(c).map_or(Ok(()), Err)
}

/// Signatures below 112-bit security: MD2, MD4, MD5, SHA-1 (RSA, ECDSA, DSA, RSA-PSS).
fn weak_signature(c: &Cert<'_>) -> bool {
    let alg = &c.x.signature_algorithm;
    match alg.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.2"
        | "1.2.840.113549.1.1.3"
        | "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.3.14.3.2.29"
        | "1.3.14.3.2.3"
        | "1.2.840.10045.4.1"
        | "1.2.840.10040.4.3" => true,
        "1.2.840.113549.1.1.10" => match &alg.parameters {
            Some(params) => {
                match x509_parser::signature_algorithm::RsaSsaPssParams::try_from(params) {
                    Ok(p) => p.hash_algorithm_oid().to_id_string() == "1.3.14.3.2.26",
                    Err(_) => true,
                }
            }
            None => true,
        },
        _ => false,
    }
}

fn check_auth_level(path: &[&Cert<'_>]) -> Result<(), Diagnosis> {
    let num = path.len();
    for (i, c) in path.iter().enumerate() {
        if i > 0 {
            check_key(c)?;
        }
        if i + 1 < num && weak_signature(c) {
            return Err(Diagnosis::WeakAlgorithm {
                subject: c.facts.subject.clone(),
                algorithm: c.facts.signature_algorithm.clone(),
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Step 1: path building

fn build_path<'c, 'a>(
    chain: &'c [Cert<'a>],
    trusted: &'c [Cert<'a>],
    now: OffsetDateTime,
) -> Result<Vec<&'c Cert<'a>>, Diagnosis> {
    let leaf = &chain[0];
    let mut path: Vec<&'c Cert<'a>> = vec![leaf];
    let mut used = vec![false; chain.len()];
    used[0] = true;
    loop {
        let curr = path[path.len() - 1];
        if path.len() >= MAX_DEPTH {
            return Err(Diagnosis::ChainTooLong {
                subject: leaf.facts.subject.clone(),
                max_depth: MAX_DEPTH,
            });
        }
        if self_signed(curr) {
            // Only the very same certificate in the CA file makes a self-signed one trusted.
            if let Some(t) = trusted.iter().find(|t| t.der == curr.der) {
                let top = path.len() - 1;
                path[top] = t;
                return Ok(path);
            }
            break;
        }
        let from_trust = trusted.iter().filter(|t| likely_issued(t, curr));
        if let Some(t) = best_issuer(from_trust, now) {
            if t.der == curr.der {
                let top = path.len() - 1;
                path[top] = t;
            } else {
                path.push(t);
            }
            return Ok(path);
        }
        let from_chain = chain
            .iter()
            .enumerate()
            .filter(|(i, c)| !used[*i] && likely_issued(c, curr))
            .map(|(_, c)| c);
        match best_issuer(from_chain, now) {
            Some(issuer) => {
                if let Some(i) = chain.iter().position(|c| std::ptr::eq(c, issuer)) {
                    used[i] = true;
                }
                path.push(issuer);
            }
            None => break,
        }
    }
    // Last resort (OpenSSL's check_trust with -partial_chain): the leaf itself is in the CA file.
    if let Some(t) = trusted.iter().find(|t| t.der == leaf.der) {
        return Ok(vec![t]);
    }
    let top = path[path.len() - 1];
    Err(Diagnosis::UnknownIssuer {
        subject: top.facts.subject.clone(),
        issuer: top.facts.issuer.clone(),
        path: subjects(&path),
        trusted: trusted.iter().map(|t| t.facts.subject.clone()).collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Step 2: extensions

fn check_extensions(path: &[&Cert<'_>], purpose: Option<Purpose>) -> Result<(), Diagnosis> {
    let num = path.len();
    let mut below: u32 = 0;
    for (i, c) in path.iter().enumerate() {
        let subject = || c.facts.subject.clone();
        let malformed = |rule| Diagnosis::Malformed {
            subject: subject(),
            rule,
        };
        if c.x.tbs_certificate.extensions_map().is_err() {
            return Err(malformed(StrictRule::DuplicateExtension));
        }
        if let Some(ext) = c.x.extensions().iter().find(|e| {
            e.critical
                && (e.parsed_extension().unsupported() || e.parsed_extension().error().is_some())
        }) {
            return Err(Diagnosis::UnsupportedCriticalExtension {
                subject: subject(),
                oid: ext.oid.to_id_string(),
            });
        }
        if i == 0 {
            if num > 1 && !c.facts.is_ca && has_key_usage(c) && key_usage_allows(c, "keyCertSign") {
                return Err(malformed(StrictRule::KeyCertSignWithoutCa));
            }
        } else {
            let missing = if !c.facts.is_ca {
                Some(CaRequirement::BasicConstraints)
            } else if !key_usage_allows(c, "keyCertSign") {
                Some(CaRequirement::KeyCertSign)
            } else {
                None
            };
            if let Some(missing) = missing {
                return Err(Diagnosis::NotACa {
                    subject: subject(),
                    issued: path[i - 1].facts.subject.clone(),
                    missing,
                });
            }
        }
        if num > 1 {
            if let Some(rule) = strict_rule(c, i + 1 < num) {
                return Err(malformed(rule));
            }
        }
        if let Some(purpose) = purpose {
            check_purpose(c, i == 0, purpose)?;
        }
        if i > 1 {
            if let Some(path_len) = c.facts.path_len {
                if below > path_len {
                    return Err(Diagnosis::PathLenExceeded {
                        subject: subject(),
                        path_len,
                        below,
                    });
                }
            }
        }
        if i > 0 && !c.facts.self_issued {
            below += 1;
        }
    }
    Ok(())
}

/// The RFC 5280 rules of `openssl verify -x509_strict`, in OpenSSL's order. `issued_by_other`
/// is true for every certificate but the top of the path.
fn strict_rule(c: &Cert<'_>, issued_by_other: bool) -> Option<StrictRule> {
    let f = &c.facts;
    let ku = has_key_usage(c);
    if f.path_len.is_some() {
        if !f.is_ca {
            return Some(StrictRule::PathLenWithoutCa);
        }
        if ku && !key_usage_allows(c, "keyCertSign") {
            return Some(StrictRule::PathLenWithoutKeyCertSign);
        }
    }
    if f.is_ca && !ku {
        return Some(StrictRule::CaWithoutKeyUsage);
    }
    if !f.is_ca && ku && key_usage_allows(c, "keyCertSign") {
        return Some(StrictRule::KeyCertSignWithoutCa);
    }
    if c.x.issuer().iter_rdn().next().is_none() {
        return Some(StrictRule::EmptyIssuer);
    }
    let san = c.x.subject_alternative_name();
    let has_san = matches!(san, Ok(Some(_)));
    if c.x.subject().iter_rdn().next().is_none()
        && (f.is_ca || key_usage_allows(c, "cRLSign") && ku || !has_san)
    {
        return Some(StrictRule::EmptySubject);
    }
    if let Ok(Some(san)) = san {
        if san.value.general_names.is_empty() {
            return Some(StrictRule::EmptySubjectAltName);
        }
    }
    if c.x.signature_algorithm != c.x.tbs_certificate.signature {
        return Some(StrictRule::SignatureAlgorithmMismatch);
    }
    if c.x.version().0 >= X509Version::V3.0 {
        if issued_by_other && !self_signed(c) {
            let akid =
                c.x.extensions()
                    .iter()
                    .find_map(|e| match e.parsed_extension() {
                        ParsedExtension::AuthorityKeyIdentifier(a) => Some(a),
                        _ => None,
                    });
            let empty = |a: &&AuthorityKeyIdentifier<'_>| {
                a.key_identifier.is_none()
                    && a.authority_cert_issuer.is_none()
                    && a.authority_cert_serial.is_none()
            };
            if akid.is_none_or(|a| empty(&a)) {
                return Some(StrictRule::MissingAuthorityKeyId);
            }
        }
        if f.is_ca && f.subject_key_id.is_none() {
            return Some(StrictRule::MissingSubjectKeyId);
        }
    } else if !c.x.extensions().is_empty() {
        return Some(StrictRule::ExtensionsBeforeV3);
    }
    None
}

fn check_purpose(c: &Cert<'_>, leaf: bool, wanted: Purpose) -> Result<(), Diagnosis> {
    let f = &c.facts;
    let wrong = |has: &[String], problem| Diagnosis::WrongPurpose {
        subject: f.subject.clone(),
        wanted,
        has: has.to_vec(),
        problem,
    };
    if f.has_extended_key_usage && !f.extended_key_usage.iter().any(|e| e == wanted.eku_name()) {
        return Err(wrong(
            &f.extended_key_usage,
            PurposeProblem::ExtendedKeyUsage,
        ));
    }
    if !leaf {
        return Ok(());
    }
    if f.is_ca {
        return Err(wrong(&f.extended_key_usage, PurposeProblem::CaCertificate));
    }
    if has_key_usage(c) {
        let rsa = matches!(f.key, KeyKind::Rsa { .. });
        let signs = f.key_usage.iter().any(|k| k == "digitalSignature");
        let encrypts = f.key_usage.iter().any(|k| k == "keyEncipherment");
        let ok = signs || (wanted == Purpose::Server && rsa && encrypts);
        if !ok {
            return Err(wrong(&f.key_usage, PurposeProblem::KeyUsage));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Step 4: name

/// The names a certificate presents, as messages print them: `DNS:…`, `IP:…`.
fn presented_names(f: &CertFacts) -> Vec<String> {
    f.dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(f.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect()
}

fn dns_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(rest) => {
            !rest.contains('*')
                && rest.contains('.')
                && name
                    .split_once('.')
                    .is_some_and(|(first, tail)| !first.is_empty() && tail == rest)
        }
        None => !pattern.contains('*') && !pattern.is_empty() && pattern == name,
    }
}

/// Whether the certificate names `name`: an IP address against IP SANs, a DNS name against DNS
/// SANs (wildcard only as the whole leftmost label). The CN is never consulted.
pub fn names_host(f: &CertFacts, name: &str) -> bool {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return f.ip_addresses.contains(&ip);
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    !name.is_empty() && f.dns_names.iter().any(|p| dns_matches(p, &name))
}

fn check_name(leaf: &Cert<'_>, name: &str) -> Result<(), Diagnosis> {
    if names_host(&leaf.facts, name) {
        return Ok(());
    }
    Err(Diagnosis::NameMismatch {
        subject: leaf.facts.subject.clone(),
        name: name.to_string(),
        presented: presented_names(&leaf.facts),
    })
}

// ---------------------------------------------------------------------------------------------
// Step 5: revocation

fn crl_akid(crl: &CertificateRevocationList<'_>) -> Option<String> {
    crl.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| hex::encode(k.0))
            }
            _ => None,
        })
}

/// Whether `crl` is a full CRL of `issuer` whose scope covers `cert`.
fn crl_covers(crl: &Crl<'_>, cert: &Cert<'_>, issuer: &Cert<'_>) -> bool {
    if !names_equal(crl.x.issuer(), cert.x.issuer())
        || !names_equal(crl.x.issuer(), issuer.x.subject())
    {
        return false;
    }
    if let (Some(akid), Some(skid)) = (crl_akid(&crl.x), &issuer.facts.subject_key_id) {
        if &akid != skid {
            return false;
        }
    }
    for ext in crl.x.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::IssuingDistributionPoint(idp) => {
                let out_of_scope = idp.only_contains_attribute_certs
                    || idp.indirect_crl
                    || idp.only_some_reasons.is_some()
                    || (idp.only_contains_user_certs && cert.facts.is_ca)
                    || (idp.only_contains_ca_certs && !cert.facts.is_ca);
                if out_of_scope {
                    return false;
                }
                if let Some(DistributionPointName::FullName(names)) = &idp.distribution_point {
                    let uris: Vec<&str> = names
                        .iter()
                        .filter_map(|n| match n {
                            GeneralName::URI(u) => Some(*u),
                            _ => None,
                        })
                        .collect();
                    if !uris.is_empty()
                        && !cert
                            .facts
                            .crl_urls
                            .iter()
                            .any(|u| uris.contains(&u.as_str()))
                    {
                        return false;
                    }
                }
            }
            // a delta CRL
            _ if ext.oid.to_id_string() == "2.5.29.27" => return false,
            _ => {}
        }
    }
    true
}

fn crl_current(crl: &Crl<'_>, now: OffsetDateTime) -> bool {
    crl.x.last_update().to_datetime() <= now
        && crl.x.next_update().is_none_or(|n| n.to_datetime() >= now)
}

fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown reason",
    }
}

fn check_revocation(
    path: &[&Cert<'_>],
    crls: &[Crl<'_>],
    now: OffsetDateTime,
) -> Result<(), Diagnosis> {
    for pair in path.windows(2) {
        let (cert, issuer) = (pair[0], pair[1]);
        let covering: Vec<&Crl<'_>> = crls
            .iter()
            .filter(|c| crl_covers(c, cert, issuer))
            .collect();
        // A current CRL is preferred, then the newest (OpenSSL's CRL scoring, simplified).
        let best = covering
            .iter()
            .max_by_key(|c| (crl_current(c, now), c.x.last_update().to_datetime()));
        let Some(crl) = best else {
            return Err(Diagnosis::CrlMissing {
                subject: cert.facts.subject.clone(),
                issuer: cert.facts.issuer.clone(),
            });
        };
        let invalid = |problem| Diagnosis::CrlInvalid {
            issuer: crl.issuer.clone(),
            problem,
        };
        if !key_usage_allows(issuer, "cRLSign") {
            return Err(invalid(CrlProblem::IssuerMayNotSignCrls));
        }
        if crl.x.last_update().to_datetime() > now {
            return Err(invalid(CrlProblem::NotYetValid));
        }
        if let Some(next) = crl.x.next_update() {
            if next.to_datetime() < now {
                return Err(Diagnosis::CrlStale {
                    issuer: crl.issuer.clone(),
                    next_update: next.to_datetime(),
                    now,
                });
            }
        }
        // An algorithm x509-parser cannot check is left to the webpki gate.
        if let Err(X509Error::SignatureVerificationError) =
            crl.x.verify_signature(issuer.x.public_key())
        {
            return Err(invalid(CrlProblem::BadSignature));
        }
        let entry = crl
            .x
            .iter_revoked_certificates()
            .find(|r| Serial::from_bytes(r.raw_serial()) == cert.facts.serial);
        if let Some(entry) = entry {
            let reason = entry.reason_code().map(|(_, code)| code.0);
            if reason != Some(8) {
                return Err(Diagnosis::Revoked {
                    subject: cert.facts.subject.clone(),
                    serial: cert.facts.serial.clone(),
                    revoked_at: Some(entry.revocation_date.to_datetime()),
                    reason: reason.map(|r| reason_name(r).to_string()),
                });
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Step 6: signatures and times

fn check_time(c: &Cert<'_>, now: OffsetDateTime) -> Result<(), Diagnosis> {
    if c.facts.not_before > now {
        return Err(Diagnosis::NotYetValid {
            subject: c.facts.subject.clone(),
            not_before: c.facts.not_before,
            now,
        });
    }
    if c.facts.not_after < now {
        return Err(Diagnosis::Expired {
            subject: c.facts.subject.clone(),
            not_after: c.facts.not_after,
            now,
        });
    }
    Ok(())
}

fn check_signatures_and_times(path: &[&Cert<'_>], now: OffsetDateTime) -> Result<(), Diagnosis> {
    let top = path.len() - 1;
    // The anchor's own signature is not checked (it is trusted, self-signed or not); its
    // validity is, as OpenSSL does.
    check_time(path[top], now)?;
    for k in (0..top).rev() {
        let (subject, issuer) = (path[k], path[k + 1]);
        // An algorithm x509-parser cannot check is left to the webpki gate.
        if let Err(X509Error::SignatureVerificationError) =
            subject.x.verify_signature(Some(issuer.x.public_key()))
        {
            return Err(Diagnosis::BadSignature {
                subject: subject.facts.subject.clone(),
                issuer: issuer.facts.subject.clone(),
            });
        }
        check_time(subject, now)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Step 7: rustls-webpki

/// The EKU rule given to webpki: the purpose's, or none at all.
enum Usage {
    Tls(webpki::KeyUsage),
    Any,
}

impl webpki::ExtendedKeyUsageValidator for Usage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self {
            Usage::Tls(usage) => usage.validate(iter),
            Usage::Any => {
                for id in iter {
                    id?;
                }
                Ok(())
            }
        }
    }
}

fn unix_time(t: OffsetDateTime) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(
        u64::try_from(t.unix_timestamp()).unwrap_or(0),
    ))
}

fn webpki_gate(input: &VerifyInput<'_>, path: &[&Cert<'_>]) -> Result<(), Diagnosis> {
    let leaf = path[0];
    if path.len() == 1 || (input.purpose.is_none() && leaf.facts.is_ca) {
        return Ok(());
    }
    let refused = |e: webpki::Error| from_webpki(&e, input);
    let anchor_der = CertificateDer::from(path[path.len() - 1].der);
    let anchors = [webpki::anchor_from_trusted_cert(&anchor_der).map_err(refused)?];
    let intermediates: Vec<CertificateDer<'_>> = path[1..path.len() - 1]
        .iter()
        .map(|c| CertificateDer::from(c.der))
        .collect();
    let leaf_der = CertificateDer::from(leaf.der);
    let end_entity = webpki::EndEntityCert::try_from(&leaf_der).map_err(refused)?;
    let crls: Vec<webpki::CertRevocationList<'static>> = input
        .crls
        .iter()
        .map(|der| webpki::OwnedCertRevocationList::from_der(der).map(Into::into))
        .collect::<Result<_, _>>()
        .map_err(refused)?;
    let crl_refs: Vec<&webpki::CertRevocationList<'_>> = crls.iter().collect();
    let revocation = match webpki::RevocationOptionsBuilder::new(&crl_refs) {
        Ok(builder) => Some(
            builder
                .with_depth(webpki::RevocationCheckDepth::Chain)
                .with_status_policy(webpki::UnknownStatusPolicy::Deny)
                .with_expiration_policy(webpki::ExpirationPolicy::Enforce)
                .build(),
        ),
        Err(_) => None, // no CRL given
    };
    let usage = match input.purpose {
        Some(Purpose::Server) => Usage::Tls(webpki::KeyUsage::server_auth()),
        Some(Purpose::Client) => Usage::Tls(webpki::KeyUsage::client_auth()),
        None => Usage::Any,
    };
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            unix_time(input.now),
            usage,
            revocation,
            None,
        )
        .map_err(refused)?;
    if let Some(name) = input.name {
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare).map_err(|_| Diagnosis::Other {
            detail: format!("\"{name}\" is neither a valid DNS name nor an IP address"),
        })?;
        end_entity
            .verify_is_valid_for_subject_name(&server_name)
            .map_err(refused)?;
    }
    Ok(())
}

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
    let trusted = || crate::trust::summarize_anchors(input.trusted);
    match err {
        E::UnknownIssuer => {
            let walk = ctx.walk();
            let top = walk.last();
            Diagnosis::UnknownIssuer {
                subject: top.map(|f| f.subject.clone()).unwrap_or(leaf_subject),
                issuer: top.map(|f| f.issuer.clone()).unwrap_or_default(),
                path: walk.iter().map(|f| f.subject.clone()).collect(),
                trusted: trusted(),
            }
        }
        E::CertExpired { time, not_after } => {
            let not_after = ctx.time(*not_after);
            let subject = ctx
                .find(|f| f.not_after == not_after)
                .map(|f| f.subject.clone())
                .unwrap_or(leaf_subject);
            Diagnosis::Expired {
                subject,
                not_after,
                now: ctx.time(*time),
            }
        }
        E::CertNotValidYet { time, not_before } => {
            let not_before = ctx.time(*not_before);
            let subject = ctx
                .find(|f| f.not_before == not_before)
                .map(|f| f.subject.clone())
                .unwrap_or(leaf_subject);
            Diagnosis::NotYetValid {
                subject,
                not_before,
                now: ctx.time(*time),
            }
        }
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
        E::CrlExpired { time, next_update } => {
            let next_update = ctx.time(*next_update);
            let issuer = parse_crls(input.crls)
                .ok()
                .and_then(|crls| {
                    crls.iter()
                        .find(|c| c.x.next_update().map(|n| n.to_datetime()) == Some(next_update))
                        .map(|c| c.issuer.clone())
                })
                .or_else(|| ctx.leaf().map(|f| f.issuer.clone()))
                .unwrap_or_default();
            Diagnosis::CrlStale {
                issuer,
                next_update,
                now: ctx.time(*time),
            }
        }
        E::UnknownRevocationStatus => {
            let crl_issuers: Vec<String> = parse_crls(input.crls)
                .map(|crls| crls.into_iter().map(|c| c.issuer).collect())
                .unwrap_or_default();
            let walk = ctx.walk();
            let uncovered = walk
                .iter()
                .find(|f| !crl_issuers.iter().any(|i| i.eq_ignore_ascii_case(&f.issuer)));
            let f = uncovered.or(walk.first());
            Diagnosis::CrlMissing {
                subject: f.map(|f| f.subject.clone()).unwrap_or(leaf_subject),
                issuer: f.map(|f| f.issuer.clone()).unwrap_or_default(),
            }
        }
        E::InvalidCrlSignatureForPublicKey => Diagnosis::CrlInvalid {
            issuer: ctx.leaf().map(|f| f.issuer.clone()).unwrap_or_default(),
            problem: CrlProblem::BadSignature,
        },
        E::IssuerNotCrlSigner => Diagnosis::CrlInvalid {
            issuer: ctx.leaf().map(|f| f.issuer.clone()).unwrap_or_default(),
            problem: CrlProblem::IssuerMayNotSignCrls,
        },
        E::InvalidSignatureForPublicKey => bad_signature_in_chain(&ctx).unwrap_or_else(|| {
            Diagnosis::BadSignature {
                subject: leaf_subject,
                issuer: ctx.leaf().map(|f| f.issuer.clone()).unwrap_or_default(),
            }
        }),
        E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) | E::EmptyEkuExtension => {
            let wanted = match err {
                E::RequiredEkuNotFoundContext(c) => {
                    if c.required.oid_values().eq(webpki::KeyUsage::SERVER_AUTH_REPR.iter().copied()) {
                        Purpose::Server
                    } else {
                        Purpose::Client
                    }
                }
                _ => ctx.purpose(),
            };
            let f = ctx
                .find(|f| {
                    f.has_extended_key_usage
                        && !f.extended_key_usage.iter().any(|e| e == wanted.eku_name())
                })
                .or(ctx.leaf());
            Diagnosis::WrongPurpose {
                subject: f.map(|f| f.subject.clone()).unwrap_or(leaf_subject),
                wanted,
                has: f.map(|f| f.extended_key_usage.clone()).unwrap_or_default(),
                problem: PurposeProblem::ExtendedKeyUsage,
            }
        }
        E::CaUsedAsEndEntity => Diagnosis::WrongPurpose {
            subject: leaf_subject,
            wanted: ctx.purpose(),
            has: ctx.leaf().map(|f| f.extended_key_usage.clone()).unwrap_or_default(),
            problem: PurposeProblem::CaCertificate,
        },
        E::EndEntityUsedAsCa => {
            let walk = ctx.walk();
            let pos = walk.iter().skip(1).position(|f| !f.is_ca).map(|p| p + 1);
            match pos {
                Some(p) => Diagnosis::NotACa {
                    subject: walk[p].subject.clone(),
                    issued: walk[p - 1].subject.clone(),
                    missing: CaRequirement::BasicConstraints,
                },
                None => Diagnosis::NotACa {
                    subject: ctx.leaf().map(|f| f.issuer.clone()).unwrap_or_default(),
                    issued: leaf_subject,
                    missing: CaRequirement::BasicConstraints,
                },
            }
        }
        E::PathLenConstraintViolated => {
            let walk = ctx.walk();
            let found = walk.iter().enumerate().skip(1).find_map(|(i, f)| {
                let below = u32::try_from(i.saturating_sub(1)).unwrap_or(u32::MAX);
                f.path_len
                    .filter(|p| below > *p)
                    .map(|p| (f.subject.clone(), p, below))
            });
            let (subject, path_len, below) =
                found.unwrap_or((leaf_subject, 0, u32::try_from(walk.len()).unwrap_or(0)));
            Diagnosis::PathLenExceeded {
                subject,
                path_len,
                below,
            }
        }
        E::NameConstraintViolation => Diagnosis::NameConstraintViolation {
            subject: leaf_subject,
        },
        E::UnsupportedSignatureAlgorithm
        | E::UnsupportedSignatureAlgorithmContext(_)
        | E::UnsupportedSignatureAlgorithmForPublicKey
        | E::UnsupportedSignatureAlgorithmForPublicKeyContext(_)
        | E::SignatureAlgorithmMismatch => {
            let weak = input.chain.iter().find_map(|der| {
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
                subject: leaf_subject,
                algorithm: ctx
                    .leaf()
                    .map(|f| format!("{} with a {} key", f.signature_algorithm, f.key))
                    .unwrap_or_else(|| "an unknown algorithm".into()),
            })
        }
        E::UnsupportedCriticalExtension => {
            let found = input.chain.iter().find_map(|der| {
                let (_, x) = X509Certificate::from_der(der).ok()?;
                let ext = x
                    .extensions()
                    .iter()
                    .find(|e| e.critical && e.parsed_extension().unsupported())?;
                Some((dn_string(x.subject()), ext.oid.to_id_string()))
            });
            let (subject, oid) = found.unwrap_or((leaf_subject, "(unknown)".into()));
            Diagnosis::UnsupportedCriticalExtension { subject, oid }
        }
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
pub(crate) mod test_pki {
    //! The story's PKI, built with rcgen for tests: a root, the Alice and Bob intermediates, and
    //! leaves under them.

    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
        PublicKeyData, RevocationReason, RevokedCertParams, SanType, SerialNumber,
    };
    use time::macros::datetime;
    use time::{Duration, OffsetDateTime};

    /// The time every test checks at.
    pub const NOW: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

    /// A certificate with what it takes to issue from it.
    pub struct Made {
        pub der: Vec<u8>,
        pub params: CertificateParams,
        pub key: KeyPair,
    }

    impl Made {
        pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
            Issuer::from_params(&self.params, &self.key)
        }
    }

    pub struct Pki {
        pub root: Made,
        pub alice_int: Made,
        pub bob_int: Made,
        pub alice: Made,
        pub bob: Made,
        pub www: Made,
    }

    pub fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.is_ca = IsCa::Ca(match path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = NOW - Duration::days(365);
        p.not_after = NOW + Duration::days(365);
        p.use_authority_key_identifier_extension = true;
        p.serial_number = Some(SerialNumber::from(rand_serial()));
        p
    }

    pub fn leaf_params(cn: &str, eku: &[ExtendedKeyUsagePurpose]) -> CertificateParams {
        let mut p = CertificateParams::default();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = vec![SanType::DnsName(cn.try_into().unwrap())];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = eku.to_vec();
        p.not_before = NOW - Duration::days(30);
        p.not_after = NOW + Duration::days(30);
        p.use_authority_key_identifier_extension = true;
        p.serial_number = Some(SerialNumber::from(rand_serial()));
        p
    }

    fn rand_serial() -> u64 {
        let mut b = [0u8; 8];
        aws_lc_rs::rand::fill(&mut b).unwrap();
        u64::from_be_bytes(b) >> 1
    }

    pub fn make_root(params: CertificateParams) -> Made {
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        Made { der, params, key }
    }

    pub fn signed(params: CertificateParams, by: &Made) -> Made {
        let key = KeyPair::generate().unwrap();
        let der = params.signed_by(&key, &by.issuer()).unwrap().der().to_vec();
        Made { der, params, key }
    }

    /// A certificate for someone else's public key (one we cannot generate, e.g. RSA 1024).
    pub fn signed_for(
        params: CertificateParams,
        public: &impl PublicKeyData,
        by: &Made,
    ) -> Vec<u8> {
        params
            .signed_by(public, &by.issuer())
            .unwrap()
            .der()
            .to_vec()
    }

    /// A certificate that names `by` as issuer (same name, same key identifier) but is signed
    /// with another key.
    pub fn forged(params: CertificateParams, by: &Made) -> Vec<u8> {
        let mut impostor = by.params.clone();
        impostor.key_identifier_method =
            KeyIdMethod::PreSpecified(by.params.key_identifier(&by.key));
        let wrong_key = KeyPair::generate().unwrap();
        let key = KeyPair::generate().unwrap();
        params
            .signed_by(&key, &Issuer::new(impostor, &wrong_key))
            .unwrap()
            .der()
            .to_vec()
    }

    pub fn crl(
        by: &Made,
        revoked: &[(&Made, Option<RevocationReason>)],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Vec<u8> {
        crl_by(
            &by.issuer(),
            KeyIdMethod::Sha256,
            revoked,
            this_update,
            next_update,
        )
    }

    /// A CRL signed by any issuer, e.g. one that only pretends to be the CA.
    pub fn crl_by(
        issuer: &Issuer<'_, impl rcgen::SigningKey>,
        key_identifier_method: KeyIdMethod,
        revoked: &[(&Made, Option<RevocationReason>)],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Vec<u8> {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|(m, reason)| RevokedCertParams {
                    serial_number: m.params.serial_number.clone().unwrap(),
                    revocation_time: NOW - Duration::days(2),
                    reason_code: *reason,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method,
        };
        params.signed_by(issuer).unwrap().der().to_vec()
    }

    impl Pki {
        pub fn new() -> Pki {
            use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
            let root = make_root(ca_params("Local Root CA", None));
            let alice_int = signed(ca_params("Alice Intermediate Authority", Some(0)), &root);
            let bob_int = signed(ca_params("Bob Intermediate Authority", Some(0)), &root);
            let alice = signed(leaf_params("alice.example.com", &[ClientAuth]), &alice_int);
            let bob = signed(leaf_params("bob.example.com", &[ClientAuth]), &bob_int);
            let mut www = leaf_params("www.example.com", &[ServerAuth]);
            www.subject_alt_names
                .push(SanType::DnsName("localhost".try_into().unwrap()));
            www.subject_alt_names
                .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
            let www = signed(www, &root);
            Pki {
                root,
                alice_int,
                bob_int,
                alice,
                bob,
                www,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_pki::*;
    use super::*;
    use ::time::Duration;
    use rcgen::{
        CrlDistributionPoint, ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose, RevocationReason,
        SanType,
    };

    /// An RSA 1024 public key (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`);
    /// aws-lc-rs will not generate one, and only the public half is needed to issue for it.
    const RSA_1024_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDcyBWA9XMtxCzZvo/FEBkqVDlE
WhpQT7/3CvnMHKsrEoBexTtAtLOcBswdZ62RlklmlR0cdRqMobKuloBmiII/Ej64
LEiFvh+WiqTS+NfI5IaRC6jod49NTaOy8PROsSjuoiDSNqoGmMUTEnpiV81bvvb9
2S3rCFq+2wnHzfR8ZwIDAQAB
-----END PUBLIC KEY-----
";

    /// A CA and a leaf it signed with ecdsa-with-SHA1 (made with openssl, valid 2026–2126);
    /// rcgen cannot sign with SHA-1.
    const SHA1_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUcS+9typ8Ukg6Zkt8WUn95wYb+8YwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOTGVnYWN5IFNIQTEgQ0EwIBcNMjYxMTI1MDgxODAxWhgPMjEy
NjExMDEwODE4MDFaMBkxFzAVBgNVBAMMDkxlZ2FjeSBTSEExIENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEi9jei90G5YCFXxBR+DDdSoLP91O81YGQVre1VeRp
nMy9rTzLFs3RiXhBwsTuVtihT9s+PQM4JWBZc0AlfKIyfKNjMGEwHwYDVR0jBBgw
FoAUZjbpRKhoXMKpPhEKJvCVRXMxtTcwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8B
Af8EBAMCAQYwHQYDVR0OBBYEFGY26USoaFzCqT4RCibwlUVzMbU3MAoGCCqGSM49
BAMCA0gAMEUCIE928taeVEsRQicYXYxElVQu9xPRBv/Djz4mpHFc0AZoAiEAw704
mo0kteCKTQFrYsS21SQIAHNBVKa1d5MudC474CQ=
-----END CERTIFICATE-----
";
    const SHA1_LEAF: &str = "-----BEGIN CERTIFICATE-----
MIIB1zCCAX+gAwIBAgIUF7IP/m6teRummmbwAdGp34bPGMMwCQYHKoZIzj0EATAZ
MRcwFQYDVQQDDA5MZWdhY3kgU0hBMSBDQTAgFw0yNjExMjUwODE4MDFaGA8yMTI2
MTEwMTA4MTgwMVowHTEbMBkGA1UEAwwSbGVnYWN5LmV4YW1wbGUuY29tMFkwEwYH
KoZIzj0CAQYIKoZIzj0DAQcDQgAEVC1zKo2FqoWwDp6plT/eAYyhWzq7LW6TGPmh
mcY8CYJZHv/nxKv1d8rtFpGaKMJjqUFqZ2vUvDR8QQs7P1XhdKOBnzCBnDAMBgNV
HRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAdBgNVHSUEFjAUBggrBgEFBQcDAgYI
KwYBBQUHAwEwHQYDVR0RBBYwFIISbGVnYWN5LmV4YW1wbGUuY29tMB8GA1UdIwQY
MBaAFGY26USoaFzCqT4RCibwlUVzMbU3MB0GA1UdDgQWBBQnCM7ETC+88RWH19Z3
0HX8SnFjEzAJBgcqhkjOPQQBA0cAMEQCICqqPRANeMwIARzvD54N50XNtKxSsbHE
8Yqo1GGQK9gGAiAbm2Dzty4hfgmlR9Jr1eSFH84poe8ton4Q2z+/xU+r/A==
-----END CERTIFICATE-----
";

    fn der(pem: &str) -> Vec<u8> {
        crate::cert::pem_certs(pem.as_bytes()).unwrap().remove(0)
    }

    struct Case {
        name: &'static str,
        chain: Vec<Vec<u8>>,
        trusted: Vec<Vec<u8>>,
        purpose: Option<Purpose>,
        host: Option<&'static str>,
        crls: Vec<Vec<u8>>,
        now: OffsetDateTime,
        /// `Ok` or the expected diagnosis code, and a subject the diagnosis must name.
        want: Result<(), (&'static str, &'static str)>,
    }

    fn case(name: &'static str, chain: Vec<Vec<u8>>, trusted: Vec<Vec<u8>>) -> Case {
        Case {
            name,
            chain,
            trusted,
            purpose: Some(Purpose::Client),
            host: None,
            crls: vec![],
            now: NOW,
            want: Ok(()),
        }
    }

    impl Case {
        fn purpose(mut self, p: Option<Purpose>) -> Self {
            self.purpose = p;
            self
        }
        fn host(mut self, h: &'static str) -> Self {
            self.host = Some(h);
            self
        }
        fn crls(mut self, c: Vec<Vec<u8>>) -> Self {
            self.crls = c;
            self
        }
        fn at(mut self, now: OffsetDateTime) -> Self {
            self.now = now;
            self
        }
        fn fails(mut self, code: &'static str, naming: &'static str) -> Self {
            self.want = Err((code, naming));
            self
        }
        fn run(&self) -> Result<Verified, Diagnosis> {
            verify(&VerifyInput {
                chain: &self.chain,
                trusted: &self.trusted,
                purpose: self.purpose,
                name: self.host,
                crls: &self.crls,
                now: self.now,
            })
        }
    }

    #[test]
    fn verify_table() {
        let pki = Pki::new();
        let Pki {
            root,
            alice_int,
            bob_int,
            alice,
            bob,
            www,
        } = &pki;
        let later = |days| NOW + Duration::days(days);

        let mut p = leaf_params("old.example.com", &[Eku::ClientAuth]);
        p.not_before = NOW - Duration::days(60);
        p.not_after = NOW - Duration::days(3);
        let expired = signed(p, alice_int);

        let mut p = leaf_params("future.example.com", &[Eku::ClientAuth]);
        p.not_before = NOW + Duration::hours(5);
        let future = signed(p, alice_int);

        let both = signed(
            leaf_params("both.example.com", &[Eku::ServerAuth, Eku::ClientAuth]),
            alice_int,
        );
        let no_eku = signed(leaf_params("plain.example.com", &[]), alice_int);
        let any_eku = signed(leaf_params("any.example.com", &[Eku::Any]), alice_int);
        let mut p = leaf_params("enc.example.com", &[Eku::ClientAuth]);
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        let enc_only = signed(p, alice_int);

        let mut p = leaf_params("wild.example.com", &[Eku::ServerAuth]);
        p.subject_alt_names = vec![SanType::DnsName("*.example.com".try_into().unwrap())];
        let wildcard = signed(p, root);

        let forged_alice = forged(
            leaf_params("alice.example.com", &[Eku::ClientAuth]),
            alice_int,
        );

        let weak = signed_for(
            leaf_params("weak.example.com", &[Eku::ClientAuth]),
            &rcgen::SubjectPublicKeyInfo::from_pem(RSA_1024_PUBLIC).unwrap(),
            alice_int,
        );

        let mallory = signed(
            leaf_params("mallory.example.com", &[Eku::ClientAuth]),
            alice,
        );

        let sub_int = signed(ca_params("Alice Sub Authority", None), alice_int);
        let deep = signed(
            leaf_params("deep.example.com", &[Eku::ClientAuth]),
            &sub_int,
        );

        let mut p = ca_params("Bare Root", None);
        p.key_usages = vec![];
        let bare_root = make_root(p);
        let bare_leaf = signed(
            leaf_params("bare.example.com", &[Eku::ClientAuth]),
            &bare_root,
        );

        let mut p = ca_params("Expired Root", None);
        p.not_after = NOW - Duration::days(1);
        let expired_root = make_root(p);
        let under_expired = signed(
            leaf_params("orphan.example.com", &[Eku::ClientAuth]),
            &expired_root,
        );

        let other_root = make_root(ca_params("Other Root", None));

        let mut p = leaf_params("dp.example.com", &[Eku::ClientAuth]);
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://127.0.0.1:8200/v1/pki/crl".into()],
        }];
        let with_dp = signed(p, alice_int);

        let alice_crl = crl(alice_int, &[], NOW - Duration::days(1), later(7));
        let root_crl = crl(root, &[], NOW - Duration::days(1), later(7));
        let alice_revoked = crl(
            alice_int,
            &[(alice, Some(RevocationReason::KeyCompromise))],
            NOW - Duration::days(1),
            later(7),
        );
        let alice_stale = crl(
            alice_int,
            &[],
            NOW - Duration::days(10),
            NOW - Duration::days(3),
        );
        let bob_crl_for_alice = {
            // Bob's CRL, not Alice's: does not cover alice
            crl(bob_int, &[(alice, None)], NOW - Duration::days(1), later(7))
        };
        let forged_crl = {
            let kid =
                rcgen::KeyIdMethod::PreSpecified(alice_int.params.key_identifier(&alice_int.key));
            let mut impostor = alice_int.params.clone();
            impostor.key_identifier_method = kid.clone();
            let wrong_key = rcgen::KeyPair::generate().unwrap();
            crl_by(
                &rcgen::Issuer::new(impostor, &wrong_key),
                kid,
                &[],
                NOW - Duration::days(1),
                later(7),
            )
        };
        let mut p = ca_params("No CRL Signing Authority", Some(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let no_crl_sign = signed(p, root);
        let under_no_crl_sign = signed(
            leaf_params("nocrl.example.com", &[Eku::ClientAuth]),
            &no_crl_sign,
        );
        let no_crl_sign_crl = {
            let mut params = no_crl_sign.params.clone();
            params.key_usages.push(KeyUsagePurpose::CrlSign);
            crl_by(
                &rcgen::Issuer::new(params, &no_crl_sign.key),
                rcgen::KeyIdMethod::Sha256,
                &[],
                NOW - Duration::days(1),
                later(7),
            )
        };
        let alice_int_revoked = crl(
            root,
            &[(alice_int, Some(RevocationReason::CaCompromise))],
            NOW - Duration::days(1),
            later(7),
        );

        let a = |m: &Made| m.der.clone();
        let server = Some(Purpose::Server);
        let cases = vec![
            // -- accepted
            case(
                "alice with her intermediate, root trusted",
                vec![a(alice), a(alice_int)],
                vec![a(root)],
            ),
            case(
                "alice alone, her intermediate trusted",
                vec![a(alice)],
                vec![a(alice_int)],
            ),
            case(
                "intermediate given but intermediate trusted",
                vec![a(alice), a(alice_int)],
                vec![a(alice_int)],
            ),
            case(
                "untrusted chain in any order",
                vec![a(alice), a(bob_int), a(root), a(alice_int)],
                vec![a(root)],
            ),
            case("leaf itself trusted", vec![a(alice)], vec![a(alice)]),
            case(
                "no EKU fits any purpose",
                vec![a(&no_eku)],
                vec![a(alice_int)],
            ),
            case("both EKUs", vec![a(&both)], vec![a(alice_int)]).purpose(server),
            case("no purpose asked", vec![a(www)], vec![a(root)]).purpose(None),
            case(
                "CA checked without purpose",
                vec![a(alice_int)],
                vec![a(root)],
            )
            .purpose(None),
            case("server name", vec![a(www)], vec![a(root)])
                .purpose(server)
                .host("www.example.com"),
            case("server name, other SAN", vec![a(www)], vec![a(root)])
                .purpose(server)
                .host("LOCALHOST"),
            case("server IP", vec![a(www)], vec![a(root)])
                .purpose(server)
                .host("127.0.0.1"),
            case("wildcard", vec![a(&wildcard)], vec![a(root)])
                .purpose(server)
                .host("api.example.com"),
            case(
                "CRLs for every certificate",
                vec![a(alice), a(alice_int)],
                vec![a(root)],
            )
            .crls(vec![alice_crl.clone(), root_crl.clone()]),
            case(
                "CRL with distribution point",
                vec![a(&with_dp)],
                vec![a(alice_int)],
            )
            .crls(vec![alice_crl.clone()]),
            case(
                "anchor's own revocation is not checked",
                vec![a(alice)],
                vec![a(alice_int)],
            )
            .crls(vec![alice_crl.clone()]),
            // -- refused
            case(
                "bob against alice's intermediate",
                vec![a(bob)],
                vec![a(alice_int)],
            )
            .fails("unknown_issuer", "CN=Bob Intermediate Authority"),
            case(
                "bob with his intermediate against alice's",
                vec![a(bob), a(bob_int)],
                vec![a(alice_int)],
            )
            .fails("unknown_issuer", "CN=Local Root CA"),
            case("no CA given", vec![a(alice)], vec![])
                .fails("unknown_issuer", "CN=Alice Intermediate Authority"),
            case(
                "root neither sent nor trusted",
                vec![a(alice), a(alice_int), a(&other_root)],
                vec![a(&other_root)],
            )
            .fails("unknown_issuer", "CN=Local Root CA"),
            case("expired leaf", vec![a(&expired)], vec![a(alice_int)])
                .fails("expired", "CN=old.example.com"),
            case("not yet valid", vec![a(&future)], vec![a(alice_int)])
                .fails("not_yet_valid", "CN=future.example.com"),
            case(
                "expired anchor",
                vec![a(&under_expired)],
                vec![a(&expired_root)],
            )
            .fails("expired", "CN=Expired Root"),
            case("server cert as client", vec![a(www)], vec![a(root)])
                .fails("wrong_purpose", "CN=www.example.com"),
            case("client cert as server", vec![a(alice)], vec![a(alice_int)])
                .purpose(server)
                .fails("wrong_purpose", "CN=alice.example.com"),
            case(
                "anyExtendedKeyUsage is not clientAuth",
                vec![a(&any_eku)],
                vec![a(alice_int)],
            )
            .fails("wrong_purpose", "CN=any.example.com"),
            case(
                "keyEncipherment only",
                vec![a(&enc_only)],
                vec![a(alice_int)],
            )
            .fails("wrong_purpose", "CN=enc.example.com"),
            case("CA as leaf", vec![a(alice_int)], vec![a(root)])
                .fails("wrong_purpose", "CN=Alice Intermediate Authority"),
            case("name mismatch", vec![a(www)], vec![a(root)])
                .purpose(server)
                .host("evil.example.com")
                .fails("name_mismatch", "CN=www.example.com"),
            case("IP mismatch", vec![a(www)], vec![a(root)])
                .purpose(server)
                .host("10.0.0.1")
                .fails("name_mismatch", "CN=www.example.com"),
            case(
                "wildcard covers one label only",
                vec![a(&wildcard)],
                vec![a(root)],
            )
            .purpose(server)
            .host("a.b.example.com")
            .fails("name_mismatch", "CN=wild.example.com"),
            case(
                "wildcard does not cover the bare domain",
                vec![a(&wildcard)],
                vec![a(root)],
            )
            .purpose(server)
            .host("example.com")
            .fails("name_mismatch", "CN=wild.example.com"),
            case("revoked", vec![a(alice)], vec![a(alice_int)])
                .crls(vec![alice_revoked.clone()])
                .fails("revoked", "CN=alice.example.com"),
            case(
                "revoked intermediate",
                vec![a(alice), a(alice_int)],
                vec![a(root)],
            )
            .crls(vec![alice_crl.clone(), alice_int_revoked.clone()])
            .fails("revoked", "CN=Alice Intermediate Authority"),
            case(
                "CRL of the root only",
                vec![a(alice), a(alice_int)],
                vec![a(root)],
            )
            .crls(vec![root_crl.clone()])
            .fails("crl_missing", "CN=Alice Intermediate Authority"),
            case("another CA's CRL", vec![a(alice)], vec![a(alice_int)])
                .crls(vec![bob_crl_for_alice.clone()])
                .fails("crl_missing", "CN=Alice Intermediate Authority"),
            case("stale CRL", vec![a(alice)], vec![a(alice_int)])
                .crls(vec![alice_stale.clone()])
                .fails("crl_stale", "CN=Alice Intermediate Authority"),
            case(
                "forged signature",
                vec![forged_alice.clone()],
                vec![a(alice_int)],
            )
            .fails("bad_signature", "CN=alice.example.com"),
            case("RSA 1024", vec![weak.clone()], vec![a(alice_int)])
                .fails("weak_key", "CN=weak.example.com"),
            case(
                "weak key is found before the unknown issuer",
                vec![weak.clone()],
                vec![a(bob_int)],
            )
            .fails("weak_key", "CN=weak.example.com"),
            case("SHA-1 signature", vec![der(SHA1_LEAF)], vec![der(SHA1_CA)])
                .purpose(server)
                .fails("weak_algorithm", "CN=legacy.example.com"),
            case(
                "a leaf as issuer",
                vec![a(&mallory), a(alice)],
                vec![a(alice_int)],
            )
            .fails("not_a_ca", "CN=alice.example.com"),
            case(
                "pathlen 0 with a sub-CA below",
                vec![a(&deep), a(&sub_int), a(alice_int)],
                vec![a(root)],
            )
            .fails("path_len_exceeded", "CN=Alice Intermediate Authority"),
            case(
                "CA without keyUsage (x509_strict)",
                vec![a(&bare_leaf)],
                vec![a(&bare_root)],
            )
            .fails("malformed", "CN=Bare Root"),
            case("nothing sent", vec![], vec![a(alice_int)]).fails("no_certificate", ""),
            case(
                "garbage",
                vec![b"not a certificate".to_vec()],
                vec![a(root)],
            )
            .fails("certificate_unparsable", ""),
            case("garbage CRL", vec![a(alice)], vec![a(alice_int)])
                .crls(vec![b"junk".to_vec()])
                .fails("certificate_unparsable", ""),
            case(
                "CRL signed by another key",
                vec![a(alice)],
                vec![a(alice_int)],
            )
            .crls(vec![forged_crl.clone()])
            .fails("crl_invalid", "does not verify"),
            case(
                "CRL of a CA without cRLSign",
                vec![a(&under_no_crl_sign)],
                vec![a(&no_crl_sign)],
            )
            .crls(vec![no_crl_sign_crl.clone()])
            .fails("crl_invalid", "lacks cRLSign"),
            // -- order: the first failure OpenSSL reports
            case(
                "unknown issuer before expiry",
                vec![a(&expired)],
                vec![a(bob_int)],
            )
            .fails("unknown_issuer", "CN=Alice Intermediate Authority"),
            case("purpose before expiry", vec![a(www)], vec![a(root)])
                .at(later(60))
                .fails("wrong_purpose", "CN=www.example.com"),
            case("name before expiry", vec![a(www)], vec![a(root)])
                .purpose(server)
                .host("evil.example.com")
                .at(later(60))
                .fails("name_mismatch", "CN=www.example.com"),
            case(
                "revocation before expiry",
                vec![a(alice)],
                vec![a(alice_int)],
            )
            .crls(vec![alice_revoked.clone()])
            .at(later(5))
            .fails("revoked", "CN=alice.example.com"),
            case(
                "anchor expiry before leaf expiry",
                vec![a(alice)],
                vec![a(alice_int)],
            )
            .at(later(400))
            .fails("expired", "CN=Alice Intermediate Authority"),
            case(
                "bad signature before expiry",
                vec![forged_alice],
                vec![a(alice_int)],
            )
            .at(later(60))
            .fails("bad_signature", "CN=alice.example.com"),
        ];
        assert!(cases.len() >= 15);
        for c in &cases {
            let got = c.run();
            match (&c.want, got) {
                (Ok(()), Ok(v)) => {
                    assert_eq!(v.path()[0], c.chain[0], "{}", c.name);
                    assert!(
                        c.trusted.contains(&v.path()[v.path().len() - 1]),
                        "{}",
                        c.name
                    );
                }
                (Ok(()), Err(d)) => panic!("{}: refused: {d}", c.name),
                (Err((code, _)), Ok(_)) => panic!("{}: accepted, wanted {code}", c.name),
                (Err((code, naming)), Err(d)) => {
                    assert_eq!(d.code(), *code, "{}: {d}", c.name);
                    assert!(d.to_string().contains(naming), "{}: {d}", c.name);
                }
            }
        }
    }

    #[test]
    fn verify_intermediate_alone_is_a_narrow_anchor() {
        let pki = Pki::new();
        let trusted = vec![pki.alice_int.der.clone()];
        let check = |chain: Vec<Vec<u8>>| {
            verify(&VerifyInput {
                chain: &chain,
                trusted: &trusted,
                purpose: Some(Purpose::Client),
                name: None,
                crls: &[],
                now: NOW,
            })
        };
        let ok = check(vec![pki.alice.der.clone()]).unwrap();
        assert_eq!(ok.leaf().subject, "CN=alice.example.com");
        assert_eq!(ok.anchor().subject, "CN=Alice Intermediate Authority");
        assert_eq!(ok.path().len(), 2);

        let refused = check(vec![pki.bob.der.clone()]).unwrap_err();
        assert_eq!(
            refused,
            Diagnosis::UnknownIssuer {
                subject: "CN=bob.example.com".into(),
                issuer: "CN=Bob Intermediate Authority".into(),
                path: vec!["CN=bob.example.com".into()],
                trusted: vec!["CN=Alice Intermediate Authority".into()],
            }
        );
        assert_eq!(
            refused.to_string(),
            "certificate \"CN=bob.example.com\" was issued by \"CN=Bob Intermediate Authority\", which is not among the trusted CAs (CN=Alice Intermediate Authority); trust its issuer or use a certificate from one of them"
        );

        // with the root appended (OpenBao's pem_bundle), Bob gets in: the pitfall
        let wide = vec![pki.alice_int.der.clone(), pki.root.der.clone()];
        let chain = vec![pki.bob.der.clone(), pki.bob_int.der.clone()];
        assert!(verify(&VerifyInput {
            chain: &chain,
            trusted: &wide,
            purpose: Some(Purpose::Client),
            name: None,
            crls: &[],
            now: NOW,
        })
        .is_ok());
        assert_eq!(crate::trust::wide_trust_warnings(&wide).len(), 1);
    }

    #[test]
    fn verify_revocation_says_when_and_why() {
        let pki = Pki::new();
        let crls = vec![crl(
            &pki.alice_int,
            &[(&pki.alice, Some(RevocationReason::KeyCompromise))],
            NOW - Duration::days(1),
            NOW + Duration::days(7),
        )];
        let d = verify(&VerifyInput {
            chain: std::slice::from_ref(&pki.alice.der),
            trusted: std::slice::from_ref(&pki.alice_int.der),
            purpose: Some(Purpose::Client),
            name: None,
            crls: &crls,
            now: NOW,
        })
        .unwrap_err();
        match &d {
            Diagnosis::Revoked {
                revoked_at, reason, ..
            } => {
                assert_eq!(*revoked_at, Some(NOW - Duration::days(2)));
                assert_eq!(reason.as_deref(), Some("keyCompromise"));
            }
            other => panic!("{other}"),
        }
        assert!(d
            .to_string()
            .ends_with("was revoked at 2026-12-30 00:00:00 UTC (keyCompromise); issue a new one"));
    }

    #[test]
    fn verify_webpki_is_a_second_gate() {
        // Name constraints are enforced by webpki only: an intermediate limited to example.com
        // that issued for evil.org passes our own checks and is refused by the gate.
        let pki = Pki::new();
        let mut p = ca_params("Constrained Authority", Some(0));
        p.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: vec![rcgen::GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
        let constrained = signed(p, &pki.root);
        let evil = signed(leaf_params("evil.org", &[Eku::ServerAuth]), &constrained);
        let fine = signed(
            leaf_params("ok.example.com", &[Eku::ServerAuth]),
            &constrained,
        );
        let run = |leaf: &Made| {
            verify(&VerifyInput {
                chain: std::slice::from_ref(&leaf.der),
                trusted: &[constrained.der.clone(), pki.root.der.clone()],
                purpose: Some(Purpose::Server),
                name: None,
                crls: &[],
                now: NOW,
            })
        };
        assert!(run(&fine).is_ok());
        assert_eq!(run(&evil).unwrap_err().code(), "name_constraint_violation");
    }

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

    #[test]
    fn verify_names() {
        let pki = Pki::new();
        let www = facts(&pki.www.der).unwrap();
        for (name, ok) in [
            ("www.example.com", true),
            ("WWW.Example.COM.", true),
            ("localhost", true),
            ("127.0.0.1", true),
            ("[127.0.0.1]", true),
            ("::1", false),
            ("example.com", false),
            ("", false),
            ("www.example.com.evil", false),
        ] {
            assert_eq!(names_host(&www, name), ok, "{name}");
        }
        for (pattern, name, ok) in [
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", ".example.com", false),
            ("*.com", "example.com", false),
            ("a*.example.com", "ab.example.com", false),
            ("*", "localhost", false),
        ] {
            assert_eq!(dns_matches(pattern, name), ok, "{pattern} {name}");
        }
    }

    #[test]
    fn verify_never_panics_on_bytes() {
        let pki = Pki::new();
        let mut inputs: Vec<Vec<u8>> = vec![vec![], vec![0x30], vec![0x30, 0x80], vec![0xff; 64]];
        // every truncation and a byte flip at every position of a real certificate
        let good = pki.alice.der.clone();
        for i in (0..good.len()).step_by(7) {
            inputs.push(good[..i].to_vec());
            let mut flipped = good.clone();
            flipped[i] ^= 0x41;
            inputs.push(flipped);
        }
        for bytes in &inputs {
            for (chain, trusted, crls) in [
                (vec![bytes.clone()], vec![pki.alice_int.der.clone()], vec![]),
                (vec![good.clone()], vec![bytes.clone()], vec![]),
                (
                    vec![good.clone()],
                    vec![pki.alice_int.der.clone()],
                    vec![bytes.clone()],
                ),
            ] {
                let input = VerifyInput {
                    chain: &chain,
                    trusted: &trusted,
                    purpose: Some(Purpose::Client),
                    name: Some("alice.example.com"),
                    crls: &crls,
                    now: NOW,
                };
                let _ = verify(&input);
                let _ = from_webpki(&webpki::Error::UnknownIssuer, &input);
                let _ = from_webpki(&webpki::Error::CertRevoked, &input);
                let _ = from_webpki(&webpki::Error::InvalidSignatureForPublicKey, &input);
            }
        }
    }
}
