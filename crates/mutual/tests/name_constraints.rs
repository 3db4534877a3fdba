//! Name constraints: an intermediate signed with Vault's constraint fields refuses to issue
//! outside them (naming the rule and the CA); a leaf minted outside them with the
//! intermediate's own key by `openssl x509 -req` is refused by `openssl verify` and by
//! `mutual verify`, and one inside is accepted by both (a URI constraint included, which
//! rustls-webpki alone would refuse). The offline CLI puts the same constraints into a CA.

mod server;

use std::{path::Path, process::Command};

use serde_json::{json, Value};
use server::{bin, curl, mutual_dev, Server};

fn post(s: &Server, path: &str, body: Value) -> (u16, Value) {
    let (code, text) = curl(s, "POST", path, Some(&body.to_string()));
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn ok(s: &Server, path: &str, body: Value) -> Value {
    let (code, v) = post(s, path, body);
    assert!((200..300).contains(&code), "POST {path}: {code} {v}");
    v
}

fn run(dir: &Path, program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .current_dir(dir)
        .args(args)
        .output()
        .expect(program);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A leaf for `sans` signed by openssl with the intermediate's key, as strict verifiers want it.
fn mint(dir: &Path, name: &str, sans: &str) {
    let ext = format!(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\nsubjectAltName={sans}\n"
    );
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    let steps: [&[&str]; 2] = [
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={name}"),
            "-out",
            &format!("{name}.csr"),
        ],
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "int.pem",
            "-CAkey",
            "int.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-sha256",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.pem"),
        ],
    ];
    for args in steps {
        let (done, text) = run(dir, "openssl", args);
        assert!(done, "openssl {args:?}: {text}");
    }
}

#[test]
fn a_constrained_intermediate_and_leaves_minted_outside_it() {
    let s = mutual_dev();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(&s, "sys/mounts/nc_root", json!({"type": "pki"}));
    ok(&s, "sys/mounts/nc_int", json!({"type": "pki"}));
    ok(
        &s,
        "nc_root/root/generate/internal",
        json!({"common_name": "NC Root", "key_type": "ec", "ttl": "720h"}),
    );
    let gen = ok(
        &s,
        "nc_int/intermediate/generate/exported",
        json!({"common_name": "Constrained Authority", "key_type": "ec"}),
    );
    let (code, bad) = post(
        &s,
        "nc_root/root/sign-intermediate",
        json!({"csr": gen["data"]["csr"], "permitted_ip_ranges": "10.0.0.0/33"}),
    );
    assert_eq!(code, 400);
    assert!(bad.to_string().contains("permitted_ip_ranges"), "{bad}");
    let signed = ok(
        &s,
        "nc_root/root/sign-intermediate",
        json!({
            "csr": gen["data"]["csr"],
            "ttl": "240h",
            "permitted_dns_domains": "example.com",
            "excluded_dns_domains": "bad.example.com",
            "permitted_uri_domains": "example.org",
            "permitted_ip_ranges": "127.0.0.0/8",
        }),
    );
    let int_pem = signed["data"]["certificate"].as_str().unwrap();
    ok(
        &s,
        "nc_int/intermediate/set-signed",
        json!({"certificate": int_pem}),
    );
    ok(
        &s,
        "nc_int/roles/any",
        json!({"allow_any_name": true, "allow_ip_sans": true, "allowed_uri_sans": "*",
               "enforce_hostnames": false, "key_type": "ec", "ttl": "1h"}),
    );
    std::fs::write(d.join("int.pem"), int_pem).unwrap();
    std::fs::write(
        d.join("int.key"),
        gen["data"]["private_key"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(
        d.join("root.pem"),
        curl(&s, "GET", "nc_root/ca/pem", None).1,
    )
    .unwrap();
    let (_, text) = run(
        d,
        "openssl",
        &[
            "x509",
            "-in",
            "int.pem",
            "-noout",
            "-ext",
            "nameConstraints",
        ],
    );
    assert!(
        text.contains("critical") && text.contains("DNS:example.com"),
        "{text}"
    );

    // Issuance under the intermediate: inside, then each rule broken.
    let issue = |body: Value| post(&s, "nc_int/issue/any", body);
    let (code, v) = issue(
        json!({"common_name": "a.example.com", "ip_sans": "127.0.0.1",
                                 "uri_sans": "spiffe://example.org/ns/a/sa/b"}),
    );
    assert_eq!(code, 200, "{v}");
    for (body, rule) in [
        (json!({"common_name": "evil.org"}), "DNS:evil.org is outside the name constraints of CA \"CN=Constrained Authority\" (permitted_dns_domains: example.com)"),
        (json!({"common_name": "x.bad.example.com"}), "(excluded_dns_domains: bad.example.com)"),
        (json!({"common_name": "a.example.com", "ip_sans": "192.0.2.1"}), "IP:192.0.2.1 is outside the name constraints of CA \"CN=Constrained Authority\" (permitted_ip_ranges: 127.0.0.0/8)"),
        (json!({"common_name": "a.example.com", "uri_sans": "spiffe://evil.org/x"}), "(permitted_uri_domains: example.org)"),
    ] {
        let (code, v) = issue(body.clone());
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v["errors"][0].as_str().unwrap_or("").contains(rule), "{body}: {v}");
    }

    // Leaves minted with the intermediate's key, outside and inside.
    mint(d, "evil", "DNS:evil.org");
    mint(
        d,
        "fine",
        "DNS:fine.example.com,URI:spiffe://example.org/ns/a/sa/b",
    );
    mint(d, "spiffe", "DNS:s.example.com,URI:spiffe://evil.org/x");
    for (leaf, accepted, openssl_says, mutual_says) in [
        ("evil.pem", false, "permitted subtree violation", "names DNS:evil.org, which CA \"CN=Constrained Authority\" may not certify (name constraints, permitted_dns_domains: example.com)"),
        ("spiffe.pem", false, "permitted subtree violation", "names URI:spiffe://evil.org/x, which CA \"CN=Constrained Authority\" may not certify (name constraints, permitted_uri_domains: example.org)"),
        ("fine.pem", true, "OK", ""),
    ] {
        let (o_ok, o_text) = run(d, "openssl", &["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", leaf]);
        assert_eq!(o_ok, accepted, "openssl {leaf}: {o_text}");
        assert!(o_text.contains(openssl_says), "openssl {leaf}: {o_text}");
        let (m_ok, m_text) = run(
            d,
            bin().to_str().unwrap(),
            &["verify", leaf, "--ca", "root.pem", "--untrusted", "int.pem", "--purpose", "server"],
        );
        assert_eq!(m_ok, accepted, "mutual {leaf}: {m_text}");
        assert!(m_text.contains(mutual_says), "mutual {leaf}: {m_text}");
    }

    // A TLS server (openssl s_server) presenting a leaf minted outside (for a name it also
    // holds, so that the host check passes first): `mutual doctor` names the name, the CA
    // and the rule.
    mint(d, "evilsrv", "DNS:evil.org,IP:127.0.0.1");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let mut server = Command::new("openssl")
        .current_dir(d)
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "evilsrv.pem",
            "-key",
            "evilsrv.key",
            "-cert_chain",
            "int.pem",
            "-www",
            "-quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("openssl s_server");
    let mut ready = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (_, text) = run(
        d,
        bin().to_str().unwrap(),
        &[
            "doctor",
            &format!("https://127.0.0.1:{port}"),
            "--ca",
            "root.pem",
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    assert!(ready, "openssl s_server did not listen");
    assert!(
        text.contains("names DNS:evil.org, which CA \"CN=Constrained Authority\" may not certify"),
        "{text}"
    );
}

#[test]
fn the_offline_cli_puts_constraints_into_a_ca_and_keeps_to_them() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = d.join("data");
    let data = data.to_str().unwrap();
    let mutual = |args: &[&str]| {
        let mut all = vec!["--data", data];
        all.extend_from_slice(args);
        run(d, bin().to_str().unwrap(), &all)
    };
    let (done, text) = mutual(&["ca", "init", "--name", "CLI Root"]);
    assert!(done, "{text}");
    let (done, text) = mutual(&[
        "ca",
        "intermediate",
        "corp",
        "--name",
        "Corp Authority",
        "--permit-dns",
        "corp.example,.svc.example",
        "--exclude-dns",
        "legacy.corp.example",
        "--permit-ip",
        "10.0.0.0/8",
        "--permit-email",
        "corp.example",
        "--permit-uri",
        ".corp.example",
    ]);
    assert!(done, "{text}");
    let (done, text) = mutual(&[
        "ca",
        "intermediate",
        "x",
        "--name",
        "X",
        "--permit-ip",
        "ten",
    ]);
    assert!(
        !done && text.contains("--permit-ip") && text.contains("\"ten\""),
        "{text}"
    );
    let (_, pem) = mutual(&["ca", "cert", "corp"]);
    std::fs::write(d.join("corp.pem"), pem).unwrap();
    let (_, ext) = run(
        d,
        "openssl",
        &[
            "x509",
            "-in",
            "corp.pem",
            "-noout",
            "-ext",
            "nameConstraints",
        ],
    );
    for want in [
        "critical",
        "DNS:corp.example",
        "DNS:.svc.example",
        "IP:10.0.0.0/255.0.0.0",
        "email:corp.example",
        "URI:.corp.example",
        "Excluded",
        "DNS:legacy.corp.example",
    ] {
        assert!(ext.contains(want), "{want} in {ext}");
    }
    let (done, text) = mutual(&[
        "role",
        "set",
        "svc",
        "--ca",
        "corp",
        "--allow-any-name",
        "--allow-ip-sans",
        "--server",
    ]);
    assert!(done, "{text}");
    let out = d.join("out");
    let out = out.to_str().unwrap();
    let (done, text) = mutual(&[
        "issue",
        "api.corp.example",
        "--role",
        "svc",
        "--ip",
        "10.1.2.3",
        "--out",
        out,
    ]);
    assert!(done, "{text}");
    for (cn, rule) in [
        (
            "api.evil.example",
            "(permitted_dns_domains: corp.example, .svc.example)",
        ),
        (
            "old.legacy.corp.example",
            "(excluded_dns_domains: legacy.corp.example)",
        ),
    ] {
        let (done, text) = mutual(&["issue", cn, "--role", "svc", "--out", out]);
        assert!(!done, "{cn}: {text}");
        assert!(
            text.contains(rule) && text.contains("\"CN=Corp Authority\""),
            "{cn}: {text}"
        );
    }
}
