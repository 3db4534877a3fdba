//! Fetched CRLs, the IO: per listener with `crl_fetch = true`, a task reads the CA file, fetches
//! each CRL URL (`crl_urls` and the CRL distribution points of the CA file's certificates) over
//! plain HTTP on the refresh interval and when a nextUpdate passes, checks each CRL against the
//! CA that issued it, and only then swaps it in (build, validate, swap). Failures are logged;
//! what they do to callers is decided by [`crate::crlstate`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use mutual_pki::crl::CrlRejected;
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
    /// The `ETag` the server gave `der`, sent back as `If-None-Match`: an unchanged CRL is then
    /// a 304 instead of its bytes and another signature check.
    etag: Option<String>,
    /// The CA set `der` was checked against: once the CA file changes, the CRL is fetched
    /// whole and checked again.
    checked_with: Option<u64>,
}

/// Tells one set of CA certificates from another (the CA file's, read each round).
fn ca_set_id(cas: &[Vec<u8>]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    cas.hash(&mut h);
    h.finish()
}

/// What one GET of a CRL URL brought.
#[derive(Debug)]
enum Got {
    /// A body, with the server's tag for it.
    Body(Vec<u8>, Option<String>),
    /// 304 Not Modified: the CRL held is still the server's.
    NotModified,
}

/// What one fetch gives the round.
#[derive(Debug)]
enum Fetched {
    /// A CRL checked against the CAs, its facts and its tag.
    New(Vec<u8>, Good, Option<String>),
    /// The server says the CRL held has not changed.
    Unchanged,
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

/// Why a body is not a CRL in DER or PEM.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotACrl {
    /// Neither a DER SEQUENCE nor text.
    #[error("neither DER nor PEM")]
    NeitherDerNorPem,
    /// Text without a `BEGIN X509 CRL` line.
    #[error("no X509 CRL in the PEM")]
    NoPemBlock,
    /// A `BEGIN X509 CRL` without its `END` line.
    #[error("unterminated PEM")]
    Unterminated,
    /// The block's base64 does not decode.
    #[error("bad PEM: {0}")]
    BadBase64(base64::DecodeError),
}

/// Why a listener's CRLs could not be fetched, or fetching could not start: which file or
/// URL, and why. Each message is one line; the round logs it and keeps it for the admin page.
#[derive(Debug, thiserror::Error)]
pub enum CrlFetchError {
    /// The listener's CA file could not be read (it names the URLs and signs the CRLs).
    #[error("reading {}: {source}", .path.display())]
    CaFileRead {
        /// The CA file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The CA file holds no certificate that can be read.
    #[error("reading {}: {source}", .path.display())]
    CaFileInvalid {
        /// The CA file.
        path: PathBuf,
        /// What is wrong with it.
        source: mutual_pki::PkiError,
    },
    /// `crl_fetch` with nothing to fetch.
    #[error("crl_fetch: no http:// CRL distribution point in {} and no crl_urls", .ca.display())]
    NoUrl {
        /// The CA file that names no distribution point.
        ca: PathBuf,
    },
    /// No TCP connection to the URL's host.
    #[error("{url}: connecting to {authority}: {source}")]
    Connect {
        /// The CRL URL.
        url: String,
        /// `host:port` it names.
        authority: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The URL's path or host cannot go into a request.
    #[error("{url}: cannot be requested: {source}")]
    Request {
        /// The CRL URL.
        url: String,
        /// Why the request cannot be built.
        source: http::Error,
    },
    /// The HTTP exchange failed after the connection (bad response, connection closed).
    #[error("{url}: HTTP exchange failed: {source}")]
    Http {
        /// The CRL URL.
        url: String,
        /// hyper's error.
        source: hyper::Error,
    },
    /// The server answered with another status than 200.
    #[error("{url}: HTTP {status}")]
    Status {
        /// The CRL URL.
        url: String,
        /// The status it answered.
        status: http::StatusCode,
    },
    /// The body is larger than the largest CRL accepted.
    #[error("{url}: the body is larger than the largest CRL accepted ({limit} bytes)")]
    TooLarge {
        /// The CRL URL.
        url: String,
        /// The largest CRL fetched, in bytes (`MAX_CRL_BYTES`).
        limit: usize,
    },
    /// The body could not be read to its end.
    #[error("{url}: reading the body: {source}")]
    Body {
        /// The CRL URL.
        url: String,
        /// What broke off.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No complete answer in time.
    #[error("{url}: no answer in {}s", .timeout.as_secs())]
    Timeout {
        /// The CRL URL.
        url: String,
        /// How long a fetch may take (`FETCH_TIMEOUT`).
        timeout: Duration,
    },
    /// The body is not a CRL.
    #[error("{url}: not a CRL: {reason}")]
    NotACrl {
        /// The CRL URL.
        url: String,
        /// What the body is instead.
        reason: NotACrl,
    },
    /// The CRL does not parse, or is not signed by a CA of the file (unknown issuer, bad
    /// signature, no cRLSign).
    #[error("{url}: {source}")]
    Rejected {
        /// The CRL URL.
        url: String,
        /// Why it cannot be used with these CAs.
        source: CrlRejected,
    },
    /// A CRL older than the one in use (a stale mirror, or a replay).
    #[error(
        "{url}: the CRL is older than the one in use (thisUpdate {this_update}, in use {in_use})"
    )]
    Older {
        /// The CRL URL.
        url: String,
        /// The fetched CRL's thisUpdate.
        this_update: OffsetDateTime,
        /// The thisUpdate of the one in use.
        in_use: OffsetDateTime,
    },
}

/// The CA file's certificates (DER) and the http:// CRL URLs they name.
fn read_cas(path: &Path) -> Result<(Vec<Vec<u8>>, Vec<HttpUrl>), CrlFetchError> {
    let bytes = std::fs::read(path).map_err(|source| CrlFetchError::CaFileRead {
        path: path.to_path_buf(),
        source,
    })?;
    let cas = mutual_pki::cert::certs_from_bytes(&bytes).map_err(|source| {
        CrlFetchError::CaFileInvalid {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let urls = cas
        .iter()
        .filter_map(|c| mutual_pki::cert::facts(c).ok())
        .flat_map(|f| f.crl_urls)
        .filter_map(|u| HttpUrl::parse(&u).ok())
        .collect();
    Ok((cas, urls))
}

/// A CRL body as DER: DER as it is, or the first `X509 CRL` PEM block.
pub fn crl_der(body: &[u8]) -> Result<Vec<u8>, NotACrl> {
    if body.first() == Some(&0x30) {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body).map_err(|_| NotACrl::NeitherDerNorPem)?;
    let begin = "-----BEGIN X509 CRL-----";
    let start = text.find(begin).ok_or(NotACrl::NoPemBlock)? + begin.len();
    let end = text[start..]
        .find("-----END X509 CRL-----")
        .ok_or(NotACrl::Unterminated)?;
    let b64: String = text[start..start + end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(NotACrl::BadBase64)
}

async fn get(u: &HttpUrl, held: Option<&str>) -> Result<Got, CrlFetchError> {
    let url = || u.url.clone();
    let http = |source| CrlFetchError::Http { url: url(), source };
    let tcp = tokio::net::TcpStream::connect(&u.authority)
        .await
        .map_err(|source| CrlFetchError::Connect {
            url: url(),
            authority: u.authority.clone(),
            source,
        })?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(http)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut req = http::Request::get(u.path.as_str())
        .header(http::header::HOST, u.host.as_str())
        .header(http::header::USER_AGENT, "mutual-proxy");
    if let Some(tag) = held {
        req = req.header(http::header::IF_NONE_MATCH, tag);
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|source| CrlFetchError::Request { url: url(), source })?;
    let resp = send.send_request(req).await.map_err(http)?;
    // Only an answer to a tag this proxy sent: a 304 it did not ask for is no CRL.
    if resp.status() == http::StatusCode::NOT_MODIFIED && held.is_some() {
        return Ok(Got::NotModified);
    }
    if resp.status() != http::StatusCode::OK {
        return Err(CrlFetchError::Status {
            url: url(),
            status: resp.status(),
        });
    }
    let too_large = || CrlFetchError::TooLarge {
        url: url(),
        limit: MAX_CRL_BYTES,
    };
    let tag = resp
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A declared length over the limit is refused before anything is read.
    if hyper::body::Body::size_hint(resp.body()).lower() > MAX_CRL_BYTES as u64 {
        return Err(too_large());
    }
    let body = Limited::new(resp.into_body(), MAX_CRL_BYTES)
        .collect()
        .await
        .map_err(|source| {
            if source.is::<LengthLimitError>() {
                too_large()
            } else {
                CrlFetchError::Body { url: url(), source }
            }
        })?;
    Ok(Got::Body(body.to_bytes().to_vec(), tag))
}

/// Fetches one URL (conditionally, with the tag of the CRL held) and checks a new CRL against
/// `cas`; never older than the one in use.
async fn fetch(
    u: &HttpUrl,
    cas: &[Vec<u8>],
    current: Option<&Good>,
    held: Option<&str>,
) -> Result<Fetched, CrlFetchError> {
    let got = tokio::time::timeout(FETCH_TIMEOUT, get(u, held))
        .await
        .map_err(|_| CrlFetchError::Timeout {
            url: u.url.clone(),
            timeout: FETCH_TIMEOUT,
        })??;
    let (body, tag) = match got {
        Got::NotModified => return Ok(Fetched::Unchanged),
        Got::Body(body, tag) => (body, tag),
    };
    let der = crl_der(&body).map_err(|reason| CrlFetchError::NotACrl {
        url: u.url.clone(),
        reason,
    })?;
    let f =
        mutual_pki::crl::check_issued_by(&der, cas).map_err(|source| CrlFetchError::Rejected {
            url: u.url.clone(),
            source,
        })?;
    if let Some(c) = current.filter(|c| c.issuer == f.issuer && f.this_update < c.this_update) {
        return Err(CrlFetchError::Older {
            url: u.url.clone(),
            this_update: f.this_update,
            in_use: c.this_update,
        });
    }
    let good = Good {
        issuer: f.issuer,
        this_update: f.this_update,
        next_update: f.next_update,
        fetched_at: OffsetDateTime::now_utc(),
    };
    Ok(Fetched::New(der, good, tag))
}

impl CrlFeed {
    /// The feed of a listener with `crl_fetch`; its CA file must name or be given a URL.
    pub fn new(l: &ListenerConfig) -> Result<Option<Arc<CrlFeed>>, CrlFetchError> {
        let Some(config) = &l.crl_fetch else {
            return Ok(None);
        };
        let (_, from_cas) = read_cas(&l.ca)?;
        let mut urls = config.urls.clone();
        urls.extend(from_cas);
        urls.dedup_by(|a, b| a.url == b.url);
        if urls.is_empty() {
            return Err(CrlFetchError::NoUrl { ca: l.ca.clone() });
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
        let cas_id = cas.as_ref().ok().map(|(cas, _)| ca_set_id(cas));
        let todo: Vec<(HttpUrl, Option<Good>, Option<String>)> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(u, e)| {
                // The tag only with the CRL it names (without one, a 304 would leave nothing),
                // checked against the CAs of this round.
                let held = e
                    .der
                    .as_ref()
                    .and(e.etag.clone())
                    .filter(|_| e.checked_with == cas_id);
                (u.clone(), e.source.good.clone(), held)
            })
            .collect();
        for (u, current, held) in todo {
            // What is kept of a failure is its line, for the log and the admin listener.
            let result = match &cas {
                Ok((cas, _)) => fetch(&u, cas, current.as_ref(), held.as_deref())
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            let Some((_, e)) = entries.iter_mut().find(|(x, _)| x.url == u.url) else {
                continue;
            };
            match result {
                Ok(Fetched::New(der, good, tag)) => {
                    if e.der.as_ref() != Some(&der) {
                        tracing::info!(listener = %self.listen, url = %u.url, crl.issuer = %good.issuer, crl.this_update = %good.this_update, crl.next_update = ?good.next_update, "fetched CRL swapped in");
                    }
                    e.der = Some(der);
                    e.etag = tag;
                    e.checked_with = cas_id;
                    e.source.good = Some(good);
                    e.source.failure = None;
                    e.source.downloads += 1;
                }
                Ok(Fetched::Unchanged) => {
                    // As a download of the same bytes: the CRL held is current as of now.
                    if let Some(g) = e.source.good.as_mut() {
                        g.fetched_at = OffsetDateTime::now_utc();
                    }
                    e.source.failure = None;
                    e.source.not_modified += 1;
                    tracing::debug!(listener = %self.listen, url = %u.url, "fetched CRL unchanged (304)");
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
        let cases: &[(&[u8], &str)] = &[
            (b"<html>", "no X509 CRL in the PEM"),
            (b"-----BEGIN X509 CRL-----\nMAEC", "unterminated PEM"),
            (b"\xff\xfe", "neither DER nor PEM"),
            (
                b"-----BEGIN X509 CRL-----\nM!!\n-----END X509 CRL-----",
                "bad PEM: Invalid symbol 33, offset 1.",
            ),
        ];
        for (body, want) in cases {
            let got = crl_der(body).unwrap_err().to_string();
            assert_eq!(&got, want, "{:?}", String::from_utf8_lossy(body));
        }
    }

    fn ca(cn: &str) -> mutual_pki::ca::CaMaterial {
        let req = mutual_pki::ca::RootRequest {
            common_name: cn.into(),
            ..Default::default()
        };
        mutual_pki::ca::generate_root(&req, OffsetDateTime::now_utc()).unwrap()
    }

    fn crl_of(ca: &mutual_pki::ca::CaMaterial, now: OffsetDateTime) -> Vec<u8> {
        let urls = mutual_pki::ca::Urls::default();
        let signing = mutual_pki::ca::SigningCa {
            cert_der: &ca.cert_der,
            key: &ca.key,
            urls: &urls,
        };
        mutual_pki::crl::build(&signing, 1, &[], now, Duration::from_secs(3600)).unwrap()
    }

    /// A loopback HTTP server that answers each path with a canned response, then closes.
    async fn server(answers: Vec<(&'static str, Vec<u8>)>) -> SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("").to_string();
                let answer = answers
                    .iter()
                    .find(|(p, _)| *p == path)
                    .map(|(_, a)| a.clone())
                    .unwrap_or_default();
                let _ = sock.write_all(&answer).await;
                let _ = sock.shutdown().await;
            }
        });
        addr
    }

    fn ok(body: &[u8]) -> Vec<u8> {
        let mut r =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        r
    }

    /// The tag of a CRL is kept and sent back; a 304 is "unchanged" only in answer to it.
    #[tokio::test]
    async fn a_tagged_crl_is_asked_for_again_with_its_tag() {
        let trusted = ca("Local Root CA");
        let good = crl_of(&trusted, OffsetDateTime::now_utc());
        let mut tagged = format!(
            "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: {}\r\n\r\n",
            good.len()
        )
        .into_bytes();
        tagged.extend_from_slice(&good);
        let addr = server(vec![
            ("/tagged", tagged),
            (
                "/unchanged",
                b"HTTP/1.1 304 Not Modified\r\nETag: \"abc\"\r\n\r\n".to_vec(),
            ),
        ])
        .await;
        let cas = vec![trusted.cert_der.clone()];
        let url = |p: &str| HttpUrl::parse(&format!("http://{addr}{p}")).unwrap();
        let Fetched::New(der, _, tag) = fetch(&url("/tagged"), &cas, None, None).await.unwrap()
        else {
            panic!("a 200 is a new CRL");
        };
        assert_eq!((der, tag.as_deref()), (good, Some("\"abc\"")));
        let again = fetch(&url("/unchanged"), &cas, None, Some("\"abc\"")).await;
        assert!(matches!(again, Ok(Fetched::Unchanged)));
        // A 304 to a request that named no CRL leaves nothing to keep: a failure, not a CRL.
        let err = fetch(&url("/unchanged"), &cas, None, None)
            .await
            .expect_err("an unasked 304 is refused");
        assert!(err.to_string().contains("HTTP 304 Not Modified"), "{err}");
    }

    /// Each way a fetch fails, against a real HTTP server on loopback: the variant, with the
    /// URL and the cause in its line.
    #[tokio::test]
    async fn each_fetch_failure_names_the_url_and_why() {
        let trusted = ca("Local Root CA");
        let stranger = ca("Stranger CA");
        let now = OffsetDateTime::now_utc();
        let good = crl_of(&trusted, now);
        let addr = server(vec![
            (
                "/missing",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            ),
            (
                "/huge",
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                    MAX_CRL_BYTES + 1
                )
                .into_bytes(),
            ),
            ("/page", ok(b"<html>")),
            ("/stranger", ok(&crl_of(&stranger, now))),
            ("/good", ok(&good)),
        ])
        .await;
        let cas = vec![trusted.cert_der.clone()];
        let url = |p: &str| HttpUrl::parse(&format!("http://{addr}{p}")).unwrap();
        let newer = Good {
            issuer: "CN=Local Root CA".into(),
            this_update: now + Duration::from_secs(60),
            next_update: None,
            fetched_at: now,
        };

        let Fetched::New(der, got, tag) = fetch(&url("/good"), &cas, None, None).await.unwrap()
        else {
            panic!("a 200 is a new CRL");
        };
        assert_eq!(der, good);
        assert_eq!(got.issuer, "CN=Local Root CA");
        assert_eq!(tag, None, "no ETag sent, none kept");

        let cases: Vec<(&str, Option<&Good>, &str)> = vec![
            ("/missing", None, "HTTP 404 Not Found"),
            (
                "/huge",
                None,
                "the body is larger than the largest CRL accepted (16777216 bytes)",
            ),
            ("/page", None, "not a CRL: no X509 CRL in the PEM"),
            (
                "/stranger",
                None,
                "the CRL is issued by \"CN=Stranger CA\", which is not one of the trusted CAs",
            ),
            (
                "/good",
                Some(&newer),
                "the CRL is older than the one in use",
            ),
        ];
        for (path, current, want) in cases {
            let u = url(path);
            let err = fetch(&u, &cas, current, None).await.unwrap_err();
            let line = err.to_string();
            assert!(
                line.starts_with(&format!("{}: {want}", u.url)),
                "{path}: {line}"
            );
        }

        // Nobody listens on a port just released.
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let u = HttpUrl::parse(&format!("http://127.0.0.1:{port}/crl")).unwrap();
        let err = fetch(&u, &cas, None, None).await.unwrap_err();
        assert!(
            matches!(&err, CrlFetchError::Connect { authority, .. } if *authority == format!("127.0.0.1:{port}")),
            "{err:?}"
        );
    }
}
