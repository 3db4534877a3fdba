//! Step 1, path building (OpenSSL's `build_chain`, trusted-first): from the leaf up to the
//! first trusted certificate.

use ::time::OffsetDateTime;

use super::parsed::{likely_issued, self_signed, Cert};
use super::MAX_DEPTH;
use crate::diagnosis::Diagnosis;

fn valid_at(c: &Cert<'_>, now: OffsetDateTime) -> bool {
    c.facts.not_before <= now && now <= c.facts.not_after
}

/// The first candidate valid now, else the one that expires last.
fn best_issuer<'c, 'a>(
    candidates: impl Iterator<Item = &'c Cert<'a>>,
    now: OffsetDateTime,
) -> Option<&'c Cert<'a>> {
    let mut best: Option<&'c Cert<'a>> = None;
    for c in candidates {
        if valid_at(c, now) {
            return Some(c);
        }
        if best.is_none_or(|b| c.facts.not_after > b.facts.not_after) {
            best = Some(c);
        }
    }
    best
}

fn subjects(certs: &[&Cert<'_>]) -> Vec<String> {
    certs.iter().map(|c| c.facts.subject.clone()).collect()
}

pub(super) fn build_path<'c, 'a>(
    chain: &'c [Cert<'a>],
    trusted: &'c [Cert<'a>],
    now: OffsetDateTime,
) -> Result<Vec<&'c Cert<'a>>, Diagnosis> {
    let leaf = &chain[0];
    let mut path: Vec<&'c Cert<'a>> = vec![leaf];
    let mut used = vec![false; chain.len()];
    used[0] = true;
    loop {
        let curr = path[path.len() - 1];
        if path.len() >= MAX_DEPTH {
            return Err(Diagnosis::ChainTooLong {
                subject: leaf.facts.subject.clone(),
                max_depth: MAX_DEPTH,
            });
        }
        if self_signed(curr) {
            // Only the very same certificate in the CA file makes a self-signed one trusted.
            if let Some(t) = trusted.iter().find(|t| t.der == curr.der) {
                let top = path.len() - 1;
                path[top] = t;
                return Ok(path);
            }
            break;
        }
        let from_trust = trusted.iter().filter(|t| likely_issued(t, curr));
        if let Some(t) = best_issuer(from_trust, now) {
            if t.der == curr.der {
                let top = path.len() - 1;
                path[top] = t;
            } else {
                path.push(t);
            }
            return Ok(path);
        }
        let from_chain = chain
            .iter()
            .enumerate()
            .filter(|(i, c)| !used[*i] && likely_issued(c, curr))
            .map(|(_, c)| c);
        match best_issuer(from_chain, now) {
            Some(issuer) => {
                if let Some(i) = chain.iter().position(|c| std::ptr::eq(c, issuer)) {
                    used[i] = true;
                }
                path.push(issuer);
            }
            None => break,
        }
    }
    // Last resort (OpenSSL's check_trust with -partial_chain): the leaf itself is in the CA file.
    if let Some(t) = trusted.iter().find(|t| t.der == leaf.der) {
        return Ok(vec![t]);
    }
    let top = path[path.len() - 1];
    Err(Diagnosis::UnknownIssuer {
        subject: top.facts.subject.clone(),
        issuer: top.facts.issuer.clone(),
        path: subjects(&path),
        trusted: trusted.iter().map(|t| t.facts.subject.clone()).collect(),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::table::*;

    /// Anchors found, and issuers not found.
    pub(in crate::verify) fn cases(s: &Story) -> Vec<Case> {
        vec![
            case(
                "alice with her intermediate, root trusted",
                vec![a(&s.alice), a(&s.alice_int)],
                vec![a(&s.root)],
            ),
            case(
                "alice alone, her intermediate trusted",
                vec![a(&s.alice)],
                vec![a(&s.alice_int)],
            ),
            case(
                "intermediate given but intermediate trusted",
                vec![a(&s.alice), a(&s.alice_int)],
                vec![a(&s.alice_int)],
            ),
            case(
                "untrusted chain in any order",
                vec![a(&s.alice), a(&s.bob_int), a(&s.root), a(&s.alice_int)],
                vec![a(&s.root)],
            ),
            case("leaf itself trusted", vec![a(&s.alice)], vec![a(&s.alice)]),
            case(
                "bob against alice's intermediate",
                vec![a(&s.bob)],
                vec![a(&s.alice_int)],
            )
            .fails("unknown_issuer", "CN=Bob Intermediate Authority"),
            case(
                "bob with his intermediate against alice's",
                vec![a(&s.bob), a(&s.bob_int)],
                vec![a(&s.alice_int)],
            )
            .fails("unknown_issuer", "CN=Local Root CA"),
            case("no CA given", vec![a(&s.alice)], vec![])
                .fails("unknown_issuer", "CN=Alice Intermediate Authority"),
            case(
                "root neither sent nor trusted",
                vec![a(&s.alice), a(&s.alice_int), a(&s.other_root)],
                vec![a(&s.other_root)],
            )
            .fails("unknown_issuer", "CN=Local Root CA"),
        ]
    }

    #[test]
    fn table() {
        run(&cases(&Story::new()));
    }
}
