//! `POST /requests/{id}/approvals` decided over what it loads: an approver approves or denies,
//! once; approving for a disabled target is refused (it would give them something), denying
//! always goes.

use super::executing::Execution;
use super::{decide as approve_or_deny, Approval, Decision, Request};
use crate::decided::{AuditAction, Decided, RuleError};
use crate::{Principal, Timestamp};

/// What a decision on a request reads besides the request.
#[derive(Clone, Debug)]
pub struct ApprovalSnapshot {
    /// The approvals the request's workflow policy needs; `None` when the policy is gone.
    pub approvals_needed: Option<u32>,
    /// Who gets the one-time password when the request is approved.
    pub secrets: crate::policy::SecretDistribution,
    /// The decisions already recorded.
    pub prior: Vec<Approval>,
    /// What an approval reads to know whether it gives a disabled target something; not read
    /// for a denial.
    pub execution: Option<Execution>,
}

pub fn decide(
    current: &Request,
    s: &ApprovalSnapshot,
    caller: &Principal,
    decision: Decision,
    comment: &str,
    now: Timestamp,
) -> Result<Decided, RuleError> {
    let needed = s.approvals_needed.ok_or(RuleError::PolicyNotFound)?;
    if decision == Decision::Approve {
        // Fails closed when the load did not read what an approval needs.
        match &s.execution {
            Some(x) => x.target_served(current)?,
            None => {
                return Err(RuleError::TargetDisabled(super::TargetDisabled {
                    user: current.target,
                    request_type: current.request_type,
                }))
            }
        }
    }
    let (next, approval) = approve_or_deny(
        current,
        needed,
        caller,
        &s.prior,
        decision,
        comment.to_owned(),
        now,
    )?;
    let action = match decision {
        Decision::Approve => AuditAction::Approve,
        Decision::Deny => AuditAction::Deny,
    };
    // Approved under a policy with a one-time password: nothing executes until it is presented.
    let next = Request {
        secret_required: next.status == crate::RequestStatus::Approved
            && s.secrets != crate::policy::SecretDistribution::None,
        ..next
    };
    Ok(Decided {
        approval: Some(approval),
        ..Decided::new(next, action, comment)
    })
}
