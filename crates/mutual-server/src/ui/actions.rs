//! The dashboard's forms: sign in and out, revoke (after a confirmation page), issue from a
//! role (the PEM bundle downloaded). Every POST checks its CSRF token first, then the token's
//! ACL exactly as the API would, then goes through the same engine handler as the API.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Redirect, Response},
};
use maud::html;
use mutual_auth::Capability;
use mutual_pki::{crl::Reason, serial::Serial};
use serde_json::Value;

use super::{error_page, page, session, Ui, Viewer};
use crate::{cert_auth::ClientCert, params::Params, reply::Reply, Op};

/// The reasons offered when revoking (RFC 5280's, less those for CAs and holds).
const REASONS: &[(&str, &str)] = &[
    ("unspecified", "Unspecified"),
    ("keyCompromise", "Key compromise"),
    ("affiliationChanged", "Affiliation changed"),
    ("superseded", "Superseded"),
    ("cessationOfOperation", "Cessation of operation"),
];

fn form(body: &Bytes) -> Params {
    Params::parse(b"", std::str::from_utf8(body).ok()).unwrap_or_default()
}

fn csrf_refused() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "Refused: the form's CSRF token is missing or wrong. Reload the page and try again.",
    )
}

fn denied(what: &str) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        &format!("Permission denied: this token's policies do not allow {what}."),
    )
}

/// A POST of a signed-in session: the viewer, once the form's CSRF token matches.
async fn poster(ui: &Ui, headers: &HeaderMap, p: &Params) -> Result<Viewer, Response> {
    let v = ui.viewer(headers).await?;
    if !v.session.csrf_ok(p.string("csrf").as_deref()) {
        return Err(csrf_refused());
    }
    Ok(v)
}

/// The sign-in page; sets the cookie that its form's CSRF token must match. On a connection
/// that presented a client certificate (the server's TLS listener with `--tls-client-ca`), it
/// also offers to sign in with that certificate.
pub(crate) async fn login_form(req: Request) -> Response {
    login_page(StatusCode::OK, None, ClientCert::of(req.extensions()))
}

fn login_page(status: StatusCode, error: Option<&str>, cert: Option<&ClientCert>) -> Response {
    let csrf = session::random_id();
    let body = html! {
        @if let Some(e) = error { p.error { (e) } }
        @if let Some(c) = cert {
            form.login method="post" action="/ui/login/cert" {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign in with your certificate" }
                p.hint { "Presented by this connection: " code { (c.subject) } ". A certificate role (" code { "auth/cert/certs" } ") or " code { "--cert-login" } " rule decides what it may do." }
            }
        }
        form.login method="post" action="/ui/login" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Token" input type="password" name="token" autocomplete="off" autofocus; }
            button type="submit" { "Sign in" }
        }
        p.hint { "Any token the server knows (" code { "mutual token create" } ", " code { "bao token create" } "). The dashboard shows what its policies allow." }
    };
    (
        status,
        [(
            header::SET_COOKIE,
            session::set_cookie(session::LOGIN_COOKIE, &csrf, Some(600)),
        )],
        page("Sign in", None, body),
    )
        .into_response()
}

/// Signs in with a token: a session when the token is valid and not a bootstrap token.
pub(crate) async fn login(State(ui): State<Arc<Ui>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = form(&body);
    let expected = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::cookie(c, session::LOGIN_COOKIE));
    let offered = p.string("csrf");
    if !matches!((expected, offered.as_deref()), (Some(e), Some(o)) if !e.is_empty() && session::same(e, o))
    {
        return csrf_refused();
    }
    let secret = p.string("token").unwrap_or_default().trim().to_string();
    let refused = |msg: &str| login_page(StatusCode::FORBIDDEN, Some(msg), None);
    let tok = match ui.app.token(Some(&secret)).await {
        Ok(t) => t,
        Err(_) => return refused("This token is not valid (unknown, revoked or expired)."),
    };
    if tok.expired(time::OffsetDateTime::now_utc()) {
        return refused("This token has expired.");
    }
    if tok.role.is_some() {
        return refused("A bootstrap token (bound to one role) cannot sign in to the dashboard.");
    }
    tracing::info!(token.accessor = %tok.accessor, "dashboard sign-in");
    signed_in(&ui, secret)
}

/// Signs in with the connection's client certificate: the token that `auth/cert/login`
/// gives it (a certificate role, or the `--cert-login` rules), held by the session.
pub(crate) async fn login_cert(State(ui): State<Arc<Ui>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.");
    };
    let p = form(&body);
    let expected = parts
        .headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::cookie(c, session::LOGIN_COOKIE));
    let offered = p.string("csrf");
    if !matches!((expected, offered.as_deref()), (Some(e), Some(o)) if !e.is_empty() && session::same(e, o))
    {
        return csrf_refused();
    }
    let cert = ClientCert::of(&parts.extensions);
    let refused = |msg: &str| login_page(StatusCode::FORBIDDEN, Some(msg), cert);
    let Some(cert) = cert else {
        return refused("This connection presented no client certificate (use the server's TLS listener, started with --tls-client-ca, and present one).");
    };
    let secret = match crate::cert_auth::login(&ui.app, Op::Write, Some(cert), &Params::default())
        .await
    {
        Ok(Reply::Auth(auth)) => auth["client_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        Ok(_) => String::new(),
        Err(e) => {
            tracing::info!(subject = %cert.subject, reason = %e, "dashboard sign-in refused");
            return refused(&format!(
                "This certificate ({}) grants no access: no certificate role or --cert-login rule admits it.",
                cert.subject
            ));
        }
    };
    if secret.is_empty() {
        return refused("The certificate login gave no token.");
    }
    tracing::info!(subject = %cert.subject, "dashboard sign-in with a client certificate");
    signed_in(&ui, secret)
}

/// A new session for `secret`: its cookie set, the sign-in cookie cleared, to the overview.
fn signed_in(ui: &Ui, secret: String) -> Response {
    let id = ui.sessions.start(secret);
    let mut res = Redirect::to("/ui/").into_response();
    let h = res.headers_mut();
    for c in [
        session::set_cookie(session::COOKIE, &id, None),
        session::set_cookie(session::LOGIN_COOKIE, "", Some(0)),
    ] {
        if let Ok(v) = c.parse() {
            h.append(header::SET_COOKIE, v);
        }
    }
    res
}

/// Signs out: ends the session and clears its cookie.
pub(crate) async fn logout(State(ui): State<Arc<Ui>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = form(&body);
    if let Err(r) = poster(&ui, &headers, &p).await {
        return r;
    }
    if let Some(id) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::cookie(c, session::COOKIE))
    {
        ui.sessions.end(id);
    }
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(session::COOKIE, "", Some(0)),
        )],
        Redirect::to("/ui/login"),
    )
        .into_response()
}

/// The certificate to revoke, when the viewer may see it.
async fn revocable(ui: &Ui, v: &Viewer, p: &Params) -> Result<mutual_store::CertRecord, Response> {
    let serial = p
        .string("serial")
        .and_then(|s| Serial::parse(&s).ok())
        .ok_or_else(|| {
            error_page(
                StatusCode::BAD_REQUEST,
                "The serial is missing or malformed.",
            )
        })?;
    let rec = ui.app.store.get_cert(&serial).await.ok();
    match rec {
        Some(rec) if v.mounts(&ui.app).iter().any(|m| m.record.path == rec.ca) => Ok(rec),
        _ => Err(error_page(
            StatusCode::NOT_FOUND,
            &format!("No certificate {serial} that this token may see."),
        )),
    }
}

/// The confirmation page of a revocation: the certificate, a reason, one button.
pub(crate) async fn revoke_form(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let v = match ui.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = Params::parse(b"", uri.query()).unwrap_or_default();
    let rec = match revocable(&ui, &v, &p).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !v.can_revoke(&rec.ca) {
        return denied(&format!("revoking certificates of {}", rec.ca));
    }
    let body = html! {
        p.warning {
            "Revoke " strong { (rec.common_name) } " (serial " span.serial { (rec.serial) } ") of CA " (rec.ca) "? "
            "It goes into the CRL and the revocation feed at once; this cannot be undone."
        }
        form.confirm method="post" action="/ui/revoke" {
            input type="hidden" name="csrf" value=(v.session.csrf);
            input type="hidden" name="serial" value=(rec.serial.to_hex());
            label { "Reason" select name="reason" {
                @for (w, label) in REASONS { option value=(w) { (label) } }
            } }
            button.danger type="submit" name="confirm" value="yes" { "Revoke this certificate" }
            " "
            a href=(format!("/ui/cert?serial={}", rec.serial.to_hex())) { "Cancel" }
        }
    };
    page("Revoke a certificate", Some(&v), body).into_response()
}

/// Revokes, after the CSRF and ACL checks, through the engine's `revoke`.
pub(crate) async fn revoke(State(ui): State<Arc<Ui>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = form(&body);
    let v = match poster(&ui, &headers, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let rec = match revocable(&ui, &v, &p).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if !v.can_revoke(&rec.ca) {
        tracing::info!(token.accessor = %v.tok.accessor, mount = %rec.ca, "dashboard revoke denied");
        return denied(&format!("revoking certificates of {}", rec.ca));
    }
    let reason = p.str_or("reason", "unspecified");
    if reason.parse::<Reason>().is_err() {
        return error_page(StatusCode::BAD_REQUEST, "Unknown revocation reason.");
    }
    let Some(mount) = ui.app.mount(&rec.ca) else {
        return error_page(StatusCode::NOT_FOUND, "The certificate's mount is gone.");
    };
    let args = serde_json::json!({ "serial_number": rec.serial.to_string(), "reason": reason });
    let params = Params::parse(args.to_string().as_bytes(), None).unwrap_or_default();
    let request = format!("{}/revoke (dashboard)", rec.ca);
    let answer = crate::inventory::on_behalf_of(
        Some(v.tok.accessor.clone()),
        request,
        crate::pki::handle(&ui.app, mount, Op::Write, "revoke", params),
    )
    .await;
    if let Err(e) = answer {
        return error_page(e.status(), &e.to_string());
    }
    tracing::info!(token.accessor = %v.tok.accessor, serial = %rec.serial, reason, "dashboard revoke");
    Redirect::to(&format!(
        "/ui/cert?serial={}&revoked=1",
        rec.serial.to_hex()
    ))
    .into_response()
}

/// The mount and role a form names, when the viewer may see them.
fn role_of(ui: &Ui, v: &Viewer, p: &Params) -> Option<(Arc<crate::state::Mount>, String)> {
    let mount = p.string("mount").unwrap_or_default();
    let role = p.string("role").unwrap_or_default();
    v.mounts(&ui.app)
        .into_iter()
        .find(|m| m.record.path == mount && m.roles.contains_key(&role))
        .map(|m| (m, role))
}

fn no_role() -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        "No such role that this token may see.",
    )
}

fn can_issue(v: &Viewer, mount: &str, role: &str) -> bool {
    v.can(&format!("{mount}/issue/{role}"), Capability::Update)
}

/// The issue form of a role.
pub(crate) async fn issue_form(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let v = match ui.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = Params::parse(b"", uri.query()).unwrap_or_default();
    let Some((mount, role)) = role_of(&ui, &v, &p) else {
        return no_role();
    };
    if !can_issue(&v, &mount.record.path, &role) {
        return denied(&format!("issuing under role {role}"));
    }
    let body = html! {
        ul.words { @for s in super::words::describe(&mount.roles[&role]) { li { (s) } } }
        form.issue method="post" action="/ui/issue" {
            input type="hidden" name="csrf" value=(v.session.csrf);
            input type="hidden" name="mount" value=(mount.record.path);
            input type="hidden" name="role" value=(role);
            label { "Common name" input name="common_name" required; }
            label { "More DNS names (comma-separated)" input name="alt_names"; }
            label { "IP addresses (comma-separated)" input name="ip_sans"; }
            label { "URI names (comma-separated)" input name="uri_sans"; }
            label { "Lifetime (e.g. 72h; empty: the role's default)" input name="ttl"; }
            label { "PKCS#12 password (set it to download a .p12 instead of PEM)" input type="password" name="p12_password" autocomplete="new-password"; }
            button type="submit" { "Issue and download" }
        }
        p.hint { "The download holds the certificate, its private key and the CA chain. The key is not kept by the server." }
    };
    page(&format!("Issue from role {role}"), Some(&v), body).into_response()
}

/// Issues through the engine's `issue/<role>` and answers the PEM bundle as a download.
pub(crate) async fn issue(State(ui): State<Arc<Ui>>, headers: HeaderMap, body: Bytes) -> Response {
    let p = form(&body);
    let v = match poster(&ui, &headers, &p).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let Some((mount, role)) = role_of(&ui, &v, &p) else {
        return no_role();
    };
    if !can_issue(&v, &mount.record.path, &role) {
        return denied(&format!("issuing under role {role}"));
    }
    let mut args = serde_json::Map::new();
    for k in ["common_name", "alt_names", "ip_sans", "uri_sans", "ttl"] {
        if let Some(val) = p
            .string(k)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
        {
            args.insert(k.to_string(), Value::String(val));
        }
    }
    let params =
        Params::parse(Value::Object(args).to_string().as_bytes(), None).unwrap_or_default();
    let rest = format!("issue/{role}");
    let request = format!("{}/{rest} (dashboard)", mount.record.path);
    let answer = crate::inventory::on_behalf_of(
        Some(v.tok.accessor.clone()),
        request,
        crate::pki::handle(&ui.app, mount, Op::Write, &rest, params),
    )
    .await;
    let data = match answer {
        Ok(Reply::Data { data, .. }) => data,
        Ok(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "unexpected answer"),
        Err(e) => return error_page(e.status(), &e.to_string()),
    };
    let field = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mut bundle = format!("{}\n{}\n", field("certificate"), field("private_key"));
    for ca in data
        .get("ca_chain")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(pem) = ca.as_str() {
            bundle.push_str(pem.trim());
            bundle.push('\n');
        }
    }
    let name: String = p
        .str_or("common_name", "certificate")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    tracing::info!(token.accessor = %v.tok.accessor, role, serial = field("serial_number"), "dashboard issue");
    if let Some(password) = p.string("p12_password").filter(|pw| !pw.is_empty()) {
        let key = field("private_key");
        let alias = name.clone();
        let built = tokio::task::spawn_blocking(move || {
            let key = mutual_pki::key::PrivateKey::from_pem(&key)?;
            let chain = mutual_pki::cert::pem_certs(bundle.as_bytes())?;
            mutual_pki::p12::build(&alias, &key, &chain, &password)
        })
        .await;
        return match built {
            Ok(Ok(der)) => (
                [
                    (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}.p12\""),
                    ),
                ],
                der,
            )
                .into_response(),
            Ok(Err(e)) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            Err(e) => error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    }
    (
        [
            (header::CONTENT_TYPE, "application/x-pem-file".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.pem\""),
            ),
        ],
        bundle,
    )
        .into_response()
}
