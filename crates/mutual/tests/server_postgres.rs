//! `mutual server` on PostgreSQL (issue 13): each test starts its own cluster
//! (tests/support/postgres.rs). The server stories (the `bao` CLI, hvac) give the same answers
//! as on SQLite, the kill -9 durability scenario holds, several nodes on one database see each
//! other's revocations and token revocations within a second, and the command line refuses a
//! bad database in one line.

#[path = "server/durability.rs"]
mod durability;
#[path = "support/postgres.rs"]
mod pg;
mod server;

use server::{assert_ok, curl, facts, have_bao, mutual_dev, mutual_pg, mutual_pg_init, run_script};

/// Runs a story script against a node on PostgreSQL and against `mutual server --dev`
/// (SQLite); returns both work dirs.
fn on_both_engines(script: &str) -> Option<(tempfile::TempDir, tempfile::TempDir)> {
    if !have_bao(script) {
        return None;
    }
    let sqlite = std::thread::spawn({
        let script = script.to_string();
        move || {
            let server = mutual_dev();
            let work = tempfile::tempdir().unwrap();
            let out = run_script(&server, &script, work.path());
            assert_ok(&server, &script, &out);
            work
        }
    });
    let cluster = pg::Postgres::start();
    let url = cluster.database("story");
    let token = mutual_pg_init(&url, pg::KEK);
    let server = mutual_pg(&url, pg::KEK, &token);
    let work = tempfile::tempdir().unwrap();
    let out = run_script(&server, script, work.path());
    assert_ok(&server, script, &out);
    Some((work, sqlite.join().expect("the SQLite run")))
}

#[test]
fn bao_cli_story_gives_the_same_answers_on_postgres_as_on_sqlite() {
    let Some((pg_work, sqlite_work)) = on_both_engines("bao_story.sh") else {
        return;
    };
    let ours = facts(&pg_work.path().join("facts"));
    let sqlite = facts(&sqlite_work.path().join("facts"));
    assert!(!ours.is_empty(), "the story wrote its facts");
    assert_eq!(ours, sqlite);
}

#[test]
fn hvac_story_gives_the_same_answers_on_postgres_as_on_sqlite() {
    let Some((pg_work, sqlite_work)) = on_both_engines("hvac_story.py") else {
        return;
    };
    let read =
        |d: &tempfile::TempDir| std::fs::read_to_string(d.path().join("hvac-facts")).unwrap();
    let ours = read(&pg_work);
    assert!(!ours.is_empty());
    assert_eq!(ours, read(&sqlite_work));
}

#[test]
fn every_certificate_a_caller_received_survives_kill_9_on_postgres() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("durable");
    let token = mutual_pg_init(&url, pg::KEK);
    let dir = tempfile::tempdir().unwrap();
    durability::scenario(dir.path(), &|| mutual_pg(&url, pg::KEK, &token), &token);
    // Nothing stored twice: the serial is the primary key, and the count agrees.
    let rows = cluster.sql(
        "durable",
        "SELECT COUNT(*), COUNT(DISTINCT serial) FROM certs",
    );
    let (all, distinct) = rows.split_once('|').unwrap();
    assert_eq!(all, distinct);
}

/// Runs `mutual` with `MUTUAL_KEK` set to `kek`.
fn mutual_kek(args: &[&str], kek: &str) -> std::process::Output {
    std::process::Command::new(server::bin())
        .args(args)
        .env("MUTUAL_KEK", kek)
        .output()
        .expect("running mutual")
}

/// Per-issuer complete and delta CRLs on PostgreSQL, where the revocations are read through
/// sqlx (SQLite reads them with rusqlite): the scenario of server_crl_config.rs.
#[test]
fn each_issuer_has_its_own_crls_on_postgres() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("crls");
    let token = mutual_pg_init(&url, pg::KEK);
    let server = mutual_pg(&url, pg::KEK, &token);
    server::issuer_crls::each_issuer_has_its_own_crls(&server);
}

#[test]
fn bad_databases_are_refused_in_one_line_by_the_command_line() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("cli");
    let token = mutual_pg_init(&url, pg::KEK);
    assert!(token.starts_with("mutual."), "{token}");
    // The offline CA commands on the same database.
    let out = mutual_kek(&["ca", "list", "--database", &url], pg::KEK);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wrong_kek = "ab".repeat(32);
    let shown = format!("postgres://mutual:***@127.0.0.1:{}/cli", cluster.port);
    let cases: Vec<(Vec<String>, String, String)> = vec![
        (
            vec!["server".into(), "--database".into(), url.clone()],
            wrong_kek.clone(),
            format!("mutual: MUTUAL_KEK does not open the store in {shown}: it is not the key the store was made with"),
        ),
        (
            vec!["ca".into(), "list".into(), "--database".into(), url.replace(pg::PASSWORD, "nope")],
            pg::KEK.into(),
            format!("mutual: the database {shown} refused the login: "),
        ),
        (
            vec!["ca".into(), "list".into(), "--database".into(), "mysql://x@127.0.0.1/y".into()],
            pg::KEK.into(),
            "mutual: --database mysql://x@127.0.0.1/y: not a PostgreSQL URL (postgres://USER@HOST:PORT/DB)".into(),
        ),
    ];
    for (args, kek, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mutual_kek(&args, &kek);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        let line = stderr.lines().last().unwrap_or_default();
        assert!(line.starts_with(&want), "{args:?}: {stderr}");
        assert!(
            !stderr.contains(pg::PASSWORD),
            "the password is never shown: {stderr}"
        );
    }
    // No MUTUAL_KEK at all.
    let out = std::process::Command::new(server::bin())
        .args(["ca", "list", "--database", &url])
        .env_remove("MUTUAL_KEK")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MUTUAL_KEK must be set for a PostgreSQL store"),
        "{stderr}"
    );
    let _ = curl;
}

/// Polls `check` every 25 ms until it holds or `limit` passes; returns how long it took.
fn within(
    limit: std::time::Duration,
    mut check: impl FnMut() -> bool,
) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    for _ in 0..10_000 {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    None
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// `openssl ocsp` asks node `addr` about `serial`; its "Cert Status" line.
fn ocsp_status(work: &std::path::Path, addr: &str, serial: &str) -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "ocsp",
            "-issuer",
            "ca.pem",
            "-CAfile",
            "ca.pem",
            "-no_nonce",
        ])
        .args(["-serial", &format!("0x{}", serial.replace(':', ""))])
        .args(["-url", &format!("{addr}/v1/pki/ocsp")])
        .current_dir(work)
        .output()
        .expect("openssl ocsp");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.contains(": "))
        .unwrap_or_default()
        .to_string()
}

#[test]
fn revocations_tokens_policies_and_roles_changed_on_one_node_are_in_force_on_the_other_within_1s() {
    let cluster = pg::Postgres::start();
    let url = cluster.database("two");
    let token = mutual_pg_init(&url, pg::KEK);
    let a = mutual_pg(&url, pg::KEK, &token);
    let b = mutual_pg(&url, pg::KEK, &token);
    let work = tempfile::tempdir().unwrap();

    // A mount, its root and role made on A are served by B.
    for (path, body) in [
        (
            "sys/mounts/pki",
            r#"{"type":"pki","config":{"max_lease_ttl":"87600h"}}"#,
        ),
        (
            "pki/root/generate/internal",
            r#"{"common_name":"HA Root","key_type":"ec","ttl":"8760h"}"#,
        ),
        (
            "pki/roles/service",
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","max_ttl":"720h"}"#,
        ),
    ] {
        let (code, resp) = curl(&a, "POST", path, Some(body));
        assert!(code / 100 == 2, "{path}: {code} {resp}");
    }
    let issue = r#"{"common_name":"www.example.com","ttl":"1h"}"#;
    let took = within(std::time::Duration::from_secs(1), || {
        curl(&b, "POST", "pki/issue/service", Some(issue)).0 == 200
    });
    assert!(
        took.is_some(),
        "B did not serve the mount made on A within 1 s"
    );
    let (_, ca) = curl(&b, "GET", "pki/ca/pem", None);
    std::fs::write(work.path().join("ca.pem"), ca).unwrap();

    // Issued on A, revoked on A: B's CRL and OCSP say so within 1 s.
    let (code, body) = curl(&a, "POST", "pki/issue/service", Some(issue));
    assert_eq!(code, 200, "{body}");
    let serial = json(&body)["data"]["serial_number"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ocsp_status(work.path(), &b.addr, &serial).contains("good"));
    // The inventory on B names the request and the token that asked for it.
    let (code, body) = curl(&b, "GET", &format!("pki/inventory?serial={serial}"), None);
    assert_eq!(code, 200, "{body}");
    let found = &json(&body)["data"]["certs"][0];
    assert_eq!(found["request"], "pki/issue/service", "{body}");
    assert!(
        found["issued_by"].as_str().is_some_and(|a| !a.is_empty()),
        "{body}"
    );
    let (_, crl_before) = curl(&b, "GET", "pki/crl", None);
    let (code, body) = curl(
        &a,
        "POST",
        "pki/revoke",
        Some(&format!(r#"{{"serial_number":"{serial}"}}"#)),
    );
    assert_eq!(code, 200, "{body}");
    let hex = serial.replace(':', "").to_uppercase();
    let in_crl = within(std::time::Duration::from_secs(1), || {
        let (_, pem) = curl(&b, "GET", "pki/crl/pem", None);
        std::fs::write(work.path().join("crl.pem"), pem).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["crl", "-in", "crl.pem", "-noout", "-text"])
            .current_dir(work.path())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).contains(&hex)
    });
    assert!(
        in_crl.is_some(),
        "B's CRL lacks the serial revoked on A after 1 s"
    );
    let revoked = within(std::time::Duration::from_secs(1), || {
        ocsp_status(work.path(), &b.addr, &serial).contains("revoked")
    });
    assert!(revoked.is_some(), "B's OCSP does not say revoked after 1 s");
    eprintln!("revocation on A seen by B's CRL in {in_crl:?}, OCSP in {revoked:?}");
    assert_ne!(curl(&b, "GET", "pki/crl", None).1, crl_before);

    // A token that works on B, revoked on A, is refused by B within 1 s.
    let (code, body) = curl(
        &a,
        "POST",
        "auth/token/create",
        Some(r#"{"policies":["root"]}"#),
    );
    assert_eq!(code, 200, "{body}");
    let child = json(&body)["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = server::curl_as(&b, Some(&child), "GET", "auth/token/lookup-self", None);
    assert_eq!(code, 200, "the new token works on B");
    let (code, body) = curl(
        &a,
        "POST",
        "auth/token/revoke",
        Some(&format!(r#"{{"token":"{child}"}}"#)),
    );
    assert!(code / 100 == 2, "{code} {body}");
    let refused = within(std::time::Duration::from_secs(1), || {
        server::curl_as(&b, Some(&child), "GET", "auth/token/lookup-self", None).0 == 403
    });
    assert!(
        refused.is_some(),
        "B still accepts the token revoked on A after 1 s"
    );

    // A policy narrowed on A binds the token's holders on B within 1 s.
    let policy =
        |caps: &str| format!(r#"{{"policy":"path \"pki/certs\" {{ capabilities = [{caps}] }}"}}"#);
    let (code, body) = curl(
        &a,
        "POST",
        "sys/policies/acl/lister",
        Some(&policy(r#"\"list\""#)),
    );
    assert!(code / 100 == 2, "{code} {body}");
    let (code, body) = curl(
        &a,
        "POST",
        "auth/token/create",
        Some(r#"{"policies":["lister"]}"#),
    );
    assert_eq!(code, 200, "{body}");
    let lister = json(&body)["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        server::curl_as(&b, Some(&lister), "LIST", "pki/certs", None).0,
        200
    );
    let (code, body) = curl(
        &a,
        "POST",
        "sys/policies/acl/lister",
        Some(&policy(r#"\"deny\""#)),
    );
    assert!(code / 100 == 2, "{code} {body}");
    let denied = within(std::time::Duration::from_secs(1), || {
        server::curl_as(&b, Some(&lister), "LIST", "pki/certs", None).0 == 403
    });
    assert!(
        denied.is_some(),
        "B still applies the policy as it was before A changed it"
    );

    // A role narrowed on A refuses on B within 1 s.
    let (code, body) = curl(
        &a,
        "POST",
        "pki/roles/service",
        Some(
            r#"{"allowed_domains":"example.org","allow_subdomains":true,"key_type":"ec","max_ttl":"720h"}"#,
        ),
    );
    assert!(code / 100 == 2, "{code} {body}");
    let narrowed = within(std::time::Duration::from_secs(1), || {
        curl(&b, "POST", "pki/issue/service", Some(issue)).0 == 400
    });
    assert!(
        narrowed.is_some(),
        "B still issues under the role as it was before A changed it"
    );

    // A CRL configuration changed on A is B's within 1 s: its `config/crl` and its next CRL.
    let (_, before) = curl(&b, "GET", "pki/config/crl", None);
    assert_eq!(json(&before)["data"]["expiry"], "72h", "{before}");
    let (code, body) = curl(&a, "POST", "pki/config/crl", Some(r#"{"expiry":"48h"}"#));
    assert!(code / 100 == 2, "{code} {body}");
    let configured = within(std::time::Duration::from_secs(1), || {
        json(&curl(&b, "GET", "pki/config/crl", None).1)["data"]["expiry"] == "48h"
    });
    assert!(
        configured.is_some(),
        "B still reads the CRL configuration as it was before A changed it"
    );
    let (_, pem) = curl(&b, "GET", "pki/crl/pem", None);
    std::fs::write(work.path().join("crl48.pem"), pem).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "crl",
            "-in",
            "crl48.pem",
            "-noout",
            "-lastupdate",
            "-nextupdate",
            "-dateopt",
            "iso_8601",
        ])
        .current_dir(work.path())
        .output()
        .unwrap();
    let dates = String::from_utf8_lossy(&out.stdout).into_owned();
    let date = |label: &str| {
        let text = dates
            .lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label} in {dates}"));
        time::OffsetDateTime::parse(
            &text.trim().replace(' ', "T"),
            &time::format_description::well_known::Iso8601::DEFAULT,
        )
        .unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    assert_eq!(
        date("nextUpdate=") - date("lastUpdate="),
        time::Duration::hours(48),
        "{dates}"
    );

    // Health: the database is reachable, and the metrics count commits.
    let (code, body) = curl(&b, "GET", "sys/health", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["database"]["engine"], "postgres");
    assert_eq!(json(&body)["database"]["reachable"], true);
    let (_, metrics) = curl(&a, "GET", "sys/metrics", None);
    assert!(
        metrics.contains("mutual_commit_seconds_count "),
        "{metrics}"
    );

    // `--addr` with several nodes: a node that cannot be reached is named, the next one used.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let addrs = format!("{closed},{}", b.addr);
    let out = server::mutual(&["certs", "--addr", &addrs, "--token", &token]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&serial),
        "the certificates listed by B"
    );
    assert!(
        stderr.contains(&closed) && stderr.contains("trying the next node"),
        "{stderr}"
    );
}

/// What the clients of [`load`] saw.
#[derive(Default)]
struct Seen {
    /// Serials received with a 200.
    serials: Vec<String>,
    /// 5xx answers: (status, body).
    failures: Vec<(u16, String)>,
    /// Connection errors (a node gone), each followed by a switch to the other node.
    switches: usize,
}

/// `threads` clients issuing on `nodes` (each starts on its own, and switches to the next
/// on a connection error or a 5xx, as `--addr A,B` does) until `stop` is set or `deadline`.
fn load(
    nodes: Vec<String>,
    token: String,
    threads: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Seen>>,
    deadline: std::time::Instant,
) -> Vec<std::thread::JoinHandle<()>> {
    use std::sync::atomic::Ordering;
    (0..threads)
        .map(|i| {
            let (nodes, token, stop, seen) =
                (nodes.clone(), token.clone(), stop.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut at = i % nodes.len();
                let mut conn = None;
                let body = format!(r#"{{"common_name":"c{i}.example.com","ttl":"1h"}}"#);
                while !stop.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    if conn.is_none() {
                        match mutual_bench::Conn::open(&nodes[at]) {
                            Ok(c) => conn = Some(c),
                            Err(_) => {
                                seen.lock().unwrap().switches += 1;
                                at = (at + 1) % nodes.len();
                                std::thread::sleep(std::time::Duration::from_millis(20));
                                continue;
                            }
                        }
                    }
                    let c = conn.as_mut().unwrap();
                    match c.request(
                        "POST",
                        "/v1/pki/issue/service",
                        Some(&token),
                        body.as_bytes(),
                    ) {
                        Ok((200, resp)) => {
                            let v: serde_json::Value = serde_json::from_slice(&resp).expect("JSON");
                            let serial = v["data"]["serial_number"]
                                .as_str()
                                .expect("serial")
                                .to_string();
                            seen.lock().unwrap().serials.push(serial);
                        }
                        Ok((code, resp)) if code >= 500 => {
                            seen.lock()
                                .unwrap()
                                .failures
                                .push((code, String::from_utf8_lossy(&resp).into_owned()));
                            at = (at + 1) % nodes.len();
                            conn = None;
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        Ok((code, resp)) => panic!("{code}: {}", String::from_utf8_lossy(&resp)),
                        Err(_) => {
                            seen.lock().unwrap().switches += 1;
                            at = (at + 1) % nodes.len();
                            conn = None;
                        }
                    }
                }
            })
        })
        .collect()
}

/// Two nodes with the story's mount, made on the first and served by both.
fn two_nodes(cluster: &pg::Postgres, db: &str) -> (String, String, server::Server, server::Server) {
    let url = cluster.database(db);
    let token = mutual_pg_init(&url, pg::KEK);
    let a = mutual_pg(&url, pg::KEK, &token);
    let b = mutual_pg(&url, pg::KEK, &token);
    for (path, body) in [
        (
            "sys/mounts/pki",
            r#"{"type":"pki","config":{"max_lease_ttl":"87600h"}}"#,
        ),
        (
            "pki/root/generate/internal",
            r#"{"common_name":"HA Root","key_type":"ec","ttl":"8760h"}"#,
        ),
        (
            "pki/roles/service",
            r#"{"allowed_domains":"example.com","allow_subdomains":true,"key_type":"ec","max_ttl":"720h"}"#,
        ),
    ] {
        let (code, resp) = curl(&a, "POST", path, Some(body));
        assert!(code / 100 == 2, "{path}: {code} {resp}");
    }
    let issue = r#"{"common_name":"www.example.com","ttl":"1h"}"#;
    assert!(
        within(std::time::Duration::from_secs(3), || curl(
            &b,
            "POST",
            "pki/issue/service",
            Some(issue)
        )
        .0 == 200)
        .is_some(),
        "B serves the mount made on A"
    );
    (url, token, a, b)
}

/// Every serial received is stored once: the stored serials (hex, as `certs` keeps them).
fn assert_all_stored(cluster: &pg::Postgres, db: &str, serials: &[String]) {
    let stored: std::collections::HashSet<String> = cluster
        .sql(db, "SELECT serial FROM certs")
        .lines()
        .map(str::to_string)
        .collect();
    let mut distinct = std::collections::HashSet::new();
    for s in serials {
        assert!(distinct.insert(s.clone()), "serial {s} received twice");
        let hex = s.replace(':', "");
        assert!(
            stored.contains(&hex),
            "serial {s} was received but is not in certs"
        );
    }
    let rows = cluster.sql(db, "SELECT COUNT(*) = COUNT(DISTINCT serial) FROM certs");
    assert_eq!(rows, "t");
}

#[test]
fn a_node_killed_under_load_loses_nothing_and_rejoins() {
    use std::sync::atomic::Ordering;
    let cluster = pg::Postgres::start();
    let (url, token, mut a, b) = two_nodes(&cluster, "killnode");
    let hosts = vec![durability::host(&a), durability::host(&b)];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let clients = load(
        hosts,
        token.clone(),
        8,
        stop.clone(),
        seen.clone(),
        deadline,
    );
    let kill_at = 100 + (std::process::id() as usize % 200);
    within(std::time::Duration::from_secs(60), || {
        seen.lock().unwrap().serials.len() >= kill_at
    });
    durability::kill9(&mut a);
    let at_kill = seen.lock().unwrap().serials.len();
    // The survivor carries the load.
    let carried = within(std::time::Duration::from_secs(30), || {
        seen.lock().unwrap().serials.len() >= at_kill + 300
    });
    // The killed node rejoins on restart and serves.
    let again = mutual_pg(&url, pg::KEK, &token);
    let issue = r#"{"common_name":"back.example.com","ttl":"1h"}"#;
    let (code, body) = curl(&again, "POST", "pki/issue/service", Some(issue));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client");
    }
    assert!(
        carried.is_some(),
        "the surviving node did not carry the load"
    );
    assert_eq!(code, 200, "the restarted node: {body}");
    let seen = seen.lock().unwrap();
    eprintln!(
        "killed after {at_kill}; {} received, {} switches, {} failures",
        seen.serials.len(),
        seen.switches,
        seen.failures.len()
    );
    assert!(
        seen.failures.is_empty(),
        "5xx answers: {:?}",
        &seen.failures[..seen.failures.len().min(3)]
    );
    assert_all_stored(&cluster, "killnode", &seen.serials);
    drop(b);
}

#[test]
fn postgres_restarted_under_load_nodes_reconnect_and_nothing_succeeds_unstored() {
    use std::sync::atomic::Ordering;
    let mut cluster = pg::Postgres::start();
    let (_url, token, a, b) = two_nodes(&cluster, "restart");
    let hosts = vec![durability::host(&a), durability::host(&b)];
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Seen::default()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let clients = load(hosts, token, 4, stop.clone(), seen.clone(), deadline);
    within(std::time::Duration::from_secs(60), || {
        seen.lock().unwrap().serials.len() >= 100
    });
    cluster.stop();
    // While it is down, a node's health says so, as Vault's 503.
    let (code, body) = curl(&b, "GET", "sys/health", None);
    assert_eq!(code, 503, "{body}");
    assert_eq!(json(&body)["database"]["reachable"], false, "{body}");
    cluster.run();
    let at_restart = seen.lock().unwrap().serials.len();
    // Without a restart of their own, the nodes serve again.
    let back = within(std::time::Duration::from_secs(30), || {
        seen.lock().unwrap().serials.len() >= at_restart + 100
    });
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client");
    }
    assert!(
        back.is_some(),
        "the nodes did not serve again after PostgreSQL came back"
    );
    let seen = seen.lock().unwrap();
    eprintln!(
        "{} received, {} failures while PostgreSQL was down, back after {back:?}",
        seen.serials.len(),
        seen.failures.len()
    );
    // Each failure was a clear 5xx: 503 with the database named as the reason.
    for (code, body) in &seen.failures {
        assert_eq!(*code, 503, "{body}");
        let v: serde_json::Value = serde_json::from_str(body).expect("a JSON error");
        let msg = v["errors"][0].as_str().unwrap_or_default();
        assert!(msg.contains("database"), "{msg}");
    }
    assert_all_stored(&cluster, "restart", &seen.serials);
    let (code, body) = curl(&a, "GET", "sys/health", None);
    assert_eq!(code, 200, "{body}");
}

/// Runs `script` on a fresh database of `cluster` (a node on PostgreSQL) and on
/// `mutual server --dev` (SQLite): the two facts files, read.
fn story_on_both(
    cluster: &pg::Postgres,
    db: &str,
    script: &'static str,
    facts_file: &str,
) -> (String, String) {
    let sqlite = std::thread::spawn(move || {
        let server = mutual_dev();
        let work = tempfile::tempdir().unwrap();
        let out = run_script(&server, script, work.path());
        assert_ok(&server, script, &out);
        work
    });
    let url = cluster.database(db);
    let token = mutual_pg_init(&url, pg::KEK);
    let server = mutual_pg(&url, pg::KEK, &token);
    let work = tempfile::tempdir().unwrap();
    let out = run_script(&server, script, work.path());
    assert_ok(&server, script, &out);
    let sqlite = sqlite.join().expect("the SQLite run");
    let read =
        |d: &std::path::Path| std::fs::read_to_string(d.join(facts_file)).unwrap_or_default();
    (read(work.path()), read(sqlite.path()))
}

#[test]
fn auth_stories_give_the_same_answers_on_postgres_as_on_sqlite() {
    if !have_bao("auth_stories_give_the_same_answers_on_postgres_as_on_sqlite") {
        return;
    }
    let cluster = pg::Postgres::start();
    for (db, script, file) in [
        ("auth", "auth_story.sh", "facts"),
        ("authx", "authx_story.sh", "facts"),
        ("hvac_auth", "hvac_auth.py", "hvac-auth-facts"),
    ] {
        let (on_pg, on_sqlite) = story_on_both(&cluster, db, script, file);
        assert!(!on_pg.is_empty(), "{script} wrote its facts");
        assert_eq!(on_pg, on_sqlite, "{script}");
    }
}
