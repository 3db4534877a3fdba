use std::{io::Write, path::Path};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::Engine;
use zeroize::Zeroizing;

use crate::StoreError;

/// The key-encryption key that seals CA private keys (AES-256-GCM).
pub struct Kek {
    key: LessSafeKey,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

const KEK_FILE: &str = "kek";

impl Kek {
    /// A fresh random key.
    pub fn generate() -> Kek {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut()).expect("the system random generator failed");
        Kek::from_bytes(&bytes[..]).expect("32 bytes make an AES-256 key")
    }

    fn from_bytes(bytes: &[u8]) -> Result<Kek, StoreError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| StoreError::Kek("the key-encryption key must be 32 bytes".into()))?;
        Ok(Kek {
            key: LessSafeKey::new(unbound),
        })
    }

    /// Parses the base64 (or hex) text of a 32-byte key, as found in the `kek` file or in
    /// `MUTUAL_KEK`.
    pub fn parse(text: &str) -> Result<Kek, StoreError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            if text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()) {
                hex::decode(text).unwrap_or_default()
            } else {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| {
                        StoreError::Kek("the key-encryption key is not valid base64 or hex".into())
                    })?
            },
        );
        if bytes.len() != 32 {
            return Err(StoreError::Kek(format!(
                "the key-encryption key must be 32 bytes, got {}",
                bytes.len()
            )));
        }
        Kek::from_bytes(&bytes)
    }

    /// Loads the key for a store: `MUTUAL_KEK` when set, else `DIR/kek`.
    pub fn load(dir: &Path) -> Result<Kek, StoreError> {
        if let Ok(text) = std::env::var("MUTUAL_KEK") {
            return Kek::parse(&text);
        }
        let path = dir.join(KEK_FILE);
        let text = Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
            StoreError::Kek(format!(
                "cannot read the key-encryption key {}: {e} (set MUTUAL_KEK if it is kept elsewhere)",
                path.display()
            ))
        })?);
        Kek::parse(&text)
    }

    /// Creates a new key for a new store: from `MUTUAL_KEK` when set (nothing written), else
    /// a random key written to `DIR/kek`, created with mode 0600 so it is never readable by
    /// others, not even for a moment.
    pub fn create(dir: &Path) -> Result<Kek, StoreError> {
        if let Ok(text) = std::env::var("MUTUAL_KEK") {
            return Kek::parse(&text);
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut()).expect("the system random generator failed");
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&bytes[..]));
        let path = dir.join(KEK_FILE);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&path)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.write_all(b"\n"))
            .and_then(|_| f.sync_all())
            .map_err(|e| StoreError::io(format!("writing {}", path.display()), e))?;
        Kek::from_bytes(&bytes[..])
    }

    /// Seals `plain`, bound to `context` (the CA's name) so a sealed key cannot be moved to
    /// another row. Output: nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random generator failed");
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM sealing cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// Opens what [`Kek::seal`] sealed with the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let wrong = || {
            StoreError::Kek(format!(
                "cannot decrypt the key of CA \"{context}\": the key-encryption key is not the one this store was created with"
            ))
        };
        if sealed.len() < NONCE_LEN + 16 {
            return Err(wrong());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut buf = Zeroizing::new(body.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buf)
            .map_err(|_| wrong())?;
        Ok(Zeroizing::new(plain.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = Kek::generate();
        let sealed = k.seal("root", b"secret");
        assert_eq!(&k.open("root", &sealed).unwrap()[..], b"secret");
        assert!(k.open("other", &sealed).is_err(), "bound to the CA name");
        assert!(
            Kek::generate().open("root", &sealed).is_err(),
            "another key fails"
        );
        assert!(k.open("root", &sealed[..10]).is_err());
    }

    #[test]
    fn parse_forms() {
        assert!(Kek::parse(&"ab".repeat(32)).is_ok());
        assert!(Kek::parse("AAAA").is_err());
        assert!(Kek::parse("not base64!").is_err());
    }
}
