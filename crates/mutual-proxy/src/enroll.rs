//! Enrolled listeners: a listener whose certificate comes from a CA (`--enroll` or a
//! `[listener.enroll]` table) instead of `cert`/`key` files. It enrolls at start through
//! [`mutual_agent::Source`] (the key is made here and stays in memory), and each renewal is
//! swapped in with build, validate, swap: a new [`TlsMaterial`] for that listener in the
//! runtime, connections in flight untouched. Without a `ca` file the CA's trust bundle is the
//! listener's CA, refreshed with each renewal.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mutual_agent::{CaClient, ClientError, Material, Request, Source, SourceConfig};
use mutual_tls::load::crls_from_files;
use mutual_tls::{LoadError, TrustStore};
use serde::Deserialize;

use crate::config::{invalid, ConfigError, FileListener, ListenerConfig};
use crate::crlfetch::CrlFeed;
use crate::tls::TlsMaterial;
use crate::{Proxy, ProxyError};

/// How long a CA that cannot be reached is waited for at start before the proxy gives up.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// `[listener.enroll]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEnroll {
    /// The CA's nodes, `https://ca:8200[,https://ca2:8200]`.
    pub url: String,
    /// PKI mount (`pki`).
    pub mount: Option<String>,
    /// Role to enroll under.
    pub role: String,
    /// Common name.
    pub cn: String,
    /// DNS SANs.
    #[serde(default)]
    pub san: Vec<String>,
    /// IP SANs.
    #[serde(default)]
    pub ip: Vec<String>,
    /// URI SANs.
    #[serde(default)]
    pub uri: Vec<String>,
    /// Bootstrap token (else `MUTUAL_TOKEN`).
    pub token: Option<String>,
    /// Requested lifetime (`24h`; the role's default when absent).
    pub ttl: Option<String>,
    /// CA file to check an `https://` CA against.
    pub cacert: Option<PathBuf>,
}

/// A checked enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollConfig {
    /// The CA's nodes, comma-separated.
    pub urls: String,
    /// PKI mount.
    pub mount: String,
    /// Role.
    pub role: String,
    /// Common name.
    pub cn: String,
    /// DNS SANs.
    pub san: Vec<String>,
    /// IP SANs.
    pub ip: Vec<String>,
    /// URI SANs.
    pub uri: Vec<String>,
    /// Bootstrap token.
    pub token: Option<String>,
    /// Requested lifetime.
    pub ttl: Option<Duration>,
    /// CA file for an `https://` CA.
    pub cacert: Option<PathBuf>,
}

impl EnrollConfig {
    /// The source's configuration; the error is one line (a bad URL, an unreadable cacert).
    pub fn source_config(&self) -> Result<SourceConfig, ClientError> {
        let client = CaClient::new(&self.urls, self.cacert.as_deref())?;
        let request = Request {
            mount: self.mount.trim_matches('/').to_string(),
            role: self.role.clone(),
            common_name: self.cn.clone(),
            dns: self.san.clone(),
            ips: self.ip.clone(),
            uris: self.uri.clone(),
            ttl: self.ttl,
            key_type: mutual_pki::key::KeyType::EcP256,
        };
        let token = self.token.clone().filter(|t| !t.is_empty());
        Ok(SourceConfig::new(client, request, token))
    }
}

/// Checks a listener's `cert`/`key`/`ca` against its `[listener.enroll]`: one or the other.
pub(crate) fn check_listener(
    f: &FileListener,
    at: &str,
) -> Result<Option<EnrollConfig>, ConfigError> {
    let empty = |p: &PathBuf| p.as_os_str().is_empty();
    let Some(e) = &f.enroll else {
        for (name, p) in [("ca", &f.ca), ("cert", &f.cert), ("key", &f.key)] {
            if empty(p) {
                return Err(invalid(
                    at,
                    format!("{name} is required (or an [listener.enroll] table)"),
                ));
            }
        }
        return Ok(None);
    };
    if !empty(&f.cert) || !empty(&f.key) {
        return Err(invalid(
            at,
            "cert and key cannot go with [listener.enroll]: the certificate comes from the CA",
        ));
    }
    let at = format!("{at}.enroll");
    for (name, v) in [("url", &e.url), ("role", &e.role), ("cn", &e.cn)] {
        if v.trim().is_empty() {
            return Err(invalid(&at, format!("{name} is required")));
        }
    }
    let ttl = match &e.ttl {
        None => None,
        Some(s) => Some(
            mutual_pki::duration::parse(s)
                .map_err(|err| invalid(format!("{at}.ttl"), err.to_string()))?,
        ),
    };
    Ok(Some(EnrollConfig {
        urls: e.url.clone(),
        mount: e.mount.clone().unwrap_or_else(|| "pki".into()),
        role: e.role.clone(),
        cn: e.cn.clone(),
        san: e.san.clone(),
        ip: e.ip.clone(),
        uri: e.uri.clone(),
        token: e.token.clone(),
        ttl,
        cacert: e.cacert.clone(),
    }))
}

/// One enrolled listener's certificate source.
#[derive(Debug)]
pub struct Enrolled {
    /// The CA's nodes, for messages.
    pub urls: String,
    source: Source,
}

/// Per listener (configuration order): its source, when enrolled.
pub type Enrollments = Vec<Option<Arc<Enrolled>>>;

/// Enrolls every enrolled listener of `config`; a CA that stays unreachable for
/// [`PATIENCE`], or refuses, is an error naming the listener and the CA.
pub async fn enroll_all(config: &crate::Config) -> Result<Enrollments, ProxyError> {
    let mut out = Vec::new();
    for l in &config.listeners {
        let Some(e) = &l.enroll else {
            out.push(None);
            continue;
        };
        let fail = |reason: String| ProxyError::Enroll {
            listen: l.listen,
            ca: e.urls.clone(),
            reason,
        };
        let sc = e.source_config().map_err(|err| fail(err.to_string()))?;
        let source = Source::enroll_within(sc, PATIENCE)
            .await
            .map_err(|err| fail(err.to_string()))?;
        out.push(Some(Arc::new(Enrolled {
            urls: e.urls.clone(),
            source,
        })));
    }
    Ok(out)
}

/// The listener's material: from its files, or from its source's current material.
pub(crate) fn material(
    l: &ListenerConfig,
    enrolled: Option<&Enrolled>,
    feed: Option<Arc<CrlFeed>>,
) -> Result<TlsMaterial, LoadError> {
    match enrolled {
        None if l.enroll.is_some() => Err(LoadError::Config(
            "the listener is enrolled: start the proxy with Proxy::enroll".into(),
        )),
        None => TlsMaterial::load(l, feed),
        Some(e) => from_material(l, &e.source.current(), feed),
    }
}

fn from_material(
    l: &ListenerConfig,
    m: &Material,
    feed: Option<Arc<CrlFeed>>,
) -> Result<TlsMaterial, LoadError> {
    // A `ca` file, when given, is who may call; else the CA's own bundle.
    let trust = if l.ca.as_os_str().is_empty() {
        m.trust.clone()
    } else {
        TrustStore::from_file(&l.ca)?
    };
    let crls = crls_from_files(&l.crls)?;
    TlsMaterial::from_parts(l, m.identity.clone(), trust, crls, feed)
}

/// Swaps each renewal of each enrolled listener into the running proxy.
pub(crate) fn watch(proxy: &Arc<Proxy>) {
    for (i, e) in proxy.enrolled.iter().enumerate() {
        let Some(e) = e.clone() else { continue };
        let proxy = Arc::clone(proxy);
        tokio::spawn(async move {
            let mut rx = e.source.subscribe();
            while rx.changed().await.is_ok() {
                let m = rx.borrow_and_update().clone();
                swap(&proxy, i, &m);
            }
        });
    }
}

fn swap(proxy: &Proxy, i: usize, m: &Material) {
    let rt = proxy.runtime();
    let (Some(l), Some(old)) = (rt.config.listeners.get(i), rt.listeners.get(i)) else {
        return;
    };
    let listen = proxy.listen_addr(i).unwrap_or(l.listen);
    // The renewed certificate keeps the listener's CRL and revocation feeds.
    match from_material(l, m, old.feed.clone()).map(|n| n.with_revocations(old.revocations.clone()))
    {
        Ok(new) => {
            let old_serial = mutual_pki::cert::facts(&old.identity.chain[0])
                .map(|f| f.serial.to_string())
                .unwrap_or_default();
            proxy.swap_listener(i, Arc::new(new));
            let not_after = m
                .validity
                .not_after
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            tracing::info!(listener = %listen, old_serial = %old_serial, serial = %m.serial, not_after = %not_after, "certificate swapped: {old_serial} -> {}", m.serial);
        }
        Err(err) => {
            tracing::warn!(listener = %listen, error = %err, "renewed certificate refused; the current one keeps serving");
        }
    }
}

/// `mutual_proxy_renewals_total{listener,result}` for every enrolled listener.
pub(crate) fn render_metrics(proxy: &Proxy) -> String {
    let mut out = String::new();
    let mut first = true;
    for (i, e) in proxy.enrolled.iter().enumerate() {
        let Some(e) = e else { continue };
        if first {
            out.push_str("# HELP mutual_proxy_renewals_total Certificate renewals of enrolled listeners, by result.\n# TYPE mutual_proxy_renewals_total counter\n");
            first = false;
        }
        let listener = proxy
            .listen_addr(i)
            .map(|a| a.to_string())
            .unwrap_or_default();
        let stats = e.source.stats();
        for (result, n) in [
            ("ok", stats.renewed.load(Ordering::Relaxed)),
            ("failed", stats.failed.load(Ordering::Relaxed)),
        ] {
            let _ = writeln!(
                out,
                "mutual_proxy_renewals_total{{listener=\"{listener}\",result=\"{result}\"}} {n}"
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::FileConfig;

    const BASE: &str = r#"
[[listener]]
listen = "127.0.0.1:8443"
LISTENER
[[listener.route]]
host = "*"
path = "/"
upstream = "echo"
[[upstream]]
name = "echo"
servers = ["http://127.0.0.1:8081"]
"#;

    #[test]
    fn enroll_or_files() {
        let cases: &[(&str, &str)] = &[
            ("ca = \"c\"\ncert = \"w\"\nkey = \"k\"", ""),
            ("[listener.enroll]\nurl = \"http://127.0.0.1:8200\"\nrole = \"web\"\ncn = \"www\"\nttl = \"10s\"", ""),
            (
                "cert = \"w\"\nkey = \"k\"",
                "config: listener[0]: ca is required (or an [listener.enroll] table)",
            ),
            (
                "cert = \"w\"\n[listener.enroll]\nurl = \"http://127.0.0.1:8200\"\nrole = \"web\"\ncn = \"www\"",
                "config: listener[0]: cert and key cannot go with [listener.enroll]",
            ),
            (
                "[listener.enroll]\nurl = \"http://127.0.0.1:8200\"\nrole = \"web\"\ncn = \"\"",
                "config: listener[0].enroll: cn is required",
            ),
            (
                "[listener.enroll]\nurl = \"http://x\"\nrole = \"web\"\ncn = \"www\"\nttl = \"ten\"",
                "config: listener[0].enroll.ttl:",
            ),
        ];
        for (listener, want) in cases {
            // A table ends the listener's keys: the routes follow it.
            let text = BASE.replace("LISTENER", listener);
            match FileConfig::parse(&text).and_then(|f| f.check()) {
                Ok(c) => {
                    assert!(want.is_empty(), "{listener} should fail with {want}");
                    let e = c.listeners[0].enroll.as_ref();
                    assert_eq!(e.is_some(), listener.contains("enroll"));
                    if let Some(e) = e {
                        assert_eq!(
                            (e.mount.as_str(), e.ttl),
                            ("pki", Some(std::time::Duration::from_secs(10)))
                        );
                    }
                }
                Err(e) => assert!(
                    !want.is_empty() && e.to_string().starts_with(want),
                    "{e} !~ {want}"
                ),
            }
        }
    }
}
