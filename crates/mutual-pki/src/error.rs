use thiserror::Error;

/// A failure of the pki layer that is not a policy refusal: bad input bytes, unsupported
/// algorithms, or an internal signing error.
#[derive(Debug, Error)]
pub enum PkiError {
    /// Input was not what it claimed to be (PEM, DER, a key, a CSR).
    #[error("{0}")]
    Invalid(String),
    /// The key type or size is not one mutual supports.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// rcgen refused to build or sign something.
    #[error("signing failed: {0}")]
    Signing(String),
}

impl PkiError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        PkiError::Invalid(msg.into())
    }
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Signing(e.to_string())
    }
}
