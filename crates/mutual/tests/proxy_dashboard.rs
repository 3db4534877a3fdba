//! The proxy's dashboard (`/ui/` on its admin listener) in a real headless Chromium: after Bob
//! calls a route that admits only Alice, and Alice a route that refuses her in the handshake,
//! the page lists both refusals with the reason for each, next to the listeners, routes and
//! upstreams. Read-only: no form on the page. Screenshot to target/ui-screenshots/.

mod common;
mod proxying;
mod webdriver;

use std::path::PathBuf;

use common::Story;
use proxying::{curl, echo, Proc};
use webdriver::Browser;

const CONFIG: &str = r#"
[admin]
listen = "127.0.0.1:0"

[[listener]]
listen = "127.0.0.1:0"
ca = "certs/root.pem"
cert = "certs/www.example.com.crt"
key = "certs/www.example.com.key"

[[listener.route]]
host = "www.example.com"
upstream = "echo"
allow = ["cn=alice.example.com"]

[[listener.route]]
host = "localhost"
upstream = "echo"
allow = ["cn=bob.example.com"]
deny_at = "handshake"

[[upstream]]
name = "echo"
servers = ["ECHO"]
"#;

#[test]
fn the_proxy_dashboard_shows_bobs_refusal_and_why() {
    let s = Story::build("ec");
    let e = echo(&s);
    s.write(
        "proxy.toml",
        &CONFIG.replace("ECHO", &format!("http://127.0.0.1:{}", e.port)),
    );
    let p = Proc::start(s.dir.path(), &["proxy", "--config", "proxy.toml"], "https");
    let resolve = format!("www.example.com:{}:127.0.0.1", p.port);
    let www = format!("https://www.example.com:{}/", p.port);
    assert_eq!(
        curl(&s, "alice", &www, &["--resolve", &resolve]).status,
        "200"
    );
    let r = curl(&s, "bob", &www, &["--resolve", &resolve]);
    assert_eq!(r.status, "403", "{}", r.body);
    let r = curl(&s, "alice", &format!("https://localhost:{}/", p.port), &[]);
    assert!(r.code != 0 || r.status == "000", "alice got {}", r.status);
    assert!(p.wait_log("not_allowed"), "{}", p.log());

    let log = p.log();
    let i = log
        .find("admin on http://127.0.0.1:")
        .expect("admin address");
    let admin: String = log[i + 26..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();

    let b = Browser::start();
    b.go(&format!("http://127.0.0.1:{admin}/ui/"));
    let rows = b.find_all("table.refusals tbody tr");
    let texts: Vec<String> = rows.iter().map(|r| b.text_of(r)).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    // Newest first: Alice refused in the handshake, then Bob refused by the route.
    assert!(texts[0].contains("alice.example.com"), "{}", texts[0]);
    assert!(texts[0].contains("handshake"), "{}", texts[0]);
    assert!(texts[0].contains("not_allowed"), "{}", texts[0]);
    assert!(texts[1].contains("bob.example.com"), "{}", texts[1]);
    assert!(texts[1].contains("403"), "{}", texts[1]);
    assert!(
        texts[1].contains("you cannot be here bob.example.com: only cn=alice.example.com may call"),
        "{}",
        texts[1]
    );
    assert!(
        texts[0].contains("you cannot be here alice.example.com: only cn=bob.example.com may call"),
        "{}",
        texts[0]
    );
    let page = b.text("main");
    for want in [
        "www.example.com/",
        "cn=alice.example.com",
        "cn=bob.example.com",
        "in rotation",
        "www.example.com",
        "Local Root CA",
    ] {
        assert!(page.contains(want), "{want} missing from\n{page}");
    }
    assert!(b.find("form").is_none(), "the admin dashboard is read-only");
    b.screenshot(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots/11-proxy.png"),
    );
}
