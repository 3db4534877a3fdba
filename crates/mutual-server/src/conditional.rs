//! Conditional GETs of the public material: the CA certificates and chains, the trust bundle
//! and the CRLs (the raw forms; JSON answers carry a request ID of their own) carry a strong
//! `ETag` (a hash of the bytes) and `Cache-Control: no-cache`, and a client that sends back the
//! tag of the bytes it holds
//! (`If-None-Match`) gets `304 Not Modified` without them. A proxy polling a CRL (mutual's
//! `crl_fetch`, nginx, an HTTP cache in front of `--public-listen`) then moves it only when it
//! changed.
//!
//! `If-Modified-Since` gets the full answer. Its dates are whole seconds, often from the
//! client's clock: a CRL rebuilt within the second of the one a client holds, or a client clock
//! ahead of the server's, would get a 304 for a CRL that lacks the latest revocation. An exact
//! tag cannot. `no-cache` (keep it, but ask again before each use) stops HTTP caches from serving
//! a CRL past its change by heuristic freshness.

use std::sync::Arc;

use axum::{
    body::Body,
    http::{header, HeaderValue, Method, Request, StatusCode, Uri},
    response::IntoResponse,
};

use crate::{lifecycle::Counters, params, pki, reply::Reply, state::App, Op};

/// What a GET or HEAD asked of its answer, read before the request is taken apart.
#[derive(Debug)]
pub(crate) struct Asked {
    uri: Uri,
    if_none_match: Option<HeaderValue>,
}

impl Asked {
    /// `None` for methods that are never conditional here.
    pub(crate) fn of(req: &Request<Body>) -> Option<Asked> {
        matches!(*req.method(), Method::GET | Method::HEAD).then(|| Asked {
            uri: req.uri().clone(),
            if_none_match: req.headers().get(header::IF_NONE_MATCH).cloned(),
        })
    }

    /// The answer as sent: public bytes get their tag, and a 304 when the client holds them.
    pub(crate) fn apply(self, app: &Arc<App>, reply: Reply) -> Reply {
        let Reply::Raw { content_type, body } = reply else {
            return reply;
        };
        if !self.is_public_material(app) {
            return Reply::Raw { content_type, body };
        }
        let tag = etag(&body);
        let held = self
            .if_none_match
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| names(v, &tag));
        Counters::bump(&app.counters.public_material[usize::from(held)]);
        let tagged = [
            (header::ETAG, tag),
            (header::CACHE_CONTROL, "no-cache".to_string()),
        ];
        Reply::Response(if held {
            (StatusCode::NOT_MODIFIED, tagged, ()).into_response()
        } else {
            (tagged, [(header::CONTENT_TYPE, content_type)], body).into_response()
        })
    }

    /// A read of the CA's certificates or CRLs (what a request without a token may read, less
    /// the revocation feed, which is JSON), not OCSP, which has its own caching rules.
    fn is_public_material(&self, app: &App) -> bool {
        let raw = self.uri.path();
        let Some(path) = raw.strip_prefix("/v1/") else {
            return false;
        };
        let path = params::percent_decode(path.trim_end_matches('/'), false);
        app.route(&path)
            .is_some_and(|(_, rest)| pki::is_unauthenticated(Op::Read, rest))
    }
}

/// The strong `ETag` of a body: the first 16 bytes of its SHA-256, in hex, quoted.
pub(crate) fn etag(body: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body);
    format!("\"{}\"", hex::encode(&d.as_ref()[..16]))
}

/// True when an `If-None-Match` value names `tag` (RFC 9110 §13.1.2: a list of tags compared
/// weakly, or `*` for any current representation).
pub(crate) fn names(if_none_match: &str, tag: &str) -> bool {
    if_none_match
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == tag)
}

#[cfg(test)]
mod tests {
    use super::{etag, names};

    #[test]
    fn if_none_match_names_the_tag_in_every_form_a_client_sends_it() {
        let tag = etag(b"a CRL");
        let other = etag(b"the next CRL");
        assert_ne!(tag, other);
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 34);
        let cases = [
            (tag.clone(), true),
            (format!("W/{tag}"), true),
            (format!("{other}, {tag}"), true),
            (format!("{other},{tag}"), true),
            ("*".to_string(), true),
            (other.clone(), false),
            // Unquoted, or another tag with ours inside it: not the tag.
            (tag.trim_matches('"').to_string(), false),
            (format!("\"x{}", &tag[1..]), false),
            (String::new(), false),
            (",".to_string(), false),
        ];
        for (sent, held) in cases {
            assert_eq!(names(&sent, &tag), held, "If-None-Match: {sent}");
        }
    }

    #[test]
    fn the_tag_changes_with_any_byte_and_only_with_the_bytes() {
        assert_eq!(etag(b"same"), etag(b"same"));
        assert_ne!(etag(b"same"), etag(b"samf"));
        assert_ne!(etag(b""), etag(b"\0"));
    }
}
