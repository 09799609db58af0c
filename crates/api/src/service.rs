//! The request operations: read through the store, decide with the domain, write back with the
//! version that was read. A write that loses a race (`WriteOutcome::Conflict`) is decided again
//! from a fresh read, so the loser sees the winner's result (an idempotent repeat, or a 409 for a
//! transition that is no longer allowed) and never overwrites it.

use crate::error::ApiError;
use crate::AppState;
use opencm_domain::request::{self, Approval, AuditEvent, Change, CreateInput, Decision, Request};
use opencm_domain::{Guid, Outcome, Principal, RequestStatus, RequestType};
use opencm_store::{Write, WriteOutcome};

const MAX_ATTEMPTS: usize = 16;

pub struct NewRequest {
    pub template: Guid,
    pub request_type: RequestType,
    pub target: Option<Guid>,
    pub data: Vec<(String, Option<String>)>,
    pub comment: String,
    pub priority: Option<i64>,
}

fn event(
    r: &Request,
    actor: &Principal,
    action: &str,
    from: RequestStatus,
    detail: String,
) -> AuditEvent {
    AuditEvent {
        request: r.uuid,
        at: r.completed.max(r.submitted),
        actor: actor.uuid,
        action: action.into(),
        from,
        to: r.status,
        detail,
    }
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

pub async fn finish(
    state: &AppState,
    caller: &Principal,
    id: Guid,
    outcome: Outcome,
) -> Result<Request, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = visible(state, caller, id).await?;
        let now = state.clock.now();
        let next = match request::finish(&current, caller, outcome, now)? {
            Change::AlreadyDone => return Ok(current),
            Change::To(next) => *next,
        };
        let ev = event(
            &next,
            caller,
            outcome.action(),
            current.status,
            String::new(),
        );
        let w = Write::Update {
            request: next.clone(),
            approval: None,
            event: ev,
        };
        if state.store.write(w).await? == WriteOutcome::Done {
            return Ok(Request {
                version: next.version + 1,
                ..next
            });
        }
    }
    Err(conflict_exhausted(id))
}

pub async fn decide(
    state: &AppState,
    caller: &Principal,
    id: Guid,
    decision: Decision,
    comment: String,
) -> Result<Request, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = visible(state, caller, id).await?;
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
        let now = state.clock.now();
        let (next, approval): (Request, Approval) = request::decide(
            &current,
            needed,
            caller,
            &prior,
            decision,
            comment.clone(),
            now,
        )?;
        let detail = if comment.is_empty() {
            String::new()
        } else {
            comment.clone()
        };
        let mut ev = event(&next, caller, decision.name(), current.status, detail);
        ev.at = now;
        let w = Write::Update {
            request: next.clone(),
            approval: Some(approval),
            event: ev,
        };
        if state.store.write(w).await? == WriteOutcome::Done {
            return Ok(Request {
                version: next.version + 1,
                ..next
            });
        }
    }
    Err(conflict_exhausted(id))
}

/// Approved → Executing, for the execution steps (card binding, certificate data) and for tests.
pub async fn begin_execution(
    state: &AppState,
    caller: &Principal,
    id: Guid,
) -> Result<Request, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = visible(state, caller, id).await?;
        let next = request::begin_execution(&current, caller)?;
        if next.status == current.status {
            return Ok(current);
        }
        let mut ev = event(&next, caller, "Execute", current.status, String::new());
        ev.at = state.clock.now();
        let w = Write::Update {
            request: next.clone(),
            approval: None,
            event: ev,
        };
        if state.store.write(w).await? == WriteOutcome::Done {
            return Ok(Request {
                version: next.version + 1,
                ..next
            });
        }
    }
    Err(conflict_exhausted(id))
}
