//! A process a test started, held as a guard: killed (SIGKILL, by its PID) and reaped when the
//! guard is dropped, so that a failing assertion never leaves it running. With the file its
//! output goes to, when it has one.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    time::{Duration, Instant},
};

pub struct Running {
    pub child: Child,
    log: Option<PathBuf>,
}

impl Running {
    pub fn new(child: Child) -> Running {
        Running { child, log: None }
    }

    /// A process whose output goes to `log`.
    pub fn logged(child: Child, log: &Path) -> Running {
        Running {
            child,
            log: Some(log.to_path_buf()),
        }
    }

    /// What it has written to its log so far (empty without one).
    pub fn log(&self) -> String {
        self.log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default()
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGHUP (an operator's reload), asserting that it was sent.
    pub fn hang_up(&self) {
        self.signal("HUP");
    }

    /// Sends SIGTERM (a service manager's stop), asserting that it was sent.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    fn signal(&self, name: &str) {
        let sent = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success(), "SIG{name} to {}", self.id());
    }

    /// Its exit status once it has exited, `None` if it still runs after `within`.
    pub fn exits_within(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
