//! Serving HTTP/1.1 ([`serve`]) or HTTP/2 ([`serve_http2`], for gRPC) over a [`ServerTls`]:
//! each request carries the verified peer as an `Arc<PeerIdentity>` extension, for handlers
//! and for [`crate::AuthorizeLayer`]. The `_with_shutdown` forms stop on a signal of the
//! caller's and drain what is under way, as a service manager's stop (SIGTERM) expects.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::identity::PeerIdentity;
use crate::server::{Accepted, ServerTls};

/// The body type mutual's services answer with.
pub type Body = Full<Bytes>;

/// The error of a boxed body or service.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Accepts connections forever, verifies each client, and serves `service` on it over
/// HTTP/1.1. A failed handshake is logged by [`ServerTls::accept`] and does not stop the loop.
pub async fn serve<S, E>(listener: TcpListener, tls: ServerTls, service: S) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = E> + Clone + Send + 'static,
    S::Future: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    serve_with_shutdown(
        listener,
        tls,
        service,
        std::future::pending(),
        Duration::ZERO,
    )
    .await
}

/// [`serve`] until `shutdown` completes, then drains: the listener is closed, and each open
/// connection finishes the request it is reading or answering and closes (an idle one at once;
/// one still in its handshake gets through it and its first request). Returns when every
/// connection has ended, or `drain` after `shutdown` (a client may hold a connection open
/// without sending a request, so the wait must be bounded); connections still open then end
/// with the runtime, as when `main` returns. For a service
/// manager's stop, pass a future of SIGTERM (and Ctrl-C) and a drain shorter than the
/// manager's kill timeout (systemd: 90 s; Kubernetes: 30 s); `mutual serve hello` uses 5 s.
pub async fn serve_with_shutdown<S, E>(
    listener: TcpListener,
    tls: ServerTls,
    service: S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<Body>, Error = E> + Clone + Send + 'static,
    S::Future: Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let serve_one = move |accepted: Accepted, watcher: Watcher| {
        let svc = with_peer(service.clone(), &accepted);
        watched(
            watcher,
            hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(accepted.stream), TowerToHyperService::new(svc)),
        )
    };
    accept_each(listener, tls, serve_one, shutdown, drain).await
}

/// Like [`serve`], over HTTP/2 and with any response body: streamed, with trailers, as gRPC
/// needs (a tonic service, behind [`crate::AuthorizeLayer`] and [`AnyBody`]; the crate's
/// `grpc_server` example). Build the [`ServerTls`] with `.alpn(&[b"h2"])`: gRPC clients ask
/// for `h2` and refuse a server that does not offer it. hyper's HTTP/2 limits apply: 200
/// concurrent streams and 16 KiB of headers per connection, and h2's bound on streams reset
/// by the client (rapid reset).
pub async fn serve_http2<S, B>(
    listener: TcpListener,
    tls: ServerTls,
    service: S,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_http2_with_shutdown(
        listener,
        tls,
        service,
        std::future::pending(),
        Duration::ZERO,
    )
    .await
}

/// [`serve_http2`] until `shutdown` completes, then drains as [`serve_with_shutdown`] does:
/// each connection is sent GOAWAY, its streams under way finish (a gRPC stream may run long:
/// `drain` bounds the wait).
pub async fn serve_http2_with_shutdown<S, B>(
    listener: TcpListener,
    tls: ServerTls,
    service: S,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError> + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let serve_one = move |accepted: Accepted, watcher: Watcher| {
        let svc = with_peer(service.clone(), &accepted);
        watched(
            watcher,
            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(accepted.stream), TowerToHyperService::new(svc)),
        )
    };
    accept_each(listener, tls, serve_one, shutdown, drain).await
}

/// Serves one connection to its end, or to the end of what is under way once the drain begins.
async fn watched<C>(watcher: Watcher, conn: C)
where
    C: hyper_util::server::graceful::GracefulConnection,
    C::Error: std::fmt::Display,
{
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The accept loop of the `serve` functions: each connection's handshake and then `serve_one`
/// run in a task of their own, until `shutdown`; then the drain.
async fn accept_each<F, Fut>(
    listener: TcpListener,
    tls: ServerTls,
    serve_one: F,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> std::io::Result<()>
where
    F: Fn(Accepted, Watcher) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let tls = tls.clone();
        let serve_one = serve_one.clone();
        // Taken at accept, so that a connection still in its handshake at the signal is
        // waited for too.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let Ok(accepted) = tls.accept(tcp).await else {
                return;
            };
            let peer = &accepted.peer;
            tracing::debug!(peer.addr = %accepted.remote, peer.cn = peer.name(), peer.issuer = peer.issuer_name(), "client verified");
            serve_one(accepted, watcher).await;
        });
    }
    // New callers are refused from here: the port is closed, not left to queue.
    drop(listener);
    drain_connections(graceful, drain).await;
    Ok(())
}

/// The drain of a stopping server, once its listener is closed: logs how many connections
/// `graceful` watches, lets each finish what is under way for at most `drain`, and logs it when
/// some were still open then. What the `serve` functions do after their stop signal; for a
/// server with an accept loop of its own (plain HTTP, say).
pub async fn drain_connections(graceful: GracefulShutdown, drain: Duration) {
    tracing::info!(
        connections = graceful.count(),
        drain_s = drain.as_secs_f64(),
        "stopping: draining"
    );
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            after_s = drain.as_secs_f64(),
            "stopped with connections still open"
        );
    }
}

/// `service` with the connection's verified peer in every request's extensions.
fn with_peer<S, B>(
    service: S,
    accepted: &Accepted,
) -> impl Service<Request<B>, Response = S::Response, Error = S::Error, Future = S::Future> + Clone
where
    S: Service<Request<B>> + Clone,
{
    let peer = Arc::clone(&accepted.peer);
    service.map_request(move |mut req: Request<B>| {
        req.extensions_mut().insert(Arc::clone(&peer));
        req
    })
}

/// A response body of any kind, boxed: streamed or whole, with trailers or not. It is what a
/// service whose own body type cannot be made from bytes (a tonic service's) answers with
/// behind [`crate::AuthorizeLayer`], whose refusals are bytes: wrap its responses with
/// [`AnyBody::new`] and serve with [`serve_http2`].
pub struct AnyBody(UnsyncBoxBody<Bytes, BoxError>);

impl AnyBody {
    /// Boxes `body`.
    pub fn new<B>(body: B) -> AnyBody
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        AnyBody(body.map_err(Into::into).boxed_unsync())
    }
}

impl From<Bytes> for AnyBody {
    fn from(bytes: Bytes) -> AnyBody {
        AnyBody::new(Full::new(bytes))
    }
}

impl std::fmt::Debug for AnyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AnyBody")
    }
}

impl hyper::body::Body for AnyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
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
