//! `mutual demo` plays the whole story, checks every step, and leaves no process behind.

use std::path::{Path, PathBuf};

/// The PIDs and command lines of the processes working in `dir`.
fn processes_in(dir: &Path) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let cwd = e.path().join("cwd");
        if let Ok(target) = std::fs::read_link(&cwd) {
            if target.starts_with(dir) {
                let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
                found.push((pid, cmd.replace('\0', " ")));
            }
        }
    }
    found
}

/// True while `pid` runs (an exited process not yet reaped does not).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()))
        .is_some_and(|r| !r.starts_with('Z') && !r.starts_with('X'))
}

#[test]
fn the_demo_plays_the_story_and_cleans_up() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mutual"))
        .args(["demo", "--dir", dir.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for want in [
        "✓ evil.com refused: \"evil.com\" is not allowed by role \"service\"",
        "✓ Alice: Hello Alice",
        "✓ Bob: Hello Bob",
        "✓ no certificate, the client says:",
        "Bob is refused, the client says: the server refused the client certificate \"CN=bob.example.com\"",
        "Alice Intermediate Authority",
        "Bob Intermediate Authority",
        "reason.code=\"unknown_issuer\"",
        "✓ with that bundle as the \"Alice-only\" trust file, Bob gets in",
        "together with its issuer \"CN=Local Root CA\"",
        "✓ at the proxy: Alice reaches the echo backend",
        "✓ at the proxy: Bob gets 403: you cannot be here bob.example.com",
        "✓ at the handshake: Bob is refused",
        "✓ in-process: Bob: you cannot be here bob.example.com",
        "✓ a calls b: Hello a",
        "✓ a calls c: Hello a",
        "✓ b calls c: you cannot be here b.example.com",
        "✓ c calls b: you cannot be here c.example.com",
        "✓ after: Alice is refused:",
        "reason.code=\"revoked\"",
        "Every step behaved as narrated",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in:\n{stdout}");
    }
    assert!(!stdout.contains('✗'), "{stdout}");
    let left = processes_in(&dir);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    // The narrated commands are real: the store and certificates are there to reuse.
    assert!(dir.join("data/mutual.db").exists());
    assert!(dir.join("certs/www.example.com.crt").exists());
}

/// `mutual demo` with its own TMPDIR and stdout in `DIR/demo.out`.
fn spawn_demo(tmp: &Path, args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_mutual"))
        .arg("demo")
        .args(args)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .stdout(std::fs::File::create(tmp.join("demo.out")).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (at most 2 minutes) until the demo has printed `line`; then its working directory and
/// the services that run in it, by PID (once the directory is gone, none is found by it).
fn demo_at(
    tmp: &Path,
    demo: &mut std::process::Child,
    line: &str,
) -> (PathBuf, Vec<(u32, String)>) {
    let started = std::time::Instant::now();
    let read = || std::fs::read_to_string(tmp.join("demo.out")).unwrap_or_default();
    while !read().contains(line) {
        if let Ok(Some(status)) = demo.try_wait() {
            panic!("the demo ended ({status}) before {line:?}:\n{}", read());
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "no {line:?}:\n{}",
            read()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let workdir = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("mutual-demo.")
        })
        .expect("the demo's temporary directory");
    // The line is printed just before the command starts.
    let mut services = processes_in(&workdir);
    while services.is_empty() && started.elapsed() < std::time::Duration::from_secs(120) {
        std::thread::sleep(std::time::Duration::from_millis(5));
        services = processes_in(&workdir);
    }
    assert!(
        !services.is_empty(),
        "no service runs in {}",
        workdir.display()
    );
    (workdir, services)
}

/// Waits (at most 10 s) for `services` to end; those still running are killed and named.
fn assert_gone(services: &[(u32, String)]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let left = || -> Vec<&(u32, String)> { services.iter().filter(|(p, _)| runs(*p)).collect() };
    while !left().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let orphans = left();
    for (pid, _) in &orphans {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
    }
    assert!(orphans.is_empty(), "services left running: {orphans:?}");
}

/// A demo ended by a signal leaves nothing running and no key behind: `kill` (SIGTERM) during
/// the story removes its temporary directory (the CA's key among it) and exits 143; even
/// `kill -9`, which nothing can catch, takes its services down with it (the kernel's
/// parent-death signal: no terminal passes Ctrl-C on to them here), and the next demo removes
/// the directory it left.
#[test]
fn a_demo_ended_by_a_signal_leaves_neither_services_nor_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = spawn_demo(tmp.path(), &[]);
    let (workdir, services) = demo_at(tmp.path(), &mut demo, "$ mutual serve hello");
    let killed = std::process::Command::new("kill")
        .arg(demo.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let status = demo.wait().unwrap();
    // First, so that a failure does not leave the services running.
    assert_gone(&services);
    assert_eq!(status.code(), Some(143));
    assert!(!workdir.exists(), "{} left behind", workdir.display());

    let tmp = tempfile::tempdir().unwrap();
    let mut demo = spawn_demo(tmp.path(), &["--keep"]);
    let (workdir, services) = demo_at(tmp.path(), &mut demo, "The services keep running");
    demo.kill().expect("kill -9");
    let _ = demo.wait();
    assert_gone(&services);
    // Its directory outlives it; the next demo removes it (it holds no lock any more).
    assert!(workdir.exists(), "{} was not left", workdir.display());
    let mut next = spawn_demo(tmp.path(), &[]);
    let started = std::time::Instant::now();
    while workdir.exists() && started.elapsed() < std::time::Duration::from_secs(30) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    if workdir.exists() {
        // (Its services stop with it.)
        let _ = next.kill();
        let _ = next.wait();
        panic!("the next demo left {} (killed) in place", workdir.display());
    }
    // Only the next demo's own directory is left to find now.
    let (own, services) = demo_at(tmp.path(), &mut next, "$ mutual serve hello");
    let _ = std::process::Command::new("kill")
        .arg(next.id().to_string())
        .status();
    let status = next.wait().unwrap();
    assert_gone(&services);
    assert_eq!(status.code(), Some(143));
    assert!(!own.exists(), "{} left behind", own.display());
}
