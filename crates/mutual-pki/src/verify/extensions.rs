//! Step 2, extensions from leaf to anchor (OpenSSL's `check_extensions`): critical
//! extensions, CA flags, the `-x509_strict` rules, the purpose, path lengths.

use x509_parser::prelude::*;

use super::parsed::{has_key_usage, key_usage_allows, self_signed, Cert};
use super::purpose::check_purpose;
use crate::diagnosis::{CaRequirement, Diagnosis, Purpose, StrictRule};

/// Each certificate from the leaf up, in OpenSSL's order: its extensions readable, an issuer
/// a CA, the strict rules, the purpose, then the path length below it.
pub(super) fn check_extensions(
    path: &[&Cert<'_>],
    purpose: Option<Purpose>,
) -> Result<(), Diagnosis> {
    let num = path.len();
    // CA certificates below the current one, self-issued ones not counted (RFC 5280 6.1.4).
    let mut below: u32 = 0;
    for (i, c) in path.iter().enumerate() {
        check_readable(c)?;
        if i == 0 {
            check_leaf_flags(c, num)?;
        } else {
            check_is_ca(c, path[i - 1])?;
        }
        if num > 1 {
            if let Some(rule) = strict_rule(c, i + 1 < num) {
                return Err(malformed(c, rule));
            }
        }
        if let Some(purpose) = purpose {
            check_purpose(c, i == 0, purpose)?;
        }
        if i > 1 {
            check_path_len(c, below)?;
        }
        if i > 0 && !c.facts.self_issued {
            below += 1;
        }
    }
    Ok(())
}

fn malformed(c: &Cert<'_>, rule: StrictRule) -> Diagnosis {
    Diagnosis::Malformed {
        subject: c.facts.subject.clone(),
        rule,
    }
}

/// No duplicate extension, no critical one that is not understood.
fn check_readable(c: &Cert<'_>) -> Result<(), Diagnosis> {
    if c.x.tbs_certificate.extensions_map().is_err() {
        return Err(malformed(c, StrictRule::DuplicateExtension));
    }
    if let Some(ext) = c.x.extensions().iter().find(|e| {
        e.critical && (e.parsed_extension().unsupported() || e.parsed_extension().error().is_some())
    }) {
        return Err(Diagnosis::UnsupportedCriticalExtension {
            subject: c.facts.subject.clone(),
            oid: ext.oid.to_id_string(),
        });
    }
    Ok(())
}

/// A leaf below an issuer may not claim keyCertSign without being a CA.
fn check_leaf_flags(c: &Cert<'_>, num: usize) -> Result<(), Diagnosis> {
    if num > 1 && !c.facts.is_ca && has_key_usage(c) && key_usage_allows(c, "keyCertSign") {
        return Err(malformed(c, StrictRule::KeyCertSignWithoutCa));
    }
    Ok(())
}

/// An issuer is a CA: basicConstraints CA:TRUE, and keyCertSign when keyUsage is present.
fn check_is_ca(c: &Cert<'_>, issued: &Cert<'_>) -> Result<(), Diagnosis> {
    let missing = if !c.facts.is_ca {
        CaRequirement::BasicConstraints
    } else if !key_usage_allows(c, "keyCertSign") {
        CaRequirement::KeyCertSign
    } else {
        return Ok(());
    };
    Err(Diagnosis::NotACa {
        subject: c.facts.subject.clone(),
        issued: issued.facts.subject.clone(),
        missing,
    })
}

/// No more CAs below than the pathLenConstraint allows.
fn check_path_len(c: &Cert<'_>, below: u32) -> Result<(), Diagnosis> {
    match c.facts.path_len {
        Some(path_len) if below > path_len => Err(Diagnosis::PathLenExceeded {
            subject: c.facts.subject.clone(),
            path_len,
            below,
        }),
        _ => Ok(()),
    }
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;

    /// Issuers that are no CAs, path lengths, the x509_strict rules.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        vec![
            case(
                "a leaf as issuer",
                vec![a(&s.mallory), a(&s.alice)],
                vec![a(&s.alice_int)],
            )
            .fails("not_a_ca", "CN=alice.example.com"),
            case(
                "pathlen 0 with a sub-CA below",
                vec![a(&s.deep), a(&s.sub_int), a(&s.alice_int)],
                vec![a(&s.root)],
            )
            .fails("path_len_exceeded", "CN=Alice Intermediate Authority"),
            case(
                "CA without keyUsage (x509_strict)",
                vec![a(&s.bare_leaf)],
                vec![a(&s.bare_root)],
            )
            .fails("malformed", "CN=Bare Root"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }
}
