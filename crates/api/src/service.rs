//! The request operations: read through the store, decide with the domain, write back with the
//! version that was read. A write that loses a race (`WriteOutcome::Conflict`) is decided again
//! from a fresh read, so the loser sees the winner's result (an idempotent repeat, or a 409 for a
//! transition that is no longer allowed) and never overwrites it.

use crate::error::ApiError;
use crate::AppState;
use opencm_domain::profile;
use opencm_domain::request::{self, Approval, AuditEvent, Change, CreateInput, Decision, Request};
use opencm_domain::{Guid, Outcome, Principal, RequestStatus, RequestType, Timestamp};
use opencm_store::{Effect, ProfileRecord, Write, WriteOutcome};

const MAX_ATTEMPTS: usize = 16;

pub struct NewRequest {
    /// The template; `None` when the request names an existing profile (its template is used).
    pub template: Option<Guid>,
    pub profile: Option<Guid>,
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
    // A request on an existing profile takes the profile's template and user.
    let profile = match n.profile {
        Some(pid) => {
            let not_found =
                || ApiError::not_found("ProfileNotFound", format!("Profile {pid} was not found."));
            let p = state.store.profile(pid).await?.ok_or_else(not_found)?;
            if n.template.is_some_and(|t| t != p.template) {
                return Err(ApiError::bad_request(
                    "InvalidBody",
                    "'profiletemplateuuid' is not the profile's template; omit it.",
                ));
            }
            if n.target.is_some_and(|t| t != p.assigned_user) {
                return Err(ApiError::bad_request(
                    "InvalidBody",
                    "'target' is not the profile's user; omit it.",
                ));
            }
            Some(p)
        }
        None => None,
    };
    let template_id = match (&profile, n.template) {
        (Some(p), _) => p.template,
        (None, Some(t)) => t,
        (None, None) => {
            return Err(ApiError::bad_request(
                "InvalidBody",
                "'profiletemplateuuid' (or 'profile') is required.",
            ))
        }
    };
    let template = state.store.template(template_id).await?.ok_or_else(|| {
        ApiError::not_found(
            "ProfileTemplateNotFound",
            format!("Profile template {template_id} was not found."),
        )
    })?;
    let target_id = profile.as_ref().map(|p| p.assigned_user).or(n.target);
    let target = match target_id {
        Some(t) if t != caller.uuid => state.store.user_by_uuid(t).await?.ok_or_else(|| {
            ApiError::not_found("UserNotFound", format!("Target user {t} was not found."))
        })?,
        _ => caller.clone(),
    };
    if let Some(p) = &profile {
        // Someone else's profile is invisible unless the caller may initiate for others.
        let initiator = template.policy(n.request_type).is_some_and(|pol| {
            opencm_domain::sddl::access_check(
                &pol.authorized_initiator,
                &caller.token_sids(),
                request::rights::ROLE,
            )
            .is_granted()
        });
        let admin = caller
            .token_sids()
            .contains(&opencm_domain::Sid::administrators());
        if p.assigned_user != caller.uuid && !initiator && !admin {
            return Err(ApiError::not_found(
                "ProfileNotFound",
                format!("Profile {} was not found.", p.uuid),
            ));
        }
    }
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
        on_profile: profile.as_ref().map(ProfileRecord::state),
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
                effects: outcome_effects(state, &current, &next, outcome).await?,
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
        if next.status == current.status {
            return Ok(None);
        }
        let (old, _) = touched_profiles(state, &current).await?;
        let guard = profile::on_execution(
            current.request_type,
            old.as_ref().map(ProfileRecord::state).as_ref(),
        )?;
        Ok(Some(Decided {
            next,
            approval: None,
            action: "Execute",
            detail: String::new(),
            effects: guard.map(Effect::Profile).into_iter().collect(),
        }))
    })
    .await
}

/// The profiles a request touches, as they are now: the one it acts on and the one it created.
pub(crate) async fn touched_profiles(
    state: &AppState,
    r: &Request,
) -> Result<(Option<ProfileRecord>, Option<ProfileRecord>), ApiError> {
    let load = |id: Guid| async move {
        if id.is_nil() {
            Ok::<_, ApiError>(None)
        } else {
            Ok(state.store.profile(id).await?)
        }
    };
    let old = load(r.old_profile).await?;
    let created = !r.new_profile.is_nil() && r.new_profile != r.old_profile;
    let new = if created {
        load(r.new_profile).await?
    } else {
        None
    };
    Ok((old, new))
}

/// What completing, canceling or abandoning does to the profiles a request touches, decided by
/// the domain from their current state (SPEC §5), and written in the transition's transaction with
/// the versions read.
async fn outcome_effects(
    state: &AppState,
    current: &Request,
    next: &Request,
    outcome: Outcome,
) -> Result<Vec<Effect>, ApiError> {
    let (old, new) = touched_profiles(state, next).await?;
    if outcome == Outcome::Completed {
        let issues = match state.store.template(next.profile_template).await? {
            Some(t) => {
                !t.kind.is_smartcard()
                    && !crate::issuance::certificates_for(next, &t.certificates).is_empty()
            }
            None => false,
        };
        let delivered = match (&new, next.request_type) {
            (_, RequestType::Recover | RequestType::RecoverOnBehalf) => {
                current.status == RequestStatus::Executing
            }
            (Some(p), _) => !state
                .store
                .certificates_of_profile(p.uuid)
                .await?
                .is_empty(),
            (None, _) => false,
        };
        profile::ensure_issued(next.uuid, next.request_type, issues, delivered)?;
    }
    let changes = profile::on_outcome(
        next.request_type,
        outcome,
        old.as_ref().map(ProfileRecord::state).as_ref(),
        new.as_ref().map(ProfileRecord::state).as_ref(),
    )?;
    Ok(changes.into_iter().map(Effect::Profile).collect())
}
