//! The smallest mTLS client: `cargo run --example hello_client -- CA CERT KEY URL`.
use mutual_tls::ClientTls;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let reply = ClientTls::from_files(&a[0], &a[1], &a[2])?
        .get(&a[3])
        .await?;
    print!("{}", String::from_utf8_lossy(&reply.body));
    Ok(())
}
