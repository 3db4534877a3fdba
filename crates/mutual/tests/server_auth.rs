//! ACL policies and Vault's token rules through the real `bao` CLI, run against
//! `mutual server --dev` and OpenBao's dev server side by side: each step's outcome is printed
//! for both in one table, and they must agree.

mod server;

use server::{facts, have_bao, mutual_dev, openbao_dev, run_script};

#[test]
fn policies_and_tokens_behave_as_in_openbao() {
    if !have_bao("policies_and_tokens_behave_as_in_openbao") {
        return;
    }
    let script = "auth_story.sh";
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
    println!("{:<32} {:<28} {:<28}", "step", "mutual", "openbao");
    let mut differ = Vec::new();
    for ((k, a), (k2, b)) in ours.iter().zip(&theirs) {
        assert_eq!(k, k2, "the scripts ran the same steps");
        let mark = if a == b { "" } else { "   <-- differs" };
        println!("{k:<32} {a:<28} {b:<28}{mark}");
        if a != b {
            differ.push(k.clone());
        }
    }
    assert_eq!(ours.len(), theirs.len());
    assert!(differ.is_empty(), "mutual and OpenBao differ on {differ:?}");
    // The story holds refusals, not just successes: pin the important ones.
    let get = |k: &str| ours.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    for (k, want) in [
        ("policy_bad", "refused"),
        ("child_escalates", "refused"),
        ("child_after_parent_revoked", "refused"),
        ("uses_3", "refused"),
        ("past_max_ttl", "refused"),
        ("issue_with_policy", "ok"),
        ("child_issue", "ok"),
        ("approle_issue", "ok"),
        ("login_3_used_up", "refused"),
        ("login_expired_secret", "refused"),
    ] {
        assert_eq!(get(k), Some(want), "{k}");
    }
}
