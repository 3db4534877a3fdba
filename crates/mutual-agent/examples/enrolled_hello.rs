//! A Rust service whose certificate comes from a [`mutual_agent::Source`]: it enrolls at start
//! with a bootstrap token, renews in memory, and swaps each new certificate into its
//! `ServerTls` (build, validate, swap; connections in flight keep theirs).
//!
//! ```text
//! cargo run -p mutual-agent --example enrolled_hello -- \
//!     http://127.0.0.1:8200 pki service hello.example.com 127.0.0.1:3000
//! ```
//! with the token in `MUTUAL_TOKEN`.
use mutual_agent::{CaClient, OutDir, Request, Source, SourceConfig};
use mutual_tls::{http, ServerTls};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [addr, mount, role, cn, listen] = &a[..] else {
        return Err("usage: enrolled_hello CA_URL MOUNT ROLE CN LISTEN".into());
    };
    let request = Request {
        mount: mount.clone(),
        role: role.clone(),
        common_name: cn.clone(),
        dns: vec![cn.clone(), "localhost".into()],
        ips: vec!["127.0.0.1".into()],
        uris: vec![],
        ttl: None,
        key_type: mutual_pki::key::KeyType::EcP256,
    };
    let token = std::env::var("MUTUAL_TOKEN").ok();
    let source = Source::enroll(SourceConfig::new(
        CaClient::new(addr, None)?,
        request,
        token,
    ))
    .await?;

    // ServerTls is built from files once; every later certificate is swapped in from memory.
    let first = tempfile::tempdir()?;
    let out = OutDir::open(first.path())?;
    out.write(&source.current().pems, time::OffsetDateTime::now_utc())?;
    let tls = ServerTls::from_files(
        out.file("ca.pem"),
        out.file("cert.pem"),
        out.file("key.pem"),
    )?;

    let mut updates = source.subscribe();
    let swapper = tls.clone();
    tokio::spawn(async move {
        while updates.changed().await.is_ok() {
            let material = updates.borrow_and_update().clone();
            swapper.swap(material.server_material(vec![], None));
            println!("serving certificate {}", material.serial);
        }
    });

    let hello = http::service_fn(|req| async move {
        let who = http::peer_of(&req).map(|p| p.name().to_string());
        Ok(http::text(
            ::http::StatusCode::OK,
            format!("Hello {}\n", who.unwrap_or_default()),
        ))
    });
    println!(
        "serving certificate {} on {listen}",
        source.current().serial
    );
    http::serve(tokio::net::TcpListener::bind(listen).await?, tls, hello).await?;
    Ok(())
}
