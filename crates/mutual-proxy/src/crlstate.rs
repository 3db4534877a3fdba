//! Fetched CRLs, the decisions: which `http://` URLs may be fetched, whether a listener serves
//! or refuses given what its fetches brought, and when to fetch next. Pure: no socket, no
//! clock (`now` is an argument), so every rule is a row of a table test.

use std::time::Duration;

use mutual_pki::diagnosis::Diagnosis;
use time::OffsetDateTime;

/// What a listener does when a CRL cannot be refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Keep using the last CRL that verified (still held to its nextUpdate by verification).
    KeepLast,
    /// Refuse every caller until a refresh succeeds again.
    FailClosed,
}

/// A parsed `http://host[:port]/path` URL: the only form fetched (a CRL is signed; TLS would
/// add a dependency on the very PKI being checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL as written.
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// The `Host` header value (without the default port).
    pub host: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an `http://` URL; anything else is refused with the reason.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("\"{url}\": only http:// CRL URLs are fetched"))?;
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if auth.is_empty() || auth.contains('@') || path.contains(char::is_whitespace) {
            return Err(format!("\"{url}\": expected http://HOST[:PORT]/PATH"));
        }
        let (authority, host) = match auth.rsplit_once(':') {
            // In `[::1]` the last `:` is inside the brackets: no port was given.
            Some((h, p)) if !p.contains(']') => {
                if h.is_empty() || p.parse::<u16>().is_err() {
                    return Err(format!("\"{url}\": bad host or port"));
                }
                (auth.to_string(), auth.to_string())
            }
            _ => (format!("{auth}:80"), auth.to_string()),
        };
        Ok(HttpUrl {
            url: url.to_string(),
            authority,
            host,
            path: path.to_string(),
        })
    }
}

/// The last CRL of one URL that verified against its CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Good {
    /// The issuing CA.
    pub issuer: String,
    /// The CRL's thisUpdate.
    pub this_update: OffsetDateTime,
    /// The CRL's nextUpdate.
    pub next_update: Option<OffsetDateTime>,
    /// When it was fetched.
    pub fetched_at: OffsetDateTime,
}

/// What is known of one CRL URL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// The last good CRL's facts.
    pub good: Option<Good>,
    /// Why the latest fetch failed; `None` when it succeeded.
    pub failure: Option<String>,
    /// Fetches that brought a CRL's bytes.
    pub downloads: u64,
    /// Fetches answered 304 Not Modified (the CRL held was still the server's).
    pub not_modified: u64,
}

/// Whether a listener may serve with these sources; `Err` carries the diagnosis every caller
/// is refused with. A URL that never gave a good CRL refuses under both rules (there is
/// nothing to keep, and serving without it would skip the revocation check of its CA).
pub fn verdict(
    stale: Stale,
    refresh: Duration,
    sources: &[(String, Source)],
    now: OffsetDateTime,
) -> Result<(), Diagnosis> {
    for (url, s) in sources {
        let Some(good) = &s.good else {
            return Err(Diagnosis::CrlMissing {
                subject: "any caller".into(),
                issuer: format!("the CA whose CRL is at {url}"),
            });
        };
        if stale == Stale::KeepLast {
            continue;
        }
        if let Some(next) = good.next_update.filter(|n| *n < now) {
            return Err(Diagnosis::CrlStale {
                issuer: good.issuer.clone(),
                next_update: next,
                now,
            });
        }
        if s.failure.is_some() {
            // Under fail_closed a CRL is due again at each refresh.
            return Err(Diagnosis::CrlStale {
                issuer: good.issuer.clone(),
                next_update: good.fetched_at + refresh,
                now,
            });
        }
    }
    Ok(())
}

/// How long to wait before the next round of fetches: the refresh interval, sooner when a
/// CRL's nextUpdate comes first, and at most 30 s after a failure; never under a second.
pub fn next_wait(refresh: Duration, sources: &[(String, Source)], now: OffsetDateTime) -> Duration {
    let mut wait = refresh;
    for (_, s) in sources {
        if s.failure.is_some() || s.good.is_none() {
            wait = wait.min(Duration::from_secs(30));
        }
        if let Some(next) = s.good.as_ref().and_then(|g| g.next_update) {
            let left = next - now;
            if left.is_positive() {
                wait = wait.min(left.unsigned_abs());
            }
        }
    }
    wait.max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2027-01-01 12:00 UTC);

    fn good(next_in_s: i64) -> Option<Good> {
        Some(Good {
            issuer: "CN=Local Root CA".into(),
            this_update: NOW - time::Duration::hours(1),
            next_update: Some(NOW + time::Duration::seconds(next_in_s)),
            fetched_at: NOW - time::Duration::seconds(60),
        })
    }

    fn src(good: Option<Good>, failure: Option<&str>) -> Vec<(String, Source)> {
        vec![(
            "http://127.0.0.1:1/crl".into(),
            Source {
                good,
                failure: failure.map(Into::into),
                ..Source::default()
            },
        )]
    }

    #[test]
    fn verdicts() {
        let refresh = Duration::from_secs(300);
        type Case = (Stale, Vec<(String, Source)>, &'static str);
        let cases: Vec<Case> = vec![
            (Stale::KeepLast, src(good(3600), None), "ok"),
            (Stale::FailClosed, src(good(3600), None), "ok"),
            (Stale::KeepLast, src(good(3600), Some("refused")), "ok"),
            (Stale::KeepLast, src(good(-10), Some("refused")), "ok"),
            (
                Stale::FailClosed,
                src(good(3600), Some("refused")),
                "crl_stale",
            ),
            (Stale::FailClosed, src(good(-10), None), "crl_stale"),
            (Stale::KeepLast, src(None, Some("refused")), "crl_missing"),
            (Stale::FailClosed, src(None, None), "crl_missing"),
            (Stale::KeepLast, vec![], "ok"),
        ];
        for (stale, sources, want) in cases {
            let got = match verdict(stale, refresh, &sources, NOW) {
                Ok(()) => "ok",
                Err(d) => d.code(),
            };
            assert_eq!(got, want, "{stale:?} {sources:?}");
        }
        let d = verdict(Stale::FailClosed, refresh, &src(good(3600), Some("x")), NOW).unwrap_err();
        assert!(
            d.to_string()
                .starts_with("the CRL of \"CN=Local Root CA\" was due to be replaced at"),
            "{d}"
        );
        let d = verdict(Stale::KeepLast, refresh, &src(None, None), NOW).unwrap_err();
        assert!(d.to_string().contains("http://127.0.0.1:1/crl"), "{d}");
    }

    #[test]
    fn waits() {
        let r = Duration::from_secs(300);
        let cases = [
            (src(good(3600), None), 300),
            (src(good(120), None), 120),
            (src(good(-5), None), 300),
            (src(good(3600), Some("x")), 30),
            (src(None, None), 30),
            (src(good(0), None), 300),
        ];
        for (sources, want) in cases {
            assert_eq!(
                next_wait(r, &sources, NOW),
                Duration::from_secs(want),
                "{sources:?}"
            );
        }
        assert_eq!(next_wait(Duration::ZERO, &[], NOW), Duration::from_secs(1));
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8200/v1/pki/crl").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("127.0.0.1:8200", "/v1/pki/crl")
        );
        let u = HttpUrl::parse("http://ca.example.com").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.host.as_str(), u.path.as_str()),
            ("ca.example.com:80", "ca.example.com", "/")
        );
        for bad in [
            "https://ca/crl",
            "ldap://x",
            "http://",
            "http://h:x/",
            "http://u@h/",
            "http://h:99999/",
        ] {
            assert!(HttpUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
