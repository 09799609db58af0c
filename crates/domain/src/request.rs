//! Requests: how one is created from a template's workflow policy, who may do what to it, and the
//! decisions for approvals and for `PUT /requests/{id}` (docs/API.md, "The request lifecycle" and "Rights").
//!
//! Every function here is pure: the caller, the clock reading and the stored request come in as
//! arguments, and a new `Request` (plus what to record) or a typed error comes out.

use crate::enums::{data_collection_flags, RequestFlags, RequestStatus, RequestType};
use crate::identity::{Principal, Sid};
use crate::ids::{ProfileId, RequestId, SmartcardId, TemplateId, UserId};
use crate::lifecycle::{Event, Outcome, TransitionError};
use crate::policy::WorkflowPolicy;
use crate::sddl::{access_check, AccessMask, Ace, Dacl, SecurityDescriptor};
use crate::template::ProfileTemplate;
use crate::timestamp::Timestamp;
use std::sync::Arc;

/// Rights on a request's security descriptor (docs/API.md, "Rights", opencm mapping).
pub mod rights {
    use crate::sddl::AccessMask;
    pub const READ: AccessMask = AccessMask(0x2_0000); // RC
    pub const WRITE: AccessMask = AccessMask(0x8); // SW
    pub const EXECUTE: AccessMask = AccessMask(0x1); // CC
    pub const CANCEL: AccessMask = AccessMask(0x2); // DC
    pub const APPROVE: AccessMask = AccessMask(0x4); // LC
    pub const CHANGE_PRIORITY: AccessMask = AccessMask(0x20); // WP
    pub const DISTRIBUTE_SECRETS: AccessMask = AccessMask(0x100); // CR
    pub const PRINT_DOCUMENTS: AccessMask = AccessMask(0x80); // LO

    /// Rights on a profile template.
    pub const TEMPLATE_READ: AccessMask = AccessMask(0x2_0000); // RC
    pub const TEMPLATE_ENROLL: AccessMask = AccessMask(0x100); // CR
    /// Holding a role on a policy role descriptor.
    pub const ROLE: AccessMask = AccessMask(0x100); // CR

    pub fn name(m: AccessMask) -> &'static str {
        match m {
            READ => "Read",
            WRITE => "Write",
            EXECUTE => "Execute",
            CANCEL => "Cancel",
            APPROVE => "Approve",
            CHANGE_PRIORITY => "ChangePriority",
            DISTRIBUTE_SECRETS => "DistributeSecrets",
            PRINT_DOCUMENTS => "PrintDocuments",
            _ => "the required right",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataValue {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub uuid: RequestId,
    pub request_type: RequestType,
    pub status: RequestStatus,
    pub flags: RequestFlags,
    pub data_collection: Vec<DataValue>,
    pub data_collection_flags: i64,
    pub originator: UserId,
    pub target: UserId,
    pub submitted: Timestamp,
    /// When it reached a final status.
    pub completed: Option<Timestamp>,
    /// The profile it created (reserved for issuance), if any.
    pub new_profile: Option<ProfileId>,
    /// The profile it acts on, if any.
    pub old_profile: Option<ProfileId>,
    /// The card bound to it, if any.
    pub new_smartcard: Option<SmartcardId>,
    /// The card it acts on or is made from, if any.
    pub old_smartcard: Option<SmartcardId>,
    pub priority: u8,
    pub comment: String,
    pub profile_template: TemplateId,
    /// Shared: descriptors repeat across requests (one per template, originator and target), so
    /// the store hands out one parsed copy of each.
    pub security_descriptor: Arc<SecurityDescriptor>,
    /// Optimistic-concurrency version: every stored change increments it, and a write that finds a
    /// different version than it read loses and is retried from a fresh read.
    pub version: i64,
    /// opencm: approved under a policy with a one-time password that its executor has not yet
    /// presented; no execution step begins until it is (`request::secrets`).
    pub secret_required: bool,
}

impl Request {
    pub fn is_data_collection_complete(&self) -> bool {
        self.data_collection_flags & data_collection_flags::BOTH == data_collection_flags::BOTH
    }

    pub fn allows(&self, caller: &Principal, right: AccessMask) -> bool {
        access_check(&self.security_descriptor, &caller.token_sids(), right).is_granted()
    }

    /// SIDs granted Read by an allow ACE: stored beside the request so that list queries can
    /// pre-filter in SQL before the exact access check.
    pub fn reader_sids(&self) -> Vec<Sid> {
        let mut v = self.security_descriptor.sids_allowed(rights::READ);
        if let Some(o) = &self.security_descriptor.owner {
            if !v.contains(o) {
                v.push(o.clone());
            }
        }
        v
    }
}

/// What a caller asked for in `POST /requests`, already parsed from the wire.
pub struct CreateInput<'a> {
    pub id: RequestId,
    pub now: Timestamp,
    pub request_type: RequestType,
    pub template: &'a ProfileTemplate,
    pub caller: &'a Principal,
    pub target: &'a Principal,
    pub data: Vec<(String, Option<String>)>,
    pub comment: String,
    pub priority: Option<i64>,
    /// The existing profile the request acts on, for every type but Enroll.
    pub on_profile: Option<crate::profile::ProfileState>,
    /// The card that profile lives on, for requests on a smart card.
    pub on_card: Option<crate::smartcard::SmartcardState>,
    /// Whether the target may still be given anything: not disabled (offboarded) nor gone from
    /// the directory.
    pub target_enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("A {0} request acts on an existing profile: give 'profile' (or 'smartcard').")]
    ProfileRequired(RequestType),
    #[error(transparent)]
    ProfileState(#[from] crate::profile::ProfileError),
    #[error(transparent)]
    SmartcardState(#[from] crate::smartcard::CardRuleError),
    #[error("An {0} request makes a new card; do not give 'smartcard' (a card in use is renewed, duplicated or replaced by the requests made on it).")]
    SmartcardNotAllowed(RequestType),
    #[error(transparent)]
    TargetDisabled(#[from] TargetDisabled),
    #[error(transparent)]
    SmartcardKind(#[from] crate::smartcard::CardKindError),
    #[error("A {0} request acts on a smart card: give 'smartcard'.")]
    SmartcardRequired(RequestType),
    #[error("A {0} request creates a new profile; do not give 'profile'.")]
    ProfileNotAllowed(RequestType),
    #[error("Profile template {0} was not found.")]
    TemplateNotFound(TemplateId),
    #[error("The {1} workflow policy of profile template '{0}' is not enabled.")]
    PolicyNotEnabled(String, RequestType),
    #[error("{0}")]
    NotAllowed(String),
    #[error("Data collection item '{0}' is required by the policy but was not given.")]
    MissingData(String),
    #[error("Data collection item '{0}' does not match the validation pattern of the policy.")]
    InvalidData(String),
    #[error("Data collection item '{0}' is not part of the policy (expected one of: {1}).")]
    UnknownData(String, String),
    #[error("Data collection item '{0}' was given more than once.")]
    DuplicateData(String),
    #[error("A comment is required by the {0} workflow policy.")]
    CommentRequired(RequestType),
    #[error("Priority {0} is out of range: it must be between 0 (highest) and 255 (lowest).")]
    PriorityOutOfRange(i64),
    #[error("Profile {0} was not found.")]
    ProfileNotFound(ProfileId),
    #[error("Target user {0} was not found.")]
    TargetNotFound(UserId),
    /// The body names objects that do not go together.
    #[error("{0}")]
    Body(&'static str),
    /// A text longer than it may be, or with a NUL (`limits`).
    #[error("{0}.")]
    Text(#[from] crate::limits::TextError),
    #[error("A request carries at most {0} data collection items.")]
    TooManyItems(usize),
}

/// Whether `caller` may create a `request_type` request from `template`, as far as it can be
/// known without the target: the template is readable, the policy enabled, and a request for
/// someone else (`on_behalf`) needs the initiator role. Checked before the target is even looked
/// up, so a caller without the role learns nothing about which users exist. Returns the policy
/// and whether the caller holds the initiator role.
pub fn may_initiate<'t>(
    template: &'t ProfileTemplate,
    request_type: RequestType,
    caller: &Principal,
    on_behalf: bool,
) -> Result<(&'t WorkflowPolicy, bool), CreateError> {
    let caller_sids = caller.token_sids();
    if !template.grants(&caller_sids, rights::TEMPLATE_READ) {
        return Err(CreateError::TemplateNotFound(template.uuid));
    }
    let policy = template
        .policy(request_type)
        .filter(|p| p.enabled)
        .ok_or_else(|| CreateError::PolicyNotEnabled(template.name.clone(), request_type))?;
    let initiator = policy.is_initiator(&caller_sids);
    if on_behalf && !initiator {
        return Err(CreateError::NotAllowed(format!(
            "You may not create {request_type} requests for other users from profile template '{}': you do not hold its initiator role.",
            template.name
        )));
    }
    Ok((policy, initiator))
}

/// A request for a user who is disabled (offboarded, or disabled in the directory) that would
/// give them something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("User {user} is disabled: a {request_type} request can no longer give them anything; only taking their cards and certificates out of service (Revoke, Retire, Suspend) goes on.")]
pub struct TargetDisabled {
    pub user: UserId,
    pub request_type: RequestType,
}

/// Whether a request gives its target something — a certificate, a card, a secret, or service
/// back — which a disabled user may not have. Requests that only take their cards and
/// certificates out of service (Revoke, Retire, TemporaryCardDisable, TemporaryCardRetire, a
/// suspension) stay possible for a disabled user, and canceling always is. `reinstating`: a
/// SuspendOrReinstate on a suspended profile or card.
pub fn gives_to_target(t: RequestType, reinstating: bool) -> bool {
    match t {
        RequestType::Revoke
        | RequestType::Retire
        | RequestType::TemporaryCardDisable
        | RequestType::TemporaryCardRetire => false,
        RequestType::SuspendOrReinstate => reinstating,
        _ => true,
    }
}

/// A disabled target may have only what `gives_to_target` allows: checked at creation, approval,
/// every execution step and completion.
pub fn check_target(
    t: RequestType,
    reinstating: bool,
    target: UserId,
    target_enabled: bool,
) -> Result<(), TargetDisabled> {
    if target_enabled || !gives_to_target(t, reinstating) {
        return Ok(());
    }
    Err(TargetDisabled {
        user: target,
        request_type: t,
    })
}

pub fn create(input: CreateInput<'_>) -> Result<Request, CreateError> {
    let CreateInput {
        id,
        now,
        request_type,
        template,
        caller,
        target,
        data,
        comment,
        priority,
        on_profile,
        on_card,
        target_enabled,
    } = input;
    let on_behalf = caller.uuid != target.uuid;
    let (policy, initiator) = may_initiate(template, request_type, caller, on_behalf)?;
    if on_behalf && !policy.initiator_may_target(target) {
        return Err(CreateError::NotAllowed(format!(
            "You may create {request_type} requests from profile template '{}' only for users in the groups its policy names; '{}' is in none of them.",
            template.name, target.login
        )));
    }
    if !on_behalf && !initiator && !policy.self_service_enabled {
        return Err(CreateError::NotAllowed(format!(
            "Self-service {request_type} requests are not enabled for profile template '{}'.",
            template.name
        )));
    }
    if !access_check(
        &template.security_descriptor,
        &target.token_sids(),
        rights::TEMPLATE_ENROLL,
    )
    .is_granted()
    {
        let who = if on_behalf {
            format!("User '{}' is", target.login)
        } else {
            "You are".to_string()
        };
        return Err(CreateError::NotAllowed(format!(
            "{who} not allowed to enroll from profile template '{}'.",
            template.name
        )));
    }

    let (old_profile, new_profile) =
        match (on_profile, crate::profile::allowed_statuses(request_type)) {
            (None, None) => (None, None),
            (None, Some(_)) => return Err(CreateError::ProfileRequired(request_type)),
            (Some(_), None) => return Err(CreateError::ProfileNotAllowed(request_type)),
            (Some(p), _) => {
                crate::profile::on_execution(request_type, Some(&p))?;
                let uuid = p.uuid;
                // Renew, OnlineUpdate and Duplicate get their new profile when certificates are
                // issued; the others act on the profile in place (MIM shows it as both old and
                // new).
                let new = (!matches!(
                    request_type,
                    RequestType::Renew | RequestType::OnlineUpdate | RequestType::Duplicate
                ))
                .then_some(uuid);
                (Some(uuid), new)
            }
        };
    // A request on a card acts on it in place, except those that make a new card (bound later).
    let (old_smartcard, new_smartcard) = match on_card {
        None if crate::smartcard::needs_card(request_type) => {
            return Err(CreateError::SmartcardRequired(request_type))
        }
        None => (None, None),
        // An enrolment makes a card of its own; it is never made onto one that exists.
        Some(_) if request_type == RequestType::Enroll => {
            return Err(CreateError::SmartcardNotAllowed(request_type))
        }
        Some(c) => {
            crate::smartcard::check_card_kind(request_type, &c)?;
            // A Renew goes onto a new card when the template does not reuse cards.
            let reuses_cards = template
                .smartcard_config()
                .is_none_or(|c| c.allow_smartcard_reuse);
            let new = if matches!(
                request_type,
                RequestType::Duplicate | RequestType::TemporaryCards
            ) || (request_type == RequestType::Renew && !reuses_cards)
            {
                None
            } else {
                Some(c.uuid)
            };
            let makes = crate::smartcard::makes_card(request_type, Some(c.uuid), new);
            crate::smartcard::RequestCards {
                request_type,
                makes,
                own: (!makes).then_some(c),
                source: makes.then_some(c),
                set_during: None,
                pending: Vec::new(),
            }
            .check_execution()?;
            (Some(c.uuid), new)
        }
    };
    let reinstating = request_type == RequestType::SuspendOrReinstate
        && match (on_card, on_profile) {
            (Some(c), _) => c.status == crate::smartcard::SmartcardStatus::Suspended,
            (None, Some(p)) => p.status == crate::profile::ProfileStatus::Suspended,
            (None, None) => false,
        };
    check_target(request_type, reinstating, target.uuid, target_enabled)?;
    let (data_collection, data_collection_flags) = collect_data(policy, data)?;
    if policy.collect_comments && comment.trim().is_empty() {
        return Err(CreateError::CommentRequired(request_type));
    }
    let priority = match priority {
        Some(p) if !(0..=255).contains(&p) => return Err(CreateError::PriorityOutOfRange(p)),
        // Priority is only honoured where the policy collects it; otherwise the default applies.
        Some(p) if policy.collect_request_priority => p as u8,
        _ => policy.default_request_priority,
    };

    let mut flags = 0;
    if template.kind.is_smartcard() {
        flags |= RequestFlags::SMARTCARD;
    }
    if on_behalf {
        flags |= RequestFlags::ENROLLMENT_AGENT;
    }
    Ok(Request {
        uuid: id,
        request_type,
        status: if policy.approvals_needed == 0 {
            RequestStatus::Approved
        } else {
            RequestStatus::Pending
        },
        flags: RequestFlags(flags),
        data_collection,
        data_collection_flags,
        originator: caller.uuid,
        target: target.uuid,
        submitted: now,
        completed: None,
        new_profile,
        old_profile,
        new_smartcard,
        old_smartcard,
        priority,
        comment,
        profile_template: template.uuid,
        security_descriptor: Arc::new(request_descriptor(policy, caller, target)),
        version: 0,
        secret_required: policy.approvals_needed == 0
            && policy.secrets() != crate::policy::SecretDistribution::None,
    })
}

/// Validates the caller's items against the policy; the stored list holds every policy item in
/// policy order, with `null` for those not given.
fn collect_data(
    policy: &WorkflowPolicy,
    given: Vec<(String, Option<String>)>,
) -> Result<(Vec<DataValue>, i64), CreateError> {
    let mut values: Vec<Option<String>> = vec![None; policy.data_collection.len()];
    let mut seen = vec![false; policy.data_collection.len()];
    for (name, value) in given {
        let Some(i) = policy
            .data_collection
            .iter()
            .position(|d| d.name.eq_ignore_ascii_case(name.trim()))
        else {
            let expected: Vec<&str> = policy
                .data_collection
                .iter()
                .map(|d| d.name.as_str())
                .collect();
            let expected = if expected.is_empty() {
                "none".to_string()
            } else {
                expected.join(", ")
            };
            return Err(CreateError::UnknownData(name, expected));
        };
        if seen[i] {
            return Err(CreateError::DuplicateData(
                policy.data_collection[i].name.clone(),
            ));
        }
        seen[i] = true;
        values[i] = value;
    }
    for (item, value) in policy.data_collection.iter().zip(&values) {
        match value.as_deref().map(str::trim) {
            None | Some("") if item.required => {
                return Err(CreateError::MissingData(item.name.clone()))
            }
            Some(v)
                if !v.is_empty() && item.validation.as_ref().is_some_and(|re| !re.matches(v)) =>
            {
                return Err(CreateError::InvalidData(item.name.clone()));
            }
            _ => {}
        }
    }
    let list = policy
        .data_collection
        .iter()
        .zip(values)
        .map(|(item, value)| DataValue {
            name: item.name.clone(),
            value,
        })
        .collect();
    // Every required item is present at this point, so both parties' data is complete.
    Ok((list, data_collection_flags::BOTH))
}

/// The request's security descriptor, written once at creation (docs/API.md, "Rights"):
/// owner = originator; deny Approve to target and originator (no self-approval); Approve+Read to
/// each approver; Execute+Cancel+Write+Read to the executor (the enrollment agents when the policy
/// requires one, else the target); Cancel+Read to the originator; Read to the target; all to BA.
pub fn request_descriptor(
    policy: &WorkflowPolicy,
    originator: &Principal,
    target: &Principal,
) -> SecurityDescriptor {
    let mut aces = vec![Ace::deny(rights::APPROVE, target.sid.clone())];
    if originator.sid != target.sid {
        aces.push(Ace::deny(rights::APPROVE, originator.sid.clone()));
    }
    for sid in policy.authorized_approver.sids_allowed(rights::ROLE) {
        aces.push(Ace::allow(rights::APPROVE.union(rights::READ), sid));
    }
    let executors = if policy.enroll_agent_required {
        policy
            .authorized_enrollment_agent
            .sids_allowed(rights::ROLE)
    } else {
        vec![target.sid.clone()]
    };
    let exec = rights::EXECUTE
        .union(rights::CANCEL)
        .union(rights::WRITE)
        .union(rights::READ);
    for sid in executors {
        aces.push(Ace::allow(exec, sid));
    }
    aces.push(Ace::allow(
        rights::CANCEL.union(rights::READ),
        originator.sid.clone(),
    ));
    aces.push(Ace::allow(rights::READ, target.sid.clone()));
    aces.push(Ace::allow(AccessMask::GENERIC_ALL, Sid::administrators()));
    SecurityDescriptor {
        owner: Some(originator.sid.clone()),
        group: None,
        dacl: Some(Dacl {
            aces,
            ..Default::default()
        }),
    }
}

/// Why a caller may not act on a request. `NotFound` when they may not even read it (docs/API.md, "Rights":
/// objects a caller cannot read answer 404, not 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("Request {0} was not found.")]
    NotFound(RequestId),
    #[error("You do not have the {right} right on request {id}.", right = rights::name(*.0), id = .1)]
    Forbidden(AccessMask, RequestId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("You have already decided on request {0}; each approver decides once.")]
    AlreadyDecided(RequestId),
    #[error("Request {0} needs its one-time password before it is executed: POST it to /opencm/v1/requests/{0}/onetimepassword.")]
    SecretRequired(RequestId),
}

fn require(req: &Request, caller: &Principal, right: AccessMask) -> Result<(), ActionError> {
    if !req.allows(caller, rights::READ) {
        return Err(ActionError::NotFound(req.uuid));
    }
    if !req.allows(caller, right) {
        return Err(ActionError::Forbidden(right, req.uuid));
    }
    Ok(())
}

/// May the caller execute the request (whatever its status)?
pub fn may_execute(req: &Request, caller: &Principal) -> Result<(), ActionError> {
    require(req, caller, rights::EXECUTE)
}

/// May the caller see the request at all?
pub fn ensure_readable(req: &Request, caller: &Principal) -> Result<(), ActionError> {
    require(req, caller, rights::READ)
}

/// The result of a decision: the request as it must be stored, or "already so" for idempotent repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    To(Box<Request>),
    AlreadyDone,
}

/// `PUT /requests/{id}` with `{"status": outcome}`.
pub fn finish(
    req: &Request,
    caller: &Principal,
    outcome: Outcome,
    now: Timestamp,
) -> Result<Change, ActionError> {
    let right = match outcome {
        Outcome::Canceled => rights::CANCEL,
        Outcome::Completed | Outcome::Abandoned => rights::EXECUTE,
    };
    require(req, caller, right)?;
    if req.status == outcome.final_status() {
        return Ok(Change::AlreadyDone);
    }
    // Completing is executing (a workflow-only request completes straight from Approved): not
    // before the one-time password. Canceling and abandoning need none.
    if outcome == Outcome::Completed && req.secret_required {
        return Err(ActionError::SecretRequired(req.uuid));
    }
    let status = req.status.next(outcome.event())?;
    Ok(Change::To(Box::new(Request {
        status,
        completed: Some(now),
        ..req.clone()
    })))
}

/// An execution step (card bind, certificate data) begins: Approved → Executing.
pub fn begin_execution(req: &Request, caller: &Principal) -> Result<Request, ActionError> {
    require(req, caller, rights::EXECUTE)?;
    if req.secret_required {
        return Err(ActionError::SecretRequired(req.uuid));
    }
    let status = req.status.next(Event::BeginExecution)?;
    Ok(Request {
        status,
        ..req.clone()
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn parse(s: &str) -> Option<Decision> {
        match s.to_ascii_lowercase().as_str() {
            "approve" | "approved" => Some(Decision::Approve),
            "deny" | "denied" => Some(Decision::Deny),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Decision::Approve => "Approve",
            Decision::Deny => "Deny",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub request: RequestId,
    pub approver: UserId,
    pub decision: Decision,
    pub comment: String,
    pub at: Timestamp,
}

/// An approver approves or denies. `prior` are the decisions already recorded on the request.
pub fn decide(
    req: &Request,
    approvals_needed: u32,
    approver: &Principal,
    prior: &[Approval],
    decision: Decision,
    comment: String,
    now: Timestamp,
) -> Result<(Request, Approval), ActionError> {
    require(req, approver, rights::APPROVE)?;
    if prior.iter().any(|a| a.approver == approver.uuid) {
        return Err(ActionError::AlreadyDecided(req.uuid));
    }
    let event = match decision {
        Decision::Deny => Event::Deny,
        Decision::Approve => {
            let approvals = prior
                .iter()
                .filter(|a| a.decision == Decision::Approve)
                .count() as u32
                + 1;
            Event::Approve {
                last: approvals >= approvals_needed,
            }
        }
    };
    let status = req.status.next(event)?;
    let completed = if status.is_final() {
        Some(now)
    } else {
        req.completed
    };
    let approval = Approval {
        request: req.uuid,
        approver: approver.uuid,
        decision,
        comment,
        at: now,
    };
    Ok((
        Request {
            status,
            completed,
            ..req.clone()
        },
        approval,
    ))
}

/// One row of a request's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub request: RequestId,
    pub at: Timestamp,
    pub actor: UserId,
    pub action: String,
    pub from: RequestStatus,
    pub to: RequestStatus,
    pub detail: String,
}

pub mod approving;
pub mod binding;
pub mod creating;
pub mod executing;
pub mod finishing;
pub mod issuing;
pub mod secrets;

#[cfg(test)]
mod decision_tests;
#[cfg(test)]
mod tests;
