//! The proxy's dashboard on the admin listener (`/ui/`): listeners and their certificates,
//! routes and who each admits, upstreams and their health, and the last refusals with the
//! reason for each — the Traefik dashboard, plus why. Read-only: no form, no script; every
//! value (certificate names included) escaped by maud; a Content-Security-Policy that allows
//! nothing but its own stylesheet.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use maud::{html, Markup, DOCTYPE};
use time::OffsetDateTime;

use crate::{config::ClientCertificate, Proxy};

const STYLE: &str = include_str!("ui.css");
const CSP: &str = "default-src 'none'; style-src 'self'; frame-ancestors 'none'; \
                   form-action 'none'; base-uri 'none'";

/// The answer to `path` under `/ui`, when it is one of the dashboard's.
pub(crate) fn answer(proxy: &Proxy, path: &str) -> Option<Response<Full<Bytes>>> {
    let (ctype, body) = match path {
        "/ui" | "/ui/" => ("text/html; charset=utf-8", page(proxy).into_string()),
        "/ui/style.css" => ("text/css; charset=utf-8", STYLE.to_string()),
        _ => return None,
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Some(r)
}

fn when(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&f).unwrap_or_default()
}

fn left(not_after: i64, now: i64) -> String {
    if not_after <= now {
        return "expired".into();
    }
    let d = std::time::Duration::from_secs((not_after - now) as u64);
    format!("{} left", mutual_pki::duration::human(d))
}

fn page(proxy: &Proxy) -> Markup {
    let rt = proxy.runtime();
    let now = OffsetDateTime::now_utc();
    let ts = now.unix_timestamp();
    let refusals = proxy.refusals.newest_first();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                // Refusals arrive as they happen: the page reloads itself (no script needed).
                meta http-equiv="refresh" content="10";
                title { "mutual proxy" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header { span.brand { "mutual proxy" } span.note { "read-only · refreshed every 10 s · " (when(now)) } }
                main {
                    section {
                        h2 { "Listeners" }
                        table {
                            thead { tr { th { "Address" } th { "Certificate" } th { "Expires" } th { "Trusts" } th { "Client certificate" } } }
                            tbody {
                                @for (i, (l, m)) in rt.config.listeners.iter().zip(&rt.listeners).enumerate() {
                                    @let own = mutual_pki::cert::facts(&m.identity.chain[0]).ok();
                                    tr {
                                        td.mono { (proxy.listen_addr(i).unwrap_or(l.listen)) @if l.tcp.is_some() { " (tcp)" } }
                                        td { (own.as_ref().and_then(|f| f.common_name.clone()).unwrap_or_default()) }
                                        td class=(if m.not_after - ts < 7 * 86_400 { "warn" } else { "" }) { (left(m.not_after, ts)) }
                                        td {
                                            @for ca in m.trust.anchors.iter().filter_map(|c| mutual_pki::cert::facts(c).ok()) {
                                                div { (ca.common_name.clone().unwrap_or(ca.subject.clone())) span.muted { " · " (left(ca.not_after.unix_timestamp(), ts)) } }
                                            }
                                        }
                                        td { @match l.client_certificate { ClientCertificate::Required => "required in the handshake", ClientCertificate::Optional => "optional (refused per request)" } }
                                    }
                                }
                            }
                        }
                    }
                    section {
                        h2 { "Routes" }
                        table {
                            thead { tr { th { "Route" } th { "Admits" } th { "Refuses at" } th { "Upstream" } } }
                            tbody {
                                @for l in &rt.config.listeners {
                                    @for r in &l.routes {
                                        tr {
                                            td.mono { (r.name) }
                                            td { (r.policy.to_string()) }
                                            td { (format!("{:?}", r.deny_at).to_lowercase()) }
                                            td { (rt.config.upstreams.get(r.upstream).map(|u| u.name.as_str()).unwrap_or("?")) }
                                        }
                                    }
                                    @if let Some(t) = &l.tcp {
                                        tr {
                                            td.mono { (t.name) " (tcp)" }
                                            td { (t.policy.to_string()) }
                                            td { "handshake" }
                                            td { (rt.config.upstreams.get(t.upstream).map(|u| u.name.as_str()).unwrap_or("?")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section {
                        h2 { "Upstreams" }
                        table {
                            thead { tr { th { "Upstream" } th { "Server" } th { "Health" } } }
                            tbody {
                                @for u in &rt.upstreams {
                                    @for (i, s) in u.servers.iter().enumerate() {
                                        tr {
                                            td { (u.config.name) }
                                            td.mono { (s.authority) }
                                            td { @if u.healthy(i) { span.ok { "in rotation" } } @else { span.bad { "ejected" } } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section {
                        h2 { "Recent refusals" span.muted { " (last " (crate::refusals::KEPT) ", newest first)" } }
                        @if refusals.is_empty() {
                            p.muted { "None since the proxy started." }
                        } @else {
                            table.refusals {
                                thead { tr { th { "When" } th { "Caller" } th { "Stage" } th { "Route" } th { "Why" } } }
                                tbody {
                                    @for r in &refusals {
                                        tr {
                                            td.mono { (when(r.at)) }
                                            td {
                                                strong { (if r.peer.is_empty() { "(no certificate)" } else { r.peer.as_str() }) }
                                                @if !r.issuer.is_empty() { div.muted { "issued by " (r.issuer) } }
                                                div.muted.mono { (r.peer_addr) }
                                            }
                                            td { (r.stage) @if let Some(s) = r.status { " · " (s) } }
                                            td.mono { (r.route) }
                                            td { span.code { (r.code) } " " (r.reason) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
