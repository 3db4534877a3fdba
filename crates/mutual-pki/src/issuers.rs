//! The pure half of many issuers per mount (Vault 1.11+): how a reference (`default`, an ID, a
//! name) picks an issuer, which names and usages are valid, whether a PEM bundle is one chain,
//! the order of a chain among a mount's issuers, and re-signing a CA certificate by another
//! issuer (cross-signing, `sign-self-issued`). No IO: the store and the server call these.

use rcgen::{CertificateParams, SubjectPublicKeyInfo};
use time::OffsetDateTime;

use crate::{
    ca::SigningCa,
    cert::{self, CertFacts},
    key::PrivateKey,
    serial::Serial,
    PkiError,
};

/// The reference every client may use for the mount's default issuer (or key).
pub const DEFAULT_REF: &str = "default";

/// Every usage an issuer may have, in Vault's canonical (sorted) order.
pub const USAGES: &[&str] = &[
    "crl-signing",
    "issuing-certificates",
    "ocsp-signing",
    "read-only",
];

/// The issuer (or key) a reference names among `(id, name)` pairs: `default` is the mount's
/// default, then an exact ID, then a name. None when nothing matches.
pub fn resolve<'a>(
    reference: &str,
    default: Option<&'a str>,
    all: &'a [(String, String)],
) -> Option<&'a str> {
    if reference == DEFAULT_REF {
        return default.filter(|d| all.iter().any(|(id, _)| id == d));
    }
    all.iter()
        .find(|(id, _)| id == reference)
        .or_else(|| {
            all.iter()
                .find(|(_, name)| !name.is_empty() && name == reference)
        })
        .map(|(id, _)| id.as_str())
}

/// Checks a new issuer or key name: empty (no name), or letters, digits, `-`, `_` and `.`, at
/// most 128, and not the reserved `default`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name == DEFAULT_REF {
        return Err("name \"default\" is reserved for the mount's default; choose another".into());
    }
    if name.len() > 128 {
        return Err(format!("name \"{name}\" is longer than 128 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "name \"{name}\" contains {c:?}; use letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// Parses a comma-separated usage list into its canonical form, refusing unknown usages.
pub fn parse_usage(text: &str) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let known = USAGES.iter().find(|u| **u == part).ok_or_else(|| {
            format!(
                "unknown issuer usage \"{part}\" (use {})",
                USAGES.join(", ")
            )
        })?;
        if !out.contains(known) {
            out.push(known);
        }
    }
    out.sort_unstable();
    Ok(out.join(","))
}

/// True when a usage list (canonical or not) holds `usage`.
pub fn has_usage(usages: &str, usage: &str) -> bool {
    usages.split(',').any(|u| u.trim() == usage)
}

/// True when `child` names `parent` as its issuer (subject and, when both carry them, key
/// identifiers) and is not `parent` itself.
pub fn issued_by(child: &CertFacts, parent: &CertFacts) -> bool {
    child.issuer == parent.subject
        && match (&child.authority_key_id, &parent.subject_key_id) {
            (Some(a), Some(s)) => a == s,
            _ => true,
        }
        && !(child.serial == parent.serial && child.subject == parent.subject)
}

/// Why a bundle of CA certificates is not one chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleRefusal {
    /// No certificate in the bundle.
    #[error("the bundle holds no certificate")]
    Empty,
    /// A certificate that is not a CA.
    #[error(
        "certificate \"{subject}\" in the bundle is not a CA certificate; only CAs are issuers"
    )]
    NotACa {
        /// Its subject.
        subject: String,
    },
    /// Two certificates that no issued-by relation links.
    #[error("the bundle holds unrelated CAs: \"{a}\" and \"{b}\" are not in one chain; import them separately")]
    Unrelated {
        /// One subject.
        a: String,
        /// The other.
        b: String,
    },
    /// A key that certifies none of the bundle's certificates.
    #[error("the private key in the bundle does not match the certificate \"{subject}\" (nor any other in the bundle)")]
    KeyMismatch {
        /// The first certificate's subject.
        subject: String,
    },
}

/// Checks that the certificates of an import are CAs linked into one chain (each one issued by
/// another of them or issuing another), the refusal Vault does not make and a mixed-up trust
/// file needs.
pub fn check_bundle(certs: &[CertFacts]) -> Result<(), BundleRefusal> {
    let first = certs.first().ok_or(BundleRefusal::Empty)?;
    if let Some(c) = certs.iter().find(|c| !c.is_ca) {
        return Err(BundleRefusal::NotACa {
            subject: c.subject.clone(),
        });
    }
    // Connected components over issued-by edges, from the first certificate.
    let mut reached = vec![false; certs.len()];
    reached[0] = true;
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..certs.len() {
            if reached[i] {
                continue;
            }
            let linked = (0..certs.len()).any(|j| {
                reached[j] && (issued_by(&certs[i], &certs[j]) || issued_by(&certs[j], &certs[i]))
            });
            if linked {
                reached[i] = true;
                changed = true;
            }
        }
    }
    match reached.iter().position(|r| !r) {
        Some(i) => Err(BundleRefusal::Unrelated {
            a: first.subject.clone(),
            b: certs[i].subject.clone(),
        }),
        None => Ok(()),
    }
}

/// The chain of issuer `start` among `all` (indexes), nearest first: each next one is the
/// issuer of the previous, until a self-signed one or none is found. Never loops.
pub fn chain_of(start: usize, all: &[CertFacts]) -> Vec<usize> {
    let mut out = vec![start];
    let mut current = start;
    while !all[current].self_issued && out.len() <= all.len() {
        // Prefer a parent that is itself self-issued (a root) over a cross-signed twin, so
        // the chain ends at a root when one is known.
        let parents: Vec<usize> = (0..all.len())
            .filter(|&j| !out.contains(&j) && issued_by(&all[current], &all[j]))
            .collect();
        let Some(&next) = parents
            .iter()
            .find(|&&j| all[j].self_issued)
            .or(parents.first())
        else {
            break;
        };
        out.push(next);
        current = next;
    }
    out
}

/// Signs the CA certificate `cert_der` again with `signer`: same subject, public key,
/// validity (within the signer's) and extensions, issued by the signer. With `serial` it gets
/// that serial, else it keeps its own. What cross-signing and `sign-self-issued` make.
pub fn resign(
    signer: &SigningCa<'_>,
    cert_der: &[u8],
    serial: Option<&Serial>,
    now: OffsetDateTime,
) -> Result<Vec<u8>, PkiError> {
    let facts = cert::facts(cert_der)?;
    if !facts.is_ca {
        return Err(PkiError::NotACa {
            subject: facts.subject,
        });
    }
    use x509_parser::prelude::FromDer;
    let (_, parsed) =
        x509_parser::certificate::X509Certificate::from_der(cert_der).map_err(|e| {
            PkiError::UnreadableCertificate {
                detail: e.to_string(),
            }
        })?;
    // The subject exactly as it was, attribute by attribute, so that chains built on it
    // (subject = issuer of the next) still match.
    let mut dn = rcgen::DistinguishedName::new();
    for attr in parsed.subject().iter_attributes() {
        let oid: Vec<u64> = attr
            .attr_type()
            .iter()
            .map(|i| i.collect())
            .unwrap_or_default();
        if let Ok(value) = attr.as_str() {
            dn.push(rcgen::DnType::from_oid(&oid), value);
        }
    }
    let path_len = facts.path_len.map(|n| u8::try_from(n).unwrap_or(u8::MAX));
    let mut params = crate::ca::ca_params(dn, std::time::Duration::ZERO, path_len, now);
    params.not_before = facts.not_before.min(now);
    params.not_after = facts.not_after.min(signer.not_after()?);
    let own = Serial::from_bytes(parsed.raw_serial());
    let serial = serial.unwrap_or(&own);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(serial.as_bytes()));
    if let Some(nc) = crate::constraints::NameConstraints::of(&parsed) {
        nc.stamp(&mut params)?;
    }
    params.use_authority_key_identifier_extension = true;
    let spki = SubjectPublicKeyInfo::from_der(parsed.public_key().raw).map_err(|e| {
        PkiError::UnreadableCertificate {
            detail: e.to_string(),
        }
    })?;
    let cert = params.signed_by(&spki, &signer.issuer()?)?;
    Ok(cert.der().to_vec())
}

/// The SubjectPublicKeyInfo of a certificate, DER.
pub fn spki_of(cert_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    use x509_parser::prelude::FromDer;
    let (_, c) = x509_parser::certificate::X509Certificate::from_der(cert_der).map_err(|e| {
        PkiError::UnreadableCertificate {
            detail: e.to_string(),
        }
    })?;
    Ok(c.public_key().raw.to_vec())
}

/// The key a CA signs with, as its CRL is kept per key: lowercase hex SHA-256 of its
/// SubjectPublicKeyInfo. Issuers that share a key (a certificate reissued, or cross-signed)
/// share one CRL, as Vault's do.
pub fn signing_key_id(ca_der: &[u8]) -> Result<String, PkiError> {
    use sha2::Digest;
    Ok(hex::encode(sha2::Sha256::digest(spki_of(ca_der)?)))
}

/// Which of `issuers` (each with its [`signing_key_id`]) signed `leaf`: the key of the first
/// that [`issued_by`] says issued it, or `None` for a certificate none of them signed.
pub fn signer_of<'a>(leaf: &CertFacts, issuers: &'a [(CertFacts, String)]) -> Option<&'a str> {
    issuers
        .iter()
        .find(|(f, _)| issued_by(leaf, f))
        .map(|(_, key)| key.as_str())
}

/// A CSR for a CA with an existing key (Vault's `intermediate/generate/existing` and
/// `intermediate/cross-sign`).
pub fn csr_with_key(
    common_name: &str,
    organization: &[String],
    ou: &[String],
    key: &PrivateKey,
) -> Result<String, PkiError> {
    if common_name.trim().is_empty() {
        return Err(PkiError::CaWithoutCommonName);
    }
    let mut params = CertificateParams::default();
    let dn = crate::ca::subject(common_name, organization, ou);
    params.distinguished_name = dn;
    Ok(params.serialize_request(key.pair())?.pem()?)
}

/// A self-signed root CA over an existing key (Vault's `issuers/generate/root/existing`, and
/// every root whose key was made first).
pub fn root_with_key(
    req: &crate::ca::RootRequest,
    key: PrivateKey,
    now: OffsetDateTime,
) -> Result<crate::ca::CaMaterial, PkiError> {
    if req.common_name.trim().is_empty() {
        return Err(PkiError::CaWithoutCommonName);
    }
    let mut params = crate::ca::ca_params(
        crate::ca::subject(&req.common_name, &req.organization, &req.ou),
        req.ttl,
        req.path_len,
        now,
    );
    req.name_constraints.stamp(&mut params)?;
    // Its own key identifier as authority key identifier, as Vault's roots carry: `bao pki
    // verify-sign` and `list-intermediates` match key IDs through it.
    params.use_authority_key_identifier_extension = true;
    let cert = params.self_signed(key.pair())?;
    Ok(crate::ca::CaMaterial {
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::ca::{self, RootRequest, SigningCa, Urls};

    fn req(cn: &str) -> RootRequest {
        RootRequest {
            common_name: cn.into(),
            ..RootRequest::default()
        }
    }

    #[test]
    fn bundles_chains_and_cross_signing() {
        let now = OffsetDateTime::now_utc();
        let urls = Urls::default();
        let a = root_with_key(
            &req("A"),
            crate::key::KeyType::EcP256.generate().unwrap(),
            now,
        )
        .unwrap();
        let b = ca::generate_root(&req("B"), now).unwrap();
        let signer = SigningCa {
            cert_der: &a.cert_der,
            key: &a.key,
            urls: &urls,
        };
        let a1 = ca::generate_intermediate(&signer, &req("A1"), now).unwrap();
        let f = |m: &ca::CaMaterial| cert::facts(&m.cert_der).unwrap();
        let (fa, fb, fa1) = (f(&a), f(&b), f(&a1));
        assert!(issued_by(&fa1, &fa) && !issued_by(&fa1, &fb) && !issued_by(&fa, &fa));
        let unrelated = |x: &str, y: &str| {
            Err(BundleRefusal::Unrelated {
                a: x.into(),
                b: y.into(),
            })
        };
        for (bundle, want) in [
            (vec![fa1.clone(), fa.clone()], Ok(())),
            (vec![fa.clone(), fa1.clone()], Ok(())),
            (vec![fa.clone()], Ok(())),
            (vec![fa.clone(), fb.clone()], unrelated("CN=A", "CN=B")),
            (
                vec![fa1.clone(), fa.clone(), fb.clone()],
                unrelated("CN=A1", "CN=B"),
            ),
            (vec![], Err(BundleRefusal::Empty)),
        ] {
            assert_eq!(check_bundle(&bundle), want, "{}", bundle.len());
        }
        let all = vec![fb.clone(), fa1.clone(), fa.clone()];
        assert_eq!(chain_of(1, &all), vec![1, 2], "A1 then A");
        assert_eq!(chain_of(0, &all), vec![0], "a root alone");
        // B cross-signed by A: same subject and key as B, issued by A.
        let cross = resign(&signer, &b.cert_der, Some(&Serial::random()), now).unwrap();
        let fc = cert::facts(&cross).unwrap();
        assert_eq!(fc.subject, fb.subject);
        assert_eq!(fc.subject_key_id, fb.subject_key_id);
        assert!(issued_by(&fc, &fa));
        assert_eq!(spki_of(&cross).unwrap(), spki_of(&b.cert_der).unwrap());
        assert!(matches!(
            resign(&signer, &[0u8; 4], None, now),
            Err(PkiError::UnreadableCertificate { .. })
        ));
    }

    /// A certificate goes to the key of the issuer that signed it; issuers sharing a key (B
    /// and B cross-signed by A) give the same key; a certificate none signed goes nowhere.
    #[test]
    fn signers_of_certificates() {
        let now = OffsetDateTime::now_utc();
        let urls = Urls::default();
        let a = ca::generate_root(&req("A"), now).unwrap();
        let b = ca::generate_root(&req("B"), now).unwrap();
        let under = |m: &ca::CaMaterial, cn: &str| {
            let signer = SigningCa {
                cert_der: &m.cert_der,
                key: &m.key,
                urls: &urls,
            };
            ca::generate_intermediate(&signer, &req(cn), now).unwrap()
        };
        let (by_a, by_b) = (under(&a, "x"), under(&b, "y"));
        let signer_a = SigningCa {
            cert_der: &a.cert_der,
            key: &a.key,
            urls: &urls,
        };
        let b_cross = resign(&signer_a, &b.cert_der, Some(&Serial::random()), now).unwrap();
        let key = |der: &[u8]| signing_key_id(der).unwrap();
        let (ka, kb) = (key(&a.cert_der), key(&b.cert_der));
        assert_eq!(ka.len(), 64);
        assert_ne!(ka, kb);
        assert_eq!(key(&b_cross), kb, "a cross-signed issuer keeps its key");
        let f = |der: &[u8]| cert::facts(der).unwrap();
        let both = vec![(f(&a.cert_der), ka.clone()), (f(&b_cross), kb.clone())];
        let only_a = vec![(f(&a.cert_der), ka.clone())];
        type Issuers = Vec<(CertFacts, String)>;
        let cases: [(&[u8], &Issuers, Option<&str>); 5] = [
            (&by_a.cert_der, &both, Some(&ka)),
            (&by_b.cert_der, &both, Some(&kb)),
            (&by_b.cert_der, &only_a, None),
            (&b_cross, &both, Some(&ka)),
            (&a.cert_der, &both, None),
        ];
        for (i, (leaf, issuers, want)) in cases.into_iter().enumerate() {
            assert_eq!(signer_of(&f(leaf), issuers), want, "case {i}");
        }
        assert!(signing_key_id(b"not a certificate").is_err());
    }

    fn pairs() -> Vec<(String, String)> {
        vec![
            ("1111".into(), "old".into()),
            ("2222".into(), "".into()),
            ("3333".into(), "2222".into()),
        ]
    }

    #[test]
    fn references() {
        let all = pairs();
        for (reference, default, want) in [
            ("default", Some("1111"), Some("1111")),
            ("default", None, None),
            ("default", Some("gone"), None),
            ("1111", None, Some("1111")),
            ("old", None, Some("1111")),
            // An ID wins over a name that looks like it.
            ("2222", None, Some("2222")),
            ("missing", Some("1111"), None),
            ("", None, None),
        ] {
            assert_eq!(resolve(reference, default, &all), want, "{reference}");
        }
    }

    #[test]
    fn names_and_usages() {
        for (name, ok) in [
            ("", true),
            ("root-2024", true),
            ("a.b_c", true),
            ("default", false),
            ("two words", false),
            ("é", false),
        ] {
            assert_eq!(check_name(name).is_ok(), ok, "{name}");
        }
        assert_eq!(
            check_name("default").unwrap_err(),
            "name \"default\" is reserved for the mount's default; choose another"
        );
        for (text, want) in [
            (
                "read-only,issuing-certificates",
                Ok("issuing-certificates,read-only".to_string()),
            ),
            ("crl-signing, crl-signing", Ok("crl-signing".to_string())),
            ("", Ok(String::new())),
            (
                "signing",
                Err("unknown issuer usage \"signing\" (use crl-signing, issuing-certificates, ocsp-signing, read-only)".to_string()),
            ),
        ] {
            assert_eq!(parse_usage(text), want, "{text}");
        }
        assert!(has_usage(
            "crl-signing,issuing-certificates",
            "issuing-certificates"
        ));
        assert!(!has_usage("read-only", "issuing-certificates"));
    }
}
