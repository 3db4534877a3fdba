//! The story's PKI, built with rcgen for tests: a root, the Alice and Bob intermediates, and
//! leaves under them.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PublicKeyData,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The time every test checks at.
pub const NOW: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

/// A certificate with what it takes to issue from it.
pub struct Made {
    pub der: Vec<u8>,
    pub params: CertificateParams,
    pub key: KeyPair,
}

impl Made {
    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

pub struct Pki {
    pub root: Made,
    pub alice_int: Made,
    pub bob_int: Made,
    pub alice: Made,
    pub bob: Made,
    pub www: Made,
}

pub fn ca_params(cn: &str, path_len: Option<u8>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = NOW - Duration::days(365);
    p.not_after = NOW + Duration::days(365);
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(SerialNumber::from(rand_serial()));
    p
}

pub fn leaf_params(cn: &str, eku: &[ExtendedKeyUsagePurpose]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = vec![SanType::DnsName(cn.try_into().unwrap())];
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = eku.to_vec();
    p.not_before = NOW - Duration::days(30);
    p.not_after = NOW + Duration::days(30);
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(SerialNumber::from(rand_serial()));
    p
}

fn rand_serial() -> u64 {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u64::from_be_bytes(b) >> 1
}

pub fn make_root(params: CertificateParams) -> Made {
    let key = KeyPair::generate().unwrap();
    let der = params.self_signed(&key).unwrap().der().to_vec();
    Made { der, params, key }
}

pub fn signed(params: CertificateParams, by: &Made) -> Made {
    let key = KeyPair::generate().unwrap();
    let der = params.signed_by(&key, &by.issuer()).unwrap().der().to_vec();
    Made { der, params, key }
}

/// A certificate for someone else's public key (one we cannot generate, e.g. RSA 1024).
pub fn signed_for(params: CertificateParams, public: &impl PublicKeyData, by: &Made) -> Vec<u8> {
    params
        .signed_by(public, &by.issuer())
        .unwrap()
        .der()
        .to_vec()
}

/// A certificate that names `by` as issuer (same name, same key identifier) but is signed
/// with another key.
pub fn forged(params: CertificateParams, by: &Made) -> Vec<u8> {
    let mut impostor = by.params.clone();
    impostor.key_identifier_method = KeyIdMethod::PreSpecified(by.params.key_identifier(&by.key));
    let wrong_key = KeyPair::generate().unwrap();
    let key = KeyPair::generate().unwrap();
    params
        .signed_by(&key, &Issuer::new(impostor, &wrong_key))
        .unwrap()
        .der()
        .to_vec()
}

pub fn crl(
    by: &Made,
    revoked: &[(&Made, Option<RevocationReason>)],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Vec<u8> {
    crl_by(
        &by.issuer(),
        KeyIdMethod::Sha256,
        revoked,
        this_update,
        next_update,
    )
}

/// A CRL signed by any issuer, e.g. one that only pretends to be the CA.
pub fn crl_by(
    issuer: &Issuer<'_, impl rcgen::SigningKey>,
    key_identifier_method: KeyIdMethod,
    revoked: &[(&Made, Option<RevocationReason>)],
    this_update: OffsetDateTime,
    next_update: OffsetDateTime,
) -> Vec<u8> {
    let params = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|(m, reason)| RevokedCertParams {
                serial_number: m.params.serial_number.clone().unwrap(),
                revocation_time: NOW - Duration::days(2),
                reason_code: *reason,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method,
    };
    params.signed_by(issuer).unwrap().der().to_vec()
}

impl Pki {
    pub fn new() -> Pki {
        use ExtendedKeyUsagePurpose::{ClientAuth, ServerAuth};
        let root = make_root(ca_params("Local Root CA", None));
        let alice_int = signed(ca_params("Alice Intermediate Authority", Some(0)), &root);
        let bob_int = signed(ca_params("Bob Intermediate Authority", Some(0)), &root);
        let alice = signed(leaf_params("alice.example.com", &[ClientAuth]), &alice_int);
        let bob = signed(leaf_params("bob.example.com", &[ClientAuth]), &bob_int);
        let mut www = leaf_params("www.example.com", &[ServerAuth]);
        www.subject_alt_names
            .push(SanType::DnsName("localhost".try_into().unwrap()));
        www.subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let www = signed(www, &root);
        Pki {
            root,
            alice_int,
            bob_int,
            alice,
            bob,
            www,
        }
    }
}
