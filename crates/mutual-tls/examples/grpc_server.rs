//! A gRPC service (tonic) on mutual TLS, its callers authorized by their certificates:
//!
//! `cargo run -p mutual-tls --example grpc_server -- CA CERT KEY ADDR [MATCHER...]`
//!
//! MATCHERs say who may call, as `mutual`'s `--allow` does (`cn=alice.example.com`,
//! `uri=spiffe://example.org/ns/prod/sa/*`, …; default `cn=alice.example.com`). It prints
//! `listening on ADDR` once it listens; call it with the `grpc_client` example. A caller with a
//! verified certificate that no matcher allows gets PERMISSION_DENIED, with a `grpc-message`
//! that names the caller and the rule; a client without a certificate is refused in the TLS
//! handshake (alert `certificate_required`), before any call. Handlers read the caller's
//! identity and the rule that let it in from the request (a [`Permit`]).

mod greeter;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use greeter::{HelloReply, HelloRequest, Note, CHAT, HELLO};
use hyper::body::Incoming;
use mutual_tls::http::{serve_http2, AnyBody};
use mutual_tls::{AuthorizeLayer, Permit, Policy, ServerTls};
use tonic::server::Grpc;
use tonic::{Request, Response, Status, Streaming};
use tonic_prost::ProstCodec;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a: Vec<String> = std::env::args().skip(1).collect();
    if a.len() < 4 {
        return Err("usage: grpc_server CA CERT KEY ADDR [MATCHER...]".into());
    }
    // gRPC is HTTP/2 only, and its clients ask for `h2` by ALPN.
    let tls = ServerTls::builder()
        .ca(&a[0])
        .cert(&a[1])
        .key(&a[2])
        .alpn(&[b"h2"])
        .build()?;
    let allow = match &a[4..] {
        [] => vec!["cn=alice.example.com".to_string()],
        matchers => matchers.to_vec(),
    };
    // The layer answers a refused gRPC call itself, in bytes; tonic's bodies are boxed into
    // `AnyBody` to share its response type.
    let service = tower::ServiceBuilder::new()
        .layer(AuthorizeLayer::new(Policy::parse(&allow)?))
        .map_response(|r: http::Response<tonic::body::Body>| r.map(AnyBody::new))
        .service(Greeter);
    let listener = tokio::net::TcpListener::bind(&a[3]).await?;
    println!("listening on {}", listener.local_addr()?);
    serve_http2(listener, tls, service).await?;
    Ok(())
}

/// The Greeter service: routes each call by its path to its handler.
#[derive(Debug, Clone)]
struct Greeter;

impl tower::Service<http::Request<Incoming>> for Greeter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> Self::Future {
        Box::pin(async move {
            Ok(match req.uri().path() {
                HELLO => {
                    Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default())
                        .unary(tower::service_fn(hello), req)
                        .await
                }
                CHAT => {
                    Grpc::new(ProstCodec::<Note, Note>::default())
                        .streaming(tower::service_fn(chat), req)
                        .await
                }
                other => Status::unimplemented(format!("no method {other}")).into_http(),
            })
        })
    }
}

/// The caller as the handlers name it, from the [`Permit`] that `AuthorizeLayer` put in the
/// request: its name (the CN), its SPIFFE ID when it has one, and the rule that let it in.
fn caller<T>(req: &Request<T>) -> Result<(String, String), Status> {
    // Only the layer makes a Permit: without one the service was built without the layer.
    let permit = req
        .extensions()
        .get::<Permit>()
        .ok_or_else(|| Status::permission_denied("no authorization decision for this call"))?;
    let peer = permit.peer();
    let name = match &peer.spiffe_id {
        Some(id) => format!("{} ({id})", peer.name()),
        None => peer.name().to_string(),
    };
    Ok((name, permit.rule().to_string()))
}

/// Unary: greets the caller by the name it sent and by its certificate, after `delay_ms`,
/// within the deadline the client set (`grpc-timeout`).
async fn hello(req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
    let (caller, rule) = caller(&req)?;
    let header = req
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let deadline = header
        .as_deref()
        .and_then(|v| mutual_tls::grpc::timeout(v.as_bytes()));
    let work = tokio::time::sleep(Duration::from_millis(req.get_ref().delay_ms.into()));
    match deadline {
        // Past the deadline the client has given up: stop working for it.
        Some(d) => tokio::time::timeout(d, work).await.map_err(|_| {
            Status::deadline_exceeded(format!("the deadline of {} ms passed", d.as_millis()))
        })?,
        None => work.await,
    }
    let deadline = match (header, deadline) {
        (Some(h), Some(d)) => format!("grpc-timeout {h} ({} ms)", d.as_millis()),
        (Some(h), None) => format!("unreadable grpc-timeout {h}"),
        (None, _) => "none".to_string(),
    };
    Ok(Response::new(HelloReply {
        message: format!("Hello {}, you are {caller}", req.get_ref().name),
        caller,
        rule,
        deadline,
    }))
}

type Notes = Pin<Box<dyn Stream<Item = Result<Note, Status>> + Send>>;

/// Bidirectional streaming: answers each note as it arrives, numbered and signed with the
/// caller's name; the call ends (status OK) when the client's stream does.
async fn chat(req: Request<Streaming<Note>>) -> Result<Response<Notes>, Status> {
    let (caller, _) = caller(&req)?;
    let replies = req.into_inner().enumerate().map(move |(i, note)| {
        note.map(|n| Note {
            text: format!("{}: {} (from {caller})", i + 1, n.text),
        })
    });
    Ok(Response::new(Box::pin(replies)))
}
