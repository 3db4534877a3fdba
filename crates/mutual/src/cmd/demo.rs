//! `mutual demo`: the story of docs/architecture.md played on loopback with a fresh store,
//! narrated step by step with the command a user would type. Every step runs the real `mutual`
//! binary (this very executable) as a child process, so what the demo shows is what those
//! commands do; each outcome is checked, and the demo exits 0 only if all behaved as narrated.
//! Every process it starts is ended before it returns.

use std::{
    fs,
    io::Read,
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use mutual::story_pki::{Step, StoryPki};

use super::scratch::Scratch;
use crate::cli::DemoArgs;

const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Outcome of one command the demo ran.
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    /// The first line of stderr without our `mutual: ` prefix: what a user reads.
    fn reason(&self) -> String {
        self.stderr
            .lines()
            .find(|l| !l.starts_with("warning:"))
            .unwrap_or_default()
            .trim_start_matches("mutual: ")
            .to_string()
    }
}

/// A background service the demo started; killed and reaped on drop.
struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Demo {
    exe: PathBuf,
    dir: PathBuf,
    color: bool,
    failures: Vec<String>,
    services: Vec<Service>,
}

impl Demo {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn title(&self, n: usize, text: &str) {
        println!("\n{}", self.paint(BOLD, &format!("{n}. {text}")));
    }

    fn say(&self, text: &str) {
        println!("   {text}");
    }

    fn show_cmd(&self, args: &[&str]) {
        let shown: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
        println!(
            "   {}",
            self.paint(DIM, &format!("$ mutual {}", shown.join(" ")))
        );
    }

    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("   {} {what}", self.paint(GREEN, "✓"));
        } else {
            println!("   {} {what}", self.paint(RED, "✗"));
            self.failures.push(what.to_string());
        }
    }

    /// Runs `mutual --data DIR/data args…` in the demo directory, showing the command.
    fn mutual(&self, args: &[&str]) -> Result<Out> {
        self.show_cmd(args);
        self.quiet(args)
    }

    fn quiet(&self, args: &[&str]) -> Result<Out> {
        let out = Command::new(&self.exe)
            .current_dir(&self.dir)
            .env("MUTUAL_DATA", self.dir.join("data"))
            .env("NO_COLOR", "1")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running mutual {}", args.join(" ")))?;
        Ok(Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs a CA command that must succeed.
    fn must(&mut self, args: &[&str]) -> Result<Out> {
        let out = self.mutual(args)?;
        if out.code != 0 {
            bail!("`mutual {}` failed: {}", args.join(" "), out.reason());
        }
        Ok(out)
    }

    /// Runs the commands of the story PKI: each narrated and required to succeed, except that
    /// a CA certificate saved to a file is fetched quietly (the chapter says so in one line).
    fn steps(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            match step.stdout_to {
                Some(file) => {
                    let out = self.quiet(&step.argv())?;
                    fs::write(self.dir.join(file), &out.stdout)
                        .with_context(|| format!("writing {file}"))?;
                }
                None => {
                    self.must(&step.argv())?;
                }
            }
        }
        Ok(())
    }

    /// Sends SIGHUP to a service and waits (bounded) until its log says it reloaded.
    fn reload(&mut self, name: &str) {
        if let Some(pid) = self.pid(name) {
            self.say(&format!(
                "$ kill -HUP {pid}    (reload certificates, CAs and CRLs; connections stay up)"
            ));
            let _ = Command::new("kill")
                .args(["-HUP", &pid.to_string()])
                .status();
        }
        // The reload is asynchronous: wait for its line.
        let _ = self.log_line(name, "reloaded");
    }

    /// Starts a service (`serve …`, `proxy …`) on a free port and waits until it accepts.
    fn start(&mut self, name: &str, args: &[&str]) -> Result<u16> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--listen", &listen]);
        self.show_cmd(&full);
        let log = self.dir.join("logs").join(format!("{name}.log"));
        let log_file =
            fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(&self.exe)
            .current_dir(&self.dir)
            .env("MUTUAL_DATA", self.dir.join("data"))
            .env("NO_COLOR", "1")
            // It stops when the demo ends, even by `kill -9` (see main.rs).
            .env(crate::EXIT_WITH_PARENT, std::process::id().to_string())
            .args(&full)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.services.push(Service {
            name: name.to_string(),
            child,
            log: log.clone(),
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(port);
            }
            if let Some(svc) = self.services.last_mut() {
                if let Ok(Some(status)) = svc.child.try_wait() {
                    let text = fs::read_to_string(&log).unwrap_or_default();
                    bail!("{name} exited ({status}): {}", text.trim());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{name} did not start listening on {listen} within 10 s")
    }

    /// Starts `mutual serve hello` with the server certificate www.example.com, trusting `ca`.
    fn hello(&mut self, name: &str, ca: &str, extra: &[&str]) -> Result<u16> {
        let mut args = vec![
            "serve",
            "hello",
            "--ca",
            ca,
            "--cert",
            "certs/www.example.com.crt",
            "--key",
            "certs/www.example.com.key",
        ];
        args.extend_from_slice(extra);
        self.start(name, &args)
    }

    /// Calls the service on `port` as `who` and checks it answers `Hello <name>`.
    fn greeted(&mut self, port: u16, who: &str, name: &str, label: &str) -> Result<()> {
        let out = self.curl(port, &format!("?name={name}"), Some(who), "certs/root.pem")?;
        let got = out.stdout.trim().to_string();
        self.check(
            got == format!("Hello {name}"),
            &format!("{label}: {}", got.if_empty(out.reason())),
        );
        Ok(())
    }

    /// Stops a service started by [`Demo::start`].
    fn stop(&mut self, name: &str) {
        self.services.retain(|s| s.name != name);
    }

    /// The log lines a service wrote, ANSI stripped.
    fn log(&self, name: &str) -> String {
        self.services
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| {
                let mut text = String::new();
                fs::File::open(&s.log)
                    .ok()?
                    .read_to_string(&mut text)
                    .ok()?;
                Some(strip_ansi(&text))
            })
            .unwrap_or_default()
    }

    /// The last log line of a service that mentions `needle`, shortened for narration.
    /// The last line of a service's log that holds `needle`, waited for a moment: a refused
    /// client has the alert before the server has written its line (rustls sends the alert
    /// from inside the handshake; the log line follows it).
    fn log_line(&self, name: &str, needle: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.log(name);
            let found = text.lines().rev().find(|l| l.contains(needle)).map(|l| {
                // Drop the timestamp; keep level and fields.
                l.split_once("Z ")
                    .map_or(l, |(_, rest)| rest)
                    .trim()
                    .to_string()
            });
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self, name: &str) -> Option<u32> {
        self.services
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.child.id())
    }

    fn curl(&self, port: u16, query: &str, who: Option<&str>, ca: &str) -> Result<Out> {
        let url = format!("https://localhost:{port}/{query}");
        let mut args = vec!["curl".to_string(), url];
        if let Some(who) = who {
            args.extend([
                "--cert".into(),
                format!("certs/{who}.crt"),
                "--key".into(),
                format!("certs/{who}.key"),
            ]);
        }
        args.extend(["--ca".into(), ca.to_string()]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.mutual(&refs)
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.services.clear();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free loopback port")?;
    Ok(l.local_addr()?.port())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\\\""))
    }
}

/// Runs the demo.
pub async fn run(a: DemoArgs) -> Result<()> {
    let (dir, temp) = workdir(&a)?;
    let doomed = temp.as_ref().map(|t| t.path().to_path_buf());
    let signalled = stop_signal();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let keeping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kept = std::sync::Arc::clone(&keeping);
    // The demo drives child processes and waits on them; keep that off the async workers.
    let mut task = tokio::task::spawn_blocking(move || run_blocking(a, dir, temp, &kept, stopped));
    tokio::select! {
        done = &mut task => done.context("the demo task failed")?,
        code = signalled => {
            if keeping.load(std::sync::atomic::Ordering::SeqCst) {
                // `--keep` after the story: the signal is how it ends, cleanly.
                let _ = stop.send(());
                return task.await.context("the demo task failed")?;
            }
            // Ctrl-C, `kill` or a closed terminal during the story: the temporary directory
            // (the CA's key among it) goes too; the services stop with this process
            // (MUTUAL_EXIT_WITH_PARENT).
            if let Some(d) = doomed {
                let _ = fs::remove_dir_all(d);
            }
            eprintln!("mutual demo: stopped");
            std::process::exit(code)
        }
    }
}

/// The exit status for SIGINT, SIGTERM or SIGHUP, when one comes. The handlers are installed
/// when this is called, before the story starts, so that no signal meets the default action
/// (which would leave the temporary directory, the CA's key among it, behind).
fn stop_signal() -> impl std::future::Future<Output = i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    );
    async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => 130,
            _ = term.recv() => 143,
            _ = hup.recv() => 129,
        }
    }
}

/// `--dir`, or a new temporary directory (removed with the returned guard, or by the next demo
/// if this one is killed).
fn workdir(a: &DemoArgs) -> Result<(PathBuf, Option<Scratch>)> {
    Ok(match &a.dir {
        Some(d) => {
            if d.join("data").exists() {
                bail!(
                    "{} already holds a demo (data/); give a new --dir or remove it",
                    d.display()
                );
            }
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            (d.canonicalize()?, None)
        }
        None => {
            let t = Scratch::create("mutual-demo.", false)?;
            (t.path().to_path_buf(), Some(t))
        }
    })
}

fn run_blocking(
    a: DemoArgs,
    dir: PathBuf,
    _temp: Option<Scratch>,
    keeping: &std::sync::atomic::AtomicBool,
    stopped: std::sync::mpsc::Receiver<()>,
) -> Result<()> {
    let started = Instant::now();
    fs::create_dir_all(dir.join("logs"))?;
    fs::create_dir_all(dir.join("certs"))?;
    let color = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut d = Demo {
        exe: std::env::current_exe().context("finding the mutual executable")?,
        dir: dir.clone(),
        color,
        failures: vec![],
        services: vec![],
    };
    println!(
        "{}",
        d.paint(
            BOLD,
            "mutual demo: mutual TLS between services, on loopback"
        )
    );
    println!(
        "   working in {} (MUTUAL_DATA={}/data)",
        dir.display(),
        dir.display()
    );
    let key_type = a.key_type.name();

    story(&mut d, key_type)?;

    let elapsed = started.elapsed();
    println!();
    if d.failures.is_empty() {
        println!(
            "{}",
            d.paint(
                GREEN,
                &format!(
                    "Every step behaved as narrated ({:.1} s).",
                    elapsed.as_secs_f64()
                )
            )
        );
    } else {
        println!(
            "{}",
            d.paint(
                RED,
                &format!("{} step(s) did not behave as narrated:", d.failures.len())
            )
        );
        for f in &d.failures {
            println!("   - {f}");
        }
    }
    if a.keep && d.failures.is_empty() {
        println!("\nThe services keep running (Ctrl-C ends them):");
        for s in &d.services {
            println!("   {}  log: {}", s.name, s.log.display());
        }
        keeping.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stopped.recv();
    }
    let failed = d.failures.len();
    drop(d);
    if failed > 0 {
        bail!("{failed} step(s) of the demo did not behave as narrated");
    }
    Ok(())
}

/// The story, chapter by chapter, as DESIGN.md tells it; each chapter starts and stops the
/// services it needs.
fn story(d: &mut Demo, key_type: &str) -> Result<()> {
    let pki = StoryPki::new(key_type).with_urls(
        "http://127.0.0.1:8200/v1/pki/ca",
        "http://127.0.0.1:8200/v1/pki/crl",
    );
    a_root_ca_and_its_certificates(d, &pki)?;
    the_hello_service(d)?;
    two_intermediates(d, &pki)?;
    only_alice_may_call(d)?;
    services_calling_each_other(d)?;
    revocation(d)
}

/// Chapter 1: The root CA, role `service`, www/Alice/Bob; a name outside the role is refused.
fn a_root_ca_and_its_certificates(d: &mut Demo, pki: &StoryPki) -> Result<()> {
    d.title(1, "A root CA, a role, a server certificate, Alice and Bob");
    d.steps(&pki.root())?;
    d.say("(mutual ca cert root > certs/root.pem)");
    let evil = d.mutual(&["issue", "evil.com", "--role", "service", "--out", "certs"])?;
    let why = evil.reason();
    d.check(
        evil.code == 1 && why.contains("\"evil.com\" is not allowed by role \"service\""),
        &format!("evil.com refused: {why}"),
    );
    Ok(())
}

/// Chapter 2: `serve hello` greets Alice and Bob; a caller without a certificate is told why, and
/// the server logs it.
fn the_hello_service(d: &mut Demo) -> Result<()> {
    d.title(2, "The hello service on mTLS");
    let port = d.hello("hello", "certs/root.pem", &[])?;
    d.greeted(port, "alice.example.com", "Alice", "Alice")?;
    d.greeted(port, "bob.example.com", "Bob", "Bob")?;
    let none = d.curl(port, "", None, "certs/root.pem")?;
    d.check(
        none.code == 1 && none.reason().contains("none was sent"),
        &format!("no certificate, the client says: {}", none.reason()),
    );
    let line = d.log_line("hello", "no_certificate").unwrap_or_default();
    d.check(!line.is_empty(), &format!("and the server logs: {line}"));
    d.stop("hello");
    Ok(())
}

/// Chapter 3: Alice's and Bob's intermediates: trusting the root admits both, trusting Alice's
/// intermediate admits only Alice, and a bundle with the root appended admits Bob again.
fn two_intermediates(d: &mut Demo, pki: &StoryPki) -> Result<()> {
    d.title(3, "Two intermediates: trust the root, or only Alice's");
    d.steps(&pki.intermediates())?;
    d.say("(mutual ca cert alice > certs/alice-ca.pem)");
    trusting_the_root(d)?;
    trusting_only_alices_intermediate(d)?;
    the_bundle_pitfall(d)
}

fn trusting_the_root(d: &mut Demo) -> Result<()> {
    let port = d.hello("hello-root", "certs/root.pem", &[])?;
    for who in ["alice", "bob"] {
        let out = d.curl(
            port,
            &format!("?name={who}"),
            Some(&format!("{who}/{who}.example.com")),
            "certs/root.pem",
        )?;
        d.check(
            out.code == 0 && out.stdout.contains("Hello"),
            &format!(
                "trusting the root, {who} (from {who}'s intermediate) gets in: {}",
                out.stdout.trim()
            ),
        );
    }
    d.stop("hello-root");
    Ok(())
}

fn trusting_only_alices_intermediate(d: &mut Demo) -> Result<()> {
    let port = d.hello("hello-alice-only", "certs/alice-ca.pem", &[])?;
    let out = d.curl(
        port,
        "?name=Alice",
        Some("alice/alice.example.com"),
        "certs/root.pem",
    )?;
    d.check(
        out.stdout.trim() == "Hello Alice",
        &format!(
            "trusting only Alice's intermediate, Alice: {}",
            out.stdout.trim()
        ),
    );
    let out = d.curl(
        port,
        "?name=Bob",
        Some("bob/bob.example.com"),
        "certs/root.pem",
    )?;
    let why = out.reason();
    d.check(
        out.code == 1
            && why.contains("Alice Intermediate Authority")
            && why.contains("Bob Intermediate Authority"),
        &format!("Bob is refused, the client says: {why}"),
    );
    let line = d
        .log_line("hello-alice-only", "bob.example.com")
        .unwrap_or_default();
    d.check(
        line.contains("unknown_issuer"),
        &format!("and the server logs: {line}"),
    );
    d.stop("hello-alice-only");
    Ok(())
}

fn the_bundle_pitfall(d: &mut Demo) -> Result<()> {
    d.say("The pitfall: today's OpenBao returns the intermediate with the root appended.");
    let wide = format!(
        "{}{}",
        fs::read_to_string(d.dir.join("certs/alice-ca.pem"))?,
        fs::read_to_string(d.dir.join("certs/root.pem"))?
    );
    fs::write(d.dir.join("certs/alice-bundle.pem"), wide)?;
    let port = d.hello("hello-bundle", "certs/alice-bundle.pem", &[])?;
    let out = d.curl(
        port,
        "?name=Bob",
        Some("bob/bob.example.com"),
        "certs/root.pem",
    )?;
    d.check(
        out.stdout.trim() == "Hello Bob",
        "with that bundle as the \"Alice-only\" trust file, Bob gets in",
    );
    let warn = d
        .log_line("hello-bundle", "together with its issuer")
        .unwrap_or_default();
    d.check(
        !warn.is_empty(),
        &format!(
            "and mutual warned at start: {}",
            warn.trim_start_matches("warning: ")
        ),
    );
    d.stop("hello-bundle");
    Ok(())
}

/// Chapter 4: One root, only Alice may call: at a proxy, at the handshake, in the service.
fn only_alice_may_call(d: &mut Demo) -> Result<()> {
    d.title(4, "One root, only Alice may call");
    at_the_proxy(d)?;
    at_the_handshake(d)?;
    in_process(d)
}

fn at_the_proxy(d: &mut Demo) -> Result<()> {
    let echo = d.start("echo", &["serve", "echo"])?;
    let backend = format!("http://127.0.0.1:{echo}");
    let args = [
        "proxy",
        "--backend",
        &backend,
        "--ca",
        "certs/root.pem",
        "--allow",
        "cn=alice.example.com",
        "--cert",
        "certs/www.example.com.crt",
        "--key",
        "certs/www.example.com.key",
    ];
    match d.start("proxy", &args) {
        Ok(port) => {
            let out = d.curl(port, "", Some("alice.example.com"), "certs/root.pem")?;
            d.check(
                out.code == 0 && out.stdout.to_ascii_lowercase().contains("x-forwarded-client-cert") && out.stdout.contains("alice.example.com"),
                "at the proxy: Alice reaches the echo backend, which sees her identity in x-forwarded-client-cert",
            );
            let out = d.curl(port, "", Some("bob.example.com"), "certs/root.pem")?;
            let text = format!("{}{}", out.stdout, out.stderr);
            d.check(
                out.code != 0 && text.contains("403") && text.contains("bob.example.com"),
                &format!(
                    "at the proxy: Bob gets 403: {}",
                    first_line(&out.stdout).if_empty(out.reason())
                ),
            );
            d.stop("proxy");
        }
        Err(e) => d.check(false, &format!("the proxy did not start: {e}")),
    }
    d.stop("echo");
    Ok(())
}

fn at_the_handshake(d: &mut Demo) -> Result<()> {
    let port = d.hello(
        "hello-handshake",
        "certs/root.pem",
        &["--allow", "cn=alice.example.com", "--deny-at", "handshake"],
    )?;
    d.greeted(
        port,
        "alice.example.com",
        "Alice",
        "at the handshake: Alice",
    )?;
    let out = d.curl(port, "?name=Bob", Some("bob.example.com"), "certs/root.pem")?;
    d.check(
        out.code == 1,
        &format!("at the handshake: Bob is refused: {}", out.reason()),
    );
    let line = d
        .log_line("hello-handshake", "bob.example.com")
        .unwrap_or_default();
    d.check(!line.is_empty(), &format!("and the server logs: {line}"));
    d.stop("hello-handshake");
    Ok(())
}

fn in_process(d: &mut Demo) -> Result<()> {
    let port = d.hello(
        "hello-http",
        "certs/root.pem",
        &["--allow", "cn=alice.example.com"],
    )?;
    d.greeted(port, "alice.example.com", "Alice", "in-process: Alice")?;
    let out = d.curl(port, "?name=Bob", Some("bob.example.com"), "certs/root.pem")?;
    let body = format!("{}{}", out.stdout, out.stderr);
    d.check(
        body.contains("you cannot be here bob.example.com"),
        &format!(
            "in-process: Bob: {}",
            first_line(&out.stdout).if_empty(out.reason())
        ),
    );
    d.stop("hello-http");
    Ok(())
}

/// Chapter 5: Services a, b and c, each a client and a server: a may call b and c, b and c may not
/// call each other.
fn services_calling_each_other(d: &mut Demo) -> Result<()> {
    d.title(5, "Services that are both clients and servers: A may call B and C; B and C may not call each other");
    for svc in ["a", "b", "c"] {
        d.must(&[
            "issue",
            &format!("{svc}.example.com"),
            "--role",
            "service",
            "--san",
            "localhost",
            "--ip",
            "127.0.0.1",
            "--out",
            "certs",
        ])?;
    }
    let mut ports = std::collections::HashMap::new();
    for (svc, allow) in [
        ("a", vec!["cn=b.example.com", "cn=c.example.com"]),
        ("b", vec!["cn=a.example.com"]),
        ("c", vec!["cn=a.example.com"]),
    ] {
        let cert = format!("certs/{svc}.example.com.crt");
        let key = format!("certs/{svc}.example.com.key");
        let mut args = vec![
            "serve",
            "hello",
            "--ca",
            "certs/root.pem",
            "--cert",
            &cert,
            "--key",
            &key,
        ];
        for m in &allow {
            args.extend(["--allow", m]);
        }
        let port = d.start(&format!("service-{svc}"), &args)?;
        ports.insert(svc, port);
    }
    for (from, to, allowed) in [
        ("a", "b", true),
        ("a", "c", true),
        ("b", "c", false),
        ("c", "b", false),
    ] {
        let out = d.curl(
            ports[to],
            &format!("?name={from}"),
            Some(&format!("{from}.example.com")),
            "certs/root.pem",
        )?;
        if allowed {
            d.check(
                out.stdout.trim() == format!("Hello {from}"),
                &format!("{from} calls {to}: {}", out.stdout.trim()),
            );
        } else {
            let body = format!("{}{}", out.stdout, out.stderr);
            d.check(
                body.contains(&format!("you cannot be here {from}.example.com")),
                &format!(
                    "{from} calls {to}: {}",
                    first_line(&out.stdout).if_empty(out.reason())
                ),
            );
        }
    }
    for svc in ["a", "b", "c"] {
        d.stop(&format!("service-{svc}"));
    }
    Ok(())
}

/// Chapter 6: Alice's certificate is revoked; the service picks up the new CRL on SIGHUP, without a
/// restart, and refuses her while Bob still gets in.
fn revocation(d: &mut Demo) -> Result<()> {
    d.title(
        6,
        "Revocation: Alice's certificate revoked, the CRL picked up without a restart",
    );
    d.must(&["crl", "--ca", "root", "--out", "certs/root.crl", "--pem"])?;
    let port = d.hello("hello-crl", "certs/root.pem", &["--crl", "certs/root.crl"])?;
    d.greeted(port, "alice.example.com", "Alice", "before: Alice")?;
    let serial = cert_serial(&d.dir.join("certs/alice.example.com.crt"))?;
    d.must(&["revoke", &serial, "--reason", "keyCompromise"])?;
    d.must(&["crl", "--ca", "root", "--out", "certs/root.crl", "--pem"])?;
    d.reload("hello-crl");
    let out = d.curl(
        port,
        "?name=Alice",
        Some("alice.example.com"),
        "certs/root.pem",
    )?;
    let why = out.reason();
    d.check(
        out.code == 1 && why.contains("revoked"),
        &format!("after: Alice is refused: {why}"),
    );
    let line = d.log_line("hello-crl", "revoked").unwrap_or_default();
    d.check(!line.is_empty(), &format!("and the server logs: {line}"));
    let bob = d.curl(port, "?name=Bob", Some("bob.example.com"), "certs/root.pem")?;
    d.check(
        bob.stdout.trim() == "Hello Bob",
        &format!("Bob still: {}", bob.stdout.trim()),
    );
    Ok(())
}

trait IfEmpty {
    fn if_empty(self, other: String) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: String) -> String {
        if self.trim().is_empty() {
            other
        } else {
            self
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().trim().to_string()
}

fn cert_serial(path: &Path) -> Result<String> {
    let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let ders = mutual_pki::cert::pem_certs(&bytes)?;
    Ok(mutual_pki::cert::facts(&ders[0])?.serial.to_string())
}
