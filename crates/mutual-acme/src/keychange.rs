//! Account key rollover (RFC 8555 §7.3.5): the outer request signed by the old key (`kid`),
//! its payload an inner JWS signed by the new key (`jwk`) naming the account and the old key.

use serde::Deserialize;

use crate::{
    jwk::Jwk,
    jws::{parse_json, Request, Signer},
    problem::{Problem, ProblemType},
};

/// A verified key change: the new key and its thumbprint.
#[derive(Debug, Clone)]
pub struct KeyChange {
    /// The new key.
    pub new_key: Jwk,
    /// Its thumbprint.
    pub thumbprint: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inner {
    account: String,
    old_key: Jwk,
}

/// Checks the inner JWS of a key change whose outer request (`outer`, already verified) came
/// from account `kid` with current key `old`.
pub fn check_key_change(outer: &Request, kid: &str, old: &Jwk) -> Result<KeyChange, Problem> {
    let value = outer.json()?;
    let inner = parse_json(&value)?;
    let Signer::Jwk(new_key) = &inner.signer else {
        return Err(Problem::malformed(
            "the inner JWS of a key change must carry the new key as \"jwk\"",
        ));
    };
    if inner.url != outer.url {
        return Err(Problem::malformed(format!(
            "the inner JWS's url \"{}\" is not the outer url \"{}\"",
            inner.url, outer.url
        )));
    }
    if !inner.nonce.is_empty() {
        return Err(Problem::malformed(
            "the inner JWS of a key change must not carry a nonce",
        ));
    }
    if !crate::jws::ALGORITHMS.contains(&inner.alg.as_str()) {
        return Err(Problem::new(
            ProblemType::BadSignatureAlgorithm,
            format!("the inner JWS algorithm \"{}\" is not accepted", inner.alg),
        ));
    }
    inner.verify(&new_key.public_key()?)?;
    let body: Inner = serde_json::from_slice(&inner.payload).map_err(|e| {
        Problem::malformed(format!(
            "the inner payload needs \"account\" and \"oldKey\": {e}"
        ))
    })?;
    if body.account != kid {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            format!(
                "the inner payload's account \"{}\" is not the signer \"{kid}\"",
                body.account
            ),
        ));
    }
    if body.old_key.thumbprint()? != old.thumbprint()? {
        return Err(Problem::new(
            ProblemType::Unauthorized,
            "the inner payload's oldKey is not the account's current key",
        ));
    }
    let thumbprint = new_key.thumbprint()?;
    if thumbprint == old.thumbprint()? {
        return Err(Problem::malformed(
            "the new key is the account's current key",
        ));
    }
    Ok(KeyChange {
        new_key: new_key.clone(),
        thumbprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::{
        parse,
        tests::{jws, TestKey},
    };

    const URL: &str = "https://ca.test/v1/pki/acme/key-change";
    const KID: &str = "https://ca.test/v1/pki/acme/account/a1";

    fn outer(old: &TestKey, inner: serde_json::Value) -> Request {
        let h = serde_json::json!({"alg": old.alg(), "nonce": "n", "url": URL, "kid": KID});
        let body = jws(old, h, inner.to_string().as_bytes());
        parse(body.to_string().as_bytes(), 65536).unwrap()
    }

    #[test]
    fn key_changes_checked() {
        let old = TestKey::p256();
        let new = TestKey::ed();
        let other = TestKey::p384();
        let jwk_new = serde_json::to_value(new.jwk()).unwrap();
        let inner_h = serde_json::json!({"alg": new.alg(), "url": URL, "jwk": jwk_new});
        let payload = |account: &str, old_key: &Jwk| {
            serde_json::json!({"account": account, "oldKey": old_key}).to_string()
        };
        let good = jws(&new, inner_h.clone(), payload(KID, &old.jwk()).as_bytes());
        let change = check_key_change(&outer(&old, good), KID, &old.jwk()).unwrap();
        assert_eq!(change.new_key, new.jwk());

        let mut url_h = inner_h.clone();
        url_h["url"] = "https://ca.test/v1/pki/acme/new-order".into();
        let mut nonce_h = inner_h.clone();
        nonce_h["nonce"] = "n2".into();
        let mut forged = jws(&new, inner_h.clone(), payload(KID, &old.jwk()).as_bytes());
        forged["signature"] = jws(&other, inner_h.clone(), b"x")["signature"].clone();
        for (inner, detail) in [
            (jws(&new, url_h, payload(KID, &old.jwk()).as_bytes()), "the inner JWS's url \"https://ca.test/v1/pki/acme/new-order\" is not the outer url \"https://ca.test/v1/pki/acme/key-change\""),
            (jws(&new, nonce_h, payload(KID, &old.jwk()).as_bytes()), "the inner JWS of a key change must not carry a nonce"),
            (jws(&new, inner_h.clone(), payload("https://ca.test/v1/pki/acme/account/zz", &old.jwk()).as_bytes()), "the inner payload's account \"https://ca.test/v1/pki/acme/account/zz\" is not the signer \"https://ca.test/v1/pki/acme/account/a1\""),
            (jws(&new, inner_h.clone(), payload(KID, &other.jwk()).as_bytes()), "the inner payload's oldKey is not the account's current key"),
            (forged, "the JWS signature does not verify with the signer's key"),
        ] {
            let p = check_key_change(&outer(&old, inner), KID, &old.jwk()).unwrap_err();
            assert_eq!(p.detail, detail);
        }
    }
}
