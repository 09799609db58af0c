//! The decisions of a request's execution steps over what they load: the guard every step
//! carries (the profile the request acts on still in a status its type allows, its cards still
//! in service for it, its target not disabled if it gives them anything), the move to
//! Executing, and the executor setting its own card's status.

use super::{begin_execution, check_target, gives_to_target, Request, TargetDisabled};
use crate::decided::{AuditAction, Decided, Effect, RuleError};
use crate::profile::{self, ProfileState, ProfileStatus};
use crate::smartcard::{CardEffects, CardSecret, CardWork, RequestCards, SmartcardStatus};
use crate::{Principal, SmartcardId};

/// What every execution step reads besides the request, as it is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    /// The profile the request acts on.
    pub old: Option<ProfileState>,
    /// The profile the request created (reserved for issuance), if another.
    pub new: Option<ProfileState>,
    pub cards: RequestCards,
    /// Whether the target may still be given anything (known, not disabled in opencm nor in the
    /// directory); `None` when not read because the request gives nothing (`needs_target`).
    pub target_enabled: Option<bool>,
}

/// Whether a SuspendOrReinstate reinstates: the card's work says so once it has a card, the
/// profile's status otherwise.
fn reinstating(r: &Request, cards: &RequestCards, old: Option<&ProfileState>) -> bool {
    r.request_type == crate::RequestType::SuspendOrReinstate
        && match cards.work() {
            Some(w) => w == CardWork::Reinstates,
            None => old.is_some_and(|p| p.status == ProfileStatus::Suspended),
        }
}

/// Whether deciding on `r` needs to know if its target is still enabled (it gives them
/// something): what the load reads.
pub fn needs_target(r: &Request, cards: &RequestCards, old: Option<&ProfileState>) -> bool {
    gives_to_target(r.request_type, reinstating(r, cards, old))
}

impl Execution {
    /// Refuses (`TargetDisabled`) a step that would give something to a disabled target: a
    /// certificate, a card, a secret, or service back. Fails closed when the target was not read.
    pub fn target_served(&self, r: &Request) -> Result<(), TargetDisabled> {
        let reinstating = reinstating(r, &self.cards, self.old.as_ref());
        check_target(
            r.request_type,
            reinstating,
            r.target,
            self.target_enabled.unwrap_or(false),
        )
    }

    /// The check every execution step shares, and the guards its write carries (the versions of
    /// the profile and the cards read).
    pub fn guard(&self, r: &Request) -> Result<Vec<Effect>, RuleError> {
        let profile_guard = profile::on_execution(r.request_type, self.old.as_ref())?;
        let card_guards = self.cards.check_execution()?;
        self.target_served(r)?;
        let mut effects: Vec<Effect> = profile_guard.map(Effect::Profile).into_iter().collect();
        effects.extend(card_guards.into_iter().map(Effect::Smartcard));
        Ok(effects)
    }
}

/// The writes that carry what the card rules decided: card changes, then profile changes.
pub fn card_effects(e: CardEffects) -> Vec<Effect> {
    e.cards
        .into_iter()
        .map(Effect::Smartcard)
        .chain(e.profiles.into_iter().map(Effect::Profile))
        .collect()
}

/// Approved → Executing, for an execution step, with the guard; `None` when already Executing.
pub fn begin(r: &Request, x: &Execution, caller: &Principal) -> Result<Option<Decided>, RuleError> {
    let next = begin_execution(r, caller)?;
    if next.status == r.status {
        return Ok(None);
    }
    let effects = x.guard(r)?;
    Ok(Some(
        Decided::new(next, AuditAction::Execute, "").with_effects(effects),
    ))
}

/// `PUT /requests/{reqid}/smartcards/{scid}`: the executor sets its own card's status, within
/// what the request does to it; the profile on the card follows a status out of service at once.
/// `None` when the card is already so.
pub fn set_card_status(
    r: &Request,
    x: &Execution,
    caller: &Principal,
    card: SmartcardId,
    to: SmartcardStatus,
) -> Result<Option<Decided>, RuleError> {
    let executing = begin_execution(r, caller)?;
    let Some(change) = x.cards.set_status(r.uuid, card, to, x.old.as_ref())? else {
        return Ok(None);
    };
    let from = x.cards.own.map(|c| c.status).unwrap_or(to);
    // The execution guard rechecks the profile, the target and the card the request is made
    // from; the card's own change and the profile's follow replace their guards.
    let mut effects: Vec<Effect> = x
        .guard(r)?
        .into_iter()
        .filter(|e| match e {
            Effect::Smartcard(c) => !change.cards.iter().any(|x| x.card == c.card),
            Effect::Profile(p) => !change.profiles.iter().any(|x| x.profile == p.profile),
            _ => true,
        })
        .collect();
    effects.extend(card_effects(change));
    Ok(Some(
        Decided::new(
            executing,
            AuditAction::SetSmartcard(Some(to)),
            format!("card {card}: {from} → {to}"),
        )
        .with_effects(effects),
    ))
}

/// A card secret of `card` leaves for the executor: only the request's own card, bound, in
/// service, and the card presented (`RequestCards::release`), with every other execution check.
/// The request moves to Executing (if it is not already) and the write carries the guards.
pub fn release_secret(
    r: &Request,
    x: &Execution,
    caller: &Principal,
    card: SmartcardId,
    secret: CardSecret,
) -> Result<(Request, Vec<Effect>), RuleError> {
    x.cards.release(r.uuid, card, secret)?;
    let executing = begin_execution(r, caller)?;
    Ok((executing, x.guard(r)?))
}
