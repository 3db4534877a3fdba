//! Dashboard sessions: a random id in an `HttpOnly; SameSite=Strict` cookie, kept on the server
//! only as its SHA-256 (a copy of the table, or of a log line, opens no session), with the
//! token it stands for and the CSRF token its forms carry. Sessions live in memory: a restart
//! signs everyone out, which is what a CA's dashboard should do.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use aws_lc_rs::{constant_time::verify_slices_are_equal, digest, rand};

/// How long a session lasts without being used.
const IDLE: Duration = Duration::from_secs(30 * 60);
/// How long a session lasts at most.
const MAX_AGE: Duration = Duration::from_secs(8 * 3600);
/// Most sessions held at once; the oldest goes when a new one would pass this.
const MAX_SESSIONS: usize = 10_000;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "mutual_session";
/// The cookie carrying the sign-in form's CSRF token (before there is a session).
pub(crate) const LOGIN_COOKIE: &str = "mutual_login";

/// One signed-in browser.
#[derive(Clone)]
pub(crate) struct Session {
    /// The token's secret, to look the token up on every request (a revoked token ends its
    /// sessions at the next click).
    pub secret: String,
    /// What every POST of this session must carry.
    pub csrf: String,
    created: Instant,
    used: Instant,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

impl Session {
    /// True when `offered` is this session's CSRF token (compared in constant time).
    pub fn csrf_ok(&self, offered: Option<&str>) -> bool {
        offered.is_some_and(|o| same(o, &self.csrf))
    }
}

/// True when `a` equals `b`, in time that does not depend on where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    verify_slices_are_equal(a.as_bytes(), b.as_bytes()).is_ok()
}

/// The live sessions, by the hash of their id.
#[derive(Debug, Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

/// 32 random bytes, hex.
pub(crate) fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::fill(&mut b).expect("the system random generator failed");
    hex::encode(b)
}

fn key(id: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, id.as_bytes()))
}

impl Sessions {
    /// Starts a session for the token `secret`; returns the id for the cookie.
    pub fn start(&self, secret: String) -> String {
        let id = random_id();
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| alive(s, now));
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            key(&id),
            Session {
                secret,
                csrf: random_id(),
                created: now,
                used: now,
            },
        );
        id
    }

    /// The session of cookie value `id`, when it is alive (and marks it used).
    pub fn get(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(id);
        match map.get_mut(&k) {
            Some(s) if alive(s, now) => {
                s.used = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Ends the session of cookie value `id`.
    pub fn end(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(id));
    }
}

fn alive(s: &Session, now: Instant) -> bool {
    now.duration_since(s.used) < IDLE && now.duration_since(s.created) < MAX_AGE
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the dashboard: never readable by scripts, never sent by another
/// site's request, only under `/ui/`.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    format!("{name}={value}; Path=/ui/; HttpOnly; SameSite=Strict{age}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_their_id_only_and_end() {
        let sessions = Sessions::default();
        let id = sessions.start("s.token".into());
        assert_eq!(id.len(), 64);
        let s = sessions.get(&id).unwrap();
        assert_eq!(s.secret, "s.token");
        assert!(s.csrf_ok(Some(&s.csrf.clone())));
        assert!(!s.csrf_ok(None));
        assert!(!s.csrf_ok(Some("x")));
        // The map holds the id's hash, not the id.
        assert!(!sessions.0.lock().unwrap().contains_key(&id));
        assert!(sessions.get(&key(&id)).is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let cases = [
            ("a=1; mutual_session=xyz; b=2", Some("xyz")),
            ("mutual_session=", Some("")),
            ("other=1", None),
            ("", None),
        ];
        for (header, want) in cases {
            assert_eq!(cookie(header, COOKIE), want, "{header}");
        }
        assert_eq!(
            set_cookie(COOKIE, "v", Some(0)),
            "mutual_session=v; Path=/ui/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }
}
