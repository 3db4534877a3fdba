//! The proxy's configuration: the TOML file as written ([`FileConfig`]) and the checked plan it
//! becomes ([`Config`]). Pure: parsing and validation read no file and open no socket; every
//! error names the place in the file and what is expected.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use mutual_tls::Policy;
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

fn invalid(at: impl Into<String>, reason: impl Into<String>) -> ConfigError {
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
    /// CA bundle client certificates must chain to.
    pub ca: PathBuf,
    /// The proxy's certificate chain.
    pub cert: PathBuf,
    /// The proxy's key.
    pub key: PathBuf,
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

/// Where denied callers are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyAt {
    /// HTTP 403 with a body naming the caller and the rule.
    Http,
    /// In the TLS handshake.
    Handshake,
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
    /// Limits.
    pub limits: Limits,
    /// RFC 9440 headers too.
    pub client_cert_headers: bool,
    /// Routes, longest path prefix first (empty in `tcp` mode).
    pub routes: Vec<RouteConfig>,
    /// In `tcp` mode, where every connection goes and who may open one.
    pub tcp: Option<TcpRoute>,
    /// CRLs fetched over HTTP, when enabled.
    pub crl_fetch: Option<CrlFetch>,
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
    pub policy: Policy,
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
    pub policy: Policy,
    /// Where denials happen.
    pub deny_at: DenyAt,
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

fn duration(at: &str, v: &Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => mutual_pki::duration::parse(s).map_err(|e| invalid(at, e.to_string())),
    }
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

fn matchers(at: &str, allow: &[String]) -> Result<Policy, ConfigError> {
    let mut out = Vec::new();
    for (k, m) in allow.iter().enumerate() {
        out.push(m.parse().map_err(|e: mutual_tls::MatcherError| {
            invalid(format!("{at}.allow[{k}]"), e.to_string())
        })?);
    }
    Ok(Policy::new(out))
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
            Some(a) => Some(a.listen.parse().map_err(|_| {
                invalid("admin.listen", format!("\"{}\" is not HOST:PORT", a.listen))
            })?),
        };
        let json_logs = match self.log_format.as_deref() {
            None | Some("human") => false,
            Some("json") => true,
            Some(o) => {
                return Err(invalid(
                    "log_format",
                    format!("\"{o}\": expected human or json"),
                ))
            }
        };
        let mut upstreams = Vec::new();
        let mut names = HashSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let at = format!("upstream[{i}]");
            if !names.insert(u.name.clone()) {
                return Err(invalid(
                    at,
                    format!("duplicate upstream name \"{}\"", u.name),
                ));
            }
            if u.servers.is_empty() {
                return Err(invalid(at, "no servers"));
            }
            let servers = u
                .servers
                .iter()
                .map(|s| backend_authority(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|r| invalid(format!("{at}.servers"), r))?;
            let balance = match u.balance.as_deref() {
                None | Some("round_robin") => Balance::RoundRobin,
                Some("least_requests") => Balance::LeastRequests,
                Some(o) => {
                    return Err(invalid(
                        format!("{at}.balance"),
                        format!("\"{o}\": expected round_robin or least_requests"),
                    ))
                }
            };
            let protocol = match u.protocol.as_deref() {
                None | Some("h1") => Protocol::H1,
                Some("h2c") => Protocol::H2c,
                Some(o) => {
                    return Err(invalid(
                        format!("{at}.protocol"),
                        format!("\"{o}\": expected h1 or h2c"),
                    ))
                }
            };
            upstreams.push(UpstreamConfig {
                name: u.name.clone(),
                servers,
                balance,
                protocol,
                eject_after: u.eject_after.unwrap_or(3).max(1),
                eject_for: duration(
                    &format!("{at}.eject_for"),
                    &u.eject_for,
                    Duration::from_secs(10),
                )?,
                connect_timeout: duration(
                    &format!("{at}.connect_timeout"),
                    &u.connect_timeout,
                    Duration::from_secs(2),
                )?,
            });
        }
        if self.listeners.is_empty() {
            return Err(invalid("listener", "no [[listener]]"));
        }
        let mut listeners = Vec::new();
        let mut addrs = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let at = format!("listener[{i}]");
            let listen: SocketAddr = l.listen.parse().map_err(|_| {
                invalid(
                    format!("{at}.listen"),
                    format!("\"{}\" is not HOST:PORT", l.listen),
                )
            })?;
            // Port 0 (any free port, for tests) may be asked for more than once.
            if listen.port() != 0 && !addrs.insert(listen) {
                return Err(invalid(
                    format!("{at}.listen"),
                    format!("{listen} is used twice"),
                ));
            }
            let d = Limits::default();
            let limits = Limits {
                handshake_timeout: duration(
                    &format!("{at}.handshake_timeout"),
                    &l.handshake_timeout,
                    d.handshake_timeout,
                )?,
                idle_timeout: duration(
                    &format!("{at}.idle_timeout"),
                    &l.idle_timeout,
                    d.idle_timeout,
                )?,
                request_timeout: duration(
                    &format!("{at}.request_timeout"),
                    &l.request_timeout,
                    d.request_timeout,
                )?,
                max_connections: l.max_connections.unwrap_or(d.max_connections).max(1),
                // hyper's HTTP/1 reader needs at least 8 KiB.
                max_header_bytes: l.max_header_bytes.unwrap_or(d.max_header_bytes).max(8192),
                max_body_bytes: l.max_body_bytes.unwrap_or(d.max_body_bytes),
            };
            let tcp = match l.mode.as_deref() {
                None | Some("http") => {
                    if l.upstream.is_some() || !l.allow.is_empty() {
                        return Err(invalid(
                            at,
                            "upstream and allow belong to [[listener.route]] unless mode = \"tcp\"",
                        ));
                    }
                    None
                }
                Some("tcp") => {
                    if !l.routes.is_empty() {
                        return Err(invalid(
                            at,
                            "a tcp listener has no [[listener.route]]; give it upstream and allow",
                        ));
                    }
                    let Some(name) = &l.upstream else {
                        return Err(invalid(
                            format!("{at}.upstream"),
                            "a tcp listener needs upstream = \"NAME\"",
                        ));
                    };
                    Some(TcpRoute {
                        name: format!("tcp:{name}"),
                        upstream: upstream_index(&at, &upstreams, name)?,
                        policy: matchers(&at, &l.allow)?,
                    })
                }
                Some(o) => {
                    return Err(invalid(
                        format!("{at}.mode"),
                        format!("\"{o}\": expected http or tcp"),
                    ))
                }
            };
            let crl_fetch = if l.crl_fetch {
                let stale = match l.crl_stale.as_deref() {
                    None | Some("keep_last") => crate::crlstate::Stale::KeepLast,
                    Some("fail_closed") => crate::crlstate::Stale::FailClosed,
                    Some(o) => {
                        return Err(invalid(
                            format!("{at}.crl_stale"),
                            format!("\"{o}\": expected keep_last or fail_closed"),
                        ))
                    }
                };
                let urls = l
                    .crl_urls
                    .iter()
                    .enumerate()
                    .map(|(k, u)| {
                        crate::crlstate::HttpUrl::parse(u)
                            .map_err(|r| invalid(format!("{at}.crl_urls[{k}]"), r))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(CrlFetch {
                    refresh: duration(
                        &format!("{at}.crl_refresh"),
                        &l.crl_refresh,
                        Duration::from_secs(300),
                    )?,
                    stale,
                    urls,
                })
            } else if l.crl_refresh.is_some() || l.crl_stale.is_some() || !l.crl_urls.is_empty() {
                return Err(invalid(
                    at,
                    "crl_refresh, crl_stale and crl_urls need crl_fetch = true",
                ));
            } else {
                None
            };
            if tcp.is_none() && l.routes.is_empty() {
                return Err(invalid(at, "no [[listener.route]]"));
            }
            let mut routes = Vec::new();
            for (j, r) in l.routes.iter().enumerate() {
                let at = format!("{at}.route[{j}]");
                let upstream = upstream_index(&at, &upstreams, &r.upstream)?;
                if !r.path.starts_with('/') {
                    return Err(invalid(
                        format!("{at}.path"),
                        format!("\"{}\" must start with /", r.path),
                    ));
                }
                let policy = matchers(&at, &r.allow)?;
                let deny_at = match r.deny_at.as_deref() {
                    None | Some("http") => DenyAt::Http,
                    Some("handshake") => DenyAt::Handshake,
                    Some(o) => {
                        return Err(invalid(
                            format!("{at}.deny_at"),
                            format!("\"{o}\": expected http or handshake"),
                        ))
                    }
                };
                let host = r.host.trim().to_ascii_lowercase();
                if host.is_empty() {
                    return Err(invalid(
                        format!("{at}.host"),
                        "empty host (use \"*\" for any)",
                    ));
                }
                routes.push(RouteConfig {
                    name: format!("{}{}", host, r.path),
                    host,
                    path: r.path.clone(),
                    upstream,
                    policy,
                    deny_at,
                });
            }
            // Longest prefix first; a named host before `*` for the same prefix.
            routes.sort_by(|a, b| {
                b.path
                    .len()
                    .cmp(&a.path.len())
                    .then_with(|| (a.host == "*").cmp(&(b.host == "*")))
            });
            listeners.push(ListenerConfig {
                listen,
                ca: l.ca.clone(),
                cert: l.cert.clone(),
                key: l.key.clone(),
                crls: l.crl.clone(),
                limits,
                client_cert_headers: l.client_cert_headers,
                routes,
                tcp,
                crl_fetch,
            });
        }
        Ok(Config {
            admin,
            json_logs,
            access_log: self.access_log.unwrap_or(true),
            listeners,
            upstreams,
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
