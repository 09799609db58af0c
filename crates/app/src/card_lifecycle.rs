//! The card lifecycle in the use cases: which card a request acts on, the guard that rechecks it
//! when the request executes, what its completion, cancelation or abandonment does to it (in the
//! same transaction as the request's change), `PUT /requests/{reqid}/smartcards/{scid}`, and what a
//! caller may see of a card (its operations and certificates).

use crate::error::{AppError, ErrorCode};
use crate::ports::{CertificateRecord, Effect, ProfileRecord, SmartcardRecord};
use crate::requests::Decided;
use crate::App;
use opencm_domain::policy::ProfileTemplate;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::{self, rights, Request};
use opencm_domain::smartcard::{self, SmartcardChange, SmartcardEvent, SmartcardStatus};
use opencm_domain::{Guid, Outcome, Principal, RequestType, Sid, Timestamp};

/// The audit action of a card status set during execution; completion looks for it.
const SET_CARD_STATUS: &str = "SetSmartcardStatus";

fn card_not_found(id: Guid) -> AppError {
    AppError::not_found(
        ErrorCode::SmartcardNotFound,
        format!("Smart card {id} was not found."),
    )
}

fn is_admin(caller: &Principal) -> bool {
    caller.token_sids().contains(&Sid::administrators())
}

/// The enabled policies of the card's template whose initiator role the caller holds (a
/// helpdesk acting on others' cards).
fn initiator_policies<'t>(
    template: Option<&'t ProfileTemplate>,
    caller: &Principal,
) -> Vec<&'t opencm_domain::policy::WorkflowPolicy> {
    let sids = caller.token_sids();
    template
        .map(|t| {
            t.policies
                .values()
                .filter(|p| {
                    p.enabled
                        && opencm_domain::sddl::access_check(
                            &p.authorized_initiator,
                            &sids,
                            rights::ROLE,
                        )
                        .is_granted()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The event that takes a card to `to` from where it is, if one does.
fn event_to(from: SmartcardStatus, to: SmartcardStatus) -> Option<SmartcardEvent> {
    use SmartcardEvent as E;
    use SmartcardStatus as S;
    let e = match (from, to) {
        (S::Suspended, S::Active) => E::Reinstate,
        (_, S::Active) => E::Activate,
        (_, S::Assigned) => E::Assign,
        (_, S::Suspended) => E::Suspend,
        (_, S::Disabled) => E::Disable,
        (_, S::Retired) => E::Retire,
        (_, S::New) => return None,
    };
    from.next(e).ok().map(|_| e)
}

impl App {
    /// Whether the caller may start requests on the card for its user (a helpdesk): it holds an
    /// initiator role of the card's template whose scope, if the policy names target groups,
    /// takes in the card's user.
    pub(crate) async fn initiates_on(
        &self,
        caller: &Principal,
        card: &SmartcardRecord,
    ) -> Result<bool, AppError> {
        let template = self.templates.get(card.template).await?;
        let policies = initiator_policies(template.as_deref(), caller);
        if policies
            .iter()
            .any(|p| p.initiator_target_groups.is_empty())
        {
            return Ok(true);
        }
        if policies.is_empty() {
            return Ok(false);
        }
        Ok(
            match self.directory.user_by_uuid(card.assigned_user).await? {
                Some(owner) => policies.iter().any(|p| p.initiator_may_target(&owner)),
                None => false,
            },
        )
    }

    /// The card a new request names, visible to the caller, and the profile in service on it.
    pub(crate) async fn card_on_request(
        &self,
        caller: &Principal,
        id: Guid,
        profile: Option<Guid>,
    ) -> Result<(SmartcardRecord, Guid), AppError> {
        let card = self
            .smartcards
            .smartcard(id)
            .await?
            .ok_or_else(|| card_not_found(id))?;
        if card.assigned_user != caller.uuid
            && !is_admin(caller)
            && !self.initiates_on(caller, &card).await?
        {
            return Err(card_not_found(id));
        }
        let live = self
            .smartcards
            .profiles_of_smartcard(card.uuid)
            .await?
            .into_iter()
            .rev()
            .find(|p| !matches!(p.status, ProfileStatus::New | ProfileStatus::Retired));
        let Some(live) = live else {
            return Err(AppError::conflict(
                ErrorCode::smartcard_state(card.status),
                format!(
                    "Smart card {} is {} and holds no profile in service.",
                    card.uuid, card.status
                ),
            ));
        };
        if profile.is_some_and(|p| p != live.uuid) {
            return Err(AppError::invalid(
                ErrorCode::InvalidBody,
                "'profile' is not the profile on that card; give only 'smartcard'.",
            ));
        }
        Ok((card, live.uuid))
    }

    /// The card a request acts on as it is now: the card bound to it, or the card it names.
    pub(crate) async fn touched_card(
        &self,
        r: &Request,
    ) -> Result<Option<SmartcardRecord>, AppError> {
        let id = if r.new_smartcard.is_nil() {
            r.old_smartcard
        } else {
            r.new_smartcard
        };
        if id.is_nil() {
            return Ok(None);
        }
        Ok(self.smartcards.smartcard(id).await?)
    }

    /// The card a Renew onto a new card replaces, once the new card is bound.
    async fn replaced_card(&self, r: &Request) -> Result<Option<SmartcardRecord>, AppError> {
        if r.request_type != RequestType::Renew
            || r.old_smartcard.is_nil()
            || r.new_smartcard.is_nil()
            || r.old_smartcard == r.new_smartcard
        {
            return Ok(None);
        }
        Ok(self.smartcards.smartcard(r.old_smartcard).await?)
    }

    /// At execution: the card must still be in a status the request type acts on (and the card a
    /// renewal replaces still in service); the write carries their versions.
    pub(crate) async fn card_guard(&self, r: &Request) -> Result<Vec<Effect>, AppError> {
        let mut effects = Vec::new();
        if let Some(old) = self.replaced_card(r).await? {
            smartcard::on_execution(r.request_type, old.status)?;
            effects.push(Effect::Smartcard(SmartcardChange::guard(&old.state())));
        }
        let Some(card) = self.touched_card(r).await? else {
            return Ok(effects);
        };
        if !self.card_set_during(r).await? {
            smartcard::on_execution(r.request_type, card.status)?;
        }
        effects.push(Effect::Smartcard(SmartcardChange::guard(&card.state())));
        Ok(effects)
    }

    async fn card_set_during(&self, r: &Request) -> Result<bool, AppError> {
        Ok(self
            .audit
            .history(r.uuid)
            .await?
            .iter()
            .any(|e| e.action == SET_CARD_STATUS))
    }

    /// What completing, canceling or abandoning does to the request's card (SPEC §5), decided by
    /// the domain from the card's current state. Completing a request that makes a new card needs
    /// one bound.
    pub(crate) async fn card_outcome_effects(
        &self,
        next: &Request,
        outcome: Outcome,
        smartcard_template: bool,
    ) -> Result<Vec<Effect>, AppError> {
        let card = self.touched_card(next).await?;
        let makes_card = matches!(
            next.request_type,
            RequestType::Enroll | RequestType::Duplicate | RequestType::TemporaryCards
        );
        if outcome == Outcome::Completed && smartcard_template && makes_card && card.is_none() {
            return Err(AppError::conflict(
                ErrorCode::SmartcardNotBound,
                format!(
                    "Request {} has no card: bind one (POST /smartcards) and issue onto it before completing.",
                    next.uuid
                ),
            ));
        }
        let Some(card) = card else {
            return Ok(Vec::new());
        };
        let mut effects = Vec::new();
        if let Some(old) = self.replaced_card(next).await? {
            let event = smartcard::on_replaced(outcome, old.status)?;
            effects.push(Effect::Smartcard(SmartcardChange::apply(
                &old.state(),
                event,
            )?));
        }
        let set_during = self.card_set_during(next).await?;
        let event = smartcard::on_outcome(next.request_type, outcome, card.status, set_during)?;
        effects.push(Effect::Smartcard(SmartcardChange::apply(
            &card.state(),
            event,
        )?));
        Ok(effects)
    }

    /// The card a smart card request issues onto (nil for software templates): bound, in a status
    /// the request acts on, with room for `n` more certificates (MaxNumberOfCertificates, 0 =
    /// unlimited; the certificates of the profile a Renew replaces do not count). With it, when
    /// the card expires (a temporary card; `UNSET` otherwise): no certificate on it outlives it.
    pub(crate) async fn card_for_issuance(
        &self,
        r: &Request,
        template: &ProfileTemplate,
        n: usize,
    ) -> Result<(Guid, Timestamp), AppError> {
        let Some(config) = template.smartcard_config() else {
            return Ok((Guid::NIL, Timestamp::UNSET));
        };
        if r.new_smartcard.is_nil() {
            return Err(AppError::conflict(
                ErrorCode::SmartcardNotBound,
                format!(
                    "Request {} has no card yet: bind one first (POST /smartcards).",
                    r.uuid
                ),
            ));
        }
        let card = self
            .smartcards
            .smartcard(r.new_smartcard)
            .await?
            .ok_or_else(|| {
                AppError::internal(format!("bound card {} is missing", r.new_smartcard))
            })?;
        smartcard::on_execution(r.request_type, card.status)?;
        let max = config.max_number_of_certificates as usize;
        if max > 0 {
            let mut held = 0;
            for p in self.smartcards.profiles_of_smartcard(card.uuid).await? {
                if p.uuid == r.old_profile || p.status == ProfileStatus::Retired {
                    continue;
                }
                held += self
                    .certificates
                    .certificates_of_profile(p.uuid)
                    .await?
                    .len();
            }
            if held + n > max {
                return Err(AppError::conflict(
                    ErrorCode::SmartcardFull,
                    format!(
                        "Smart card {} holds {held} certificate(s); template '{}' allows {max}, and this request issues {n}.",
                        card.uuid, template.name
                    ),
                ));
            }
        }
        Ok((card.uuid, card.expires))
    }

    /// `PUT /requests/{reqid}/smartcards/{scid}` `{"status": ...}`: the executor sets the card's
    /// status during execution, within what the request type allows (a Retire sets Retired).
    pub async fn set_card_status(
        &self,
        caller: &Principal,
        request_id: Guid,
        card_id: Guid,
        to: SmartcardStatus,
    ) -> Result<SmartcardRecord, AppError> {
        self.change(caller, request_id, |current, _| async move {
            let executing = request::begin_execution(&current, caller)?;
            if card_id != current.new_smartcard && card_id != current.old_smartcard {
                return Err(match self.smartcards.smartcard(card_id).await? {
                    None => card_not_found(card_id),
                    Some(_) => AppError::conflict(
                        ErrorCode::SmartcardMismatch,
                        format!(
                            "Smart card {card_id} is not the card request {} executes on.",
                            current.uuid
                        ),
                    ),
                });
            }
            let card = self
                .smartcards
                .smartcard(card_id)
                .await?
                .ok_or_else(|| card_not_found(card_id))?;
            let allowed = smartcard::settable_during(current.request_type);
            if !allowed.contains(&to) {
                let names: Vec<&str> = allowed.iter().map(|s| s.name()).collect();
                return Err(AppError::conflict(
                    ErrorCode::SmartcardStatusNotAllowed,
                    format!(
                        "A {} request may not set its card {to}{}.",
                        current.request_type,
                        if names.is_empty() {
                            String::new()
                        } else {
                            format!(" (it may set: {})", names.join(", "))
                        }
                    ),
                ));
            }
            if card.status == to {
                return Ok(None);
            }
            let event = event_to(card.status, to).ok_or_else(|| {
                AppError::conflict(
                    ErrorCode::smartcard_state(card.status),
                    format!(
                        "Smart card {card_id} is {}; it cannot become {to}.",
                        card.status
                    ),
                )
            })?;
            let mut effects = self.execution_guard(&current).await?;
            effects.retain(|e| !matches!(e, Effect::Smartcard(c) if c.card == card_id));
            effects.push(Effect::Smartcard(SmartcardChange::apply(
                &card.state(),
                Some(event),
            )?));
            Ok(Some(Decided {
                next: executing,
                approval: None,
                action: SET_CARD_STATUS,
                detail: format!("card {card_id}: {} → {to}", card.status),
                effects,
            }))
        })
        .await?;
        self.smartcards
            .smartcard(card_id)
            .await?
            .ok_or_else(|| card_not_found(card_id))
    }

    /// The operations (lowercase MIM names) the caller may start now on a card: those of the
    /// profile in service on it that the card's status allows, plus unblocking.
    pub async fn card_operations(
        &self,
        caller: &Principal,
        id: Guid,
    ) -> Result<Vec<&'static str>, AppError> {
        let card = self.smartcard(caller, id).await?;
        let Some(template) = self.templates.get(card.template).await? else {
            return Ok(Vec::new());
        };
        let Some(live) = self.live_profile(&card).await? else {
            return Ok(Vec::new());
        };
        let own = card.assigned_user == caller.uuid;
        Ok(
            smartcard::operations(&template, live.status, card.status, caller, own)
                .into_iter()
                .collect(),
        )
    }

    async fn live_profile(
        &self,
        card: &SmartcardRecord,
    ) -> Result<Option<ProfileRecord>, AppError> {
        Ok(self
            .smartcards
            .profiles_of_smartcard(card.uuid)
            .await?
            .into_iter()
            .rev()
            .find(|p| !matches!(p.status, ProfileStatus::New | ProfileStatus::Retired)))
    }

    /// Every certificate issued onto the card, oldest profile first.
    pub async fn card_certificates(
        &self,
        caller: &Principal,
        id: Guid,
    ) -> Result<Vec<CertificateRecord>, AppError> {
        let card = self.smartcard(caller, id).await?;
        let mut out = Vec::new();
        for p in self.smartcards.profiles_of_smartcard(card.uuid).await? {
            out.extend(self.certificates.certificates_of_profile(p.uuid).await?);
        }
        Ok(out)
    }
}
