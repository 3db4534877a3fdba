//! Stopping a process the tests started, by its PID, the way a service manager does.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Sends SIGTERM to a child still running (once reaped, its PID may belong to someone
/// else's process); whether it was sent.
pub fn terminate(child: &mut Child) -> bool {
    signal(child, "TERM")
}

/// Sends SIGHUP (reload) to a child still running; whether it was sent.
#[allow(dead_code)]
pub fn hang_up(child: &mut Child) -> bool {
    signal(child, "HUP")
}

fn signal(child: &mut Child, name: &str) -> bool {
    if let Ok(Some(_)) = child.try_wait() {
        return false;
    }
    Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success())
}

/// The child's exit status once it has exited, `None` if it is still running after `within`.
pub fn exits_within(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ends a server by its PID as a service manager would: SIGTERM, then SIGKILL if it is still
/// running after ten seconds (the server's own drain is bounded at five). A `--dev` server
/// removes its throwaway store on SIGTERM; a SIGKILL would leave it behind. The exit status
/// when SIGTERM ended it, `None` when SIGKILL had to.
pub fn stop(child: &mut Child) -> Option<ExitStatus> {
    terminate(child);
    let status = exits_within(child, Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    status
}

/// Whether a connect to 127.0.0.1:`port` is refused within `within`: a stopping server
/// closes its listener on its own task, a moment after it logs the signal.
pub fn refuses_within(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
