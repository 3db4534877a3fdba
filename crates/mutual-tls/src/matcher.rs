//! Identity matchers: `cn=alice.example.com`, `cn~^alice\.`, `dns=*.example.com`,
//! `uri=spiffe://example.org/ns/*/sa/a`, `issuer=Alice Intermediate Authority`, `ou=…`,
//! `serial=…`, `any`. Parsed once, at configuration load; matched many times. Pure.

use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use mutual_pki::serial::Serial;
use regex::Regex;

use crate::identity::PeerIdentity;

/// One parsed identity matcher. A peer matches when the rule holds for its verified chain.
#[derive(Debug, Clone)]
pub struct Matcher {
    source: String,
    rule: Rule,
}

#[derive(Debug, Clone)]
enum Rule {
    Any,
    Cn(String),
    CnRegex(Regex),
    Dns(GlobMatcher),
    Uri(GlobMatcher),
    Issuer(String),
    Ou(String),
    Serial(Serial),
}

/// A matcher string that could not be parsed: which input, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher \"{input}\" at column {column}: {reason}")]
pub struct MatcherError {
    /// The whole matcher string.
    pub input: String,
    /// 1-based column of the bad part.
    pub column: usize,
    /// What is wrong and what is expected.
    pub reason: String,
}

const KINDS: &str = "cn=, cn~, dns=, uri=, issuer=, ou=, serial= or any";

impl FromStr for Matcher {
    type Err = MatcherError;

    fn from_str(input: &str) -> Result<Matcher, MatcherError> {
        let err = |column: usize, reason: String| MatcherError {
            input: input.to_string(),
            column,
            reason,
        };
        let s = input.trim();
        if s == "any" {
            return Ok(Matcher {
                source: s.into(),
                rule: Rule::Any,
            });
        }
        let Some(op_at) = s.find(['=', '~']) else {
            return Err(err(
                1,
                format!("expected KIND=VALUE with KIND one of {KINDS}"),
            ));
        };
        let (kind, op, value) = (&s[..op_at], &s[op_at..op_at + 1], &s[op_at + 1..]);
        let value_col = op_at + 2;
        if value.is_empty() {
            return Err(err(value_col, format!("empty value after \"{kind}{op}\"")));
        }
        let glob = |v: &str, ci: bool| {
            GlobBuilder::new(v)
                .literal_separator(true)
                .case_insensitive(ci)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| err(value_col, format!("bad glob: {}", e.kind())))
        };
        let rule = match (kind.to_ascii_lowercase().as_str(), op) {
            ("cn", "=") => Rule::Cn(value.to_string()),
            ("cn", "~") => Rule::CnRegex(Regex::new(value).map_err(|e| {
                err(
                    value_col,
                    format!(
                        "bad regular expression: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ),
                )
            })?),
            // A `*` in a DNS glob stays within one label: match on `/`-separated labels.
            ("dns", "=") => Rule::Dns(glob(&value.replace('.', "/"), true)?),
            ("uri", "=") => Rule::Uri(glob(value, false)?),
            ("issuer", "=") => Rule::Issuer(value.to_string()),
            ("ou", "=") => Rule::Ou(value.to_string()),
            ("serial", "=") => Rule::Serial(
                Serial::parse(value).map_err(|e| err(value_col, format!("bad serial: {}", e.0)))?,
            ),
            (k, "~") if ["dns", "uri", "issuer", "ou", "serial"].contains(&k) => {
                return Err(err(
                    op_at + 1,
                    format!("\"{k}\" takes \"=\"; only cn has a regex form (cn~)"),
                ))
            }
            _ => return Err(err(1, format!("unknown kind \"{kind}\": expected {KINDS}"))),
        };
        Ok(Matcher {
            source: s.to_string(),
            rule,
        })
    }
}

impl Matcher {
    /// Whether the verified peer matches this rule.
    pub fn matches(&self, peer: &PeerIdentity) -> bool {
        match &self.rule {
            Rule::Any => true,
            Rule::Cn(cn) => peer.common_name.as_deref() == Some(cn.as_str()),
            Rule::CnRegex(re) => peer.common_name.as_deref().is_some_and(|c| re.is_match(c)),
            Rule::Dns(g) => peer
                .dns_names
                .iter()
                .any(|d| g.is_match(d.to_ascii_lowercase().replace('.', "/"))),
            Rule::Uri(g) => peer.uris.iter().any(|u| g.is_match(u)),
            Rule::Issuer(name) => {
                peer.issuer_names.iter().any(|n| n == name)
                    || peer.issuer_chain.iter().any(|dn| dn == name)
            }
            Rule::Ou(ou) => peer.organizational_units.iter().any(|o| o == ou),
            Rule::Serial(s) => &peer.serial == s,
        }
    }
}

impl fmt::Display for Matcher {
    /// The matcher as it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::PeerIdentity;

    pub(crate) fn peer(cn: &str, issuer: &str) -> PeerIdentity {
        PeerIdentity {
            subject: format!("CN={cn}"),
            common_name: Some(cn.into()),
            dns_names: vec![cn.into()],
            ip_addresses: vec![],
            uris: vec!["spiffe://example.org/ns/prod/sa/a".into()],
            spiffe_id: Some("spiffe://example.org/ns/prod/sa/a".into()),
            organizational_units: vec!["payments".into()],
            serial: Serial::from_bytes(&[0x3a, 0x9f]),
            issuer: format!("CN={issuer}"),
            issuer_chain: vec![format!("CN={issuer}"), "CN=Local Root CA".into()],
            issuer_names: vec![issuer.into(), "Local Root CA".into()],
            fingerprint: "AB".into(),
        }
    }

    #[test]
    fn matcher_table() {
        let alice = peer("alice.example.com", "Alice Intermediate Authority");
        let bob = peer("bob.example.com", "Bob Intermediate Authority");
        let table: &[(&str, bool, bool)] = &[
            ("any", true, true),
            ("cn=alice.example.com", true, false),
            ("cn=ALICE.example.com", false, false),
            (r"cn~^alice\.", true, false),
            (r"cn~example\.com$", true, true),
            ("dns=*.example.com", true, true),
            ("dns=*.EXAMPLE.com", true, true),
            ("dns=*.com", false, false),
            ("dns=alice.example.com", true, false),
            ("uri=spiffe://example.org/ns/*/sa/a", true, true),
            ("uri=spiffe://example.org/*/a", false, false),
            ("issuer=Alice Intermediate Authority", true, false),
            ("issuer=CN=Bob Intermediate Authority", false, true),
            ("issuer=Local Root CA", true, true),
            ("ou=payments", true, true),
            ("ou=billing", false, false),
            ("serial=3a:9f", true, true),
            ("serial=3a9f", true, true),
            ("serial=01", false, false),
            ("  cn=alice.example.com ", true, false),
        ];
        for (m, a, b) in table {
            let parsed: Matcher = m.parse().unwrap_or_else(|e| panic!("{m}: {e}"));
            assert_eq!(parsed.matches(&alice), *a, "{m} vs alice");
            assert_eq!(parsed.matches(&bob), *b, "{m} vs bob");
        }
    }

    #[test]
    fn matcher_errors_point_at_the_bad_part() {
        let table: &[(&str, &str)] = &[
            ("alice", "invalid matcher \"alice\" at column 1: expected KIND=VALUE with KIND one of cn=, cn~, dns=, uri=, issuer=, ou=, serial= or any"),
            ("name=alice", "invalid matcher \"name=alice\" at column 1: unknown kind \"name\": expected cn=, cn~, dns=, uri=, issuer=, ou=, serial= or any"),
            ("cn=", "invalid matcher \"cn=\" at column 4: empty value after \"cn=\""),
            ("cn~^(alice", "invalid matcher \"cn~^(alice\" at column 4: bad regular expression: error: unclosed group"),
            ("dns~x", "invalid matcher \"dns~x\" at column 4: \"dns\" takes \"=\"; only cn has a regex form (cn~)"),
            ("dns=[a", "invalid matcher \"dns=[a\" at column 5: bad glob: unclosed character class; missing ']'"),
            ("serial=zz", "invalid matcher \"serial=zz\" at column 8: bad serial: "),
        ];
        for (input, want) in table {
            let e = input.parse::<Matcher>().unwrap_err().to_string();
            assert!(e.starts_with(want), "{input}: got {e}");
        }
    }

    #[test]
    fn matcher_displays_as_written() {
        let m: Matcher = r"cn~^alice\.".parse().unwrap();
        assert_eq!(m.to_string(), r"cn~^alice\.");
    }
}
