//! A PostgreSQL server of the test's own: a cluster made by `initdb` in a temporary directory,
//! listening on 127.0.0.1 only on a free port, password login for the `mutual` user, stopped
//! by its PID when dropped. As root (the test containers), `initdb` and the server run as the
//! `postgres` user through `runuser`, since `initdb` refuses root.
//! `scripts/install-test-deps` installs Debian's `postgresql` package.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// The password of the `mutual` role in every test cluster.
pub const PASSWORD: &str = "test-secret";

/// A running test cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    pid: Option<u32>,
}

/// The directory of `initdb`, `pg_ctl`, `postgres`: `MUTUAL_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the `PATH`.
fn bin_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("MUTUAL_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `program args…`, as the `postgres` user when we are root.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn ok(what: &str, out: std::io::Result<Output>) {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    /// Makes and starts a cluster. Panics with what to install when PostgreSQL is missing.
    pub fn start() -> Postgres {
        let bin = bin_dir().unwrap_or_else(|| {
            panic!("PostgreSQL is not installed (scripts/install-test-deps: apt-get install postgresql)")
        });
        let dir = tempfile::Builder::new()
            .prefix("mutual-pg-")
            .tempdir()
            .expect("temp dir");
        if is_root() {
            ok(
                "chown the cluster's directory to postgres",
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(dir.path())
                    .output(),
            );
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if is_root() {
            let _ = Command::new("chown").arg("postgres").arg(&pwfile).output();
        }
        ok(
            "initdb",
            as_owner(&bin.join("initdb"))
                .arg("-D")
                .arg(dir.path().join("data"))
                .args(["-U", "mutual", "-E", "UTF8", "--no-sync"])
                .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                .arg(format!("--pwfile={}", pwfile.display()))
                .output(),
        );
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            pid: None,
        };
        pg.run();
        pg
    }

    /// Starts the server of the cluster (again), on the same port, and waits for it.
    pub fn run(&mut self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        ok(
            "pg_ctl start",
            as_owner(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .args(["-o", &opts, "-w", "-t", "30", "-l"])
                .arg(self.dir.path().join("log"))
                .arg("start")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .output(),
        );
        let pidfile = std::fs::read_to_string(data.join("postmaster.pid")).expect("postmaster.pid");
        self.pid = pidfile.lines().next().and_then(|l| l.trim().parse().ok());
        assert!(self.pid.is_some(), "no PID in postmaster.pid");
    }

    /// Stops the server by its PID (fast shutdown: connections are cut), and waits until it
    /// is gone.
    pub fn stop(&mut self) {
        let Some(pid) = self.pid.take() else { return };
        let _ = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .output();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let alive = Command::new("kill")
                .args(["-0", &pid.to_string()])
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
    }

    /// Runs SQL as the `mutual` superuser on database `db`.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "mutual",
            ])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-tAc", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new empty database and its URL (with the password).
    pub fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(name)
    }

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://mutual:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A key-encryption key for the nodes of a test (32 bytes, hex).
pub const KEK: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
