//! HMAC of secrets for the audit log and for stored secret IDs: HMAC-SHA256 under a key kept
//! by the store, written as Vault writes it (`hmac-sha256:<hex>`), so that an operator can
//! find a request by a token they hold (`sys/audit-hash`) without the log holding it.

use aws_lc_rs::{constant_time, hmac};

/// The prefix Vault puts before an HMAC'd value.
pub const PREFIX: &str = "hmac-sha256:";

/// An HMAC key (the store's audit salt, or a role's secret ID key).
#[derive(Clone)]
pub struct Hasher {
    key: hmac::Key,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher(..)")
    }
}

impl Hasher {
    /// A hasher under `key` (32 random bytes kept by the store).
    pub fn new(key: &[u8]) -> Hasher {
        Hasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// `hmac-sha256:<hex>` of `secret`.
    pub fn hash(&self, secret: &str) -> String {
        format!("{PREFIX}{}", self.hex(secret))
    }

    /// The bare hex HMAC (how secret IDs are stored, as Vault stores them).
    pub fn hex(&self, secret: &str) -> String {
        hex::encode(hmac::sign(&self.key, secret.as_bytes()).as_ref())
    }

    /// True when `stored` (either form) is the HMAC of `secret`, compared in constant time.
    pub fn verify(&self, secret: &str, stored: &str) -> bool {
        let stored = stored.strip_prefix(PREFIX).unwrap_or(stored);
        constant_time::verify_slices_are_equal(self.hex(secret).as_bytes(), stored.as_bytes())
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_known_answer_and_format() {
        // RFC 4231 test case 2.
        let h = Hasher::new(b"Jefe");
        assert_eq!(
            h.hash("what do ya want for nothing?"),
            "hmac-sha256:5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let stored = h.hash("s.secret");
        assert!(h.verify("s.secret", &stored));
        assert!(h.verify("s.secret", stored.trim_start_matches(PREFIX)));
        assert!(!h.verify("s.other", &stored));
        assert!(!Hasher::new(b"other key").verify("s.secret", &stored));
        assert!(!h.hash("s.secret").contains("s.secret"));
    }
}
