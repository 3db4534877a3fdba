//! The admin listener (plain HTTP, bind it to loopback): `/metrics` in Prometheus text,
//! `/live` (the process runs) and `/ready` (listeners bound and each upstream has a server in
//! rotation), and `/ui/`, the read-only dashboard (ui.rs).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::metrics::Gauge;
use crate::Proxy;

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

fn answer(proxy: &Proxy, path: &str) -> Response<Full<Bytes>> {
    if let Some(page) = crate::ui::answer(proxy, path) {
        return page;
    }
    let rt = proxy.runtime();
    match path {
        "/live" => text(StatusCode::OK, "live\n".into()),
        "/ready" => {
            let down: Vec<&str> = rt
                .upstreams
                .iter()
                .filter(|u| !(0..u.servers.len()).any(|i| u.healthy(i)))
                .map(|u| u.config.name.as_str())
                .collect();
            if down.is_empty() {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("no healthy server in upstream {}\n", down.join(", ")),
                )
            }
        }
        "/metrics" => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let mut gauges = Vec::new();
            for u in &rt.upstreams {
                for (i, s) in u.servers.iter().enumerate() {
                    gauges.push(Gauge {
                        name: "mutual_proxy_upstream_healthy",
                        labels: vec![
                            ("upstream", u.config.name.clone()),
                            ("server", s.authority.clone()),
                        ],
                        value: if u.healthy(i) { 1.0 } else { 0.0 },
                    });
                }
                for (server, opened, idle) in u.connections() {
                    let labels = vec![
                        ("upstream", u.config.name.clone()),
                        ("server", server.to_string()),
                    ];
                    gauges.push(Gauge {
                        name: "mutual_proxy_upstream_connections_opened_total",
                        labels: labels.clone(),
                        value: opened as f64,
                    });
                    gauges.push(Gauge {
                        name: "mutual_proxy_upstream_idle_connections",
                        labels,
                        value: idle as f64,
                    });
                }
            }
            gauges.extend(tls_gauges(proxy, &rt, now));
            for (i, r) in rt.revocations.iter().enumerate() {
                if let (Some(r), Some(at)) = (r, proxy.listen_addr(i)) {
                    gauges.extend(r.gauges(&at.to_string(), now));
                }
            }
            let mut body = proxy.metrics.render(&gauges);
            body.push_str(&crate::enroll::render_metrics(proxy));
            text(StatusCode::OK, body)
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "try /ui/, /metrics, /ready or /live\n".into(),
        ),
    }
}

/// Certificate expiry (the listener's own and each trusted CA's) and, per CRL in use (from a
/// file or fetched), its age and the time left until its nextUpdate; grouped by name.
fn tls_gauges(proxy: &Proxy, rt: &crate::Runtime, now: i64) -> Vec<Gauge> {
    let (mut expiry, mut age, mut next, mut fetch_ok, mut fetches) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (i, (l, m)) in rt.config.listeners.iter().zip(&rt.listeners).enumerate() {
        let listener = proxy.listen_addr(i).unwrap_or(l.listen).to_string();
        let own = mutual_pki::cert::facts(&m.identity.chain[0])
            .map(|f| f.subject)
            .unwrap_or_default();
        expiry.push(Gauge {
            name: "mutual_proxy_cert_expiry_seconds",
            labels: vec![
                ("listener", listener.clone()),
                ("subject", own),
                ("role", "server".into()),
            ],
            value: (m.not_after - now) as f64,
        });
        for ca in m
            .trust
            .anchors
            .iter()
            .filter_map(|c| mutual_pki::cert::facts(c).ok())
        {
            expiry.push(Gauge {
                name: "mutual_proxy_cert_expiry_seconds",
                labels: vec![
                    ("listener", listener.clone()),
                    ("subject", ca.subject),
                    ("role", "ca".into()),
                ],
                value: (ca.not_after.unix_timestamp() - now) as f64,
            });
        }
        let mut crls: Vec<(String, mutual_pki::crl::CrlFacts)> = m
            .crls
            .iter()
            .filter_map(|d| mutual_pki::crl::check_issued_by(d, &m.trust.anchors).ok())
            .map(|f| ("file".to_string(), f))
            .collect();
        if let Some(feed) = &m.feed {
            let snap = feed.snapshot();
            for (url, src) in &snap.sources {
                fetch_ok.push(Gauge {
                    name: "mutual_proxy_crl_fetch_ok",
                    labels: vec![("listener", listener.clone()), ("url", url.clone())],
                    value: if src.failure.is_none() && src.good.is_some() {
                        1.0
                    } else {
                        0.0
                    },
                });
                for (answer, n) in [
                    ("downloaded", src.downloads),
                    ("not_modified", src.not_modified),
                ] {
                    fetches.push(Gauge {
                        name: "mutual_proxy_crl_fetches_total",
                        labels: vec![
                            ("listener", listener.clone()),
                            ("url", url.clone()),
                            ("answer", answer.into()),
                        ],
                        value: n as f64,
                    });
                }
                if let Some(g) = &src.good {
                    crls.push((
                        url.clone(),
                        mutual_pki::crl::CrlFacts {
                            issuer: g.issuer.clone(),
                            this_update: g.this_update,
                            next_update: g.next_update,
                            revoked: 0,
                        },
                    ));
                }
            }
        }
        for (source, f) in crls {
            let labels = vec![
                ("listener", listener.clone()),
                ("issuer", f.issuer),
                ("source", source),
            ];
            age.push(Gauge {
                name: "mutual_proxy_crl_age_seconds",
                labels: labels.clone(),
                value: (now - f.this_update.unix_timestamp()) as f64,
            });
            if let Some(n) = f.next_update {
                next.push(Gauge {
                    name: "mutual_proxy_crl_next_update_seconds",
                    labels,
                    value: (n.unix_timestamp() - now) as f64,
                });
            }
        }
    }
    [expiry, age, next, fetch_ok, fetches].concat()
}

/// Serves the admin endpoints until the process ends.
pub async fn serve_admin(proxy: Arc<Proxy>, listener: TcpListener) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let proxy = Arc::clone(&proxy);
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let r = answer(&proxy, req.uri().path());
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}
