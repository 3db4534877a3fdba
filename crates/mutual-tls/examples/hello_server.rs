//! The smallest mTLS hello service: `cargo run --example hello_server -- CA CERT KEY ADDR`.
use mutual_tls::{http, ServerTls};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let tls = ServerTls::from_files(&a[0], &a[1], &a[2])?;
    let hello = http::service_fn(|req| async move {
        let who = http::peer_of(&req).map(|p| p.name().to_string());
        Ok(http::text(
            ::http::StatusCode::OK,
            format!("Hello {}\n", who.unwrap_or_default()),
        ))
    });
    http::serve(tokio::net::TcpListener::bind(&a[3]).await?, tls, hello).await?;
    Ok(())
}
