//! `POST /smartcards` decided over what it loads: a card is bound to an approved smart card
//! request. The card is created Assigned and the request moves to Executing with its new card,
//! in one write; a card id live on another card is refused (the store's unique index refuses it
//! too, so two concurrent binds of one card cannot both win).

use super::executing::Execution;
use super::{begin_execution, Request};
use crate::decided::{AuditAction, Decided, Effect, RuleError};
use crate::enums::profile_flags;
use crate::smartcard::{SmartcardEvent, SmartcardRecord, SmartcardStatus};
use crate::template::ProfileTemplate;
use crate::{Guid, Principal, RequestType, SmartcardId, Timestamp};
use std::sync::Arc;

/// What binding reads besides the request.
#[derive(Clone, Debug)]
pub struct BindSnapshot {
    /// The request's template; `None` once deleted.
    pub template: Option<Arc<ProfileTemplate>>,
    pub execution: Execution,
    /// Whether a live card holds the card id now.
    pub card_id_live: bool,
    /// Whether an earlier binding of the card id went into service (its request completed).
    pub card_id_served: bool,
}

/// The card as presented, with the ids the binding gives it.
#[derive(Clone, Debug)]
pub struct Binding {
    pub uuid: SmartcardId,
    pub card_id: Guid,
    /// Upper-case hex.
    pub atr: String,
    /// The master admin-key version its admin key is diversified under.
    pub key_version: i64,
}

pub fn bind(
    r: &Request,
    s: &BindSnapshot,
    caller: &Principal,
    b: &Binding,
    now: Timestamp,
) -> Result<Decided, RuleError> {
    let template = s
        .template
        .as_deref()
        .ok_or(RuleError::TemplateGone(r.uuid))?;
    let Some(config) = template.smartcard_config() else {
        return Err(RuleError::NotASmartcardRequest {
            request: r.uuid,
            template: template.name.clone(),
        });
    };
    if let Some(card) = r.new_smartcard {
        return Err(RuleError::SmartcardAlreadyBound {
            request: r.uuid,
            card,
        });
    }
    let next = begin_execution(r, caller)?;
    // Which card holds the id, and whose, is not the binder's to learn.
    if s.card_id_live {
        return Err(RuleError::SmartcardInUse(b.card_id));
    }
    if !config.allow_smartcard_reuse && s.card_id_served {
        return Err(RuleError::SmartcardNotReusable {
            card_id: b.card_id,
            template: template.name.clone(),
        });
    }
    // A duplicate names the card it copies; a temporary card its user's permanent card, and it
    // expires; a renewal's new card the card it replaces.
    let (flags, parent, primary, permanent, expires) = match r.request_type {
        RequestType::Duplicate => (profile_flags::DUPLICATE, None, r.old_smartcard, None, None),
        RequestType::TemporaryCards => (
            profile_flags::TEMPORARY,
            None,
            None,
            r.old_smartcard,
            Some(Timestamp::from_micros(
                now.micros() + i64::from(config.temporary_card_days) * 86_400_000_000,
            )),
        ),
        _ => (profile_flags::PRIMARY, r.old_smartcard, None, None, None),
    };
    let record = SmartcardRecord {
        uuid: b.uuid,
        status: SmartcardStatus::New.next(SmartcardEvent::Assign)?,
        flags,
        parent,
        primary,
        permanent,
        expires,
        key_diversifier: b.uuid.guid(),
        card_id: b.card_id,
        atr: b.atr.clone(),
        middleware: config.provider_name.clone(),
        assigned_user: r.target,
        template: template.uuid,
        template_version: template.version,
        request: r.uuid,
        comment: String::new(),
        created: now,
        version: 0,
        key_version: b.key_version,
    };
    let mut effects = s.execution.guard(r)?;
    effects.push(Effect::InsertSmartcard(record));
    let next = Request {
        new_smartcard: Some(b.uuid),
        ..next
    };
    Ok(Decided::new(
        next,
        AuditAction::BindSmartcard,
        format!("card {} atr {}", b.card_id, b.atr),
    )
    .with_effects(effects))
}
