//! `mutual demo` plays the whole story, checks every step, and leaves no process behind.

use std::path::Path;

fn processes_in(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let cwd = e.path().join("cwd");
        if let Ok(target) = std::fs::read_link(&cwd) {
            if target.starts_with(dir) {
                let cmd = std::fs::read_to_string(e.path().join("cmdline")).unwrap_or_default();
                found.push(cmd.replace('\0', " "));
            }
        }
    }
    found
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
