//! AppRole's rules (`builtin/credential/approle`): what a role must constrain, what a new
//! secret ID may ask, and what a login does to the secret ID it presents (counted, expired,
//! source-bound). Storage of the secret ID (as its HMAC) is the caller's.

use std::{fmt, net::IpAddr, str::FromStr};

use crate::ttl::Secs;

/// A CIDR block (`10.0.0.0/8`, `127.0.0.1/32`, or a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR block that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR block \"{0}\" (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8)")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError(s.to_string());
        let (a, p) = s.trim().split_once('/').unwrap_or((s.trim(), ""));
        let addr: IpAddr = a.parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = if p.is_empty() {
            max
        } else {
            p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// True when `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Parses a comma-separated or listed set of CIDR blocks.
pub fn parse_cidrs<S: AsRef<str>>(items: &[S]) -> Result<Vec<Cidr>, CidrError> {
    items
        .iter()
        .flat_map(|s| s.as_ref().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}

fn allowed(cidrs: &[Cidr], ip: Option<IpAddr>) -> bool {
    cidrs.is_empty() || ip.is_some_and(|ip| cidrs.iter().any(|c| c.contains(ip)))
}

/// The secret-ID side of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIdPolicy {
    /// `bind_secret_id` (default true): a login must present a secret ID.
    pub bind_secret_id: bool,
    /// `secret_id_num_uses`: logins per secret ID, 0 for unlimited.
    pub secret_id_num_uses: u32,
    /// `secret_id_ttl`: seconds a secret ID lives, 0 for ever.
    pub secret_id_ttl: Secs,
    /// `secret_id_bound_cidrs`.
    pub secret_id_bound_cidrs: Vec<Cidr>,
    /// `token_bound_cidrs`: where the token may be used from (and, for a role without secret
    /// IDs, where the login may come from).
    pub token_bound_cidrs: Vec<Cidr>,
}

impl Default for SecretIdPolicy {
    fn default() -> Self {
        SecretIdPolicy {
            bind_secret_id: true,
            secret_id_num_uses: 0,
            secret_id_ttl: 0,
            secret_id_bound_cidrs: Vec::new(),
            token_bound_cidrs: Vec::new(),
        }
    }
}

/// A role or secret ID request that breaks AppRole's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefusal {
    /// A role must constrain logins somehow.
    #[error("at least one constraint should be enabled on the role")]
    NoConstraint,
    /// A secret ID asking more uses than the role allows.
    #[error("num_uses cannot be higher than the role's secret_id_num_uses ({role})")]
    TooManyUses {
        /// The role's limit.
        role: u32,
    },
    /// A secret ID asking a longer life than the role allows.
    #[error("ttl cannot be longer than the role's secret_id_ttl ({role}s)")]
    TooLong {
        /// The role's limit in seconds.
        role: Secs,
    },
    /// Secret ID CIDRs outside the role's.
    #[error("failed to verify the CIDR restrictions set on the secret ID: {0} is not within the role's secret_id_bound_cidrs")]
    CidrOutsideRole(String),
}

impl SecretIdPolicy {
    /// Vault's rule that a role must bind something.
    pub fn check(&self) -> Result<(), RoleRefusal> {
        if !self.bind_secret_id
            && self.secret_id_bound_cidrs.is_empty()
            && self.token_bound_cidrs.is_empty()
        {
            return Err(RoleRefusal::NoConstraint);
        }
        Ok(())
    }

    /// A new secret ID at `now`, with the uses and TTL asked (0 for the role's), never more
    /// than the role allows.
    pub fn new_secret_id(
        &self,
        num_uses: u32,
        ttl: Secs,
        cidrs: Vec<Cidr>,
        now: i64,
    ) -> Result<SecretIdState, RoleRefusal> {
        if self.secret_id_num_uses > 0 && num_uses > self.secret_id_num_uses {
            return Err(RoleRefusal::TooManyUses {
                role: self.secret_id_num_uses,
            });
        }
        if self.secret_id_ttl > 0 && ttl > self.secret_id_ttl {
            return Err(RoleRefusal::TooLong {
                role: self.secret_id_ttl,
            });
        }
        if !self.secret_id_bound_cidrs.is_empty() {
            for c in &cidrs {
                let inside = self
                    .secret_id_bound_cidrs
                    .iter()
                    .any(|r| r.prefix <= c.prefix && r.contains(c.addr));
                if !inside {
                    return Err(RoleRefusal::CidrOutsideRole(c.to_string()));
                }
            }
        }
        let uses = if num_uses > 0 {
            num_uses
        } else {
            self.secret_id_num_uses
        };
        let ttl = if ttl > 0 { ttl } else { self.secret_id_ttl };
        Ok(SecretIdState {
            uses_left: uses,
            created: now,
            expires: (ttl > 0).then(|| now + ttl as i64),
            cidrs: if cidrs.is_empty() {
                self.secret_id_bound_cidrs.clone()
            } else {
                cidrs
            },
        })
    }
}

/// A stored secret ID's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIdState {
    /// Logins left, 0 for unlimited.
    pub uses_left: u32,
    /// Created at (unix seconds).
    pub created: i64,
    /// Expires at (unix seconds), `None` for never.
    pub expires: Option<i64>,
    /// Addresses it may be used from.
    pub cidrs: Vec<Cidr>,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginRefusal {
    /// The role binds a secret ID and none was given.
    #[error("missing secret_id")]
    MissingSecretId,
    /// No such role ID or secret ID.
    #[error("invalid role or secret ID")]
    Invalid,
    /// The secret ID is past its TTL.
    #[error("invalid role or secret ID (the secret ID expired at unix time {at})")]
    Expired {
        /// When it expired.
        at: i64,
    },
    /// The caller's address is outside the secret ID's CIDRs.
    #[error("source address \"{}\" unauthorized through CIDR restrictions on the secret ID", show_ip(.0))]
    SecretIdSource(Option<IpAddr>),
    /// The caller's address is outside the role's token CIDRs.
    #[error("source address \"{}\" unauthorized by CIDR restrictions on the role", show_ip(.0))]
    TokenSource(Option<IpAddr>),
}

fn show_ip(ip: &Option<IpAddr>) -> String {
    ip.map(|i| i.to_string()).unwrap_or_default()
}

/// What a successful login does to the secret ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterLogin {
    /// Nothing (no secret ID, or unlimited uses).
    Keep,
    /// Store this many uses left.
    Decrement {
        /// Uses left after this login.
        uses_left: u32,
    },
    /// This was its last use: delete it.
    Delete,
}

/// Checks a login with `secret` (the stored state of the presented secret ID, `None` when none
/// was presented or it is unknown; `presented` says which) from `ip` at `now`.
pub fn login(
    role: &SecretIdPolicy,
    presented: bool,
    secret: Option<&SecretIdState>,
    ip: Option<IpAddr>,
    now: i64,
) -> Result<AfterLogin, LoginRefusal> {
    let mut after = AfterLogin::Keep;
    if role.bind_secret_id {
        if !presented {
            return Err(LoginRefusal::MissingSecretId);
        }
        let s = secret.ok_or(LoginRefusal::Invalid)?;
        if let Some(at) = s.expires.filter(|at| *at <= now) {
            return Err(LoginRefusal::Expired { at });
        }
        if !allowed(&s.cidrs, ip) {
            return Err(LoginRefusal::SecretIdSource(ip));
        }
        after = match s.uses_left {
            0 => AfterLogin::Keep,
            1 => AfterLogin::Delete,
            n => AfterLogin::Decrement { uses_left: n - 1 },
        };
    }
    if !allowed(&role.secret_id_bound_cidrs, ip) {
        return Err(LoginRefusal::SecretIdSource(ip));
    }
    // With a secret ID, `token_bound_cidrs` bounds where the token is used, not where the
    // login comes from (OpenBao 2.7, measured); without one, it is the role's only bound.
    if !role.bind_secret_id && !allowed(&role.token_bound_cidrs, ip) {
        return Err(LoginRefusal::TokenSource(ip));
    }
    Ok(after)
}

#[cfg(test)]
mod tests;
