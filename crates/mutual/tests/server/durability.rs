//! The kill -9 durability scenario of `mutual server`, on whichever store `start` opens
//! (server_durability.rs: SQLite; server_postgres.rs: PostgreSQL).
#![allow(dead_code)]

use std::{
    hash::{BuildHasher, Hasher},
    path::Path,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
};

use mutual_bench::Conn;

use crate::server::{curl, Server};

const TOTAL: usize = 1000;
const CONCURRENCY: usize = 8;
const MOUNT: &str = "pki_durable";

fn random_below(n: usize) -> usize {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    (h.finish() % n as u64) as usize
}

pub fn host(server: &Server) -> String {
    server.addr.trim_start_matches("http://").to_string()
}

/// Issues until `received` reaches TOTAL or the server goes away; returns when every client
/// thread has stopped.
pub fn issue_until_done_or_dead(
    host: &str,
    token: &str,
    received: &Arc<AtomicUsize>,
    serials: &Arc<Mutex<Vec<String>>>,
) {
    let threads: Vec<_> = (0..CONCURRENCY)
        .map(|i| {
            let (host, token) = (host.to_string(), token.to_string());
            let (received, serials) = (received.clone(), serials.clone());
            std::thread::spawn(move || {
                let Ok(mut conn) = Conn::open(&host) else {
                    return;
                };
                let body = format!(r#"{{"common_name":"c{i}.example.com","ttl":"1h"}}"#);
                while received.load(Ordering::SeqCst) < TOTAL {
                    let path = format!("/v1/{MOUNT}/issue/service");
                    let Ok((code, body)) =
                        conn.request("POST", &path, Some(&token), body.as_bytes())
                    else {
                        return; // the server died under us
                    };
                    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
                    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
                    let serial = v["data"]["serial_number"]
                        .as_str()
                        .expect("serial")
                        .to_string();
                    serials.lock().unwrap().push(serial);
                    received.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

pub fn kill9(server: &mut Server) {
    server.child.kill().expect("SIGKILL the server");
    server.child.wait().expect("reap the server");
}

/// 1,000 issues at concurrency 8 with a SIGKILL at a random moment, a restart, then every
/// serial revoked and another SIGKILL: every received serial is in `certs`, and in the CRL.
pub fn scenario(dir: &Path, start: &dyn Fn() -> Server, token: &str) {
    let token = token.to_string();
    let mut first = start();
    let setup = [
        (
            format!("sys/mounts/{MOUNT}"),
            r#"{"type":"pki","config":{"max_lease_ttl":"87600h"}}"#,
        ),
        (
            format!("{MOUNT}/root/generate/internal"),
            r#"{"common_name":"Durable Root","key_type":"ec","ttl":"8760h"}"#,
        ),
        (
            format!("{MOUNT}/roles/service"),
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","max_ttl":"720h"}"#,
        ),
    ];
    for (path, body) in &setup {
        let (code, resp) = curl(&first, "POST", path, Some(body));
        assert!(code / 100 == 2, "{path}: {code} {resp}");
    }

    // Phase 1: load at concurrency 8, SIGKILL at a random moment.
    let received = Arc::new(AtomicUsize::new(0));
    let serials = Arc::new(Mutex::new(Vec::new()));
    let kill_at = 100 + random_below(TOTAL - 200);
    let load = std::thread::spawn({
        let (host, token, received, serials) = (
            host(&first),
            token.clone(),
            received.clone(),
            serials.clone(),
        );
        move || issue_until_done_or_dead(&host, &token, &received, &serials)
    });
    // Bounded wait for the chosen moment (each poll is 2 ms; the loop cannot spin forever).
    for _ in 0..100_000 {
        if received.load(Ordering::SeqCst) >= kill_at || load.is_finished() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    kill9(&mut first);
    load.join().expect("load");
    let before_kill = received.load(Ordering::SeqCst);
    eprintln!("killed with SIGKILL after {before_kill} certificates were received");
    assert!(
        before_kill < TOTAL,
        "the kill came too late to test anything"
    );

    // Phase 2: restart on the same store and finish the 1,000.
    let mut second = start();
    issue_until_done_or_dead(&host(&second), &token, &received, &serials);
    let serials = serials.lock().unwrap().clone();
    assert!(serials.len() >= TOTAL);

    let (code, body) = curl(&second, "LIST", &format!("{MOUNT}/certs"), None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let listed: std::collections::HashSet<&str> = v["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k.as_str())
        .collect();
    let missing: Vec<&String> = serials
        .iter()
        .filter(|s| !listed.contains(s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} received serials are not in certs: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // Revoke them all at concurrency 8, then SIGKILL again: revocations must be durable too.
    let chunks: Vec<Vec<String>> = serials
        .chunks(serials.len().div_ceil(CONCURRENCY))
        .map(|c| c.to_vec())
        .collect();
    let threads: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (host, token) = (host(&second), token.clone());
            std::thread::spawn(move || {
                let mut conn = Conn::open(&host).expect("connect");
                for s in chunk {
                    let body = format!(r#"{{"serial_number":"{s}"}}"#);
                    let (code, resp) = conn
                        .request(
                            "POST",
                            &format!("/v1/{MOUNT}/revoke"),
                            Some(&token),
                            body.as_bytes(),
                        )
                        .expect("revoke");
                    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&resp));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("revoke thread");
    }
    kill9(&mut second);

    let third = start();
    let (code, crl) = curl(&third, "GET", &format!("{MOUNT}/crl/pem"), None);
    assert_eq!(code, 200);
    let (_, ca) = curl(&third, "GET", &format!("{MOUNT}/ca/pem"), None);
    std::fs::write(dir.join("crl.pem"), &crl).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca).unwrap();
    let check = std::process::Command::new("openssl")
        .args([
            "crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout", "-text",
        ])
        .current_dir(dir)
        .output()
        .expect("openssl crl");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains("verify OK"), "CRL signature: {stderr}");
    let text: String = String::from_utf8_lossy(&check.stdout)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let absent: Vec<&String> = serials
        .iter()
        .filter(|s| {
            !text.contains(&format!(
                "SerialNumber:{}",
                s.replace(':', "").to_uppercase()
            ))
        })
        .collect();
    assert!(
        absent.is_empty(),
        "{} revoked serials are not in the CRL: {:?}",
        absent.len(),
        &absent[..absent.len().min(5)]
    );
}
