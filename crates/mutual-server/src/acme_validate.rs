//! Validation of ACME challenges: `http-01` and `tls-alpn-01` by connecting to the name,
//! `dns-01` by a TXT lookup, names resolved through `config/acme`'s `dns_resolver` (or the
//! system's). Each validation runs in the background with a timeout per attempt, a few
//! attempts, a bound on how many run at once, and never connects to an excluded address.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use mutual_acme::{Identifier, Jwk, Problem, ProblemType, PublicKey};
use mutual_auth::approle::{parse_cidrs, Cidr};
use tokio::net::TcpStream;

use crate::state::App;

/// The addresses never validated unless the operator says otherwise: "this network", link-local
/// (cloud metadata services live there), multicast and broadcast. Loopback and private
/// networks are not excluded: a private CA validates private hosts.
pub const DEFAULT_EXCLUDE: &str =
    "0.0.0.0/8,169.254.0.0/16,224.0.0.0/4,255.255.255.255/32,::/128,fe80::/10,ff00::/8";

/// How the server validates challenges, and how many requests an account may make
/// (`mutual server --acme-*`).
#[derive(Debug, Clone)]
pub struct AcmeValidation {
    /// Port http-01 connects to (80; Pebble's `-httpPort` for tests).
    pub http_port: u16,
    /// Port tls-alpn-01 connects to (443).
    pub tls_port: u16,
    /// Addresses never connected to.
    pub exclude: Vec<Cidr>,
    /// Time allowed for one attempt.
    pub timeout: Duration,
    /// Attempts before a challenge is invalid.
    pub attempts: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
    /// Validations running at once.
    pub concurrency: usize,
    /// Requests per account per minute (`rateLimited` beyond); 0: no limit.
    pub rate_limit: u32,
}

impl Default for AcmeValidation {
    fn default() -> Self {
        AcmeValidation {
            http_port: 80,
            tls_port: 443,
            exclude: AcmeValidation::parse_exclude(DEFAULT_EXCLUDE).unwrap_or_default(),
            timeout: Duration::from_secs(10),
            attempts: 3,
            retry_delay: Duration::from_secs(2),
            concurrency: 32,
            rate_limit: 300,
        }
    }
}

impl AcmeValidation {
    /// Parses a comma-separated list of CIDR blocks (empty: none).
    pub fn parse_exclude(list: &str) -> Result<Vec<Cidr>, String> {
        let items: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        parse_cidrs(&items).map_err(|e| e.0)
    }
}

/// The validator's settings, its concurrency bound and its counters.
#[derive(Debug)]
pub(crate) struct Validation {
    options: RwLock<AcmeValidation>,
    slots: RwLock<Arc<tokio::sync::Semaphore>>,
    passed: AtomicU64,
    failed: AtomicU64,
}

impl Default for Validation {
    fn default() -> Self {
        let o = AcmeValidation::default();
        Validation {
            slots: RwLock::new(Arc::new(tokio::sync::Semaphore::new(o.concurrency))),
            options: RwLock::new(o),
            passed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }
}

impl Validation {
    pub(crate) fn prometheus(&self) -> String {
        format!(
            "# HELP mutual_acme_validations_total ACME challenge validations, by result.\n\
             # TYPE mutual_acme_validations_total counter\n\
             mutual_acme_validations_total{{result=\"valid\"}} {}\n\
             mutual_acme_validations_total{{result=\"invalid\"}} {}\n",
            self.passed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        )
    }

    fn options(&self) -> AcmeValidation {
        self.options
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl App {
    /// Sets how ACME challenges are validated (ports, excluded addresses, timeouts).
    pub fn set_acme_validation(&self, o: AcmeValidation) {
        let v = &self.acme.validation;
        *v.slots.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(tokio::sync::Semaphore::new(o.concurrency.max(1)));
        self.acme.set_rate_limit(o.rate_limit);
        *v.options.write().unwrap_or_else(|e| e.into_inner()) = o;
    }
}

/// One challenge to validate.
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub mount: String,
    pub authz: String,
    pub kind: String,
    pub identifier: Identifier,
    pub key_authorization: String,
    /// `config/acme`'s dns_resolver (`ip:port`), empty for the system's.
    pub resolver: String,
}

/// Validates `job` in the background and records the outcome on its authorization.
pub(crate) fn spawn(app: Arc<App>, job: Job) {
    tokio::spawn(async move {
        let v = &app.acme.validation;
        let slots = v.slots.read().unwrap_or_else(|e| e.into_inner()).clone();
        let _slot = slots.acquire_owned().await;
        let o = v.options();
        let mut outcome = Err(Problem::new(
            ProblemType::ServerInternal,
            "no attempt was made",
        ));
        for attempt in 1..=o.attempts.max(1) {
            outcome = match tokio::time::timeout(o.timeout, once(&job, &o)).await {
                Ok(r) => r,
                Err(_) => Err(Problem::new(
                    ProblemType::Connection,
                    format!(
                        "{} of \"{}\": no answer within {}s",
                        job.kind,
                        job.identifier.value,
                        o.timeout.as_secs_f32()
                    ),
                )),
            };
            // An excluded address does not become allowed by asking again.
            let final_ = outcome
                .as_ref()
                .err()
                .is_some_and(|p| p.kind() == ProblemType::RejectedIdentifier);
            if outcome.is_ok() || final_ || attempt == o.attempts {
                break;
            }
            tokio::time::sleep(o.retry_delay).await;
        }
        match &outcome {
            Ok(()) => {
                v.passed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(mount = %job.mount, authz = %job.authz, challenge = %job.kind, identifier = %job.identifier.value, decision = "valid", "acme validation");
            }
            Err(p) => {
                v.failed.fetch_add(1, Ordering::Relaxed);
                tracing::info!(mount = %job.mount, authz = %job.authz, challenge = %job.kind, identifier = %job.identifier.value, decision = "invalid", problem = p.kind().code(), reason = %p.detail, "acme validation");
            }
        }
        crate::acme_order::record_validation(&app, &job, outcome).await;
    });
}

fn resolver(addr: &str) -> Result<hickory_resolver::TokioResolver, Problem> {
    use hickory_resolver::{
        config::{NameServerConfigGroup, ResolverConfig},
        name_server::TokioConnectionProvider,
        Resolver,
    };
    if addr.is_empty() {
        return Resolver::builder_tokio().map(|b| b.build()).map_err(|e| {
            Problem::new(
                ProblemType::Dns,
                format!("the system's DNS configuration: {e}"),
            )
        });
    }
    let sa: SocketAddr = addr.parse().map_err(|_| {
        Problem::new(
            ProblemType::Dns,
            format!("dns_resolver \"{addr}\" is not ip:port"),
        )
    })?;
    let group = NameServerConfigGroup::from_ips_clear(&[sa.ip()], sa.port(), true);
    let mut b = Resolver::builder_with_config(
        ResolverConfig::from_parts(None, vec![], group),
        TokioConnectionProvider::default(),
    );
    b.options_mut().attempts = 1;
    b.options_mut().cache_size = 0;
    Ok(b.build())
}

/// The addresses to connect to for `id`, the excluded ones removed.
async fn addresses(job: &Job, o: &AcmeValidation) -> Result<Vec<IpAddr>, Problem> {
    let name = &job.identifier.value;
    let found: Vec<IpAddr> = if job.identifier.kind == "ip" {
        name.parse::<IpAddr>().into_iter().collect()
    } else if job.resolver.is_empty() {
        tokio::net::lookup_host((name.as_str(), 0))
            .await
            .map_err(|e| {
                Problem::new(
                    ProblemType::Dns,
                    format!("resolving \"{name}\" failed: {e}"),
                )
            })?
            .map(|a| a.ip())
            .collect()
    } else {
        resolver(&job.resolver)?
            .lookup_ip(format!("{name}."))
            .await
            .map_err(|e| {
                Problem::new(
                    ProblemType::Dns,
                    format!("resolving \"{name}\" through {} failed: {e}", job.resolver),
                )
            })?
            .iter()
            .collect()
    };
    if found.is_empty() {
        return Err(Problem::new(
            ProblemType::Dns,
            format!("\"{name}\" has no address"),
        ));
    }
    let allowed: Vec<IpAddr> = found
        .iter()
        .copied()
        .filter(|ip| !o.exclude.iter().any(|c| c.contains(*ip)))
        .collect();
    if allowed.is_empty() {
        let list = found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Problem::new(
            ProblemType::RejectedIdentifier,
            format!("\"{name}\" resolves only to addresses excluded from validation ({list}); the server's --acme-exclude lists them"),
        ));
    }
    Ok(allowed)
}

async fn once(job: &Job, o: &AcmeValidation) -> Result<(), Problem> {
    if job.kind == "dns-01" {
        return dns01(job).await;
    }
    let port = if job.kind == "http-01" {
        o.http_port
    } else {
        o.tls_port
    };
    let mut last = None;
    for ip in addresses(job, o).await? {
        let addr = SocketAddr::new(ip, port);
        let r = match job.kind.as_str() {
            "http-01" => http01(job, addr).await,
            "tls-alpn-01" => tls_alpn01(job, addr).await,
            other => Err(Problem::malformed(format!(
                "unknown challenge type {other}"
            ))),
        };
        match r {
            Ok(()) => return Ok(()),
            Err(p) => last = Some(p),
        }
    }
    Err(last.unwrap_or_else(|| Problem::new(ProblemType::Connection, "no address to connect to")))
}

async fn connect(job: &Job, addr: SocketAddr) -> Result<TcpStream, Problem> {
    TcpStream::connect(addr).await.map_err(|e| {
        Problem::new(
            ProblemType::Connection,
            format!(
                "{} of \"{}\": connecting to {addr} failed: {e}",
                job.kind, job.identifier.value
            ),
        )
    })
}

async fn http01(job: &Job, addr: SocketAddr) -> Result<(), Problem> {
    let token = job.key_authorization.split('.').next().unwrap_or_default();
    let name = &job.identifier.value;
    let conn_err = |e: &dyn std::fmt::Display| {
        Problem::new(
            ProblemType::Connection,
            format!("http-01 of \"{name}\": {addr}: {e}"),
        )
    };
    let tcp = connect(job, addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| conn_err(&e))?;
    tokio::spawn(conn);
    let host = if addr.port() == 80 {
        name.clone()
    } else {
        format!("{name}:{}", addr.port())
    };
    let host = if job.identifier.kind == "ip" && name.contains(':') {
        format!("[{name}]:{}", addr.port())
    } else {
        host
    };
    let req = hyper::Request::get(format!("/.well-known/acme-challenge/{token}"))
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "mutual-acme-validator")
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| conn_err(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| conn_err(&e))?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), 4096)
        .collect()
        .await
        .map_err(|e| conn_err(&e))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    let got = text.trim_end();
    if status != hyper::StatusCode::OK {
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!(
                "http-01 of \"{name}\": {addr} answered HTTP {} for token {token}",
                status.as_u16()
            ),
        ));
    }
    if got != job.key_authorization {
        let shown: String = got.chars().take(100).collect();
        return Err(Problem::new(
            ProblemType::IncorrectResponse,
            format!("http-01 of \"{name}\": {addr} answered \"{shown}\" for token {token}; the key authorization \"{}\" was expected", job.key_authorization),
        ));
    }
    Ok(())
}

/// tls-alpn-01's certificate is self-signed by design and chains to nothing: the proof is its
/// acmeIdentifier extension, checked after the handshake. Handshake signatures are verified
/// here with the certificate's key, because webpki refuses to parse a certificate with the
/// critical acmeIdentifier extension it does not know.
#[derive(Debug)]
struct AnyCertificate;

const SCHEMES: &[rustls::SignatureScheme] = &[
    rustls::SignatureScheme::ECDSA_NISTP256_SHA256,
    rustls::SignatureScheme::ECDSA_NISTP384_SHA384,
    rustls::SignatureScheme::ED25519,
    rustls::SignatureScheme::RSA_PSS_SHA256,
    rustls::SignatureScheme::RSA_PSS_SHA384,
    rustls::SignatureScheme::RSA_PKCS1_SHA256,
    rustls::SignatureScheme::RSA_PKCS1_SHA384,
];

fn handshake_signature(
    message: &[u8],
    cert: &rustls_pki_types::CertificateDer<'_>,
    dss: &rustls::DigitallySignedStruct,
) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
    use aws_lc_rs::signature as sig;
    use rustls::SignatureScheme as S;
    use x509_parser::prelude::*;
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    let (_, parsed) = X509Certificate::from_der(cert.as_ref()).map_err(|_| bad())?;
    let key = parsed.public_key().subject_public_key.data.as_ref();
    let alg: &dyn sig::VerificationAlgorithm = match dss.scheme {
        S::ECDSA_NISTP256_SHA256 => &sig::ECDSA_P256_SHA256_ASN1,
        S::ECDSA_NISTP384_SHA384 => &sig::ECDSA_P384_SHA384_ASN1,
        S::ED25519 => &sig::ED25519,
        S::RSA_PSS_SHA256 => &sig::RSA_PSS_2048_8192_SHA256,
        S::RSA_PSS_SHA384 => &sig::RSA_PSS_2048_8192_SHA384,
        S::RSA_PKCS1_SHA256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        S::RSA_PKCS1_SHA384 => &sig::RSA_PKCS1_2048_8192_SHA384,
        _ => return Err(bad()),
    };
    sig::UnparsedPublicKey::new(alg, key)
        .verify(message, dss.signature())
        .map(|_| rustls::client::danger::HandshakeSignatureValid::assertion())
        .map_err(|_| bad())
}

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls_pki_types::CertificateDer<'_>,
        _: &[rustls_pki_types::CertificateDer<'_>],
        _: &rustls_pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        handshake_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        SCHEMES.to_vec()
    }
}

/// The acmeIdentifier extension (RFC 8737 §3).
const ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

/// RFC 8738 §6: the SNI of an IP identifier is its reverse-mapping name.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::new();
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s + "ip6.arpa"
        }
    }
}

async fn tls_alpn01(job: &Job, addr: SocketAddr) -> Result<(), Problem> {
    let name = &job.identifier.value;
    let tls_err = |d: String| {
        Problem::new(
            ProblemType::Tls,
            format!("tls-alpn-01 of \"{name}\": {addr}: {d}"),
        )
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let ip = name.parse::<IpAddr>().ok();
    let sni = match ip {
        Some(ip) => reverse_name(ip),
        None => name.clone(),
    };
    let server_name =
        rustls_pki_types::ServerName::try_from(sni).map_err(|e| tls_err(e.to_string()))?;
    let tcp = connect(job, addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| tls_err(format!("handshake failed: {e}")))?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(b"acme-tls/1".as_slice()) {
        return Err(tls_err(
            "the server did not negotiate ALPN acme-tls/1".into(),
        ));
    }
    let der = session
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or_else(|| tls_err("no certificate was presented".into()))?
        .to_vec();
    check_alpn_certificate(
        &der,
        name,
        ip,
        &mutual_acme::tls_alpn01_digest(&job.key_authorization),
    )
    .map_err(|d| {
        Problem::new(
            ProblemType::IncorrectResponse,
            format!("tls-alpn-01 of \"{name}\": {addr}: {d}"),
        )
    })
}

/// The tls-alpn-01 certificate's checks: exactly the identifier as its SAN, and a critical
/// acmeIdentifier extension holding the digest of the key authorization.
fn check_alpn_certificate(
    der: &[u8],
    name: &str,
    ip: Option<IpAddr>,
    digest: &[u8],
) -> Result<(), String> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|s| {
            s.value
                .general_names
                .iter()
                .map(|g| match g {
                    GeneralName::DNSName(d) => d.to_ascii_lowercase(),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default()).to_string(),
                        16 => {
                            IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default()).to_string()
                        }
                        _ => String::new(),
                    },
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .unwrap_or_default();
    let want = ip
        .map(|i| i.to_string())
        .unwrap_or_else(|| name.to_string());
    if sans != [want.clone()] {
        return Err(format!(
            "the certificate's names are [{}]; exactly \"{want}\" was expected",
            sans.join(", ")
        ));
    }
    let ext = cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == ACME_IDENTIFIER)
        .ok_or("the certificate has no acmeIdentifier extension")?;
    if !ext.critical {
        return Err("the acmeIdentifier extension is not critical".into());
    }
    // Its value is an OCTET STRING of the 32-byte SHA-256 digest.
    let mut want_value = vec![0x04, 0x20];
    want_value.extend_from_slice(digest);
    if ext.value != want_value.as_slice() {
        return Err(
            "the acmeIdentifier extension does not hold the key authorization's digest".into(),
        );
    }
    Ok(())
}

async fn dns01(job: &Job) -> Result<(), Problem> {
    let name = job.identifier.value.trim_start_matches("*.");
    let record = format!("_acme-challenge.{name}.");
    let want = mutual_acme::dns01_txt(&job.key_authorization);
    let found = resolver(&job.resolver)?
        .txt_lookup(record.clone())
        .await
        .map_err(|e| {
            Problem::new(
                ProblemType::Dns,
                format!("dns-01 of \"{name}\": no TXT record at {record}: {e}"),
            )
        })?;
    let values: Vec<String> = found
        .iter()
        .map(|txt| {
            txt.txt_data()
                .iter()
                .map(|d| String::from_utf8_lossy(d).into_owned())
                .collect::<String>()
        })
        .collect();
    if values.contains(&want) {
        return Ok(());
    }
    Err(Problem::new(
        ProblemType::IncorrectResponse,
        format!(
            "dns-01 of \"{name}\": the TXT records at {record} are [{}]; \"{want}\" was expected",
            values.join(", ")
        ),
    ))
}

/// True when `jwk` is the public key of the certificate `der` (revocation by certificate key).
pub(crate) fn key_matches_cert(jwk: &Jwk, der: &[u8]) -> bool {
    use x509_parser::{prelude::*, public_key::PublicKey as Pk};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return false;
    };
    let spki = cert.public_key();
    let strip = |b: &[u8]| {
        b.iter()
            .skip_while(|&&x| x == 0)
            .copied()
            .collect::<Vec<u8>>()
    };
    match (jwk.public_key(), spki.parsed()) {
        (Ok(PublicKey::P256(p) | PublicKey::P384(p)), Ok(Pk::EC(point))) => {
            point.data() == p.as_slice()
        }
        (Ok(PublicKey::Rsa { n, e }), Ok(Pk::RSA(rsa))) => {
            strip(rsa.modulus) == n && strip(rsa.exponent) == e
        }
        (Ok(PublicKey::Ed25519(x)), _) => {
            spki.algorithm.algorithm.to_id_string() == "1.3.101.112"
                && spki.subject_public_key.data.as_ref() == x.as_slice()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_and_exclusions() {
        assert_eq!(
            reverse_name("127.0.0.2".parse().unwrap()),
            "2.0.0.127.in-addr.arpa"
        );
        assert!(reverse_name("::1".parse().unwrap()).starts_with("1.0.0.0."));
        let ex = AcmeValidation::parse_exclude(DEFAULT_EXCLUDE).unwrap();
        for (ip, excluded) in [
            ("169.254.169.254", true),
            ("0.0.0.0", true),
            ("::", true),
            ("fe80::1", true),
            ("127.0.0.1", false),
            ("10.1.2.3", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ex.iter().any(|c| c.contains(ip)), excluded, "{ip}");
        }
        assert!(AcmeValidation::parse_exclude("127.0.0.2/40").is_err());
        assert!(AcmeValidation::parse_exclude("").unwrap().is_empty());
    }
}
