//! Stopping a process the tests started, by its PID, the way a service manager does.

use std::process::{Child, Command};

/// Ends a server by its PID as a service manager would: SIGTERM, then SIGKILL if it is still
/// running after ten seconds (the server's own drain is bounded at five). A `--dev` server
/// removes its throwaway store on SIGTERM; a SIGKILL would leave it behind. The exit status
/// when SIGTERM ended it, `None` when SIGKILL had to.
pub fn stop(child: &mut Child) -> Option<std::process::ExitStatus> {
    // Once reaped, the PID may belong to someone else's process: signal only a live child.
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
