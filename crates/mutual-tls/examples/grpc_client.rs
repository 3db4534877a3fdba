//! A gRPC client (tonic) on mutual TLS, for the `grpc_server` example:
//!
//! `cargo run -p mutual-tls --example grpc_client -- CA CERT KEY HOST:PORT hello NAME [TIMEOUT_MS [DELAY_MS]]`
//! `cargo run -p mutual-tls --example grpc_client -- CA CERT KEY HOST:PORT chat TEXT...`
//!
//! It presents CERT (with KEY; `- -` for none) and checks that the server's certificate chains
//! to CA and names HOST. `hello` makes the unary call, with a deadline of TIMEOUT_MS if given
//! (and DELAY_MS asks the server to be that slow); `chat` sends each TEXT on one bidirectional
//! stream, waiting for each answer before the next. Replies go to stdout; a failed call prints
//! `grpc-status N Code: message` on stderr and exits with 2, no connection `error: …` and 1.

mod greeter;

use std::process::ExitCode;
use std::time::Duration;

use greeter::{HelloReply, HelloRequest, Note, CHAT, HELLO};
use http::uri::PathAndQuery;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mutual_tls::ClientTls;
use tonic::{Request, Status};
use tonic_prost::ProstCodec;

/// How long after its deadline the client gives up on a call: the server's own
/// DEADLINE_EXCEEDED, which says what passed, comes first.
const GRACE: Duration = Duration::from_secs(1);

enum Failure {
    Call(Status),
    Other(Box<dyn std::error::Error>),
}

impl<E: Into<Box<dyn std::error::Error>>> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::Other(e.into())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match run(&a).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Call(status)) => {
            eprintln!(
                "grpc-status {} {:?}: {}",
                status.code() as i32,
                status.code(),
                status.message()
            );
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(a: &[String]) -> Result<(), Failure> {
    let usage = "usage: grpc_client CA CERT KEY HOST:PORT (hello NAME [TIMEOUT_MS [DELAY_MS]] | chat TEXT...)";
    let (Some(ca), Some(cert), Some(key), Some(addr), Some(command)) =
        (a.first(), a.get(1), a.get(2), a.get(3), a.get(4))
    else {
        return Err(usage.into());
    };
    let (host, port) = addr.rsplit_once(':').ok_or(usage)?;
    let port: u16 = port.parse().map_err(|_| format!("bad port in {addr}"))?;

    let mut tls = ClientTls::builder().ca(ca).alpn(&[b"h2"]);
    if (cert.as_str(), key.as_str()) != ("-", "-") {
        tls = tls.cert(cert).key(key);
    }
    let tls = tls.build()?;
    // `connect` explains a server certificate we refuse (wrong CA, wrong name, expired); the
    // explainer, a refusal of ours that the server sends after the handshake.
    let (io, explainer) = tls.connect(host, port).await?.into_explained(&tls);
    let (sender, driver) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io)).await?;
    tokio::spawn(driver);
    let channel = tower::service_fn(move |req: http::Request<tonic::body::Body>| {
        let mut sender = sender.clone();
        async move { sender.send_request(req).await }
    });
    // The origin gives each call its :scheme and :authority.
    let grpc = tonic::client::Grpc::with_origin(channel, format!("https://{addr}").parse()?);
    match call(grpc, command, &a[5..], usage).await {
        // tonic reports a connection that TLS closed as "connection error": say why it closed.
        Err(Failure::Call(status)) => match explainer.explain() {
            Some(why) => Err(why.into()),
            None => Err(Failure::Call(status)),
        },
        done => done,
    }
}

/// Makes the call `command` asks for and prints its answers.
async fn call<T>(
    mut grpc: tonic::client::Grpc<T>,
    command: &str,
    args: &[String],
    usage: &str,
) -> Result<(), Failure>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::ResponseBody: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match (command, args) {
        ("hello", [name, rest @ ..]) if rest.len() <= 2 => {
            let ms = |i: usize| -> Result<Option<u64>, Failure> {
                match rest.get(i) {
                    None => Ok(None),
                    Some(v) => Ok(Some(v.parse().map_err(|_| format!("bad number {v}"))?)),
                }
            };
            let timeout = ms(0)?.map(Duration::from_millis);
            let delay_ms: u32 = ms(1)?
                .unwrap_or(0)
                .try_into()
                .map_err(|_| "DELAY_MS too large")?;
            let mut req = Request::new(HelloRequest {
                name: name.clone(),
                delay_ms,
            });
            if let Some(t) = timeout {
                req.set_timeout(t);
            }
            let call = grpc.unary(
                req,
                PathAndQuery::from_static(HELLO),
                ProstCodec::<HelloRequest, HelloReply>::default(),
            );
            let reply = match timeout {
                Some(t) => tokio::time::timeout(t + GRACE, call)
                    .await
                    .map_err(|_| Status::deadline_exceeded("the server did not answer in time")),
                None => Ok(call.await),
            }
            .and_then(|r| r)
            .map_err(Failure::Call)?
            .into_inner();
            println!("{}", reply.message);
            println!("caller: {}", reply.caller);
            println!("rule: {}", reply.rule);
            println!("deadline: {}", reply.deadline);
            Ok(())
        }
        ("chat", [first, rest @ ..]) => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Note>(1);
            let outbound = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|note| (note, rx))
            });
            tx.send(Note {
                text: first.clone(),
            })
            .await?;
            let mut inbound = grpc
                .streaming(
                    Request::new(outbound),
                    PathAndQuery::from_static(CHAT),
                    ProstCodec::<Note, Note>::default(),
                )
                .await
                .map_err(Failure::Call)?
                .into_inner();
            for next in rest.iter().map(Some).chain([None]) {
                let reply = inbound.message().await.map_err(Failure::Call)?;
                let Some(reply) = reply else {
                    return Err("the server ended the chat before answering every note".into());
                };
                println!("{}", reply.text);
                match next {
                    Some(text) => tx.send(Note { text: text.clone() }).await?,
                    None => break,
                }
            }
            // The end of our stream ends the call; its status is in the trailers.
            drop(tx);
            match inbound.message().await.map_err(Failure::Call)? {
                None => println!("status: OK"),
                Some(extra) => return Err(format!("an answer to no note: {}", extra.text).into()),
            }
            Ok(())
        }
        _ => Err(usage.into()),
    }
}
