//! The decisions of certificate issuance (`certificatedata`) and of a Recover's delivery, over
//! what they load. Issuance claims before the CA signs: the request moves to Executing with a new
//! profile reserved (so of two racing calls exactly one claims), the certificates are recorded
//! on the claimed profile afterwards (revoked at once if the request was canceled meanwhile),
//! and a signing that failed gives the claim back.

use super::executing::Execution;
use super::{begin_execution, Request};
use crate::decided::{AuditAction, Decided, Effect, RuleError};
use crate::enums::profile_flags;
use crate::issued::{status_at_issue, CertificateRecord};
use crate::profile::{ProfileChange, ProfileEvent, ProfileRecord, ProfileState, ProfileStatus};
use crate::template::ProfileTemplate;
use crate::{Principal, ProfileId, RequestStatus, RequestType, SmartcardId, Timestamp, UserId};

/// A request has had its certificates issued once it points at a new profile of its own.
pub fn already_issued(r: &Request) -> bool {
    r.new_profile.is_some() && r.new_profile != r.old_profile
}

/// The profile issuance reserves: its id (made by the caller), its user and the card it lives on
/// (none for a software template).
#[derive(Clone, Debug)]
pub struct Claim<'a> {
    pub profile: ProfileId,
    pub template: &'a ProfileTemplate,
    pub user: UserId,
    /// The card it lives on; `None` for a software template.
    pub card: Option<SmartcardId>,
    pub comment: &'a str,
}

/// (1) Claim: Approved → Executing with the new profile reserved (New), and the execution guard.
pub fn claim(
    r: &Request,
    x: &Execution,
    caller: &Principal,
    c: &Claim<'_>,
    now: Timestamp,
) -> Result<Decided, RuleError> {
    if already_issued(r) {
        return Err(RuleError::AlreadyIssued(r.uuid));
    }
    let executing = begin_execution(r, caller)?;
    // A duplicate names the profile it copies as its primary; a renewal (or online update) the
    // profile it replaces as its parent.
    let (flags, parent, primary) = match r.request_type {
        RequestType::Duplicate => (profile_flags::DUPLICATE, None, r.old_profile),
        RequestType::TemporaryCards => (profile_flags::TEMPORARY, None, None),
        _ => (profile_flags::PRIMARY, r.old_profile, None),
    };
    let mut effects = vec![Effect::InsertProfile(ProfileRecord {
        uuid: c.profile,
        status: ProfileStatus::New,
        flags,
        parent,
        primary,
        assigned_user: c.user,
        template: c.template.uuid,
        template_version: c.template.version,
        comment: c.comment.to_owned(),
        request: r.uuid,
        created: now,
        version: 0,
        smartcard: c.card,
    })];
    effects.extend(x.guard(r)?);
    let next = Request {
        new_profile: Some(c.profile),
        ..executing
    };
    Ok(Decided::new(
        next,
        AuditAction::Execute,
        format!("profile {} reserved for issuance", c.profile),
    )
    .with_effects(effects))
}

/// (3) Record what the CA signed on the claimed profile: valid while the request still
/// executes, revoked at once when it was canceled or abandoned meanwhile.
pub fn record(
    r: &Request,
    claimed: ProfileId,
    certificates: &[CertificateRecord],
    now: Timestamp,
) -> Result<Decided, RuleError> {
    if r.new_profile != Some(claimed) {
        return Err(RuleError::ClaimLost(r.uuid));
    }
    let (status, reason) = status_at_issue(r.status);
    let effects = certificates
        .iter()
        .map(|c| {
            Effect::InsertCertificate(Box::new(CertificateRecord {
                status,
                revocation_reason: reason,
                revoked_at: reason.map(|_| now),
                ..c.clone()
            }))
        })
        .collect();
    Ok(Decided::new(
        r.clone(),
        AuditAction::Issue,
        format!("{} certificate(s) issued", certificates.len()),
    )
    .with_effects(effects))
}

/// A signing that failed gives its claim back: the reserved, empty profile is disabled and the
/// request, still Executing, points at no new profile, so `certificatedata` may run again.
/// `None` when the claim is no longer this one.
pub fn release_claim(
    r: &Request,
    claimed: ProfileId,
    reserved: Option<&ProfileState>,
) -> Result<Option<Decided>, RuleError> {
    if r.new_profile != Some(claimed) {
        return Ok(None);
    }
    let effects = match reserved {
        Some(p) => {
            let to = p
                .status
                .next(ProfileEvent::Disable)
                .map_err(|_| RuleError::ClaimLost(r.uuid))?;
            vec![Effect::Profile(ProfileChange {
                profile: p.uuid,
                version: p.version,
                from: p.status,
                to,
                superseded: false,
                certificates: None,
            })]
        }
        None => Vec::new(),
    };
    let next = Request {
        new_profile: None,
        ..r.clone()
    };
    Ok(Some(
        Decided::new(
            next,
            AuditAction::Release,
            format!("issuance failed; profile {claimed} released"),
        )
        .with_effects(effects),
    ))
}

/// A Recover delivers its archived keys once: the move to Executing is the record that they
/// left, with the execution guard.
pub fn recover(
    r: &Request,
    x: &Execution,
    caller: &Principal,
    delivered: usize,
) -> Result<Decided, RuleError> {
    if r.status == RequestStatus::Executing {
        return Err(RuleError::AlreadyDelivered(r.uuid));
    }
    let next = begin_execution(r, caller)?;
    Ok(Decided::new(
        next,
        AuditAction::Recover,
        format!("{delivered} archived key(s) delivered"),
    )
    .with_effects(x.guard(r)?))
}
