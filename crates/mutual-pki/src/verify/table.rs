//! Verification as a table: the story's PKI and the odd certificates and CRLs the cases need,
//! built once per table; a case is a chain, a CA file and what must come out.

use ::time::{Duration, OffsetDateTime};
use rcgen::{
    CrlDistributionPoint, ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose, RevocationReason,
    SanType,
};

use super::test_pki::*;
use super::{verify, Verified, VerifyInput};
use crate::diagnosis::{Diagnosis, Purpose};

/// An RSA 1024 public key (`openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024`);
/// aws-lc-rs will not generate one, and only the public half is needed to issue for it.
pub const RSA_1024_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDcyBWA9XMtxCzZvo/FEBkqVDlE
WhpQT7/3CvnMHKsrEoBexTtAtLOcBswdZ62RlklmlR0cdRqMobKuloBmiII/Ej64
LEiFvh+WiqTS+NfI5IaRC6jod49NTaOy8PROsSjuoiDSNqoGmMUTEnpiV81bvvb9
2S3rCFq+2wnHzfR8ZwIDAQAB
-----END PUBLIC KEY-----
";

/// A CA and a leaf it signed with ecdsa-with-SHA1 (made with openssl, valid 2026–2126);
/// rcgen cannot sign with SHA-1.
pub const SHA1_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBmTCCAT+gAwIBAgIUcS+9typ8Ukg6Zkt8WUn95wYb+8YwCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwOTGVnYWN5IFNIQTEgQ0EwIBcNMjYxMTI1MDgxODAxWhgPMjEy
NjExMDEwODE4MDFaMBkxFzAVBgNVBAMMDkxlZ2FjeSBTSEExIENBMFkwEwYHKoZI
zj0CAQYIKoZIzj0DAQcDQgAEi9jei90G5YCFXxBR+DDdSoLP91O81YGQVre1VeRp
nMy9rTzLFs3RiXhBwsTuVtihT9s+PQM4JWBZc0AlfKIyfKNjMGEwHwYDVR0jBBgw
FoAUZjbpRKhoXMKpPhEKJvCVRXMxtTcwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8B
Af8EBAMCAQYwHQYDVR0OBBYEFGY26USoaFzCqT4RCibwlUVzMbU3MAoGCCqGSM49
BAMCA0gAMEUCIE928taeVEsRQicYXYxElVQu9xPRBv/Djz4mpHFc0AZoAiEAw704
mo0kteCKTQFrYsS21SQIAHNBVKa1d5MudC474CQ=
-----END CERTIFICATE-----
";
pub const SHA1_LEAF: &str = "-----BEGIN CERTIFICATE-----
MIIB1zCCAX+gAwIBAgIUF7IP/m6teRummmbwAdGp34bPGMMwCQYHKoZIzj0EATAZ
MRcwFQYDVQQDDA5MZWdhY3kgU0hBMSBDQTAgFw0yNjExMjUwODE4MDFaGA8yMTI2
MTEwMTA4MTgwMVowHTEbMBkGA1UEAwwSbGVnYWN5LmV4YW1wbGUuY29tMFkwEwYH
KoZIzj0CAQYIKoZIzj0DAQcDQgAEVC1zKo2FqoWwDp6plT/eAYyhWzq7LW6TGPmh
mcY8CYJZHv/nxKv1d8rtFpGaKMJjqUFqZ2vUvDR8QQs7P1XhdKOBnzCBnDAMBgNV
HRMBAf8EAjAAMA4GA1UdDwEB/wQEAwIHgDAdBgNVHSUEFjAUBggrBgEFBQcDAgYI
KwYBBQUHAwEwHQYDVR0RBBYwFIISbGVnYWN5LmV4YW1wbGUuY29tMB8GA1UdIwQY
MBaAFGY26USoaFzCqT4RCibwlUVzMbU3MB0GA1UdDgQWBBQnCM7ETC+88RWH19Z3
0HX8SnFjEzAJBgcqhkjOPQQBA0cAMEQCICqqPRANeMwIARzvD54N50XNtKxSsbHE
8Yqo1GGQK9gGAiAbm2Dzty4hfgmlR9Jr1eSFH84poe8ton4Q2z+/xU+r/A==
-----END CERTIFICATE-----
";

pub fn der(pem: &str) -> Vec<u8> {
    crate::cert::pem_certs(pem.as_bytes()).unwrap().remove(0)
}

pub struct Case {
    name: &'static str,
    chain: Vec<Vec<u8>>,
    trusted: Vec<Vec<u8>>,
    purpose: Option<Purpose>,
    host: Option<&'static str>,
    crls: Vec<Vec<u8>>,
    now: OffsetDateTime,
    /// `Ok` or the expected diagnosis code, and a subject the diagnosis must name.
    want: Result<(), (&'static str, &'static str)>,
}

pub fn case(name: &'static str, chain: Vec<Vec<u8>>, trusted: Vec<Vec<u8>>) -> Case {
    Case {
        name,
        chain,
        trusted,
        purpose: Some(Purpose::Client),
        host: None,
        crls: vec![],
        now: NOW,
        want: Ok(()),
    }
}

impl Case {
    pub fn purpose(mut self, p: Option<Purpose>) -> Self {
        self.purpose = p;
        self
    }
    pub fn host(mut self, h: &'static str) -> Self {
        self.host = Some(h);
        self
    }
    pub fn crls(mut self, c: Vec<Vec<u8>>) -> Self {
        self.crls = c;
        self
    }
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }
    pub fn fails(mut self, code: &'static str, naming: &'static str) -> Self {
        self.want = Err((code, naming));
        self
    }
    pub fn run(&self) -> Result<Verified, Diagnosis> {
        verify(&VerifyInput {
            chain: &self.chain,
            trusted: &self.trusted,
            purpose: self.purpose,
            name: self.host,
            crls: &self.crls,
            now: self.now,
        })
    }
}

/// The story's certificates and everything odd the tables refer to.
pub struct Story {
    pub root: Made,
    pub alice_int: Made,
    pub bob_int: Made,
    pub alice: Made,
    pub bob: Made,
    pub www: Made,
    pub expired: Made,
    pub future: Made,
    pub both: Made,
    pub no_eku: Made,
    pub any_eku: Made,
    pub enc_only: Made,
    pub wildcard: Made,
    pub forged_alice: Vec<u8>,
    pub weak: Vec<u8>,
    pub mallory: Made,
    pub sub_int: Made,
    pub deep: Made,
    pub bare_root: Made,
    pub bare_leaf: Made,
    pub expired_root: Made,
    pub under_expired: Made,
    pub other_root: Made,
    pub with_dp: Made,
    pub alice_crl: Vec<u8>,
    pub root_crl: Vec<u8>,
    pub alice_revoked: Vec<u8>,
    pub alice_stale: Vec<u8>,
    pub bob_crl_for_alice: Vec<u8>,
    pub forged_crl: Vec<u8>,
    pub no_crl_sign: Made,
    pub under_no_crl_sign: Made,
    pub no_crl_sign_crl: Vec<u8>,
    pub alice_int_revoked: Vec<u8>,
}

/// `days` after [`NOW`].
pub fn later(days: i64) -> OffsetDateTime {
    NOW + Duration::days(days)
}

/// The DER of a certificate made for the tables.
pub fn a(m: &Made) -> Vec<u8> {
    m.der.clone()
}

impl Story {
    pub fn new() -> Story {
        let pki = Pki::new();
        let Pki {
            root,
            alice_int,
            bob_int,
            alice,
            ..
        } = &pki;

        let mut p = leaf_params("old.example.com", &[Eku::ClientAuth]);
        p.not_before = NOW - Duration::days(60);
        p.not_after = NOW - Duration::days(3);
        let expired = signed(p, alice_int);

        let mut p = leaf_params("future.example.com", &[Eku::ClientAuth]);
        p.not_before = NOW + Duration::hours(5);
        let future = signed(p, alice_int);

        let both = signed(
            leaf_params("both.example.com", &[Eku::ServerAuth, Eku::ClientAuth]),
            alice_int,
        );
        let no_eku = signed(leaf_params("plain.example.com", &[]), alice_int);
        let any_eku = signed(leaf_params("any.example.com", &[Eku::Any]), alice_int);
        let mut p = leaf_params("enc.example.com", &[Eku::ClientAuth]);
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        let enc_only = signed(p, alice_int);

        let mut p = leaf_params("wild.example.com", &[Eku::ServerAuth]);
        p.subject_alt_names = vec![SanType::DnsName("*.example.com".try_into().unwrap())];
        let wildcard = signed(p, root);

        let forged_alice = forged(
            leaf_params("alice.example.com", &[Eku::ClientAuth]),
            alice_int,
        );

        let weak = signed_for(
            leaf_params("weak.example.com", &[Eku::ClientAuth]),
            &rcgen::SubjectPublicKeyInfo::from_pem(RSA_1024_PUBLIC).unwrap(),
            alice_int,
        );

        let mallory = signed(
            leaf_params("mallory.example.com", &[Eku::ClientAuth]),
            alice,
        );

        let sub_int = signed(ca_params("Alice Sub Authority", None), alice_int);
        let deep = signed(
            leaf_params("deep.example.com", &[Eku::ClientAuth]),
            &sub_int,
        );

        let mut p = ca_params("Bare Root", None);
        p.key_usages = vec![];
        let bare_root = make_root(p);
        let bare_leaf = signed(
            leaf_params("bare.example.com", &[Eku::ClientAuth]),
            &bare_root,
        );

        let mut p = ca_params("Expired Root", None);
        p.not_after = NOW - Duration::days(1);
        let expired_root = make_root(p);
        let under_expired = signed(
            leaf_params("orphan.example.com", &[Eku::ClientAuth]),
            &expired_root,
        );

        let other_root = make_root(ca_params("Other Root", None));

        let mut p = leaf_params("dp.example.com", &[Eku::ClientAuth]);
        p.crl_distribution_points = vec![CrlDistributionPoint {
            uris: vec!["http://127.0.0.1:8200/v1/pki/crl".into()],
        }];
        let with_dp = signed(p, alice_int);

        let alice_crl = crl(alice_int, &[], NOW - Duration::days(1), later(7));
        let root_crl = crl(root, &[], NOW - Duration::days(1), later(7));
        let alice_revoked = crl(
            alice_int,
            &[(alice, Some(RevocationReason::KeyCompromise))],
            NOW - Duration::days(1),
            later(7),
        );
        let alice_stale = crl(
            alice_int,
            &[],
            NOW - Duration::days(10),
            NOW - Duration::days(3),
        );
        let bob_crl_for_alice = {
            // Bob's CRL, not Alice's: does not cover alice
            crl(bob_int, &[(alice, None)], NOW - Duration::days(1), later(7))
        };
        let forged_crl = {
            let kid =
                rcgen::KeyIdMethod::PreSpecified(alice_int.params.key_identifier(&alice_int.key));
            let mut impostor = alice_int.params.clone();
            impostor.key_identifier_method = kid.clone();
            let wrong_key = rcgen::KeyPair::generate().unwrap();
            crl_by(
                &rcgen::Issuer::new(impostor, &wrong_key),
                kid,
                &[],
                NOW - Duration::days(1),
                later(7),
            )
        };
        let mut p = ca_params("No CRL Signing Authority", Some(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let no_crl_sign = signed(p, root);
        let under_no_crl_sign = signed(
            leaf_params("nocrl.example.com", &[Eku::ClientAuth]),
            &no_crl_sign,
        );
        let no_crl_sign_crl = {
            let mut params = no_crl_sign.params.clone();
            params.key_usages.push(KeyUsagePurpose::CrlSign);
            crl_by(
                &rcgen::Issuer::new(params, &no_crl_sign.key),
                rcgen::KeyIdMethod::Sha256,
                &[],
                NOW - Duration::days(1),
                later(7),
            )
        };
        let alice_int_revoked = crl(
            root,
            &[(alice_int, Some(RevocationReason::CaCompromise))],
            NOW - Duration::days(1),
            later(7),
        );

        let Pki {
            root,
            alice_int,
            bob_int,
            alice,
            bob,
            www,
        } = pki;
        Story {
            root,
            alice_int,
            bob_int,
            alice,
            bob,
            www,
            expired,
            future,
            both,
            no_eku,
            any_eku,
            enc_only,
            wildcard,
            forged_alice,
            weak,
            mallory,
            sub_int,
            deep,
            bare_root,
            bare_leaf,
            expired_root,
            under_expired,
            other_root,
            with_dp,
            alice_crl,
            root_crl,
            alice_revoked,
            alice_stale,
            bob_crl_for_alice,
            forged_crl,
            no_crl_sign,
            under_no_crl_sign,
            no_crl_sign_crl,
            alice_int_revoked,
        }
    }
}

/// Runs a table: an accepted chain ends at a trusted certificate, a refused one has the code
/// and names the subject wanted.
pub fn run(cases: &[Case]) {
    for c in cases {
        let got = c.run();
        match (&c.want, got) {
            (Ok(()), Ok(v)) => {
                assert_eq!(v.path()[0], c.chain[0], "{}", c.name);
                assert!(
                    c.trusted.contains(&v.path()[v.path().len() - 1]),
                    "{}",
                    c.name
                );
            }
            (Ok(()), Err(d)) => panic!("{}: refused: {d}", c.name),
            (Err((code, _)), Ok(_)) => panic!("{}: accepted, wanted {code}", c.name),
            (Err((code, naming)), Err(d)) => {
                assert_eq!(d.code(), *code, "{}: {d}", c.name);
                assert!(d.to_string().contains(naming), "{}: {d}", c.name);
            }
        }
    }
}
