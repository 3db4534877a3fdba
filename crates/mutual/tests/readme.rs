//! Every command block of the README's story runs as written, in order, in a fresh directory:
//! `sh` blocks verbatim, and in `console` blocks each `$ command` is run and every line shown
//! under it must appear in what it printed.

use std::path::Path;

/// The README sections that run, in this order, in one shell: each from its heading to the
/// next `## ` heading. The lifecycle section is only present in the real README.
const SECTIONS: [&str; 2] = [
    "## The story, by hand",
    "## Certificates that renew themselves",
];

/// Turns the runnable sections of the README into one bash script.
fn script(readme: &str) -> String {
    let mut out = String::new();
    for heading in SECTIONS {
        let Some(start) = readme.find(&format!("{heading}\n")) else {
            continue;
        };
        let body = start + heading.len();
        let end = readme[body..]
            .find("\n## ")
            .map_or(readme.len(), |e| body + e);
        blocks(&readme[start..end], &mut out);
    }
    out
}

/// Appends the `sh` and `console` blocks of one section to `out`.
fn blocks(story: &str, out: &mut String) {
    let mut lines = story.lines();
    while let Some(line) = lines.next() {
        let kind = match line.trim() {
            "```sh" => "sh",
            "```console" => "console",
            _ => continue,
        };
        let mut block = Vec::new();
        for l in lines.by_ref() {
            if l.trim() == "```" {
                break;
            }
            block.push(l.to_string());
        }
        if kind == "sh" {
            out.push_str(&block.join("\n"));
            out.push('\n');
            continue;
        }
        let mut i = 0;
        while i < block.len() {
            let Some(cmd) = block[i].strip_prefix("$ ") else {
                i += 1;
                continue;
            };
            out.push_str(&format!("__out=$( {{ {cmd} ; }} 2>&1 ) || true\n"));
            out.push_str(&format!("__cmd={}\n", quote(cmd)));
            i += 1;
            while i < block.len() && !block[i].starts_with("$ ") {
                let expected = block[i].trim();
                if !expected.is_empty() {
                    out.push_str(&format!("__expect {}\n", quote(expected)));
                }
                i += 1;
            }
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn run_story(readme: &str) -> std::process::Output {
    let body = script(readme);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_mutual"))
        .parent()
        .unwrap()
        .to_path_buf();
    let header = format!(
        r#"set -euo pipefail
export PATH="{}:$PATH"
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT
__expect() {{
  if ! printf '%s\n' "$__out" | grep -qF -- "$1"; then
    printf 'README: `%s` should print:\n  %s\nbut printed:\n%s\n' "$__cmd" "$1" "$__out" >&2
    exit 1
  fi
}}
"#,
        bin_dir.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let script_path = dir.path().join("readme.sh");
    std::fs::write(&script_path, format!("{header}{body}")).unwrap();
    std::process::Command::new("bash")
        .arg(&script_path)
        .current_dir(dir.path())
        .env_remove("MUTUAL_DATA")
        .env_remove("MUTUAL_ADDR")
        .env_remove("MUTUAL_TOKEN")
        .env("NO_COLOR", "1")
        .output()
        .expect("bash")
}

#[test]
fn a_wrong_expectation_fails_the_check() {
    let fake = "## The story, by hand\n```sh\necho hi\n```\n```console\n$ echo hello\ngoodbye\n```\n## Command reference\n";
    let out = run_story(fake);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("should print"));
    let fine = fake.replace("goodbye", "hello");
    assert!(run_story(&fine).status.success());
}

#[test]
fn readme_story_runs_as_written() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let all = script(&readme);
    assert!(
        all.contains("mutual ca init"),
        "no story found in the README"
    );
    assert!(
        all.contains("mutual agent") && all.contains("openssl ocsp"),
        "no lifecycle section found in the README"
    );
    let out = run_story(&readme);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README's story failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // The sh blocks' own outputs are the story's greetings.
    for want in ["Hello Alice", "Hello Bob", "Hello A"] {
        assert!(stdout.contains(want), "missing {want} in {stdout}");
    }
}
