//! base64url without padding, the only encoding JWS and ACME use.

use base64::Engine;

use crate::problem::Problem;

/// Encodes `bytes` as base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `what` names the field in the problem.
pub fn b64url_decode(text: &str, what: &str) -> Result<Vec<u8>, Problem> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|e| Problem::malformed(format!("{what} is not base64url without padding: {e}")))
}
