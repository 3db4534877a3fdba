//! Choosing a route for a request: by Host and path prefix, with the Host held to the TLS
//! server name (SNI) so that a connection made for one name cannot reach another name's route.
//! Pure.

use crate::config::RouteConfig;

/// Why no route serves a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRoute {
    /// The Host differs from the name the TLS connection was made for (HTTP 421).
    #[error("host \"{host}\" does not match the TLS server name \"{sni}\"")]
    Misdirected {
        /// The request's host.
        host: String,
        /// The connection's SNI.
        sni: String,
    },
    /// A named host's route needs the connection to have been made for that name (HTTP 421).
    #[error("host \"{host}\" is served only to connections made for that name (SNI)")]
    NeedsSni {
        /// The request's host.
        host: String,
    },
    /// No route for this host and path (HTTP 404).
    #[error("no route for {host}{path}")]
    NotFound {
        /// The request's host.
        host: String,
        /// The path.
        path: String,
    },
}

/// The host of a `Host` / `:authority` value: lower case, without port or IPv6 brackets.
pub fn host_of(authority: &str) -> std::borrow::Cow<'_, str> {
    let a = authority.trim();
    let host = if let Some(rest) = a.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        match a.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => a,
        }
    };
    let host = host.trim_end_matches('.');
    // Borrowed when already lower case, as nearly every client sends it.
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        host.to_ascii_lowercase().into()
    } else {
        host.into()
    }
}

fn prefix_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.ends_with('/')
            || path.len() == prefix.len()
            || path
                .as_bytes()
                .get(prefix.len())
                .is_some_and(|b| *b == b'/' || *b == b'?'))
}

/// Picks the route for `host` + `path` on a connection made for `sni`. `routes` are in the
/// order [`crate::config`] sorted them (longest prefix first). A named host's route is served
/// only on a connection made for that name; a `*` route takes any Host (it is authorized per
/// request all the same, so no name can borrow another's permission).
pub fn select<'r>(
    routes: &'r [RouteConfig],
    sni: Option<&str>,
    host: &str,
    path: &str,
) -> Result<(usize, &'r RouteConfig), NoRoute> {
    let mut named_without_sni = false;
    for (i, r) in routes.iter().enumerate() {
        if !prefix_matches(&r.path, path) {
            continue;
        }
        if r.host == "*" {
            return Ok((i, r));
        }
        if r.host == host {
            match sni {
                None => {
                    named_without_sni = true;
                    continue;
                }
                Some(s) if !s.eq_ignore_ascii_case(host) => {
                    return Err(NoRoute::Misdirected {
                        host: host.into(),
                        sni: s.into(),
                    })
                }
                Some(_) => return Ok((i, r)),
            }
        }
    }
    if named_without_sni {
        return Err(NoRoute::NeedsSni { host: host.into() });
    }
    Err(NoRoute::NotFound {
        host: host.into(),
        path: path.into(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use mutual_tls::{DenyAt, Policy};

    use super::*;
    use crate::config::HandshakePolicies;

    fn route(host: &str, path: &str, allow: &[&str], deny_at: DenyAt) -> RouteConfig {
        RouteConfig {
            name: format!("{host}{path}"),
            host: host.into(),
            path: path.into(),
            upstream: 0,
            policy: Arc::new(Policy::parse(allow).unwrap()),
            deny_at,
        }
    }

    fn table() -> Vec<RouteConfig> {
        vec![
            route(
                "api.example.com",
                "/admin",
                &["cn=alice.example.com"],
                DenyAt::Handshake,
            ),
            route("www.example.com", "/", &["any"], DenyAt::Http),
            route(
                "api.example.com",
                "/",
                &["cn=bob.example.com"],
                DenyAt::Handshake,
            ),
            route("*", "/", &["cn=carol.example.com"], DenyAt::Http),
        ]
    }

    #[test]
    fn hosts() {
        for (input, want) in [
            ("www.example.com", "www.example.com"),
            ("WWW.Example.com:8443", "www.example.com"),
            ("127.0.0.1:443", "127.0.0.1"),
            ("[::1]:443", "::1"),
            ("example.com.", "example.com"),
        ] {
            assert_eq!(host_of(input), want);
        }
    }

    /// SNI, Host, path, and the route name or the error.
    type Case<'a> = (Option<&'a str>, &'a str, &'a str, Result<&'a str, &'a str>);

    #[test]
    fn selection() {
        let t = table();
        let name = |r: Result<(usize, &RouteConfig), NoRoute>| r.map(|(_, r)| r.name.clone());
        let cases: &[Case] = &[
            (Some("api.example.com"), "api.example.com", "/admin/x", Ok("api.example.com/admin")),
            (Some("api.example.com"), "api.example.com", "/administrator", Ok("api.example.com/")),
            (Some("api.example.com"), "api.example.com", "/admin", Ok("api.example.com/admin")),
            (Some("www.example.com"), "www.example.com", "/admin", Ok("www.example.com/")),
            (Some("www.example.com"), "api.example.com", "/", Err("host \"api.example.com\" does not match the TLS server name \"www.example.com\"")),
            (None, "api.example.com", "/", Ok("*/")),
            (None, "127.0.0.1", "/x", Ok("*/")),
            (Some("other.example.com"), "other.example.com", "/", Ok("*/")),
            (Some("localhost"), "127.0.0.1", "/", Ok("*/")),
        ];
        for (sni, host, path, want) in cases {
            let got = name(select(&t, *sni, host, path)).map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(String::from).map_err(String::from),
                "{sni:?} {host} {path}"
            );
        }
        let only_named = vec![route("api.example.com", "/", &["any"], DenyAt::Http)];
        assert_eq!(
            select(&only_named, None, "api.example.com", "/")
                .unwrap_err()
                .to_string(),
            "host \"api.example.com\" is served only to connections made for that name (SNI)"
        );
        assert_eq!(
            select(&only_named, Some("x.org"), "x.org", "/")
                .unwrap_err()
                .to_string(),
            "no route for x.org/"
        );
    }

    #[test]
    fn handshake_policies() {
        let t = table();
        // A `*` route answers with 403, so the handshake admits every verified caller.
        let all = HandshakePolicies::of(&t);
        assert!(all.for_sni(Some("api.example.com")).is_none());
        let t: Vec<RouteConfig> = t.into_iter().filter(|r| r.host != "*").collect();
        let named = HandshakePolicies::of(&t);
        let p = named.for_sni(Some("api.example.com")).unwrap();
        assert_eq!(p.to_string(), "cn=alice.example.com, cn=bob.example.com");
        assert!(Arc::ptr_eq(
            &p,
            &named.for_sni(Some("API.example.com")).unwrap()
        ));
        assert!(named.for_sni(Some("www.example.com")).is_none());
        assert!(named.for_sni(None).is_none());
        // One reachable route: its own policy, shared.
        let one = vec![route(
            "db.example.com",
            "/",
            &["cn=alice.example.com"],
            DenyAt::Handshake,
        )];
        let shared = HandshakePolicies::of(&one)
            .for_sni(Some("db.example.com"))
            .unwrap();
        assert!(Arc::ptr_eq(&shared, &one[0].policy));
    }
}
