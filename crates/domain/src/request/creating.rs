//! `POST /requests` decided over what it loads: the request a caller asked for, checked against
//! the card, the profile and the template it names and the user it is for, then made by
//! `request::create`. The load (app) finds those objects; everything said about them is said here.

use super::{create, may_initiate, AuditEvent, CreateError, CreateInput, Request};
use crate::decided::AuditAction;
use crate::profile::{self, ProfileRecord};
use crate::smartcard::{SmartcardRecord, SmartcardState};
use crate::template::ProfileTemplate;
use crate::{
    Principal, ProfileId, RequestId, RequestStatus, RequestType, SmartcardId, TemplateId,
    Timestamp, UserId,
};
use std::sync::Arc;

/// `POST /requests`, parsed from the wire.
#[derive(Clone, Debug)]
pub struct NewRequest {
    /// The template; `None` when the request names an existing profile (its template is used).
    pub template: Option<TemplateId>,
    pub profile: Option<ProfileId>,
    /// The existing card the request acts on (its profile is the one in service on it).
    pub smartcard: Option<SmartcardId>,
    pub request_type: RequestType,
    pub target: Option<UserId>,
    pub data: Vec<(String, Option<String>)>,
    pub comment: String,
    pub priority: Option<i64>,
}

/// Checked before anything is loaded: an enrolment makes its own card, so naming one is a
/// mistake in the body, said first.
pub fn precheck(n: &NewRequest) -> Result<(), CreateError> {
    use crate::limits::{check, COMMENT_MAX, DATA_ITEMS_MAX, DATA_NAME_MAX, DATA_VALUE_MAX};
    // Every front end stores the same texts: as long as they may be, without NUL.
    if n.data.len() > DATA_ITEMS_MAX {
        return Err(CreateError::TooManyItems(DATA_ITEMS_MAX));
    }
    for (name, value) in &n.data {
        check("a data collection item's name", name, DATA_NAME_MAX)?;
        if let Some(v) = value {
            check(
                &format!("data collection item '{}'", crate::limits::excerpt(name)),
                v,
                DATA_VALUE_MAX,
            )?;
        }
    }
    check("'comment'", &n.comment, COMMENT_MAX)?;
    if n.smartcard.is_some() && n.request_type == RequestType::Enroll {
        return Err(CreateError::SmartcardNotAllowed(n.request_type));
    }
    Ok(())
}

/// The profile a request acts on, given the profile in service on the card it names (if any):
/// the card's, or the one it names. TemporaryCards makes a new profile on a new card for the user
/// of the card it names: that card gives the template and the user, not its profile.
pub fn profile_to_load(n: &NewRequest, card_profile: Option<ProfileId>) -> Option<ProfileId> {
    let makes_profile = profile::allowed_statuses(n.request_type).is_none();
    match card_profile {
        Some(_) if makes_profile => None,
        Some(p) => Some(p),
        None => n.profile,
    }
}

/// What creating reads, found by the load.
#[derive(Clone, Debug)]
pub struct CreateSnapshot {
    /// The card the request names (visible to the caller) and the profile in service on it.
    pub card: Option<(SmartcardRecord, ProfileId)>,
    /// The profile `profile_to_load` named, and whether it was found.
    pub profile: Option<(ProfileId, Option<ProfileRecord>)>,
    /// The template of the profile, the card or the body (`template_to_load`), if it exists.
    pub template: Option<Arc<ProfileTemplate>>,
    /// The target when it is someone else: `None` when not found.
    pub target: Option<Principal>,
    /// Whether the target may still be given anything.
    pub target_enabled: bool,
    /// The card the acted-on profile lives on, as a decision reads it.
    pub on_card: Option<SmartcardState>,
}

impl CreateSnapshot {
    fn profile(&self) -> Option<&ProfileRecord> {
        self.profile.as_ref().and_then(|(_, p)| p.as_ref())
    }
}

/// The template to load: the profile's, the card's, or the one the body names.
pub fn template_to_load(
    n: &NewRequest,
    card: Option<&SmartcardRecord>,
    profile: Option<&ProfileRecord>,
) -> Option<TemplateId> {
    profile
        .map(|p| p.template)
        .or(card.map(|c| c.template))
        .or(n.template)
}

/// Everything said before the target is known: the objects the body names go together, the
/// template exists, and the caller may act for someone else (the same 403 whether that user
/// exists or not). Answers the target to look up when it is someone else than the caller; the
/// load reads nothing about a target before this passes.
pub fn check_before_target(
    s: &CreateSnapshot,
    caller: &Principal,
    n: &NewRequest,
) -> Result<Option<UserId>, CreateError> {
    checked(s, caller, n).map(|(_, target)| target.filter(|t| *t != caller.uuid))
}

/// The template and the target id, once everything before the target has been said.
fn checked<'s>(
    s: &'s CreateSnapshot,
    caller: &Principal,
    n: &NewRequest,
) -> Result<(&'s ProfileTemplate, Option<UserId>), CreateError> {
    let card = s.card.as_ref().map(|(c, _)| c);
    // A request on an existing profile takes the profile's template and user.
    if let Some((pid, found)) = &s.profile {
        let p = found.as_ref().ok_or(CreateError::ProfileNotFound(*pid))?;
        if n.template.is_some_and(|t| t != p.template) {
            return Err(CreateError::Body(
                "'profiletemplateuuid' is not the profile's template; omit it.",
            ));
        }
        if n.target.is_some_and(|t| t != p.assigned_user) {
            return Err(CreateError::Body(
                "'target' is not the profile's user; omit it.",
            ));
        }
    }
    let profile = s.profile();
    if let (Some(c), Some(t)) = (card, n.template) {
        if t != c.template {
            return Err(CreateError::Body(
                "'profiletemplateuuid' is not the card's template; omit it.",
            ));
        }
    }
    let Some(template_id) = template_to_load(n, card, profile) else {
        return Err(CreateError::Body(
            "'profiletemplateuuid' (or 'profile') is required.",
        ));
    };
    let template = s
        .template
        .as_deref()
        .ok_or(CreateError::TemplateNotFound(template_id))?;
    let owner = profile
        .map(|p| p.assigned_user)
        .or(card.map(|c| c.assigned_user));
    if let (Some(o), Some(t)) = (owner, n.target) {
        if o != t {
            return Err(CreateError::Body(
                "'target' is not the card's user; omit it.",
            ));
        }
    }
    let target_id = owner.or(n.target);
    // Whether the caller may act for someone else is decided before the target is known: the
    // same 403 whether that user exists or not.
    if profile.is_none() {
        may_initiate(
            template,
            n.request_type,
            caller,
            target_id.is_some_and(|t| t != caller.uuid),
        )?;
    }
    // Someone else's profile is invisible unless the caller may initiate for others (or
    // administers): said before its user is looked up.
    if let Some(p) = profile {
        let sids = caller.token_sids();
        let initiator = template
            .policy(n.request_type)
            .is_some_and(|pol| pol.is_initiator(&sids));
        let admin = caller.is_administrator();
        if p.assigned_user != caller.uuid && !initiator && !admin {
            return Err(CreateError::ProfileNotFound(p.uuid));
        }
    }
    Ok((template, target_id))
}

/// The request made, and its history's first event. `s.target` is the user
/// `check_before_target` named, as the load found them.
pub fn decide(
    s: &CreateSnapshot,
    caller: &Principal,
    n: NewRequest,
    id: RequestId,
    now: Timestamp,
) -> Result<(Request, AuditEvent), CreateError> {
    let (template, target_id) = checked(s, caller, &n)?;
    let profile = s.profile();
    let target = match target_id {
        Some(t) if t != caller.uuid => s
            .target
            .as_ref()
            .filter(|u| u.uuid == t)
            .ok_or(CreateError::TargetNotFound(t))?,
        _ => caller,
    };
    // Someone else may be disabled (offboarded); the caller signed in, so is not.
    let target_enabled = target.uuid == caller.uuid || s.target_enabled;
    let request_type = n.request_type;
    let r = create(CreateInput {
        id,
        now,
        request_type,
        template,
        caller,
        target,
        data: n.data,
        comment: n.comment,
        priority: n.priority,
        on_profile: profile.map(ProfileRecord::state),
        on_card: s.on_card,
        target_enabled,
    })?;
    let event = AuditEvent {
        request: r.uuid,
        at: now,
        actor: caller.uuid,
        action: AuditAction::Create.name().into(),
        from: RequestStatus::None,
        to: r.status,
        detail: format!("{request_type} request from template '{}'", template.name),
    };
    Ok((r, event))
}
