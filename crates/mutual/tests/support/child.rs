//! A process a test started, held as a guard: killed (SIGKILL, by its PID) and reaped when the
//! guard is dropped, so that a failing assertion never leaves it running. With the file its
//! output goes to, when it has one.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, ExitStatus},
    time::Duration,
};

#[path = "../stopping/mod.rs"]
mod stopping;

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
    pub fn hang_up(&mut self) {
        assert!(stopping::hang_up(&mut self.child), "SIGHUP not sent");
    }

    /// Sends SIGTERM (a service manager's stop), asserting that it was sent.
    pub fn terminate(&mut self) {
        assert!(stopping::terminate(&mut self.child), "SIGTERM not sent");
    }

    /// Its exit status once it has exited, `None` if it still runs after `within`.
    pub fn exits_within(&mut self, within: Duration) -> Option<ExitStatus> {
        stopping::exits_within(&mut self.child, within)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
