//! Who may call: a list of [`Matcher`]s, and the [`Permit`] or [`Denial`] it decides. Pure.

use std::fmt;
use std::sync::Arc;

use crate::identity::PeerIdentity;
use crate::matcher::{Matcher, MatcherError};

/// An allow-list of matchers: a peer is allowed when any matcher matches.
#[derive(Debug, Clone)]
pub struct Policy {
    allow: Vec<Matcher>,
    /// Each matcher as written, made once: every permit carries its rule.
    written: Vec<Arc<str>>,
}

/// Proof that a peer was authorized. Only [`Policy::authorize`] can build one, so a handler
/// that takes a `Permit` cannot be reached by an unauthorized peer.
#[derive(Debug, Clone)]
pub struct Permit {
    peer: Arc<PeerIdentity>,
    rule: Arc<str>,
}

impl Permit {
    /// The authorized peer.
    pub fn peer(&self) -> &PeerIdentity {
        &self.peer
    }

    /// The matcher that allowed it, as written.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The same, shared: for a log line written after the permit is gone.
    pub fn rule_shared(&self) -> Arc<str> {
        Arc::clone(&self.rule)
    }
}

/// Where a peer that the policy does not allow is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyAt {
    /// After the handshake: HTTP 403 with a body naming the caller and the rule.
    Http,
    /// In the TLS handshake itself (alert access_denied), logged with the peer's identity.
    Handshake,
}

/// A [`DenyAt`] that is neither `http` nor `handshake`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\": expected http or handshake")]
pub struct DenyAtError(pub String);

impl std::str::FromStr for DenyAt {
    type Err = DenyAtError;

    fn from_str(s: &str) -> Result<DenyAt, DenyAtError> {
        match s {
            "http" => Ok(DenyAt::Http),
            "handshake" => Ok(DenyAt::Handshake),
            other => Err(DenyAtError(other.to_string())),
        }
    }
}

impl fmt::Display for DenyAt {
    /// `http` or `handshake`, as written in flags and configuration files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DenyAt::Http => "http",
            DenyAt::Handshake => "handshake",
        })
    }
}

/// Why a verified peer is not allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The peer's name (CN, else first SAN, else subject).
    pub peer: String,
    /// The peer's subject DN.
    pub subject: String,
    /// The peer's issuer DN.
    pub issuer: String,
    /// The matchers of the policy, as written.
    pub allowed: Vec<String>,
}

impl fmt::Display for Denial {
    /// `you cannot be here bob.example.com: only cn=alice.example.com may call`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "you cannot be here {}: ", self.peer)?;
        if self.allowed.is_empty() {
            f.write_str("no one may call")
        } else {
            write!(f, "only {} may call", self.allowed.join(" or "))
        }
    }
}

impl Policy {
    /// A policy from parsed matchers. An empty list allows no one.
    pub fn new(allow: Vec<Matcher>) -> Policy {
        let written = allow.iter().map(|m| Arc::from(m.to_string())).collect();
        Policy { allow, written }
    }

    /// A policy that allows any verified peer.
    pub fn any() -> Policy {
        Policy::new(vec!["any".parse().expect("the any matcher parses")])
    }

    /// Parses matcher strings; the first bad one is the error.
    pub fn parse<I, S>(allow: I) -> Result<Policy, MatcherError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let allow = allow
            .into_iter()
            .map(|s| s.as_ref().parse())
            .collect::<Result<Vec<Matcher>, _>>()?;
        Ok(Policy::new(allow))
    }

    /// The matchers, in order.
    pub fn matchers(&self) -> &[Matcher] {
        &self.allow
    }

    /// Decides whether a verified peer may call.
    pub fn authorize(&self, peer: &Arc<PeerIdentity>) -> Result<Permit, Denial> {
        match self.allow.iter().position(|m| m.matches(peer)) {
            Some(i) => Ok(Permit {
                peer: Arc::clone(peer),
                rule: Arc::clone(&self.written[i]),
            }),
            None => Err(Denial {
                peer: peer.name().to_string(),
                subject: peer.subject.clone(),
                issuer: peer.issuer.clone(),
                allowed: self.written.iter().map(|w| w.to_string()).collect(),
            }),
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.allow.iter().map(|m| m.to_string()).collect();
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matcher::tests::peer;

    #[test]
    fn policy_permits_and_denies() {
        let p = Policy::parse(["cn=alice.example.com", "ou=ops"]).unwrap();
        let alice = Arc::new(peer("alice.example.com", "Alice Intermediate Authority"));
        let bob = Arc::new(peer("bob.example.com", "Bob Intermediate Authority"));
        let permit = p.authorize(&alice).unwrap();
        assert_eq!(permit.rule(), "cn=alice.example.com");
        assert_eq!(permit.peer().name(), "alice.example.com");
        let denial = p.authorize(&bob).unwrap_err();
        assert_eq!(
            denial.to_string(),
            "you cannot be here bob.example.com: only cn=alice.example.com or ou=ops may call"
        );
        assert_eq!(
            Policy::new(vec![])
                .authorize(&alice)
                .unwrap_err()
                .to_string(),
            "you cannot be here alice.example.com: no one may call"
        );
        assert!(Policy::any().authorize(&bob).is_ok());
        assert!(Policy::parse(["cn=a", "bad"]).is_err());
    }

    #[test]
    fn deny_at_reads_as_written() {
        for (text, want) in [("http", DenyAt::Http), ("handshake", DenyAt::Handshake)] {
            assert_eq!(text.parse::<DenyAt>(), Ok(want));
            assert_eq!(want.to_string(), text);
        }
        assert_eq!(
            "tls".parse::<DenyAt>().unwrap_err().to_string(),
            "\"tls\": expected http or handshake"
        );
    }
}
