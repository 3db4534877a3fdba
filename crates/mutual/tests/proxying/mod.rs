//! Helpers of the proxy tests: processes we start (killed by their own PID), curl with the
//! story's identities, `serve echo` and `mutual proxy` from flags.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{self, Story};

// A test that starts both servers and proxies loads this file twice, once per helper.
#[allow(clippy::duplicate_mod)]
#[path = "../stopping/mod.rs"]
mod stopping;

/// A process we started, ended by its own PID when dropped; its output lines are kept.
pub struct Proc {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub port: u16,
    /// A `server --dev`: stopped with SIGTERM, so that it removes its store from /dev/shm.
    dev: bool,
}

impl Proc {
    /// Starts `mutual ARGS` in `dir` and waits for the line naming `scheme://127.0.0.1:PORT`.
    pub fn start(dir: &Path, args: &[&str], scheme: &str) -> Proc {
        let mut child = Command::new(common::bin())
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("MUTUAL_LOG", "info")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mutual");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<u16>();
        let needle = format!("{scheme}://127.0.0.1:");
        for stream in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let (sink, tx, needle) = (lines.clone(), tx.clone(), needle.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(i) = line.find(&needle) {
                        let port: String = line[i + needle.len()..]
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .collect();
                        if let Ok(p) = port.parse() {
                            let _ = tx.send(p);
                        }
                    }
                    sink.lock().unwrap().push(line);
                }
            });
        }
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("mutual {args:?} did not start: {:?}", lines.lock().unwrap());
            }
        };
        let dev = args.contains(&"--dev");
        Proc {
            child,
            lines,
            port,
            dev,
        }
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Whether its port refuses new connections within a second (after SIGTERM).
    pub fn port_closes(&self) -> bool {
        stopping::refuses_within(self.port, Duration::from_secs(1))
    }

    /// SIGTERM, as a service manager stops it.
    pub fn terminate(&mut self) {
        assert!(stopping::terminate(&mut self.child), "SIGTERM not sent");
    }

    /// SIGHUP, as an operator asks for a reload.
    pub fn hang_up(&mut self) {
        assert!(stopping::hang_up(&mut self.child), "SIGHUP not sent");
    }

    /// Its exit status once it has exited, `None` if it still runs after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        stopping::exits_within(&mut self.child, within)
    }

    /// Waits (bounded) until the log holds `text`.
    pub fn wait_log(&self, text: &str) -> bool {
        for _ in 0..100 {
            if self.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.dev {
            stopping::stop(&mut self.child);
        } else {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub struct Reply {
    pub code: i32,
    pub status: String,
    pub body: String,
}

/// Runs curl with a client identity (`who` = alice, bob, or "" for none).
pub fn curl(s: &Story, who: &str, url: &str, extra: &[&str]) -> Reply {
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "--max-time".into(),
        "20".into(),
        "--cacert".into(),
        "certs/root.pem".into(),
        "-o".into(),
        "body.out".into(),
        "-w".into(),
        "%{http_code}".into(),
    ];
    if !who.is_empty() {
        args.extend([
            "--cert".into(),
            format!("certs/{who}.example.com.crt"),
            "--key".into(),
            format!("certs/{who}.example.com.key"),
        ]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    args.push(url.into());
    let _ = std::fs::remove_file(s.path("body.out"));
    let out = Command::new("curl")
        .current_dir(s.dir.path())
        .args(&args)
        .output()
        .expect("running curl");
    Reply {
        code: out.status.code().unwrap_or(-1),
        status: String::from_utf8_lossy(&out.stdout).into_owned(),
        body: std::fs::read_to_string(s.path("body.out")).unwrap_or_default(),
    }
}

pub fn echo(s: &Story) -> Proc {
    Proc::start(
        s.dir.path(),
        &["serve", "echo", "--listen", "127.0.0.1:0"],
        "http",
    )
}

pub fn proxy(s: &Story, backend: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "proxy",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        backend,
        "--ca",
        "certs/root.pem",
        "--cert",
        "certs/www.example.com.crt",
        "--key",
        "certs/www.example.com.key",
    ];
    args.extend_from_slice(extra);
    Proc::start(s.dir.path(), &args, "https")
}

pub fn xfcc_of(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["headers"]["x-forwarded-client-cert"]
        .as_str()
        .unwrap_or("")
        .to_string()
}
