//! PKCS#12 bundles (key + chain) for Java keystores and browsers, PBES2/AES-256 with an
//! HMAC-SHA256 MAC, which `openssl pkcs12` and Java's `keytool` read.

use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};

use crate::{key::PrivateKey, PkiError};

/// Builds a PKCS#12 file holding `key` and `chain` (leaf first) under `alias`.
pub fn build(
    alias: &str,
    key: &PrivateKey,
    chain: &[Vec<u8>],
    password: &str,
) -> Result<Vec<u8>, PkiError> {
    let p12_key =
        p12_keystore::PrivateKey::from_der(&key.to_der()).map_err(|e| PkiError::Pkcs12 {
            part: "key",
            detail: e.to_string(),
        })?;
    let certs = chain
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PkiError::Pkcs12 {
            part: "certificate",
            detail: e.to_string(),
        })?;
    let local_key_id = crate::cert::fingerprint(chain.first().map_or(&[][..], |c| c.as_slice()));
    let mut store = KeyStore::new();
    store.add_entry(
        alias,
        KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(
            local_key_id.as_bytes().to_vec(),
            p12_key,
            certs,
        )),
    );
    store
        .writer(password)
        .write()
        .map_err(|e| PkiError::Signing(format!("PKCS#12 encoding failed: {e}")))
}
