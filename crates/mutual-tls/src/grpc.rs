//! What a refusal needs of gRPC: telling a gRPC call from other HTTP, the status a refusal
//! becomes, `grpc-message`'s percent-encoding and the caller's `grpc-timeout`. Pure: the
//! [`AuthorizeLayer`](crate::AuthorizeLayer) and the proxy answer gRPC callers with these,
//! since gRPC clients report an HTTP 403 only as "unexpected HTTP status" and drop its body.
//!
//! The rules are those of gRPC's "PROTOCOL-HTTP2" and "http-grpc-status-mapping" documents.

use std::time::Duration;

use http::StatusCode;

/// gRPC status codes the proxy answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// 4: the proxy's own time limit passed before the backend answered.
    DeadlineExceeded = 4,
    /// 7: the caller is known and not allowed.
    PermissionDenied = 7,
    /// 8: the request is larger than the proxy takes.
    ResourceExhausted = 8,
    /// 12: no route for the method's path.
    Unimplemented = 12,
    /// 13: a request the proxy cannot read.
    Internal = 13,
    /// 14: the backend failed or cannot be reached.
    Unavailable = 14,
    /// 16: the caller sent no client certificate.
    Unauthenticated = 16,
    /// 2: anything else.
    Unknown = 2,
}

/// A gRPC "Trailers-Only" refusal: HTTP 200, no body, `grpc-status` of the refusal that would
/// have been `status` over HTTP and `reason` as `grpc-message`.
pub fn refusal<B>(status: StatusCode, reason: &str, body: B) -> http::Response<B> {
    let mut resp = http::Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        "grpc-status",
        http::HeaderValue::from(code_of(status) as u16),
    );
    // Percent-encoded, it is always valid header text.
    if let Ok(v) = http::HeaderValue::from_str(&percent_encode(reason)) {
        h.insert("grpc-message", v);
    }
    resp
}

/// True when a request is a gRPC call, by its `content-type`.
pub fn is_grpc_request<B>(req: &http::Request<B>) -> bool {
    is_grpc(
        req.headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
    )
}

/// True for a request whose `content-type` is `application/grpc` or `application/grpc+...`
/// (`application/grpc-web` is another protocol, answered over HTTP).
pub fn is_grpc(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let Some(rest) = ct
        .get(..16)
        .filter(|p| p.eq_ignore_ascii_case(b"application/grpc"))
        .map(|_| &ct[16..])
    else {
        return false;
    };
    matches!(rest.first(), None | Some(b'+') | Some(b';'))
}

/// The gRPC status of a refusal the proxy would answer over HTTP with `status`, by gRPC's
/// mapping, except a proxy timeout, which is the caller's deadline problem: DEADLINE_EXCEEDED.
pub fn code_of(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 431 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 | 421 => Code::Unimplemented,
        413 => Code::ResourceExhausted,
        504 => Code::DeadlineExceeded,
        429 | 502 | 503 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// `grpc-message`'s encoding: bytes outside printable ASCII and `%` itself become `%XX`.
pub fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A `grpc-timeout` value (`1-8 digits` and a unit of `H M S m u n`), or `None` when it is not
/// one: such a header is passed on untouched and the proxy's own limit applies.
pub fn timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_content_types() {
        for (ct, yes) in [
            (Some(&b"application/grpc"[..]), true),
            (Some(b"application/grpc+proto"), true),
            (Some(b"Application/GRPC+json"), true),
            (Some(b"application/grpc;charset=utf-8"), true),
            (Some(b"application/grpc-web"), false),
            (Some(b"application/grpc-web+proto"), false),
            (Some(b"application/grp"), false),
            (Some(b"application/json"), false),
            (Some(b""), false),
            (None, false),
        ] {
            assert_eq!(is_grpc(ct), yes, "{ct:?}");
        }
    }

    #[test]
    fn codes_of_refusals() {
        for (status, code) in [
            (403, Code::PermissionDenied),
            (401, Code::Unauthenticated),
            (404, Code::Unimplemented),
            (421, Code::Unimplemented),
            (413, Code::ResourceExhausted),
            (400, Code::Internal),
            (502, Code::Unavailable),
            (504, Code::DeadlineExceeded),
            (500, Code::Unknown),
        ] {
            assert_eq!(
                code_of(StatusCode::from_u16(status).unwrap()),
                code,
                "{status}"
            );
        }
        assert_eq!(Code::PermissionDenied as u8, 7);
        assert_eq!(Code::Unauthenticated as u8, 16);
    }

    #[test]
    fn messages_are_percent_encoded() {
        for (raw, encoded) in [
            ("plain text: (route */)", "plain text: (route */)"),
            ("100% sure", "100%25 sure"),
            ("two\nlines", "two%0Alines"),
            ("caf\u{e9}", "caf%C3%A9"),
            ("", ""),
        ] {
            assert_eq!(percent_encode(raw), encoded);
        }
    }

    #[test]
    fn timeouts() {
        for (v, d) in [
            (&b"1S"[..], Some(Duration::from_secs(1))),
            (b"250m", Some(Duration::from_millis(250))),
            (b"2H", Some(Duration::from_secs(7200))),
            (b"3M", Some(Duration::from_secs(180))),
            (b"99999999u", Some(Duration::from_micros(99_999_999))),
            (b"5n", Some(Duration::from_nanos(5))),
            (b"123456789S", None),
            (b"S", None),
            (b"", None),
            (b"10s", None),
            (b"-1S", None),
            (b"1.5S", None),
        ] {
            assert_eq!(timeout(v), d, "{:?}", String::from_utf8_lossy(v));
        }
    }
}
