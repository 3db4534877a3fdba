//! Capabilities, the verbs a policy grants on a path, as Vault names them.

use std::fmt;

/// One capability of Vault's ACL language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Refuses everything on the path; wins over every other capability merged into the
    /// same path.
    Deny,
    /// Write to a path that holds nothing yet (POST/PUT).
    Create,
    /// GET.
    Read,
    /// Write to a path that already holds something (POST/PUT).
    Update,
    /// DELETE.
    Delete,
    /// LIST.
    List,
    /// Access to root-protected paths, on top of the operation's own capability.
    Sudo,
    /// PATCH.
    Patch,
    /// SCAN (OpenBao's recursive list).
    Scan,
}

impl Capability {
    /// Every capability, in the order Vault lists them in errors.
    pub const ALL: [Capability; 9] = [
        Capability::Create,
        Capability::Read,
        Capability::Update,
        Capability::Delete,
        Capability::List,
        Capability::Sudo,
        Capability::Deny,
        Capability::Patch,
        Capability::Scan,
    ];

    /// Vault's name of the capability.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Deny => "deny",
            Capability::Create => "create",
            Capability::Read => "read",
            Capability::Update => "update",
            Capability::Delete => "delete",
            Capability::List => "list",
            Capability::Sudo => "sudo",
            Capability::Patch => "patch",
            Capability::Scan => "scan",
        }
    }

    /// Parses Vault's name (exact, lower case as Vault requires).
    pub fn parse(s: &str) -> Option<Capability> {
        Capability::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    /// The empty set.
    pub const NONE: Capabilities = Capabilities(0);

    /// The set holding `caps`.
    pub fn of(caps: &[Capability]) -> Capabilities {
        caps.iter().fold(Capabilities::NONE, |s, c| s.with(*c))
    }

    /// This set plus `c`.
    pub fn with(self, c: Capability) -> Capabilities {
        Capabilities(self.0 | c.bit())
    }

    /// True when `c` is in the set.
    pub fn has(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// True for the empty set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of both sets.
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The members, in Vault's `sys/capabilities` order (sudo, read, list, update, delete,
    /// create, patch, scan), or `["deny"]` when deny is set or nothing is.
    pub fn names(self) -> Vec<&'static str> {
        if self.has(Capability::Deny) {
            return vec!["deny"];
        }
        let order = [
            Capability::Sudo,
            Capability::Read,
            Capability::List,
            Capability::Update,
            Capability::Delete,
            Capability::Create,
            Capability::Patch,
            Capability::Scan,
        ];
        let names: Vec<_> = order
            .into_iter()
            .filter(|c| self.has(*c))
            .map(Capability::as_str)
            .collect();
        if names.is_empty() {
            vec!["deny"]
        } else {
            names
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_list_in_vault_order() {
        for c in Capability::ALL {
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
        assert_eq!(Capability::parse("Read"), None);
        assert_eq!(Capability::parse("write"), None);
        let cases: &[(&[Capability], &[&str])] = &[
            (&[], &["deny"]),
            (&[Capability::Create, Capability::Read], &["read", "create"]),
            (&[Capability::Read, Capability::Deny], &["deny"]),
            (
                &[Capability::List, Capability::Sudo, Capability::Update],
                &["sudo", "list", "update"],
            ),
        ];
        for (caps, names) in cases {
            assert_eq!(Capabilities::of(caps).names(), *names, "{caps:?}");
        }
    }
}
