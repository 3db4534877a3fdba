//! External account binding (RFC 8555 §7.3.4): an HMAC-signed JWS inside new-account whose
//! payload is the account's key, binding the account to a key the operator handed out.

use aws_lc_rs::hmac;

use crate::{
    jwk::Jwk,
    jws::{parse_json, Signer},
    problem::{Problem, ProblemType},
};

/// The EAB key ID (`kid`) of an `externalAccountBinding` value, to look its key up.
pub fn eab_kid(eab: &serde_json::Value) -> Result<String, Problem> {
    let inner = parse_json(eab)?;
    match inner.signer {
        Signer::Kid(kid) => Ok(kid),
        Signer::Jwk(_) => Err(Problem::malformed(
            "the external account binding names its key with \"kid\", not \"jwk\"",
        )),
    }
}

/// Verifies an `externalAccountBinding`: HS256, for `url` (the new-account URL), no nonce, its
/// payload the account's `jwk`, its MAC by `key`.
pub fn verify_eab(
    eab: &serde_json::Value,
    url: &str,
    account: &Jwk,
    key: &[u8],
) -> Result<(), Problem> {
    let unauthorized = |d: &str| Problem::new(ProblemType::Unauthorized, d);
    let inner = parse_json(eab)?;
    if inner.alg != "HS256" {
        return Err(Problem::new(
            ProblemType::BadSignatureAlgorithm,
            format!(
                "the external account binding's algorithm \"{}\" is not HS256",
                inner.alg
            ),
        ));
    }
    if !inner.nonce.is_empty() {
        return Err(Problem::malformed(
            "the external account binding must not carry a nonce",
        ));
    }
    if inner.url != url {
        return Err(unauthorized(
            "the external account binding's url is not the new-account URL",
        ));
    }
    let bound: Jwk = serde_json::from_slice(&inner.payload)
        .map_err(|_| Problem::malformed("the external account binding's payload is not a JWK"))?;
    if bound.thumbprint()? != account.thumbprint()? {
        return Err(unauthorized(
            "the external account binding's key is not the account's key",
        ));
    }
    let (input, mac) = inner.signed_parts();
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), input, mac).map_err(|_| {
        unauthorized("the external account binding's MAC does not verify with its key")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{b64::b64url, jws::tests::TestKey};

    const URL: &str = "https://ca.test/v1/pki/acme/new-account";

    fn eab(header: serde_json::Value, payload: &Jwk, key: &[u8]) -> serde_json::Value {
        let protected = b64url(header.to_string().as_bytes());
        let payload = b64url(serde_json::to_string(payload).unwrap().as_bytes());
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, key),
            format!("{protected}.{payload}").as_bytes(),
        );
        serde_json::json!({"protected": protected, "payload": payload, "signature": b64url(tag.as_ref())})
    }

    #[test]
    fn bindings_checked() {
        let account = TestKey::p256().jwk();
        let other = TestKey::p256().jwk();
        let good_h = serde_json::json!({"alg": "HS256", "kid": "eab1", "url": URL});
        let key = b"0123456789abcdef0123456789abcdef";
        let good = eab(good_h.clone(), &account, key);
        assert_eq!(eab_kid(&good).unwrap(), "eab1");
        verify_eab(&good, URL, &account, key).unwrap();
        for (v, detail) in [
            (
                eab(good_h.clone(), &account, b"another key"),
                "the external account binding's MAC does not verify with its key",
            ),
            (
                eab(good_h.clone(), &other, key),
                "the external account binding's key is not the account's key",
            ),
            (
                eab(
                    serde_json::json!({"alg": "HS256", "kid": "eab1", "url": "https://x/"}),
                    &account,
                    key,
                ),
                "the external account binding's url is not the new-account URL",
            ),
            (
                eab(
                    serde_json::json!({"alg": "HS256", "kid": "eab1", "url": URL, "nonce": "n"}),
                    &account,
                    key,
                ),
                "the external account binding must not carry a nonce",
            ),
            (
                eab(
                    serde_json::json!({"alg": "none", "kid": "eab1", "url": URL}),
                    &account,
                    key,
                ),
                "the external account binding's algorithm \"none\" is not HS256",
            ),
        ] {
            assert_eq!(
                verify_eab(&v, URL, &account, key).unwrap_err().detail,
                detail
            );
        }
    }
}
