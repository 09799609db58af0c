//! One-time passwords (MIM CM's `OneTimePasswordPolicy`): when a request whose policy asks for
//! one is approved, a secret goes to the people the policy names (`policy::SecretDistribution`),
//! and its executor presents it before any execution step begins. Only its hash is kept; it has
//! a lifetime and a number of tries; every try, accepted or refused, is in the request's history.
//! The secret is made, hashed and compared by the app (randomness and argon2 are IO and cost);
//! what each step may do is decided here.

use super::{may_execute, ActionError, Request};
use crate::decided::{AuditAction, Decided, Effect, RuleError};
use crate::{Principal, RequestId, Timestamp};

/// A request's one-time password, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRecord {
    pub request: RequestId,
    /// The secret's argon2id hash (PHC string).
    pub hash: String,
    pub expires: Timestamp,
    pub attempts_left: i64,
    /// The secret sealed under the KEK until the originator has been shown it once (policy
    /// `originator`); `None` otherwise or once shown.
    pub for_originator: Option<String>,
}

/// What a step does to the request's secret, in the step's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretChange {
    /// A new secret, replacing any before (which no longer works).
    Put(SecretRecord),
    /// One try spent.
    Attempt(RequestId),
    /// Presented: the secret is gone.
    Consume(RequestId),
    /// Shown to the originator: its sealed copy is gone.
    Shown(RequestId),
}

/// Why a presented secret was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Wrong { attempts_left: i64 },
    Expired,
    NoAttemptsLeft,
}

impl Refusal {
    fn detail(self) -> String {
        match self {
            Refusal::Wrong { attempts_left } => {
                format!("wrong one-time password; {attempts_left} tries left")
            }
            Refusal::Expired => "expired one-time password".into(),
            Refusal::NoAttemptsLeft => "one-time password tried too often".into(),
        }
    }
}

fn pending(r: &Request) -> Result<(), RuleError> {
    if r.secret_required {
        Ok(())
    } else {
        Err(RuleError::NoSecretPending(r.uuid))
    }
}

/// The executor presents the secret (`matches`: whether it is the stored one, as the app
/// compared it). Accepted: the request may be executed and the secret is gone. Refused: the try
/// is recorded (and spent, for a wrong one) — the caller is told after the write.
pub fn present(
    r: &Request,
    caller: &Principal,
    record: Option<&SecretRecord>,
    matches: bool,
    now: Timestamp,
) -> Result<(Decided, Option<Refusal>), RuleError> {
    may_execute(r, caller)?;
    pending(r)?;
    let refusal = match record {
        None => Some(Refusal::Expired),
        Some(s) if now >= s.expires => Some(Refusal::Expired),
        Some(s) if s.attempts_left <= 0 => Some(Refusal::NoAttemptsLeft),
        Some(s) if !matches => Some(Refusal::Wrong {
            attempts_left: s.attempts_left - 1,
        }),
        Some(_) => None,
    };
    Ok(match refusal {
        None => (
            Decided::new(
                Request {
                    secret_required: false,
                    ..r.clone()
                },
                AuditAction::OneTimePasswordAccepted,
                "",
            )
            .with_effects(vec![Effect::Secret(SecretChange::Consume(r.uuid))]),
            None,
        ),
        Some(why) => {
            let effects = match why {
                Refusal::Wrong { .. } => vec![Effect::Secret(SecretChange::Attempt(r.uuid))],
                _ => Vec::new(),
            };
            (
                Decided::new(r.clone(), AuditAction::OneTimePasswordRefused, why.detail())
                    .with_effects(effects),
                Some(why),
            )
        }
    })
}

/// A new secret for a request still waiting for one (the old one stops working): by the help
/// desk (`may_distribute`: an initiator of the policy, an approver or an administrator).
pub fn resend(
    r: &Request,
    may_distribute: bool,
    record: SecretRecord,
) -> Result<Decided, RuleError> {
    may_resend(r, may_distribute)?;
    Ok(Decided::new(
        r.clone(),
        AuditAction::DistributeSecrets,
        "new one-time password",
    )
    .with_effects(vec![Effect::Secret(SecretChange::Put(record))]))
}

/// Whether a new secret may be sent for `r` (checked before one is made: argon2 costs).
pub fn may_resend(r: &Request, may_distribute: bool) -> Result<(), RuleError> {
    if !may_distribute {
        return Err(ActionError::Forbidden(super::rights::DISTRIBUTE_SECRETS, r.uuid).into());
    }
    pending(r)
}

/// The originator is shown the secret, once (policy `originator`).
pub fn show(
    r: &Request,
    caller: &Principal,
    record: Option<&SecretRecord>,
) -> Result<Decided, RuleError> {
    if caller.uuid != r.originator {
        return Err(RuleError::SecretNotYours(r.uuid));
    }
    pending(r)?;
    if record.and_then(|s| s.for_originator.as_ref()).is_none() {
        return Err(RuleError::SecretAlreadyShown(r.uuid));
    }
    Ok(
        Decided::new(r.clone(), AuditAction::ReleaseOneTimePassword, "")
            .with_effects(vec![Effect::Secret(SecretChange::Shown(r.uuid))]),
    )
}
