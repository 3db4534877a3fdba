//! Steps 0 and 3, the security level (OpenSSL's auth level 2): keys and signature algorithms
//! of at least 112-bit security.

use super::parsed::Cert;
use crate::diagnosis::Diagnosis;
use crate::key::KeyKind;

/// The minimum key strength (112-bit security, OpenSSL's auth level 2), as messages print it.
const MINIMUM_KEY: &str = "RSA 2048, EC P-256 or Ed25519";

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

pub(super) fn check_key(c: &Cert<'_>) -> Result<(), Diagnosis> {
    key_problem(c).map_or(Ok(()), Err)
}

/// Signatures below 112-bit security: MD2, MD4, MD5, SHA-1 (RSA, ECDSA, DSA, RSA-PSS).
pub(super) fn weak_signature(c: &Cert<'_>) -> bool {
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

pub(super) fn check_auth_level(path: &[&Cert<'_>]) -> Result<(), Diagnosis> {
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

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;
    use crate::diagnosis::Purpose;

    /// Keys and signature algorithms below 112-bit security.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        let server = Some(Purpose::Server);
        vec![
            case("RSA 1024", vec![s.weak.clone()], vec![a(&s.alice_int)])
                .fails("weak_key", "CN=weak.example.com"),
            case(
                "weak key is found before the unknown issuer",
                vec![s.weak.clone()],
                vec![a(&s.bob_int)],
            )
            .fails("weak_key", "CN=weak.example.com"),
            case("SHA-1 signature", vec![der(SHA1_LEAF)], vec![der(SHA1_CA)])
                .purpose(server)
                .fails("weak_algorithm", "CN=legacy.example.com"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }
}
