//! Key types and key pairs: RSA 2048/3072/4096, EC P-256/P-384, Ed25519, all generated and
//! parsed through rcgen on aws-lc-rs.

use std::fmt;
use std::sync::Arc;

use rcgen::{KeyPair, RsaKeySize, SignatureAlgorithm};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::PkiError;

/// A key type mutual can generate, with its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// RSA with 2048, 3072 or 4096 bits.
    Rsa(u32),
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// Ed25519.
    Ed25519,
}

impl KeyType {
    /// Builds a key type from Vault's `key_type` and `key_bits` (0 means the type's default:
    /// RSA 2048, EC P-256).
    pub fn from_parts(kind: &str, bits: u32) -> Result<KeyType, PkiError> {
        match (kind.to_ascii_lowercase().as_str(), bits) {
            ("rsa", 0) => Ok(KeyType::Rsa(2048)),
            ("rsa", b @ (2048 | 3072 | 4096)) => Ok(KeyType::Rsa(b)),
            ("rsa", b) => Err(PkiError::UnsupportedKey(format!(
                "RSA with {b} bits (use 2048, 3072 or 4096)"
            ))),
            ("ec" | "ecdsa", 0 | 256) => Ok(KeyType::EcP256),
            ("ec" | "ecdsa", 384) => Ok(KeyType::EcP384),
            ("ec" | "ecdsa", b) => Err(PkiError::UnsupportedKey(format!(
                "EC with {b} bits (use 256 or 384)"
            ))),
            ("ed25519", 0 | 256) => Ok(KeyType::Ed25519),
            ("ed25519", b) => Err(PkiError::UnsupportedKey(format!(
                "ed25519 has a fixed size, not {b} bits"
            ))),
            (other, _) => Err(PkiError::UnsupportedKey(format!(
                "key type \"{other}\" (use rsa, ec or ed25519)"
            ))),
        }
    }

    /// Vault's name of the type: `rsa`, `ec`, `ed25519`.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyType::Rsa(_) => "rsa",
            KeyType::EcP256 | KeyType::EcP384 => "ec",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// Size in bits as Vault reports `key_bits`.
    pub fn bits(&self) -> u32 {
        match self {
            KeyType::Rsa(b) => *b,
            KeyType::EcP256 | KeyType::Ed25519 => 256,
            KeyType::EcP384 => 384,
        }
    }

    /// The signature algorithm a key of this type signs with.
    pub fn signature_algorithm(&self) -> &'static SignatureAlgorithm {
        match self {
            KeyType::Rsa(_) => &rcgen::PKCS_RSA_SHA256,
            KeyType::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    /// Generates a new key pair of this type.
    pub fn generate(&self) -> Result<PrivateKey, PkiError> {
        let pair = match self {
            KeyType::Rsa(bits) => {
                let size = match bits {
                    2048 => RsaKeySize::_2048,
                    3072 => RsaKeySize::_3072,
                    4096 => RsaKeySize::_4096,
                    b => {
                        return Err(PkiError::UnsupportedKey(format!("RSA with {b} bits")));
                    }
                };
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)?
            }
            other => KeyPair::generate_for(other.signature_algorithm())?,
        };
        Ok(PrivateKey {
            pair: Arc::new(pair),
            key_type: *self,
        })
    }

    /// The description of a public key of this type.
    pub fn key_kind(&self) -> KeyKind {
        match self {
            KeyType::Rsa(bits) => KeyKind::Rsa { bits: *bits },
            KeyType::EcP256 => KeyKind::Ec { curve: Curve::P256 },
            KeyType::EcP384 => KeyKind::Ec { curve: Curve::P384 },
            KeyType::Ed25519 => KeyKind::Ed25519,
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.key_kind(), f)
    }
}

/// Named elliptic curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384 (secp384r1).
    P384,
    /// NIST P-521 (secp521r1); accepted in CSRs, never generated.
    P521,
}

/// What a public key is, read from a SubjectPublicKeyInfo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KeyKind {
    /// RSA with its modulus size.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on a named curve.
    Ec {
        /// The curve.
        curve: Curve,
    },
    /// Ed25519.
    Ed25519,
    /// Anything else (DSA, unknown curves, …), with the algorithm's OID.
    Other {
        /// Dotted OID of the key algorithm or curve.
        oid: String,
    },
}

impl KeyKind {
    /// Vault's name of the type: `rsa`, `ec`, `ed25519`, or `other`.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyKind::Rsa { .. } => "rsa",
            KeyKind::Ec { .. } => "ec",
            KeyKind::Ed25519 => "ed25519",
            KeyKind::Other { .. } => "other",
        }
    }

    /// Size in bits as Vault reports `key_bits` (0 when unknown).
    pub fn bits(&self) -> u32 {
        match self {
            KeyKind::Rsa { bits } => *bits,
            KeyKind::Ec { curve: Curve::P256 } | KeyKind::Ed25519 => 256,
            KeyKind::Ec { curve: Curve::P384 } => 384,
            KeyKind::Ec { curve: Curve::P521 } => 521,
            KeyKind::Other { .. } => 0,
        }
    }

    /// Reads the key kind from a DER SubjectPublicKeyInfo.
    pub fn from_spki(spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>) -> KeyKind {
        use x509_parser::public_key::PublicKey;
        let alg = spki.algorithm.algorithm.to_id_string();
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa {
                bits: rsa.key_size() as u32,
            },
            Ok(PublicKey::EC(_)) => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string())
                    .unwrap_or_default();
                match curve.as_str() {
                    "1.2.840.10045.3.1.7" => KeyKind::Ec { curve: Curve::P256 },
                    "1.3.132.0.34" => KeyKind::Ec { curve: Curve::P384 },
                    "1.3.132.0.35" => KeyKind::Ec { curve: Curve::P521 },
                    _ => KeyKind::Other { oid: curve },
                }
            }
            _ if alg == "1.3.101.112" => KeyKind::Ed25519,
            _ => KeyKind::Other { oid: alg },
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyKind::Ec { curve } => match curve {
                Curve::P256 => f.write_str("EC P-256"),
                Curve::P384 => f.write_str("EC P-384"),
                Curve::P521 => f.write_str("EC P-521"),
            },
            KeyKind::Ed25519 => f.write_str("Ed25519"),
            KeyKind::Other { oid } => write!(f, "unsupported key ({oid})"),
        }
    }
}

/// A private key with its type. The PEM it writes is PKCS#8.
pub struct PrivateKey {
    // Shared with the CA prepared for signing ([`SharedPair`]), which outlives a borrow.
    pair: Arc<KeyPair>,
    key_type: KeyType,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.key_type)
    }
}

impl PrivateKey {
    /// Reads a private key from PEM: PKCS#8 (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`).
    pub fn from_pem(pem_text: &str) -> Result<PrivateKey, PkiError> {
        use rustls_pki_types::{pem::PemObject, PrivateKeyDer};
        let der = PrivateKeyDer::from_pem_slice(pem_text.as_bytes()).map_err(|e| {
            PkiError::NoPrivateKey {
                detail: e.to_string(),
            }
        })?;
        // Held as PKCS#8 whatever it came as, so that `to_pem`/`to_der` are PKCS#8 as they say
        // (a key pair read from PKCS#1 or SEC1 would otherwise write those bytes back under a
        // PKCS#8 label).
        let unreadable = |e: yasna::ASN1Error| PkiError::UnreadablePrivateKey {
            detail: format!("re-encoding as PKCS#8: {e}"),
        };
        let pkcs8 = match &der {
            PrivateKeyDer::Pkcs1(k) => wrap_pkcs8(RSA_ENCRYPTION, None, k.secret_pkcs1_der()),
            PrivateKeyDer::Sec1(k) => {
                let curve = sec1_curve(k.secret_sec1_der()).map_err(unreadable)?;
                wrap_pkcs8(EC_PUBLIC_KEY, curve.as_deref(), k.secret_sec1_der())
            }
            other => {
                let pair =
                    KeyPair::try_from(other).map_err(|e| PkiError::UnreadablePrivateKey {
                        detail: e.to_string(),
                    })?;
                let key_type = key_type_of(&pair)?;
                return Ok(PrivateKey {
                    pair: Arc::new(pair),
                    key_type,
                });
            }
        };
        PrivateKey::from_pkcs8_der(&pkcs8)
    }

    /// Reads a PKCS#8 DER private key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey, PkiError> {
        use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der.to_vec()));
        let pair = KeyPair::try_from(&der).map_err(|e| PkiError::UnreadablePrivateKey {
            detail: e.to_string(),
        })?;
        let key_type = key_type_of(&pair)?;
        Ok(PrivateKey {
            pair: Arc::new(pair),
            key_type,
        })
    }

    /// The key's type and size.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// PKCS#8 PEM of the private key.
    pub fn to_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(self.pair.serialize_pem())
    }

    /// PKCS#8 DER of the private key.
    pub fn to_der(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.pair.serialize_der())
    }

    /// The key as Vault writes it by default (`private_key_format` `der` or `pem`): PKCS#1
    /// (`RSA PRIVATE KEY`) for RSA, SEC1 with its curve (`EC PRIVATE KEY`) for EC, PKCS#8 for
    /// Ed25519, which has no other form. Returns the PEM label and the DER.
    pub fn to_traditional_der(&self) -> Result<(&'static str, Zeroizing<Vec<u8>>), PkiError> {
        let pkcs8 = self.to_der();
        let unreadable = |e: yasna::ASN1Error| PkiError::UnreadablePrivateKey {
            detail: format!("re-encoding PKCS#8: {e}"),
        };
        match self.key_type {
            KeyType::Ed25519 => Ok(("PRIVATE KEY", pkcs8)),
            KeyType::Rsa(_) => {
                let (_, inner) = pkcs8_parts(&pkcs8).map_err(unreadable)?;
                Ok(("RSA PRIVATE KEY", inner))
            }
            KeyType::EcP256 | KeyType::EcP384 => {
                let (params, inner) = pkcs8_parts(&pkcs8).map_err(unreadable)?;
                let sec1 = sec1_with_curve(&inner, params.as_deref()).map_err(unreadable)?;
                Ok(("EC PRIVATE KEY", sec1))
            }
        }
    }

    /// [`PrivateKey::to_traditional_der`] as PEM.
    pub fn to_traditional_pem(&self) -> Result<Zeroizing<String>, PkiError> {
        let (label, der) = self.to_traditional_der()?;
        Ok(Zeroizing::new(pem::encode(&pem::Pem::new(
            label,
            der.to_vec(),
        ))))
    }

    /// DER SubjectPublicKeyInfo of the public half.
    pub fn public_key_der(&self) -> Vec<u8> {
        use rcgen::PublicKeyData;
        self.pair.subject_public_key_info()
    }

    /// The rcgen key pair, for signing.
    pub fn pair(&self) -> &KeyPair {
        &self.pair
    }

    /// The key pair, owned by what signs with it for as long as it likes.
    pub(crate) fn shared(&self) -> SharedPair {
        SharedPair(Arc::clone(&self.pair))
    }
}

/// A [`PrivateKey`]'s pair, shared: rcgen's signer for a CA prepared once
/// ([`crate::ca::PreparedCa`]) instead of borrowed for each signature.
#[derive(Clone)]
pub(crate) struct SharedPair(Arc<KeyPair>);

impl rcgen::PublicKeyData for SharedPair {
    fn der_bytes(&self) -> &[u8] {
        self.0.der_bytes()
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        rcgen::PublicKeyData::algorithm(&*self.0)
    }
}

impl rcgen::SigningKey for SharedPair {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.0.sign(msg)
    }
}

/// rsaEncryption (RFC 8017).
const RSA_ENCRYPTION: &[u64] = &[1, 2, 840, 113549, 1, 1, 1];
/// id-ecPublicKey (RFC 5480).
const EC_PUBLIC_KEY: &[u64] = &[1, 2, 840, 10045, 2, 1];

/// A PKCS#8 `PrivateKeyInfo` around a PKCS#1 or SEC1 key: the algorithm's OID, its parameters
/// (raw DER; NULL when None) and the inner key.
fn wrap_pkcs8(algorithm: &[u64], params: Option<&[u8]>, inner: &[u8]) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(0);
            w.next().write_sequence(|w| {
                w.next()
                    .write_oid(&yasna::models::ObjectIdentifier::from_slice(algorithm));
                match params {
                    Some(p) => w.next().write_der(p),
                    None => w.next().write_null(),
                }
            });
            w.next().write_bytes(inner);
        })
    }))
}

/// The curve (raw DER of its OID) a SEC1 `ECPrivateKey` names, if it names one.
fn sec1_curve(sec1: &[u8]) -> Result<Option<Vec<u8>>, yasna::ASN1Error> {
    yasna::parse_der(sec1, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            r.next().read_bytes()?;
            let params =
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
            r.read_optional(|r| r.read_der())?;
            Ok(params)
        })
    })
}

/// A PKCS#8 key taken apart: the algorithm parameters (raw DER: the curve's OID for EC) and
/// the inner private key.
type Pkcs8Parts = (Option<Vec<u8>>, Zeroizing<Vec<u8>>);

/// Takes a PKCS#8 `PrivateKeyInfo` apart.
fn pkcs8_parts(der: &[u8]) -> Result<Pkcs8Parts, yasna::ASN1Error> {
    yasna::parse_der(der, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            let params = r.next().read_sequence(|r| {
                r.next().read_oid()?;
                r.read_optional(|r| r.read_der())
            })?;
            let key = Zeroizing::new(r.next().read_bytes()?);
            // Attributes [0] and the public key [1] (PKCS#8 v2) are not needed here.
            r.read_optional(|r| r.read_der())?;
            r.read_optional(|r| r.read_der())?;
            Ok((params, key))
        })
    })
}

/// A SEC1 `ECPrivateKey` that names its curve: PKCS#8 keeps the curve in the algorithm
/// identifier and may leave it out of the inner key, but a lone `EC PRIVATE KEY` needs it.
fn sec1_with_curve(
    inner: &[u8],
    curve: Option<&[u8]>,
) -> Result<Zeroizing<Vec<u8>>, yasna::ASN1Error> {
    let (key, params, public) = yasna::parse_der(inner, |r| {
        r.read_sequence(|r| {
            r.next().read_u8()?;
            let key = Zeroizing::new(r.next().read_bytes()?);
            let params =
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(0), |r| r.read_der()))?;
            let public =
                r.read_optional(|r| r.read_tagged(yasna::Tag::context(1), |r| r.read_der()))?;
            Ok((key, params, public))
        })
    })?;
    let params = params.or_else(|| curve.map(<[u8]>::to_vec));
    Ok(Zeroizing::new(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_u8(1);
            w.next().write_bytes(&key);
            if let Some(p) = &params {
                w.next()
                    .write_tagged(yasna::Tag::context(0), |w| w.write_der(p));
            }
            if let Some(p) = &public {
                w.next()
                    .write_tagged(yasna::Tag::context(1), |w| w.write_der(p));
            }
        })
    })))
}

fn key_type_of(pair: &KeyPair) -> Result<KeyType, PkiError> {
    let spki_der = {
        use rcgen::PublicKeyData;
        pair.subject_public_key_info()
    };
    let (_, spki) = <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<
        x509_parser::error::X509Error,
    >>::from_der(&spki_der)
    .map_err(|_| PkiError::UnreadablePublicKey)?;
    match KeyKind::from_spki(&spki) {
        KeyKind::Rsa { bits } => Ok(KeyType::Rsa(bits)),
        KeyKind::Ec { curve: Curve::P256 } => Ok(KeyType::EcP256),
        KeyKind::Ec { curve: Curve::P384 } => Ok(KeyType::EcP384),
        KeyKind::Ed25519 => Ok(KeyType::Ed25519),
        other => Err(PkiError::UnsupportedKey(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_type_generates_and_round_trips() {
        for kt in [
            KeyType::Rsa(2048),
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Ed25519,
        ] {
            let key = kt.generate().unwrap();
            let pem = key.to_pem();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{kt}");
            let back = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(back.key_type(), kt);
            assert_eq!(back.public_key_der(), key.public_key_der());
        }
    }

    #[test]
    fn traditional_encodings_are_the_ones_vault_writes_and_read_back() {
        for (kt, label) in [
            (KeyType::Rsa(2048), "RSA PRIVATE KEY"),
            (KeyType::EcP256, "EC PRIVATE KEY"),
            (KeyType::EcP384, "EC PRIVATE KEY"),
            (KeyType::Ed25519, "PRIVATE KEY"),
        ] {
            let key = kt.generate().unwrap();
            let pem = key.to_traditional_pem().unwrap();
            assert!(
                pem.starts_with(&format!("-----BEGIN {label}-----")),
                "{kt}: {}",
                &pem[..40]
            );
            let back = PrivateKey::from_pem(&pem).unwrap();
            assert_eq!(back.key_type(), kt);
            assert_eq!(back.public_key_der(), key.public_key_der());
            // Read back from PKCS#1/SEC1, it writes PKCS#8 that reads again.
            let again = PrivateKey::from_pem(&back.to_pem()).unwrap();
            assert!(
                back.to_pem().starts_with("-----BEGIN PRIVATE KEY-----"),
                "{kt}"
            );
            assert_eq!(again.public_key_der(), key.public_key_der());
        }
    }

    #[test]
    fn vault_key_type_names() {
        let cases: &[(&str, u32, Result<KeyType, ()>)] = &[
            ("rsa", 0, Ok(KeyType::Rsa(2048))),
            ("rsa", 4096, Ok(KeyType::Rsa(4096))),
            ("RSA", 3072, Ok(KeyType::Rsa(3072))),
            ("rsa", 1024, Err(())),
            ("ec", 0, Ok(KeyType::EcP256)),
            ("ec", 384, Ok(KeyType::EcP384)),
            ("ec", 521, Err(())),
            ("ed25519", 0, Ok(KeyType::Ed25519)),
            ("dsa", 0, Err(())),
        ];
        for (kind, bits, want) in cases {
            assert_eq!(
                KeyType::from_parts(kind, *bits).map_err(|_| ()),
                *want,
                "{kind}/{bits}"
            );
        }
    }
}
