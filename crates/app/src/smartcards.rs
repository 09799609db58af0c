//! Smart cards: binding a card to an approved smart card request (`POST /smartcards`), and the
//! cards a caller may read. The card is written in the same transaction as the request's move to
//! Executing; a card id live on another card is refused by the database's unique index as well as
//! by the check here, so two concurrent binds of one card cannot both win.

use crate::error::{AppError, ErrorCode};
use crate::ports::{Effect, SmartcardRecord};
use crate::requests::Decided;
use crate::App;
use opencm_domain::enums::profile_flags;
use opencm_domain::request;
use opencm_domain::smartcard::SmartcardStatus;
use opencm_domain::{Guid, Principal, RequestType, Sid, Timestamp};

/// `POST /smartcards` `{requestid, cardid, atr}`.
pub struct BindCard {
    pub request: Guid,
    pub card_id: Guid,
    /// Hex, as the card answered its reset.
    pub atr: String,
}

/// An ATR is at most 33 bytes (ISO/IEC 7816-3).
const ATR_MAX_BYTES: usize = 33;

fn may_read(caller: &Principal, card: &SmartcardRecord) -> bool {
    card.assigned_user == caller.uuid || caller.token_sids().contains(&Sid::administrators())
}

impl App {
    /// Binds the card: it is created Assigned, and the request moves Approved → Executing with
    /// `NewSmartcardUuid` set, in one transaction.
    pub async fn bind_card(
        &self,
        caller: &Principal,
        b: &BindCard,
    ) -> Result<SmartcardRecord, AppError> {
        let atr = b.atr.trim();
        if atr.len() < 4
            || atr.len() > 2 * ATR_MAX_BYTES
            || !atr.len().is_multiple_of(2)
            || !atr.bytes().all(|c| c.is_ascii_hexdigit())
        {
            return Err(AppError::invalid(
                ErrorCode::InvalidBody,
                format!(
                    "'atr' must be the card's answer to reset in hexadecimal, 2 to {ATR_MAX_BYTES} bytes (got '{}').",
                    opencm_domain::limits::excerpt(&b.atr)
                ),
            ));
        }
        let atr = atr.to_ascii_lowercase();
        let uuid = Guid::new_time_ordered();
        // The card's admin key is diversified under the newest master secret, made on first use.
        let key_version = self.newest_card_master().await?;
        let result = self
            .change(caller, b.request, |current, now| {
                let atr = atr.clone();
                async move {
                    let template = self
                        .templates
                        .get(current.profile_template)
                        .await?
                        .ok_or_else(|| {
                            AppError::internal(format!(
                                "request {} names a missing template",
                                current.uuid
                            ))
                        })?;
                    let Some(config) = template.smartcard_config() else {
                        return Err(AppError::conflict(
                            ErrorCode::NotASmartcardRequest,
                            format!(
                                "Request {} is for the software template '{}': no card can be bound to it.",
                                current.uuid, template.name
                            ),
                        ));
                    };
                    if !current.new_smartcard.is_nil() {
                        return Err(AppError::conflict(
                            ErrorCode::SmartcardAlreadyBound,
                            format!(
                                "Request {} already has card {}.",
                                current.uuid, current.new_smartcard
                            ),
                        ));
                    }
                    let next = request::begin_execution(&current, caller)?;
                    let earlier = self.smartcards.smartcards_by_card_id(b.card_id).await?;
                    if let Some(live) = earlier.iter().find(|c| c.status.is_live()) {
                        return Err(AppError::conflict(
                            ErrorCode::SmartcardInUse,
                            format!(
                                "Card {} is already in use as smart card {} ({}).",
                                b.card_id, live.uuid, live.status
                            ),
                        ));
                    }
                    if !earlier.is_empty() && !config.allow_smartcard_reuse {
                        return Err(AppError::conflict(
                            ErrorCode::SmartcardNotReusable,
                            format!(
                                "Card {} was retired, and template '{}' does not allow reusing cards.",
                                b.card_id, template.name
                            ),
                        ));
                    }
                    // A duplicate names the card it copies; a temporary card its user's
                    // permanent card, and it expires; a renewal's new card the card it replaces.
                    let (flags, parent, primary, permanent, expires) = match current.request_type {
                        RequestType::Duplicate => (
                            profile_flags::DUPLICATE,
                            Guid::NIL,
                            current.old_smartcard,
                            Guid::NIL,
                            Timestamp::UNSET,
                        ),
                        RequestType::TemporaryCards => (
                            profile_flags::TEMPORARY,
                            Guid::NIL,
                            Guid::NIL,
                            current.old_smartcard,
                            Timestamp::from_micros(
                                now.micros()
                                    + i64::from(config.temporary_card_days) * 86_400_000_000,
                            ),
                        ),
                        _ => (
                            profile_flags::PRIMARY,
                            current.old_smartcard,
                            Guid::NIL,
                            Guid::NIL,
                            Timestamp::UNSET,
                        ),
                    };
                    let record = SmartcardRecord {
                        uuid,
                        status: SmartcardStatus::New
                            .next(opencm_domain::smartcard::SmartcardEvent::Assign)
                            .map_err(|e| AppError::internal(e.to_string()))?,
                        flags,
                        parent,
                        primary,
                        permanent,
                        expires,
                        card_id: b.card_id,
                        atr,
                        middleware: config.provider_name.clone(),
                        assigned_user: current.target,
                        template: template.uuid,
                        template_version: template.version,
                        request: current.uuid,
                        comment: String::new(),
                        created: now,
                        version: 0,
                        key_version,
                    };
                    let mut effects = self.execution_guard(&current).await?;
                    effects.push(Effect::InsertSmartcard(record));
                    Ok(Some(Decided {
                        next: opencm_domain::request::Request {
                            new_smartcard: uuid,
                            ..next
                        },
                        approval: None,
                        action: "BindSmartcard",
                        detail: format!("card {} atr {}", b.card_id, b.atr.trim()),
                        effects,
                    }))
                }
            })
            .await;
        match result {
            // The card as committed with the request (its binder need not be its user, so it is
            // read from the store, not through the caller's view).
            Ok(_) => self
                .smartcards
                .smartcard(uuid)
                .await?
                .ok_or_else(|| AppError::internal(format!("bound card {uuid} is missing"))),
            // The unique index on live card ids: another bind of this card won the race.
            Err(e) if e.code == ErrorCode::AlreadyExists => Err(AppError::conflict(
                ErrorCode::SmartcardInUse,
                format!("Card {} was bound to another request just now.", b.card_id),
            )),
            Err(e) => Err(e),
        }
    }

    /// One card, if the caller may read it (its user, administrators, and those who may start
    /// requests on it: the initiators of its template's policies); 404 alike otherwise.
    pub async fn smartcard(
        &self,
        caller: &Principal,
        id: Guid,
    ) -> Result<SmartcardRecord, AppError> {
        match self.smartcards.smartcard(id).await? {
            Some(c) if may_read(caller, &c) => Ok(c),
            Some(c) if self.initiates_on(caller, &c).await? => Ok(c),
            _ => Err(AppError::not_found(
                ErrorCode::SmartcardNotFound,
                format!("Smart card {id} was not found."),
            )),
        }
    }

    /// The card now bound with `card_id` (the live one, else the newest), as
    /// `GET /smartcards?cardid=` answers.
    pub async fn smartcard_by_card_id(
        &self,
        caller: &Principal,
        card_id: Guid,
    ) -> Result<SmartcardRecord, AppError> {
        let all = self.smartcards.smartcards_by_card_id(card_id).await?;
        let current = all
            .iter()
            .find(|c| c.status.is_live())
            .or_else(|| all.last())
            .filter(|c| may_read(caller, c))
            .cloned();
        current.ok_or_else(|| {
            AppError::not_found(
                ErrorCode::SmartcardNotFound,
                format!("No smart card with card id {card_id} was found."),
            )
        })
    }

    /// The cards the caller may read: their own; every card for administrators.
    pub async fn smartcards(&self, caller: &Principal) -> Result<Vec<SmartcardRecord>, AppError> {
        let admin = caller.token_sids().contains(&Sid::administrators());
        Ok(self
            .smartcards
            .smartcards_of((!admin).then_some(caller.uuid))
            .await?)
    }
}
