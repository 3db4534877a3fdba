//! `mutual proxy` fetching CRLs over HTTP (`crl_fetch`): a tiny HTTP server in the test serves
//! the root's CRL; Bob is revoked and refused after the next refresh, without a restart; then
//! the server stops answering: the `keep_last` listener keeps serving Alice, the `fail_closed`
//! one refuses her with `crl_stale`. `/metrics` shows certificate expiry and CRL gauges.

mod common;
mod proxying;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::Story;
use proxying::{curl, echo, Proc};

const CONFIG: &str = r#"
[admin]
listen = "127.0.0.1:0"

[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"
crl_fetch = true
crl_refresh = "1s"
crl_stale = "keep_last"
crl_urls = ["http://CRLSRV/v1/pki/crl"]
[[listener.route]]
upstream = "echo"
allow = ["any"]

[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"
crl_fetch = true
crl_refresh = "1s"
crl_stale = "fail_closed"
crl_urls = ["http://CRLSRV/v1/pki/crl"]
[[listener.route]]
upstream = "echo"
allow = ["any"]

[[upstream]]
name = "echo"
servers = ["http://ECHO"]
"#;

/// Serves `file` to every GET while `up`, answers 503 otherwise. The thread ends with the
/// test process; it handles a bounded number of connections.
fn crl_server(file: PathBuf, up: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().take(10_000) {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let reply = match (up.load(Ordering::SeqCst), std::fs::read(&file)) {
                (true, Ok(body)) => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend(body);
                    r
                }
                _ => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = c.write_all(&reply);
        }
    });
    port
}

/// Every `https://127.0.0.1:PORT` the proxy said it listens on, in order.
fn listener_ports(p: &Proc, n: usize) -> Vec<u16> {
    for _ in 0..100 {
        let ports: Vec<u16> = p
            .log()
            .lines()
            .filter_map(|l| l.split("listening on https://127.0.0.1:").nth(1))
            .filter_map(|rest| rest.trim().parse().ok())
            .collect();
        if ports.len() >= n {
            return ports;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{}", p.log());
}

/// Calls until the status is `want` (bounded); returns the last status.
fn until(s: &Story, who: &str, url: &str, want: &str) -> String {
    let mut got = String::new();
    for _ in 0..100 {
        got = curl(s, who, url, &[]).status;
        if got == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    got
}

#[test]
fn fetched_crls_revoke_without_restart_and_keep_last_or_fail_closed() {
    let s = Story::build("ec");
    s.mutual(&["crl", "--ca", "root", "--out", "certs/root.crl"])
        .ok();
    let up = Arc::new(AtomicBool::new(true));
    let crl_port = crl_server(s.path("certs/root.crl"), Arc::clone(&up));
    let e = echo(&s);
    s.write(
        "proxy.toml",
        &CONFIG
            .replace("CRLSRV", &format!("127.0.0.1:{crl_port}"))
            .replace("ECHO", &format!("127.0.0.1:{}", e.port)),
    );
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "proxy.toml"], "https");
    let ports = listener_ports(&p, 2);
    let keep = format!("https://localhost:{}/", ports[0]);
    let closed = format!("https://localhost:{}/", ports[1]);
    assert!(p.log().contains("fetched CRL swapped in"), "{}", p.log());
    for url in [&keep, &closed] {
        assert_eq!(curl(&s, "alice", url, &[]).status, "200", "{}", p.log());
        assert_eq!(curl(&s, "bob", url, &[]).status, "200", "{}", p.log());
    }

    // Bob is revoked; the next refresh brings the new CRL in, without a restart or a reload.
    let serial = common::serial_of(&s, "certs/bob.example.com.crt");
    s.mutual(&["revoke", &serial]).ok();
    s.mutual(&["crl", "--ca", "root", "--out", "certs/root.crl"])
        .ok();
    assert_eq!(until(&s, "bob", &keep, "000"), "000", "{}", p.log());
    assert_eq!(until(&s, "bob", &closed, "000"), "000", "{}", p.log());
    assert!(p.wait_log("reason.code=\"revoked\""), "{}", p.log());
    assert!(!p.log().contains("configuration reloaded"), "{}", p.log());
    assert_eq!(curl(&s, "alice", &keep, &[]).status, "200");

    // The CRL's server stops answering: keep_last keeps serving, fail_closed refuses.
    up.store(false, Ordering::SeqCst);
    assert!(p.wait_log("keeping the last good CRL"), "{}", p.log());
    assert!(
        p.wait_log("refusing every caller (crl_stale = fail_closed)"),
        "{}",
        p.log()
    );
    assert_eq!(until(&s, "alice", &closed, "000"), "000", "{}", p.log());
    assert!(p.wait_log("crl_stale"), "{}", p.log());
    assert_eq!(curl(&s, "alice", &keep, &[]).status, "200", "{}", p.log());

    // It answers again: fail_closed serves again.
    up.store(true, Ordering::SeqCst);
    assert_eq!(until(&s, "alice", &closed, "200"), "200", "{}", p.log());

    // Metrics: expiry of our certificate and of the CA, CRL age and next update.
    assert!(p.wait_log("admin on http://"), "{}", p.log());
    let log = p.log();
    let i = log.find("admin on http://127.0.0.1:").unwrap();
    let admin: String = log[i + 26..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{admin}/metrics"),
        ])
        .output()
        .unwrap();
    let m = String::from_utf8_lossy(&out.stdout);
    let gauge = |prefix: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{m}"))
    };
    let l0 = format!("listener=\"127.0.0.1:{}\"", ports[0]);
    let www = gauge(&format!(
        "mutual_proxy_cert_expiry_seconds{{{l0},subject=\"CN=www.example.com\""
    ));
    assert!(www > 86_400.0, "{m}");
    let ca = gauge(&format!(
        "mutual_proxy_cert_expiry_seconds{{{l0},subject=\"CN=Local Root CA\""
    ));
    assert!(ca > www, "{m}");
    let age = gauge(&format!(
        "mutual_proxy_crl_age_seconds{{{l0},issuer=\"CN=Local Root CA\""
    ));
    assert!((0.0..3600.0).contains(&age), "{m}");
    let next = gauge(&format!(
        "mutual_proxy_crl_next_update_seconds{{{l0},issuer=\"CN=Local Root CA\""
    ));
    assert!(next > 0.0, "{m}");
    assert!(m.contains("mutual_proxy_crl_fetch_ok{"), "{m}");
}
