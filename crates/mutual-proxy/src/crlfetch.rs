//! Fetched CRLs, the IO: per listener with `crl_fetch = true`, a task reads the CA file, fetches
//! each CRL URL (`crl_urls` and the CRL distribution points of the CA file's certificates) over
//! plain HTTP on the refresh interval and when a nextUpdate passes, checks each CRL against the
//! CA that issued it, and only then swaps it in (build, validate, swap). Failures are logged;
//! what they do to callers is decided by [`crate::crlstate`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use mutual_pki::diagnosis::Diagnosis;
use time::OffsetDateTime;

use crate::config::{CrlFetch, ListenerConfig};
use crate::crlstate::{self, Good, HttpUrl, Source, Stale};

/// The largest CRL accepted.
const MAX_CRL_BYTES: usize = 16 * 1024 * 1024;
/// Connect, send and read one CRL within this.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the verifier uses now; swapped whole.
#[derive(Debug)]
pub struct Snapshot {
    /// Grows with each change, so that cached verdicts made with older CRLs are not reused.
    pub generation: u64,
    /// The last good CRL of each URL (DER).
    pub crls: Vec<Vec<u8>>,
    /// Serve, or refuse every caller with this diagnosis.
    pub verdict: Result<(), Diagnosis>,
    /// Per URL, what is known (for logs and metrics).
    pub sources: Vec<(String, Source)>,
}

#[derive(Debug, Default)]
struct Entry {
    source: Source,
    der: Option<Vec<u8>>,
}

/// The fetched CRLs of one listener.
#[derive(Debug)]
pub struct CrlFeed {
    /// The listener.
    pub listen: SocketAddr,
    /// Its CA file, read at each round (URLs and the CAs that must sign the CRLs).
    pub ca: PathBuf,
    /// Interval, staleness rule, explicit URLs.
    pub config: CrlFetch,
    entries: Mutex<Vec<(HttpUrl, Entry)>>,
    snapshot: ArcSwap<Snapshot>,
    started: AtomicBool,
}

/// The CA file's certificates (DER) and the http:// CRL URLs they name.
fn read_cas(path: &PathBuf) -> Result<(Vec<Vec<u8>>, Vec<HttpUrl>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let cas = mutual_pki::cert::certs_from_bytes(&bytes)
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    let urls = cas
        .iter()
        .filter_map(|c| mutual_pki::cert::facts(c).ok())
        .flat_map(|f| f.crl_urls)
        .filter_map(|u| HttpUrl::parse(&u).ok())
        .collect();
    Ok((cas, urls))
}

/// A CRL body as DER: DER as it is, or the first `X509 CRL` PEM block.
pub fn crl_der(body: &[u8]) -> Result<Vec<u8>, String> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body).map_err(|_| "neither DER nor PEM".to_string())?;
    let begin = "-----BEGIN X509 CRL-----";
    let start = text.find(begin).ok_or("no X509 CRL in the PEM")? + begin.len();
    let end = text[start..]
        .find("-----END X509 CRL-----")
        .ok_or("unterminated PEM")?;
    let b64: String = text[start..start + end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("bad PEM: {e}"))
}

async fn get(u: &HttpUrl) -> Result<Vec<u8>, String> {
    let tcp = tokio::net::TcpStream::connect(&u.authority)
        .await
        .map_err(|e| format!("connecting to {}: {e}", u.authority))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = http::Request::get(u.path.as_str())
        .header(http::header::HOST, u.host.as_str())
        .header(http::header::USER_AGENT, "mutual-proxy")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    if resp.status() != http::StatusCode::OK {
        return Err(format!("HTTP {}", resp.status()));
    }
    let body = Limited::new(resp.into_body(), MAX_CRL_BYTES)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?;
    Ok(body.to_bytes().to_vec())
}

/// Fetches one URL and checks the CRL against `cas`; never older than the one in use.
async fn fetch(
    u: &HttpUrl,
    cas: &[Vec<u8>],
    current: Option<&Good>,
) -> Result<(Vec<u8>, Good), String> {
    let body = tokio::time::timeout(FETCH_TIMEOUT, get(u))
        .await
        .map_err(|_| format!("no answer in {}s", FETCH_TIMEOUT.as_secs()))??;
    let der = crl_der(&body)?;
    let f = mutual_pki::crl::check_issued_by(&der, cas).map_err(|e| e.to_string())?;
    if current.is_some_and(|c| c.issuer == f.issuer && f.this_update < c.this_update) {
        return Err("the CRL is older than the one in use".into());
    }
    let good = Good {
        issuer: f.issuer,
        this_update: f.this_update,
        next_update: f.next_update,
        fetched_at: OffsetDateTime::now_utc(),
    };
    Ok((der, good))
}

impl CrlFeed {
    /// The feed of a listener with `crl_fetch`; its CA file must name or be given a URL.
    pub fn new(l: &ListenerConfig) -> Result<Option<Arc<CrlFeed>>, String> {
        let Some(config) = &l.crl_fetch else {
            return Ok(None);
        };
        let (_, from_cas) = read_cas(&l.ca)?;
        let mut urls = config.urls.clone();
        urls.extend(from_cas);
        urls.dedup_by(|a, b| a.url == b.url);
        if urls.is_empty() {
            return Err(format!(
                "crl_fetch: no http:// CRL distribution point in {} and no crl_urls",
                l.ca.display()
            ));
        }
        let entries = urls.into_iter().map(|u| (u, Entry::default())).collect();
        let feed = CrlFeed {
            listen: l.listen,
            ca: l.ca.clone(),
            config: config.clone(),
            entries: Mutex::new(entries),
            snapshot: ArcSwap::from_pointee(Snapshot {
                generation: 0,
                crls: vec![],
                verdict: Ok(()),
                sources: vec![],
            }),
            started: AtomicBool::new(false),
        };
        feed.publish(OffsetDateTime::now_utc());
        Ok(Some(Arc::new(feed)))
    }

    /// True when `l` asks for the same fetching (a reload then keeps this feed and its CRLs).
    pub fn same_as(&self, l: &ListenerConfig) -> bool {
        self.ca == l.ca && l.crl_fetch.as_ref() == Some(&self.config)
    }

    /// What the verifier uses now.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    fn publish(&self, now: OffsetDateTime) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let sources: Vec<(String, Source)> = entries
            .iter()
            .map(|(u, e)| (u.url.clone(), e.source.clone()))
            .collect();
        let crls: Vec<Vec<u8>> = entries.iter().filter_map(|(_, e)| e.der.clone()).collect();
        drop(entries);
        let verdict = crlstate::verdict(self.config.stale, self.config.refresh, &sources, now);
        let old = self.snapshot();
        if let Err(d) = &verdict {
            if old.verdict.as_ref().err() != Some(d) {
                tracing::warn!(listener = %self.listen, reason.code = d.code(), reason = %d, "fetched CRLs: refusing every caller");
            }
        } else if old.verdict.is_err() {
            tracing::info!(listener = %self.listen, "fetched CRLs: serving again");
        }
        let generation = if old.crls == crls && old.verdict == verdict {
            old.generation
        } else {
            old.generation + 1
        };
        self.snapshot.store(Arc::new(Snapshot {
            generation,
            crls,
            verdict,
            sources,
        }));
    }

    /// One round: every URL fetched and checked, the good ones swapped in, then published.
    pub async fn round(&self) {
        let cas = read_cas(&self.ca);
        if let Ok((_, from_cas)) = &cas {
            // CA files change on reload; their distribution points join the list.
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            for u in from_cas {
                if !entries.iter().any(|(e, _)| e.url == u.url) {
                    entries.push((u.clone(), Entry::default()));
                }
            }
        }
        let todo: Vec<(HttpUrl, Option<Good>)> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(u, e)| (u.clone(), e.source.good.clone()))
            .collect();
        for (u, current) in todo {
            let result = match &cas {
                Ok((cas, _)) => fetch(&u, cas, current.as_ref()).await,
                Err(e) => Err(e.clone()),
            };
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let Some((_, e)) = entries.iter_mut().find(|(x, _)| x.url == u.url) else {
                continue;
            };
            match result {
                Ok((der, good)) => {
                    if e.der.as_ref() != Some(&der) {
                        tracing::info!(listener = %self.listen, url = %u.url, crl.issuer = %good.issuer, crl.this_update = %good.this_update, crl.next_update = ?good.next_update, "fetched CRL swapped in");
                    }
                    e.der = Some(der);
                    e.source = Source {
                        good: Some(good),
                        failure: None,
                    };
                }
                Err(reason) => {
                    let keeps = match (&e.source.good, self.config.stale) {
                        (None, _) => "no CRL to keep: refusing every caller",
                        (Some(_), Stale::KeepLast) => "keeping the last good CRL",
                        (Some(_), Stale::FailClosed) => {
                            "refusing every caller (crl_stale = fail_closed)"
                        }
                    };
                    tracing::warn!(listener = %self.listen, url = %u.url, error = %reason, "CRL fetch failed; {keeps}");
                    e.source.failure = Some(reason);
                }
            }
            let now = OffsetDateTime::now_utc();
            if let Some(next) = e
                .source
                .good
                .as_ref()
                .and_then(|g| g.next_update)
                .filter(|n| *n < now)
            {
                tracing::warn!(listener = %self.listen, url = %u.url, crl.next_update = %next, "the CRL in use is past its nextUpdate");
            }
        }
        self.publish(OffsetDateTime::now_utc());
    }

    /// Starts the refresh task once; it ends when the feed is dropped (a reload replaced it).
    /// `fetched` says whether a first round already ran.
    pub fn ensure_running(self: &Arc<Self>, fetched: bool) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<CrlFeed> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut first = !fetched;
            loop {
                if !first {
                    let wait = match weak.upgrade() {
                        Some(f) => {
                            let s = f.snapshot();
                            crlstate::next_wait(
                                f.config.refresh,
                                &s.sources,
                                OffsetDateTime::now_utc(),
                            )
                        }
                        None => return,
                    };
                    tokio::time::sleep(wait).await;
                }
                first = false;
                let Some(f) = weak.upgrade() else { return };
                f.round().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_in_der_or_pem() {
        assert_eq!(crl_der(&[0x30, 1, 2]).unwrap(), [0x30, 1, 2]);
        let pem = "junk\n-----BEGIN X509 CRL-----\nMAEC\n-----END X509 CRL-----\n";
        assert_eq!(crl_der(pem.as_bytes()).unwrap(), [0x30, 1, 2]);
        for bad in [
            &b"<html>"[..],
            b"-----BEGIN X509 CRL-----\nMAEC",
            b"\xff\xfe",
        ] {
            assert!(crl_der(bad).is_err());
        }
    }
}
