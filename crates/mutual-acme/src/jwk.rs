//! JSON Web Keys (RFC 7517) as ACME accounts use them, their thumbprints (RFC 7638) and the
//! public keys they denote.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::{
    b64::{b64url, b64url_decode},
    problem::{Problem, ProblemType},
};

/// A public JWK: EC (P-256, P-384), RSA, or OKP (Ed25519). Private members are never read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `EC`, `RSA` or `OKP`.
    pub kty: String,
    /// The curve of EC and OKP keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate, or the OKP public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA modulus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// The public key a JWK denotes, in the forms aws-lc-rs verifies with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256, uncompressed point (0x04 ‖ x ‖ y).
    P256(Vec<u8>),
    /// P-384, uncompressed point.
    P384(Vec<u8>),
    /// RSA modulus and exponent, big-endian without leading zeros.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Exponent.
        e: Vec<u8>,
    },
    /// Ed25519, 32 bytes.
    Ed25519(Vec<u8>),
}

fn member<'a>(v: &'a Option<String>, name: &str, kty: &str) -> Result<&'a str, Problem> {
    v.as_deref().ok_or_else(|| {
        Problem::new(
            ProblemType::BadPublicKey,
            format!("the {kty} JWK has no \"{name}\" member"),
        )
    })
}

fn strip_zeros(mut b: Vec<u8>) -> Vec<u8> {
    let lead = b.iter().take_while(|&&x| x == 0).count();
    b.drain(..lead);
    b
}

/// Smallest RSA modulus accepted for an account key, in bits.
pub const MIN_RSA_BITS: usize = 2048;

impl Jwk {
    /// The public key, checked: known type and curve, coordinates of the curve's size, an RSA
    /// modulus of at least 2048 bits.
    pub fn public_key(&self) -> Result<PublicKey, Problem> {
        let bad = |d: String| Problem::new(ProblemType::BadPublicKey, d);
        match self.kty.as_str() {
            "EC" => {
                let crv = member(&self.crv, "crv", "EC")?;
                let size = match crv {
                    "P-256" => 32,
                    "P-384" => 48,
                    other => {
                        return Err(bad(format!(
                            "EC curve \"{other}\" is not supported (P-256, P-384)"
                        )))
                    }
                };
                let x = b64url_decode(member(&self.x, "x", "EC")?, "the JWK's x")?;
                let y = b64url_decode(member(&self.y, "y", "EC")?, "the JWK's y")?;
                if x.len() != size || y.len() != size {
                    return Err(bad(format!(
                        "the {crv} JWK's coordinates are {} and {} bytes; {size} expected",
                        x.len(),
                        y.len()
                    )));
                }
                let mut point = vec![4u8];
                point.extend(x);
                point.extend(y);
                Ok(if size == 32 {
                    PublicKey::P256(point)
                } else {
                    PublicKey::P384(point)
                })
            }
            "RSA" => {
                let n = strip_zeros(b64url_decode(member(&self.n, "n", "RSA")?, "the JWK's n")?);
                let e = strip_zeros(b64url_decode(member(&self.e, "e", "RSA")?, "the JWK's e")?);
                if n.len() * 8 < MIN_RSA_BITS {
                    return Err(bad(format!(
                        "the RSA key has {} bits; at least {MIN_RSA_BITS} are required",
                        n.len() * 8
                    )));
                }
                if e.is_empty() || e.len() > 4 {
                    return Err(bad("the RSA key's public exponent is out of range".into()));
                }
                Ok(PublicKey::Rsa { n, e })
            }
            "OKP" => {
                let crv = member(&self.crv, "crv", "OKP")?;
                if crv != "Ed25519" {
                    return Err(bad(format!(
                        "OKP curve \"{crv}\" is not supported (Ed25519)"
                    )));
                }
                let x = b64url_decode(member(&self.x, "x", "OKP")?, "the JWK's x")?;
                if x.len() != 32 {
                    return Err(bad(format!(
                        "the Ed25519 key is {} bytes; 32 expected",
                        x.len()
                    )));
                }
                Ok(PublicKey::Ed25519(x))
            }
            other => Err(bad(format!(
                "JWK key type \"{other}\" is not supported (EC, RSA, OKP)"
            ))),
        }
    }

    /// The RFC 7638 thumbprint: base64url(SHA-256) of the required members in lexicographic
    /// order, without whitespace. The key is checked first, so the members hold only base64url
    /// characters and known curve names and need no escaping.
    pub fn thumbprint(&self) -> Result<String, Problem> {
        self.public_key()?;
        let canonical = match self.kty.as_str() {
            "EC" => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                self.crv.as_deref().unwrap_or_default(),
                self.x.as_deref().unwrap_or_default(),
                self.y.as_deref().unwrap_or_default()
            ),
            "RSA" => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                self.e.as_deref().unwrap_or_default(),
                self.n.as_deref().unwrap_or_default()
            ),
            _ => format!(
                r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
                self.crv.as_deref().unwrap_or_default(),
                self.x.as_deref().unwrap_or_default()
            ),
        };
        Ok(b64url(
            digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref(),
        ))
    }

    /// The JWK of a P-256 / P-384 uncompressed point, an Ed25519 key, or RSA components: what
    /// a test client (or the server, for a certificate's key) builds.
    pub fn from_public_key(key: &PublicKey) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            crv: None,
            x: None,
            y: None,
            n: None,
            e: None,
        };
        match key {
            PublicKey::P256(p) | PublicKey::P384(p) => {
                let half = (p.len().saturating_sub(1)) / 2;
                jwk.kty = "EC".into();
                jwk.crv = Some(if half == 32 { "P-256" } else { "P-384" }.into());
                jwk.x = Some(b64url(p.get(1..1 + half).unwrap_or_default()));
                jwk.y = Some(b64url(p.get(1 + half..).unwrap_or_default()));
            }
            PublicKey::Rsa { n, e } => {
                jwk.kty = "RSA".into();
                jwk.n = Some(b64url(n));
                jwk.e = Some(b64url(e));
            }
            PublicKey::Ed25519(x) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64url(x));
            }
        }
        jwk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(v: serde_json::Value) -> Jwk {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let k = jwk(serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        }));
        assert_eq!(
            k.thumbprint().unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn keys_refused_with_the_reason() {
        let x32 = b64url(&[1u8; 32]);
        let x48 = b64url(&[1u8; 48]);
        for (v, detail) in [
            (
                serde_json::json!({"kty": "oct", "k": "abc"}),
                "JWK key type \"oct\" is not supported (EC, RSA, OKP)",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-521", "x": x32, "y": x32}),
                "EC curve \"P-521\" is not supported (P-256, P-384)",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": x32}),
                "the EC JWK has no \"y\" member",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": x32, "y": x48}),
                "the P-256 JWK's coordinates are 32 and 48 bytes; 32 expected",
            ),
            (
                serde_json::json!({"kty": "RSA", "n": b64url(&[0xffu8; 128]), "e": "AQAB"}),
                "the RSA key has 1024 bits; at least 2048 are required",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "X25519", "x": x32}),
                "OKP curve \"X25519\" is not supported (Ed25519)",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "a+b"}),
                "the JWK's x is not base64url without padding: Invalid symbol 43, offset 1.",
            ),
        ] {
            let p = jwk(v).public_key().unwrap_err();
            assert_eq!(p.detail, detail);
        }
    }

    #[test]
    fn round_trip_through_public_key() {
        for key in [
            PublicKey::P256([vec![4u8], vec![7u8; 64]].concat()),
            PublicKey::P384([vec![4u8], vec![7u8; 96]].concat()),
            PublicKey::Ed25519(vec![9u8; 32]),
            PublicKey::Rsa {
                n: vec![0xc1; 256],
                e: vec![1, 0, 1],
            },
        ] {
            assert_eq!(Jwk::from_public_key(&key).public_key().unwrap(), key);
        }
    }
}
