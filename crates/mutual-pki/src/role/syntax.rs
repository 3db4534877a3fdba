//! The shapes of names, without any rule of a role: host name syntax, how a name splits into
//! its host and wildcard, Vault's glob, and what passes for a URI.

use std::fmt;

use globset::GlobBuilder;

/// What makes a name an invalid host name (under `enforce_hostnames`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostnameProblem {
    /// Nothing is left to check.
    Empty,
    /// The name ends with a dot (`www.example.com.`).
    TrailingDot,
    /// A label is empty (`www..example.com`, `.example.com`).
    EmptyLabel,
    /// A label is longer than 63 characters.
    LabelTooLong {
        /// The label.
        label: String,
    },
    /// The name is longer than 253 characters.
    TooLong {
        /// Its length in characters.
        len: usize,
    },
    /// A character outside `a-z`, `0-9` and `-`.
    BadCharacter {
        /// The character.
        ch: char,
    },
    /// A label starts or ends with `-`.
    HyphenAtEdge {
        /// The label.
        label: String,
    },
}

impl fmt::Display for HostnameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostnameProblem::Empty => f.write_str("it is empty"),
            HostnameProblem::TrailingDot => f.write_str("it ends with '.' (drop the trailing dot)"),
            HostnameProblem::EmptyLabel => {
                f.write_str("it has an empty label (a leading '.' or \"..\")")
            }
            HostnameProblem::LabelTooLong { label } => write!(
                f,
                "label \"{label}\" is {} characters, over the limit of 63",
                label.chars().count()
            ),
            HostnameProblem::TooLong { len } => {
                write!(f, "it is {len} characters, over the limit of 253")
            }
            HostnameProblem::BadCharacter { ch } if ch.is_ascii() => write!(
                f,
                "{ch:?} is not allowed (labels use a-z, 0-9 and '-')"
            ),
            HostnameProblem::BadCharacter { ch } => write!(
                f,
                "{ch:?} is not allowed (labels use a-z, 0-9 and '-'; write international names in their xn-- form)"
            ),
            HostnameProblem::HyphenAtEdge { label } => {
                write!(f, "label \"{label}\" starts or ends with '-'")
            }
        }
    }
}

/// A name split the way Vault's `validateNames` reads it.
pub(super) struct NameParts<'a> {
    /// The domain part of an email, or the whole name.
    pub(super) host: &'a str,
    /// `host` without a leading `*.`.
    pub(super) reduced: &'a str,
    /// `host` holds a `*`.
    pub(super) wildcard: bool,
    /// The name has an `@`.
    pub(super) email: bool,
}

/// Why a name could not be split.
pub(super) enum SplitError {
    /// Not `local@domain` with one `@`.
    Email,
}

impl<'a> NameParts<'a> {
    pub(super) fn split(name: &'a str) -> Result<Self, SplitError> {
        let (host, email) = match name.split_once('@') {
            Some((local, domain)) => {
                if local.is_empty() || domain.is_empty() || domain.contains('@') {
                    return Err(SplitError::Email);
                }
                (domain, true)
            }
            None => (name, false),
        };
        let wildcard = host.contains('*');
        let reduced = host.strip_prefix("*.").unwrap_or(host);
        Ok(NameParts {
            host,
            reduced,
            wildcard,
            email,
        })
    }

    /// `*` is exactly the whole leftmost label of a name with at least one more label.
    pub(super) fn wildcard_well_placed(&self) -> bool {
        self.host.starts_with("*.") && !self.reduced.is_empty() && !self.reduced.contains('*')
    }

    /// A proper subdomain of `domain`, or a wildcard directly over it.
    pub(super) fn is_under(&self, domain: &str) -> bool {
        self.reduced
            .strip_suffix(domain)
            .is_some_and(|head| head.ends_with('.'))
            || (self.wildcard && self.reduced == domain)
    }
}

pub(super) fn is_localhost(name: &str) -> bool {
    name == "localhost" || name == "localdomain"
}

pub(super) fn is_under_localhost(parts: &NameParts<'_>) -> bool {
    parts.reduced.ends_with(".localhost")
        || parts.reduced.ends_with(".localdomain")
        || (parts.wildcard && is_localhost(parts.reduced))
}

/// Checks host name syntax (RFC 1123 labels, as Vault's `hostnameRegex` with IDNA's length
/// limits), on a name already stripped of its wildcard label.
pub(super) fn hostname_problem(name: &str) -> Option<HostnameProblem> {
    if name.is_empty() {
        return Some(HostnameProblem::Empty);
    }
    if name.ends_with('.') {
        return Some(HostnameProblem::TrailingDot);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some(HostnameProblem::EmptyLabel);
        }
        if let Some(ch) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Some(HostnameProblem::BadCharacter { ch });
        }
        if label.len() > 63 {
            return Some(HostnameProblem::LabelTooLong {
                label: label.to_string(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(HostnameProblem::HyphenAtEdge {
                label: label.to_string(),
            });
        }
    }
    None
}

/// Vault's glob (`github.com/ryanuber/go-glob`): `*` matches any run of characters, dots and
/// slashes included; every other character is literal.
pub(super) fn glob_match(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let mut escaped = String::with_capacity(pattern.len() + 8);
    let mut previous_star = false;
    for c in pattern.chars() {
        if c == '*' {
            if !previous_star {
                escaped.push('*');
            }
            previous_star = true;
        } else {
            escaped.push_str(&globset::escape(c.encode_utf8(&mut [0; 4])));
            previous_star = false;
        }
    }
    GlobBuilder::new(&escaped)
        .literal_separator(false)
        .backslash_escape(false)
        .case_insensitive(case_insensitive)
        .build()
        .map(|glob| glob.compile_matcher().is_match(value))
        .unwrap_or(false)
}

/// `scheme:rest` with an RFC 3986 scheme and no whitespace.
pub(super) fn looks_like_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A host name, or a wildcard over one (Vault's `hostnameRegex`, without its trailing dot).
pub(super) fn is_dns_name(name: &str) -> bool {
    let Ok(parts) = NameParts::split(name) else {
        return false;
    };
    !parts.email
        && (!parts.wildcard || parts.wildcard_well_placed())
        && hostname_problem(parts.reduced).is_none()
        && parts.host.len() <= 253
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::role::testkit::LABEL_63;

    #[test]
    fn hostname_problem_messages() {
        let table = [
            (HostnameProblem::Empty, "it is empty"),
            (
                HostnameProblem::TrailingDot,
                "it ends with '.' (drop the trailing dot)",
            ),
            (
                HostnameProblem::EmptyLabel,
                r#"it has an empty label (a leading '.' or "..")"#,
            ),
            (
                HostnameProblem::LabelTooLong {
                    label: format!("{LABEL_63}a"),
                },
                "label \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" is 64 characters, over the limit of 63",
            ),
            (
                HostnameProblem::TooLong { len: 255 },
                "it is 255 characters, over the limit of 253",
            ),
            (
                HostnameProblem::BadCharacter { ch: ' ' },
                "' ' is not allowed (labels use a-z, 0-9 and '-')",
            ),
            (
                HostnameProblem::BadCharacter { ch: 'ü' },
                "'ü' is not allowed (labels use a-z, 0-9 and '-'; write international names in their xn-- form)",
            ),
            (
                HostnameProblem::HyphenAtEdge {
                    label: "-www".into(),
                },
                "label \"-www\" starts or ends with '-'",
            ),
        ];
        for (problem, message) in table {
            assert_eq!(problem.to_string(), message);
        }
    }

    #[test]
    fn which_hostname_problem() {
        let table = [
            ("www.example.com.", Some(HostnameProblem::TrailingDot)),
            (".example.com", Some(HostnameProblem::EmptyLabel)),
            ("www..example.com", Some(HostnameProblem::EmptyLabel)),
            (
                "a_b.example.com",
                Some(HostnameProblem::BadCharacter { ch: '_' }),
            ),
            (
                "www-.example.com",
                Some(HostnameProblem::HyphenAtEdge {
                    label: "www-".into(),
                }),
            ),
            ("a-b.example.com", None),
            ("0.example.com", None),
        ];
        for (name, want) in table {
            assert_eq!(hostname_problem(name), want, "{name}");
        }
    }
}
