//! The bad-identity matrix: client identities made with openssl alone
//! (`fixtures/bad_identities.sh`), each refused by `openssl verify -auth_level 2
//! -crl_check_all -purpose sslclient`, by `mutual verify`, and by `mutual serve hello` in the
//! handshake over TLS 1.2 and TLS 1.3 — with the same first error in all three.

mod serving;

use std::process::Command;

use serving::Server;

/// (row, what openssl verify reports first, mutual's code)
const ROWS: &[(&str, &str, &str)] = &[
    ("self_signed", "self-signed certificate", "unknown_issuer"),
    (
        "unknown_ca",
        "unable to get local issuer certificate",
        "unknown_issuer",
    ),
    (
        "missing_intermediate",
        "unable to get local issuer certificate",
        "unknown_issuer",
    ),
    ("expired", "certificate has expired", "expired"),
    (
        "not_yet_valid",
        "certificate is not yet valid",
        "not_yet_valid",
    ),
    (
        "server_only",
        "unsuitable certificate purpose",
        "wrong_purpose",
    ),
    (
        "no_digital_signature",
        "unsuitable certificate purpose",
        "wrong_purpose",
    ),
    ("revoked", "certificate revoked", "revoked"),
    ("revoked_intermediate", "certificate revoked", "revoked"),
    ("not_a_ca", "invalid CA certificate", "not_a_ca"),
    ("no_cert_sign", "invalid CA certificate", "not_a_ca"),
    (
        "path_len",
        "path length constraint exceeded",
        "path_len_exceeded",
    ),
    ("weak_key", "EE certificate key too weak", "weak_key"),
    (
        "sha1",
        "CA signature digest algorithm too weak",
        "weak_algorithm",
    ),
    (
        "critical_extension",
        "unhandled critical extension",
        "unsupported_critical_extension",
    ),
    (
        "name_constraints",
        "permitted subtree violation",
        "name_constraint_violation",
    ),
    ("expired_intermediate", "certificate has expired", "expired"),
    (
        "bad_signature",
        "certificate signature failure",
        "bad_signature",
    ),
];

fn sh(dir: &std::path::Path, script: &str) -> (i32, String) {
    let out = Command::new("bash")
        .current_dir(dir)
        .arg("-c")
        .arg(script)
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn bad_identity_matrix_is_refused_with_openssls_first_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/bad_identities.sh"
    );
    let (code, out) = sh(dir, &format!("bash {script} {}", dir.display()));
    assert_eq!(code, 0, "making the matrix: {out}");
    let crls: Vec<String> = ["root", "int", "revint", "oldint", "nc"]
        .iter()
        .map(|c| format!("crl/{c}.crl"))
        .collect();
    let mut args = vec![
        "hello",
        "--ca",
        "root.pem",
        "--cert",
        "server.crt",
        "--key",
        "server.key",
    ];
    for c in &crls {
        args.extend(["--crl", c.as_str()]);
    }
    let srv = Server::start(dir, &args);
    let crl_flags: String = crls.iter().map(|c| format!(" --crl {c}")).collect();
    let s_client = |row: &str, version: &str| {
        let chain = if std::fs::metadata(dir.join(format!("{row}.chain.pem")))
            .map(|m| m.len())
            .unwrap_or(0)
            > 0
        {
            format!("-cert_chain {row}.chain.pem")
        } else {
            String::new()
        };
        sh(dir, &format!(
            "printf 'GET /?name=Matrix HTTP/1.0\\r\\n\\r\\n' | openssl s_client -connect 127.0.0.1:{} {version} -quiet -cipher DEFAULT:@SECLEVEL=0 -cert {row}.leaf.pem -key {row}.key {chain} 2>&1",
            srv.port
        ))
    };

    // The setup is sound: a good identity gets through both ways.
    for version in ["-tls1_2", "-tls1_3"] {
        let (_, text) = s_client("good", version);
        assert!(text.contains("Hello Matrix"), "good over {version}: {text}");
    }

    let mut table = vec![format!(
        "{:<22} {:<40} {}",
        "row", "openssl verify", "mutual"
    )];
    for (row, openssl_says, code) in ROWS {
        let untrusted = if std::fs::metadata(dir.join(format!("{row}.chain.pem")))
            .map(|m| m.len())
            .unwrap_or(0)
            > 0
        {
            format!("-untrusted {row}.chain.pem")
        } else {
            String::new()
        };
        let (_, verify) = sh(dir, &format!(
            "openssl verify -auth_level 2 -crl_check_all -purpose sslclient -CAfile root.pem -CRLfile all.crl {untrusted} {row}.leaf.pem"
        ));
        let first = verify
            .lines()
            .find(|l| l.starts_with("error "))
            .unwrap_or_else(|| panic!("{row}: openssl verify accepted it: {verify}"));
        assert!(first.contains(openssl_says), "{row}: openssl says {first}");

        let (rc, ours) = sh(
            dir,
            &format!(
                "{} verify {row}.crt --ca root.pem --purpose client{crl_flags} --json",
                env!("CARGO_BIN_EXE_mutual")
            ),
        );
        assert_eq!(rc, 1, "{row}: mutual verify: {ours}");
        assert!(
            ours.contains(&format!("\"code\": \"{code}\"")),
            "{row}: mutual verify: {ours}"
        );

        let cn = format!("CN={row}.matrix.example.com");
        let needle = format!("reason.code=\"{code}\"");
        for (i, version) in ["-tls1_2", "-tls1_3"].iter().enumerate() {
            let (_, text) = s_client(row, version);
            assert!(
                !text.contains("Hello Matrix"),
                "{row} over {version} got in: {text}"
            );
            srv.wait_log_count(&["refused client", &cn, &needle], i + 1);
        }
        table.push(format!("{row:<22} {:<40} {code}", openssl_says));
    }
    println!("{}", table.join("\n"));
}
