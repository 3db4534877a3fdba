//! The state machines of orders, authorizations and challenges (RFC 8555 §7.1.6).

use serde::{Deserialize, Serialize};

use crate::problem::{Problem, ProblemType};

/// An order's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Authorizations outstanding.
    Pending,
    /// Every authorization valid: finalize may be called.
    Ready,
    /// Finalize accepted, the certificate being issued.
    Processing,
    /// Issued.
    Valid,
    /// An authorization failed, or the order expired.
    Invalid,
}

/// An authorization's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthzStatus {
    /// No challenge passed yet.
    Pending,
    /// A challenge passed.
    Valid,
    /// A challenge failed.
    Invalid,
    /// The client gave it up.
    Deactivated,
    /// Its time ran out.
    Expired,
    /// The server withdrew it.
    Revoked,
}

/// A challenge's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChallengeStatus {
    /// Waiting for the client.
    Pending,
    /// Being validated.
    Processing,
    /// Passed.
    Valid,
    /// Failed.
    Invalid,
}

/// What happens to a challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeEvent {
    /// The client says it is ready (POST `{}` to the challenge).
    Respond,
    /// Validation passed.
    Passed,
    /// Validation failed.
    Failed,
}

/// A challenge's next status, or the problem with the event. Responding again to a challenge
/// being validated or already decided changes nothing (RFC 8555 §7.5.1: clients retry).
pub fn challenge_after(
    now: ChallengeStatus,
    authz: AuthzStatus,
    event: ChallengeEvent,
) -> Result<ChallengeStatus, Problem> {
    use ChallengeEvent as E;
    use ChallengeStatus as C;
    match (now, event) {
        (C::Pending, E::Respond) if authz == AuthzStatus::Pending => Ok(C::Processing),
        (C::Pending, E::Respond) => Err(Problem::malformed(format!(
            "the authorization is {}; its challenges can no longer be answered",
            serde_json::to_value(authz)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default()
        ))),
        (s, E::Respond) => Ok(s),
        (C::Processing, E::Passed) => Ok(C::Valid),
        (C::Processing, E::Failed) => Ok(C::Invalid),
        (s, _) => Err(Problem::new(
            ProblemType::ServerInternal,
            format!("a validation result arrived for a challenge that is {s:?}"),
        )),
    }
}

/// An authorization's status once one of its challenges became `challenge`.
pub fn authz_after_challenge(now: AuthzStatus, challenge: ChallengeStatus) -> AuthzStatus {
    match (now, challenge) {
        (AuthzStatus::Pending, ChallengeStatus::Valid) => AuthzStatus::Valid,
        (AuthzStatus::Pending, ChallengeStatus::Invalid) => AuthzStatus::Invalid,
        (s, _) => s,
    }
}

/// An order's status from its own and its authorizations' (§7.1.6): invalid when expired or
/// when any authorization is not pending or valid; ready when all are valid; once processing
/// or valid it stays so.
pub fn order_status(now: OrderStatus, authzs: &[AuthzStatus], expired: bool) -> OrderStatus {
    match now {
        OrderStatus::Valid | OrderStatus::Invalid | OrderStatus::Processing => now,
        _ if expired => OrderStatus::Invalid,
        _ if authzs
            .iter()
            .any(|a| !matches!(a, AuthzStatus::Pending | AuthzStatus::Valid)) =>
        {
            OrderStatus::Invalid
        }
        _ if !authzs.is_empty() && authzs.iter().all(|a| *a == AuthzStatus::Valid) => {
            OrderStatus::Ready
        }
        _ => OrderStatus::Pending,
    }
}

impl OrderStatus {
    /// Finalize is allowed only on a ready order.
    pub fn check_finalize(self) -> Result<(), Problem> {
        if self == OrderStatus::Ready {
            return Ok(());
        }
        Err(Problem::new(
            ProblemType::OrderNotReady,
            format!("the order is {self:?}, not ready; answer its challenges first")
                .to_lowercase_status(),
        ))
    }
}

trait LowerStatus {
    fn to_lowercase_status(self) -> String;
}

impl LowerStatus for String {
    // The status words in details read as the wire's (`pending`, not `Pending`).
    fn to_lowercase_status(self) -> String {
        ["Pending", "Ready", "Processing", "Valid", "Invalid"]
            .iter()
            .fold(self, |s, w| s.replacen(w, &w.to_lowercase(), 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthzStatus as A;
    use ChallengeEvent as E;
    use ChallengeStatus as C;
    use OrderStatus as O;

    #[test]
    fn challenges() {
        for (now, authz, ev, want) in [
            (C::Pending, A::Pending, E::Respond, Ok(C::Processing)),
            (C::Processing, A::Pending, E::Respond, Ok(C::Processing)),
            (C::Valid, A::Valid, E::Respond, Ok(C::Valid)),
            (C::Processing, A::Pending, E::Passed, Ok(C::Valid)),
            (C::Processing, A::Pending, E::Failed, Ok(C::Invalid)),
            (
                C::Pending,
                A::Deactivated,
                E::Respond,
                Err("the authorization is deactivated; its challenges can no longer be answered"),
            ),
            (
                C::Valid,
                A::Valid,
                E::Failed,
                Err("a validation result arrived for a challenge that is Valid"),
            ),
        ] {
            let got = challenge_after(now, authz, ev).map_err(|p| p.detail);
            assert_eq!(got, want.map_err(String::from), "{now:?} {ev:?}");
        }
        assert_eq!(authz_after_challenge(A::Pending, C::Valid), A::Valid);
        assert_eq!(authz_after_challenge(A::Pending, C::Invalid), A::Invalid);
        assert_eq!(
            authz_after_challenge(A::Deactivated, C::Valid),
            A::Deactivated
        );
    }

    #[test]
    fn orders() {
        for (now, authzs, expired, want) in [
            (O::Pending, vec![A::Pending, A::Valid], false, O::Pending),
            (O::Pending, vec![A::Valid, A::Valid], false, O::Ready),
            (O::Pending, vec![A::Valid, A::Invalid], false, O::Invalid),
            (O::Pending, vec![A::Deactivated], false, O::Invalid),
            (O::Pending, vec![A::Valid], true, O::Invalid),
            (O::Ready, vec![A::Valid], false, O::Ready),
            (O::Valid, vec![A::Valid], true, O::Valid),
            (O::Processing, vec![A::Valid], false, O::Processing),
            (O::Pending, vec![], false, O::Pending),
        ] {
            assert_eq!(
                order_status(now, &authzs, expired),
                want,
                "{now:?} {authzs:?}"
            );
        }
        assert!(O::Ready.check_finalize().is_ok());
        let p = O::Pending.check_finalize().unwrap_err();
        assert_eq!(
            p.detail,
            "the order is pending, not ready; answer its challenges first"
        );
        assert_eq!(p.kind(), ProblemType::OrderNotReady);
    }
}

/// An account may sign requests only while `valid`: a deactivated (or revoked) account's `kid`
/// and key are refused for good (RFC 8555 §7.3.6).
pub fn check_account(kid: &str, status: &str) -> Result<(), Problem> {
    if status == "valid" {
        return Ok(());
    }
    Err(Problem::new(
        ProblemType::Unauthorized,
        format!("account \"{kid}\" is {status}"),
    ))
}

#[cfg(test)]
mod account_tests {
    use super::*;

    #[test]
    fn only_valid_accounts_sign() {
        for (status, want) in [
            ("valid", None),
            (
                "deactivated",
                Some("account \"https://ca/acct/1\" is deactivated"),
            ),
            ("revoked", Some("account \"https://ca/acct/1\" is revoked")),
        ] {
            let got = check_account("https://ca/acct/1", status).err();
            assert_eq!(got.as_ref().map(|p| p.detail.as_str()), want);
            assert!(got.is_none_or(|p| p.kind() == ProblemType::Unauthorized));
        }
    }
}
