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
//! 7. **name constraints** (`check_name_constraints`): the names of every certificate below a
//!    CA with nameConstraints (SANs, subject emailAddress, and a leaf's host-like CN when it has
//!    no DNS SAN) must be inside them → [`Diagnosis::OutsideNameConstraints`], naming the name,
//!    the CA and the rule.
//! 8. **second opinion**: rustls-webpki verifies the same path (same anchor, same intermediates,
//!    same CRLs, the purpose's EKU) and, when asked, the name; a refusal there is mapped by
//!    [`from_webpki`]. It is skipped when the leaf itself is the anchor, and when no purpose is
//!    asked and the leaf is a CA (webpki only verifies end-entity certificates).
//!
//! Each step lives in its own file, named after what it checks: `strength` (0 and 3), `path`
//! (1), `extensions` and `purpose` (2), `names` (4), `crl` (5), `signatures` (6), `constraints` (7), `gate` (8);
//! `parsed` holds the inputs parsed once, `from_webpki` the mapping of webpki's refusals.

use ::time::OffsetDateTime;

use crate::cert::CertFacts;
use crate::diagnosis::{Diagnosis, Purpose};

mod constraints;
mod crl;
mod extensions;
mod from_webpki;
mod gate;
mod names;
mod parsed;
mod path;
mod purpose;
mod signatures;
mod strength;
#[cfg(test)]
mod table;
#[cfg(test)]
pub(crate) mod test_pki;

pub use from_webpki::from_webpki;
pub use names::names_host;

use constraints::{check_name_constraints, path_constraints};
use crl::check_revocation;
use extensions::check_extensions;
use gate::webpki_gate;
use names::check_name;
use parsed::{parse_certs, parse_crls};
use path::build_path;
use signatures::check_signatures_and_times;
use strength::{check_auth_level, check_key};

/// The longest chain built, anchor included.
pub const MAX_DEPTH: usize = 10;

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
    let constraints = path_constraints(&path);
    check_name_constraints(&path, &constraints)?;
    // webpki refuses every URI and email name under a constraint of that form; when such a
    // constraint is on the path, the check above (which evaluates them) has the last word on
    // name constraints.
    let lenient = constraints
        .iter()
        .flatten()
        .any(|c| c.has_forms_webpki_lacks());
    webpki_gate(input, &path, lenient)?;

    let anchor = path[path.len() - 1];
    Ok(Verified {
        path: path.iter().map(|c| c.der.to_vec()).collect(),
        leaf: leaf.facts.clone(),
        anchor: anchor.facts.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::table::*;
    use super::test_pki::*;
    use super::*;
    use crate::diagnosis::Purpose;

    /// An empty chain, and the order: the first failure OpenSSL reports.
    fn cases(s: &Story) -> Vec<Case> {
        let server = Some(Purpose::Server);
        vec![
            case("nothing sent", vec![], vec![a(&s.alice_int)]).fails("no_certificate", ""),
            case(
                "unknown issuer before expiry",
                vec![a(&s.expired)],
                vec![a(&s.bob_int)],
            )
            .fails("unknown_issuer", "CN=Alice Intermediate Authority"),
            case("purpose before expiry", vec![a(&s.www)], vec![a(&s.root)])
                .at(later(60))
                .fails("wrong_purpose", "CN=www.example.com"),
            case("name before expiry", vec![a(&s.www)], vec![a(&s.root)])
                .purpose(server)
                .host("evil.example.com")
                .at(later(60))
                .fails("name_mismatch", "CN=www.example.com"),
            case(
                "revocation before expiry",
                vec![a(&s.alice)],
                vec![a(&s.alice_int)],
            )
            .crls(vec![s.alice_revoked.clone()])
            .at(later(5))
            .fails("revoked", "CN=alice.example.com"),
            case(
                "anchor expiry before leaf expiry",
                vec![a(&s.alice)],
                vec![a(&s.alice_int)],
            )
            .at(later(400))
            .fails("expired", "CN=Alice Intermediate Authority"),
            case(
                "bad signature before expiry",
                vec![s.forged_alice.clone()],
                vec![a(&s.alice_int)],
            )
            .at(later(60))
            .fails("bad_signature", "CN=alice.example.com"),
        ]
    }

    /// Every table of the steps together: verification is tested from every side.
    fn all_cases(s: &Story) -> Vec<Case> {
        let mut all = cases(s);
        all.extend(parsed::tests::cases(s));
        all.extend(path::tests::cases(s));
        all.extend(extensions::tests::cases(s));
        all.extend(purpose::tests::cases(s));
        all.extend(strength::tests::cases(s));
        all.extend(names::tests::cases(s));
        all.extend(crl::tests::cases(s));
        all.extend(signatures::tests::cases(s));
        all
    }

    #[test]
    fn verify_table() {
        let story = Story::new();
        let cases = all_cases(&story);
        assert!(cases.len() >= 15);
        run(&self::cases(&story));
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
