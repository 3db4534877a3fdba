//! The offline CA, driven through the real binary, with every certificate read back by
//! `openssl` (and x509-parser) rather than by ourselves.

mod common;

use common::{serial_of, Story};
use x509_parser::prelude::*;

fn openssl_verify(s: &Story, args: &[&str]) -> common::Run {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    s.run("openssl", &all)
}

#[test]
fn story_certificates_verify_with_openssl() {
    let s = Story::build("rsa");
    // The root is RSA 2048, as the story asks.
    let text = s
        .run(
            "openssl",
            &["x509", "-in", "certs/root.pem", "-noout", "-text"],
        )
        .ok()
        .stdout;
    assert!(text.contains("Public-Key: (2048 bit)"), "{text}");
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("Certificate Sign, CRL Sign"), "{text}");

    let www = openssl_verify(
        &s,
        &[
            "-CAfile",
            "certs/root.pem",
            "-purpose",
            "sslserver",
            "certs/www.example.com.crt",
        ],
    )
    .ok();
    assert!(www.stdout.contains("OK"));
    for who in ["alice", "bob"] {
        openssl_verify(
            &s,
            &[
                "-CAfile",
                "certs/root.pem",
                "-purpose",
                "sslclient",
                &format!("certs/{who}.example.com.crt"),
            ],
        )
        .ok();
        // Leaf of an intermediate: the chain file carries the intermediate after the leaf.
        let leaf = format!("certs/{who}/{who}.example.com.crt");
        openssl_verify(
            &s,
            &[
                "-CAfile",
                "certs/root.pem",
                "-untrusted",
                &leaf,
                "-purpose",
                "sslclient",
                &leaf,
            ],
        )
        .ok();
        // The intermediate trusted alone.
        let ca = format!("certs/{who}-ca.pem");
        openssl_verify(
            &s,
            &[
                "-partial_chain",
                "-CAfile",
                &ca,
                "-purpose",
                "sslclient",
                &leaf,
            ],
        )
        .ok();
    }
    // Alice's intermediate alone does not accept Bob's leaf.
    let refused = openssl_verify(
        &s,
        &[
            "-partial_chain",
            "-CAfile",
            "certs/alice-ca.pem",
            "-untrusted",
            "certs/bob/bob.example.com.crt",
            "certs/bob/bob.example.com.crt",
        ],
    );
    assert_ne!(refused.code, 0);

    // SANs and profile of the server certificate, read by openssl.
    let text = s
        .run(
            "openssl",
            &[
                "x509",
                "-in",
                "certs/www.example.com.crt",
                "-noout",
                "-text",
            ],
        )
        .ok()
        .stdout;
    for want in [
        "DNS:www.example.com",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "CA:FALSE",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
    ] {
        assert!(text.contains(want), "missing {want} in {text}");
    }
}

#[test]
fn leaf_files_have_the_right_shape_and_modes() {
    let s = Story::build("ec");
    use std::os::unix::fs::PermissionsExt;
    let key_mode = std::fs::metadata(s.path("certs/alice.example.com.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600, "key must be 0600");
    let kek_mode = std::fs::metadata(s.data().join("kek"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(kek_mode & 0o777, 0o600, "kek must be 0600");
    let key = s.read("certs/alice.example.com.key");
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "PKCS#8: {key}"
    );
    s.run(
        "openssl",
        &["pkey", "-in", "certs/alice.example.com.key", "-noout"],
    )
    .ok();
    // Issued by the root: the file is the leaf alone (the chain stops before the root).
    let crt = s.read("certs/alice.example.com.crt");
    assert_eq!(crt.matches("BEGIN CERTIFICATE").count(), 1);
    // Issued by an intermediate: leaf, then the intermediate, no root.
    let crt = s.read("certs/alice/alice.example.com.crt");
    let ders = mutual_pki_certs(&crt);
    assert_eq!(ders.len(), 2);
    let (_, leaf) = X509Certificate::from_der(&ders[0]).unwrap();
    let (_, int) = X509Certificate::from_der(&ders[1]).unwrap();
    assert_eq!(leaf.subject().to_string(), "CN=alice.example.com");
    assert_eq!(int.subject().to_string(), "CN=Alice Intermediate Authority");
    assert_eq!(leaf.issuer(), int.subject());
    // x509-parser: 20-byte positive serial; it is what `mutual certs` shows.
    assert_eq!(leaf.raw_serial().len(), 20);
    let listed = s.mutual(&["certs", "--ca", "alice"]).ok().stdout;
    let colon = leaf
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert!(listed.contains(&colon), "{listed} should list {colon}");
}

fn mutual_pki_certs(pem_text: &str) -> Vec<Vec<u8>> {
    ::pem::parse_many(pem_text)
        .unwrap()
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect()
}

#[test]
fn every_key_type_for_cas_and_leaves_is_accepted_by_openssl() {
    for (ca_type, bits, leaf_type, leaf_bits) in [
        ("rsa", "3072", "rsa", "4096"),
        ("ec", "384", "ed25519", "0"),
        ("ed25519", "0", "ec", "256"),
        ("ec", "256", "rsa", "2048"),
    ] {
        let s = Story::new();
        let mut init = vec!["ca", "init", "--key-type", ca_type];
        if bits != "0" {
            init.extend(["--key-bits", bits]);
        }
        s.mutual(&init).ok();
        s.mutual(&[
            "role",
            "set",
            "r",
            "--ca",
            "root",
            "--allowed-domains",
            "example.com",
            "--allow-subdomains",
            "--key-type",
            leaf_type,
            "--key-bits",
            leaf_bits,
        ])
        .ok();
        s.mutual(&["issue", "a.example.com", "--role", "r"]).ok();
        let root = s.mutual(&["ca", "cert", "root"]).ok().stdout;
        s.write("root.pem", &root);
        let v = openssl_verify(
            &s,
            &[
                "-CAfile",
                "root.pem",
                "-purpose",
                "sslserver",
                "a.example.com.crt",
            ],
        );
        assert_eq!(
            v.code, 0,
            "{ca_type}/{leaf_type}: {} {}",
            v.stdout, v.stderr
        );
        let text = s
            .run(
                "openssl",
                &["x509", "-in", "a.example.com.crt", "-noout", "-text"],
            )
            .ok()
            .stdout;
        let usage_ok = if leaf_type == "rsa" {
            text.contains("Digital Signature, Key Encipherment")
        } else {
            text.contains("Digital Signature") && !text.contains("Key Encipherment")
        };
        assert!(usage_ok, "{leaf_type}: {text}");
    }
}

#[test]
fn revocation_shows_in_a_crl_that_openssl_verifies_and_enforces() {
    let s = Story::build("ec");
    let serial = serial_of(&s, "certs/bob/bob.example.com.crt");
    let out = s
        .mutual(&["revoke", &serial, "--reason", "keyCompromise"])
        .ok()
        .stdout;
    assert!(out.contains("revoked"), "{out}");
    // A second revoke changes nothing and says so.
    let again = s.mutual(&["revoke", &serial]).ok().stdout;
    assert!(again.contains("already revoked"), "{again}");
    s.mutual(&["crl", "--ca", "bob", "--out", "bob.crl", "--pem"])
        .ok();
    s.mutual(&["crl", "--ca", "bob", "--out", "bob.der"]).ok();
    let text = s
        .run(
            "openssl",
            &[
                "crl",
                "-in",
                "bob.crl",
                "-CAfile",
                "certs/bob-ca.pem",
                "-noout",
                "-text",
            ],
        )
        .ok();
    assert!(
        text.stderr.contains("verify OK") || text.stdout.contains("verify OK"),
        "{}{}",
        text.stdout,
        text.stderr
    );
    assert!(text.stdout.contains("Key Compromise"), "{}", text.stdout);
    assert!(text.stdout.contains("X509v3 CRL Number"), "{}", text.stdout);
    assert!(
        text.stdout.contains("X509v3 Authority Key Identifier"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("Next Update"), "{}", text.stdout);
    let upper = serial.replace(':', "").to_uppercase();
    assert!(
        text.stdout.contains(&upper),
        "serial {upper} in {}",
        text.stdout
    );
    s.run(
        "openssl",
        &["crl", "-inform", "DER", "-in", "bob.der", "-noout"],
    )
    .ok();
    // CRL numbers grow.
    let n1 = s
        .run(
            "openssl",
            &["crl", "-in", "bob.crl", "-noout", "-crlnumber"],
        )
        .ok()
        .stdout;
    let n2 = s
        .run(
            "openssl",
            &[
                "crl",
                "-inform",
                "DER",
                "-in",
                "bob.der",
                "-noout",
                "-crlnumber",
            ],
        )
        .ok()
        .stdout;
    assert_ne!(n1, n2);

    let bundle = format!("{}{}", s.read("certs/root.pem"), s.read("certs/bob-ca.pem"));
    s.write("bundle.pem", &bundle);
    let v = openssl_verify(
        &s,
        &[
            "-crl_check",
            "-CRLfile",
            "bob.crl",
            "-CAfile",
            "bundle.pem",
            "certs/bob/bob.example.com.crt",
        ],
    );
    assert_ne!(v.code, 0);
    assert!(format!("{}{}", v.stdout, v.stderr).contains("certificate revoked"));
    // Alice, from the other intermediate, is untouched.
    let alice_serial = serial_of(&s, "certs/alice/alice.example.com.crt");
    let listed = s.mutual(&["certs", "--revoked"]).ok().stdout;
    assert!(listed.contains(&common::colon_hex(&serial)), "{listed}");
    assert!(
        !listed.contains(&common::colon_hex(&alice_serial)),
        "{listed}"
    );
}

#[test]
fn a_ttl_over_max_is_capped_with_a_warning_and_json_reports_it() {
    let s = Story::build("ec");
    let out = s
        .mutual(&[
            "--json",
            "issue",
            "carol.example.com",
            "--role",
            "service",
            "--ttl",
            "800h",
            "--out",
            "c",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    assert!(
        warnings[0].as_str().unwrap().contains("capped to 720h"),
        "{v}"
    );
    let end = s
        .run(
            "openssl",
            &[
                "x509",
                "-in",
                "c/carol.example.com.crt",
                "-noout",
                "-enddate",
                "-startdate",
            ],
        )
        .ok()
        .stdout;
    let cert = std::fs::read(s.path("c/carol.example.com.crt")).unwrap();
    let ders = mutual_pki_certs(std::str::from_utf8(&cert).unwrap());
    let (_, c) = X509Certificate::from_der(&ders[0]).unwrap();
    let secs = c.validity().not_after.timestamp() - c.validity().not_before.timestamp();
    // 720h plus Vault's 30 s backdating of notBefore.
    assert_eq!(secs, 720 * 3600 + 30, "{end}");
}

#[test]
fn refusals_are_one_line_name_the_rule_and_change_nothing() {
    let s = Story::build("ec");
    let before = s.mutual(&["certs"]).ok().stdout;
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["issue", "evil.com", "--role", "service"],
            1,
            "\"evil.com\" is not allowed by role \"service\" (allowed_domains: example.com)",
        ),
        (
            &["issue", "a.example.com", "--role", "nope"],
            1,
            "role \"nope\" not found",
        ),
        (
            &["role", "set", "x", "--ca", "nope"],
            1,
            "CA \"nope\" not found",
        ),
        (
            &["issue", "a.example.com", "--role", "service", "--ttl", "7x"],
            2,
            "invalid duration \"7x\"",
        ),
        (
            &[
                "issue",
                "a.example.com",
                "--role",
                "service",
                "--ip",
                "999.1.1.1",
            ],
            1,
            "999.1.1.1",
        ),
        (
            &["issue", "*.example.com", "--role", "service"],
            1,
            "wildcard",
        ),
        (
            &[
                "issue",
                "a.example.com",
                "--role",
                "service",
                "--uri",
                "spiffe://example.org/a",
            ],
            1,
            "URI SAN",
        ),
        (
            &["sign", "missing.csr", "--role", "service"],
            1,
            "reading CSR missing.csr",
        ),
        (&["revoke", "zz:zz"], 1, "invalid serial"),
        (
            &["revoke", "01:02:03"],
            1,
            "certificate \"01:02:03\" not found",
        ),
        (
            &["revoke", "01:02", "--reason", "stolen"],
            1,
            "unknown revocation reason",
        ),
        (&["crl", "--ca", "nope"], 1, "CA \"nope\" not found"),
        (
            &["ca", "intermediate", "alice", "--name", "Again"],
            1,
            "CA \"alice\" already exists",
        ),
        (&["ca", "init"], 1, "CA \"root\" already exists"),
        (
            &["ca", "init", "--key-type", "rsa", "--key-bits", "1024"],
            1,
            "RSA with 1024 bits",
        ),
        (
            &["ca", "urls", "root", "--crl", "ftp://x"],
            1,
            "not an http:// or https:// URL",
        ),
        (
            &["verify", "nope.crt", "--ca", "certs/root.pem"],
            1,
            "reading certificate nope.crt",
        ),
        (&["inspect", "nope.crt"], 1, "reading certificate nope.crt"),
        (&["certs", "--expiring", "soon"], 2, "invalid duration"),
    ];
    for (args, code, want) in cases {
        let r = s.mutual(args);
        assert_eq!(r.code, *code, "{args:?}: {}", r.stderr);
        let line = r.stderr.lines().next().unwrap_or_default();
        assert!(
            line.contains(want),
            "{args:?}: wanted {want:?} in {:?}",
            r.stderr
        );
        if *code == 1 {
            assert_eq!(
                r.stderr.trim().lines().count(),
                1,
                "{args:?}: one line, got {:?}",
                r.stderr
            );
            assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        }
    }
    assert_eq!(
        s.mutual(&["certs"]).ok().stdout,
        before,
        "nothing was issued"
    );
}

#[test]
fn sign_checks_csrs_made_by_openssl() {
    let s = Story::build("ec");
    // A good EC CSR with a SAN.
    s.run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "svc.key",
            "-out",
            "svc.csr",
            "-subj",
            "/CN=svc.example.com",
            "-addext",
            "subjectAltName=DNS:svc.example.com,DNS:api.example.com",
        ],
    )
    .ok();
    s.mutual(&["sign", "svc.csr", "--role", "service", "--out", "svc.crt"])
        .ok();
    openssl_verify(
        &s,
        &[
            "-CAfile",
            "certs/root.pem",
            "-purpose",
            "sslserver",
            "svc.crt",
        ],
    )
    .ok();
    let text = s
        .run(
            "openssl",
            &["x509", "-in", "svc.crt", "-noout", "-ext", "subjectAltName"],
        )
        .ok()
        .stdout;
    assert!(text.contains("DNS:api.example.com"), "{text}");
    // The certificate carries the CSR's key.
    let a = s
        .run("openssl", &["x509", "-in", "svc.crt", "-noout", "-pubkey"])
        .ok()
        .stdout;
    let b = s
        .run("openssl", &["pkey", "-in", "svc.key", "-pubout"])
        .ok()
        .stdout;
    assert_eq!(a, b);

    // A CSR for a name the role refuses.
    s.run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "evil.key",
            "-out",
            "evil.csr",
            "-subj",
            "/CN=evil.com",
        ],
    )
    .ok();
    let r = s
        .mutual(&["sign", "evil.csr", "--role", "service"])
        .fails(1);
    assert!(
        r.stderr.contains("\"evil.com\" is not allowed"),
        "{}",
        r.stderr
    );

    // An RSA key where the role wants EC.
    s.run(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "rsa.key",
            "-out",
            "rsa.csr",
            "-subj",
            "/CN=rsa.example.com",
        ],
    )
    .ok();
    let r = s.mutual(&["sign", "rsa.csr", "--role", "service"]).fails(1);
    assert!(r.stderr.contains("key"), "{}", r.stderr);

    // A CSR whose signature does not match its content (one byte of the CN changed).
    let csr_pem = s.read("svc.csr");
    let der = ::pem::parse(&csr_pem).unwrap().into_contents();
    let pos = der.windows(3).position(|w| w == b"svc").unwrap();
    let mut bad = der.clone();
    bad[pos] = b'x';
    let bad_pem = ::pem::encode(&::pem::Pem::new("CERTIFICATE REQUEST", bad));
    s.write("tampered.csr", &bad_pem);
    let r = s
        .mutual(&["sign", "tampered.csr", "--role", "service"])
        .fails(1);
    assert!(
        r.stderr.contains("signature does not verify"),
        "{}",
        r.stderr
    );

    s.write(
        "garbage.csr",
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
    );
    let r = s
        .mutual(&["sign", "garbage.csr", "--role", "service"])
        .fails(1);
    assert!(r.stderr.contains("CSR does not parse"), "{}", r.stderr);
    s.write("empty.csr", "");
    let r = s
        .mutual(&["sign", "empty.csr", "--role", "service"])
        .fails(1);
    assert!(r.stderr.contains("CSR"), "{}", r.stderr);
}

#[test]
fn pkcs12_is_read_by_openssl_and_keytool() {
    let s = Story::build("ec");
    s.mutual(&[
        "issue",
        "java.example.com",
        "--role",
        "service",
        "--out",
        "j",
        "--p12",
        "j/java.p12",
    ])
    .ok();
    let out = s
        .run(
            "openssl",
            &[
                "pkcs12",
                "-in",
                "j/java.p12",
                "-passin",
                "pass:changeit",
                "-nodes",
            ],
        )
        .ok()
        .stdout;
    assert!(
        out.contains("BEGIN PRIVATE KEY") && out.contains("CN=java.example.com")
            || out.contains("CN = java.example.com"),
        "{out}"
    );
    if which("keytool") {
        let out = s
            .run(
                "keytool",
                &[
                    "-list",
                    "-v",
                    "-keystore",
                    "j/java.p12",
                    "-storetype",
                    "PKCS12",
                    "-storepass",
                    "changeit",
                ],
            )
            .ok()
            .stdout;
        assert!(out.contains("PrivateKeyEntry"), "{out}");
        assert!(out.contains("java.example.com"), "{out}");
    } else {
        eprintln!("keytool not installed; PKCS#12 checked with openssl only");
    }
}

fn which(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn ca_keys_are_sealed_so_the_database_alone_is_useless() {
    let s = Story::build("ec");
    let db = std::fs::read(s.data().join("mutual.db")).unwrap();
    let wal = std::fs::read(s.data().join("mutual.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!String::from_utf8_lossy(bytes).contains("PRIVATE KEY"));
    }
    // A copy of the data dir without the kek cannot open the store.
    let copy = s.path("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["mutual.db", "mutual.db-wal", "mutual.db-shm"] {
        let _ = std::fs::copy(s.data().join(f), copy.join(f));
    }
    let r = s.run(
        common::bin().to_str().unwrap(),
        &["--data", copy.to_str().unwrap(), "ca", "list"],
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("key-encryption key"), "{}", r.stderr);
    // With the wrong key it refuses too.
    std::fs::write(
        copy.join("kek"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let r = s.run(
        common::bin().to_str().unwrap(),
        &["--data", copy.to_str().unwrap(), "ca", "list"],
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("does not open this store"),
        "{}",
        r.stderr
    );
}

#[test]
fn stores_that_are_not_stores_are_refused() {
    let s = Story::new();
    std::fs::create_dir(s.path("empty")).unwrap();
    let r = s
        .run(
            common::bin().to_str().unwrap(),
            &["--data", "empty", "ca", "list"],
        )
        .fails(1);
    assert!(r.stderr.contains("is not a mutual store"), "{}", r.stderr);
    std::fs::create_dir(s.path("corrupt")).unwrap();
    std::fs::write(s.path("corrupt/mutual.db"), vec![7u8; 8192]).unwrap();
    std::fs::write(
        s.path("corrupt/kek"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let r = s
        .run(
            common::bin().to_str().unwrap(),
            &["--data", "corrupt", "ca", "list"],
        )
        .fails(1);
    assert!(r.stderr.contains("corrupt"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1);
}

#[test]
fn two_issuers_at_once_on_one_store_both_succeed() {
    let s = Story::build("ec");
    let spawn = |cn: &str| {
        std::process::Command::new(common::bin())
            .current_dir(s.dir.path())
            .args([
                "--data",
                s.data().to_str().unwrap(),
                "--json",
                "issue",
                cn,
                "--role",
                "service",
                "--out",
                "par",
            ])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|sc| {
        let ha = sc.spawn(|| {
            (0..5)
                .map(|i| spawn(&format!("a{i}.example.com")))
                .collect::<Vec<_>>()
        });
        let hb = sc.spawn(|| {
            (0..5)
                .map(|i| spawn(&format!("b{i}.example.com")))
                .collect::<Vec<_>>()
        });
        (ha.join().unwrap(), hb.join().unwrap())
    });
    let mut serials = std::collections::HashSet::new();
    for out in a.iter().chain(b.iter()) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(serials.insert(v["serial_number"].as_str().unwrap().to_string()));
    }
    assert_eq!(serials.len(), 10);
    let listed = s.mutual(&["certs"]).ok().stdout;
    for serial in &serials {
        assert!(listed.contains(serial.as_str()));
    }
}

#[test]
fn json_everywhere_it_reports() {
    let s = Story::build("ec");
    for args in [
        &["--json", "ca", "list"][..],
        &["--json", "ca", "cert", "root"],
        &["--json", "role", "list"],
        &["--json", "role", "show", "service"],
        &["--json", "certs"],
        &["--json", "inspect", "certs/www.example.com.crt"],
        &[
            "--json",
            "verify",
            "certs/www.example.com.crt",
            "--ca",
            "certs/root.pem",
        ],
    ] {
        let out = s.mutual(args).ok();
        let v: Result<serde_json::Value, _> = serde_json::from_str(&out.stdout);
        assert!(v.is_ok(), "{args:?} printed non-JSON: {}", out.stdout);
    }
}

#[test]
fn a_store_locked_by_another_process_is_waited_for_then_named() {
    let s = Story::build("ec");
    // Another process holds the write lock for 4 s (python's sqlite3, not ours).
    let db = s.data().join("mutual.db");
    let mut holder = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\ncon=sqlite3.connect(sys.argv[1],isolation_level=None)\ncon.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\ntime.sleep(4)\ncon.execute('ROLLBACK')",
            db.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let out = std::process::Command::new(common::bin())
        .current_dir(s.dir.path())
        .env("MUTUAL_LOCK_TIMEOUT", "1s")
        .args([
            "--data",
            s.data().to_str().unwrap(),
            "issue",
            "late.example.com",
            "--role",
            "service",
            "--out",
            "late",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the store is locked by another process (waited 1 s)"),
        "{stderr}"
    );
    assert!(
        !s.path("late/late.example.com.crt").exists(),
        "nothing written when refused"
    );
    holder.wait().unwrap();
    // Once the lock is released, the same command succeeds.
    s.mutual(&[
        "issue",
        "late.example.com",
        "--role",
        "service",
        "--out",
        "late",
    ])
    .ok();
}
