//! When a leaf is valid: the TTL from the request, the role or the system, capped to the max
//! TTL; notBefore backdated; notAfter held to the issuer's per `leaf_not_after_behavior`.

use std::time::Duration;

use time::OffsetDateTime;

use super::refusal::rfc3339;
use super::{CheckContext, IssueRequest, NotAfterBehavior, Role, RoleRefusal};

impl Role {
    /// notBefore and notAfter: the TTL from the request, the role or the system, capped to
    /// the max TTL, then held to the issuer's notAfter per `leaf_not_after_behavior`.
    pub(super) fn validity(
        &self,
        req: &IssueRequest,
        ctx: &CheckContext,
        warnings: &mut Vec<String>,
    ) -> Result<(OffsetDateTime, OffsetDateTime), RoleRefusal> {
        let ttl = self.ttl(req, ctx, warnings);
        let not_after = self.not_after(ttl, ctx)?;
        let not_before = self.not_before(ctx)?;
        let not_after = self.held_to_issuer(not_after, ctx, warnings)?;
        Ok((not_before, not_after))
    }

    /// The requested TTL, else the role's ttl, else its max_ttl, else the system's; capped,
    /// with a warning, to the lower of max_ttl and the system's max TTL.
    fn ttl(&self, req: &IssueRequest, ctx: &CheckContext, warnings: &mut Vec<String>) -> Duration {
        let set = |d: Option<Duration>| d.filter(|d| !d.is_zero());
        let system = ctx.system_max_ttl;
        let (max, max_name) = match set(self.max_ttl) {
            Some(max) if max <= system => (max, "the role's max_ttl"),
            _ => (system, "the system's max TTL"),
        };
        let ttl = set(req.ttl)
            .or(set(self.ttl))
            .or(set(self.max_ttl))
            .unwrap_or(system);
        if ttl <= max {
            return ttl;
        }
        warnings.push(format!(
            "TTL \"{}\" is longer than {max_name} \"{}\"; capped to {}",
            crate::duration::format(ttl),
            crate::duration::format(max),
            crate::duration::format(max),
        ));
        max
    }

    /// `now + ttl`, when the TTL leaves a validity period a certificate can hold.
    fn not_after(&self, ttl: Duration, ctx: &CheckContext) -> Result<OffsetDateTime, RoleRefusal> {
        let ttl_invalid = || RoleRefusal::TtlInvalid {
            role: self.name.clone(),
            ttl,
        };
        if ttl.is_zero() {
            return Err(ttl_invalid());
        }
        time::Duration::try_from(ttl)
            .ok()
            .and_then(|d| ctx.now.checked_add(d))
            .ok_or_else(ttl_invalid)
    }

    /// `now` backdated by the role's `not_before_duration`.
    fn not_before(&self, ctx: &CheckContext) -> Result<OffsetDateTime, RoleRefusal> {
        time::Duration::try_from(self.not_before_duration)
            .ok()
            .and_then(|d| ctx.now.checked_sub(d))
            .ok_or_else(|| RoleRefusal::NotBeforeInvalid {
                role: self.name.clone(),
                not_before_duration: self.not_before_duration,
            })
    }

    /// A notAfter past the issuer's: refused, cut or permitted, as the role says.
    fn held_to_issuer(
        &self,
        not_after: OffsetDateTime,
        ctx: &CheckContext,
        warnings: &mut Vec<String>,
    ) -> Result<OffsetDateTime, RoleRefusal> {
        if not_after <= ctx.ca_not_after {
            return Ok(not_after);
        }
        let expired = || RoleRefusal::IssuerExpired {
            ca_name: ctx.ca_name.clone(),
            ca_not_after: ctx.ca_not_after,
            now: ctx.now,
        };
        match self.leaf_not_after_behavior {
            NotAfterBehavior::Err if ctx.ca_not_after <= ctx.now => Err(expired()),
            NotAfterBehavior::Err => Err(RoleRefusal::OutlivesIssuer {
                role: self.name.clone(),
                not_after,
                ca_name: ctx.ca_name.clone(),
                ca_not_after: ctx.ca_not_after,
                now: ctx.now,
            }),
            NotAfterBehavior::Truncate if ctx.ca_not_after <= ctx.now => Err(expired()),
            NotAfterBehavior::Truncate => {
                warnings.push(format!(
                    "notAfter {} cut to {}, the notAfter of issuer \"{}\" \
                     (leaf_not_after_behavior: truncate)",
                    rfc3339(not_after),
                    rfc3339(ctx.ca_not_after),
                    ctx.ca_name
                ));
                Ok(ctx.ca_not_after)
            }
            NotAfterBehavior::Permit => {
                warnings.push(format!(
                    "notAfter {} is after {}, the notAfter of issuer \"{}\"; the chain will \
                     expire first (leaf_not_after_behavior: permit)",
                    rfc3339(not_after),
                    rfc3339(ctx.ca_not_after),
                    ctx.ca_name
                ));
                Ok(not_after)
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use crate::role::testkit::*;
    use crate::role::NotAfterBehavior;
    use std::time::Duration;
    use time::macros::datetime;

    /// TTL defaults and caps, backdating, and the issuer's notAfter.
    pub(in crate::role) fn cases() -> Vec<Case> {
        vec![
            // TTL.
            case("TTL as requested")
                .ttl(48)
                .expect(|e| {
                    e.not_before = Some(datetime!(2024-12-31 23:59:30 UTC));
                    e.not_after = Some(datetime!(2025-01-03 0:00 UTC));
                    e.warnings = Some(&[]);
                }),
            case("TTL over max_ttl is capped with a warning")
                .ttl(800)
                .expect(|e| {
                    e.not_after = Some(NOW + time::Duration::hours(720));
                    e.warnings = Some(&[
                        "TTL \"800h\" is longer than the role's max_ttl \"720h\"; capped to 720h",
                    ]);
                }),
            case("TTL over the system max when max_ttl is higher")
                .role(|r| r.max_ttl = Some(hours(1000)))
                .ttl(900)
                .expect(|e| {
                    e.not_after = Some(NOW + time::Duration::hours(768));
                    e.warnings = Some(&[
                        "TTL \"900h\" is longer than the system's max TTL \"768h\"; capped to 768h",
                    ]);
                }),
            case("TTL defaults to the role's ttl")
                .role(|r| r.ttl = Some(hours(24)))
                .expect(|e| e.not_after = Some(datetime!(2025-01-02 0:00 UTC))),
            case("then to max_ttl")
                .expect(|e| e.not_after = Some(NOW + time::Duration::hours(720))),
            case("then to the system max")
                .role(|r| r.max_ttl = None)
                .expect(|e| e.not_after = Some(NOW + time::Duration::hours(768))),
            case("a requested TTL of 0 means the default")
                .role(|r| r.ttl = Some(hours(24)))
                .expect(|e| e.not_after = Some(datetime!(2025-01-02 0:00 UTC)))
                .ttl(0),
            case("system max of 0 leaves no validity")
                .role(|r| r.max_ttl = None)
                .system_max(0)
                .refused("ttl_invalid"),
            case("not_before_duration backdates notBefore")
                .role(|r| r.not_before_duration = Duration::from_secs(300))
                .expect(|e| e.not_before = Some(datetime!(2024-12-31 23:55 UTC))),
            case("outlives the issuer: err")
                .ca_not_after(datetime!(2025-01-05 0:00 UTC))
                .ttl(200)
                .refused("outlives_issuer"),
            case("outlives the issuer: truncate")
                .role(|r| r.leaf_not_after_behavior = NotAfterBehavior::Truncate)
                .ca_not_after(datetime!(2025-01-05 0:00 UTC))
                .ttl(200)
                .expect(|e| {
                    e.not_after = Some(datetime!(2025-01-05 0:00 UTC));
                    e.warnings = Some(&[
                        "notAfter 2025-01-09T08:00:00Z cut to 2025-01-05T00:00:00Z, the notAfter of issuer \"root\" (leaf_not_after_behavior: truncate)",
                    ]);
                }),
            case("outlives the issuer: permit")
                .role(|r| r.leaf_not_after_behavior = NotAfterBehavior::Permit)
                .ca_not_after(datetime!(2025-01-05 0:00 UTC))
                .ttl(200)
                .expect(|e| {
                    e.not_after = Some(datetime!(2025-01-09 8:00 UTC));
                    e.warnings = Some(&[
                        "notAfter 2025-01-09T08:00:00Z is after 2025-01-05T00:00:00Z, the notAfter of issuer \"root\"; the chain will expire first (leaf_not_after_behavior: permit)",
                    ]);
                }),
            case("ends exactly with the issuer")
                .ca_not_after(datetime!(2025-01-03 0:00 UTC))
                .ttl(48)
                .expect(|e| e.not_after = Some(datetime!(2025-01-03 0:00 UTC))),
            case("issuer already expired")
                .role(|r| r.leaf_not_after_behavior = NotAfterBehavior::Truncate)
                .ca_not_after(datetime!(2024-06-01 0:00 UTC))
                .refused("issuer_expired"),
        ]
    }

    #[test]
    fn validity_table() {
        run(&cases());
    }
}
