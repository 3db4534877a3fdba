//! What a CA file really trusts.
//!
//! Every certificate of a CA file is a trust anchor (as with `openssl verify -partial_chain`),
//! so a file that holds an intermediate together with the root that issued it trusts everything
//! the root issues — the pitfall of OpenBao's `root/sign-intermediate format=pem_bundle`, which
//! appends the root. [`wide_trust`] finds those pairs so that every command loading a CA file
//! can warn about them.

use std::fmt;

use serde::Serialize;
use x509_parser::prelude::*;

use crate::cert::{dn_string, facts_of, CertFacts};

/// A CA file holds `ca` together with `issuer`, the CA that issued it: the trust is as wide as
/// `issuer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WideTrust {
    /// Subject of the narrower CA.
    pub ca: String,
    /// Subject of its issuer, also in the file.
    pub issuer: String,
}

impl fmt::Display for WideTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let WideTrust { ca, issuer } = self;
        write!(
            f,
            "the CA file holds \"{ca}\" together with its issuer \"{issuer}\": every certificate \"{issuer}\" issues is trusted, not only those of \"{ca}\"; keep only the intermediate if that is what you mean"
        )
    }
}

struct Anchor<'a> {
    der: &'a [u8],
    cert: X509Certificate<'a>,
    facts: CertFacts,
}

fn parse(trusted: &[Vec<u8>]) -> Vec<Anchor<'_>> {
    let mut out: Vec<Anchor<'_>> = Vec::new();
    for der in trusted {
        if out.iter().any(|a| a.der == der.as_slice()) {
            continue;
        }
        if let Ok((_, cert)) = X509Certificate::from_der(der) {
            let facts = facts_of(&cert, der);
            out.push(Anchor { der, cert, facts });
        }
    }
    out
}

/// Whether `issuer` issued `cert`: names chain, key identifiers agree when both are present, and
/// the signature verifies (when the algorithm is one we can check).
fn issued_by(cert: &Anchor<'_>, issuer: &Anchor<'_>) -> bool {
    if cert.cert.issuer().as_raw() != issuer.cert.subject().as_raw()
        && !dn_string(cert.cert.issuer()).eq_ignore_ascii_case(&issuer.facts.subject)
    {
        return false;
    }
    if let (Some(akid), Some(skid)) = (&cert.facts.authority_key_id, &issuer.facts.subject_key_id) {
        if akid != skid {
            return false;
        }
    }
    !matches!(
        cert.cert.verify_signature(Some(issuer.cert.public_key())),
        Err(X509Error::SignatureVerificationError)
    )
}

/// Every pair (CA, its issuer) held together in a CA file. Self-signed certificates are not
/// paired with themselves; unreadable certificates are skipped (verification reports them).
pub fn wide_trust(trusted: &[Vec<u8>]) -> Vec<WideTrust> {
    let anchors = parse(trusted);
    let mut out = Vec::new();
    for cert in &anchors {
        if !cert.facts.is_ca || cert.facts.self_issued {
            continue;
        }
        for issuer in &anchors {
            if issuer.der != cert.der && issuer.facts.is_ca && issued_by(cert, issuer) {
                out.push(WideTrust {
                    ca: cert.facts.subject.clone(),
                    issuer: issuer.facts.subject.clone(),
                });
            }
        }
    }
    out
}

/// The warnings to print when loading a CA file: one sentence per [`WideTrust`] pair.
pub fn wide_trust_warnings(trusted: &[Vec<u8>]) -> Vec<String> {
    wide_trust(trusted)
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The subjects of the certificates of a CA file, in order; an unreadable one is shown as
/// `(unreadable certificate N)`.
pub fn summarize_anchors(trusted: &[Vec<u8>]) -> Vec<String> {
    trusted
        .iter()
        .enumerate()
        .map(|(i, der)| match X509Certificate::from_der(der) {
            Ok((_, cert)) => dn_string(cert.subject()),
            Err(_) => format!("(unreadable certificate {})", i + 1),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::test_pki::Pki;

    #[test]
    fn trust_wide_files_are_reported() {
        let pki = Pki::new();
        let root = pki.root.der.clone();
        let alice = pki.alice_int.der.clone();
        let bob = pki.bob_int.der.clone();
        let alice_leaf = pki.alice.der.clone();
        let warning = "the CA file holds \"CN=Alice Intermediate Authority\" together with its issuer \"CN=Local Root CA\": every certificate \"CN=Local Root CA\" issues is trusted, not only those of \"CN=Alice Intermediate Authority\"; keep only the intermediate if that is what you mean";
        type Case<'a> = (&'a str, Vec<Vec<u8>>, Vec<&'a str>);
        let cases: Vec<Case<'_>> = vec![
            ("intermediate alone", vec![alice.clone()], vec![]),
            ("root alone", vec![root.clone()], vec![]),
            (
                "pem_bundle: intermediate then root",
                vec![alice.clone(), root.clone()],
                vec![warning],
            ),
            (
                "root first",
                vec![root.clone(), alice.clone()],
                vec![warning],
            ),
            (
                "two sibling intermediates",
                vec![alice.clone(), bob.clone()],
                vec![],
            ),
            (
                "duplicated intermediate",
                vec![alice.clone(), alice.clone()],
                vec![],
            ),
            (
                "a leaf with its issuer is not a CA pair",
                vec![alice_leaf, alice.clone()],
                vec![],
            ),
            (
                "garbage is skipped",
                vec![b"junk".to_vec(), alice.clone(), root.clone()],
                vec![warning],
            ),
        ];
        for (name, file, want) in cases {
            assert_eq!(wide_trust_warnings(&file), want, "{name}");
        }
        let both = wide_trust(&[alice, bob, root]);
        assert_eq!(both.len(), 2);
        assert_eq!(both[1].ca, "CN=Bob Intermediate Authority");
        assert_eq!(both[1].issuer, "CN=Local Root CA");
    }

    #[test]
    fn trust_same_name_other_key_is_not_an_issuer() {
        let pki = Pki::new();
        let impostor = Pki::new().root.der;
        // the other root has the same name but not the key that signed this intermediate
        assert!(wide_trust(&[pki.alice_int.der.clone(), impostor]).is_empty());
    }

    #[test]
    fn trust_anchor_subjects() {
        let pki = Pki::new();
        assert_eq!(
            summarize_anchors(&[
                pki.alice_int.der.clone(),
                b"x".to_vec(),
                pki.root.der.clone()
            ]),
            vec![
                "CN=Alice Intermediate Authority".to_string(),
                "(unreadable certificate 2)".to_string(),
                "CN=Local Root CA".to_string(),
            ]
        );
        assert!(summarize_anchors(&[]).is_empty());
    }
}
