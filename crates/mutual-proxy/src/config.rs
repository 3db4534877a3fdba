//! The proxy's configuration: the TOML file as written ([`FileConfig`]) and the checked plan it
//! becomes ([`Config`]). Pure: parsing and validation read no file and open no socket; every
//! error names the place in the file and what is expected.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mutual_tls::{DenyAt, Matcher, Policy};
use serde::Deserialize;

/// A configuration that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The TOML does not parse, or has an unknown or mistyped key.
    #[error("config: {0}")]
    Toml(String),
    /// A value parses but is not allowed.
    #[error("config: {at}: {reason}")]
    Invalid {
        /// Where (`listener[0].route[1].allow[0]`).
        at: String,
        /// What is wrong.
        reason: String,
    },
}

pub(crate) fn invalid(at: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        at: at.into(),
        reason: reason.into(),
    }
}

/// The TOML file as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The admin listener (metrics, `/ready`, `/live`).
    pub admin: Option<FileAdmin>,
    /// Access-log format: `human` (default) or `json`.
    pub log_format: Option<String>,
    /// One log line per request (default true).
    pub access_log: Option<bool>,
    /// The mTLS listeners.
    #[serde(default, rename = "listener")]
    pub listeners: Vec<FileListener>,
    /// The backends.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<FileUpstream>,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileAdmin {
    /// Plain-HTTP address of the admin listener.
    pub listen: String,
}

/// `[[listener]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileListener {
    /// Address to listen on.
    pub listen: String,
    /// CA bundle client certificates must chain to (the CA's trust bundle when enrolled).
    #[serde(default)]
    pub ca: PathBuf,
    /// The proxy's certificate chain (none when enrolled).
    #[serde(default)]
    pub cert: PathBuf,
    /// The proxy's key (none when enrolled).
    #[serde(default)]
    pub key: PathBuf,
    /// `[listener.enroll]`: the certificate comes from a CA and renews itself.
    pub enroll: Option<crate::enroll::FileEnroll>,
    /// CRL files.
    #[serde(default)]
    pub crl: Vec<PathBuf>,
    /// Handshake time limit (`10s`).
    pub handshake_timeout: Option<String>,
    /// Idle keep-alive time limit (`60s`).
    pub idle_timeout: Option<String>,
    /// Whole-request time limit, backend answer included (`30s`).
    pub request_timeout: Option<String>,
    /// Concurrent connections.
    pub max_connections: Option<usize>,
    /// Request header bytes (431 beyond).
    pub max_header_bytes: Option<usize>,
    /// Request body bytes (413 beyond).
    pub max_body_bytes: Option<u64>,
    /// Also send RFC 9440 `Client-Cert` / `Client-Cert-Chain`.
    #[serde(default)]
    pub client_cert_headers: bool,
    /// `required` (default) or `optional`: whether a client without a certificate completes
    /// the handshake (`http` mode), to be answered 401, or `UNAUTHENTICATED` for gRPC.
    pub client_certificate: Option<String>,
    /// The routes, tried in order of longest path prefix (`http` mode).
    #[serde(default, rename = "route")]
    pub routes: Vec<FileRoute>,
    /// `http` (default: routes by Host and path) or `tcp` (mTLS in, raw TCP out).
    pub mode: Option<String>,
    /// `tcp` mode: the upstream every connection goes to.
    pub upstream: Option<String>,
    /// `tcp` mode: identity matchers checked in the handshake; a caller matching any passes.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Fetch CRLs from the distribution points of the CA file's certificates and `crl_urls`.
    #[serde(default)]
    pub crl_fetch: bool,
    /// How often fetched CRLs are refreshed (default `5m`); sooner when a nextUpdate passes.
    pub crl_refresh: Option<String>,
    /// `keep_last` (default) or `fail_closed`: what a failed refresh does.
    pub crl_stale: Option<String>,
    /// More `http://` CRL URLs to fetch.
    #[serde(default)]
    pub crl_urls: Vec<String>,
    /// The CA's revocation feed to follow (`https://ca:8200/v1/pki`; comma-separated nodes).
    pub revocation_feed: Option<String>,
    /// The CA's TLS root when the feed is https.
    pub revocation_feed_ca: Option<PathBuf>,
    /// `keep_last` (default) or `fail_closed`: what an unreachable feed does.
    pub revocation_feed_stale: Option<String>,
    /// Under `fail_closed`, how old the last contact may be (default `60s`).
    pub revocation_feed_max_stale: Option<String>,
}

/// `[[listener.route]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRoute {
    /// Host name this route serves (`*` for any).
    #[serde(default = "any_host")]
    pub host: String,
    /// Path prefix (`/`).
    #[serde(default = "root_path")]
    pub path: String,
    /// Name of the upstream.
    pub upstream: String,
    /// Identity matchers; a caller matching any is allowed.
    #[serde(default)]
    pub allow: Vec<String>,
    /// `http` (403 with a body naming the caller) or `handshake`.
    pub deny_at: Option<String>,
}

fn any_host() -> String {
    "*".into()
}
fn root_path() -> String {
    "/".into()
}

/// `[[upstream]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileUpstream {
    /// Name routes refer to.
    pub name: String,
    /// `http://host:port` of each server.
    pub servers: Vec<String>,
    /// `round_robin` (default) or `least_requests`.
    pub balance: Option<String>,
    /// `h1` (default) or `h2c`.
    pub protocol: Option<String>,
    /// Consecutive failures that eject a server (default 3).
    pub eject_after: Option<u32>,
    /// How long an ejected server rests (default `10s`).
    pub eject_for: Option<String>,
    /// Connect time limit (default `2s`).
    pub connect_timeout: Option<String>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Admin listener address.
    pub admin: Option<SocketAddr>,
    /// Access logs as JSON.
    pub json_logs: bool,
    /// One log line per request.
    pub access_log: bool,
    /// The listeners.
    pub listeners: Vec<ListenerConfig>,
    /// The upstreams.
    pub upstreams: Vec<UpstreamConfig>,
}

/// A checked listener.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Address.
    pub listen: SocketAddr,
    /// CA bundle.
    pub ca: PathBuf,
    /// Certificate chain.
    pub cert: PathBuf,
    /// Key.
    pub key: PathBuf,
    /// CRLs.
    pub crls: Vec<PathBuf>,
    /// Enrollment at a CA instead of `cert` and `key`.
    pub enroll: Option<crate::enroll::EnrollConfig>,
    /// Limits.
    pub limits: Limits,
    /// RFC 9440 headers too.
    pub client_cert_headers: bool,
    /// Whether a client must present a certificate in the handshake.
    pub client_certificate: ClientCertificate,
    /// Routes, longest path prefix first (empty in `tcp` mode).
    pub routes: Vec<RouteConfig>,
    /// In `tcp` mode, where every connection goes and who may open one.
    pub tcp: Option<TcpRoute>,
    /// CRLs fetched over HTTP, when enabled.
    pub crl_fetch: Option<CrlFetch>,
    /// The revocation feed followed, when enabled.
    pub revocation_feed: Option<crate::revocation::FeedConfig>,
    /// The policy each handshake enforces, by the name the client asks for; worked out once
    /// here so that a connection takes an `Arc` instead of building a policy.
    pub handshake: HandshakePolicies,
}

/// Whether a listener's handshake requires a client certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientCertificate {
    /// A client without one is refused in the handshake.
    #[default]
    Required,
    /// A client without one gets through the handshake, and every request it sends is answered
    /// with what is missing: 401, or gRPC's `UNAUTHENTICATED`, which a gRPC client can only
    /// receive over an established connection.
    Optional,
}

/// How a listener fetches CRLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFetch {
    /// The refresh interval.
    pub refresh: Duration,
    /// What a failed refresh does.
    pub stale: crate::crlstate::Stale,
    /// URLs configured explicitly (those of the CA file are added when it is read).
    pub urls: Vec<crate::crlstate::HttpUrl>,
}

/// The one destination of a `tcp` listener.
#[derive(Debug, Clone)]
pub struct TcpRoute {
    /// A name for logs and metrics: `tcp:` + the upstream's name.
    pub name: String,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
    /// Who may connect; enforced in the handshake.
    pub policy: Arc<Policy>,
}

/// Bounds on what a client may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Handshake time.
    pub handshake_timeout: Duration,
    /// Idle keep-alive time.
    pub idle_timeout: Duration,
    /// Request time, backend included.
    pub request_timeout: Duration,
    /// Concurrent connections.
    pub max_connections: usize,
    /// Header bytes.
    pub max_header_bytes: usize,
    /// Body bytes.
    pub max_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// The limits raised to what the proxy can work with: one connection at least, and the
    /// 8 KiB of headers that hyper's HTTP/1 reader needs.
    pub fn usable(self) -> Limits {
        Limits {
            max_connections: self.max_connections.max(1),
            max_header_bytes: self.max_header_bytes.max(8192),
            ..self
        }
    }
}

/// A checked route.
#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// A name for logs and metrics: `host` + `path`.
    pub name: String,
    /// Lower-case host, or `*`.
    pub host: String,
    /// Path prefix.
    pub path: String,
    /// Index into [`Config::upstreams`].
    pub upstream: usize,
    /// Who may call.
    pub policy: Arc<Policy>,
    /// Where denials happen.
    pub deny_at: DenyAt,
}

/// The policy each handshake enforces, by the server name (SNI) the client asks for, worked
/// out once per configuration: a connection takes an `Arc` of it, nothing is cloned. (Routing
/// itself, which holds the Host to that name, is [`crate::route`]'s.)
#[derive(Debug, Clone, Default)]
pub struct HandshakePolicies {
    /// A name some route is for (lower case), and the policy of a connection made for it.
    named: Vec<(String, Option<Arc<Policy>>)>,
    /// The policy of a connection made for any other name, or for none.
    other: Option<Arc<Policy>>,
}

impl HandshakePolicies {
    /// The same policy whatever the name (a `tcp` listener's).
    pub fn always(policy: Arc<Policy>) -> HandshakePolicies {
        HandshakePolicies {
            named: Vec::new(),
            other: Some(policy),
        }
    }

    /// The policies of a listener's routes: when every route a connection made for a name may
    /// reach refuses at the handshake, a caller allowed by none of them is refused there;
    /// otherwise the handshake admits any verified caller and routes answer 403.
    pub fn of(routes: &[RouteConfig]) -> HandshakePolicies {
        let mut named: Vec<(String, Option<Arc<Policy>>)> = Vec::new();
        for r in routes {
            if r.host != "*" && !named.iter().any(|(h, _)| *h == r.host) {
                named.push((r.host.clone(), reachable_policy(routes, Some(&r.host))));
            }
        }
        HandshakePolicies {
            named,
            other: reachable_policy(routes, None),
        }
    }

    /// The policy to enforce in the handshake of a connection made for `sni`, if any.
    pub fn for_sni(&self, sni: Option<&str>) -> Option<Arc<Policy>> {
        let named = sni.and_then(|s| self.named.iter().find(|(h, _)| h.eq_ignore_ascii_case(s)));
        match named {
            Some((_, p)) => p.clone(),
            None => self.other.clone(),
        }
    }
}

/// The handshake policy of the routes a connection made for `sni` may reach.
fn reachable_policy(routes: &[RouteConfig], sni: Option<&str>) -> Option<Arc<Policy>> {
    let reachable: Vec<&RouteConfig> = routes
        .iter()
        .filter(|r| r.host == "*" || sni.is_some_and(|s| r.host.eq_ignore_ascii_case(s)))
        .collect();
    match reachable.as_slice() {
        [] => None,
        rs if rs.iter().any(|r| r.deny_at == DenyAt::Http) => None,
        [only] => Some(Arc::clone(&only.policy)),
        rs => Some(Arc::new(Policy::new(
            rs.iter()
                .flat_map(|r| r.policy.matchers().iter().cloned())
                .collect(),
        ))),
    }
}

/// How an upstream picks a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// In turn.
    RoundRobin,
    /// The one with the fewest requests in flight.
    LeastRequests,
}

/// The protocol spoken to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with keep-alive.
    H1,
    /// HTTP/2 over cleartext, prior knowledge.
    H2c,
}

/// A checked upstream.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Name.
    pub name: String,
    /// `host:port` authorities of the servers.
    pub servers: Vec<String>,
    /// Balancing.
    pub balance: Balance,
    /// Protocol.
    pub protocol: Protocol,
    /// Consecutive failures before ejection.
    pub eject_after: u32,
    /// Ejection time.
    pub eject_for: Duration,
    /// Connect time limit.
    pub connect_timeout: Duration,
}

impl UpstreamConfig {
    /// An upstream with the default balancing, protocol and health rules: round robin, HTTP/1.1,
    /// ejected for 10 s after 3 failures in a row, 2 s to connect.
    pub fn new(name: impl Into<String>, servers: Vec<String>) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            servers,
            balance: Balance::RoundRobin,
            protocol: Protocol::H1,
            eject_after: 3,
            eject_for: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// One listener that sends every request, whatever its Host and path, to one backend: the
/// proxy that `mutual proxy`'s flags describe. Every part is already parsed, so building the
/// [`Config`] cannot fail; a bad value was reported by the flag that carried it.
#[derive(Debug, Clone)]
pub struct SingleBackend {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The backend's `host:port`, as [`backend_authority`] reads it from `http://host:port`.
    pub backend: String,
    /// CA bundle client certificates must chain to.
    pub ca: PathBuf,
    /// The proxy's certificate chain.
    pub cert: PathBuf,
    /// The proxy's key.
    pub key: PathBuf,
    /// CRL files.
    pub crls: Vec<PathBuf>,
    /// Who may call; none given means any verified caller.
    pub allow: Vec<Matcher>,
    /// Where a caller that `allow` does not match is refused.
    pub deny_at: DenyAt,
    /// Admin listener address.
    pub admin: Option<SocketAddr>,
    /// Access logs as JSON.
    pub json_logs: bool,
    /// One log line per request.
    pub access_log: bool,
    /// Limits on what a client may take.
    pub limits: Limits,
    /// Also send RFC 9440 `Client-Cert` / `Client-Cert-Chain`.
    pub client_cert_headers: bool,
    /// Enrollment at a CA instead of `cert` and `key`.
    pub enroll: Option<crate::enroll::EnrollConfig>,
}

impl SingleBackend {
    /// The configuration: one listener, one `*` route for `/`, one upstream named `backend`.
    pub fn config(self) -> Config {
        let policy = if self.allow.is_empty() {
            Policy::any()
        } else {
            Policy::new(self.allow)
        };
        let routes = vec![RouteConfig {
            name: "*/".into(),
            host: "*".into(),
            path: "/".into(),
            upstream: 0,
            policy: Arc::new(policy),
            deny_at: self.deny_at,
        }];
        Config {
            admin: self.admin,
            json_logs: self.json_logs,
            access_log: self.access_log,
            listeners: vec![ListenerConfig {
                listen: self.listen,
                ca: self.ca,
                cert: self.cert,
                key: self.key,
                crls: self.crls,
                enroll: self.enroll,
                limits: self.limits.usable(),
                client_cert_headers: self.client_cert_headers,
                client_certificate: ClientCertificate::Required,
                handshake: HandshakePolicies::of(&routes),
                routes,
                tcp: None,
                crl_fetch: None,
                revocation_feed: None,
            }],
            upstreams: vec![UpstreamConfig::new("backend", vec![self.backend])],
        }
    }
}

fn duration(at: &str, v: &Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => mutual_pki::duration::parse(s).map_err(|e| invalid(at, e.to_string())),
    }
}

/// One of two or more words; none given is the first. The error lists them all.
fn choice<T: Copy>(at: &str, v: Option<&str>, options: &[(&str, T)]) -> Result<T, ConfigError> {
    let Some(v) = v else {
        return Ok(options[0].1);
    };
    options
        .iter()
        .find(|(word, _)| *word == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| {
            let words: Vec<&str> = options.iter().map(|(w, _)| *w).collect();
            invalid(at, format!("\"{v}\": expected {}", words.join(" or ")))
        })
}

/// The `host:port` of an `http://host:port[/]` (or, for `tcp` listeners, `tcp://host:port`)
/// URL; the only forms a backend may take.
pub fn backend_authority(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("tcp://"))
        .ok_or_else(|| {
            format!("\"{url}\": a backend is http://HOST:PORT (tcp://HOST:PORT for tcp listeners)")
        })?;
    let auth = rest.strip_suffix('/').unwrap_or(rest);
    if auth.is_empty() || auth.contains('/') || auth.contains('@') {
        return Err(format!(
            "\"{url}\": a backend is http://HOST:PORT, without a path"
        ));
    }
    let Some((host, port)) = auth.rsplit_once(':') else {
        return Err(format!("\"{url}\": the port is missing"));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(format!("\"{url}\": bad host or port"));
    }
    Ok(auth.to_string())
}

fn matchers(at: &str, allow: &[String]) -> Result<Arc<Policy>, ConfigError> {
    let mut out = Vec::new();
    for (k, m) in allow.iter().enumerate() {
        out.push(m.parse().map_err(|e: mutual_tls::MatcherError| {
            invalid(format!("{at}.allow[{k}]"), e.to_string())
        })?);
    }
    Ok(Arc::new(Policy::new(out)))
}

fn upstream_index(
    at: &str,
    upstreams: &[UpstreamConfig],
    name: &str,
) -> Result<usize, ConfigError> {
    upstreams
        .iter()
        .position(|u| u.name == name)
        .ok_or_else(|| {
            invalid(
                format!("{at}.upstream"),
                format!("no upstream named \"{name}\""),
            )
        })
}

fn socket_addr(at: &str, v: &str) -> Result<SocketAddr, ConfigError> {
    v.parse()
        .map_err(|_| invalid(at, format!("\"{v}\" is not HOST:PORT")))
}

impl FileConfig {
    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string().trim().replace('\n', " ")))
    }

    /// Checks everything that can be checked without files: addresses, durations, matchers,
    /// names, references.
    pub fn check(&self) -> Result<Config, ConfigError> {
        let admin = match &self.admin {
            None => None,
            Some(a) => Some(socket_addr("admin.listen", &a.listen)?),
        };
        let json_logs = choice(
            "log_format",
            self.log_format.as_deref(),
            &[("human", false), ("json", true)],
        )?;
        let upstreams = self.check_upstreams()?;
        if self.listeners.is_empty() {
            return Err(invalid("listener", "no [[listener]]"));
        }
        let mut addrs = HashSet::new();
        let listeners = self
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| l.check(&format!("listener[{i}]"), &upstreams, &mut addrs))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Config {
            admin,
            json_logs,
            access_log: self.access_log.unwrap_or(true),
            listeners,
            upstreams,
        })
    }

    fn check_upstreams(&self) -> Result<Vec<UpstreamConfig>, ConfigError> {
        let mut names = HashSet::new();
        let mut upstreams = Vec::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let at = format!("upstream[{i}]");
            if !names.insert(u.name.as_str()) {
                return Err(invalid(
                    at,
                    format!("duplicate upstream name \"{}\"", u.name),
                ));
            }
            upstreams.push(u.check(&at)?);
        }
        Ok(upstreams)
    }
}

impl FileUpstream {
    fn check(&self, at: &str) -> Result<UpstreamConfig, ConfigError> {
        if self.servers.is_empty() {
            return Err(invalid(at, "no servers"));
        }
        let servers = self
            .servers
            .iter()
            .map(|s| backend_authority(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| invalid(format!("{at}.servers"), r))?;
        let d = UpstreamConfig::new(&self.name, servers);
        Ok(UpstreamConfig {
            balance: choice(
                &format!("{at}.balance"),
                self.balance.as_deref(),
                &[
                    ("round_robin", Balance::RoundRobin),
                    ("least_requests", Balance::LeastRequests),
                ],
            )?,
            protocol: choice(
                &format!("{at}.protocol"),
                self.protocol.as_deref(),
                &[("h1", Protocol::H1), ("h2c", Protocol::H2c)],
            )?,
            eject_after: self.eject_after.unwrap_or(d.eject_after).max(1),
            eject_for: duration(&format!("{at}.eject_for"), &self.eject_for, d.eject_for)?,
            connect_timeout: duration(
                &format!("{at}.connect_timeout"),
                &self.connect_timeout,
                d.connect_timeout,
            )?,
            ..d
        })
    }
}

impl FileListener {
    /// Checks one listener; `addrs` holds the addresses of the listeners before it.
    fn check(
        &self,
        at: &str,
        upstreams: &[UpstreamConfig],
        addrs: &mut HashSet<SocketAddr>,
    ) -> Result<ListenerConfig, ConfigError> {
        let listen = socket_addr(&format!("{at}.listen"), &self.listen)?;
        // Port 0 (any free port, for tests) may be asked for more than once.
        if listen.port() != 0 && !addrs.insert(listen) {
            return Err(invalid(
                format!("{at}.listen"),
                format!("{listen} is used twice"),
            ));
        }
        let limits = self.limits(at)?;
        let tcp = self.tcp_route(at, upstreams)?;
        let crl_fetch = self.crl_fetch(at)?;
        let revocation_feed = self.revocation_feed(at)?;
        let enroll = crate::enroll::check_listener(self, at)?;
        if tcp.is_none() && self.routes.is_empty() {
            return Err(invalid(at, "no [[listener.route]]"));
        }
        let mut routes = self
            .routes
            .iter()
            .enumerate()
            .map(|(j, r)| r.check(&format!("{at}.route[{j}]"), upstreams))
            .collect::<Result<Vec<_>, _>>()?;
        // Longest prefix first; a named host before `*` for the same prefix.
        routes.sort_by(|a, b| {
            b.path
                .len()
                .cmp(&a.path.len())
                .then_with(|| (a.host == "*").cmp(&(b.host == "*")))
        });
        let client_certificate = match choice(
            &format!("{at}.client_certificate"),
            self.client_certificate.as_deref(),
            &[("required", false), ("optional", true)],
        )? {
            true if tcp.is_some() => {
                return Err(invalid(
                    format!("{at}.client_certificate"),
                    "a tcp listener cannot take callers without a certificate: it has no request to answer",
                ))
            }
            true => ClientCertificate::Optional,
            false => ClientCertificate::Required,
        };
        let handshake = match &tcp {
            Some(t) => HandshakePolicies::always(Arc::clone(&t.policy)),
            None => HandshakePolicies::of(&routes),
        };
        Ok(ListenerConfig {
            listen,
            ca: self.ca.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            crls: self.crl.clone(),
            enroll,
            limits,
            client_cert_headers: self.client_cert_headers,
            client_certificate,
            routes,
            tcp,
            crl_fetch,
            revocation_feed,
            handshake,
        })
    }

    fn limits(&self, at: &str) -> Result<Limits, ConfigError> {
        let d = Limits::default();
        let limits = Limits {
            handshake_timeout: duration(
                &format!("{at}.handshake_timeout"),
                &self.handshake_timeout,
                d.handshake_timeout,
            )?,
            idle_timeout: duration(
                &format!("{at}.idle_timeout"),
                &self.idle_timeout,
                d.idle_timeout,
            )?,
            request_timeout: duration(
                &format!("{at}.request_timeout"),
                &self.request_timeout,
                d.request_timeout,
            )?,
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_header_bytes: self.max_header_bytes.unwrap_or(d.max_header_bytes),
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes),
        };
        Ok(limits.usable())
    }

    /// The destination of a `tcp` listener; `None` for an `http` one.
    fn tcp_route(
        &self,
        at: &str,
        upstreams: &[UpstreamConfig],
    ) -> Result<Option<TcpRoute>, ConfigError> {
        let tcp = choice(
            &format!("{at}.mode"),
            self.mode.as_deref(),
            &[("http", false), ("tcp", true)],
        )?;
        if !tcp {
            if self.upstream.is_some() || !self.allow.is_empty() {
                return Err(invalid(
                    at,
                    "upstream and allow belong to [[listener.route]] unless mode = \"tcp\"",
                ));
            }
            return Ok(None);
        }
        if !self.routes.is_empty() {
            return Err(invalid(
                at,
                "a tcp listener has no [[listener.route]]; give it upstream and allow",
            ));
        }
        let Some(name) = &self.upstream else {
            return Err(invalid(
                format!("{at}.upstream"),
                "a tcp listener needs upstream = \"NAME\"",
            ));
        };
        Ok(Some(TcpRoute {
            name: format!("tcp:{name}"),
            upstream: upstream_index(at, upstreams, name)?,
            policy: matchers(at, &self.allow)?,
        }))
    }

    fn revocation_feed(
        &self,
        at: &str,
    ) -> Result<Option<crate::revocation::FeedConfig>, ConfigError> {
        use crate::crlstate::Stale;
        let Some(url) = &self.revocation_feed else {
            if self.revocation_feed_ca.is_some()
                || self.revocation_feed_stale.is_some()
                || self.revocation_feed_max_stale.is_some()
            {
                return Err(invalid(
                    at,
                    "revocation_feed_ca, revocation_feed_stale and revocation_feed_max_stale need revocation_feed",
                ));
            }
            return Ok(None);
        };
        mutual_agent::feed::split_urls(url)
            .map_err(|r| invalid(format!("{at}.revocation_feed"), r))?;
        let stale = choice(
            &format!("{at}.revocation_feed_stale"),
            self.revocation_feed_stale.as_deref(),
            &[
                ("keep_last", Stale::KeepLast),
                ("fail_closed", Stale::FailClosed),
            ],
        )?;
        Ok(Some(crate::revocation::FeedConfig {
            url: url.clone(),
            ca: self.revocation_feed_ca.clone(),
            stale,
            max_stale: duration(
                &format!("{at}.revocation_feed_max_stale"),
                &self.revocation_feed_max_stale,
                Duration::from_secs(60),
            )?,
        }))
    }

    fn crl_fetch(&self, at: &str) -> Result<Option<CrlFetch>, ConfigError> {
        use crate::crlstate::{HttpUrl, Stale};
        if !self.crl_fetch {
            if self.crl_refresh.is_some() || self.crl_stale.is_some() || !self.crl_urls.is_empty() {
                return Err(invalid(
                    at,
                    "crl_refresh, crl_stale and crl_urls need crl_fetch = true",
                ));
            }
            return Ok(None);
        }
        let stale = choice(
            &format!("{at}.crl_stale"),
            self.crl_stale.as_deref(),
            &[
                ("keep_last", Stale::KeepLast),
                ("fail_closed", Stale::FailClosed),
            ],
        )?;
        let urls = self
            .crl_urls
            .iter()
            .enumerate()
            .map(|(k, u)| HttpUrl::parse(u).map_err(|r| invalid(format!("{at}.crl_urls[{k}]"), r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(CrlFetch {
            refresh: duration(
                &format!("{at}.crl_refresh"),
                &self.crl_refresh,
                Duration::from_secs(300),
            )?,
            stale,
            urls,
        }))
    }
}

impl FileRoute {
    fn check(&self, at: &str, upstreams: &[UpstreamConfig]) -> Result<RouteConfig, ConfigError> {
        let upstream = upstream_index(at, upstreams, &self.upstream)?;
        if !self.path.starts_with('/') {
            return Err(invalid(
                format!("{at}.path"),
                format!("\"{}\" must start with /", self.path),
            ));
        }
        let policy = matchers(at, &self.allow)?;
        let deny_at = choice(
            &format!("{at}.deny_at"),
            self.deny_at.as_deref(),
            &[("http", DenyAt::Http), ("handshake", DenyAt::Handshake)],
        )?;
        let host = self.host.trim().to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid(
                format!("{at}.host"),
                "empty host (use \"*\" for any)",
            ));
        }
        Ok(RouteConfig {
            name: format!("{}{}", host, self.path),
            host,
            path: self.path.clone(),
            upstream,
            policy,
            deny_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
log_format = "json"
[admin]
listen = "127.0.0.1:9901"
[[listener]]
listen = "127.0.0.1:8443"
ca = "ca.crt"
cert = "www.crt"
key = "www.key"
crl = ["root.crl"]
idle_timeout = "30s"
[[listener.route]]
host = "www.example.com"
path = "/"
upstream = "echo"
allow = ["cn=alice.example.com"]
[[listener.route]]
host = "api.example.com"
path = "/admin"
upstream = "echo"
allow = ["issuer=Alice Intermediate Authority"]
deny_at = "handshake"
[[upstream]]
name = "echo"
servers = ["http://127.0.0.1:8080", "http://127.0.0.1:8081/"]
balance = "least_requests"
"#;

    #[test]
    fn a_good_config_checks() {
        let c = FileConfig::parse(GOOD).unwrap().check().unwrap();
        assert!(c.json_logs);
        assert_eq!(c.admin.unwrap().port(), 9901);
        let l = &c.listeners[0];
        assert_eq!(l.limits.idle_timeout, Duration::from_secs(30));
        assert_eq!(l.routes[0].path, "/admin");
        assert_eq!(l.routes[0].deny_at, DenyAt::Handshake);
        assert_eq!(l.routes[1].name, "www.example.com/");
        assert_eq!(c.upstreams[0].servers, ["127.0.0.1:8080", "127.0.0.1:8081"]);
        assert_eq!(c.upstreams[0].balance, Balance::LeastRequests);
    }

    #[test]
    fn bad_configs_say_where_and_why() {
        let cases: &[(&str, &str, &str)] = &[
            ("[[listener]", "", "config: "),
            ("bogus = 1", "", "unknown field `bogus`"),
            ("", "", "config: listener: no [[listener]]"),
            (GOOD, r#"allow = ["cn=alice.example.com"]"#, ""),
            (
                GOOD,
                "\"cn=alice.example.com\"",
                "config: listener[0].route[0].allow[0]: invalid matcher \"nope\"",
            ),
            (
                GOOD,
                "least_requests",
                "config: upstream[0].balance: \"fastest\": expected round_robin or least_requests",
            ),
            (GOOD, "\"30s\"", "config: listener[0].idle_timeout: "),
            (
                GOOD,
                "http://127.0.0.1:8081/",
                "config: upstream[0].servers: \"https://x:1\": a backend is http://HOST:PORT",
            ),
            (
                GOOD,
                "upstream = \"echo\"\nallow = [\"cn",
                "config: listener[0].route[0].upstream: no upstream named \"nope\"",
            ),
        ];
        for (base, from, want) in cases {
            let text = match *from {
                "" => base.to_string(),
                "\"cn=alice.example.com\"" => base.replacen(from, "\"nope\"", 1),
                "least_requests" => base.replacen(from, "fastest", 1),
                "\"30s\"" => base.replacen(from, "\"30 parsecs\"", 1),
                "http://127.0.0.1:8081/" => base.replacen(from, "https://x:1", 1),
                "upstream = \"echo\"\nallow = [\"cn" => {
                    base.replacen(from, "upstream = \"nope\"\nallow = [\"cn", 1)
                }
                _ => base.to_string(),
            };
            let got = FileConfig::parse(&text).and_then(|f| f.check());
            match got {
                Ok(_) => assert!(want.is_empty(), "{text} should fail with {want}"),
                Err(e) => assert!(
                    !want.is_empty() && e.to_string().contains(want),
                    "{e} !~ {want}"
                ),
            }
        }
    }

    const TCP: &str = r#"
[[listener]]
listen = "127.0.0.1:8443"
ca = "ca.crt"
cert = "www.crt"
key = "www.key"
mode = "tcp"
upstream = "db"
allow = ["cn=alice.example.com"]
[[upstream]]
name = "db"
servers = ["tcp://127.0.0.1:5432"]
"#;

    #[test]
    fn tcp_listeners_check() {
        let c = FileConfig::parse(TCP).unwrap().check().unwrap();
        let t = c.listeners[0].tcp.as_ref().expect("tcp mode");
        assert_eq!(t.name, "tcp:db");
        assert_eq!(t.upstream, 0);
        assert!(c.listeners[0].routes.is_empty());
        assert_eq!(c.upstreams[0].servers, ["127.0.0.1:5432"]);
        let cases: &[(&str, &str, &str)] = &[
            (
                "mode = \"tcp\"",
                "mode = \"udp\"",
                "listener[0].mode: \"udp\": expected http or tcp",
            ),
            (
                "upstream = \"db\"\n",
                "",
                "listener[0].upstream: a tcp listener needs upstream",
            ),
            (
                "upstream = \"db\"\n",
                "upstream = \"nope\"\n",
                "listener[0].upstream: no upstream named \"nope\"",
            ),
            (
                "\"cn=alice.example.com\"",
                "\"cn~(\"",
                "listener[0].allow[0]: ",
            ),
            (
                "mode = \"tcp\"\n",
                "",
                "upstream and allow belong to [[listener.route]]",
            ),
            (
                "[[upstream]]",
                "[[listener.route]]\nupstream = \"db\"\n[[upstream]]",
                "a tcp listener has no [[listener.route]]",
            ),
        ];
        for (from, to, want) in cases {
            let text = TCP.replacen(from, to, 1);
            let e = FileConfig::parse(&text)
                .and_then(|f| f.check())
                .expect_err(&text)
                .to_string();
            assert!(e.contains(want), "{e} !~ {want}");
        }
    }

    #[test]
    fn client_certificate_required_or_optional() {
        let c = FileConfig::parse(GOOD).unwrap().check().unwrap();
        assert_eq!(
            c.listeners[0].client_certificate,
            ClientCertificate::Required
        );
        let at = "idle_timeout = \"30s\"";
        for (value, want) in [
            ("required", Ok(ClientCertificate::Required)),
            ("optional", Ok(ClientCertificate::Optional)),
            (
                "maybe",
                Err("listener[0].client_certificate: \"maybe\": expected required or optional"),
            ),
        ] {
            let text = GOOD.replacen(at, &format!("{at}\nclient_certificate = \"{value}\""), 1);
            let got = FileConfig::parse(&text)
                .and_then(|f| f.check())
                .map(|c| c.listeners[0].client_certificate)
                .map_err(|e| e.to_string());
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{value}"),
                (Err(e), Err(w)) => assert!(e.contains(w), "{e} !~ {w}"),
                (g, w) => panic!("{value}: {g:?} vs {w:?}"),
            }
        }
        let tcp = TCP.replacen(
            "mode = \"tcp\"",
            "mode = \"tcp\"\nclient_certificate = \"optional\"",
            1,
        );
        let e = FileConfig::parse(&tcp)
            .and_then(|f| f.check())
            .expect_err("optional on tcp")
            .to_string();
        assert!(
            e.contains("listener[0].client_certificate: a tcp listener cannot take callers without a certificate"),
            "{e}"
        );
    }

    #[test]
    fn crl_fetching_checks() {
        let on = TCP.replace(
            "mode = \"tcp\"",
            "mode = \"tcp\"\ncrl_fetch = true\ncrl_refresh = \"1m\"\ncrl_stale = \"fail_closed\"\ncrl_urls = [\"http://127.0.0.1:8200/v1/pki/crl\"]",
        );
        let c = FileConfig::parse(&on).unwrap().check().unwrap();
        let f = c.listeners[0].crl_fetch.as_ref().expect("crl_fetch");
        assert_eq!(f.refresh, Duration::from_secs(60));
        assert_eq!(f.stale, crate::crlstate::Stale::FailClosed);
        assert_eq!(f.urls[0].authority, "127.0.0.1:8200");
        let plain = FileConfig::parse(TCP).unwrap().check().unwrap();
        assert!(plain.listeners[0].crl_fetch.is_none());
        let cases: &[(&str, &str, &str)] = &[
            (
                "\"fail_closed\"",
                "\"open\"",
                "listener[0].crl_stale: \"open\": expected keep_last or fail_closed",
            ),
            ("\"1m\"", "\"soon\"", "listener[0].crl_refresh: "),
            (
                "http://127.0.0.1:8200",
                "https://127.0.0.1:8200",
                "listener[0].crl_urls[0]: \"https://127.0.0.1:8200/v1/pki/crl\": only http://",
            ),
            (
                "crl_fetch = true",
                "crl_fetch = false",
                "listener[0]: crl_refresh, crl_stale and crl_urls need crl_fetch = true",
            ),
        ];
        for (from, to, want) in cases {
            let text = on.replacen(from, to, 1);
            let e = FileConfig::parse(&text)
                .and_then(|f| f.check())
                .expect_err(&text)
                .to_string();
            assert!(e.contains(want), "{e} !~ {want}");
        }
    }

    #[test]
    fn revocation_feed_checks() {
        let on = TCP.replace(
            "mode = \"tcp\"",
            "mode = \"tcp\"\nrevocation_feed = \"https://127.0.0.1:8200/v1/pki\"\nrevocation_feed_ca = \"root.pem\"\nrevocation_feed_stale = \"fail_closed\"\nrevocation_feed_max_stale = \"10s\"",
        );
        let c = FileConfig::parse(&on).unwrap().check().unwrap();
        let f = c.listeners[0]
            .revocation_feed
            .as_ref()
            .expect("revocation_feed");
        assert_eq!(f.url, "https://127.0.0.1:8200/v1/pki");
        assert_eq!(f.ca.as_deref(), Some(std::path::Path::new("root.pem")));
        assert_eq!(f.stale, crate::crlstate::Stale::FailClosed);
        assert_eq!(f.max_stale, Duration::from_secs(10));
        let plain = FileConfig::parse(TCP).unwrap().check().unwrap();
        assert!(plain.listeners[0].revocation_feed.is_none());
        let cases: &[(&str, &str, &str)] = &[
            (
                "\"fail_closed\"",
                "\"open\"",
                "listener[0].revocation_feed_stale: \"open\": expected keep_last or fail_closed",
            ),
            ("\"10s\"", "\"soon\"", "listener[0].revocation_feed_max_stale: "),
            (
                "/v1/pki\"",
                "\"",
                "listener[0].revocation_feed: revocation feed \"https://127.0.0.1:8200\": expected http(s)://HOST:PORT/v1/MOUNT",
            ),
            (
                "revocation_feed = \"https://127.0.0.1:8200/v1/pki\"\n",
                "",
                "listener[0]: revocation_feed_ca, revocation_feed_stale and revocation_feed_max_stale need revocation_feed",
            ),
        ];
        for (from, to, want) in cases {
            let text = on.replacen(from, to, 1);
            let e = FileConfig::parse(&text)
                .and_then(|f| f.check())
                .expect_err(&text)
                .to_string();
            assert!(e.contains(want), "{e} !~ {want}");
        }
    }

    #[test]
    fn backend_urls() {
        assert_eq!(
            backend_authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            backend_authority("http://localhost:80/").unwrap(),
            "localhost:80"
        );
        for bad in [
            "127.0.0.1:80",
            "http://h",
            "http://h:99999",
            "http://h:1/x",
            "http://u@h:1",
        ] {
            assert!(backend_authority(bad).is_err(), "{bad}");
        }
    }
}
