//! `mutual proxy` with a `tcp` listener: mTLS in, raw TCP out to `serve echo` (plain HTTP is
//! as good a TCP backend as any). Alice's bytes reach it as she sent them; Bob is refused in
//! the handshake with the reason in the log; the relay is counted in `/metrics`.

mod common;
mod proxying;

use std::process::Command;
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
mode = "tcp"
upstream = "echo"
allow = ["cn=alice.example.com"]

[[upstream]]
name = "echo"
servers = ["tcp://ECHO"]
"#;

/// The admin port from the proxy's start-up line.
pub fn admin_port(p: &Proc) -> String {
    assert!(p.wait_log("admin on http://"), "{}", p.log());
    let log = p.log();
    let i = log
        .find("admin on http://127.0.0.1:")
        .expect("admin address");
    log[i + 26..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect()
}

fn get(port: &str, path: &str) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tcp_listener_relays_alice_refuses_bob_in_the_handshake_and_counts() {
    let s = Story::build("ec");
    let e = echo(&s);
    s.write(
        "proxy.toml",
        &CONFIG.replace("ECHO", &format!("127.0.0.1:{}", e.port)),
    );
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "proxy.toml"], "https");
    let url = format!("https://localhost:{}/over-tcp?x=1", p.port);

    // Alice: her HTTP request goes through byte for byte; nothing is added, because a tcp
    // listener does not speak HTTP (no XFCC, no x-forwarded-*).
    let r = curl(
        &s,
        "alice",
        &url,
        &["-H", "X-Forwarded-Client-Cert: forged"],
    );
    assert_eq!(r.status, "200", "{} {}", r.body, p.log());
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("echo's JSON");
    assert_eq!(v["path"], "/over-tcp?x=1", "{}", r.body);
    assert_eq!(v["headers"]["x-forwarded-client-cert"], "forged");
    assert!(v["headers"]["x-forwarded-for"].is_null(), "{}", r.body);

    // The same through openssl s_client: a raw request, read to the end.
    let out = Command::new("sh")
        .current_dir(s.dir.path())
        .arg("-c")
        .arg(format!(
            "printf 'GET /raw HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' | openssl s_client -quiet -connect 127.0.0.1:{} \
             -servername localhost -CAfile certs/root.pem -cert certs/alice.example.com.crt \
             -key certs/alice.example.com.key 2>/dev/null",
            p.port
        ))
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.0 200"), "{text}");
    assert!(text.contains("/raw"), "{text}");

    // Bob is refused in the handshake, and the log says who and why.
    let r = curl(&s, "bob", &url, &[]);
    assert!(r.code != 0 && r.status != "200", "bob got {}", r.status);
    assert!(p.wait_log("not_allowed"), "{}", p.log());
    assert!(p.log().contains("bob.example.com"), "{}", p.log());

    // Counted: relays by how they ended, bytes both ways, Bob's refused handshake.
    let admin = admin_port(&p);
    let mut m = String::new();
    for _ in 0..100 {
        m = get(&admin, "/metrics");
        if m.contains("mutual_proxy_tcp_connections_total{route=\"tcp:echo\",result=\"closed\"} 2")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        m.contains("mutual_proxy_tcp_connections_total{route=\"tcp:echo\",result=\"closed\"} 2"),
        "{m}"
    );
    assert!(m.contains("reason=\"not_allowed\""), "{m}");
    let up = m
        .lines()
        .find(|l| {
            l.starts_with("mutual_proxy_tcp_bytes_total{route=\"tcp:echo\",direction=\"up\"}")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(up > 50, "{m}");
}
