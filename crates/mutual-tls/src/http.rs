//! Serving HTTP/1.1 over a [`ServerTls`]: each request carries the verified peer as an
//! `Arc<PeerIdentity>` extension, for handlers and for [`crate::AuthorizeLayer`].

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::identity::PeerIdentity;
use crate::server::ServerTls;

/// The body type mutual's services answer with.
pub type Body = Full<Bytes>;

/// Accepts connections forever, verifies each client, and serves `service` on it. A failed
/// handshake is logged by [`ServerTls::accept`] and does not stop the loop.
pub async fn serve<S, E>(listener: TcpListener, tls: ServerTls, service: S) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = E> + Clone + Send + 'static,
    S::Future: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let tls = tls.clone();
        let service = service.clone();
        tokio::spawn(async move {
            let Ok(accepted) = tls.accept(tcp).await else {
                return;
            };
            let peer = accepted.peer.clone();
            tracing::debug!(peer.addr = %accepted.remote, peer.cn = peer.name(), peer.issuer = peer.issuer_name(), "client verified");
            let svc = service.map_request(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(Arc::clone(&peer));
                req
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(accepted.stream), TowerToHyperService::new(svc));
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

/// A plain response with a text body.
pub fn text(status: http::StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::from(body.into())));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// The verified peer of a request served by [`serve`].
pub fn peer_of<B>(req: &Request<B>) -> Option<&Arc<PeerIdentity>> {
    req.extensions().get::<Arc<PeerIdentity>>()
}

/// A service from an async function, for handlers that cannot fail.
pub fn service_fn<F, Fut>(
    f: F,
) -> impl Service<Request<Incoming>, Response = Response<Body>, Error = Infallible, Future = Fut> + Clone
where
    F: Fn(Request<Incoming>) -> Fut + Clone,
    Fut: std::future::Future<Output = Result<Response<Body>, Infallible>>,
{
    tower::service_fn(f)
}
