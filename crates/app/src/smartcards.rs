//! Smart cards: binding a card to an approved smart card request (`POST /smartcards`), and the
//! cards a caller may read. The card is written in the same transaction as the request's move to
//! Executing; a card id live on another card is refused by the database's unique index as well as
//! by the check here, so two concurrent binds of one card cannot both win.

use crate::error::{AppError, ErrorCode};
use crate::ports::SmartcardRecord;
use crate::App;
use opencm_domain::request::binding::{self, BindSnapshot};
use opencm_domain::request::Request;
use opencm_domain::smartcard::parse_atr;
use opencm_domain::{Guid, Principal, RequestId, RequestStatus, SmartcardId};

/// `POST /smartcards` `{requestid, cardid, atr}`.
pub struct BindCard {
    pub request: RequestId,
    pub card_id: Guid,
    /// Hex, as the card answered its reset.
    pub atr: String,
}

fn may_read(caller: &Principal, card: &SmartcardRecord) -> bool {
    card.assigned_user == caller.uuid || caller.is_administrator()
}

impl App {
    /// Binds the card: it is created Assigned, and the request moves Approved → Executing with
    /// `NewSmartcardUuid` set, in one transaction.
    pub async fn bind_card(
        &self,
        caller: &Principal,
        b: &BindCard,
    ) -> Result<SmartcardRecord, AppError> {
        let atr =
            parse_atr(&b.atr).map_err(|e| AppError::new(ErrorCode::InvalidBody, e.to_string()))?;
        if b.card_id.is_nil() {
            return Err(AppError::new(
                ErrorCode::InvalidBody,
                "'cardid' must be the card's own id; the all-zero GUID names no card.",
            ));
        }
        let uuid = SmartcardId::new_time_ordered();
        // The card's admin key is diversified under the newest master secret, made on first use.
        let key_version = self.newest_card_master().await?;
        let binding = binding::Binding {
            uuid,
            card_id: b.card_id,
            atr,
            key_version,
        };
        let binding = &binding;
        let load = |current: Request| async move {
            let template = self.templates.get(current.profile_template).await?;
            let earlier = self.smartcards.smartcards_by_card_id(b.card_id).await?;
            let card_id_live = earlier.iter().any(|c| c.status.is_live());
            // Whether the card served before matters only where cards are not reused.
            let no_reuse = template
                .as_deref()
                .and_then(|t| t.smartcard_config())
                .is_some_and(|c| !c.allow_smartcard_reuse);
            let card_id_served =
                no_reuse && !card_id_live && self.ever_in_service(&earlier).await?;
            let mut seen = BindSnapshot {
                template,
                execution: self.load_execution(&current).await?,
                card_id_live,
                card_id_served,
            };
            let now = self.clock.now();
            seen.execution = self
                .with_target(&current, seen.execution.clone(), |x| {
                    let dry = BindSnapshot {
                        execution: x.clone(),
                        ..seen.clone()
                    };
                    binding::bind(&current, &dry, caller, binding, now)?;
                    Ok(true)
                })
                .await?;
            Ok(seen)
        };
        let result = self
            .change(caller, b.request, load, |current, seen, now| {
                Ok(Some(binding::bind(current, seen, caller, binding, now)?))
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
            Err(e) if e.code == ErrorCode::AlreadyExists => Err(AppError::new(
                ErrorCode::SmartcardInUse,
                format!("Card {} was bound to another request just now.", b.card_id),
            )),
            Err(e) => Err(e),
        }
    }

    /// Whether any of these earlier bindings of a card id went into service: its binding request
    /// completed. A card whose enrolment was canceled or abandoned never did, so it may start
    /// afresh even where cards are not reused.
    async fn ever_in_service(&self, earlier: &[SmartcardRecord]) -> Result<bool, AppError> {
        for c in earlier {
            let bound_for = self.requests.request(c.request).await?;
            if bound_for.is_none_or(|r| r.status == RequestStatus::Completed) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// One card, if the caller may read it (its user, administrators, and those who may start
    /// requests on it: the initiators of its template's policies); 404 alike otherwise.
    pub async fn smartcard(
        &self,
        caller: &Principal,
        id: SmartcardId,
    ) -> Result<SmartcardRecord, AppError> {
        match self.smartcards.smartcard(id).await? {
            Some(c) if may_read(caller, &c) => Ok(c),
            Some(c) if self.initiates_on(caller, &c).await? => Ok(c),
            _ => Err(AppError::new(
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
            AppError::new(
                ErrorCode::SmartcardNotFound,
                format!("No smart card with card id {card_id} was found."),
            )
        })
    }

    /// The cards the caller may read: their own; every card for administrators.
    pub async fn smartcards(&self, caller: &Principal) -> Result<Vec<SmartcardRecord>, AppError> {
        let admin = caller.is_administrator();
        Ok(self
            .smartcards
            .smartcards_of((!admin).then_some(caller.uuid))
            .await?)
    }
}
