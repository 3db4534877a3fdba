//! Services that are both clients and servers, built on the library, all certificates from one
//! CA: A may call B and C; B and C may not call each other, and each refusal names the caller.

mod common;

use std::convert::Infallible;

use common::Story;
use mutual_tls::{http as mhttp, AuthorizeLayer, ClientTls, Policy, ServerTls};

async fn service(s: &Story, name: &str, allow: &[&str]) -> (u16, ClientTls) {
    let crt = s.path(&format!("certs/{name}.example.com.crt"));
    let key = s.path(&format!("certs/{name}.example.com.key"));
    let ca = s.path("certs/root.pem");
    let tls = ServerTls::from_files(&ca, &crt, &key).expect("server");
    let me = name.to_string();
    let hello = mhttp::service_fn(move |req| {
        let me = me.clone();
        async move {
            let who = mhttp::peer_of(&req)
                .map(|p| p.name().to_string())
                .unwrap_or_default();
            Ok::<_, Infallible>(mhttp::text(
                http::StatusCode::OK,
                format!("{me} greets {who}"),
            ))
        }
    });
    let svc = tower::ServiceBuilder::new()
        .layer(AuthorizeLayer::new(Policy::parse(allow).expect("policy")))
        .service(hello);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(mhttp::serve(listener, tls, svc));
    let client = ClientTls::from_files(&ca, &crt, &key).expect("client");
    (port, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calls_b_and_c_while_b_and_c_may_not_call_each_other() {
    let s = Story::build("ec");
    for n in ["a", "b", "c"] {
        s.mutual(&[
            "issue",
            &format!("{n}.example.com"),
            "--role",
            "service",
            "--san",
            "localhost",
            "--out",
            "certs",
        ])
        .ok();
    }
    let (_a_port, a) = service(&s, "a", &["cn=b.example.com", "cn=c.example.com"]).await;
    let (b_port, b) = service(&s, "b", &["cn=a.example.com"]).await;
    let (c_port, c) = service(&s, "c", &["cn=a.example.com"]).await;
    let url = |port: u16| format!("https://localhost:{port}/");

    for (port, callee) in [(b_port, "b"), (c_port, "c")] {
        let reply = a.get(&url(port)).await.expect("A calls");
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, format!("{callee} greets a.example.com"));
    }
    for (client, caller, port) in [(&b, "b", c_port), (&c, "c", b_port)] {
        let reply = client.get(&url(port)).await.expect("handshake succeeds");
        assert_eq!(reply.status, 403);
        let body = String::from_utf8_lossy(&reply.body);
        assert!(
            body.contains(&format!("you cannot be here {caller}.example.com")),
            "{body}"
        );
    }
}
