//! `GET <mount>/inventory`: the mount's issued certificates searched by the questions operators
//! ask (see docs/inventory.md), and the note of which token asked for each certificate.
//!
//! The issuing token is carried to the certificate writer by a task-local set around the
//! engine's handler, so that the inventory learns who issued without every issuing path
//! taking the token as a parameter.

use std::future::Future;

use mutual_store::{Cursor, NameKind, Search, SortKey, StoreError};
use serde_json::json;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::{error::ApiError, params::Params, reply::Reply, state::App, state::Mount};

/// Who asked for the certificates an engine request records, and by which request.
#[derive(Debug, Clone, Default)]
pub(crate) struct Asker {
    /// The accessor of the asking token (None: no token, as in a renewal).
    pub accessor: Option<String>,
    /// The request, as the certificate page shows it (`pki/issue/web`).
    pub request: Option<String>,
}

tokio::task_local! {
    static ASKER: Asker;
}

/// Runs `f` (an engine request) with `accessor` noted as the token asking and `request` as
/// what it asked.
///
/// Not an `async fn`: one would hold `f` twice (the argument and the scope around it), and
/// the request's future, copied whole into its box, would be twice the size of the work.
pub(crate) fn on_behalf_of<F: Future>(
    accessor: Option<String>,
    request: String,
    f: F,
) -> impl Future<Output = F::Output> {
    let asker = Asker {
        accessor,
        request: Some(request),
    };
    ASKER.scope(asker, f)
}

/// Who the current request runs for (nothing known outside [`on_behalf_of`]).
pub(crate) fn asker() -> Asker {
    ASKER.try_with(Asker::clone).unwrap_or_default()
}

/// The search that the query parameters ask for (shared by the API and the web UI).
pub fn search_from(p: &Params, now: OffsetDateTime) -> Result<Search, ApiError> {
    let text = |k: &str| {
        p.string(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let mut s = Search {
        cn_prefix: text("cn"),
        role: text("role"),
        ca: text("issuer"),
        issued_by: text("issued_by"),
        ..Search::default()
    };
    if let Some(san) = text("san") {
        s.san = Some(parse_san(&san)?);
    }
    if let Some(serial) = text("serial") {
        s.serial = Some(
            mutual_pki::serial::Serial::parse(&serial)
                .map_err(|_| ApiError::bad(format!("\"{serial}\" is not a serial number")))?,
        );
    }
    // An empty field (the dashboard's "any time") is no window, not a window of zero.
    let expiring = match text("expiring") {
        Some(_) => p.duration("expiring")?,
        None => None,
    };
    if let Some(d) = expiring {
        s.expires_after = Some(now);
        s.expires_before = Some(now + d);
    }
    if let Some(t) = text("expires_after") {
        s.expires_after = Some(instant("expires_after", &t)?);
    }
    if let Some(t) = text("expires_before") {
        s.expires_before = Some(instant("expires_before", &t)?);
    }
    s.revoked = match text("revoked").as_deref() {
        None | Some("any") => None,
        Some("true" | "yes" | "1") => Some(true),
        Some("false" | "no" | "0") => Some(false),
        Some(other) => {
            return Err(ApiError::bad(format!(
                "revoked: \"{other}\" is not one of true, false, any"
            )))
        }
    };
    s.sort = match text("sort") {
        Some(w) => SortKey::parse(&w).ok_or_else(|| {
            ApiError::bad(format!(
                "sort: \"{w}\" is not one of expiry, cn, issued, serial, revoked"
            ))
        })?,
        None if s.cn_prefix.is_some() && s.expires_before.is_none() => SortKey::CommonName,
        None => SortKey::Expiry,
    };
    s.descending = match text("order").as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "order: \"{other}\" is not one of asc, desc"
            )))
        }
    };
    s.limit = p.u32("limit")?.unwrap_or(0);
    if let Some(c) = text("after") {
        s.cursor = Some(Cursor::decode(&c).map_err(store_err)?);
    }
    Ok(s)
}

/// `dns:NAME`, `ip:ADDR`, `uri:URI`, `email:ADDR`, or a bare name: an IP address when it parses
/// as one, a URI when it has a scheme, a DNS name otherwise.
fn parse_san(text: &str) -> Result<(NameKind, String), ApiError> {
    if let Some((k, v)) = text.split_once(':') {
        if let Some(kind) = NameKind::parse(k) {
            return Ok((kind, v.to_string()));
        }
    }
    if text.parse::<std::net::IpAddr>().is_ok() {
        return Ok((NameKind::Ip, text.to_string()));
    }
    if text.contains("://") {
        return Ok((NameKind::Uri, text.to_string()));
    }
    Ok((NameKind::Dns, text.to_string()))
}

fn instant(name: &str, text: &str) -> Result<OffsetDateTime, ApiError> {
    if let Ok(n) = text.parse::<i64>() {
        if let Ok(t) = OffsetDateTime::from_unix_timestamp(n) {
            return Ok(t);
        }
    }
    OffsetDateTime::parse(text, &Rfc3339).map_err(|_| {
        ApiError::bad(format!(
            "{name}: \"{text}\" is neither an RFC 3339 time nor Unix seconds"
        ))
    })
}

pub(crate) fn store_err(e: StoreError) -> ApiError {
    match e {
        StoreError::BadQuery(m) => ApiError::bad(m),
        other => other.into(),
    }
}

/// Answers `GET <mount>/inventory`: one page of the mount's certificates.
pub(crate) async fn handle(app: &App, mount: &Mount, p: &Params) -> Result<Reply, ApiError> {
    let mut search = search_from(p, OffsetDateTime::now_utc())?;
    search.visible_cas = Some(vec![mount.record.path.clone()]);
    let page = app.store.search_certs(&search).await.map_err(store_err)?;
    let certs: Vec<_> = page
        .certs
        .iter()
        .map(|f| {
            let c = &f.cert;
            json!({
                "serial_number": c.serial.to_string(),
                "common_name": c.common_name,
                "issuer": c.ca,
                "role": c.role,
                "not_before": crate::pki::rfc3339(c.not_before),
                "not_after": crate::pki::rfc3339(c.not_after),
                "revoked": c.revoked_at.is_some(),
                "revocation_time_rfc3339": c.revoked_at.map(crate::pki::rfc3339),
                "revocation_reason": c.reason.map(|r| r.to_string()),
                "issued_at": crate::pki::rfc3339(f.issued_at),
                "issued_by": f.issued_by,
                "request": f.request,
            })
        })
        .collect();
    Ok(Reply::data(json!({
        "certs": certs,
        "next": page.next,
        "sort": search.sort.as_str(),
        "order": if search.descending { "desc" } else { "asc" },
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> Params {
        Params::parse(b"", Some(q)).unwrap()
    }

    #[test]
    fn query_parameters_become_a_search() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let s = search_from(
            &params("cn=alice&san=127.0.0.1&revoked=false&expiring="),
            now,
        )
        .unwrap();
        assert_eq!(s.expires_before, None);
        assert_eq!(s.cn_prefix.as_deref(), Some("alice"));
        assert_eq!(s.san, Some((NameKind::Ip, "127.0.0.1".into())));
        assert_eq!(s.revoked, Some(false));
        assert_eq!(s.sort, SortKey::CommonName);
        let s = search_from(&params("expiring=7d&cn=a&order=desc&limit=5"), now).unwrap();
        assert_eq!(s.sort, SortKey::Expiry);
        assert_eq!(
            s.expires_before.map(|t| t.unix_timestamp()),
            Some(1_604_800)
        );
        assert!(s.descending);
        assert_eq!(s.limit, 5);
        for (q, san) in [
            ("san=uri:spiffe://x/y", (NameKind::Uri, "spiffe://x/y")),
            ("san=spiffe://x/y", (NameKind::Uri, "spiffe://x/y")),
            ("san=www.example.com", (NameKind::Dns, "www.example.com")),
            ("san=dns:localhost", (NameKind::Dns, "localhost")),
        ] {
            let s = search_from(&params(q), now).unwrap();
            assert_eq!(s.san, Some((san.0, san.1.to_string())), "{q}");
        }
        let s = search_from(
            &params("expires_after=1970-01-02T00:00:00Z&expires_before=90000"),
            now,
        )
        .unwrap();
        assert_eq!(s.expires_after.map(|t| t.unix_timestamp()), Some(86_400));
        assert_eq!(s.expires_before.map(|t| t.unix_timestamp()), Some(90_000));
    }

    #[test]
    fn bad_parameters_are_named() {
        let now = OffsetDateTime::UNIX_EPOCH;
        for (q, msg) in [
            (
                "revoked=maybe",
                "revoked: \"maybe\" is not one of true, false, any",
            ),
            (
                "sort=size",
                "sort: \"size\" is not one of expiry, cn, issued, serial, revoked",
            ),
            ("order=up", "order: \"up\" is not one of asc, desc"),
            ("serial=xyz", "\"xyz\" is not a serial number"),
            (
                "expires_after=soon",
                "expires_after: \"soon\" is neither an RFC 3339 time nor Unix seconds",
            ),
            ("after=nope", "\"nope\" is not a cursor of this search"),
        ] {
            let e = search_from(&params(q), now).unwrap_err().to_string();
            assert_eq!(e, msg, "{q}");
        }
    }
}
