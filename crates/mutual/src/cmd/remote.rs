//! The CA commands against a running `mutual server` (`--addr`/`--token`): Vault's PKI API over
//! HTTP/1.1 (or HTTPS, verified against `--cacert`) with `X-Vault-Token`, `{"data": …}` answers and `{"errors": […]}` refusals.
//!
//! A CA is a pki mount of the same name; a role lives in its CA's mount. Everything the server
//! sends is parsed, never trusted to have a shape: a missing field is an error, not a panic.

use std::{path::Path, time::Duration};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mutual_pki::{
    ca::{RootRequest, Urls},
    cert,
    crl::Reason,
    key::PrivateKey,
    role::{IssueRequest, Role},
    serial::Serial,
};
use mutual_store::{CertFilter, CertRecord, Issued, RevokeOutcome, StoreError};
use mutual_tls::TrustStore;
use rustls_pki_types::ServerName;
use serde_json::{json, Value};
use time::OffsetDateTime;

use super::ca_info::CaInfo;

/// A `mutual server` (or Vault) reached over HTTP: one node, or several nodes of one CA
/// (`--addr URL,URL,…`), tried in order.
#[derive(Clone)]
pub struct Remote {
    /// `http://host:port`, as given (the list, for several nodes).
    pub addr: String,
    nodes: Vec<Node>,
    token: Option<String>,
}

/// One node of `--addr`.
#[derive(Clone)]
struct Node {
    /// `http://host:port[/prefix]`, as given.
    addr: String,
    authority: String,
    prefix: String,
    /// For `https://`: the verifying connector and the name the server must hold.
    tls: Option<(tokio_rustls::TlsConnector, ServerName<'static>)>,
}

/// A successful answer: its `data` and `warnings`.
pub(crate) struct Answer {
    pub(crate) data: Value,
    pub(crate) warnings: Vec<String>,
}

fn not_found(kind: &'static str, name: &str) -> anyhow::Error {
    StoreError::NotFound {
        kind,
        name: name.to_string(),
    }
    .into()
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

fn str_of<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .with_context(|| format!("the server's answer has no \"{key}\""))
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn first_der(pem_text: &str) -> Result<Vec<u8>> {
    cert::pem_certs(pem_text.as_bytes())?
        .into_iter()
        .next()
        .context("the server's answer holds no certificate")
}

fn unix(v: &Value, key: &str) -> Option<OffsetDateTime> {
    v.get(key)
        .and_then(Value::as_i64)
        .filter(|t| *t > 0)
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
}

impl Remote {
    /// Parses `--addr` (`http://host:port[/prefix]` or `https://…`, verified against
    /// `--cacert`).
    pub fn new(addr: &str, token: Option<String>, cacert: Option<&Path>) -> Result<Remote> {
        let nodes = addr
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| Node::new(a, cacert))
            .collect::<Result<Vec<_>>>()?;
        if nodes.is_empty() {
            bail!(super::UsageError("--addr names no server".into()));
        }
        Ok(Remote {
            addr: addr.trim().trim_end_matches('/').to_string(),
            nodes,
            token: token.filter(|t| !t.is_empty()),
        })
    }

    /// One request, to the first node that answers: a node that cannot be reached or
    /// answers 5xx is logged with its address and the next one is tried (a 5xx of
    /// `mutual server` stored nothing: an issuance is answered only after its commit).
    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<(u16, Bytes)> {
        let last = self.nodes.len() - 1;
        for (i, node) in self.nodes.iter().enumerate() {
            match node
                .call(method.clone(), path, body, self.token.as_deref())
                .await
            {
                Ok((status, bytes)) if status >= 500 && i < last => {
                    eprintln!(
                        "mutual: {} answered HTTP {status} to {path}; trying the next node",
                        node.addr
                    );
                    let _ = bytes;
                }
                Err(e) if i < last => {
                    eprintln!("mutual: {}: {e:#}; trying the next node", node.addr);
                }
                other => return other,
            }
        }
        bail!("--addr names no server")
    }
}

impl Node {
    fn new(addr: &str, cacert: Option<&Path>) -> Result<Node> {
        let uri: Uri = addr
            .parse()
            .with_context(|| format!("--addr \"{addr}\" is not a URL"))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => bail!(super::UsageError(format!(
                "--addr \"{addr}\" must start with http:// or https://"
            ))),
        };
        let auth = uri
            .authority()
            .with_context(|| format!("--addr \"{addr}\" has no host"))?;
        let host = auth.host().trim_start_matches('[').trim_end_matches(']');
        let authority = match auth.port_u16() {
            Some(_) => auth.to_string(),
            None if https => format!("{}:443", auth.host()),
            None => format!("{}:80", auth.host()),
        };
        let tls = if https {
            let cacert = cacert.with_context(|| {
                format!("--addr \"{addr}\" is https: give the CA that its certificate chains to with --cacert FILE")
            })?;
            let trust = TrustStore::from_file(cacert)?;
            let config = rustls::ClientConfig::builder_with_provider(mutual_tls::load::provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                .with_root_certificates(trust.roots.clone())
                .with_no_client_auth();
            let name = ServerName::try_from(host.to_string())
                .with_context(|| format!("--addr \"{addr}\": \"{host}\" is not a host name"))?;
            Some((
                tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)),
                name,
            ))
        } else {
            None
        };
        Ok(Node {
            addr: addr.trim_end_matches('/').to_string(),
            authority,
            prefix: uri.path().trim_end_matches('/').to_string(),
            tls,
        })
    }

    /// One request on its own connection: status and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Result<(u16, Bytes)> {
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        let mut send = match &self.tls {
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .with_context(|| format!("TLS with {}", self.addr))?;
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .with_context(|| format!("talking to {}", self.addr))?;
                tokio::spawn(conn);
                send
            }
            None => {
                let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .with_context(|| format!("talking to {}", self.addr))?;
                tokio::spawn(conn);
                send
            }
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}/v1/{path}", self.prefix))
            .header("host", &self.authority);
        if let Some(t) = token {
            req = req.header("x-vault-token", t);
        }
        let payload = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(v)?)
            }
            None => Bytes::new(),
        };
        let resp = send
            .send_request(req.body(Full::new(payload))?)
            .await
            .with_context(|| format!("{path} at {}", self.addr))?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the answer to {path}"))?
            .to_bytes();
        Ok((status, bytes))
    }
}

impl Remote {
    /// A JSON call: `Ok(None)` on 404 (whatever its `errors`), the `errors` as one line on any other failure.
    async fn json(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Answer>> {
        let (status, bytes) = self.call(method, path, body).await?;
        let parsed: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        // Vault answers 404 for a missing mount, role, certificate or empty list alike.
        if status == 404 {
            return Ok(None);
        }
        let errors = strings(&parsed, "errors");
        if !(200..300).contains(&status) {
            if errors.is_empty() {
                bail!("{} answered HTTP {status} to {path}", self.addr);
            }
            bail!("{}", errors.join("; "));
        }
        Ok(Some(Answer {
            data: parsed.get("data").cloned().unwrap_or(Value::Null),
            warnings: strings(&parsed, "warnings"),
        }))
    }

    pub(crate) async fn read(&self, path: &str) -> Result<Option<Answer>> {
        self.json(Method::GET, path, None).await
    }

    pub(crate) async fn write(&self, path: &str, body: Value) -> Result<Answer> {
        self.json(Method::POST, path, Some(&body))
            .await?
            .ok_or_else(|| anyhow!("{} has no {path}", self.addr))
    }

    pub(crate) async fn list(&self, path: &str) -> Result<Vec<String>> {
        let method = Method::from_bytes(b"LIST").context("the LIST method")?;
        Ok(self
            .json(method, path, None)
            .await?
            .map(|a| strings(&a.data, "keys"))
            .unwrap_or_default())
    }

    /// The paths of the server's pki mounts, sorted, without the trailing `/`.
    async fn pki_mounts(&self) -> Result<Vec<String>> {
        let a = self
            .read("sys/mounts")
            .await?
            .context("the server has no sys/mounts")?;
        let mut out: Vec<String> = a
            .data
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.get("type").and_then(Value::as_str) == Some("pki"))
                    .map(|(k, _)| k.trim_end_matches('/').to_string())
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        Ok(out)
    }

    /// `ca init`: mount `name` and generate its root.
    pub async fn init_root(&self, name: &str, req: &RootRequest) -> Result<CaInfo> {
        if self.pki_mounts().await?.iter().any(|m| m == name) {
            return Err(StoreError::Duplicate {
                kind: "CA",
                name: name.to_string(),
            }
            .into());
        }
        self.enable(name, req.ttl).await?;
        let body = ca_body(req);
        if let Err(e) = self
            .write(&format!("{name}/root/generate/internal"), body)
            .await
        {
            self.disable(name).await;
            return Err(e);
        }
        self.get_ca(name).await
    }

    /// `ca intermediate`: mount `name`, generate its key and CSR, have `parent` sign it, and
    /// install the certificate.
    pub async fn create_intermediate(
        &self,
        name: &str,
        parent: &str,
        req: &RootRequest,
    ) -> Result<CaInfo> {
        self.get_ca(parent).await?;
        if self.pki_mounts().await?.iter().any(|m| m == name) {
            return Err(StoreError::Duplicate {
                kind: "CA",
                name: name.to_string(),
            }
            .into());
        }
        self.enable(name, req.ttl).await?;
        match self.sign_intermediate(name, parent, req).await {
            Ok(()) => {
                let mut ca = self.get_ca(name).await?;
                ca.parent = Some(parent.to_string());
                Ok(ca)
            }
            Err(e) => {
                self.disable(name).await;
                Err(e)
            }
        }
    }

    async fn sign_intermediate(&self, name: &str, parent: &str, req: &RootRequest) -> Result<()> {
        let csr = self
            .write(
                &format!("{name}/intermediate/generate/internal"),
                ca_body(req),
            )
            .await?;
        let mut body = ca_body(req);
        body["csr"] = json!(str_of(&csr.data, "csr")?);
        body["format"] = json!("pem_bundle");
        let signed = self
            .write(&format!("{parent}/root/sign-intermediate"), body)
            .await?;
        let certificate = str_of(&signed.data, "certificate")?;
        self.write(
            &format!("{name}/intermediate/set-signed"),
            json!({ "certificate": certificate }),
        )
        .await?;
        Ok(())
    }

    async fn enable(&self, name: &str, ttl: Duration) -> Result<()> {
        self.json(
            Method::POST,
            &format!("sys/mounts/{name}"),
            Some(&json!({ "type": "pki", "config": { "max_lease_ttl": secs(ttl) } })),
        )
        .await?;
        Ok(())
    }

    /// Best effort: undoes `enable` after a later step failed.
    async fn disable(&self, name: &str) {
        let _ = self
            .json(Method::DELETE, &format!("sys/mounts/{name}"), None)
            .await;
    }

    /// A CA's certificate and URLs (its parent is found by [`Remote::list_cas`]).
    pub async fn get_ca(&self, name: &str) -> Result<CaInfo> {
        if name.is_empty() || name.contains("..") {
            return Err(not_found("CA", name));
        }
        let a = self
            .read(&format!("{name}/cert/ca"))
            .await?
            .ok_or_else(|| not_found("CA", name))?;
        let cert_pem = str_of(&a.data, "certificate")?.to_string();
        if cert_pem.trim().is_empty() {
            return Err(not_found("CA", name));
        }
        let cert_der = first_der(&cert_pem)?;
        let urls = match self.read(&format!("{name}/config/urls")).await? {
            Some(u) => Urls {
                issuing_certificates: strings(&u.data, "issuing_certificates"),
                crl_distribution_points: strings(&u.data, "crl_distribution_points"),
                ocsp_servers: strings(&u.data, "ocsp_servers"),
            },
            None => Urls::default(),
        };
        Ok(CaInfo {
            name: name.to_string(),
            cert_pem,
            cert_der,
            parent: None,
            urls,
        })
    }

    /// Every pki mount with a CA, each with its parent when that is another mount here.
    pub async fn list_cas(&self) -> Result<Vec<CaInfo>> {
        let mut cas = Vec::new();
        for m in self.pki_mounts().await? {
            match self.get_ca(&m).await {
                Ok(ca) => cas.push(ca),
                Err(e) if e.downcast_ref::<StoreError>().is_some() => {}
                Err(e) => return Err(e),
            }
        }
        let facts: Vec<_> = cas
            .iter()
            .map(|c| cert::facts(&c.cert_der))
            .collect::<Result<_, _>>()?;
        for i in 0..cas.len() {
            if facts[i].issuer == facts[i].subject {
                continue;
            }
            let parent = (0..cas.len())
                .find(|&j| j != i && facts[j].subject == facts[i].issuer)
                .map(|j| cas[j].name.clone());
            cas[i].parent = parent;
        }
        Ok(cas)
    }

    /// The issuers of a mount, for `ca list`.
    pub async fn issuers(&self, mount: &str) -> Result<Vec<super::ca_info::IssuerInfo>> {
        let rotation: Option<mutual_pki::rotation::Rotation> = match self
            .json(Method::GET, &format!("{mount}/rotation"), None)
            .await
        {
            Ok(Some(a)) => rotation_of(&a.data),
            _ => None,
        };
        let default = self
            .read(&format!("{mount}/config/issuers"))
            .await?
            .and_then(|a| a.data["default"].as_str().map(str::to_string))
            .unwrap_or_default();
        let mut out = Vec::new();
        for id in self.list(&format!("{mount}/issuers")).await? {
            let Some(a) = self.read(&format!("{mount}/issuer/{id}")).await? else {
                continue;
            };
            let pem = a.data["certificate"].as_str().unwrap_or_default();
            let der = cert::pem_certs(pem.as_bytes())?.remove(0);
            let name = a.data["issuer_name"].as_str().unwrap_or_default();
            out.push(super::ca_info::IssuerInfo::new(
                &id,
                name,
                id == default,
                &der,
                rotation.as_ref(),
            ));
        }
        Ok(out)
    }

    /// `ca urls`.
    pub async fn set_urls(&self, name: &str, urls: &Urls) -> Result<()> {
        self.get_ca(name).await?;
        self.write(
            &format!("{name}/config/urls"),
            json!({
                "issuing_certificates": urls.issuing_certificates,
                "crl_distribution_points": urls.crl_distribution_points,
                "ocsp_servers": urls.ocsp_servers,
            }),
        )
        .await?;
        Ok(())
    }

    /// `token create`: Vault's `auth/token/create` (with mutual's `mount`, `role`,
    /// `num_uses`, `ttl` for a bootstrap token); the `auth` object of the answer.
    pub async fn create_token(&self, body: Value) -> Result<Value> {
        let (status, bytes) = self
            .call(Method::POST, "auth/token/create", Some(&body))
            .await?;
        let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let errors = strings(&parsed, "errors");
            if errors.is_empty() {
                bail!("{} answered HTTP {status} to auth/token/create", self.addr);
            }
            bail!("{}", errors.join("; "));
        }
        parsed
            .get("auth")
            .cloned()
            .filter(|a| a.is_object())
            .context("the server's answer to auth/token/create has no \"auth\"")
    }

    /// `role set`: writes the role into its CA's mount.
    pub async fn put_role(&self, r: &Role) -> Result<()> {
        self.get_ca(&r.issuer).await?;
        let mut body = json!({
            "allowed_domains": r.allowed_domains,
            "allow_bare_domains": r.allow_bare_domains,
            "allow_subdomains": r.allow_subdomains,
            "allow_glob_domains": r.allow_glob_domains,
            "allow_localhost": r.allow_localhost,
            "allow_any_name": r.allow_any_name,
            "allow_wildcard_certificates": r.allow_wildcards,
            "allow_ip_sans": r.allow_ip_sans,
            "enforce_hostnames": r.enforce_hostnames,
            "allowed_uri_sans": r.allowed_uri_sans,
            "require_cn": r.require_cn,
            "server_flag": r.server_flag,
            "client_flag": r.client_flag,
            "use_csr_common_name": r.use_csr_common_name,
            "use_csr_sans": r.use_csr_sans,
            "key_type": r.key_type,
            "key_bits": r.key_bits,
            "not_before_duration": secs(r.not_before_duration),
            "ou": r.ou,
            "organization": r.organization,
            "no_store": r.no_store,
        });
        if let Some(t) = r.ttl {
            body["ttl"] = json!(secs(t));
        }
        if let Some(t) = r.max_ttl {
            body["max_ttl"] = json!(secs(t));
        }
        self.write(&format!("{}/roles/{}", r.issuer, r.name), body)
            .await?;
        Ok(())
    }

    /// Every role of every pki mount, sorted by name then CA.
    pub async fn list_roles(&self) -> Result<Vec<Role>> {
        let mut roles = Vec::new();
        for m in self.pki_mounts().await? {
            for name in self.list(&format!("{m}/roles")).await? {
                if let Some(r) = self.read_role(&m, &name).await? {
                    roles.push(r);
                }
            }
        }
        roles.sort_by(|a, b| (&a.name, &a.issuer).cmp(&(&b.name, &b.issuer)));
        Ok(roles)
    }

    /// `role show`: a role by name or `CA/ROLE`.
    pub async fn get_role(&self, spec: &str) -> Result<Role> {
        let (mount, name) = self.find_role(spec).await?;
        self.read_role(&mount, &name)
            .await?
            .ok_or_else(|| not_found("role", spec))
    }

    async fn read_role(&self, mount: &str, name: &str) -> Result<Option<Role>> {
        let Some(a) = self.read(&format!("{mount}/roles/{name}")).await? else {
            return Ok(None);
        };
        Ok(Some(role_from_vault(mount, name, &a.data)))
    }

    /// The mount holding role `spec` (`ROLE` or `CA/ROLE`); refuses an ambiguous name.
    async fn find_role(&self, spec: &str) -> Result<(String, String)> {
        if let Some((mount, name)) = spec.rsplit_once('/') {
            return Ok((mount.to_string(), name.to_string()));
        }
        let mut found = Vec::new();
        for m in self.pki_mounts().await? {
            if self
                .list(&format!("{m}/roles"))
                .await?
                .iter()
                .any(|r| r == spec)
            {
                found.push(m);
            }
        }
        match found.len() {
            0 => Err(not_found("role", spec)),
            1 => Ok((found.remove(0), spec.to_string())),
            _ => bail!(
                "role \"{spec}\" exists in several CAs; name one of {}",
                found
                    .iter()
                    .map(|m| format!("{m}/{spec}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// `issue`: a new key and certificate under a role.
    pub async fn issue(&self, role: &str, req: &IssueRequest) -> Result<Issued> {
        let (mount, name) = self.find_role(role).await?;
        let a = self
            .write(&format!("{mount}/issue/{name}"), request_body(req))
            .await?;
        issued(&mount, a)
    }

    /// `sign`: a certificate for a CSR (PEM) under a role.
    pub async fn sign(&self, role: &str, csr_pem: &str, req: &IssueRequest) -> Result<Issued> {
        let (mount, name) = self.find_role(role).await?;
        let mut body = request_body(req);
        body["csr"] = json!(csr_pem);
        let a = self.write(&format!("{mount}/sign/{name}"), body).await?;
        issued(&mount, a)
    }

    /// The certificate with this serial, from whichever mount issued it.
    pub async fn get_cert(&self, serial: &Serial) -> Result<CertRecord> {
        for m in self.pki_mounts().await? {
            if let Some(rec) = self.read_cert(&m, serial).await? {
                return Ok(rec);
            }
        }
        Err(not_found("certificate", &serial.to_string()))
    }

    async fn read_cert(&self, mount: &str, serial: &Serial) -> Result<Option<CertRecord>> {
        let Some(a) = self.read(&format!("{mount}/cert/{serial}")).await? else {
            return Ok(None);
        };
        let cert_pem = str_of(&a.data, "certificate")?.to_string();
        let f = cert::facts(&first_der(&cert_pem)?)?;
        Ok(Some(CertRecord {
            serial: f.serial,
            ca: mount.to_string(),
            common_name: f.common_name.unwrap_or_default(),
            not_before: f.not_before,
            not_after: f.not_after,
            revoked_at: unix(&a.data, "revocation_time"),
            reason: a
                .data
                .get("revocation_reason")
                .and_then(Value::as_str)
                .and_then(|r| r.parse().ok()),
            cert_pem,
            role: a.data.get("role").and_then(Value::as_str).map(String::from),
        }))
    }

    /// `revoke`: the record as it was, and what the revocation did.
    pub async fn revoke(
        &self,
        serial: &Serial,
        reason: Reason,
    ) -> Result<(CertRecord, RevokeOutcome)> {
        let rec = self.get_cert(serial).await?;
        if let Some(at) = rec.revoked_at {
            let ca = rec.ca.clone();
            return Ok((rec, RevokeOutcome::AlreadyRevoked { ca, at }));
        }
        let a = self
            .write(
                &format!("{}/revoke", rec.ca),
                json!({ "serial_number": serial.to_string(), "reason": reason.to_string() }),
            )
            .await?;
        let at = unix(&a.data, "revocation_time").unwrap_or_else(OffsetDateTime::now_utc);
        let ca = rec.ca.clone();
        Ok((rec, RevokeOutcome::Revoked { ca, at }))
    }

    /// `crl`: the CA's current CRL (DER) and how many serials it lists.
    pub async fn crl(&self, ca: &str) -> Result<(Vec<u8>, usize)> {
        self.get_ca(ca).await?;
        let (status, der) = self.call(Method::GET, &format!("{ca}/crl"), None).await?;
        if status != 200 {
            bail!("{} answered HTTP {status} to {ca}/crl", self.addr);
        }
        let revoked = self.list(&format!("{ca}/certs/revoked")).await?.len();
        Ok((der.to_vec(), revoked))
    }

    /// `certs` through the inventory: every page of `GET <mount>/inventory?query` for one or
    /// every pki mount; `None` when the server has no inventory (404).
    pub async fn search_certs(
        &self,
        query: &str,
        ca: Option<&str>,
    ) -> Result<Option<Vec<CertRecord>>> {
        let mounts = match ca {
            Some(ca) => vec![ca.to_string()],
            None => self.pki_mounts().await?,
        };
        let mut out = Vec::new();
        for m in mounts {
            let mut after = String::new();
            for _ in 0..100_000 {
                let path = format!("{m}/inventory?{query}&limit=500{after}");
                let Some(a) = self.read(&path).await? else {
                    return Ok(None);
                };
                for c in a.data["certs"].as_array().into_iter().flatten() {
                    let Some(rec) = inventory_row(c) else {
                        continue;
                    };
                    out.push(rec);
                }
                match a.data["next"].as_str() {
                    Some(next) => after = format!("&after={next}"),
                    None => break,
                }
            }
        }
        Ok(Some(out))
    }

    /// `certs`: the certificates of one or every CA, filtered as the local store does.
    pub async fn list_certs(&self, filter: &CertFilter) -> Result<Vec<CertRecord>> {
        let mounts = match &filter.ca {
            Some(ca) => vec![ca.clone()],
            None => self.pki_mounts().await?,
        };
        let mut out = Vec::new();
        for m in mounts {
            let path = if filter.revoked_only {
                format!("{m}/certs/revoked")
            } else {
                format!("{m}/certs")
            };
            for key in self.list(&path).await? {
                let Ok(serial) = Serial::parse(&key) else {
                    continue;
                };
                let Some(rec) = self.read_cert(&m, &serial).await? else {
                    continue;
                };
                if let Some(before) = filter.expiring_before {
                    if rec.revoked_at.is_some() || rec.not_after >= before {
                        continue;
                    }
                }
                out.push(rec);
            }
        }
        Ok(out)
    }
}

fn ca_body(req: &RootRequest) -> Value {
    let mut body = json!({
        "common_name": req.common_name,
        "key_type": req.key_type.kind(),
        "key_bits": req.key_type.bits(),
        "ttl": secs(req.ttl),
    });
    if let Some(n) = req.path_len {
        body["max_path_length"] = json!(n.to_string());
    }
    body
}

fn request_body(req: &IssueRequest) -> Value {
    let mut body = json!({
        "alt_names": req.alt_names.join(","),
        "ip_sans": req.ip_sans.join(","),
        "uri_sans": req.uri_sans.join(","),
        "exclude_cn_from_sans": req.exclude_cn_from_sans,
    });
    if !req.common_name.is_empty() {
        body["common_name"] = json!(req.common_name);
    }
    if let Some(t) = req.ttl {
        body["ttl"] = json!(secs(t));
    }
    body
}

fn issued(mount: &str, a: Answer) -> Result<Issued> {
    let cert_pem = str_of(&a.data, "certificate")?.to_string();
    let cert_der = first_der(&cert_pem)?;
    let f = cert::facts(&cert_der)?;
    let key = match a.data.get("private_key").and_then(Value::as_str) {
        Some(k) => Some(PrivateKey::from_pem(k).context("the server's private_key")?),
        None => None,
    };
    Ok(Issued {
        names: mutual_store::inventory_names(&f.dns_names, &f.ip_addresses, &f.uris, &f.emails),
        serial: f.serial,
        common_name: f.common_name.unwrap_or_default(),
        cert_der,
        cert_pem,
        issuing_ca_pem: str_of(&a.data, "issuing_ca")?.to_string(),
        ca_chain_pem: strings(&a.data, "ca_chain"),
        key,
        not_before: f.not_before,
        not_after: f.not_after,
        ca_name: mount.to_string(),
        warnings: a.warnings,
    })
}

fn role_from_vault(mount: &str, name: &str, v: &Value) -> Role {
    let d = Role::default();
    let b = |k: &str, dflt: bool| v.get(k).and_then(Value::as_bool).unwrap_or(dflt);
    let dur = |k: &str| {
        v.get(k)
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
    };
    Role {
        name: name.to_string(),
        issuer: mount.to_string(),
        allowed_domains: strings(v, "allowed_domains"),
        allow_bare_domains: b("allow_bare_domains", d.allow_bare_domains),
        allow_subdomains: b("allow_subdomains", d.allow_subdomains),
        allow_glob_domains: b("allow_glob_domains", d.allow_glob_domains),
        allow_localhost: b("allow_localhost", d.allow_localhost),
        allow_any_name: b("allow_any_name", d.allow_any_name),
        allow_wildcards: b("allow_wildcard_certificates", d.allow_wildcards),
        allow_ip_sans: b("allow_ip_sans", d.allow_ip_sans),
        enforce_hostnames: b("enforce_hostnames", d.enforce_hostnames),
        allowed_uri_sans: strings(v, "allowed_uri_sans"),
        require_cn: b("require_cn", d.require_cn),
        server_flag: b("server_flag", d.server_flag),
        client_flag: b("client_flag", d.client_flag),
        use_csr_common_name: b("use_csr_common_name", d.use_csr_common_name),
        use_csr_sans: b("use_csr_sans", d.use_csr_sans),
        key_type: v
            .get("key_type")
            .and_then(Value::as_str)
            .unwrap_or(&d.key_type)
            .to_string(),
        key_bits: v
            .get("key_bits")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(d.key_bits),
        ttl: dur("ttl"),
        max_ttl: dur("max_ttl"),
        not_before_duration: dur("not_before_duration").unwrap_or(d.not_before_duration),
        ou: strings(v, "ou"),
        organization: strings(v, "organization"),
        no_store: b("no_store", d.no_store),
        ..d.clone()
    }
}

/// A row of `GET <mount>/inventory` as the record `certs` prints.
fn inventory_row(c: &Value) -> Option<CertRecord> {
    let time = |k: &str| {
        c[k].as_str().and_then(|t| {
            OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
    };
    let revoked_at = time("revocation_time_rfc3339");
    Some(CertRecord {
        serial: Serial::parse(c["serial_number"].as_str()?).ok()?,
        ca: c["issuer"].as_str()?.to_string(),
        common_name: c["common_name"].as_str()?.to_string(),
        not_before: time("not_before")?,
        not_after: time("not_after")?,
        revoked_at,
        reason: revoked_at.map(|_| {
            c["revocation_reason"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or_default()
        }),
        cert_pem: String::new(),
        role: c["role"].as_str().map(str::to_string),
    })
}

/// A rotation as `<mount>/rotation` answers it (ids and phase are what `ca list` shows).
fn rotation_of(data: &Value) -> Option<mutual_pki::rotation::Rotation> {
    let phase = match data["phase"].as_str()? {
        "staged" => mutual_pki::rotation::Phase::Staged,
        "switched" => mutual_pki::rotation::Phase::Switched,
        _ => mutual_pki::rotation::Phase::Retired,
    };
    Some(mutual_pki::rotation::Rotation {
        old: data["old_issuer"].as_str()?.to_string(),
        new: data["new_issuer"].as_str()?.to_string(),
        cross: data["cross_signed_issuer"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        phase,
        staged_at: 0,
        switch_at: 0,
        switched_at: None,
        retired_at: None,
        retire_after: None,
    })
}
