//! OCSP (RFC 6960): requests decoded and responses encoded with RustCrypto's `x509-ocsp`, the
//! response signed by the issuing CA's own key (no delegated responder), so that a client that
//! trusts the CA verifies the answer without another certificate.
//!
//! The lookup of each serial's status is the caller's (a store query); this module only turns
//! bytes into [`OcspRequest`] and a list of [`Status`] into a signed response.

use std::time::Duration;

use der::{
    asn1::{BitString, GeneralizedTime, Null, ObjectIdentifier, OctetString, OctetStringRef},
    Decode, Encode, Header, Length, Tag, TagNumber,
};
use rcgen::SigningKey;
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::ext::{pkix::CrlReason, Extension};
use x509_ocsp::{
    CertId, CertStatus, OcspGeneralizedTime, OcspResponse, OcspResponseStatus, ResponderId,
    RevokedInfo, SingleResponse,
};
use x509_parser::{certificate::X509Certificate, prelude::FromDer};

use crate::{crl::Reason, key::KeyType, key::PrivateKey, serial::Serial, PkiError};

const OID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const OID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const OID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
const OID_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
const OID_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
const OID_ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
const OID_RSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// One certificate asked about: the CertID exactly as the client sent it (echoed in the
/// answer), with its serial read out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertQuery {
    id: CertId,
    /// The serial asked about.
    pub serial: Serial,
}

/// A decoded OCSP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspRequest {
    /// The certificates asked about, in order.
    pub queries: Vec<CertQuery>,
    nonce: Option<Extension>,
}

impl OcspRequest {
    /// The request's nonce (the extension's value), if it sent one.
    pub fn nonce(&self) -> Option<&[u8]> {
        self.nonce.as_ref().map(|n| n.extn_value.as_bytes())
    }
}

/// What the responder says of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at this time for this reason.
    Revoked {
        /// When.
        at: OffsetDateTime,
        /// Why.
        reason: Reason,
    },
    /// Not a certificate this CA issued (or the CertID names another issuer).
    Unknown,
}

/// Decodes a DER `OCSPRequest`. Any failure is the client's: answer [`malformed_request`].
pub fn parse_request(der: &[u8]) -> Result<OcspRequest, PkiError> {
    let req =
        x509_ocsp::OcspRequest::from_der(der).map_err(|e| PkiError::OcspRequestUnparsable {
            detail: e.to_string(),
        })?;
    if req.tbs_request.request_list.is_empty() {
        return Err(PkiError::OcspRequestEmpty);
    }
    let nonce = req
        .tbs_request
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OID_NONCE)
        .cloned();
    let queries = req
        .tbs_request
        .request_list
        .into_iter()
        .map(|r| CertQuery {
            serial: Serial::from_bytes(r.req_cert.serial_number.as_bytes()),
            id: r.req_cert,
        })
        .collect();
    Ok(OcspRequest { queries, nonce })
}

/// What every answer of one CA needs, computed once per CA: the hashes a CertID may name it
/// by and its responder ID.
///
/// Answers carry no `certs`: the signer is the issuer the client named in its CertID, so the
/// client holds it already, and Go's `x/crypto/ocsp` refuses an answer that embeds an
/// intermediate CA's certificate (it checks the embedded certificate as if the issuer had
/// signed it: golang/go#59641; OpenBao leaves it out for the same reason).
#[derive(Debug, Clone)]
pub struct Issuer {
    /// (hash algorithm, hash of the subject name, hash of the key), one per algorithm a
    /// CertID may use: a query is matched without hashing anything.
    hashes: Vec<(ObjectIdentifier, Vec<u8>, Vec<u8>)>,
    /// `ResponderID ::= byKey [2] EXPLICIT KeyHash` (SHA-1 of the key), encoded.
    responder_id_der: Vec<u8>,
}

impl Issuer {
    /// Reads the subject and public key of a CA certificate (DER).
    pub fn new(ca_cert_der: &[u8]) -> Result<Issuer, PkiError> {
        let (_, cert) = X509Certificate::from_der(ca_cert_der).map_err(|e| {
            PkiError::UnreadableCertificate {
                detail: e.to_string(),
            }
        })?;
        let key_bits = cert.public_key().subject_public_key.data.to_vec();
        let name_der = cert.subject().as_raw().to_vec();
        let hashes = [OID_SHA1, OID_SHA256, OID_SHA384, OID_SHA512]
            .into_iter()
            .filter_map(|alg| Some((alg, digest(&alg, &name_der)?, digest(&alg, &key_bits)?)))
            .collect();
        let key_sha1 = digest(&OID_SHA1, &key_bits).unwrap_or_default();
        let responder_id_der = ResponderId::ByKey(OctetString::new(key_sha1).map_err(encode_err)?)
            .to_der()
            .map_err(encode_err)?;
        Ok(Issuer {
            hashes,
            responder_id_der,
        })
    }

    /// True when `q` names this issuer (name and key hash under the algorithm it chose).
    pub fn issued(&self, q: &CertQuery) -> bool {
        let alg = &q.id.hash_algorithm.oid;
        self.hashes.iter().any(|(a, name, key)| {
            a == alg
                && name.as_slice() == q.id.issuer_name_hash.as_bytes()
                && key.as_slice() == q.id.issuer_key_hash.as_bytes()
        })
    }
}

fn digest(alg: &ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::digest as d;
    let algorithm = [
        (OID_SHA1, &d::SHA1_FOR_LEGACY_USE_ONLY),
        (OID_SHA256, &d::SHA256),
        (OID_SHA384, &d::SHA384),
        (OID_SHA512, &d::SHA512),
    ]
    .into_iter()
    .find(|(oid, _)| oid == alg)?
    .1;
    Some(d::digest(algorithm, data).as_ref().to_vec())
}

fn gen_time(t: OffsetDateTime) -> Result<OcspGeneralizedTime, PkiError> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| PkiError::OcspTime {
        detail: "before 1970".into(),
    })?;
    GeneralizedTime::from_unix_duration(Duration::from_secs(secs))
        .map(OcspGeneralizedTime)
        .map_err(|e| PkiError::OcspTime {
            detail: e.to_string(),
        })
}

fn crl_reason(r: Reason) -> CrlReason {
    match r {
        Reason::Unspecified => CrlReason::Unspecified,
        Reason::KeyCompromise => CrlReason::KeyCompromise,
        Reason::CaCompromise => CrlReason::CaCompromise,
        Reason::AffiliationChanged => CrlReason::AffiliationChanged,
        Reason::Superseded => CrlReason::Superseded,
        Reason::CessationOfOperation => CrlReason::CessationOfOperation,
        Reason::CertificateHold => CrlReason::CertificateHold,
        Reason::PrivilegeWithdrawn => CrlReason::PrivilegeWithdrawn,
    }
}

fn signature_algorithm(key: &PrivateKey) -> AlgorithmIdentifierOwned {
    let (oid, null) = match key.key_type() {
        KeyType::Rsa(_) => (OID_RSA_SHA256, true),
        KeyType::EcP256 => (OID_ECDSA_SHA256, false),
        KeyType::EcP384 => (OID_ECDSA_SHA384, false),
        KeyType::Ed25519 => (OID_ED25519, false),
    };
    AlgorithmIdentifierOwned {
        oid,
        parameters: null.then(|| Null.into()),
    }
}

fn encode_err(e: der::Error) -> PkiError {
    PkiError::Signing(format!("encoding the OCSP response: {e}"))
}

/// A signed, successful `OCSPResponse` (DER) answering `req` with `statuses` (one per query,
/// in order), signed by `key` (the key of `issuer`), identified by key hash; thisUpdate is
/// `now`, nextUpdate `now + validity`, and the request's nonce is echoed.
pub fn respond(
    issuer: &Issuer,
    key: &PrivateKey,
    req: &OcspRequest,
    statuses: &[Status],
    now: OffsetDateTime,
    validity: Duration,
) -> Result<Vec<u8>, PkiError> {
    if statuses.len() != req.queries.len() {
        return Err(PkiError::OcspStatusCount);
    }
    let this_update = gen_time(now)?;
    let next_update = gen_time(now + validity)?;
    let responses = req
        .queries
        .iter()
        .zip(statuses)
        .map(|(q, s)| {
            let cert_status = match s {
                Status::Good => CertStatus::good(),
                Status::Unknown => CertStatus::unknown(),
                Status::Revoked { at, reason } => CertStatus::revoked(RevokedInfo {
                    revocation_time: gen_time(*at)?,
                    revocation_reason: Some(crl_reason(*reason)),
                }),
            };
            Ok(SingleResponse {
                cert_id: q.id.clone(),
                cert_status,
                this_update,
                next_update: Some(next_update),
                single_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    // tbsResponseData (version v1 is the default, so absent): the responder ID is the
    // issuer's, encoded once; what changes per answer is encoded here, element by element.
    let mut parts: Vec<Vec<u8>> = Vec::with_capacity(4);
    for r in &responses {
        parts.push(r.to_der().map_err(encode_err)?);
    }
    let responses = tlv(
        Tag::Sequence,
        &parts.iter().map(|p| &p[..]).collect::<Vec<_>>(),
    )?;
    let extensions = match &req.nonce {
        Some(n) => tlv(
            Tag::ContextSpecific {
                constructed: true,
                number: TagNumber::N1,
            },
            &[&tlv(Tag::Sequence, &[&n.to_der().map_err(encode_err)?])?],
        )?,
        None => Vec::new(),
    };
    let tbs_der = tlv(
        Tag::Sequence,
        &[
            &issuer.responder_id_der,
            &this_update.to_der().map_err(encode_err)?,
            &responses,
            &extensions,
        ],
    )?;
    let signature = key.pair().sign(&tbs_der)?;
    // BasicOCSPResponse and OCSPResponse around the tbsResponseData encoded above: encoding
    // the decoded structures again would only produce the same bytes at several times the cost.
    let basic = tlv(
        Tag::Sequence,
        &[
            &tbs_der,
            &signature_algorithm(key).to_der().map_err(encode_err)?,
            &BitString::from_bytes(&signature)
                .and_then(|b| b.to_der())
                .map_err(encode_err)?,
        ],
    )?;
    let response_bytes = tlv(
        Tag::Sequence,
        &[
            &OID_OCSP_BASIC.to_der().map_err(encode_err)?,
            &OctetStringRef::new(&basic)
                .and_then(|o| o.to_der())
                .map_err(encode_err)?,
        ],
    )?;
    tlv(
        Tag::Sequence,
        &[
            &OcspResponseStatus::Successful
                .to_der()
                .map_err(encode_err)?,
            &tlv(
                Tag::ContextSpecific {
                    constructed: true,
                    number: TagNumber::N0,
                },
                &[&response_bytes],
            )?,
        ],
    )
}

/// One DER TLV: `tag`, the length, and `parts` one after the other as the value.
fn tlv(tag: Tag, parts: &[&[u8]]) -> Result<Vec<u8>, PkiError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 8);
    Length::try_from(len)
        .and_then(|l| Header::new(tag, l))
        .and_then(|h| h.encode_to_vec(&mut out))
        .map_err(encode_err)?;
    for p in parts {
        out.extend_from_slice(p);
    }
    Ok(out)
}

/// The `malformedRequest` answer (no signature, as RFC 6960 has it).
pub fn malformed_request() -> Vec<u8> {
    OcspResponse::malformed_request()
        .to_der()
        .unwrap_or_default()
}

/// The `internalError` answer.
pub fn internal_error() -> Vec<u8> {
    OcspResponse::internal_error().to_der().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{generate_root, RootRequest};
    use x509_ocsp::{BasicOcspResponse, Request, TbsRequest, Version};

    /// A successful answer decoded, after checking it is byte for byte what x509-ocsp's own
    /// encoder makes of the same answer.
    fn decoded_as_x509_ocsp_encodes(answer: &[u8]) -> (OcspResponse, BasicOcspResponse) {
        let resp = OcspResponse::from_der(answer).unwrap();
        let bytes = resp.response_bytes.clone().unwrap();
        let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).unwrap();
        let again = OcspResponse::successful(basic.clone())
            .unwrap()
            .to_der()
            .unwrap();
        assert_eq!(again, answer);
        (resp, basic)
    }

    fn root(kt: KeyType) -> crate::ca::CaMaterial {
        generate_root(
            &RootRequest {
                common_name: "OCSP Test Root".into(),
                key_type: kt,
                ttl: Duration::from_secs(3600),
                ..RootRequest::default()
            },
            OffsetDateTime::now_utc(),
        )
        .unwrap()
    }

    /// The subject name (DER) and public key bits of a certificate.
    fn name_and_key(cert_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
        (
            cert.subject().as_raw().to_vec(),
            cert.public_key().subject_public_key.data.to_vec(),
        )
    }

    fn request(ca_der: &[u8], alg: ObjectIdentifier, serial: &[u8], nonce: bool) -> Vec<u8> {
        let (name_der, key_bits) = name_and_key(ca_der);
        let id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: alg,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: OctetString::new(digest(&alg, &name_der).unwrap()).unwrap(),
            issuer_key_hash: OctetString::new(digest(&alg, &key_bits).unwrap()).unwrap(),
            serial_number: x509_cert::serial_number::SerialNumber::new(serial).unwrap(),
        };
        let nonce_ext = Extension {
            extn_id: OID_NONCE,
            critical: false,
            extn_value: OctetString::new(vec![4, 4, 1, 2, 3, 4]).unwrap(),
        };
        x509_ocsp::OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: id,
                    single_request_extensions: None,
                }],
                request_extensions: nonce.then(|| vec![nonce_ext]),
            },
            optional_signature: None,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn requests_decode_and_name_their_issuer() {
        let ca = root(KeyType::EcP256);
        let other = root(KeyType::EcP256);
        let issuer = Issuer::new(&ca.cert_der).unwrap();
        let foreign = Issuer::new(&other.cert_der).unwrap();
        let cases = [
            (OID_SHA1, true, true),
            (OID_SHA256, false, true),
            (OID_SHA384, true, true),
        ];
        for (alg, nonce, ours) in cases {
            let der = request(&ca.cert_der, alg, &[0x3a, 0x9f], nonce);
            let req = parse_request(&der).unwrap();
            assert_eq!(req.queries.len(), 1);
            assert_eq!(req.queries[0].serial, Serial::from_bytes(&[0x3a, 0x9f]));
            assert_eq!(issuer.issued(&req.queries[0]), ours, "{alg}");
            assert!(!foreign.issued(&req.queries[0]), "{alg}");
            assert_eq!(req.nonce().is_some(), nonce);
        }
    }

    #[test]
    fn answers_without_a_nonce_or_with_several_queries_encode_as_x509_ocsp_does() {
        let ca = root(KeyType::EcP256);
        let issuer = Issuer::new(&ca.cert_der).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let revoked = Status::Revoked {
            at: now - time::Duration::hours(1),
            reason: Reason::Superseded,
        };
        // Two queries in one request: the second CertID of another request appended.
        let mut two =
            x509_ocsp::OcspRequest::from_der(&request(&ca.cert_der, OID_SHA256, &[1], true))
                .unwrap();
        let other = x509_ocsp::OcspRequest::from_der(&request(&ca.cert_der, OID_SHA1, &[2], false))
            .unwrap();
        two.tbs_request
            .request_list
            .extend(other.tbs_request.request_list);
        let cases = [
            (
                request(&ca.cert_der, OID_SHA1, &[9], false),
                vec![Status::Good],
            ),
            (two.to_der().unwrap(), vec![revoked, Status::Unknown]),
        ];
        for (der, statuses) in cases {
            let req = parse_request(&der).unwrap();
            let answer = respond(
                &issuer,
                &ca.key,
                &req,
                &statuses,
                now,
                Duration::from_secs(60),
            )
            .unwrap();
            let (_, basic) = decoded_as_x509_ocsp_encodes(&answer);
            let data = &basic.tbs_response_data;
            assert_eq!(data.responses.len(), statuses.len());
            assert_eq!(data.response_extensions.is_some(), req.nonce().is_some());
            for (single, q) in data.responses.iter().zip(&req.queries) {
                assert_eq!(single.cert_id, q.id);
            }
        }
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in [&b""[..], b"\x30\x00", b"hello", &[0x30, 0x82, 0xff, 0xff]] {
            assert!(parse_request(bad).is_err(), "{bad:?}");
        }
        let answer = OcspResponse::from_der(&malformed_request()).unwrap();
        assert_eq!(
            answer.response_status,
            x509_ocsp::OcspResponseStatus::MalformedRequest
        );
        assert!(answer.response_bytes.is_none());
    }

    #[test]
    fn responses_carry_status_nonce_and_a_signature_that_verifies() {
        for kt in [KeyType::EcP256, KeyType::EcP384, KeyType::Ed25519] {
            let ca = root(kt);
            let issuer = Issuer::new(&ca.cert_der).unwrap();
            let req = parse_request(&request(&ca.cert_der, OID_SHA1, &[7], true)).unwrap();
            let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            let revoked = Status::Revoked {
                at: now - time::Duration::hours(1),
                reason: Reason::KeyCompromise,
            };
            for status in [Status::Good, revoked, Status::Unknown] {
                let der = respond(
                    &issuer,
                    &ca.key,
                    &req,
                    &[status],
                    now,
                    Duration::from_secs(3600),
                )
                .unwrap();
                let (resp, basic) = decoded_as_x509_ocsp_encodes(&der);
                assert_eq!(resp.to_der().unwrap(), der);
                // No certificate embedded: Go's x/crypto/ocsp would refuse an intermediate's.
                assert!(basic.certs.is_none());
                assert_eq!(
                    basic.tbs_response_data.responder_id,
                    ResponderId::ByKey(
                        OctetString::new(digest(&OID_SHA1, &name_and_key(&ca.cert_der).1).unwrap())
                            .unwrap()
                    )
                );
                let single = &basic.tbs_response_data.responses[0];
                match (status, single.cert_status) {
                    (Status::Good, CertStatus::Good(_))
                    | (Status::Unknown, CertStatus::Unknown(_)) => {}
                    (Status::Revoked { .. }, CertStatus::Revoked(info)) => {
                        assert_eq!(info.revocation_reason, Some(CrlReason::KeyCompromise));
                    }
                    other => panic!("{other:?}"),
                }
                assert_eq!(basic.nonce().unwrap().0.as_bytes(), &[1, 2, 3, 4][..]);
                assert!(single.next_update.is_some());
                // Verified by an implementation we did not write: x509-parser's verifier.
                let tbs = basic.tbs_response_data.to_der().unwrap();
                let (_, cert) = X509Certificate::from_der(&ca.cert_der).unwrap();
                let alg: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match kt {
                    KeyType::EcP256 => &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
                    KeyType::EcP384 => &aws_lc_rs::signature::ECDSA_P384_SHA384_ASN1,
                    _ => &aws_lc_rs::signature::ED25519,
                };
                let pk = aws_lc_rs::signature::UnparsedPublicKey::new(
                    alg,
                    cert.public_key().subject_public_key.data.as_ref(),
                );
                pk.verify(&tbs, basic.signature.raw_bytes()).unwrap();
            }
        }
    }
}
