//! Flattened JSON JWS requests (RFC 8555 §6.2): parsing, the protected-header rules and
//! signature verification with aws-lc-rs.

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use serde::Deserialize;

use crate::{
    b64::b64url_decode,
    jwk::{Jwk, PublicKey},
    problem::{Problem, ProblemType},
};

/// The signature algorithms an account may use.
pub const ALGORITHMS: &[&str] = &["ES256", "ES384", "RS256", "EdDSA"];

#[derive(Deserialize)]
struct Flattened {
    protected: Option<String>,
    payload: Option<String>,
    signature: Option<String>,
    header: Option<serde_json::Value>,
    signatures: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Protected {
    alg: Option<String>,
    nonce: Option<String>,
    url: Option<String>,
    kid: Option<String>,
    jwk: Option<Jwk>,
}

/// Who signed a request: an account by its URL, or a key given in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signer {
    /// `kid`: the account URL.
    Kid(String),
    /// `jwk`: the key itself (new-account, revokeCert by certificate key).
    Jwk(Jwk),
}

/// Which of `kid` / `jwk` a resource takes (RFC 8555 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// new-account: `jwk` only.
    Jwk,
    /// Everything else for an account: `kid` only.
    Kid,
    /// revokeCert: either.
    Either,
}

/// A parsed request, its signature not yet verified.
#[derive(Debug, Clone)]
pub struct Request {
    /// The algorithm, one of [`ALGORITHMS`] (HS256 for an external account binding).
    pub alg: String,
    /// The nonce (empty when absent: only inner JWSs may omit it).
    pub nonce: String,
    /// The URL the client signed for.
    pub url: String,
    /// The signer.
    pub signer: Signer,
    /// The decoded payload (empty for POST-as-GET).
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

/// Parses a flattened JWS of at most `limit` bytes. Only the syntax is checked here; the
/// header rules are [`Request::check`], the signature [`Request::verify`].
pub fn parse(body: &[u8], limit: usize) -> Result<Request, Problem> {
    if body.len() > limit {
        return Err(Problem::malformed(format!(
            "the request body is {} bytes; the limit is {limit}",
            body.len()
        )));
    }
    let f: Flattened = serde_json::from_slice(body)
        .map_err(|e| Problem::malformed(format!("the request is not a flattened JWS: {e}")))?;
    parse_value(f)
}

/// Parses a JWS given as a JSON value (the inner JWS of a key change, an EAB).
pub(crate) fn parse_json(v: &serde_json::Value) -> Result<Request, Problem> {
    let f: Flattened = serde_json::from_value(v.clone())
        .map_err(|e| Problem::malformed(format!("the inner JWS is not a flattened JWS: {e}")))?;
    parse_value(f)
}

fn parse_value(f: Flattened) -> Result<Request, Problem> {
    if f.signatures.is_some() {
        return Err(Problem::malformed(
            "a JWS with several signatures is not accepted",
        ));
    }
    if f.header.is_some() {
        return Err(Problem::malformed(
            "an unprotected JWS header is not accepted",
        ));
    }
    let (Some(protected_b64), Some(payload_b64), Some(sig_b64)) =
        (f.protected, f.payload, f.signature)
    else {
        return Err(Problem::malformed(
            "a JWS needs \"protected\", \"payload\" and \"signature\"",
        ));
    };
    let protected_raw = b64url_decode(&protected_b64, "the protected header")?;
    let h: Protected = serde_json::from_slice(&protected_raw)
        .map_err(|e| Problem::malformed(format!("the protected header is not valid: {e}")))?;
    let payload = b64url_decode(&payload_b64, "the payload")?;
    let signature = b64url_decode(&sig_b64, "the signature")?;
    let alg = h
        .alg
        .ok_or_else(|| Problem::malformed("the protected header has no \"alg\""))?;
    let signer = match (h.kid, h.jwk) {
        (Some(_), Some(_)) => {
            return Err(Problem::malformed(
                "the protected header has both \"kid\" and \"jwk\"; exactly one is allowed",
            ))
        }
        (None, None) => {
            return Err(Problem::malformed(
                "the protected header has neither \"kid\" nor \"jwk\"; exactly one is required",
            ))
        }
        (Some(kid), None) => Signer::Kid(kid),
        (None, Some(jwk)) => Signer::Jwk(jwk),
    };
    let mut signing_input = protected_b64.into_bytes();
    signing_input.push(b'.');
    signing_input.extend_from_slice(payload_b64.as_bytes());
    Ok(Request {
        alg,
        nonce: h.nonce.unwrap_or_default(),
        url: h.url.unwrap_or_default(),
        signer,
        payload,
        signing_input,
        signature,
    })
}

impl Request {
    /// The protected-header rules of an outer request to `url`: an allowed algorithm, a
    /// nonce, the url the request arrived at, and `kid` or `jwk` as the resource takes.
    pub fn check(&self, url: &str, expect: Expect) -> Result<(), Problem> {
        if !ALGORITHMS.contains(&self.alg.as_str()) {
            return Err(Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!(
                    "the JWS algorithm \"{}\" is not accepted (ES256, ES384, RS256, EdDSA)",
                    self.alg
                ),
            ));
        }
        if self.nonce.is_empty() {
            return Err(Problem::new(
                ProblemType::BadNonce,
                "the protected header has no \"nonce\"",
            ));
        }
        if self.url != url {
            return Err(Problem::new(
                ProblemType::Unauthorized,
                format!(
                    "the protected header's url \"{}\" is not the request's URL \"{url}\"",
                    self.url
                ),
            ));
        }
        match (expect, &self.signer) {
            (Expect::Jwk, Signer::Kid(_)) => Err(Problem::malformed(
                "this resource takes a \"jwk\" in the protected header, not a \"kid\"",
            )),
            (Expect::Kid, Signer::Jwk(_)) => Err(Problem::malformed(
                "this resource takes the account's \"kid\" in the protected header, not a \"jwk\"",
            )),
            _ => Ok(()),
        }
    }

    /// Verifies the signature with `key`, which must match the algorithm.
    pub fn verify(&self, key: &PublicKey) -> Result<(), Problem> {
        let mismatch = || {
            Problem::new(
                ProblemType::BadSignatureAlgorithm,
                format!(
                    "the JWS algorithm \"{}\" does not fit the account's key type",
                    self.alg
                ),
            )
        };
        let ok = match (self.alg.as_str(), key) {
            ("ES256", PublicKey::P256(p)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, p)
                    .verify(&self.signing_input, &self.signature)
            }
            ("ES384", PublicKey::P384(p)) => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, p)
                    .verify(&self.signing_input, &self.signature)
            }
            ("EdDSA", PublicKey::Ed25519(p)) => UnparsedPublicKey::new(&signature::ED25519, p)
                .verify(&self.signing_input, &self.signature),
            ("RS256", PublicKey::Rsa { n, e }) => signature::RsaPublicKeyComponents { n, e }
                .verify(
                    &signature::RSA_PKCS1_2048_8192_SHA256,
                    &self.signing_input,
                    &self.signature,
                ),
            _ => return Err(mismatch()),
        };
        ok.map_err(|_| {
            Problem::malformed("the JWS signature does not verify with the signer's key")
        })
    }

    /// The payload as a JSON object (`{}` for an empty POST-as-GET payload is refused: the
    /// caller asks for [`Request::is_post_as_get`] first where it is allowed).
    pub fn json(&self) -> Result<serde_json::Value, Problem> {
        let v: serde_json::Value = serde_json::from_slice(&self.payload)
            .map_err(|e| Problem::malformed(format!("the JWS payload is not JSON: {e}")))?;
        if !v.is_object() {
            return Err(Problem::malformed("the JWS payload is not a JSON object"));
        }
        Ok(v)
    }

    /// True for a POST-as-GET (an empty payload).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// The signing input and signature, for HMAC verification of an EAB.
    pub(crate) fn signed_parts(&self) -> (&[u8], &[u8]) {
        (&self.signing_input, &self.signature)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aws_lc_rs::{
        rand::SystemRandom,
        rsa::{KeySize, PublicKeyComponents},
        signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair},
    };

    use super::*;
    use crate::b64::b64url;

    /// A test client's key.
    pub enum TestKey {
        Ec(EcdsaKeyPair, &'static str),
        Ed(Ed25519KeyPair),
        Rsa(RsaKeyPair),
    }

    impl TestKey {
        pub fn p256() -> TestKey {
            TestKey::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
                "ES256",
            )
        }
        pub fn p384() -> TestKey {
            TestKey::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P384_SHA384_FIXED_SIGNING).unwrap(),
                "ES384",
            )
        }
        pub fn ed() -> TestKey {
            TestKey::Ed(Ed25519KeyPair::generate().unwrap())
        }
        pub fn rsa() -> TestKey {
            TestKey::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
        }
        pub fn alg(&self) -> &'static str {
            match self {
                TestKey::Ec(_, a) => a,
                TestKey::Ed(_) => "EdDSA",
                TestKey::Rsa(_) => "RS256",
            }
        }
        pub fn jwk(&self) -> Jwk {
            let key = match self {
                TestKey::Ec(k, "ES256") => PublicKey::P256(k.public_key().as_ref().to_vec()),
                TestKey::Ec(k, _) => PublicKey::P384(k.public_key().as_ref().to_vec()),
                TestKey::Ed(k) => PublicKey::Ed25519(k.public_key().as_ref().to_vec()),
                TestKey::Rsa(k) => {
                    let c = PublicKeyComponents::<Vec<u8>>::from(k.public_key());
                    PublicKey::Rsa { n: c.n, e: c.e }
                }
            };
            Jwk::from_public_key(&key)
        }
        pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
            let rng = SystemRandom::new();
            match self {
                TestKey::Ec(k, _) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
                TestKey::Ed(k) => k.sign(msg).as_ref().to_vec(),
                TestKey::Rsa(k) => {
                    let mut sig = vec![0; k.public_modulus_len()];
                    k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                        .unwrap();
                    sig
                }
            }
        }
    }

    /// A flattened JWS over `header` and `payload`, signed by `key` (with `alg` overriding).
    pub fn jws(key: &TestKey, header: serde_json::Value, payload: &[u8]) -> serde_json::Value {
        let protected = b64url(header.to_string().as_bytes());
        let payload = b64url(payload);
        let sig = key.sign(format!("{protected}.{payload}").as_bytes());
        serde_json::json!({"protected": protected, "payload": payload, "signature": b64url(&sig)})
    }

    const URL: &str = "https://ca.test/v1/pki/acme/new-order";

    fn header(key: &TestKey, extra: serde_json::Value) -> serde_json::Value {
        let mut h = serde_json::json!({"alg": key.alg(), "nonce": "n1", "url": URL, "kid": "https://ca.test/v1/pki/acme/account/a"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        h
    }

    #[test]
    fn every_algorithm_verifies_and_a_flipped_bit_does_not() {
        for key in [
            TestKey::p256(),
            TestKey::p384(),
            TestKey::ed(),
            TestKey::rsa(),
        ] {
            let body = jws(&key, header(&key, serde_json::json!({})), b"{}");
            let req = parse(body.to_string().as_bytes(), 65536).unwrap();
            req.check(URL, Expect::Kid).unwrap();
            let pk = key.jwk().public_key().unwrap();
            req.verify(&pk).unwrap();
            let mut bad = body.clone();
            let mut sig = b64url_decode(bad["signature"].as_str().unwrap(), "s").unwrap();
            sig[5] ^= 1;
            bad["signature"] = b64url(&sig).into();
            let req = parse(bad.to_string().as_bytes(), 65536).unwrap();
            assert_eq!(
                req.verify(&pk).unwrap_err().detail,
                "the JWS signature does not verify with the signer's key"
            );
        }
    }

    #[test]
    fn header_attacks_are_refused_with_their_problem() {
        let key = TestKey::p256();
        let jwk = serde_json::to_value(key.jwk()).unwrap();
        let cases: Vec<(serde_json::Value, Expect, &str, &str)> = vec![
            (serde_json::json!({"alg": "none"}), Expect::Kid, "badSignatureAlgorithm", "the JWS algorithm \"none\" is not accepted (ES256, ES384, RS256, EdDSA)"),
            (serde_json::json!({"alg": "HS256"}), Expect::Kid, "badSignatureAlgorithm", "the JWS algorithm \"HS256\" is not accepted (ES256, ES384, RS256, EdDSA)"),
            (serde_json::json!({"nonce": null}), Expect::Kid, "badNonce", "the protected header has no \"nonce\""),
            (serde_json::json!({"url": "https://ca.test/v1/pki/acme/new-account"}), Expect::Kid, "unauthorized", "the protected header's url \"https://ca.test/v1/pki/acme/new-account\" is not the request's URL \"https://ca.test/v1/pki/acme/new-order\""),
            (serde_json::json!({"jwk": jwk.clone(), "kid": null}), Expect::Kid, "malformed", "this resource takes the account's \"kid\" in the protected header, not a \"jwk\""),
            (serde_json::json!({}), Expect::Jwk, "malformed", "this resource takes a \"jwk\" in the protected header, not a \"kid\""),
        ];
        for (extra, expect, code, detail) in cases {
            let body = jws(&key, header(&key, extra.clone()), b"{}");
            let p = parse(body.to_string().as_bytes(), 65536)
                .and_then(|r| r.check(URL, expect))
                .unwrap_err();
            assert_eq!(
                (p.kind().code(), p.detail.as_str()),
                (code, detail),
                "{extra}"
            );
        }
    }

    #[test]
    fn malformed_requests_are_refused_at_parse() {
        let key = TestKey::p256();
        let jwk = serde_json::to_value(key.jwk()).unwrap();
        let both = jws(&key, header(&key, serde_json::json!({"jwk": jwk})), b"{}").to_string();
        let neither = jws(&key, header(&key, serde_json::json!({"kid": null})), b"{}").to_string();
        let big = format!("{{\"protected\":\"{}\"}}", "a".repeat(70000));
        for (body, detail) in [
            (both.as_str(), "the protected header has both \"kid\" and \"jwk\"; exactly one is allowed"),
            (neither.as_str(), "the protected header has neither \"kid\" nor \"jwk\"; exactly one is required"),
            (big.as_str(), "the request body is 70016 bytes; the limit is 65536"),
            (r#"{"protected":"e30","payload":""}"#, "a JWS needs \"protected\", \"payload\" and \"signature\""),
            (r#"{"protected":"e30","payload":"","signature":"","header":{}}"#, "an unprotected JWS header is not accepted"),
            (r#"{"signatures":[]}"#, "a JWS with several signatures is not accepted"),
            (r#"{"protected":"e30","payload":"","signature":""}"#, "the protected header has no \"alg\""),
            (r#"{"protected":"!!","payload":"","signature":""}"#, "the protected header is not base64url without padding: Invalid symbol 33, offset 0."),
        ] {
            assert_eq!(parse(body.as_bytes(), 65536).unwrap_err().detail, detail);
        }
    }

    #[test]
    fn a_key_of_another_type_than_the_alg_is_refused() {
        let ec = TestKey::p256();
        let ed = TestKey::ed();
        let body = jws(&ec, header(&ec, serde_json::json!({})), b"{}");
        let req = parse(body.to_string().as_bytes(), 65536).unwrap();
        let p = req.verify(&ed.jwk().public_key().unwrap()).unwrap_err();
        assert_eq!(p.kind(), ProblemType::BadSignatureAlgorithm);
    }
}
