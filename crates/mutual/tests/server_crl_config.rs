//! CRL and tidy configuration: `config/crl`, `config/auto-tidy` and `tidy-status` answer with
//! OpenBao's keys and JSON types (the real `bao` CLI against both dev servers); delta CRLs hold
//! exactly the revocations since their base and verify with `openssl crl`; `expiry` sets nextUpdate and `disable` empties the CRL; a tidy removes an
//! expired certificate while issuance goes on, and auto-tidy does it on its schedule; GETs of
//! the CRL with `If-None-Match` and `If-Modified-Since`, beside OpenBao.

mod server;

use std::{collections::BTreeSet, time::Duration};

use serde_json::{json, Value};
use server::{
    curl, facts, have_bao,
    issuer_crls::{crl_serials, get, hex, openssl, post},
    mutual_dev, openbao_dev, run_script, Server,
};

/// A mount with an EC root and a role for example.com.
fn mount(s: &Server, m: &str) {
    post(s, &format!("sys/mounts/{m}"), json!({"type": "pki"}));
    post(
        s,
        &format!("{m}/root/generate/internal"),
        json!({"common_name": "CRL Root", "key_type": "ec", "ttl": "720h"}),
    );
    post(
        s,
        &format!("{m}/roles/r"),
        json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec"}),
    );
}

fn issue(s: &Server, m: &str, cn: &str, ttl: &str) -> (String, String) {
    let v = post(
        s,
        &format!("{m}/issue/r"),
        json!({"common_name": cn, "ttl": ttl}),
    );
    (
        v["data"]["serial_number"].as_str().unwrap().to_string(),
        v["data"]["certificate"].as_str().unwrap().to_string(),
    )
}

#[test]
fn crl_and_tidy_config_answer_as_openbao() {
    if !have_bao("crl_and_tidy_config_answer_as_openbao") {
        return;
    }
    let script = "crl_story.sh";
    let ours = std::thread::spawn(move || {
        let server = mutual_dev();
        let work = tempfile::tempdir().unwrap();
        let out = run_script(&server, script, work.path());
        (work, out)
    });
    let theirs_server = openbao_dev();
    let theirs = tempfile::tempdir().unwrap();
    let out = run_script(&theirs_server, script, theirs.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ours, our_out) = ours.join().expect("mutual's run");
    assert!(
        our_out.status.success(),
        "{}",
        String::from_utf8_lossy(&our_out.stderr)
    );
    let ours = facts(&ours.path().join("facts"));
    let theirs = facts(&theirs.path().join("facts"));
    let mut differ = Vec::new();
    for ((k, a), (k2, b)) in ours.iter().zip(&theirs) {
        assert_eq!(k, k2, "the scripts ran the same steps");
        let mark = if a == b { "" } else { "   <-- differs" };
        println!("{k:<32} mutual={a}\n{:<32} openbao={b}{mark}", "");
        if a != b {
            differ.push(k.clone());
        }
    }
    assert_eq!(ours.len(), theirs.len());
    assert!(differ.is_empty(), "mutual and OpenBao differ on {differ:?}");
    let get = |k: &str| ours.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    for (k, want) in [
        ("crl_delta_without_rebuild", "refused"),
        ("crl_grace_not_shorter", "refused"),
        ("crl_bad_expiry", "refused"),
        ("short_listed", "true"),
        ("tidy", "ok"),
        ("short_still_listed", "false"),
    ] {
        assert_eq!(get(k), Some(want), "{k}");
    }
    assert!(get("tidy_counts")
        .unwrap()
        .contains("\"cert_store_deleted_count\":1"));
}

#[test]
fn delta_crls_hold_the_revocations_since_their_base() {
    let s = mutual_dev();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    mount(&s, "pki_delta");
    post(
        &s,
        "pki_delta/config/crl",
        json!({"auto_rebuild": true, "enable_delta": true, "delta_rebuild_interval": "1s",
               "expiry": "48h", "auto_rebuild_grace_period": "1h"}),
    );
    let (_, ca) = get(&s, "pki_delta/ca/pem");
    std::fs::write(d.join("ca.pem"), ca).unwrap();
    let certs: Vec<(String, String)> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| issue(&s, "pki_delta", &format!("{n}.example.com"), "1h"))
        .collect();
    for (i, (_, pem)) in certs.iter().enumerate() {
        std::fs::write(d.join(format!("leaf{i}.pem")), pem).unwrap();
    }
    let revoke = |serial: &str| {
        post(&s, "pki_delta/revoke", json!({"serial_number": serial}));
    };
    revoke(&certs[0].0);
    let (code, base) = get(&s, "pki_delta/crl/pem");
    assert_eq!(code, 200);
    std::fs::write(d.join("base.pem"), &base).unwrap();
    revoke(&certs[1].0);
    revoke(&certs[2].0);
    // The complete CRL is not rebuilt by a revocation under auto_rebuild: it is the base still.
    assert_eq!(get(&s, "pki_delta/crl/pem").1, base);
    std::thread::sleep(Duration::from_millis(1100));
    let (code, delta) = get(&s, "pki_delta/crl/delta/pem");
    assert_eq!(code, 200, "{delta}");
    std::fs::write(d.join("delta.pem"), &delta).unwrap();
    let json_form = get(&s, "pki_delta/cert/delta-crl").1;
    let v: Value = serde_json::from_str(&json_form).unwrap();
    assert_eq!(v["data"]["certificate"].as_str(), Some(delta.as_str()));
    let (code, der) = get(&s, "pki_delta/crl/delta");
    assert_eq!(code, 200);
    assert!(der.len() > 100, "DER form served");

    // openssl checks the signatures of both with the CA.
    for f in ["base.pem", "delta.pem"] {
        let (ok, text) = openssl(d, &["crl", "-in", f, "-CAfile", "ca.pem", "-noout"]);
        assert!(ok && text.contains("verify OK"), "{f}: {text}");
    }
    let (_, base_text) = openssl(d, &["crl", "-in", "base.pem", "-noout", "-text"]);
    let (_, delta_text) = openssl(d, &["crl", "-in", "delta.pem", "-noout", "-text"]);
    let serials =
        |idx: &[usize]| -> BTreeSet<String> { idx.iter().map(|i| hex(&certs[*i].0)).collect() };
    assert_eq!(crl_serials(&base_text), serials(&[0]), "{base_text}");
    assert_eq!(crl_serials(&delta_text), serials(&[1, 2]), "{delta_text}");
    // The delta names its base by the base's CRL number.
    let number = |text: &str, label: &str| -> String {
        let mut lines = text.lines();
        lines.find(|l| l.contains(label)).expect(label);
        lines.next().unwrap().trim().to_string()
    };
    assert!(
        delta_text.contains("Delta CRL Indicator: critical"),
        "{delta_text}"
    );
    assert_eq!(
        number(&delta_text, "Delta CRL Indicator"),
        number(&base_text, "X509v3 CRL Number")
    );
    // expiry=48h is the span from lastUpdate to nextUpdate.
    let (_, dates) = openssl(
        d,
        &[
            "crl",
            "-in",
            "base.pem",
            "-noout",
            "-lastupdate",
            "-nextupdate",
        ],
    );
    let when = |k: &str| -> time::OffsetDateTime {
        let line = dates.lines().find_map(|l| l.strip_prefix(k)).unwrap();
        let fmt = time::macros::format_description!(
            "[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
        );
        time::PrimitiveDateTime::parse(line.trim(), &fmt)
            .unwrap()
            .assume_utc()
    };
    assert_eq!(
        when("nextUpdate=") - when("lastUpdate="),
        time::Duration::hours(48)
    );
    // crl/rotate makes a new base: the delta then holds nothing.
    assert_eq!(get(&s, "pki_delta/crl/rotate").0, 200);
    let (_, delta) = get(&s, "pki_delta/crl/delta/pem");
    std::fs::write(d.join("delta2.pem"), &delta).unwrap();
    let (_, text) = openssl(d, &["crl", "-in", "delta2.pem", "-noout", "-text"]);
    assert!(crl_serials(&text).is_empty(), "{text}");

    // disable: the CRL is served, signed and empty.
    post(
        &s,
        "pki_delta/config/crl",
        json!({"enable_delta": false, "auto_rebuild": false, "disable": true}),
    );
    let (_, off) = get(&s, "pki_delta/crl/pem");
    std::fs::write(d.join("off.pem"), &off).unwrap();
    let (ok, text) = openssl(
        d,
        &[
            "crl", "-in", "off.pem", "-CAfile", "ca.pem", "-noout", "-text",
        ],
    );
    assert!(ok && text.contains("No Revoked Certificates"), "{text}");
    post(&s, "pki_delta/config/crl", json!({"disable": false}));
    let (_, on) = get(&s, "pki_delta/crl/pem");
    std::fs::write(d.join("on.pem"), &on).unwrap();
    let (_, text) = openssl(d, &["crl", "-in", "on.pem", "-noout", "-text"]);
    assert_eq!(crl_serials(&text), serials(&[0, 1, 2]));

    // A replaced CA never has the old CA's CRL served, auto-rebuild or not.
    post(&s, "pki_delta/config/crl", json!({"auto_rebuild": true}));
    assert_eq!(get(&s, "pki_delta/crl/pem").0, 200);
    assert_eq!(curl(&s, "DELETE", "pki_delta/root", None).0, 204);
    post(
        &s,
        "pki_delta/root/generate/internal",
        json!({"common_name": "CRL Root 2", "key_type": "ec", "ttl": "720h"}),
    );
    std::fs::write(d.join("ca2.pem"), get(&s, "pki_delta/ca/pem").1).unwrap();
    std::fs::write(d.join("crl2.pem"), get(&s, "pki_delta/crl/pem").1).unwrap();
    let (ok, text) = openssl(
        d,
        &["crl", "-in", "crl2.pem", "-CAfile", "ca2.pem", "-noout"],
    );
    assert!(ok && text.contains("verify OK"), "{text}");

    // A mount disabled and enabled again starts with Vault's defaults.
    assert_eq!(curl(&s, "DELETE", "sys/mounts/pki_delta", None).0, 204);
    post(&s, "sys/mounts/pki_delta", json!({"type": "pki"}));
    let v: Value = serde_json::from_str(&get(&s, "pki_delta/config/crl").1).unwrap();
    assert_eq!(v["data"]["auto_rebuild"], false, "{v}");
    assert_eq!(v["data"]["expiry"], "72h", "{v}");
}

/// Two issuers on one mount, each with its own complete and delta CRL (server/issuer_crls.rs;
/// server_postgres.rs runs the same on PostgreSQL).
#[test]
fn each_issuer_has_its_own_complete_and_delta_crl() {
    server::issuer_crls::each_issuer_has_its_own_crls(&mutual_dev());
}

#[test]
fn tidy_removes_expired_certificates_while_issuance_goes_on() {
    let s = mutual_dev();
    mount(&s, "pki_tidy");
    let (short, _) = issue(&s, "pki_tidy", "short.example.com", "1s");
    let (kept, _) = issue(&s, "pki_tidy", "kept.example.com", "1h");
    // notAfter and the cutoff are compared in whole seconds: 1s of TTL + 1s of buffer + 1s.
    std::thread::sleep(Duration::from_millis(3500));
    // Twenty issuances on another thread while the tidy runs.
    let (codes, status) = std::thread::scope(|scope| {
        let issuing = scope.spawn(|| {
            (0..20)
                .map(|i| {
                    let body = json!({"common_name": format!("n{i}.example.com"), "ttl": "1h"})
                        .to_string();
                    curl(&s, "POST", "pki_tidy/issue/r", Some(&body)).0
                })
                .collect::<Vec<u16>>()
        });
        let (code, body) = curl(
            &s,
            "POST",
            "pki_tidy/tidy",
            Some(r#"{"tidy_cert_store":true,"safety_buffer":"1s"}"#),
        );
        assert_eq!(code, 202, "{body}");
        let mut status = Value::Null;
        for _ in 0..100 {
            status = serde_json::from_str(&get(&s, "pki_tidy/tidy-status").1).unwrap();
            if status["data"]["state"] == "Finished" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        (issuing.join().unwrap(), status)
    });
    assert!(
        codes.iter().all(|c| *c == 200),
        "issuance during tidy: {codes:?}"
    );
    let d = &status["data"];
    assert_eq!(d["state"], "Finished", "{status}");
    assert_eq!(d["cert_store_deleted_count"], 1, "{status}");
    assert_eq!(d["revoked_cert_deleted_count"], 0);
    assert!(d["time_finished"].is_string());
    let (_, list) = curl(&s, "LIST", "pki_tidy/certs", None);
    assert!(
        !list.contains(&short),
        "the expired certificate is gone: {list}"
    );
    assert!(list.contains(&kept), "the valid one stays: {list}");

    // Auto-tidy, on its schedule: an expired revoked certificate leaves the store and the CRL.
    let (gone, _) = issue(&s, "pki_tidy", "gone.example.com", "1s");
    post(&s, "pki_tidy/revoke", json!({"serial_number": gone}));
    post(
        &s,
        "pki_tidy/config/auto-tidy",
        json!({"enabled": true, "interval_duration": "1s", "tidy_revoked_certs": true,
               "safety_buffer": "1s"}),
    );
    let mut crl = String::new();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let status: Value = serde_json::from_str(&get(&s, "pki_tidy/tidy-status").1).unwrap();
        if status["data"]["revoked_cert_deleted_count"] == 1 {
            crl = get(&s, "pki_tidy/crl/pem").1;
            break;
        }
    }
    assert!(
        crl.contains("BEGIN X509 CRL"),
        "auto-tidy removed the revoked certificate"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crl.pem"), &crl).unwrap();
    let (_, text) = openssl(dir.path(), &["crl", "-in", "crl.pem", "-noout", "-text"]);
    assert!(!crl_serials(&text).contains(&hex(&gone)), "{text}");
}

/// A conditional GET as curl sends it: the status, the `ETag` and `Cache-Control` answered,
/// and the body (saved to `out`).
fn conditional_get(
    s: &Server,
    path: &str,
    header: Option<String>,
    out: &std::path::Path,
) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    // curl leaves the file as it was when there is no body (a 304).
    let _ = std::fs::remove_file(out);
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "-D", "-", "-o"]).arg(out);
    if let Some(h) = &header {
        cmd.args(["-H", h]);
    }
    let got = cmd
        .arg(format!("{}/v1/{path}", s.addr))
        .output()
        .expect("curl");
    let head = String::from_utf8_lossy(&got.stdout).into_owned();
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let field = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let body = std::fs::read(out).unwrap_or_default();
    (code, field("etag"), field("cache-control"), body)
}

/// The same conditional GETs of a mount's CRL to `mutual server` and to OpenBao's dev server,
/// both outcomes printed. mutual: a strong ETag and `no-cache` on the CRL and the CA
/// certificate, 304 without a body for the tag of the current bytes (also weak or in a list),
/// the full CRL for another tag, for `If-Modified-Since` (docs/lifecycle.md says why) and, with
/// a new tag, once a revocation changed it. OpenBao: no ETag, and a 304 to `If-Modified-Since`
/// on a mount tuned to pass the header through.
#[test]
fn conditional_gets_of_the_crl_beside_openbao() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let now = || {
        let out = std::process::Command::new("date")
            .args(["-u", "+%a, %d %b %Y %H:%M:%S GMT"])
            .output()
            .expect("date");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let ours = mutual_dev();
    mount(&ours, "pki");
    let (serial, _) = issue(&ours, "pki", "gone.example.com", "1h");

    let (code, tag, cache, crl) = conditional_get(&ours, "pki/crl", None, &body);
    println!("mutual   GET pki/crl: {code}, ETag {tag:?}, Cache-Control {cache:?}");
    assert_eq!(code, 200);
    assert_eq!(cache.as_deref(), Some("no-cache"));
    let tag = tag.expect("an ETag on the CRL");
    assert!(crl.len() > 100, "the DER CRL");
    for sent in [tag.clone(), format!("W/{tag}"), format!("\"other\", {tag}")] {
        let (code, again, _, held) = conditional_get(
            &ours,
            "pki/crl",
            Some(format!("If-None-Match: {sent}")),
            &body,
        );
        println!(
            "mutual   If-None-Match: {sent}: {code}, {} bytes",
            held.len()
        );
        assert_eq!(
            (code, again.as_deref(), held.len()),
            (304, Some(tag.as_str()), 0)
        );
    }
    let (code, _, _, other) = conditional_get(
        &ours,
        "pki/crl",
        Some("If-None-Match: \"other\"".into()),
        &body,
    );
    assert_eq!((code, other.len()), (200, crl.len()));
    std::thread::sleep(Duration::from_millis(1100));
    let ims = format!("If-Modified-Since: {}", now());
    let (code, _, _, full) = conditional_get(&ours, "pki/crl", Some(ims.clone()), &body);
    println!("mutual   {ims}: {code}, {} bytes", full.len());
    assert_eq!((code, &full), (200, &crl));

    let (code, ca_tag, _, _) = conditional_get(&ours, "pki/ca/pem", None, &body);
    let ca_tag = ca_tag.expect("an ETag on the CA certificate");
    let (code_again, _, _, _) = conditional_get(
        &ours,
        "pki/ca/pem",
        Some(format!("If-None-Match: {ca_tag}")),
        &body,
    );
    println!("mutual   GET pki/ca/pem: {code}, then {code_again} for its tag");
    assert_eq!((code, code_again), (200, 304));

    // A revocation changes the CRL: the old tag gets the new CRL, which lists the serial.
    post(&ours, "pki/revoke", json!({"serial_number": serial}));
    let (code, new_tag, _, new_crl) = conditional_get(
        &ours,
        "pki/crl",
        Some(format!("If-None-Match: {tag}")),
        &body,
    );
    println!("mutual   after a revocation, If-None-Match: {tag}: {code}, ETag {new_tag:?}");
    assert_eq!(code, 200);
    assert_ne!(new_tag.as_deref(), Some(tag.as_str()));
    assert_crl_lists(dir.path(), "body", &serial);
    assert_ne!(new_crl, crl);
    let metrics = get(&ours, "sys/metrics").1;
    assert!(
        metrics.contains("mutual_public_material_responses_total{answer=\"not_modified\"} 4\n"),
        "{metrics}"
    );

    if !have_bao("conditional_gets_of_the_crl_beside_openbao (the OpenBao half)") {
        return;
    }
    let theirs = openbao_dev();
    mount(&theirs, "pki");
    // OpenBao passes the header to its PKI engine only on a mount tuned to.
    post(
        &theirs,
        "sys/mounts/pki/tune",
        json!({"passthrough_request_headers": ["If-Modified-Since"],
               "allowed_response_headers": ["Last-Modified"]}),
    );
    let (code, tag, _, crl) = conditional_get(&theirs, "pki/crl", None, &body);
    println!(
        "OpenBao  GET pki/crl: {code}, ETag {tag:?}, {} bytes",
        crl.len()
    );
    assert_eq!((code, tag), (200, None));
    std::thread::sleep(Duration::from_millis(1100));
    let ims = format!("If-Modified-Since: {}", now());
    let (code, _, _, held) = conditional_get(&theirs, "pki/crl", Some(ims.clone()), &body);
    println!("OpenBao  {ims}: {code}, {} bytes", held.len());
    assert_eq!(code, 304);
}

/// A write that changes nothing in a CRL (a role, the URLs) leaves it as it was, also once the
/// server has re-read its mounts (within a second, cluster.rs): the same bytes and ETag, so a
/// poller holding it gets 304. A revocation moves it, and so does a new default issuer.
#[test]
fn only_what_changes_a_crl_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("crl.der");
    let s = mutual_dev();
    mount(&s, "pki");
    let (serial, _) = issue(&s, "pki", "gone.example.com", "1h");
    let (code, tag, _, _) = conditional_get(&s, "pki/crl", None, &body);
    assert_eq!(code, 200);
    let tag = tag.expect("an ETag on the CRL");
    let if_none_match = Some(format!("If-None-Match: {tag}"));

    post(
        &s,
        "pki/roles/r",
        json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec",
               "max_ttl": "48h"}),
    );
    post(&s, "pki/roles/other", json!({"allow_any_name": true}));
    post(
        &s,
        "pki/config/urls",
        json!({"crl_distribution_points": [format!("{}/v1/pki/crl", s.addr)]}),
    );
    // Past the re-read of the mounts those writes caused.
    std::thread::sleep(Duration::from_millis(2500));
    let (code, again, _, held) = conditional_get(&s, "pki/crl", if_none_match.clone(), &body);
    println!(
        "after role and URL writes: {code}, ETag {again:?}, {} bytes",
        held.len()
    );
    assert_eq!(
        (code, again.as_deref(), held.len()),
        (304, Some(tag.as_str()), 0),
        "a role or URL write built the CRL again"
    );

    post(&s, "pki/revoke", json!({"serial_number": serial}));
    let (code, moved, _, crl) = conditional_get(&s, "pki/crl", if_none_match, &body);
    println!(
        "after a revocation: {code}, ETag {moved:?}, {} bytes",
        crl.len()
    );
    assert_eq!(code, 200);
    assert_ne!(moved.as_deref(), Some(tag.as_str()));
    assert_crl_lists(dir.path(), "crl.der", &serial);

    post(
        &s,
        "pki/root/generate/internal",
        json!({"common_name": "CRL Root Two", "key_type": "ec", "ttl": "720h",
               "issuer_name": "two"}),
    );
    post(&s, "pki/root/replace", json!({"default": "two"}));
    let (code, _, _, _) = conditional_get(&s, "pki/crl", None, &body);
    assert_eq!(code, 200);
    let (ok, issuer) = openssl(
        dir.path(),
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-issuer",
        ],
    );
    println!("after root/replace: {}", issuer.trim());
    assert!(ok && issuer.contains("CRL Root Two"), "{issuer}");
}

/// Asserts that the DER CRL in `dir/file` lists `serial`, as `openssl crl` reads it.
fn assert_crl_lists(dir: &std::path::Path, file: &str, serial: &str) {
    let (ok, text) = openssl(
        dir,
        &["crl", "-inform", "DER", "-in", file, "-noout", "-text"],
    );
    assert!(ok, "{text}");
    assert!(crl_serials(&text).contains(&hex(serial)), "{text}");
}
