//! Durability of `mutual server`: a certificate returned to a caller is on disk. 1,000 issues
//! at concurrency 8 while the server is killed with SIGKILL at a random moment; after a
//! restart every serial a caller received is in `certs`, and after revoking them all (and
//! another SIGKILL) in the rebuilt CRL, which openssl verifies.

#[path = "server/durability.rs"]
mod durability;
mod server;

use server::{mutual, mutual_data};

#[test]
fn every_certificate_a_caller_received_survives_kill_9_and_is_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let out = mutual(&["server", "init", "--data", data_s]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("Root Token: "))
        .expect("root token printed")
        .trim()
        .to_string();
    durability::scenario(dir.path(), &|| mutual_data(&data, &token), &token);
}
