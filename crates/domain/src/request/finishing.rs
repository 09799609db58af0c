//! `PUT /requests/{id}` `{"status": outcome}` decided over what it loads: the request moves to
//! Completed, Canceled or Abandoned, and its cards and profiles follow in the same write
//! (docs/API.md, "The request lifecycle").

use super::executing::{card_effects, Execution};
use super::{finish, Change, Request};
use crate::decided::{AuditAction, Decided, RuleError};
use crate::profile;
use crate::smartcard::FinishError;
use crate::template::ProfileTemplate;
use crate::{Outcome, Principal, RequestStatus, RequestType, Timestamp};
use std::sync::Arc;

/// What finishing a request reads besides the request.
#[derive(Clone, Debug)]
pub struct FinishSnapshot {
    pub execution: Execution,
    /// The request's template; `None` once deleted.
    pub template: Option<Arc<ProfileTemplate>>,
    /// Whether the profile the request created holds certificates.
    pub new_has_certificates: bool,
}

/// The audit action of an outcome.
pub fn action(outcome: Outcome) -> AuditAction {
    match outcome {
        Outcome::Completed => AuditAction::Complete,
        Outcome::Canceled => AuditAction::Cancel,
        Outcome::Abandoned => AuditAction::Abandon,
    }
}

/// The request ends as `outcome`; `None` when it already has (an idempotent repeat).
pub fn decide(
    current: &Request,
    s: &FinishSnapshot,
    caller: &Principal,
    outcome: Outcome,
    now: Timestamp,
) -> Result<Option<Decided>, RuleError> {
    let next = match finish(current, caller, outcome, now)? {
        Change::AlreadyDone => return Ok(None),
        Change::To(next) => *next,
    };
    let x = &s.execution;
    let template = s.template.as_deref();
    let decided = x.cards.finish(
        next.uuid,
        outcome,
        x.old.as_ref(),
        x.new.as_ref(),
        template.is_some_and(|t| t.kind.is_smartcard()),
    );
    // The card first: completing a card enrolment without a card says so before anything else;
    // then whether it delivered what it must; then the profiles.
    if let Err(FinishError::Card(e)) = decided {
        return Err(e.into());
    }
    if outcome == Outcome::Completed {
        // Whether the request must deliver something before it completes: the certificates of a
        // new profile (onto its card, for a smart card template), or a Recover's archived keys.
        let recover = matches!(
            next.request_type,
            RequestType::Recover | RequestType::RecoverOnBehalf
        );
        let issues = template
            .is_some_and(|t| recover || !t.certificates_issued_by(next.request_type).is_empty());
        let delivered = match (&x.new, next.request_type) {
            (_, RequestType::Recover | RequestType::RecoverOnBehalf) => {
                current.status == RequestStatus::Executing
            }
            (Some(_), _) => s.new_has_certificates,
            (None, _) => false,
        };
        profile::ensure_issued(next.uuid, next.request_type, issues, delivered)?;
    }
    let effects = card_effects(decided?);
    if outcome == Outcome::Completed {
        x.target_served(&next)?;
    }
    Ok(Some(
        Decided::new(next, action(outcome), "").with_effects(effects),
    ))
}
