//! The dashboard's read-only pages: the overview, the inventory search, a certificate, roles.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use maud::{html, Markup};
use mutual_auth::Capability;
use mutual_pki::{cert, duration, serial::Serial};
use mutual_store::{Found, Search, SortKey};
use time::OffsetDateTime;

use super::{enc, error_page, page, when, words, Ui};
use crate::params::Params;

/// Days of issuance the overview counts.
const DAYS: u32 = 14;
/// "Expiring soon": within this.
const SOON: Duration = Duration::from_secs(30 * 86_400);

fn query(uri: &Uri) -> Params {
    Params::parse(b"", uri.query()).unwrap_or_default()
}

/// The overview: CAs as a tree with their lifetimes, issuance per day, what expires soon,
/// what was revoked lately.
pub(crate) async fn overview(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let v = match ui.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mounts = v.mounts(&ui.app);
    let scope = v.scope(&ui.app);
    let now = OffsetDateTime::now_utc();
    let soon = ui
        .app
        .store
        .search_certs(&Search {
            visible_cas: scope.clone(),
            expires_after: Some(now),
            expires_before: Some(now + SOON),
            revoked: Some(false),
            limit: 10,
            ..Search::default()
        })
        .await;
    let revoked = ui
        .app
        .store
        .search_certs(&Search {
            visible_cas: scope.clone(),
            sort: SortKey::Revoked,
            descending: true,
            limit: 10,
            ..Search::default()
        })
        .await;
    let days = ui
        .app
        .store
        .issued_per_day(DAYS, scope.as_deref(), now)
        .await;
    let (soon, revoked, days) = match (soon, revoked, days) {
        (Ok(s), Ok(r), Ok(d)) => (s, r, d),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string())
        }
    };
    let most = days.iter().map(|d| d.issued).max().unwrap_or(0);
    // The CA tree: roots (no parent among the visible CAs) first, each followed by its
    // children, indented by depth.
    let cas: Vec<_> = mounts.iter().filter_map(|m| m.ca.clone()).collect();
    let mut tree = Vec::new();
    fn walk(
        cas: &[Arc<mutual_store::CaRecord>],
        parent: Option<&str>,
        depth: usize,
        out: &mut Vec<(usize, Arc<mutual_store::CaRecord>)>,
    ) {
        for ca in cas {
            let is_child = match parent {
                None => ca
                    .parent
                    .as_deref()
                    .is_none_or(|p| !cas.iter().any(|c| c.name == p)),
                Some(p) => ca.parent.as_deref() == Some(p),
            };
            if is_child && depth < 8 {
                out.push((depth, ca.clone()));
                walk(cas, Some(&ca.name), depth + 1, out);
            }
        }
    }
    walk(&cas, None, 0, &mut tree);
    let body = html! {
        section {
            h2 { "Certificate authorities" }
            @if tree.is_empty() {
                p.empty { "No CA this token may see." }
            }
            ul.tree {
                @for (depth, ca) in &tree {
                    @let facts = cert::facts(&ca.cert_der).ok();
                    li class=(format!("depth{}", depth.min(&4))) {
                        span.ca { (facts.as_ref().and_then(|f| f.common_name.clone()).unwrap_or_default()) }
                        " "
                        span.mount { "mount " (ca.name) }
                        " "
                        @if let Some(f) = &facts {
                            span.life { (when(f.not_before)) " → " (when(f.not_after)) " (" (left(f.not_after, now)) ")" }
                        }
                        " "
                        a href=(format!("/ui/certs?issuer={}", enc(&ca.name))) { "certificates" }
                    }
                }
            }
        }
        section {
            h2 { "Issued per day (last " (DAYS) " days)" }
            @if days.is_empty() {
                p.empty { "Nothing issued." }
            }
            table.days {
                @for d in &days {
                    tr {
                        td { (d.day) }
                        td { progress max=(most) value=(d.issued) { (d.issued) } }
                        td.num { (d.issued) }
                    }
                }
            }
        }
        section {
            h2 { "Expiring within 30 days" }
            (cert_table(&soon.certs, now))
            @if soon.next.is_some() {
                p { a href=(format!("/ui/certs?expiring=30d&revoked=false")) { "All of them" } }
            }
        }
        section {
            h2 { "Recently revoked" }
            (cert_table(&revoked.certs, now))
        }
    };
    page("Overview", Some(&v), body).into_response()
}

fn left(t: OffsetDateTime, now: OffsetDateTime) -> String {
    if t <= now {
        return "expired".to_string();
    }
    let d = (t - now).whole_seconds().max(0) as u64;
    format!("{} left", duration::human(Duration::from_secs(d)))
}

fn status(f: &Found, now: OffsetDateTime) -> Markup {
    let c = &f.cert;
    html! {
        @if let Some(at) = c.revoked_at {
            span.revoked { "revoked " (when(at)) " (" (c.reason.unwrap_or_default()) ")" }
        } @else if c.not_after <= now {
            span.expired { "expired" }
        } @else {
            span.valid { "valid" }
        }
    }
}

fn cert_table(certs: &[Found], now: OffsetDateTime) -> Markup {
    html! {
        @if certs.is_empty() {
            p.empty { "None." }
        } @else {
            table.certs {
                thead { tr { th { "Common name" } th { "Serial" } th { "CA" } th { "Role" } th { "Expires" } th { "Status" } } }
                tbody {
                    @for f in certs {
                        @let c = &f.cert;
                        tr {
                            td { a href=(format!("/ui/cert?serial={}", c.serial.to_hex())) { (c.common_name) } }
                            td.serial { (c.serial) }
                            td { (c.ca) }
                            td { (c.role.clone().unwrap_or_default()) }
                            td { (when(c.not_after)) }
                            td { (status(f, now)) }
                        }
                    }
                }
            }
        }
    }
}

/// The inventory search: every filter of the API, results paged by cursor.
pub(crate) async fn certs(State(ui): State<Arc<Ui>>, headers: HeaderMap, uri: Uri) -> Response {
    let v = match ui.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = query(&uri);
    let now = OffsetDateTime::now_utc();
    let mounts = v.mounts(&ui.app);
    let visible: Vec<String> = mounts.iter().map(|m| m.record.path.clone()).collect();
    let found = match crate::inventory::search_from(&p, now) {
        Ok(mut s) => {
            s.visible_cas = v.scope(&ui.app);
            ui.app
                .store
                .search_certs(&s)
                .await
                .map_err(|e| crate::inventory::store_err(e).to_string())
        }
        Err(e) => Err(e.to_string()),
    };
    let val = |k: &str| p.string(k).unwrap_or_default();
    let pick = |k: &str, opt: &str| val(k) == opt;
    let next_link = |next: &str| {
        let mut q: Vec<String> = [
            "cn",
            "san",
            "role",
            "issuer",
            "serial",
            "expiring",
            "revoked",
            "issued_by",
            "sort",
            "order",
            "limit",
        ]
        .iter()
        .filter(|k| !val(k).is_empty())
        .map(|k| format!("{k}={}", enc(&val(k))))
        .collect();
        q.push(format!("after={}", enc(next)));
        format!("/ui/certs?{}", q.join("&"))
    };
    let body = html! {
        form.search method="get" action="/ui/certs" {
            label { "Common name starts with" input name="cn" value=(val("cn")) placeholder="alice"; }
            label { "Alternative name" input name="san" value=(val("san")) placeholder="dns:www.example.com, ip:127.0.0.1, uri:spiffe://…"; }
            label { "Role" input name="role" value=(val("role")); }
            label { "CA" select name="issuer" {
                option value="" { "any" }
                @for m in &visible {
                    option value=(m) selected[pick("issuer", m)] { (m) }
                }
            } }
            label { "Serial" input name="serial" value=(val("serial")); }
            label { "Expiring within" select name="expiring" {
                @for (w, label) in [("", "any time"), ("1d", "1 day"), ("7d", "7 days"), ("30d", "30 days"), ("90d", "90 days")] {
                    option value=(w) selected[pick("expiring", w)] { (label) }
                }
            } }
            label { "Revoked" select name="revoked" {
                @for (w, label) in [("", "either"), ("false", "not revoked"), ("true", "revoked")] {
                    option value=(w) selected[pick("revoked", w)] { (label) }
                }
            } }
            label { "Issued by token (accessor)" input name="issued_by" value=(val("issued_by")); }
            label { "Sort by" select name="sort" {
                @for (w, label) in [("", "default"), ("expiry", "expiry"), ("cn", "common name"), ("issued", "issued"), ("serial", "serial")] {
                    option value=(w) selected[pick("sort", w)] { (label) }
                }
            } }
            label { "Order" select name="order" {
                @for (w, label) in [("asc", "ascending"), ("desc", "descending")] {
                    option value=(w) selected[pick("order", w)] { (label) }
                }
            } }
            button type="submit" { "Search" }
        }
        @match &found {
            Err(e) => p.error { (e) },
            Ok(page) => {
                (cert_table(&page.certs, now))
                @if let Some(next) = &page.next {
                    p { a.next href=(next_link(next)) { "Next page →" } }
                }
            }
        }
    };
    page("Certificates", Some(&v), body).into_response()
}

/// A certificate: its decoded fields, chain, revocation, role and who asked for it.
pub(crate) async fn cert(State(ui): State<Arc<Ui>>, headers: HeaderMap, uri: Uri) -> Response {
    let v = match ui.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = query(&uri);
    let Some(serial) = p.string("serial").and_then(|s| Serial::parse(&s).ok()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The serial parameter is missing or malformed.",
        );
    };
    let not_found = || {
        error_page(
            StatusCode::NOT_FOUND,
            &format!("No certificate {serial} that this token may see."),
        )
    };
    let Ok(rec) = ui.app.store.get_cert(&serial).await else {
        return not_found();
    };
    let Some(mount) = v
        .mounts(&ui.app)
        .into_iter()
        .find(|m| m.record.path == rec.ca)
    else {
        return not_found();
    };
    let found = ui
        .app
        .store
        .search_certs(&Search {
            serial: Some(serial.clone()),
            limit: 1,
            ..Search::default()
        })
        .await
        .ok()
        .and_then(|p| p.certs.into_iter().next());
    let now = OffsetDateTime::now_utc();
    let der = cert::pem_certs(rec.cert_pem.as_bytes())
        .ok()
        .and_then(|d| d.into_iter().next());
    let facts = der.as_deref().and_then(|d| cert::facts(d).ok());
    let role = rec
        .role
        .as_deref()
        .and_then(|r| mount.roles.get(r).cloned());
    let chain: Vec<_> = mount
        .ca
        .as_ref()
        .map(|ca| ca.chain_with_self())
        .unwrap_or_default()
        .iter()
        .filter_map(|pem| cert::pem_certs(pem.as_bytes()).ok()?.into_iter().next())
        .filter_map(|d| cert::facts(&d).ok())
        .collect();
    let just_revoked = p.string("revoked").is_some();
    let body = html! {
        @if just_revoked && rec.revoked_at.is_some() {
            p.notice { "Revoked. The CRL of " (rec.ca) " lists it now." }
        }
        section {
            h2 { (rec.common_name) }
            table.fields {
                tr { th { "Status" } td { @if let Some(f) = &found { (status(f, now)) } } }
                tr { th { "Serial" } td.serial { (rec.serial) } }
                tr { th { "CA (mount)" } td { (rec.ca) } }
                tr { th { "Role" } td { (rec.role.clone().unwrap_or_else(|| "none recorded".into())) } }
                @if let Some(f) = &found {
                    tr { th { "Recorded" } td { (when(f.issued_at)) } }
                    tr { th { "Issued by token" } td { (f.issued_by.clone().unwrap_or_else(|| "not recorded".into())) } }
                    tr { th { "Request" } td { code { (f.request.clone().unwrap_or_else(|| "not recorded".into())) } } }
                }
                @if let Some(f) = &facts {
                    tr { th { "Subject" } td { (f.subject) } }
                    tr { th { "Issuer" } td { (f.issuer) } }
                    tr { th { "Valid" } td { (when(f.not_before)) " → " (when(f.not_after)) " (" (left(f.not_after, now)) ")" } }
                    @let ips: Vec<String> = f.ip_addresses.iter().map(|i| i.to_string()).collect();
                    @for (label, values) in [
                        ("DNS names", &f.dns_names),
                        ("IP addresses", &ips),
                        ("URIs", &f.uris),
                        ("E-mail", &f.emails),
                        ("Key usage", &f.key_usage),
                        ("Extended key usage", &f.extended_key_usage),
                        ("CRL", &f.crl_urls),
                        ("Issuing CA URL", &f.issuing_urls),
                    ] {
                        @if !values.is_empty() {
                            tr { th { (label) } td { (values.join(", ")) } }
                        }
                    }
                    tr { th { "Key" } td { (f.key.to_string()) } }
                    tr { th { "Signature" } td { (f.signature_algorithm) } }
                    @if let Some(d) = &der {
                        tr { th { "SHA-256" } td.serial { (cert::fingerprint(d)) } }
                    }
                }
                @if let Some(at) = rec.revoked_at {
                    tr { th { "Revoked" } td { (when(at)) " — " (rec.reason.unwrap_or_default()) } }
                }
            }
            @if rec.revoked_at.is_none() && v.can_revoke(&rec.ca) {
                p { a.button.danger href=(format!("/ui/revoke?serial={}", rec.serial.to_hex())) { "Revoke…" } }
            }
            p { a href=(format!("/v1/{}/crl/pem", rec.ca)) { "The CA's CRL (PEM)" } }
        }
        section {
            h2 { "Chain" }
            ol.chain {
                li { (rec.common_name) }
                @for f in &chain {
                    li { (f.common_name.clone().unwrap_or_else(|| f.subject.clone())) " — until " (when(f.not_after)) }
                }
            }
        }
        @if let Some(role) = &role {
            section {
                h2 { "Role " (role.name) }
                ul.words { @for s in words::describe(role) { li { (s) } } }
            }
        }
        section {
            h2 { "PEM" }
            pre.pem { (rec.cert_pem) }
        }
    };
    page("Certificate", Some(&v), body).into_response()
}

/// Every role of the visible mounts, in plain words, with the issue action where allowed.
pub(crate) async fn roles(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let v = match ui.viewer(&headers).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let listed: Vec<_> = v
        .mounts(&ui.app)
        .into_iter()
        .map(|m| {
            let mut names: Vec<String> = m.roles.keys().cloned().collect();
            names.sort();
            (m, names)
        })
        .collect();
    let body = html! {
        @if listed.iter().all(|(_, names)| names.is_empty()) {
            p.empty { "No roles this token may see." }
        }
        @for (m, names) in &listed {
            @for name in names {
                @let role = &m.roles[name];
                section.role {
                    h2 { (name) " " span.mount { "on " (m.record.path) } }
                    ul.words { @for s in words::describe(role) { li { (s) } } }
                    p {
                        a href=(format!("/ui/certs?issuer={}&role={}", enc(&m.record.path), enc(name))) { "What it issued" }
                        @if v.can(&format!("{}/issue/{}", m.record.path, name), Capability::Update) {
                            " · "
                            a.button href=(format!("/ui/issue?mount={}&role={}", enc(&m.record.path), enc(name))) { "Issue a certificate…" }
                        }
                    }
                }
            }
        }
    };
    page("Roles", Some(&v), body).into_response()
}
