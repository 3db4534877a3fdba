//! The CA's web dashboard at `/ui/`: server-rendered HTML (maud escapes every value), no
//! script at all, one stylesheet embedded in the binary. Signed in with a token, it shows
//! what the token's ACL lets it read, and offers the actions (revoke, issue) the ACL allows; a
//! form posted anyway without the right is refused with 403 as the API would.
//!
//! Safe by construction: the session is an `HttpOnly; SameSite=Strict` cookie whose id is
//! kept hashed (session.rs), every POST carries the session's CSRF token, and every answer has
//! a Content-Security-Policy that allows nothing but this origin's stylesheet and forms.

mod actions;
mod pages;
mod session;
mod words;

use std::sync::Arc;

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use maud::{html, Markup, DOCTYPE};
use mutual_auth::{Acl, Capability};
use mutual_store::TokenRecord;

use crate::state::{App, Mount};
use session::{Session, Sessions};

const STYLE: &str = include_str!("style.css");

/// Every answer's policy: this origin's stylesheet, no script, no frames, forms only here.
const CSP: &str = "default-src 'self'; script-src 'none'; object-src 'none'; style-src 'self'; \
                   img-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The dashboard's state: the server's, and its sessions.
#[derive(Debug)]
pub(crate) struct Ui {
    app: Arc<App>,
    sessions: Sessions,
}

/// The dashboard's routes, to be merged into the server's router.
pub(crate) fn router<S>(app: Arc<App>) -> Router<S> {
    let ui = Arc::new(Ui {
        app,
        sessions: Sessions::default(),
    });
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/style.css", get(style))
        .route("/ui/login", get(actions::login_form).post(actions::login))
        .route("/ui/login/cert", post(actions::login_cert))
        .route("/ui/logout", post(actions::logout))
        .route("/ui/certs", get(pages::certs))
        .route("/ui/cert", get(pages::cert))
        .route("/ui/roles", get(pages::roles))
        .route(
            "/ui/revoke",
            get(actions::revoke_form).post(actions::revoke),
        )
        .route("/ui/issue", get(actions::issue_form).post(actions::issue))
        // The server's fallback (the Vault API's dispatcher) replaces a merged router's own,
        // so the dashboard's unknown pages are a route of their own.
        .route(
            "/ui/{*rest}",
            get(|| async { error_page(StatusCode::NOT_FOUND, "No such page.") }),
        )
        .layer(axum::middleware::map_response(guard))
        .with_state(ui)
}

/// The headers that make every page safe to render whatever it contains.
async fn guard(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// A signed-in request: its session, its token and the token's ACL.
pub(crate) struct Viewer {
    session: Session,
    tok: TokenRecord,
    acl: Acl,
}

impl Viewer {
    /// May this viewer do `cap` on `path`?
    pub fn can(&self, path: &str, cap: Capability) -> bool {
        self.acl.allows(path, cap).is_allowed()
    }

    /// The mounts whose certificates this viewer may see (read on `<mount>/inventory`).
    pub fn mounts(&self, app: &App) -> Vec<Arc<Mount>> {
        app.mounts()
            .into_iter()
            .filter(|m| self.can(&format!("{}/inventory", m.record.path), Capability::Read))
            .collect()
    }

    /// The CAs a search of this viewer is limited to: `None` when it sees every mount, so
    /// that the search needs no CA condition (and its indexes give the order).
    pub fn scope(&self, app: &App) -> Option<Vec<String>> {
        let all = app.mounts();
        let visible = self.mounts(app);
        if visible.len() == all.len() {
            return None;
        }
        Some(visible.iter().map(|m| m.record.path.clone()).collect())
    }

    /// May this viewer revoke certificates of `mount`?
    pub fn can_revoke(&self, mount: &str) -> bool {
        self.can(&format!("{mount}/revoke"), Capability::Update)
    }
}

impl Ui {
    /// The viewer behind a request's session cookie, or the answer that sends it to sign in.
    pub(crate) async fn viewer(&self, headers: &HeaderMap) -> Result<Viewer, Response> {
        let to_login = || Redirect::to("/ui/login").into_response();
        let id = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| session::cookie(c, session::COOKIE))
            .ok_or_else(to_login)?;
        let session = self.sessions.get(id).ok_or_else(to_login)?;
        let tok = match self.app.token(Some(&session.secret)).await {
            Ok(t) if !t.expired(time::OffsetDateTime::now_utc()) => t,
            _ => {
                self.sessions.end(id);
                return Err(to_login());
            }
        };
        let acl = self
            .app
            .acl(&tok)
            .await
            .map_err(|e| error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()))?;
        Ok(Viewer { session, tok, acl })
    }
}

/// A page of the dashboard around `body`.
pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · mutual" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    a.brand href="/ui/" { "mutual" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/ui/" { "Overview" }
                            a href="/ui/certs" { "Certificates" }
                            a href="/ui/roles" { "Roles" }
                        }
                        form.signout method="post" action="/ui/logout" {
                            span.who { (v.tok.display_name) }
                            input type="hidden" name="csrf" value=(v.session.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Html(doc.into_string())
}

/// A page that only says what went wrong, with its status.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let body = html! { p.error { (message) } p { a href="/ui/" { "Back to the overview" } } };
    (
        status,
        page(status.canonical_reason().unwrap_or("Error"), None, body),
    )
        .into_response()
}

/// `s` made safe for a URL's query component.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A time as the dashboard shows it: `2026-11-30 08:00 UTC`.
pub(crate) fn when(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        let cases = [
            ("alice.example.com", "alice.example.com"),
            ("<script>&x=1", "%3Cscript%3E%26x%3D1"),
            ("a b/é", "a%20b%2F%C3%A9"),
        ];
        for (input, want) in cases {
            assert_eq!(super::enc(input), want);
        }
    }
}
