//! A `mutual server` CA for the lifecycle tests (`agent.rs`, `enrolled.rs`): a store made with
//! `mutual server init`, a `pki` mount with a root and a role `service`, on a fixed port so that
//! a test can stop it across a renewal point and start it again at the same address.

#![allow(dead_code)] // each test binary uses the part it needs

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mutual"))
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `mutual server --data DIR` on a fixed port (so that it can be stopped and started
/// again at the same address), with a `pki` mount, a root and a role `service`.
pub struct Ca {
    pub child: Option<Child>,
    pub data: PathBuf,
    pub port: u16,
    pub token: String,
}

impl Drop for Ca {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Ca {
    pub fn new(dir: &Path) -> Ca {
        let data = dir.join("ca-data");
        let out = Command::new(bin())
            .args(["server", "init", "--data"])
            .arg(&data)
            .output()
            .expect("mutual server init");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("Root Token: "))
            .expect("a root token")
            .trim()
            .to_string();
        let mut ca = Ca {
            child: None,
            data,
            port: free_port(),
            token,
        };
        ca.start();
        let (code, body) = ca.call("POST", "sys/mounts/pki", r#"{"type":"pki"}"#);
        assert!(code < 300, "{code} {body}");
        let (code, body) = ca.call(
            "POST",
            "pki/root/generate/internal",
            r#"{"common_name":"Agent Test Root","ttl":"87600h"}"#,
        );
        assert_eq!(code, 200, "{body}");
        let (code, body) = ca.call(
            "POST",
            "pki/roles/service",
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"allow_localhost":true,"allow_ip_sans":true,"max_ttl":"720h","ttl":"1h","key_type":"any"}"#,
        );
        assert!(code < 300, "{code} {body}");
        ca
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let mut child = Command::new(bin())
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--data",
            ])
            .arg(&self.data)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mutual server");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("the server's first line");
        assert!(line.starts_with("mutual server listening on "), "{line}");
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn call(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method])
            .args(["-H", &format!("X-Vault-Token: {}", self.token)])
            .args(["--data-binary", body])
            .arg(format!("{}/v1/{path}", self.addr()))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}
