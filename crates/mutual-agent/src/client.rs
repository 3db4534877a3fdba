//! The CA client: a list of `mutual server` (or Vault/OpenBao) nodes tried in order, enrollment
//! with a token and a CSR on `sign/:role`, renewal by certificate on `/renew` over mTLS, and
//! the trust bundle. The key is made here and only the CSR leaves the host.
//!
//! A node that cannot be reached or answers 5xx is logged and the next one is tried; any other
//! answer is the answer. Vault's `{"errors": [...]}` becomes the refusal's text.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mutual_pki::key::KeyType;
use mutual_tls::{CallError, ClientTls, Identity};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::files::Pems;

const TIMEOUT: Duration = Duration::from_secs(15);

/// What to ask the CA for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The PKI mount (`pki`).
    pub mount: String,
    /// The role.
    pub role: String,
    /// Subject CN.
    pub common_name: String,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP SANs.
    pub ips: Vec<String>,
    /// URI SANs.
    pub uris: Vec<String>,
    /// Requested lifetime (the role's default when `None`).
    pub ttl: Option<Duration>,
    /// The type of the key made on this host.
    pub key_type: KeyType,
}

/// Why the CA did not give us a certificate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// No node answered (connection errors, TLS failures, 5xx).
    #[error("no CA node answered: {0}")]
    Unreachable(String),
    /// A node answered with a refusal.
    #[error("{node} refused ({status}): {message}")]
    Refused {
        /// The node.
        node: String,
        /// HTTP status.
        status: u16,
        /// The `errors`, joined.
        message: String,
    },
    /// Renewal by certificate is not available (no https node, or no `/renew` endpoint) and
    /// there is no token to enroll again with.
    #[error("{0}")]
    NoRenewal(String),
    /// The answer could not be used.
    #[error("{node}: unusable answer: {message}")]
    Invalid {
        /// The node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// Something on this host: the configuration, key generation, the CSR.
    #[error("{0}")]
    Local(String),
}

impl ClientError {
    /// True when retrying without a change of configuration cannot help (the role refuses
    /// the request, the token is wrong or used up): retried at the backoff cap, not in a storm.
    pub fn permanent(&self) -> bool {
        match self {
            ClientError::Refused { status, .. } => matches!(status, 400 | 401 | 403),
            ClientError::NoRenewal(_) | ClientError::Local(_) => true,
            _ => false,
        }
    }

    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Unreachable(_) => "unreachable",
            ClientError::Refused { .. } => "refused",
            ClientError::NoRenewal(_) => "no_renewal",
            ClientError::Invalid { .. } => "invalid_answer",
            ClientError::Local(_) => "local",
        }
    }
}

#[derive(Debug, Clone)]
struct Node {
    url: String,
    https: bool,
    authority: String,
    prefix: String,
}

/// The CA's nodes and how to reach them.
#[derive(Debug, Clone)]
pub struct CaClient {
    nodes: Vec<Node>,
    cacert: Option<PathBuf>,
}

/// A transport failure (try the next node) or an answer.
enum Outcome {
    Answer(u16, Bytes),
    Down(String),
    CertRefused(String),
}

impl CaClient {
    /// Parses `--addr` (comma-separated `http://` or `https://` URLs) and `--cacert`.
    pub fn new(addrs: &str, cacert: Option<&Path>) -> Result<CaClient, ClientError> {
        let mut nodes = Vec::new();
        for addr in addrs.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let uri: http::Uri = addr
                .parse()
                .map_err(|_| ClientError::Local(format!("--addr \"{addr}\" is not a URL")))?;
            let https = match uri.scheme_str() {
                Some("https") => true,
                Some("http") => false,
                _ => {
                    return Err(ClientError::Local(format!(
                        "--addr \"{addr}\" must start with http:// or https://"
                    )))
                }
            };
            let auth = uri
                .authority()
                .ok_or_else(|| ClientError::Local(format!("--addr \"{addr}\" has no host")))?;
            let authority = match auth.port_u16() {
                Some(_) => auth.to_string(),
                None if https => format!("{}:443", auth.host()),
                None => format!("{}:80", auth.host()),
            };
            if https && cacert.is_none() {
                return Err(ClientError::Local(format!(
                    "--addr \"{addr}\" is https: give the CA its certificate chains to with --cacert FILE"
                )));
            }
            nodes.push(Node {
                url: addr.trim_end_matches('/').to_string(),
                https,
                authority,
                prefix: uri.path().trim_end_matches('/').to_string(),
            });
        }
        if nodes.is_empty() {
            return Err(ClientError::Local("--addr names no CA node".into()));
        }
        Ok(CaClient {
            nodes,
            cacert: cacert.map(Path::to_path_buf),
        })
    }

    /// Enrolls with a token: a new key, a CSR to `sign/:role`, the trust bundle.
    pub async fn enroll(&self, req: &Request, token: &str) -> Result<Pems, ClientError> {
        let (key, csr) = key_and_csr(req).await?;
        let body = sign_body(req, &csr);
        let (node, data) = self
            .call_all(
                Method::POST,
                &format!("{}/sign/{}", req.mount, req.role),
                Some(token),
                Some(body),
                None,
                false,
            )
            .await?;
        self.finish(req, &node, &data, key).await
    }

    /// Renews by certificate: a new key, the CSR to `/renew` over mTLS with the current chain
    /// and key (in memory). `NoRenewal` when no node offers it (plain http, 404) or the
    /// certificate is refused (403).
    pub async fn renew(&self, req: &Request, current: &Identity) -> Result<Pems, ClientError> {
        if !self.nodes.iter().any(|n| n.https) {
            return Err(ClientError::NoRenewal(
                "renewal by certificate needs an https:// --addr (mTLS); over http give a token"
                    .into(),
            ));
        }
        let (new_key, csr) = key_and_csr(req).await?;
        let result = self
            .call_all(
                Method::POST,
                &format!("{}/renew", req.mount),
                None,
                Some(json!({ "csr": csr })),
                Some(current),
                true,
            )
            .await;
        match result {
            Ok((node, data)) => self.finish(req, &node, &data, new_key).await,
            // A server without the endpoint answers 404, or 403 where it guards every
            // unknown path; a refused certificate is 403 too. Either way the token (if any)
            // is the way left, and the CA's words go with the error.
            Err(ClientError::Refused {
                status: status @ (403..=405),
                message,
                ..
            }) => Err(ClientError::NoRenewal(format!(
                "renewal by certificate refused at {}/renew ({status}: {message}); give a token to renew through sign/{}",
                req.mount, req.role
            ))),
            Err(e) => Err(e),
        }
    }

    /// The trust bundle: `trust-bundle`, or the self-signed certificates of `ca_chain` (all of
    /// it when it holds none) on a server that does not have it yet (404, or 403 where
    /// unknown paths need a token).
    pub async fn trust_bundle(&self, mount: &str) -> Result<String, ClientError> {
        match self.get_pem(&format!("{mount}/trust-bundle")).await {
            Ok(pem) => Ok(pem),
            // 403: a server that predates the endpoint and guards unknown paths.
            Err(ClientError::Refused {
                status: 403..=405, ..
            }) => {
                let chain = self.get_pem(&format!("{mount}/ca_chain")).await?;
                let ders = mutual_pki::cert::pem_certs(chain.as_bytes()).unwrap_or_default();
                let roots: Vec<&Vec<u8>> = ders.iter().filter(|d| self_signed(d)).collect();
                let pick: Vec<&Vec<u8>> = if roots.is_empty() {
                    ders.iter().collect()
                } else {
                    roots
                };
                Ok(pick.iter().map(|d| mutual_pki::cert::to_pem(d)).collect())
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /v1/<path>` on the first node that answers, within `timeout` per node (a
    /// long poll needs more than the usual 15 s): the node and the `data` of its answer.
    pub async fn get_json(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<(String, Value), ClientError> {
        let mut last = String::new();
        for node in &self.nodes {
            match self
                .call(node, Method::GET, path, None, None, None, timeout)
                .await
            {
                Outcome::Answer(status, bytes) if status >= 500 => {
                    last = format!("{}: {} {}", node.url, status, errors_of(&bytes, status));
                }
                Outcome::Answer(status, bytes) if (200..300).contains(&status) => {
                    let v: Value =
                        serde_json::from_slice(&bytes).map_err(|e| ClientError::Invalid {
                            node: node.url.clone(),
                            message: format!("not JSON: {e}"),
                        })?;
                    return Ok((
                        node.url.clone(),
                        v.get("data").cloned().unwrap_or(Value::Null),
                    ));
                }
                Outcome::Answer(status, bytes) => {
                    return Err(ClientError::Refused {
                        node: node.url.clone(),
                        status,
                        message: errors_of(&bytes, status),
                    })
                }
                Outcome::Down(why) | Outcome::CertRefused(why) => {
                    last = format!("{}: {why}", node.url);
                }
            }
        }
        Err(ClientError::Unreachable(if self.nodes.len() == 1 {
            last
        } else {
            format!("{} (last: {last})", self.node_list())
        }))
    }

    async fn get_pem(&self, path: &str) -> Result<String, ClientError> {
        for node in &self.nodes {
            match self
                .call(node, Method::GET, path, None, None, None, TIMEOUT)
                .await
            {
                Outcome::Answer(status, _) if status >= 500 => {
                    tracing::warn!(node = %node.url, status, "CA node failed; trying the next");
                }
                Outcome::Answer(200, body) => {
                    let text = String::from_utf8_lossy(&body).into_owned();
                    if mutual_pki::cert::pem_certs(text.as_bytes()).is_ok_and(|c| !c.is_empty()) {
                        return Ok(text);
                    }
                    return Err(ClientError::Invalid {
                        node: node.url.clone(),
                        message: format!("{path} holds no PEM certificate"),
                    });
                }
                Outcome::Answer(status, body) => {
                    return Err(ClientError::Refused {
                        node: node.url.clone(),
                        status,
                        message: errors_of(&body, status),
                    })
                }
                Outcome::Down(why) | Outcome::CertRefused(why) => {
                    tracing::warn!(node = %node.url, error = %why, "CA node unreachable; trying the next");
                }
            }
        }
        Err(ClientError::Unreachable(format!(
            "{} (GET {path})",
            self.node_list()
        )))
    }

    fn node_list(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.url.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Tries each node in turn; returns the node that answered and the `data` of its answer.
    async fn call_all(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        identity: Option<&Identity>,
        https_only: bool,
    ) -> Result<(String, Value), ClientError> {
        let mut last = String::new();
        for node in self.nodes.iter().filter(|n| n.https || !https_only) {
            match self
                .call(
                    node,
                    method.clone(),
                    path,
                    token,
                    body.as_ref(),
                    identity,
                    TIMEOUT,
                )
                .await
            {
                Outcome::Answer(status, bytes) if status >= 500 => {
                    last = format!("{}: {} {}", node.url, status, errors_of(&bytes, status));
                    tracing::warn!(node = %node.url, status, error = %errors_of(&bytes, status), "CA node failed; trying the next");
                }
                Outcome::Answer(status, bytes) if (200..300).contains(&status) => {
                    let v: Value =
                        serde_json::from_slice(&bytes).map_err(|e| ClientError::Invalid {
                            node: node.url.clone(),
                            message: format!("not JSON: {e}"),
                        })?;
                    let data = v.get("data").cloned().unwrap_or(Value::Null);
                    return Ok((node.url.clone(), data));
                }
                Outcome::Answer(status, bytes) => {
                    return Err(ClientError::Refused {
                        node: node.url.clone(),
                        status,
                        message: errors_of(&bytes, status),
                    })
                }
                Outcome::CertRefused(why) => {
                    return Err(ClientError::Refused {
                        node: node.url.clone(),
                        status: 403,
                        message: why,
                    })
                }
                Outcome::Down(why) => {
                    last = format!("{}: {why}", node.url);
                    tracing::warn!(node = %node.url, error = %why, "CA node unreachable; trying the next");
                }
            }
        }
        Err(ClientError::Unreachable(if self.nodes.len() == 1 {
            last
        } else {
            format!("{} (last: {last})", self.node_list())
        }))
    }

    // One private transport step; its arguments are the request's parts.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        node: &Node,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        identity: Option<&Identity>,
        timeout: Duration,
    ) -> Outcome {
        let payload = body
            .map(|b| Bytes::from(serde_json::to_vec(b).unwrap_or_default()))
            .unwrap_or_default();
        let uri = format!("{}/v1/{path}", node.prefix);
        let fut = async {
            if node.https {
                self.call_tls(node, method, &uri, token, payload, identity)
                    .await
            } else {
                call_plain(node, method, &uri, token, payload).await
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(o) => o,
            Err(_) => Outcome::Down(format!("no answer within {}s", timeout.as_secs())),
        }
    }

    async fn call_tls(
        &self,
        node: &Node,
        method: Method,
        uri: &str,
        token: Option<&str>,
        payload: Bytes,
        identity: Option<&Identity>,
    ) -> Outcome {
        // Built per call: a CA file rotated on disk is read at the next attempt.
        let mut builder = ClientTls::builder();
        if let Some(ca) = &self.cacert {
            builder = builder.ca(ca);
        }
        if let Some(id) = identity {
            builder = builder.identity(id.clone());
        }
        let tls = match builder.build() {
            Ok(t) => t,
            Err(e) => return Outcome::CertRefused(e.to_string()),
        };
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        if let Some(t) = token {
            headers.push(("x-vault-token".into(), t.into()));
        }
        let url = format!("https://{}{uri}", node.authority);
        match tls.request(&url, method, &headers, payload).await {
            Ok(reply) => Outcome::Answer(reply.status.as_u16(), reply.body),
            Err(e @ CallError::CertificateRefused(_)) => Outcome::CertRefused(e.to_string()),
            Err(e) => Outcome::Down(e.to_string()),
        }
    }

    async fn finish(
        &self,
        req: &Request,
        node: &str,
        data: &Value,
        key: Zeroizing<String>,
    ) -> Result<Pems, ClientError> {
        let invalid = |m: &str| ClientError::Invalid {
            node: node.to_string(),
            message: m.to_string(),
        };
        let leaf = data
            .get("certificate")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("no \"certificate\""))?;
        let mut cert = leaf.trim_end().to_string();
        cert.push('\n');
        let chain: Vec<String> = match data.get("ca_chain").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            None => data
                .get("issuing_ca")
                .and_then(Value::as_str)
                .map(|s| vec![s.to_string()])
                .unwrap_or_default(),
        };
        // Servers present leaf and intermediates; the root is the peer's trust anchor.
        for pem in chain {
            for der in mutual_pki::cert::pem_certs(pem.as_bytes()).unwrap_or_default() {
                if !self_signed(&der) {
                    cert.push_str(&mutual_pki::cert::to_pem(&der));
                }
            }
        }
        let ca = self.trust_bundle(&req.mount).await?;
        Ok(Pems { cert, key, ca })
    }
}

async fn call_plain(
    node: &Node,
    method: Method,
    uri: &str,
    token: Option<&str>,
    payload: Bytes,
) -> Outcome {
    let stream = match tokio::net::TcpStream::connect(&node.authority).await {
        Ok(s) => s,
        Err(e) => return Outcome::Down(format!("cannot connect to {}: {e}", node.authority)),
    };
    let (mut send, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(x) => x,
        Err(e) => return Outcome::Down(e.to_string()),
    };
    let driver = tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", &node.authority)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("x-vault-token", t);
    }
    let Ok(req) = req.body(Full::new(payload)) else {
        return Outcome::Down("cannot build the request".into());
    };
    let out = match send.send_request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.into_body().collect().await {
                Ok(b) => Outcome::Answer(status, b.to_bytes()),
                Err(e) => Outcome::Down(e.to_string()),
            }
        }
        Err(e) => Outcome::Down(e.to_string()),
    };
    driver.abort();
    out
}

/// Vault's `{"errors": [...]}` as one line; the status when there is none.
pub fn errors_of(body: &[u8], status: u16) -> String {
    let listed = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned());
    let errors: Vec<String> = listed
        .as_ref()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(str::to_string))
                .filter(|e| !e.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if errors.is_empty() && listed.is_some() {
        format!("HTTP {status}")
    } else if errors.is_empty() {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        if text.is_empty() || text.len() > 200 {
            format!("HTTP {status}")
        } else {
            text.replace('\n', " ")
        }
    } else {
        errors.join("; ").replace('\n', " ")
    }
}

fn sign_body(req: &Request, csr: &str) -> Value {
    let mut body = json!({
        "csr": csr,
        "common_name": req.common_name,
        "format": "pem",
    });
    if !req.dns.is_empty() {
        body["alt_names"] = json!(req.dns.join(","));
    }
    if !req.ips.is_empty() {
        body["ip_sans"] = json!(req.ips.join(","));
    }
    if !req.uris.is_empty() {
        body["uri_sans"] = json!(req.uris.join(","));
    }
    if let Some(ttl) = req.ttl {
        body["ttl"] = json!(format!("{}s", ttl.as_secs().max(1)));
    }
    body
}

/// A new key and a CSR for it. An RSA key takes a while and is made off the async workers;
/// an EC or Ed25519 key takes microseconds and is made here: a blocking-pool thread would
/// outlive it by ten seconds with its own stack, malloc arena and aws-lc entropy state, all
/// counted in an idle agent's memory.
pub async fn key_and_csr(req: &Request) -> Result<(Zeroizing<String>, String), ClientError> {
    if !matches!(req.key_type, KeyType::Rsa(_)) {
        return make_key_and_csr(req);
    }
    let req = req.clone();
    tokio::task::spawn_blocking(move || make_key_and_csr(&req))
        .await
        .map_err(|e| ClientError::Local(format!("key generation: {e}")))?
}

fn make_key_and_csr(req: &Request) -> Result<(Zeroizing<String>, String), ClientError> {
    use rcgen::{CertificateParams, DnType, SanType};
    let local = |what: &str, e: &dyn std::fmt::Display| ClientError::Local(format!("{what}: {e}"));
    let key = req
        .key_type
        .generate()
        .map_err(|e| local("generating the key", &e))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, req.common_name.as_str());
    for d in &req.dns {
        let name = d.as_str().try_into().map_err(|e| local("--san", &e))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in &req.ips {
        let addr = ip
            .parse()
            .map_err(|_| ClientError::Local(format!("--ip \"{ip}\" is not an IP address")))?;
        params.subject_alt_names.push(SanType::IpAddress(addr));
    }
    for u in &req.uris {
        let uri = u.as_str().try_into().map_err(|e| local("--uri", &e))?;
        params.subject_alt_names.push(SanType::URI(uri));
    }
    let csr = params
        .serialize_request(key.pair())
        .and_then(|c| c.pem())
        .map_err(|e| local("making the CSR", &e))?;
    Ok((key.to_pem(), csr))
}

fn self_signed(der: &[u8]) -> bool {
    mutual_pki::cert::facts(der).is_ok_and(|f| f.is_ca && f.subject == f.issuer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_errors_become_one_line() {
        let cases: &[(&[u8], u16, &str)] = &[
            (
                br#"{"errors":["permission denied"]}"#,
                403,
                "permission denied",
            ),
            (br#"{"errors":["a","b\nc"]}"#, 400, "a; b c"),
            (br#"{"errors":[]}"#, 404, "HTTP 404"),
            (b"", 502, "HTTP 502"),
            (b"bad gateway\n", 502, "bad gateway"),
        ];
        for (body, status, want) in cases {
            assert_eq!(errors_of(body, *status), *want);
        }
    }

    #[test]
    fn permanence() {
        let refused = |status| ClientError::Refused {
            node: "n".into(),
            status,
            message: "m".into(),
        };
        assert!(refused(400).permanent());
        assert!(refused(403).permanent());
        assert!(!refused(404).permanent());
        assert!(!refused(429).permanent());
        assert!(!ClientError::Unreachable("x".into()).permanent());
    }

    #[test]
    fn addresses() {
        let c = CaClient::new("http://127.0.0.1:8200, http://[::1]:8201/x/", None).unwrap();
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.nodes[1].authority, "[::1]:8201");
        assert_eq!(c.nodes[1].prefix, "/x");
        let bad = [
            ("ftp://x", "--addr \"ftp://x\" must start with http:// or https://"),
            ("", "--addr names no CA node"),
            (
                "https://ca:8200",
                "--addr \"https://ca:8200\" is https: give the CA its certificate chains to with --cacert FILE",
            ),
        ];
        for (addr, msg) in bad {
            assert_eq!(CaClient::new(addr, None).unwrap_err().to_string(), msg);
        }
    }

    #[test]
    fn csr_carries_the_names_and_leaves_the_key_here() {
        let req = Request {
            mount: "pki".into(),
            role: "service".into(),
            common_name: "a.example.com".into(),
            dns: vec!["a.example.com".into()],
            ips: vec!["127.0.0.1".into()],
            uris: vec!["spiffe://example.org/a".into()],
            ttl: None,
            key_type: KeyType::EcP256,
        };
        let (key, csr) = make_key_and_csr(&req).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(!csr.contains("PRIVATE"));
        let parsed = mutual_pki::csr::parse(csr.as_bytes()).unwrap();
        let text = format!("{parsed:?}");
        assert!(text.contains("a.example.com"), "{text}");
        assert!(text.contains("spiffe://example.org/a"), "{text}");
    }
}
