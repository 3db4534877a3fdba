//! The admin listener (plain HTTP, bind it to loopback): `/metrics` in Prometheus text,
//! `/live` (the process runs) and `/ready` (listeners bound and each upstream has a server in
//! rotation).

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
            }
            for (l, m) in rt.config.listeners.iter().zip(&rt.listeners) {
                gauges.push(Gauge {
                    name: "mutual_proxy_certificate_expiry_seconds",
                    labels: vec![("listener", l.listen.to_string())],
                    value: (m.not_after - now) as f64,
                });
            }
            text(StatusCode::OK, proxy.metrics.render(&gauges))
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "try /metrics, /ready or /live\n".into(),
        ),
    }
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
