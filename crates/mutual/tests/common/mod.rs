//! Helpers shared by the binary's integration tests: run the real `mutual`, `openssl`, and
//! friends, and build the story's PKI in a fresh directory.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use mutual::story_pki::StoryPki;

/// The real binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mutual"))
}

/// A fresh working directory with a store under `data/`.
pub struct Story {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Default for Story {
    fn default() -> Self {
        Story::new()
    }
}

impl Story {
    pub fn new() -> Story {
        Story {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    /// Runs `mutual --data DIR args…` in the story's directory.
    pub fn mutual(&self, args: &[&str]) -> Run {
        let out = Command::new(bin())
            .current_dir(self.dir.path())
            .env_remove("MUTUAL_DATA")
            .env_remove("MUTUAL_KEK")
            .arg("--data")
            .arg(self.data())
            .args(args)
            .output()
            .expect("running mutual");
        Run::from(out)
    }

    /// Runs any program in the story's directory.
    pub fn run(&self, program: &str, args: &[&str]) -> Run {
        let out = Command::new(program)
            .current_dir(self.dir.path())
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        Run::from(out)
    }

    pub fn read(&self, p: &str) -> String {
        std::fs::read_to_string(self.path(p)).unwrap_or_else(|e| panic!("reading {p}: {e}"))
    }

    pub fn write(&self, p: &str, text: &str) {
        std::fs::write(self.path(p), text).unwrap_or_else(|e| panic!("writing {p}: {e}"))
    }

    /// The story's PKI (`mutual::story_pki`): root `Local Root CA`, role `service`, www /
    /// alice / bob, the Alice and Bob intermediates with roles `alice` / `bob` and their
    /// leaves under `certs/alice/` / `certs/bob/`, every CA as PEM; keys of `key_type`.
    pub fn build(key_type: &str) -> Story {
        let s = Story::new();
        for step in StoryPki::new(key_type).steps() {
            let out = s.mutual(&step.argv()).ok();
            if let Some(file) = step.stdout_to {
                s.write(file, &out.stdout);
            }
        }
        s
    }
}

/// `openssl x509 -noout -serial` of a file, as mutual accepts it.
pub fn serial_of(s: &Story, file: &str) -> String {
    let out = s
        .run("openssl", &["x509", "-in", file, "-noout", "-serial"])
        .ok();
    out.stdout.trim().trim_start_matches("serial=").to_string()
}

/// `563C09…` (openssl) as `56:3c:09:…` (mutual, Vault).
pub fn colon_hex(openssl_serial: &str) -> String {
    let hex = openssl_serial.to_lowercase();
    let hex = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex
    };
    hex.as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap_or_default().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Alice over mTLS through `openssl s_client`, with half an HTTP/1.1 request sent: it is under
/// way (the server has read part of its head) until [`HalfRequest::finish`] sends the rest.
pub struct HalfRequest {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
}

impl HalfRequest {
    /// Connects to `127.0.0.1:port` as Alice and sends the request line for `path` and a Host
    /// header, then waits 1.5 s for the handshake and the half request to be read.
    pub fn start(s: &Story, port: u16, path: &str) -> HalfRequest {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = Command::new("openssl")
            .current_dir(s.dir.path())
            .args(["s_client", "-quiet", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "localhost", "-CAfile", "certs/root.pem"])
            .args(["-cert", "certs/alice.example.com.crt"])
            .args(["-key", "certs/alice.example.com.key"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let mut stdin = child.stdin.take().expect("stdin piped");
        stdin
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        HalfRequest { child, stdin }
    }

    /// Ends the request's head and returns everything the server sent until it closed.
    pub fn finish(mut self) -> String {
        use std::io::{Read, Write};
        self.stdin.write_all(b"\r\n").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.child
            .stdout
            .take()
            .expect("stdout piped")
            .read_to_string(&mut answer)
            .unwrap();
        let _ = self.child.wait();
        answer
    }
}
