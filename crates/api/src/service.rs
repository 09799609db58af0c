//! The request operations: read through the store, decide with the domain, write back with the
//! version that was read. A write that loses a race (`WriteOutcome::Conflict`) is decided again
//! from a fresh read, so the loser sees the winner's result (an idempotent repeat, or a 409 for a
//! transition that is no longer allowed) and never overwrites it.

use crate::error::ApiError;
use crate::AppState;
use opencm_domain::request::{self, Approval, AuditEvent, Change, CreateInput, Decision, Request};
use opencm_domain::{Guid, Outcome, Principal, RequestStatus, RequestType, Timestamp};
use opencm_store::{Effect, Write, WriteOutcome};

const MAX_ATTEMPTS: usize = 16;

pub struct NewRequest {
    pub template: Guid,
    pub request_type: RequestType,
    pub target: Option<Guid>,
    pub data: Vec<(String, Option<String>)>,
    pub comment: String,
    pub priority: Option<i64>,
}

fn conflict_exhausted(id: Guid) -> ApiError {
    ApiError::conflict(
        "ConcurrentUpdate",
        format!("Request {id} is being changed by others right now; retry."),
    )
}

pub async fn create(
    state: &AppState,
    caller: &Principal,
    n: NewRequest,
) -> Result<Request, ApiError> {
    let template = state.store.template(n.template).await?.ok_or_else(|| {
        ApiError::not_found(
            "ProfileTemplateNotFound",
            format!("Profile template {} was not found.", n.template),
        )
    })?;
    let target = match n.target {
        Some(t) if t != caller.uuid => state.store.user_by_uuid(t).await?.ok_or_else(|| {
            ApiError::not_found("UserNotFound", format!("Target user {t} was not found."))
        })?,
        _ => caller.clone(),
    };
    let now = state.clock.now();
    let r = request::create(CreateInput {
        id: Guid::new_time_ordered(),
        now,
        request_type: n.request_type,
        template: &template,
        caller,
        target: &target,
        data: n.data,
        comment: n.comment,
        priority: n.priority,
    })?;
    let ev = AuditEvent {
        request: r.uuid,
        at: now,
        actor: caller.uuid,
        action: "Create".into(),
        from: RequestStatus::None,
        to: r.status,
        detail: format!(
            "{} request from template '{}'",
            r.request_type, template.name
        ),
    };
    match state
        .store
        .write(Write::Create {
            request: r.clone(),
            event: ev,
        })
        .await?
    {
        WriteOutcome::Done => Ok(r),
        WriteOutcome::Conflict => Err(ApiError::internal("create conflicted on a fresh id")),
    }
}

/// The request if the caller may read it; 404 otherwise (SPEC §6).
pub async fn visible(state: &AppState, caller: &Principal, id: Guid) -> Result<Request, ApiError> {
    let not_found =
        || ApiError::not_found("RequestNotFound", format!("Request {id} was not found."));
    let r = state.store.request(id).await?.ok_or_else(not_found)?;
    request::ensure_readable(&r, caller).map_err(|_| not_found())?;
    Ok(r)
}

/// What a decision on the current request produced: the request as it must be stored, what to
/// record beside it, and the audit action.
pub(crate) struct Decided {
    pub next: Request,
    pub approval: Option<Approval>,
    pub action: &'static str,
    pub detail: String,
    pub effects: Vec<Effect>,
}

/// Read → decide → write with the version read, again from a fresh read when another writer got
/// there first. `decide` returns `None` when there is nothing to change (the request is answered
/// as it stands).
pub(crate) async fn change<F, Fut>(
    state: &AppState,
    caller: &Principal,
    id: Guid,
    decide: F,
) -> Result<Request, ApiError>
where
    F: Fn(Request, Timestamp) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Decided>, ApiError>>,
{
    for _ in 0..MAX_ATTEMPTS {
        let current = visible(state, caller, id).await?;
        let from = current.status;
        let now = state.clock.now();
        let Some(d) = decide(current.clone(), now).await? else {
            return Ok(current);
        };
        let event = AuditEvent {
            request: id,
            at: now,
            actor: caller.uuid,
            action: d.action.into(),
            from,
            to: d.next.status,
            detail: d.detail,
        };
        let w = Write::Update {
            request: d.next.clone(),
            approval: d.approval,
            event,
            effects: d.effects,
        };
        if state.store.write(w).await? == WriteOutcome::Done {
            return Ok(Request {
                version: d.next.version + 1,
                ..d.next
            });
        }
    }
    Err(conflict_exhausted(id))
}

pub async fn finish(
    state: &AppState,
    caller: &Principal,
    id: Guid,
    outcome: Outcome,
) -> Result<Request, ApiError> {
    change(state, caller, id, |current, now| async move {
        Ok(match request::finish(&current, caller, outcome, now)? {
            Change::AlreadyDone => None,
            Change::To(next) => Some(Decided {
                effects: outcome_effects(&next, outcome, now),
                next: *next,
                approval: None,
                action: outcome.action(),
                detail: String::new(),
            }),
        })
    })
    .await
}

pub async fn decide(
    state: &AppState,
    caller: &Principal,
    id: Guid,
    decision: Decision,
    comment: String,
) -> Result<Request, ApiError> {
    let comment = &comment;
    change(state, caller, id, |current, now| async move {
        let template = state.store.template(current.profile_template).await?;
        let needed = template
            .as_ref()
            .and_then(|t| t.policy(current.request_type))
            .map(|p| p.approvals_needed)
            .ok_or_else(|| {
                ApiError::conflict(
                    "PolicyNotFound",
                    "The request's workflow policy no longer exists.",
                )
            })?;
        let prior = state.store.approvals(id).await?;
        let (next, approval) = request::decide(
            &current,
            needed,
            caller,
            &prior,
            decision,
            comment.clone(),
            now,
        )?;
        Ok(Some(Decided {
            next,
            approval: Some(approval),
            action: decision.name(),
            detail: comment.clone(),
            effects: Vec::new(),
        }))
    })
    .await
}

/// Approved → Executing, for the execution steps (card binding, certificate data) and for tests.
pub async fn begin_execution(
    state: &AppState,
    caller: &Principal,
    id: Guid,
) -> Result<Request, ApiError> {
    change(state, caller, id, |current, _| async move {
        let next = request::begin_execution(&current, caller)?;
        Ok((next.status != current.status).then(|| Decided {
            next,
            approval: None,
            action: "Execute",
            detail: String::new(),
            effects: Vec::new(),
        }))
    })
    .await
}

/// What completing, canceling or abandoning does to what the request created (SPEC §5): its new
/// profile becomes Active on Completed; on Canceled or Abandoned it is Disabled and the
/// certificates issued for it are revoked (cessation of operation), in the same transaction.
fn outcome_effects(next: &Request, outcome: Outcome, now: Timestamp) -> Vec<Effect> {
    use opencm_domain::enums::{profile_status, revocation_reason};
    if next.new_profile.is_nil() {
        return Vec::new();
    }
    match outcome {
        Outcome::Completed => vec![Effect::SetProfileStatus {
            profile: next.new_profile,
            status: profile_status::ACTIVE,
        }],
        Outcome::Canceled | Outcome::Abandoned => vec![
            Effect::SetProfileStatus {
                profile: next.new_profile,
                status: profile_status::DISABLED,
            },
            Effect::RevokeProfileCertificates {
                profile: next.new_profile,
                reason: revocation_reason::CESSATION_OF_OPERATION,
                at: now,
            },
        ],
    }
}
