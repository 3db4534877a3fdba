//! The CA side of enrollment, renewal and live revocation (docs/lifecycle-api.md), against the
//! real `mutual server` with real peers: `openssl ocsp` asks the OCSP responder, curl uses
//! bootstrap tokens, renews over mTLS with `--cert/--key`, long-polls the revocation feed and
//! reads it as server-sent events.

#[path = "support/child.rs"]
mod child;
mod common;
mod server;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use child::Running;
use common::Story;
use serde_json::{json, Value};

/// A `mutual server` on a durable store in a story directory, killed by PID when dropped.
struct Ca {
    proc: Running,
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    url: String,
    root_token: String,
}

fn spawn(s: &Story, extra: &[&str]) -> Child {
    Command::new(server::bin())
        .current_dir(s.dir.path())
        .args(["server", "--listen", "127.0.0.1:0", "--data", "data"])
        .args(extra)
        .stdout(Stdio::piped())
        // The server's log: one line per decision.
        .stderr(std::fs::File::create(s.path("server.log")).expect("server.log"))
        .spawn()
        .expect("starting mutual server")
}

fn first_line(child: &mut Child) -> String {
    let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("the server's first line");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    line.trim()
        .strip_prefix("mutual server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .replacen("https://127.0.0.1:", "https://localhost:", 1)
}

/// One curl request: status and body. `args` come before the URL.
fn curl(s: &Story, args: &[&str], url: &str) -> (u16, String) {
    let mut all = vec!["-sS", "-o", "body.out", "-w", "%{http_code}"];
    all.extend(args);
    all.push(url);
    let out = s.run("curl", &all);
    let code = out.stdout.trim().parse().unwrap_or(0);
    (
        code,
        std::fs::read_to_string(s.path("body.out")).unwrap_or_default(),
    )
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The serials of a feed answer's `revoked` entries, in order.
fn revoked_serials(data: &Value) -> Vec<&str> {
    data["revoked"]
        .as_array()
        .unwrap_or_else(|| panic!("no revoked list: {data}"))
        .iter()
        .map(|e| {
            e["serial"]
                .as_str()
                .unwrap_or_else(|| panic!("no serial: {e}"))
        })
        .collect()
}

impl Ca {
    /// A store with a root token, a `pki` mount with an EC root, OCSP in its URLs, and a role
    /// `service` for example.com names; served over HTTP.
    fn start(s: &Story) -> Ca {
        let init = s.mutual(&["server", "init"]).ok();
        let root_token = init
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("Root Token: "))
            .expect("the root token")
            .trim()
            .to_string();
        let mut child = spawn(s, &[]);
        let url = first_line(&mut child);
        let ca = Ca {
            proc: Running::new(child),
            url,
            root_token,
        };
        ca.setup(s);
        ca
    }

    fn setup(&self, s: &Story) {
        let ocsp = format!("{}/v1/pki/ocsp", self.url);
        for (path, body) in [
            ("sys/mounts/pki", json!({"type": "pki"})),
            (
                "pki/root/generate/internal",
                json!({"common_name": "Lifecycle Root", "key_type": "ec", "ttl": "87600h"}),
            ),
            ("pki/config/urls", json!({"ocsp_servers": [ocsp]})),
            (
                "pki/roles/service",
                json!({"allowed_domains": "example.com", "allow_subdomains": true,
                       "allow_localhost": true, "allow_ip_sans": true, "max_ttl": "720h",
                       "key_type": "ec"}),
            ),
            (
                "pki/roles/other",
                json!({"allowed_domains": "example.org", "allow_subdomains": true}),
            ),
        ] {
            let (code, out) = self.root(s, "POST", path, Some(body));
            assert!(code == 200 || code == 204, "{path}: {code} {out}");
        }
        let (code, pem) = curl(s, &[], &format!("{}/v1/pki/ca/pem", self.url));
        assert_eq!(code, 200);
        s.write("root.pem", &pem);
    }

    /// A request with the root token.
    fn root(&self, s: &Story, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        self.call(s, &self.root_token, method, path, body)
    }

    fn call(
        &self,
        s: &Story,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let header = format!("X-Vault-Token: {token}");
        let body = body.map(|b| b.to_string());
        let mut args = vec!["--cacert", "root.pem", "-H", header.as_str(), "-X", method];
        if let Some(b) = &body {
            args.extend(["-d", b.as_str()]);
        }
        curl(s, &args, &format!("{}/v1/{path}", self.url))
    }

    /// Issues `cn` under `service` and writes `NAME.pem` (leaf) and `NAME.key`.
    fn issue(&self, s: &Story, name: &str, cn: &str, extra: Value) -> String {
        let mut body = json!({"common_name": cn});
        for (k, v) in extra.as_object().into_iter().flatten() {
            body[k] = v.clone();
        }
        let (code, out) = self.root(s, "POST", "pki/issue/service", Some(body));
        assert_eq!(code, 200, "{out}");
        let data = &json_of(&out)["data"];
        s.write(
            &format!("{name}.pem"),
            data["certificate"].as_str().unwrap(),
        );
        s.write(
            &format!("{name}.key"),
            data["private_key"].as_str().unwrap(),
        );
        data["serial_number"].as_str().unwrap().to_string()
    }

    fn revoke(&self, s: &Story, serial: &str, reason: &str) {
        let (code, out) = self.root(
            s,
            "POST",
            "pki/revoke",
            Some(json!({"serial_number": serial, "reason": reason})),
        );
        assert_eq!(code, 200, "{out}");
    }
}

/// `openssl ocsp` against the responder: (stdout, stderr).
fn openssl_ocsp(s: &Story, ca: &Ca, args: &[&str]) -> (String, String) {
    let url = format!("{}/v1/pki/ocsp", ca.url);
    let mut all = vec![
        "ocsp", "-issuer", "root.pem", "-CAfile", "root.pem", "-url", &url,
    ];
    all.extend(args);
    let out = s.run("openssl", &all);
    (out.stdout, out.stderr)
}

#[test]
fn ocsp_answers_good_revoked_and_unknown_to_openssl() {
    let s = Story::new();
    let ca = Ca::start(&s);
    let serial = ca.issue(&s, "alice", "alice.example.com", json!({}));

    // The issued certificate names the responder in its AIA.
    let uri = s
        .run(
            "openssl",
            &["x509", "-noout", "-ocsp_uri", "-in", "alice.pem"],
        )
        .ok();
    assert_eq!(uri.stdout.trim(), format!("{}/v1/pki/ocsp", ca.url));

    // POST, with openssl's nonce: good, the signature verifies against the root, and the
    // nonce came back (openssl warns "no nonce in response" otherwise).
    let (out, err) = openssl_ocsp(&s, &ca, &["-cert", "alice.pem"]);
    assert!(out.contains("alice.pem: good"), "{out}\n{err}");
    assert!(err.contains("Response verify OK"), "{out}\n{err}");
    assert!(!err.contains("nonce"), "{err}");
    assert!(
        out.contains("This Update:") && out.contains("Next Update:"),
        "{out}"
    );

    ca.revoke(&s, &serial, "keyCompromise");
    let log = s.read("server.log");
    assert!(
        log.lines().any(|l| l.contains("certificate revoked")
            && l.contains(&serial)
            && l.contains("keyCompromise")),
        "{log}"
    );
    let (out, err) = openssl_ocsp(&s, &ca, &["-cert", "alice.pem"]);
    assert!(out.contains("alice.pem: revoked"), "{out}\n{err}");
    assert!(out.contains("Reason: keyCompromise"), "{out}");
    assert!(out.contains("Revocation Time:"), "{out}");
    assert!(err.contains("Response verify OK"), "{err}");

    // A serial this CA never issued.
    let (out, err) = openssl_ocsp(&s, &ca, &["-serial", "0x1234abcd"]);
    assert!(out.contains("0x1234abcd: unknown"), "{out}\n{err}");
    assert!(err.contains("Response verify OK"), "{err}");

    // A certificate of another CA (the CertID's issuer hashes are not ours): unknown.
    let other = Story::new();
    other.mutual(&["ca", "init"]).ok();
    let foreign = other.mutual(&["ca", "cert", "root"]).ok().stdout;
    s.write("foreign.pem", &foreign);
    let url = format!("{}/v1/pki/ocsp", ca.url);
    let out = s
        .run(
            "openssl",
            &[
                "ocsp",
                "-issuer",
                "foreign.pem",
                "-serial",
                "0x01",
                "-url",
                &url,
                "-noverify",
            ],
        )
        .stdout;
    assert!(out.contains("0x01: unknown"), "{out}");

    // GET with the base64 request in the path (URL-encoded), as RFC 6960 appendix A.
    s.run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            "root.pem",
            "-cert",
            "alice.pem",
            "-no_nonce",
            "-reqout",
            "req.der",
        ],
    )
    .ok();
    let req = std::fs::read(s.path("req.der")).unwrap();
    let encoded = ocsp_get_path(&req);
    let (code, _) = curl(
        &s,
        &["-D", "headers.out"],
        &format!("{}/v1/pki/ocsp/{encoded}", ca.url),
    );
    assert_eq!(code, 200);
    std::fs::copy(s.path("body.out"), s.path("get.der")).unwrap();
    assert!(s
        .read("headers.out")
        .to_ascii_lowercase()
        .contains("content-type: application/ocsp-response"));
    let shown = s.run(
        "openssl",
        &[
            "ocsp",
            "-respin",
            "get.der",
            "-issuer",
            "root.pem",
            "-cert",
            "alice.pem",
            "-CAfile",
            "root.pem",
        ],
    );
    assert!(
        shown.stdout.contains("alice.pem: revoked"),
        "{}\n{}",
        shown.stdout,
        shown.stderr
    );
    assert!(
        shown.stderr.contains("Response verify OK"),
        "{}",
        shown.stderr
    );
    // RFC 5019's caching headers: Last-Modified and Expires are the answer's own thisUpdate
    // and nextUpdate, and a cache may keep it no longer than the responder reuses it (60 s).
    let first = s.read("headers.out");
    let text = s
        .run(
            "openssl",
            &["ocsp", "-respin", "get.der", "-resp_text", "-noverify"],
        )
        .stdout;
    let dated = |label: &str| {
        let line = text.lines().find(|l| l.trim().starts_with(label)).unwrap();
        // "This Update: Dec  2 05:05:09 2026 GMT" -> (month, day, time, year)
        let w: Vec<&str> = line.split_whitespace().collect();
        let n = w.len();
        (
            w[n - 5].to_string(),
            w[n - 4].parse::<u32>().unwrap(),
            w[n - 3].to_string(),
            w[n - 2].to_string(),
        )
    };
    let http_dated = |v: &str| {
        // "Wed, 02 Dec 2026 05:05:09 GMT" -> (month, day, time, year)
        let w: Vec<&str> = v.split_whitespace().collect();
        assert_eq!((w.len(), w[5]), (6, "GMT"), "{v}");
        (
            w[2].to_string(),
            w[1].parse::<u32>().unwrap(),
            w[4].to_string(),
            w[3].to_string(),
        )
    };
    assert_eq!(
        http_dated(&header(&first, "last-modified")),
        dated("This Update:")
    );
    assert_eq!(
        http_dated(&header(&first, "expires")),
        dated("Next Update:")
    );
    let max_age = |headers: &str| {
        let cc = header(headers, "cache-control");
        for part in ["public", "no-transform", "must-revalidate"] {
            assert!(cc.split(", ").any(|p| p == part), "{cc}");
        }
        cc.split(", ")
            .find_map(|p| p.strip_prefix("max-age="))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no max-age in {cc}"))
    };
    let fresh = max_age(&first);
    assert!(fresh > 0 && fresh <= 60, "max-age={fresh}");
    let tag = header(&first, "etag");
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    // Asked again: the same answer (the same tag and date), fresh for no longer.
    let (code, _) = curl(
        &s,
        &["-D", "again.out"],
        &format!("{}/v1/pki/ocsp/{encoded}", ca.url),
    );
    assert_eq!(code, 200);
    let again = s.read("again.out");
    assert_eq!(header(&again, "etag"), tag);
    assert_eq!(
        header(&again, "last-modified"),
        header(&first, "last-modified")
    );
    assert!(max_age(&again) <= fresh);
    // An answer bound to a nonce is of use to one client only: no cache keeps it.
    s.run(
        "openssl",
        &[
            "ocsp",
            "-issuer",
            "root.pem",
            "-cert",
            "alice.pem",
            "-reqout",
            "nonce.der",
        ],
    )
    .ok();
    let nonced = ocsp_get_path(&std::fs::read(s.path("nonce.der")).unwrap());
    let (code, _) = curl(
        &s,
        &["-D", "nonce.out"],
        &format!("{}/v1/pki/ocsp/{nonced}", ca.url),
    );
    assert_eq!(code, 200);
    let said = s.read("nonce.out");
    assert_eq!(header(&said, "cache-control"), "no-store");
    assert!(!said.to_ascii_lowercase().contains("etag:"), "{said}");

    // POST by curl with the OCSP content type, the same answer.
    let (code, _) = curl(
        &s,
        &[
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "@req.der",
        ],
        &format!("{}/v1/pki/ocsp", ca.url),
    );
    assert_eq!(code, 200);
    std::fs::copy(s.path("body.out"), s.path("post.der")).unwrap();
    let shown = s.run(
        "openssl",
        &[
            "ocsp",
            "-respin",
            "post.der",
            "-issuer",
            "root.pem",
            "-cert",
            "alice.pem",
            "-CAfile",
            "root.pem",
        ],
    );
    assert!(
        shown.stdout.contains("alice.pem: revoked"),
        "{}",
        shown.stdout
    );

    // Garbage: an OCSP malformedRequest, not an HTTP error.
    s.write("junk.der", "this is not DER");
    let (code, _) = curl(
        &s,
        &[
            "-H",
            "Content-Type: application/ocsp-request",
            "--data-binary",
            "@junk.der",
        ],
        &format!("{}/v1/pki/ocsp", ca.url),
    );
    assert_eq!(code, 200);
    std::fs::copy(s.path("body.out"), s.path("bad.der")).unwrap();
    let shown = s.run(
        "openssl",
        &["ocsp", "-respin", "bad.der", "-resp_text", "-noverify"],
    );
    let text = format!("{}{}", shown.stdout, shown.stderr).to_ascii_lowercase();
    assert!(text.contains("malformedrequest"), "{text}");
}

/// A DER OCSP request as the last segment of a GET: base64 (by openssl), URL-encoded.
fn ocsp_get_path(bytes: &[u8]) -> String {
    let out = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(bytes)?;
            c.wait_with_output()
        })
        .expect("openssl base64");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// Makes a bootstrap token with the offline CLI on the server's store.
fn bootstrap_token(s: &Story, args: &[&str]) -> String {
    let mut all = vec!["token", "create", "--mount", "pki", "--role", "service"];
    all.extend(args);
    let out = s.mutual(&all).ok();
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("Token:"))
        .expect("Token: line")
        .trim()
        .to_string()
}

#[test]
fn bootstrap_tokens_issue_under_one_role_a_limited_number_of_times() {
    let s = Story::new();
    let ca = Ca::start(&s);
    let token = bootstrap_token(&s, &["--uses", "1", "--ttl", "1h"]);
    let alice = json!({"common_name": "alice.example.com"});

    // Out of scope: another path, another role, sys/: 403 naming what it is.
    for (method, path) in [
        ("POST", "pki/roles/service"),
        ("POST", "pki/issue/other"),
        ("GET", "pki/certs"),
        ("GET", "sys/mounts"),
    ] {
        let (code, out) = ca.call(&s, &token, method, path, Some(json!({})));
        assert_eq!(code, 403, "{path}: {out}");
        assert!(
            out.contains("bootstrap token for role \\\"service\\\" on mount \\\"pki\\\""),
            "{path}: {out}"
        );
    }
    // A refused name does not burn the one use.
    let (code, out) = ca.call(
        &s,
        &token,
        "POST",
        "pki/issue/service",
        Some(json!({"common_name": "evil.com"})),
    );
    assert_eq!(code, 400, "{out}");
    let (code, out) = ca.call(&s, &token, "POST", "pki/issue/service", Some(alice.clone()));
    assert_eq!(code, 200, "{out}");
    let (code, out) = ca.call(&s, &token, "POST", "pki/issue/service", Some(alice.clone()));
    assert_eq!(code, 403, "{out}");
    assert_eq!(
        json_of(&out)["errors"],
        json!(["bootstrap token used up (1 of 1 uses)"])
    );

    // Expired.
    let short = bootstrap_token(&s, &["--ttl", "1s"]);
    std::thread::sleep(Duration::from_millis(2100));
    let (code, out) = ca.call(&s, &short, "POST", "pki/issue/service", Some(alice.clone()));
    assert_eq!(code, 403, "{out}");
    assert!(out.contains("bootstrap token expired at 20"), "{out}");

    // Eight callers race for one use: exactly one certificate.
    let once = bootstrap_token(&s, &["--uses", "1"]);
    let codes: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (s, ca, once) = (&s, &ca, &once);
                scope.spawn(move || {
                    let header = format!("X-Vault-Token: {once}");
                    let out = s.run(
                        "curl",
                        &[
                            "-sS",
                            "-o",
                            &format!("race{i}.out"),
                            "-w",
                            "%{http_code}",
                            "-H",
                            &header,
                            "-d",
                            r#"{"common_name":"race.example.com"}"#,
                            &format!("{}/v1/pki/issue/service", ca.url),
                        ],
                    );
                    out.stdout.trim().parse::<u16>().unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 403).count(), 7, "{codes:?}");

    // Made remotely by the root token, good for two; a CSR through sign/ works too.
    let made = s
        .mutual(&[
            "token",
            "create",
            "--addr",
            &ca.url,
            "--token",
            &ca.root_token,
            "--mount",
            "pki",
            "--role",
            "service",
            "--uses",
            "2",
            "--json",
        ])
        .ok();
    let remote = json_of(&made.stdout)["token"].as_str().unwrap().to_string();
    s.run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "bob.key",
            "-subj",
            "/CN=bob.example.com",
            "-out",
            "bob.csr",
        ],
    )
    .ok();
    let csr = s.read("bob.csr");
    let body = json!({"csr": csr, "common_name": "bob.example.com"});
    let (code, out) = ca.call(&s, &remote, "POST", "pki/sign/service", Some(body.clone()));
    assert_eq!(code, 200, "{out}");
    let (code, out) = ca.call(&s, &remote, "POST", "pki/issue/service", Some(alice));
    assert_eq!(code, 200, "{out}");
    let (code, out) = ca.call(&s, &remote, "POST", "pki/sign/service", Some(body));
    assert_eq!(code, 403, "{out}");
    assert!(out.contains("used up (2 of 2 uses)"), "{out}");
    // Usage: a bootstrap token names one mount and a role the mount has.
    s.mutual(&["token", "create", "--mount", "pki", "--role", "nope"])
        .fails(1);
}

/// A CSR for `cn` with `sans` (openssl's subjectAltName syntax), key in `name.newkey`.
fn csr(s: &Story, name: &str, cn: &str, sans: Option<&str>) -> String {
    let subj = format!("/CN={cn}");
    let key = format!("{name}.newkey");
    let out = format!("{name}.csr");
    let mut args = vec![
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-subj",
        &subj,
        "-out",
        &out,
    ];
    let ext;
    if let Some(sans) = sans {
        ext = format!("subjectAltName={sans}");
        args.extend(["-addext", &ext]);
    }
    s.run("openssl", &args).ok();
    s.read(&out)
}

fn renew(s: &Story, ca: &Ca, name: &str, csr: &str) -> (u16, String, String) {
    let cert = format!("{name}.pem");
    let key = format!("{name}.key");
    let body = json!({"csr": csr}).to_string();
    let out = s.run(
        "curl",
        &[
            "-sS",
            "-o",
            "body.out",
            "-w",
            "%{http_code}",
            "--cacert",
            "root.pem",
            "--cert",
            &cert,
            "--key",
            &key,
            "-d",
            &body,
            &format!("{}/v1/pki/renew", ca.url),
        ],
    );
    let code = out.stdout.trim().parse().unwrap_or(0);
    (code, s.read("body.out"), out.stderr)
}

#[test]
fn a_certificate_renews_itself_over_mtls_and_nothing_else() {
    let s = Story::new();
    let mut ca = Ca::start(&s);
    ca.issue(
        &s,
        "server",
        "ca.example.com",
        json!({"alt_names": "localhost", "ip_sans": "127.0.0.1"}),
    );
    let alice = ca.issue(
        &s,
        "alice",
        "alice.example.com",
        json!({"alt_names": "api.example.com", "ttl": "1h"}),
    );
    ca.issue(&s, "short", "short.example.com", json!({"ttl": "3s"}));
    // The same store, now served over TLS asking for client certificates of its own root.
    // (Stopped first: two servers on one store at once would race for it.)
    let _ = ca.proc.child.kill();
    let _ = ca.proc.child.wait();
    ca.proc = Running::new(spawn(
        &s,
        &[
            "--tls-cert",
            "server.pem",
            "--tls-key",
            "server.key",
            "--tls-client-ca",
            "root.pem",
        ],
    ));
    ca.url = first_line(&mut ca.proc.child);
    // An enrolled service, which renews by certificate in memory while the checks below run.
    let hello = EnrolledHello::start(&s, &ca);

    // Renewed: same names, same role, a new serial and the CSR's key.
    let request = csr(
        &s,
        "alice",
        "alice.example.com",
        Some("DNS:api.example.com"),
    );
    let (code, out, err) = renew(&s, &ca, "alice", &request);
    assert_eq!(code, 200, "{out}\n{err}");
    let data = &json_of(&out)["data"];
    for field in [
        "certificate",
        "issuing_ca",
        "ca_chain",
        "serial_number",
        "expiration",
    ] {
        assert!(!data[field].is_null(), "{field}: {out}");
    }
    let renewed = data["serial_number"].as_str().unwrap().to_string();
    assert_ne!(renewed, alice);
    s.write("renewed.pem", data["certificate"].as_str().unwrap());

    // The inventory keeps the request that produced each: the token's issue, and the
    // renewal with its predecessor.
    for (serial, want) in [
        (alice.clone(), "pki/issue/service".to_string()),
        (renewed.clone(), format!("pki/renew of {alice}")),
    ] {
        let (code, out) = ca.root(&s, "GET", &format!("pki/inventory?serial={serial}"), None);
        assert_eq!(code, 200, "{out}");
        let found = &json_of(&out)["data"]["certs"][0];
        assert_eq!(found["request"], want.as_str(), "{out}");
    }
    let text = s
        .run(
            "openssl",
            &["x509", "-noout", "-text", "-in", "renewed.pem"],
        )
        .ok()
        .stdout;
    assert!(
        text.contains("DNS:alice.example.com") && text.contains("DNS:api.example.com"),
        "{text}"
    );
    let pub_of = |args: &[&str]| s.run("openssl", args).ok().stdout;
    assert_eq!(
        pub_of(&["x509", "-noout", "-pubkey", "-in", "renewed.pem"]),
        pub_of(&["pkey", "-pubout", "-in", "alice.newkey"])
    );
    s.run("openssl", &["verify", "-CAfile", "root.pem", "renewed.pem"])
        .ok();
    let (code, out) = ca.root(
        &s,
        "GET",
        &format!("pki/cert/{}", data["serial_number"].as_str().unwrap()),
        None,
    );
    assert_eq!(code, 200);
    assert_eq!(json_of(&out)["data"]["role"], "service", "{out}");

    // A CSR that asks for another name is refused, naming it.
    let evil = csr(
        &s,
        "alice2",
        "alice.example.com",
        Some("DNS:evil.example.com"),
    );
    let (code, out, _) = renew(&s, &ca, "alice", &evil);
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("dns:evil.example.com"), "{out}");

    // No certificate: told how to authenticate.
    let (code, out) = curl(
        &s,
        &[
            "--cacert",
            "root.pem",
            "-d",
            &json!({"csr": request}).to_string(),
        ],
        &format!("{}/v1/pki/renew", ca.url),
    );
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("TLS client certificate"), "{out}");
    // Nor does Alice's certificate in the headers a proxy in front would set (Envoy's XFCC,
    // nginx's `$ssl_client_escaped_cert`), nor the root token: only the handshake counts.
    let alice_pem = s.read("alice.pem");
    let escaped: String = alice_pem
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (code, out) = curl(
        &s,
        &[
            "--cacert",
            "root.pem",
            "-H",
            &format!("X-Forwarded-Client-Cert: By=spiffe://ca;Cert=\"{escaped}\";Subject=\"CN=alice.example.com\""),
            "-H",
            &format!("X-SSL-Client-Cert: {escaped}"),
            "-H",
            &format!("X-Vault-Token: {}", ca.root_token),
            "-d",
            &json!({"csr": request}).to_string(),
        ],
        &format!("{}/v1/pki/renew", ca.url),
    );
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("TLS client certificate"), "{out}");

    // Revoked: refused with the time and reason.
    ca.revoke(&s, &alice, "superseded");
    let (code, out, _) = renew(&s, &ca, "alice", &request);
    assert_eq!(code, 403, "{out}");
    assert!(
        out.contains("was revoked at") && out.contains("superseded"),
        "{out}"
    );

    // Expired: refused (by the listener's certificate check, which names the expiry, or by
    // the renewal's own check, which names the dates).
    std::thread::sleep(Duration::from_secs(4));
    let short_csr = csr(&s, "short", "short.example.com", None);
    let (code, out, err) = renew(&s, &ca, "short", &short_csr);
    assert_ne!(code, 200, "{out}");
    let said = format!("{out}{err}").to_ascii_lowercase();
    assert!(said.contains("expired"), "{code}: {out}\n{err}");

    // The enrolled service renewed over mTLS with the chain and key it holds in memory.
    // Killed (as a crash or the OOM killer would), it leaves no key behind in its TMPDIR.
    hello.renewed_by_certificate_and_killed_leaves_nothing();
}

/// The value of a header in curl's `-D` dump (the name in any case), or "" without it.
fn header(dump: &str, name: &str) -> String {
    dump.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// `mutual serve hello --enroll` against the CA's TLS listener with 3-second certificates,
/// its TMPDIR a directory of its own; killed by PID when dropped.
struct EnrolledHello {
    proc: Running,
    tmp: std::path::PathBuf,
}

impl EnrolledHello {
    fn start(s: &Story, ca: &Ca) -> EnrolledHello {
        let (log, tmp) = (s.path("hello.log"), s.path("hello-tmp"));
        std::fs::create_dir(&tmp).expect("hello-tmp");
        let child = Command::new(server::bin())
            .current_dir(s.dir.path())
            .env("TMPDIR", &tmp)
            .env_remove("MUTUAL_TOKEN")
            .args(["serve", "hello", "--listen", "127.0.0.1:0"])
            .args(["--enroll", &ca.url, "--cacert", "root.pem"])
            .args(["--token", &ca.root_token, "--role", "service"])
            .args(["--cn", "hello.example.com", "--ttl", "3s"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("hello.log"))
            .spawn()
            .expect("starting mutual serve hello");
        EnrolledHello {
            proc: Running::logged(child, &log),
            tmp,
        }
    }

    fn renewed_by_certificate_and_killed_leaves_nothing(mut self) {
        let start = Instant::now();
        while !self.proc.log().contains("via=\"certificate\"")
            && start.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.proc.child.kill();
        let _ = self.proc.child.wait();
        let text = self.proc.log();
        assert!(
            text.contains("via=\"certificate\""),
            "no renewal by certificate:\n{text}"
        );
        let left: Vec<_> = std::fs::read_dir(&self.tmp)
            .expect("hello-tmp")
            .map(|e| e.expect("an entry").path())
            .collect();
        assert!(left.is_empty(), "an enrolled process left {left:?} on disk");
    }
}

#[test]
fn the_feed_pushes_revocations_and_resumes_from_since() {
    let s = Story::new();
    let ca = Ca::start(&s);
    let feed = |q: &str| curl(&s, &[], &format!("{}/v1/pki/revocations?{q}", ca.url));

    // The trust bundle: the root, PEM, without a token.
    let (code, bundle) = curl(
        &s,
        &["-D", "tb.headers"],
        &format!("{}/v1/pki/trust-bundle", ca.url),
    );
    assert_eq!(code, 200);
    assert_eq!(bundle, s.read("root.pem"));
    assert!(s
        .read("tb.headers")
        .to_ascii_lowercase()
        .contains("application/x-pem-file"));

    let (code, out) = feed("since=0");
    assert_eq!(code, 200, "{out}");
    assert_eq!(json_of(&out)["data"], json!({"next": 0, "revoked": []}));

    let serials: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| ca.issue(&s, n, &format!("{n}.example.com"), json!({})))
        .collect();

    // Long-polls waiting for the next revocation return within a second of it. Those woken
    // together share one read of the store per starting point: each still gets what comes
    // after its own `since` (a waiter from 1 is woken by revocation 1 and goes on waiting).
    let wait_from = |since: u64| {
        let url = format!("{}/v1/pki/revocations?since={since}&wait=30", ca.url);
        std::thread::spawn(move || {
            let started = Instant::now();
            let out = Command::new("curl")
                .args(["-sS", &url])
                .output()
                .expect("curl");
            (
                Instant::now(),
                started,
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
    };
    let from_0: Vec<_> = (0..6).map(|_| wait_from(0)).collect();
    let from_1: Vec<_> = (0..3).map(|_| wait_from(1)).collect();
    std::thread::sleep(Duration::from_millis(700));
    let revoked_at = Instant::now();
    ca.revoke(&s, &serials[0], "keyCompromise");
    for waiter in from_0 {
        let (returned, started, out) = waiter.join().unwrap();
        assert!(
            returned.duration_since(started) >= Duration::from_millis(500),
            "{out}"
        );
        assert!(
            returned.duration_since(revoked_at) < Duration::from_secs(1),
            "{out}"
        );
        let data = &json_of(&out)["data"];
        assert_eq!(data["next"], 1, "{out}");
        assert_eq!(data["revoked"].as_array().map(Vec::len), Some(1), "{out}");
        let entry = &data["revoked"][0];
        assert_eq!(entry["seq"], 1);
        assert_eq!(entry["serial"], serials[0].as_str());
        assert_eq!(entry["reason"], "keyCompromise");
        assert_eq!(entry["issuer"], "CN=Lifecycle Root");
        assert!(entry["revoked_at"]
            .as_i64()
            .is_some_and(|t| t > 1_700_000_000));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        from_1.iter().all(|w| !w.is_finished()),
        "a waiter from 1 returned on revocation 1"
    );
    ca.revoke(&s, &serials[1], "superseded");
    for waiter in from_1 {
        let (_, _, out) = waiter.join().unwrap();
        let data = &json_of(&out)["data"];
        assert_eq!(data["next"], 2, "{out}");
        assert_eq!(revoked_serials(data), [serials[1].as_str()], "{out}");
    }

    // Nothing new: wait=0 answers at once; a subscriber that was away gets what it missed.
    let (_, out) = feed("since=2");
    assert_eq!(json_of(&out)["data"], json!({"next": 2, "revoked": []}));
    ca.revoke(&s, &serials[2], "cessationOfOperation");
    let (_, out) = feed("since=1&wait=5");
    let data = &json_of(&out)["data"];
    assert_eq!(data["next"], 3);
    assert_eq!(
        revoked_serials(data),
        [serials[1].as_str(), serials[2].as_str()]
    );
    let (code, out) = feed("since=abc");
    assert_eq!(code, 400, "{out}");

    // Server-sent events: the same entries with their sequence numbers as ids, resumable with
    // Last-Event-ID.
    let sse = |extra: &[&str]| {
        let url = format!("{}/v1/pki/revocations", ca.url);
        let mut args = vec![
            "-sS",
            "-N",
            "--max-time",
            "2",
            "-H",
            "Accept: text/event-stream",
        ];
        args.extend(extra);
        args.push(&url);
        s.run("curl", &args).stdout
    };
    let all = sse(&[]);
    // The stream opens at once with a comment, before any entry or heartbeat.
    assert!(all.starts_with(": subscribed\n\n"), "{all}");
    for (i, serial) in serials.iter().enumerate() {
        assert!(all.contains(&format!("id: {}\n", i + 1)), "{all}");
        assert!(all.contains(serial.as_str()), "{all}");
    }
    assert!(all.contains("event: revoked"), "{all}");
    let resumed = sse(&["-H", "Last-Event-ID: 2"]);
    assert!(
        !resumed.contains("id: 1\n") && !resumed.contains("id: 2\n"),
        "{resumed}"
    );
    assert!(
        resumed.contains("id: 3\n") && resumed.contains(serials[2].as_str()),
        "{resumed}"
    );
}

/// A revocation made by another process on the server's store (`mutual revoke` on the same
/// data directory; another node of the same database is the same case) reaches OCSP, a
/// waiting feed subscriber and the CRL within the server's one-second catch-up — even for a
/// certificate whose "good" status the server has already answered and remembered.
#[test]
fn a_revocation_made_elsewhere_on_the_store_is_in_force_within_seconds() {
    let s = Story::new();
    let ca = Ca::start(&s);
    let serial = ca.issue(&s, "dave", "dave.example.com", json!({}));
    // Asked twice: the second answer comes from the server's memory of the certificate.
    for _ in 0..2 {
        let (out, err) = openssl_ocsp(&s, &ca, &["-cert", "dave.pem"]);
        assert!(out.contains("dave.pem: good"), "{out}\n{err}");
    }

    let url = format!("{}/v1/pki/revocations?since=0&wait=30", ca.url);
    let waiter = std::thread::spawn(move || {
        let out = Command::new("curl")
            .args(["-sS", &url])
            .output()
            .expect("curl");
        (
            Instant::now(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let revoked_at = Instant::now();
    s.mutual(&["revoke", &serial, "--reason", "keyCompromise"])
        .ok();

    // OCSP says revoked within the catch-up (1 s) plus scheduling; bounded polling.
    let mut said = String::new();
    while revoked_at.elapsed() < Duration::from_secs(5) {
        said = openssl_ocsp(&s, &ca, &["-cert", "dave.pem"]).0;
        if said.contains("dave.pem: revoked") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = revoked_at.elapsed();
    assert!(said.contains("dave.pem: revoked"), "{said}");
    assert!(said.contains("Reason: keyCompromise"), "{said}");
    assert!(took < Duration::from_millis(2500), "OCSP took {took:?}");

    // The waiting subscriber was woken with the entry.
    let (returned, out) = waiter.join().unwrap();
    assert!(
        returned.duration_since(revoked_at) < Duration::from_millis(2500),
        "{out}"
    );
    assert_eq!(
        json_of(&out)["data"]["revoked"][0]["serial"],
        serial.as_str(),
        "{out}"
    );

    let log = s.read("server.log");
    assert!(
        log.contains("revocations made elsewhere applied revocations=1"),
        "{log}"
    );

    // The served CRL was rebuilt with it.
    let (code, crl) = curl(&s, &[], &format!("{}/v1/pki/crl/pem", ca.url));
    assert_eq!(code, 200);
    s.write("served.crl", &crl);
    let text = s
        .run("openssl", &["crl", "-in", "served.crl", "-noout", "-text"])
        .ok()
        .stdout;
    let hex = serial.replace(':', "").to_ascii_uppercase();
    assert!(text.to_ascii_uppercase().contains(&hex), "{text}");
}

/// A request without a nonce (RFC 5019's profile, what TLS stacks send) may be answered with
/// the answer signed a moment ago for the same request; one with a nonce is signed for itself.
/// A revocation — through the API or by another process on the store — ends the reuse at once:
/// no answer saying "good" outlives the revocation.
#[test]
fn an_answer_without_a_nonce_is_reused_but_never_across_a_revocation() {
    let s = Story::new();
    let ca = Ca::start(&s);
    let url = format!("{}/v1/pki/ocsp", ca.url);
    let post = |req: &str, out: &str| {
        let (code, _) = curl(
            &s,
            &[
                "-H",
                "Content-Type: application/ocsp-request",
                "--data-binary",
                &format!("@{req}"),
            ],
            &url,
        );
        assert_eq!(code, 200);
        std::fs::copy(s.path("body.out"), s.path(out)).unwrap();
        std::fs::read(s.path(out)).unwrap()
    };
    let status = |resp: &str, cert: &str| {
        let shown = s.run(
            "openssl",
            &[
                "ocsp", "-respin", resp, "-issuer", "root.pem", "-cert", cert, "-CAfile",
                "root.pem",
            ],
        );
        assert!(
            shown.stderr.contains("Response verify OK"),
            "{}",
            shown.stderr
        );
        shown.stdout
    };
    let request = |cert: &str, out: &str, nonce: bool| {
        let mut args = vec!["ocsp", "-issuer", "root.pem", "-cert", cert, "-reqout", out];
        if !nonce {
            args.push("-no_nonce");
        }
        s.run("openssl", &args).ok();
    };
    let reused = || {
        let (code, text) = ca.root(&s, "GET", "sys/metrics", None);
        assert_eq!(code, 200, "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix("mutual_ocsp_reused_total "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .expect("mutual_ocsp_reused_total")
    };

    let bob = ca.issue(&s, "bob", "bob.example.com", json!({}));
    let _carol = ca.issue(&s, "carol", "carol.example.com", json!({}));
    request("bob.pem", "bob.req", false);
    request("bob.pem", "bob-nonce.req", true);
    request("carol.pem", "carol.req", false);

    let first = post("bob.req", "bob1.der");
    let again = post("bob.req", "bob2.der");
    assert_eq!(
        first, again,
        "the same request without a nonce was signed again"
    );
    assert!(status("bob2.der", "bob.pem").contains("bob.pem: good"));
    assert_eq!(reused(), 1);
    // With a nonce: signed for each request (the nonce is in the answer).
    let n1 = post("bob-nonce.req", "bobn1.der");
    let n2 = post("bob-nonce.req", "bobn2.der");
    assert_ne!(n1, n2);
    assert_eq!(reused(), 1);

    // Revoked through the API: the kept "good" is not served again.
    ca.revoke(&s, &bob, "keyCompromise");
    post("bob.req", "bob3.der");
    assert!(status("bob3.der", "bob.pem").contains("bob.pem: revoked"));

    // Revoked by another process on the store: within the catch-up, never "good" after it.
    post("carol.req", "carol1.der");
    assert!(status("carol1.der", "carol.pem").contains("carol.pem: good"));
    let serial = s
        .run(
            "openssl",
            &["x509", "-noout", "-serial", "-in", "carol.pem"],
        )
        .ok()
        .stdout;
    let serial = serial.trim().trim_start_matches("serial=").to_string();
    s.mutual(&["revoke", &serial]).ok();
    let started = Instant::now();
    let mut said = String::new();
    while started.elapsed() < Duration::from_secs(5) {
        post("carol.req", "carol2.der");
        said = status("carol2.der", "carol.pem");
        if said.contains("carol.pem: revoked") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(said.contains("carol.pem: revoked"), "{said}");
    assert!(started.elapsed() < Duration::from_millis(2500));
}
