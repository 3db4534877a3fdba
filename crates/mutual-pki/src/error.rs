use thiserror::Error;

/// A failure of the pki layer that is not a policy refusal: bad input bytes, unsupported
/// algorithms, or an internal signing error. Each variant carries what was wrong; `detail` is
/// the text of the parser that refused (pem, x509-parser, rcgen, aws-lc-rs).
#[derive(Debug, Error)]
pub enum PkiError {
    /// Text that does not parse as PEM.
    #[error("bad PEM: {detail}")]
    BadPem {
        /// The PEM parser's complaint.
        detail: String,
    },
    /// PEM without a CERTIFICATE block.
    #[error("no certificate found in PEM")]
    NoCertificate,
    /// A CERTIFICATE block whose content is not a DER certificate.
    #[error("not a DER certificate: {detail}")]
    NotDer {
        /// The DER parser's complaint.
        detail: String,
    },
    /// Certificate bytes that x509-parser cannot read.
    #[error("unreadable certificate: {detail}")]
    UnreadableCertificate {
        /// The parser's complaint.
        detail: String,
    },
    /// One certificate of a bundle that cannot be described.
    #[error("certificate {index} of {count}: {detail}")]
    BundleCertificate {
        /// Its position, from 1.
        index: usize,
        /// How many the bundle holds.
        count: usize,
        /// The parser's complaint.
        detail: String,
    },
    /// An empty bundle given to describe.
    #[error("no certificate to describe")]
    NothingToDescribe,
    /// PEM without a private key block.
    #[error("no private key found in PEM ({detail})")]
    NoPrivateKey {
        /// The parser's complaint.
        detail: String,
    },
    /// Private key bytes that do not make a key.
    #[error("unreadable private key: {detail}")]
    UnreadablePrivateKey {
        /// The parser's complaint.
        detail: String,
    },
    /// A SubjectPublicKeyInfo that does not parse.
    #[error("unreadable public key")]
    UnreadablePublicKey,
    /// A public key rcgen cannot sign a certificate for.
    #[error("public key unusable: {detail}")]
    UnusablePublicKey {
        /// rcgen's complaint.
        detail: String,
    },
    /// A CSR that is not PEM.
    #[error("CSR is not valid PEM: {detail}")]
    CsrNotPem {
        /// The PEM parser's complaint.
        detail: String,
    },
    /// PEM without a CERTIFICATE REQUEST block.
    #[error("no CERTIFICATE REQUEST block found in PEM")]
    NoCsr,
    /// A CERTIFICATE REQUEST block that does not parse.
    #[error("CSR does not parse: {detail}")]
    CsrUnparsable {
        /// The parser's complaint.
        detail: String,
    },
    /// A CSR not signed by the key it carries.
    #[error("CSR signature does not verify: it was not signed by the key it carries")]
    CsrSignature,
    /// A CSR whose public key rcgen cannot sign a certificate for.
    #[error("CSR public key unusable: {detail}")]
    CsrPublicKeyUnusable {
        /// rcgen's complaint.
        detail: String,
    },
    /// An OCSP request that does not parse.
    #[error("OCSP request does not parse: {detail}")]
    OcspRequestUnparsable {
        /// The DER parser's complaint.
        detail: String,
    },
    /// An OCSP request that names no certificate.
    #[error("OCSP request asks about no certificate")]
    OcspRequestEmpty,
    /// An OCSP answer built with a number of statuses other than one per query.
    #[error("one status per OCSP query is needed")]
    OcspStatusCount,
    /// A time that an OCSP response cannot carry.
    #[error("time not encodable in an OCSP response: {detail}")]
    OcspTime {
        /// Why.
        detail: String,
    },
    /// A CA request without a common name.
    #[error("a CA needs a common name")]
    CaWithoutCommonName,
    /// An intermediate's CSR without a common name.
    #[error("the intermediate's CSR has no common name")]
    IntermediateWithoutCommonName,
    /// A CA certificate that rcgen cannot sign with.
    #[error("CA certificate unreadable: {detail}")]
    UnreadableCaCertificate {
        /// rcgen's complaint.
        detail: String,
    },
    /// A certificate set as a CA that is not one.
    #[error("\"{subject}\" is not a CA certificate (basicConstraints CA:TRUE missing)")]
    NotACa {
        /// Its subject DN.
        subject: String,
    },
    /// A key that is not the one the certificate carries.
    #[error("the key does not match the certificate \"{subject}\"")]
    KeyMismatch {
        /// The certificate's subject DN.
        subject: String,
    },
    /// A name that cannot go into a certificate as an IA5String.
    #[error("\"{name}\" is not an ASCII name")]
    NotAscii {
        /// The name.
        name: String,
    },
    /// A key or certificate that cannot go into a PKCS#12 file.
    #[error("{part} unusable for PKCS#12: {detail}")]
    Pkcs12 {
        /// `key` or `certificate`.
        part: &'static str,
        /// The encoder's complaint.
        detail: String,
    },
    /// The key type or size is not one mutual supports.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// rcgen refused to build or sign something.
    #[error("signing failed: {0}")]
    Signing(String),
}

impl From<rcgen::Error> for PkiError {
    fn from(e: rcgen::Error) -> Self {
        PkiError::Signing(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::PkiError;

    /// The messages are the product: each variant's text, as callers and tests read it.
    #[test]
    fn messages() {
        let d = || "oops".to_string();
        let table = [
            (PkiError::BadPem { detail: d() }, "bad PEM: oops"),
            (PkiError::NoCertificate, "no certificate found in PEM"),
            (
                PkiError::NotDer { detail: d() },
                "not a DER certificate: oops",
            ),
            (
                PkiError::UnreadableCertificate { detail: d() },
                "unreadable certificate: oops",
            ),
            (
                PkiError::BundleCertificate {
                    index: 2,
                    count: 3,
                    detail: d(),
                },
                "certificate 2 of 3: oops",
            ),
            (PkiError::NothingToDescribe, "no certificate to describe"),
            (
                PkiError::NoPrivateKey { detail: d() },
                "no private key found in PEM (oops)",
            ),
            (
                PkiError::UnreadablePrivateKey { detail: d() },
                "unreadable private key: oops",
            ),
            (PkiError::UnreadablePublicKey, "unreadable public key"),
            (
                PkiError::UnusablePublicKey { detail: d() },
                "public key unusable: oops",
            ),
            (
                PkiError::CsrNotPem { detail: d() },
                "CSR is not valid PEM: oops",
            ),
            (PkiError::NoCsr, "no CERTIFICATE REQUEST block found in PEM"),
            (
                PkiError::CsrUnparsable { detail: d() },
                "CSR does not parse: oops",
            ),
            (
                PkiError::CsrSignature,
                "CSR signature does not verify: it was not signed by the key it carries",
            ),
            (
                PkiError::CsrPublicKeyUnusable { detail: d() },
                "CSR public key unusable: oops",
            ),
            (PkiError::CaWithoutCommonName, "a CA needs a common name"),
            (
                PkiError::IntermediateWithoutCommonName,
                "the intermediate's CSR has no common name",
            ),
            (
                PkiError::UnreadableCaCertificate { detail: d() },
                "CA certificate unreadable: oops",
            ),
            (
                PkiError::NotACa {
                    subject: "CN=x".into(),
                },
                "\"CN=x\" is not a CA certificate (basicConstraints CA:TRUE missing)",
            ),
            (
                PkiError::KeyMismatch {
                    subject: "CN=x".into(),
                },
                "the key does not match the certificate \"CN=x\"",
            ),
            (
                PkiError::NotAscii {
                    name: "bücher".into(),
                },
                "\"bücher\" is not an ASCII name",
            ),
            (
                PkiError::Pkcs12 {
                    part: "key",
                    detail: d(),
                },
                "key unusable for PKCS#12: oops",
            ),
        ];
        for (err, message) in table {
            assert_eq!(err.to_string(), message);
        }
    }
}
