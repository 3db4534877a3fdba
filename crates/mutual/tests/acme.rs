//! ACME on `mutual server` (issue 16) with real clients on loopback: lego (http-01, then
//! tls-alpn-01 on renewal) and certbot (`certonly --standalone`, `renew --force-renewal`,
//! `revoke`) against the server over TLS, its certificate from its own CA; then the bad
//! inputs, each answered with its ACME problem and nothing issued, through a small client
//! written here (ES256 JWS signed with aws-lc-rs, sent with curl).
//!
//! As Pebble does (`-httpPort`, `-tlsPort`, `-dnsserver`), each test gives the validator its
//! own challenge ports (`--acme-http-port`, `--acme-tls-port`) and resolves names through a
//! DNS fixture (tests/acme/dns.py) named by config/acme's `dns_resolver`, which answers
//! `www.example.com` with 127.0.0.1.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::{json, Value};

#[path = "support/child.rs"]
mod child;
use child::Running;

/// The store's database file in a data directory.
const DB_FILE: &str = "mutual.db";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mutual"))
}

fn have(program: &str, test: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        eprintln!("SKIP {test}: `{program}` is not installed (scripts/install-test-deps)");
    }
    ok
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed by its PID when dropped.
fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running a command")
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `mutual server` with a pki mount, a root, a role `service` and ACME enabled, served over
/// TLS with a certificate from that root; a DNS fixture; the challenge ports.
struct Acme {
    dir: tempfile::TempDir,
    token: String,
    /// `https://127.0.0.1:PORT`.
    addr: String,
    http_port: u16,
    tls_port: u16,
    _server: Running,
    _dns: Running,
}

fn start_server(data: &Path, extra: &[&str], log: &Path) -> (Running, String) {
    let mut child = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("server log"))
        .spawn()
        .expect("starting mutual server");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("the server's first line");
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr = line
        .trim()
        .strip_prefix("mutual server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    (Running::new(child), addr)
}

impl Acme {
    fn new(extra: &[&str]) -> Acme {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let init = ok(Command::new(bin())
            .args(["server", "init", "--data"])
            .arg(&data));
        let token = init
            .lines()
            .find_map(|l| l.strip_prefix("Root Token: "))
            .expect("the root token")
            .trim()
            .to_string();
        // First over plain HTTP, to make the CA and the server's own certificate.
        {
            let (_plain, addr) = start_server(&data, &[], &dir.path().join("plain.log"));
            let api = |method: &str, path: &str, body: Value| -> Value {
                let out = ok(Command::new("curl").args([
                    "-sS",
                    "-X",
                    method,
                    "-H",
                    &format!("X-Vault-Token: {token}"),
                    "-d",
                    &body.to_string(),
                    &format!("{addr}/v1/{path}"),
                ]));
                serde_json::from_str(&out).unwrap_or(Value::Null)
            };
            api("POST", "sys/mounts/pki", json!({"type": "pki"}));
            let root = api(
                "POST",
                "pki/root/generate/internal",
                json!({"common_name": "Local Root CA", "key_type": "ec", "ttl": "87600h"}),
            );
            std::fs::write(
                dir.path().join("root.pem"),
                root["data"]["certificate"]
                    .as_str()
                    .expect("root certificate"),
            )
            .unwrap();
            api(
                "POST",
                "pki/roles/service",
                json!({
                    "allowed_domains": "localhost,example.com", "allow_bare_domains": true,
                    "allow_subdomains": true, "allow_localhost": true, "allow_ip_sans": true,
                    "max_ttl": "720h", "key_type": "any",
                }),
            );
            let tls = api(
                "POST",
                "pki/issue/service",
                json!({"common_name": "localhost", "ip_sans": "127.0.0.1", "key_type": "ec"}),
            );
            std::fs::write(
                dir.path().join("server.crt"),
                tls["data"]["certificate"]
                    .as_str()
                    .expect("server certificate"),
            )
            .unwrap();
            std::fs::write(
                dir.path().join("server.key"),
                tls["data"]["private_key"].as_str().expect("server key"),
            )
            .unwrap();
        }
        let (http_port, tls_port, dns_port) = (free_port(), free_port(), free_port());
        std::fs::write(
            dir.path().join("dns.json"),
            json!({"www.example.com.": "127.0.0.1", "excluded.example.com.": "127.0.0.2"})
                .to_string(),
        )
        .unwrap();
        let mut dns = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acme/dns.py"))
            .arg(dns_port.to_string())
            .arg(dir.path().join("dns.json"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the DNS fixture");
        let mut ready = String::new();
        BufReader::new(dns.stdout.take().expect("piped"))
            .read_line(&mut ready)
            .expect("dns fixture ready");
        assert_eq!(ready.trim(), "ready");
        let (hp, tp) = (http_port.to_string(), tls_port.to_string());
        let crt = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        let mut args = vec![
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--acme-http-port",
            &hp,
            "--acme-tls-port",
            &tp,
        ];
        args.extend_from_slice(extra);
        let (server, addr) = start_server(&data, &args, &dir.path().join("server.log"));
        let acme = Acme {
            dir,
            token,
            addr,
            http_port,
            tls_port,
            _server: server,
            _dns: Running::new(dns),
        };
        acme.api(
            "POST",
            "pki/config/cluster",
            json!({"path": format!("{}/v1/pki", acme.addr)}),
        );
        acme.api(
            "POST",
            "pki/config/acme",
            json!({"enabled": true, "dns_resolver": format!("127.0.0.1:{dns_port}")}),
        );
        acme
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn root(&self) -> String {
        self.path("root.pem").display().to_string()
    }

    fn api(&self, method: &str, path: &str, body: Value) -> Value {
        let out = ok(Command::new("curl").args([
            "-sS",
            "--cacert",
            &self.root(),
            "-X",
            method,
            "-H",
            &format!("X-Vault-Token: {}", self.token),
            "-d",
            &body.to_string(),
            &format!("{}/v1/{path}", self.addr),
        ]));
        serde_json::from_str(&out).unwrap_or(Value::Null)
    }

    fn directory(&self) -> String {
        format!("{}/v1/pki/roles/service/acme/directory", self.addr)
    }

    /// Certificates the mount issued.
    fn issued_count(&self) -> usize {
        let v = self.api("LIST", "pki/certs", Value::Null);
        v["data"]["keys"].as_array().map_or(0, Vec::len)
    }

    /// `openssl verify` against the mount's root, and the certificate's SANs.
    fn verify(&self, cert: &Path) -> String {
        let out = ok(Command::new("openssl")
            .args(["verify", "-CAfile", &self.root()])
            .arg(cert));
        assert!(out.trim_end().ends_with(": OK"), "{out}");
        ok(Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(cert))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }
}

fn serial(cert: &Path) -> String {
    ok(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(cert))
}

#[test]
fn lego_http01_then_renewal_by_tls_alpn01() {
    if !have("lego", "lego_http01_then_renewal_by_tls_alpn01") {
        return;
    }
    let a = Acme::new(&[]);
    let lego = |extra: &[&str]| {
        ok(Command::new("lego")
            .env("LEGO_CA_CERTIFICATES", a.root())
            .args([
                "--server",
                &a.directory(),
                "--email",
                "ops@example.com",
                "--accept-tos",
                "--domains",
                "www.example.com",
                "--path",
            ])
            .arg(a.path("lego"))
            .args(extra))
    };
    lego(&[
        "--http",
        "--http.port",
        &format!("127.0.0.1:{}", a.http_port),
        "run",
    ]);
    let cert = a.path("lego/certificates/www.example.com.crt");
    let sans = a.verify(&cert);
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:www.example.com"),
        "{sans}"
    );
    let first = serial(&cert);
    lego(&[
        "--tls",
        "--tls.port",
        &format!("127.0.0.1:{}", a.tls_port),
        "renew",
        "--days",
        "1000",
        "--no-random-sleep",
    ]);
    let sans = a.verify(&cert);
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:www.example.com"),
        "{sans}"
    );
    assert_ne!(serial(&cert), first, "renewal issued a new certificate");
    let log = a.log();
    assert!(
        log.contains("challenge=http-01 identifier=www.example.com decision=\"valid\""),
        "{log}"
    );
    assert!(
        log.contains("challenge=tls-alpn-01 identifier=www.example.com decision=\"valid\""),
        "{log}"
    );
    let metrics = ok(Command::new("curl").args([
        "-sS",
        "--cacert",
        &a.root(),
        "-H",
        &format!("X-Vault-Token: {}", a.token),
        &format!("{}/v1/sys/metrics", a.addr),
    ]));
    assert!(
        metrics.contains("mutual_acme_certificates_total 2"),
        "{metrics}"
    );
}

#[test]
fn certbot_standalone_renew_and_revoke() {
    if !have("certbot", "certbot_standalone_renew_and_revoke") {
        return;
    }
    let a = Acme::new(&[]);
    let certbot = |args: &[&str]| {
        ok(Command::new("certbot")
            .env("REQUESTS_CA_BUNDLE", a.root())
            .args(args)
            .args(["--non-interactive", "--config-dir"])
            .arg(a.path("cb/config"))
            .arg("--work-dir")
            .arg(a.path("cb/work"))
            .arg("--logs-dir")
            .arg(a.path("cb/logs")))
    };
    let port = a.http_port.to_string();
    certbot(&[
        "certonly",
        "--standalone",
        "--agree-tos",
        "--email",
        "ops@example.com",
        "--server",
        &a.directory(),
        "--http-01-port",
        &port,
        "--http-01-address",
        "127.0.0.1",
        "-d",
        "www.example.com",
    ]);
    let cert = a.path("cb/config/live/www.example.com/cert.pem");
    let sans = a.verify(&cert);
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:www.example.com"),
        "{sans}"
    );
    let first = serial(&cert);
    certbot(&["renew", "--force-renewal", "--no-random-sleep-on-renew"]);
    a.verify(&cert);
    let second = serial(&cert);
    assert_ne!(second, first);
    certbot(&[
        "revoke",
        "--cert-name",
        "www.example.com",
        "--no-delete-after-revoke",
        "--server",
        &a.directory(),
    ]);
    let hex = second
        .trim()
        .trim_start_matches("serial=")
        .to_ascii_lowercase();
    let colon: Vec<String> = hex
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let rec = a.api("GET", &format!("pki/cert/{}", colon.join(":")), Value::Null);
    assert!(
        rec["data"]["revocation_time"].as_i64().unwrap_or(0) > 0,
        "{rec}"
    );
}

/// An answer: status, headers (lowercased names), JSON body.
struct Resp {
    status: u16,
    headers: String,
    body: Value,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().to_string())
        })
    }

    /// The problem's type code and detail.
    fn problem(&self) -> (String, String) {
        let t = self.body["type"].as_str().unwrap_or_default();
        (
            t.trim_start_matches("urn:ietf:params:acme:error:")
                .to_string(),
            self.body["detail"].as_str().unwrap_or_default().to_string(),
        )
    }
}

fn curl(a: &Acme, args: &[&str], body: Option<&str>) -> Resp {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-i", "--cacert", &a.root()]).args(args);
    if let Some(b) = body {
        let f = a.path(&format!("req-{}.json", std::process::id()));
        std::fs::write(&f, b).unwrap();
        cmd.args(["-H", "Content-Type: application/jose+json", "--data-binary"])
            .arg(format!("@{}", f.display()));
    }
    let out = ok(&mut cmd);
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Resp {
        status,
        headers: head.to_string(),
        body: serde_json::from_str(rest).unwrap_or(Value::String(rest.to_string())),
    }
}

/// A flattened JWS over `header` and `payload`, signed with `key` (ES256).
fn sign_jws(key: &aws_lc_rs::signature::EcdsaKeyPair, header: &Value, payload: &str) -> Value {
    let protected = mutual_acme::b64url(header.to_string().as_bytes());
    let payload = mutual_acme::b64url(payload.as_bytes());
    let sig = key
        .sign(
            &aws_lc_rs::rand::SystemRandom::new(),
            format!("{protected}.{payload}").as_bytes(),
        )
        .unwrap();
    json!({"protected": protected, "payload": payload, "signature": mutual_acme::b64url(sig.as_ref())})
}

fn p256() -> (aws_lc_rs::signature::EcdsaKeyPair, mutual_acme::Jwk) {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let jwk = mutual_acme::Jwk::from_public_key(&mutual_acme::PublicKey::P256(
        key.public_key().as_ref().to_vec(),
    ));
    (key, jwk)
}

/// A small ACME client with an ES256 key: enough to send each bad input on purpose.
struct Client<'a> {
    a: &'a Acme,
    key: aws_lc_rs::signature::EcdsaKeyPair,
    jwk: mutual_acme::Jwk,
    kid: Option<String>,
    base: String,
}

impl<'a> Client<'a> {
    fn new(a: &'a Acme) -> Client<'a> {
        let (key, jwk) = p256();
        let base = format!("{}/v1/pki/roles/service/acme/", a.addr);
        Client {
            a,
            key,
            jwk,
            kid: None,
            base,
        }
    }

    fn nonce(&self) -> String {
        let r = curl(self.a, &["-I", &format!("{}new-nonce", self.base)], None);
        r.header("replay-nonce").expect("a Replay-Nonce")
    }

    fn jws(&self, url: &str, nonce: &str, payload: &str) -> Value {
        let mut h = json!({"alg": "ES256", "nonce": nonce, "url": url});
        match &self.kid {
            Some(k) => h["kid"] = k.clone().into(),
            None => h["jwk"] = serde_json::to_value(&self.jwk).unwrap(),
        }
        sign_jws(&self.key, &h, payload)
    }

    fn post(&self, url: &str, payload: Option<Value>) -> Resp {
        let payload = payload.map(|p| p.to_string()).unwrap_or_default();
        let body = self.jws(url, &self.nonce(), &payload);
        curl(self.a, &[url], Some(&body.to_string()))
    }

    fn register(&mut self) -> Resp {
        let r = self.post(
            &format!("{}new-account", self.base),
            Some(json!({"termsOfServiceAgreed": true})),
        );
        self.kid = r.header("location");
        r
    }

    fn order(&self, name: &str) -> Resp {
        self.post(
            &format!("{}new-order", self.base),
            Some(json!({"identifiers": [{"type": "dns", "value": name}]})),
        )
    }

    /// Answers the order's `kind` challenge and waits (at most 30 s) for its authorization to
    /// be decided; returns the authorization and the challenge's token.
    fn solve(&self, order: &Resp, kind: &str, before: impl FnOnce(&str)) -> (Value, String) {
        let authz_url = order.body["authorizations"][0]
            .as_str()
            .expect("an authorization")
            .to_string();
        let authz = self.post(&authz_url, None).body;
        let ch = authz["challenges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == kind)
            .expect("the challenge")
            .clone();
        let token = ch["token"].as_str().unwrap().to_string();
        before(&token);
        let r = self.post(ch["url"].as_str().unwrap(), Some(json!({})));
        assert_eq!(r.status, 200, "{}", r.body);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let now = self.post(&authz_url, None).body;
            if now["status"] != "pending" {
                return (now, token);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the authorization stayed pending for 30 s");
    }

    fn key_authorization(&self, token: &str) -> String {
        mutual_acme::key_authorization(token, &self.jwk.thumbprint().unwrap())
    }
}

/// The failed challenge's problem (type, detail) of a decided authorization.
fn challenge_problem(authz: &Value, kind: &str) -> (String, String) {
    let ch = authz["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == kind)
        .unwrap();
    (
        ch["error"]["type"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("urn:ietf:params:acme:error:")
            .to_string(),
        ch["error"]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

#[test]
fn bad_inputs_get_their_acme_problem_and_nothing_is_issued() {
    let a = Acme::new(&[
        "--acme-exclude",
        "127.0.0.2/32",
        "--acme-timeout",
        "2s",
        "--acme-attempts",
        "1",
    ]);
    let issued_before = a.issued_count();
    let mut c = Client::new(&a);
    assert_eq!(c.register().status, 201);
    let account = c.kid.clone().expect("an account URL");

    // A replayed nonce.
    let nonce = c.nonce();
    let body = c.jws(&account, &nonce, "").to_string();
    assert_eq!(curl(&a, &[&account], Some(&body)).status, 200);
    let replay = curl(&a, &[&account], Some(&body));
    assert_eq!(
        (replay.status, replay.problem().0.as_str()),
        (400, "badNonce")
    );
    assert!(
        replay
            .problem()
            .1
            .contains("is unknown, already used or expired"),
        "{}",
        replay.body
    );
    assert!(
        replay.header("replay-nonce").is_some(),
        "a problem carries a fresh nonce"
    );

    // A bad JWS signature.
    let mut forged = c.jws(&account, &c.nonce(), "");
    let mut sig = forged["signature"]
        .as_str()
        .unwrap()
        .to_string()
        .into_bytes();
    sig[3] = if sig[3] == b'A' { b'B' } else { b'A' };
    forged["signature"] = String::from_utf8(sig).unwrap().into();
    let r = curl(&a, &[&account], Some(&forged.to_string()));
    assert_eq!(
        r.problem(),
        (
            "malformed".into(),
            "the JWS signature does not verify with the signer's key".into()
        )
    );

    // An oversized request.
    let r = curl(
        &a,
        &[&account],
        Some(&format!("{{\"protected\":\"{}\"}}", "a".repeat(70_000))),
    );
    assert_eq!(r.problem().0, "malformed");
    assert!(r.problem().1.ends_with("the limit is 65536"), "{}", r.body);

    // A POST that does not say it is a JWS.
    let r = curl(
        &a,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            "{}",
            &format!("{}new-order", c.base),
        ],
        None,
    );
    assert_eq!(
        (r.status, r.problem().0.as_str()),
        (415, "malformed"),
        "{}",
        r.body
    );

    // A name the role refuses: the problem names the rule.
    let r = c.order("www.evil.org");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.problem(),
        ("rejectedIdentifier".into(), "\"www.evil.org\" is not allowed by role \"service\" (allowed_domains: localhost, example.com) with allow_bare_domains, allow_subdomains, allow_localhost on; add its domain with --allowed-domains, or use --allow-any-name".into())
    );

    // Challenges that fail: connection refused, timeout, excluded address, wrong answer.
    let (authz, _) = c.solve(&c.order("www.example.com"), "http-01", |_| {});
    assert_eq!(authz["status"], "invalid");
    let (kind, detail) = challenge_problem(&authz, "http-01");
    assert_eq!(kind, "connection", "{detail}");
    assert!(detail.contains("Connection refused"), "{detail}");

    let silent = std::net::TcpListener::bind(("127.0.0.1", a.tls_port)).unwrap();
    let (authz, _) = c.solve(&c.order("www.example.com"), "tls-alpn-01", |_| {});
    drop(silent);
    assert_eq!(
        challenge_problem(&authz, "tls-alpn-01"),
        (
            "connection".into(),
            "tls-alpn-01 of \"www.example.com\": no answer within 2s".into()
        )
    );

    let (authz, _) = c.solve(&c.order("excluded.example.com"), "http-01", |_| {});
    let (kind, detail) = challenge_problem(&authz, "http-01");
    assert_eq!(kind, "rejectedIdentifier");
    assert!(
        detail.contains("resolves only to addresses excluded from validation (127.0.0.2)"),
        "{detail}"
    );

    let (_http, challenge_dir) = challenge_server(&a);
    let (authz, _) = c.solve(&c.order("www.example.com"), "http-01", |t| {
        std::fs::write(challenge_dir.join(t), "not-the-key-authorization").unwrap();
    });
    let (kind, detail) = challenge_problem(&authz, "http-01");
    assert_eq!(kind, "incorrectResponse");
    assert!(
        detail.contains("answered \"not-the-key-authorization\""),
        "{detail}"
    );

    // A ready order, finalized with an oversized CSR, then with a CSR for other names.
    let order = c.order("www.example.com");
    let order_url = order.header("location").unwrap();
    let (authz, _) = c.solve(&order, "http-01", |t| {
        std::fs::write(challenge_dir.join(t), c.key_authorization(t)).unwrap();
    });
    assert_eq!(authz["status"], "valid", "{authz}");
    let finalize = order.body["finalize"].as_str().unwrap();
    let big = mutual_acme::b64url(&vec![0x30u8; 20_000]);
    let r = c.post(finalize, Some(json!({"csr": big})));
    assert_eq!(
        r.problem(),
        (
            "badCSR".into(),
            "the CSR is 20000 bytes; the limit is 16384".into()
        )
    );
    let csr = ok(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
        ])
        .arg(a.path("other.key"))
        .args(["-subj", "/CN=other.example.com", "-outform", "DER", "-out"])
        .arg(a.path("other.der")));
    drop(csr);
    let der = std::fs::read(a.path("other.der")).unwrap();
    let r = c.post(finalize, Some(json!({"csr": mutual_acme::b64url(&der)})));
    assert_eq!(
        r.problem(),
        (
            "badCSR".into(),
            "the CSR asks for [other.example.com] but the order is for [www.example.com]".into()
        )
    );
    let still = c.post(&order_url, None).body;
    assert_eq!(still["status"], "ready");
    assert!(still.get("certificate").is_none());

    // An account key reused after its account was deactivated (its pending authorizations
    // are deactivated with it).
    let pending = c.order("www.example.com");
    let pending_authz = pending.body["authorizations"][0]
        .as_str()
        .unwrap()
        .to_string();
    let r = c.post(&account, Some(json!({"status": "deactivated"})));
    assert_eq!(r.body["status"], "deactivated");
    let r = c.post(&order_url, None);
    assert_eq!(r.problem().0, "unauthorized");
    assert!(r.problem().1.ends_with("is deactivated"), "{}", r.body);
    c.kid = None;
    let r = c.post(
        &format!("{}new-account", c.base),
        Some(json!({"termsOfServiceAgreed": true})),
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.problem().0, "unauthorized");
    assert!(
        r.problem()
            .1
            .contains("was deactivated with it; use a new key"),
        "{}",
        r.body
    );

    let id = pending_authz.rsplit('/').next().unwrap();
    let body = ok(Command::new("sqlite3")
        .arg(a.path("data").join(DB_FILE))
        .arg(format!(
            "SELECT body FROM acme_objects WHERE kind = 'authz' AND id = '{id}'"
        )));
    assert!(body.contains("\"status\":\"deactivated\""), "{body}");
    assert_eq!(a.issued_count(), issued_before, "nothing was issued");
    let log = a.log();
    assert!(
        log.contains("decision=\"refused\" problem=\"badNonce\""),
        "{log}"
    );
    assert!(
        log.contains("decision=\"invalid\" problem=\"connection\""),
        "{log}"
    );
}

#[test]
fn lego_dns01_wildcard_with_an_external_account_binding() {
    if !have(
        "lego",
        "lego_dns01_wildcard_with_an_external_account_binding",
    ) {
        return;
    }
    let a = Acme::new(&[]);
    a.api(
        "POST",
        "pki/config/acme",
        json!({"eab_policy": "new-account-required"}),
    );
    let dir = ok(Command::new("curl").args(["-sS", "--cacert", &a.root(), &a.directory()]));
    assert!(dir.contains("\"externalAccountRequired\":true"), "{dir}");
    // lego's exec DNS provider calls this with `present|cleanup FQDN VALUE`: the TXT record
    // goes into the DNS fixture's table.
    let table = a.path("dns.json");
    let script = a.path("present.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec python3 - \"$@\" <<'PY'\nimport json, sys\nmode, fqdn, value = sys.argv[1:4]\n\
             t = json.load(open({table:?}))\ntxt = t.setdefault('txt', {{}})\n\
             txt.setdefault(fqdn, []).append(value) if mode == 'present' else txt.pop(fqdn, None)\n\
             json.dump(t, open({table:?}, 'w'))\nPY\n",
            table = table.display().to_string()
        ),
    )
    .unwrap();
    ok(Command::new("chmod").arg("+x").arg(&script));
    let dns = a.api("GET", "pki/config/acme", Value::Null)["data"]["dns_resolver"]
        .as_str()
        .unwrap()
        .to_string();
    let lego = |eab: &[&str]| {
        run(Command::new("lego")
            .env("LEGO_CA_CERTIFICATES", a.root())
            .env("EXEC_PATH", &script)
            .args([
                "--server",
                &a.directory(),
                "--email",
                "ops@example.com",
                "--accept-tos",
                "--domains",
                "*.example.com",
            ])
            .args([
                "--dns",
                "exec",
                "--dns.disable-cp",
                "--dns.resolvers",
                &dns,
                "--path",
            ])
            .arg(a.path("lego"))
            .args(eab)
            .arg("run"))
    };
    // Without a binding: refused, and nothing issued.
    let before = a.issued_count();
    let refused = lego(&[]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr).into_owned()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(err.contains("External Account Binding"), "{err}");
    // lego stops on the directory's meta; the server itself refuses too.
    let r = Client::new(&a).register();
    assert_eq!(r.problem().0, "externalAccountRequired", "{}", r.body);
    let eab = a.api("POST", "pki/roles/service/acme/new-eab", json!({}));
    let (kid, key) = (
        eab["data"]["id"].as_str().unwrap(),
        eab["data"]["key"].as_str().unwrap(),
    );
    assert_eq!(
        eab["data"]["acme_directory"],
        "roles/service/acme/directory"
    );
    let out = lego(&["--eab", "--kid", kid, "--hmac", key]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sans = a.verify(&a.path("lego/certificates/_.example.com.crt"));
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:*.example.com"),
        "{sans}"
    );
    assert_eq!(a.issued_count(), before + 1);
    // The key is spent.
    let listed = a.api("LIST", "pki/eab", Value::Null);
    assert!(
        listed["data"]["keys"]
            .as_array()
            .is_none_or(|k| k.is_empty()),
        "{listed}"
    );
    assert!(
        a.log()
            .contains("challenge=dns-01 identifier=example.com decision=\"valid\""),
        "{}",
        a.log()
    );
}

/// Waits (at most 60 s) until `https://www.example.com:PORT/` answers with a certificate that
/// chains to mutual's root, then returns that certificate's file.
fn served_certificate(a: &Acme, port: u16, name: &str) -> (PathBuf, String) {
    let url = format!("https://www.example.com:{port}/");
    let resolve = format!("www.example.com:{port}:127.0.0.1");
    let start = Instant::now();
    let body = loop {
        let out = run(Command::new("curl").args([
            "-sS",
            "--max-time",
            "5",
            "--resolve",
            &resolve,
            "--cacert",
            &a.root(),
            &url,
        ]));
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never served a certificate from mutual: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let out = run(Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-servername",
            "www.example.com",
        ])
        .stdin(Stdio::null()));
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text
        .find("-----BEGIN CERTIFICATE-----")
        .expect("a certificate from s_client");
    let end = text.find("-----END CERTIFICATE-----").expect("its end")
        + "-----END CERTIFICATE-----".len();
    let file = a.path(&format!("{name}-served.pem"));
    std::fs::write(&file, format!("{}\n", &text[begin..end])).unwrap();
    (file, body)
}

#[test]
fn caddy_obtains_its_certificate_and_serves_https_with_it() {
    if !have(
        "caddy",
        "caddy_obtains_its_certificate_and_serves_https_with_it",
    ) {
        return;
    }
    let a = Acme::new(&[]);
    let caddyfile = a.path("Caddyfile");
    std::fs::write(
        &caddyfile,
        format!(
            "{{\n\tacme_ca {dir}\n\tacme_ca_root {root}\n\temail ops@example.com\n\thttp_port {http}\n\
             \thttps_port {tls}\n\tadmin off\n\tdefault_bind 127.0.0.1\n\tstorage file_system {store}\n\
             \tskip_install_trust\n}}\nwww.example.com {{\n\trespond \"hello from caddy\"\n}}\n",
            dir = a.directory(),
            root = a.root(),
            http = a.http_port,
            tls = a.tls_port,
            store = a.path("caddy").display()
        ),
    )
    .unwrap();
    let _caddy = Running::new(
        Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&caddyfile)
            .env("HOME", a.dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(a.path("caddy.log")).unwrap())
            .spawn()
            .expect("starting caddy"),
    );
    let (cert, body) = served_certificate(&a, a.tls_port, "caddy");
    assert_eq!(body, "hello from caddy");
    let sans = a.verify(&cert);
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:www.example.com"),
        "{sans}"
    );
}

#[test]
fn traefik_obtains_a_routers_certificate_and_serves_with_it() {
    if !have(
        "traefik",
        "traefik_obtains_a_routers_certificate_and_serves_with_it",
    ) {
        return;
    }
    let a = Acme::new(&[]);
    let echo_port = free_port();
    let _echo = Running::new(
        Command::new(bin())
            .args([
                "serve",
                "echo",
                "--listen",
                &format!("127.0.0.1:{echo_port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mutual serve echo"),
    );
    let dynamic = a.path("traefik-dyn.yaml");
    std::fs::write(
        &dynamic,
        format!(
            "http:\n  routers:\n    hello:\n      rule: \"Host(`www.example.com`)\"\n      entryPoints: [websecure]\n\
             \x20     service: echo\n      tls:\n        certResolver: mutual\n  services:\n    echo:\n\
             \x20     loadBalancer:\n        servers:\n          - url: \"http://127.0.0.1:{echo_port}\"\n"
        ),
    )
    .unwrap();
    let config = a.path("traefik.yaml");
    std::fs::write(
        &config,
        format!(
            "entryPoints:\n  web:\n    address: \"127.0.0.1:{http}\"\n  websecure:\n    address: \"127.0.0.1:{tls}\"\n\
             certificatesResolvers:\n  mutual:\n    acme:\n      caServer: {dir}\n      email: ops@example.com\n\
             \x20     storage: {store}\n      httpChallenge:\n        entryPoint: web\n\
             providers:\n  file:\n    filename: {dynamic}\n",
            http = a.http_port,
            tls = a.tls_port,
            dir = a.directory(),
            store = a.path("traefik-acme.json").display(),
            dynamic = dynamic.display()
        ),
    )
    .unwrap();
    let _traefik = Running::new(
        Command::new("traefik")
            .arg(format!("--configFile={}", config.display()))
            .env("LEGO_CA_CERTIFICATES", a.root())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(a.path("traefik.log")).unwrap())
            .spawn()
            .expect("starting traefik"),
    );
    let (cert, body) = served_certificate(&a, a.tls_port, "traefik");
    assert!(body.contains("\"host\": \"www.example.com:"), "{body}");
    let sans = a.verify(&cert);
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("DNS:www.example.com"),
        "{sans}"
    );
}

/// Serves `.well-known/acme-challenge/` from a directory on the http-01 port.
fn challenge_server(a: &Acme) -> (Running, PathBuf) {
    let web = a.path("web");
    let dir = web.join(".well-known/acme-challenge");
    std::fs::create_dir_all(&dir).unwrap();
    let p = Running::new(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &a.http_port.to_string(),
                "--directory",
            ])
            .arg(&web)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let up = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", a.http_port)).is_err()
        && up.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    (p, dir)
}

#[test]
fn key_change_contact_update_and_revocation_by_the_certificates_key() {
    use aws_lc_rs::signature::KeyPair;
    let a = Acme::new(&[]);
    let (_web, challenges) = challenge_server(&a);
    let mut c = Client::new(&a);
    c.register();
    let account = c.kid.clone().unwrap();
    let r = c.post(
        &account,
        Some(json!({"contact": ["mailto:new@example.com"]})),
    );
    assert_eq!(r.body["contact"], json!(["mailto:new@example.com"]));
    let r = c.post(&account, Some(json!({"contact": ["tel:+1"]})));
    assert_eq!(
        r.problem(),
        (
            "malformed".into(),
            "contact \"tel:+1\" is not a mailto: URL".into()
        )
    );

    // Key change: the inner JWS must name this account and its current key.
    let (new_key, new_jwk) = p256();
    let url = format!("{}key-change", c.base);
    let inner = |account: &str, old: &mutual_acme::Jwk| {
        sign_jws(
            &new_key,
            &json!({"alg": "ES256", "url": url, "jwk": new_jwk}),
            &json!({"account": account, "oldKey": old}).to_string(),
        )
    };
    let (_, stranger) = p256();
    let r = c.post(&url, Some(inner(&account, &stranger)));
    assert_eq!(
        r.problem(),
        (
            "unauthorized".into(),
            "the inner payload's oldKey is not the account's current key".into()
        )
    );
    let r = c.post(&url, Some(inner(&account, &c.jwk)));
    assert_eq!(r.status, 200, "{}", r.body);
    let old_key = std::mem::replace(&mut c.key, new_key);
    c.jwk = new_jwk.clone();
    assert_eq!(
        c.post(&account, None).status,
        200,
        "the new key signs for the account"
    );
    let stale = sign_jws(
        &old_key,
        &json!({"alg": "ES256", "nonce": c.nonce(), "url": account, "kid": account}),
        "",
    );
    let r = curl(&a, &[&account], Some(&stale.to_string()));
    assert_eq!(
        r.problem().1,
        "the JWS signature does not verify with the signer's key"
    );

    // A certificate whose key the client holds, from a CSR made by openssl with that key.
    let (cert_key, cert_jwk) = p256();
    let pkcs8 = cert_key.to_pkcs8v1().unwrap();
    std::fs::write(
        a.path("leaf.key"),
        pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec())),
    )
    .unwrap();
    ok(Command::new("openssl")
        .args(["req", "-new", "-key"])
        .arg(a.path("leaf.key"))
        .args([
            "-subj",
            "/CN=www.example.com",
            "-addext",
            "subjectAltName=DNS:www.example.com",
            "-outform",
            "DER",
            "-out",
        ])
        .arg(a.path("leaf.csr")));
    let order = c.order("www.example.com");
    let order_url = order.header("location").unwrap();
    let (authz, _) = c.solve(&order, "http-01", |t| {
        std::fs::write(challenges.join(t), c.key_authorization(t)).unwrap()
    });
    assert_eq!(authz["status"], "valid", "{authz}");
    let csr = std::fs::read(a.path("leaf.csr")).unwrap();
    let done = c.post(
        order.body["finalize"].as_str().unwrap(),
        Some(json!({"csr": mutual_acme::b64url(&csr)})),
    );
    assert_eq!(done.body["status"], "valid", "{}", done.body);
    let chain = c.post(done.body["certificate"].as_str().unwrap(), None);
    assert_eq!(
        chain.header("content-type").as_deref(),
        Some("application/pem-certificate-chain")
    );
    let text = chain.body.as_str().unwrap().to_string();
    assert_eq!(
        text.matches("BEGIN CERTIFICATE").count(),
        2,
        "the leaf and the root: {text}"
    );
    std::fs::write(a.path("leaf.pem"), &text).unwrap();
    a.verify(&a.path("leaf.pem"));
    assert_eq!(c.post(&order_url, None).body["status"], "valid");
    let der = pem::parse(&text).unwrap().into_contents();
    assert_eq!(cert_key.public_key().as_ref().len(), 65);

    // Another account may not revoke it; its key may, once.
    let mut other = Client::new(&a);
    other.register();
    let revoke = format!("{}revoke-cert", c.base);
    let r = other.post(
        &revoke,
        Some(json!({"certificate": mutual_acme::b64url(&der)})),
    );
    assert_eq!(r.problem().0, "unauthorized");
    assert!(
        r.problem().1.ends_with("was issued to another account"),
        "{}",
        r.body
    );
    let by_key = |nonce: String| {
        sign_jws(
            &cert_key,
            &json!({"alg": "ES256", "nonce": nonce, "url": revoke, "jwk": cert_jwk}),
            &json!({"certificate": mutual_acme::b64url(&der), "reason": 1}).to_string(),
        )
    };
    let r = curl(&a, &[&revoke], Some(&by_key(c.nonce()).to_string()));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = curl(&a, &[&revoke], Some(&by_key(c.nonce()).to_string()));
    assert_eq!(r.problem().0, "alreadyRevoked", "{}", r.body);
}

#[test]
fn an_ip_address_identifier_validated_by_http01() {
    let a = Acme::new(&[]);
    let (_web, challenges) = challenge_server(&a);
    let mut c = Client::new(&a);
    c.register();
    let order = c.post(
        &format!("{}new-order", c.base),
        Some(json!({"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})),
    );
    assert_eq!(order.status, 201, "{}", order.body);
    let (authz, _) = c.solve(&order, "http-01", |t| {
        std::fs::write(challenges.join(t), c.key_authorization(t)).unwrap()
    });
    assert_eq!(authz["status"], "valid", "{authz}");
    ok(Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
        ])
        .arg(a.path("ip.key"))
        .args([
            "-subj",
            "/O=ip",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-outform",
            "DER",
            "-out",
        ])
        .arg(a.path("ip.csr")));
    let csr = std::fs::read(a.path("ip.csr")).unwrap();
    let done = c.post(
        order.body["finalize"].as_str().unwrap(),
        Some(json!({"csr": mutual_acme::b64url(&csr)})),
    );
    assert_eq!(done.body["status"], "valid", "{}", done.body);
    let chain = c.post(done.body["certificate"].as_str().unwrap(), None);
    std::fs::write(a.path("ip.pem"), chain.body.as_str().unwrap()).unwrap();
    let sans = a.verify(&a.path("ip.pem"));
    assert_eq!(
        sans.lines().nth(1).map(str::trim),
        Some("IP Address:127.0.0.1"),
        "{sans}"
    );
}

#[test]
fn an_account_beyond_the_operators_rate_limit_is_told_to_wait() {
    let a = Acme::new(&["--acme-rate-limit", "5"]);
    let mut c = Client::new(&a);
    assert_eq!(c.register().status, 201);
    let account = c.kid.clone().expect("an account URL");
    for i in 1..=5 {
        let r = c.post(&account, None);
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    let r = c.post(&account, None);
    assert_eq!(r.status, 429, "{}", r.body);
    let (kind, detail) = r.problem();
    assert_eq!(kind, "rateLimited", "{}", r.body);
    assert!(
        detail.contains("made more than 5 requests this minute"),
        "{detail}"
    );
    assert!(r.header("retry-after").is_some(), "{}", r.headers);
}
