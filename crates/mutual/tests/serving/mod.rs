//! Helpers to run `mutual serve hello` on an ephemeral port and read its log.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// A test that starts servers of several kinds loads this file once per helper.
#[allow(clippy::duplicate_mod)]
#[path = "../stopping/mod.rs"]
mod stopping;

/// A running `mutual serve …`, killed (by its own PID) when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `mutual serve ARGS --listen 127.0.0.1:0` in `dir` and waits for its address.
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mutual"))
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .env("MUTUAL_LOG", "info")
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting mutual serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = strip_ansi(&line);
                if let Some(i) = line.find("://127.0.0.1:") {
                    let port: String = line[i + 13..]
                        .chars()
                        .take_while(|c| c.is_ascii_digit())
                        .collect();
                    if let (Some(tx), Ok(p)) = (tx.take(), port.parse::<u16>()) {
                        let _ = tx.send(p);
                    }
                }
                sink.lock().unwrap().push(line);
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start: {:?}", log.lock().unwrap());
            }
        };
        Server { child, port, log }
    }

    /// The server's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (bounded) until a log line contains every needle; returns it.
    #[track_caller]
    pub fn wait_log(&self, needles: &[&str]) -> String {
        let start = Instant::now();
        loop {
            if let Some(l) = self
                .log()
                .into_iter()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return l;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "no log line with {needles:?} in:\n{}",
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) until at least `n` log lines contain every needle.
    #[track_caller]
    pub fn wait_log_count(&self, needles: &[&str], n: usize) {
        let start = Instant::now();
        loop {
            let count = self
                .log()
                .iter()
                .filter(|l| needles.iter().all(|x| l.contains(x)))
                .count();
            if count >= n {
                return;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!(
                    "fewer than {n} log lines with {needles:?} in:\n{}",
                    self.log().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// Waits (bounded) for the server to exit: its status, or `None` if it still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        stopping::exits_within(&mut self.child, within)
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
