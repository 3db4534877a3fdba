//! A small WebDriver client (W3C protocol, plain HTTP/1.1 to a local `chromedriver`) driving a
//! real headless Chromium for the dashboard tests. Enough of the protocol for those tests:
//! navigate, find, type, click, read text and source, cookies, screenshots.

#![allow(dead_code)] // each test binary uses the part it needs

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver and one browser session; both end when it is dropped.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    /// The TMPDIR of chromedriver and Chromium: the profile and scoped directories they
    /// leave behind go with it (in /tmp, each test run left two).
    _tmp: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = call(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open whatever the request says: read the head, then
    // exactly the body it announces.
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let head_end = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the head".into());
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let have = raw.len() - head_end;
        let done = match length {
            Some(n) => have >= n,
            None if chunked => raw.ends_with(b"0\r\n\r\n"),
            None => false,
        };
        if done {
            break;
        }
        let n = s.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
    let body = if chunked { dechunk(&rest) } else { rest };
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if let Some(err) = value.get("error").and_then(Value::as_str) {
        return Err(format!(
            "{err}: {}",
            value.get("message").and_then(Value::as_str).unwrap_or("")
        ));
    }
    Ok(value)
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    for _ in 0..100_000 {
        let Some((size, after)) = rest.split_once("\r\n") else {
            break;
        };
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session.
    pub fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let tmp = tempfile::tempdir().expect("a directory for the browser");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "chromedriver (install chromium and chromium-driver: scripts/install-test-deps)",
            );
        let deadline = Instant::now() + Duration::from_secs(30);
        while call(port, "GET", "/status", None).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,1100"]
            }
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _tmp: tmp,
        };
        let v = call(port, "POST", "/session", Some(&caps)).expect("a browser session");
        browser.session = v["sessionId"].as_str().expect("sessionId").to_string();
        browser
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        call(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    /// Opens `url`.
    pub fn go(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("navigating to {url}: {e}"));
    }

    /// The current URL.
    pub fn url(&self) -> String {
        self.cmd("GET", "/url", None)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Waits (at most 10 s) until the current URL contains `part`: a click that submits a
    /// form returns before the next page is there.
    #[track_caller]
    pub fn wait_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.url().contains(part) {
            assert!(
                Instant::now() < deadline,
                "still at {}, not {part}",
                self.url()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most 10 s) until `done` holds for the page.
    #[track_caller]
    pub fn wait(&self, what: &str, done: impl Fn(&Browser) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "waited for {what} at {}:\n{}",
                self.url(),
                self.source()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The page's HTML as the browser holds it.
    pub fn source(&self) -> String {
        self.cmd("GET", "/source", None)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The first element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .ok()?;
        v.get(ELEMENT).and_then(Value::as_str).map(str::to_string)
    }

    /// Every element matching a CSS selector.
    pub fn find_all(&self, css: &str) -> Vec<String> {
        self.cmd(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": css })),
        )
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get(ELEMENT).and_then(Value::as_str).map(str::to_string))
        .collect()
    }

    #[track_caller]
    fn must(&self, css: &str) -> String {
        self.find(css)
            .unwrap_or_else(|| panic!("no element {css} on {}:\n{}", self.url(), self.source()))
    }

    /// Types `text` into the element matching `css`.
    #[track_caller]
    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.must(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .unwrap();
    }

    /// Clicks the element matching `css`.
    #[track_caller]
    pub fn click(&self, css: &str) {
        let e = self.must(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})))
            .unwrap();
    }

    /// The visible text of an element.
    pub fn text_of(&self, element: &str) -> String {
        self.cmd("GET", &format!("/element/{element}/text"), None)
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The visible text of the element matching `css`.
    #[track_caller]
    pub fn text(&self, css: &str) -> String {
        let e = self.must(css);
        self.text_of(&e)
    }

    /// The browser's cookie `name` (as WebDriver reports it, HttpOnly ones included).
    pub fn cookie(&self, name: &str) -> Option<Value> {
        self.cmd("GET", &format!("/cookie/{name}"), None).ok()
    }

    /// Deletes every cookie of the current page's origin.
    pub fn clear_cookies(&self) {
        let _ = self.cmd("DELETE", "/cookie", None);
    }

    /// The text of an open alert, if a script opened one.
    pub fn alert(&self) -> Option<String> {
        self.cmd("GET", "/alert/text", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
    }

    /// Writes a PNG screenshot of the viewport to `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.cmd("GET", "/screenshot", None).unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}
