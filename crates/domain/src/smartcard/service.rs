//! A request's cards in service: which card is the request's own and which one it is made from,
//! whether the request may still act on them at each step — creation, binding, issuance, the
//! release of a card secret, a status set during execution, completion — and what ending the
//! request does to its card and to the profile on it.
//!
//! Binding, issuance, secret releases, `PUT /requests/{reqid}/smartcards/{scid}` and
//! `PUT /requests/{id}` all load the request's cards as they are now (`RequestCards`, with a
//! temporary card past its expiry read as Disabled) and ask here, so one rule answers each
//! question everywhere:
//!
//! - **Only the request's own card** is worked on: the card it binds (Enroll, Duplicate,
//!   TemporaryCards, a Renew onto a new card) or the card it acts on in place. The card a new one
//!   is made from (a temporary card's permanent card, a duplicate's original, the card a renewal
//!   replaces) only has to stay Active until the request completes; its secrets and status are
//!   not the request's.
//! - **Nothing is issued onto a card that is not in service**, and no secret is released for one:
//!   secrets only while the own card is Assigned (being made) or Active; PIN and PUK only to a
//!   request that sets them (one that makes the card, Unblock, OfflineUnblock).
//! - **Fail closed.** A status that takes the card out of service (Retired, Disabled, Suspended),
//!   set during execution, takes the profile on the card with it at once — certificates revoked or
//!   held — and stands whether the request then completes, is canceled or abandoned: the card may
//!   already be erased, and a revocation is never undone by a cancelation. Certificates other
//!   requests in flight already issued for the card (a renewal on it, a temporary card or
//!   duplicate made from it) are revoked with it. A status that brings a card into service
//!   (Active) is provisional: a card made by a request that does not complete is retired, and a
//!   reinstatement — which brings the profile back with the card — is suspended again, profile
//!   and all, when its request does not complete.

use super::status::{SmartcardChange, SmartcardEvent, SmartcardState, SmartcardStatus};
use crate::enums::RequestType;
use crate::ids::{Guid, RequestId, SmartcardId};
use crate::lifecycle::Outcome;
use crate::profile::{self, ProfileChange, ProfileError, ProfileState, ProfileStatus};
use std::fmt;

/// What a request does to its own card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardWork {
    /// Binds a new card and brings it into service: Enroll, Duplicate, TemporaryCards, a Renew
    /// onto a new card.
    Makes,
    /// Works on its card and leaves it in service: a Renew or OnlineUpdate on the same card,
    /// Unblock, OfflineUnblock, Recover.
    Keeps,
    /// Takes its card out of service: Revoke and TemporaryCardDisable (Disable), Retire and
    /// TemporaryCardRetire (Retire), SuspendOrReinstate on an Active card (Suspend).
    Ends(SmartcardEvent),
    /// SuspendOrReinstate on a Suspended card.
    Reinstates,
}

/// A card secret a request's executor may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardSecret {
    /// The card's diversified admin key (`diversifiedkey`).
    AdminKey,
    /// E(admin key, challenge) (`authenticationresponse`).
    ChallengeResponse,
    /// The card's PUK (opencm's `puk`).
    Puk,
    /// A PIN the server proposes (`serverproposedpin`).
    Pin,
}

impl CardSecret {
    pub const ALL: [CardSecret; 4] = [
        Self::AdminKey,
        Self::ChallengeResponse,
        Self::Puk,
        Self::Pin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::AdminKey => "admin key",
            Self::ChallengeResponse => "challenge response",
            Self::Puk => "PUK",
            Self::Pin => "PIN",
        }
    }
}

/// The cards a request touches, as read now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestCards {
    pub request_type: RequestType,
    /// Whether the request makes a card of its own (see `makes_card`).
    pub makes: bool,
    /// The request's own card: the card bound to it, or the card it acts on in place. `None`
    /// while a request that makes a card has none bound yet (and for requests on no card).
    pub own: Option<SmartcardState>,
    /// The card a new one is made from, which must stay Active until the request completes: a
    /// TemporaryCards' permanent card, a Duplicate's original, the card a Renew onto a new card
    /// replaces.
    pub source: Option<SmartcardState>,
    /// The status this request set on its own card during execution
    /// (`PUT /requests/{reqid}/smartcards/{scid}`), if it did.
    pub set_during: Option<SmartcardStatus>,
    /// Profiles other requests reserved, still New, whose certificates were (or may be) issued
    /// already: on the own card (a renewal or online update in flight), and on cards made from it
    /// that are still being made (a duplicate or temporary card in flight). When this request
    /// takes the own card out of service, their certificates are revoked with it: nothing issued
    /// for a card stays valid once the card left service. Loaded only for requests that end a
    /// card's service.
    pub pending: Vec<ProfileState>,
}

/// Whether a request of type `t` with these card references makes a card of its own (rather than
/// acting on one in place): Enroll, Duplicate and TemporaryCards always; a Renew when it goes onto
/// a new card (it names the old card, and a different card or none is bound).
pub fn makes_card(
    t: RequestType,
    old_smartcard: Option<SmartcardId>,
    new_smartcard: Option<SmartcardId>,
) -> bool {
    matches!(
        t,
        RequestType::Enroll | RequestType::Duplicate | RequestType::TemporaryCards
    ) || (t == RequestType::Renew && old_smartcard.is_some() && old_smartcard != new_smartcard)
}

/// The ids of a request's own card and of the card it is made from (see `RequestCards`).
pub fn card_ids(
    t: RequestType,
    old_smartcard: Option<SmartcardId>,
    new_smartcard: Option<SmartcardId>,
) -> (Option<SmartcardId>, Option<SmartcardId>) {
    if makes_card(t, old_smartcard, new_smartcard) {
        (new_smartcard, old_smartcard)
    } else {
        (old_smartcard.or(new_smartcard), None)
    }
}

/// Why a request may not act on its cards now.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardRuleError {
    #[error("Request {0} has no card yet: bind one (POST /smartcards) first.")]
    NotBound(RequestId),
    /// The request's own card is in a status the request cannot act on.
    #[error("Smart card {card} is {status}; a {request_type} request {needs}.")]
    Own {
        card: SmartcardId,
        status: SmartcardStatus,
        request_type: RequestType,
        needs: &'static str,
    },
    /// The card the request's new card is made from left service.
    #[error("Smart card {card}, {role}, is {status}: a {request_type} request goes on only while it is Active.")]
    Source {
        card: SmartcardId,
        status: SmartcardStatus,
        request_type: RequestType,
        role: &'static str,
    },
    #[error("Smart card {card} is not the card request {request} works on{}.", if *.copied { " (the request only copies it)" } else { "" })]
    NotOwnCard {
        card: SmartcardId,
        request: RequestId,
        copied: bool,
    },
    #[error("A {request_type} request may not set its card {to}{}.", Allowed(.allowed))]
    NotSettable {
        request_type: RequestType,
        to: SmartcardStatus,
        allowed: &'static [SmartcardStatus],
    },
    #[error("A {request_type} request neither makes nor unblocks smart card {card}: its {} is not released to it.", .secret.name())]
    SecretNotReleased {
        secret: CardSecret,
        request_type: RequestType,
        card: SmartcardId,
    },
}

impl CardRuleError {
    /// The card status the error is about, if it is about one.
    pub fn status(&self) -> Option<SmartcardStatus> {
        match self {
            Self::Own { status, .. } | Self::Source { status, .. } => Some(*status),
            _ => None,
        }
    }
}

struct Allowed(&'static [SmartcardStatus]);

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(" (it sets none)");
        }
        let names: Vec<&str> = self.0.iter().map(|s| s.name()).collect();
        write!(f, " now (it may set: {})", names.join(", "))
    }
}

/// Why a request cannot end as asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FinishError {
    #[error(transparent)]
    Card(#[from] CardRuleError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

/// What ending a request does to its cards and to the profiles on them; each change carries the
/// version it was decided on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardEffects {
    pub cards: Vec<SmartcardChange>,
    pub profiles: Vec<ProfileChange>,
}

/// The status an out-of-service event leaves a card in.
fn ends_in(e: SmartcardEvent) -> SmartcardStatus {
    match e {
        SmartcardEvent::Disable => SmartcardStatus::Disabled,
        SmartcardEvent::Suspend => SmartcardStatus::Suspended,
        _ => SmartcardStatus::Retired,
    }
}

/// How far out of service a profile status is: Active 0, Suspended 1, Disabled 2, Retired 3.
fn depth(s: ProfileStatus) -> u8 {
    match s {
        ProfileStatus::New | ProfileStatus::Active => 0,
        ProfileStatus::Suspended => 1,
        ProfileStatus::Disabled => 2,
        ProfileStatus::Retired => 3,
    }
}

impl RequestCards {
    /// What the request does to its own card in `status`. SuspendOrReinstate suspends an Active
    /// card and reinstates a Suspended one; once it has set the card's status, the status it set
    /// says which.
    pub fn work_on(&self, status: SmartcardStatus) -> CardWork {
        use RequestType as T;
        if self.makes {
            return CardWork::Makes;
        }
        match self.request_type {
            T::Revoke | T::TemporaryCardDisable => CardWork::Ends(SmartcardEvent::Disable),
            T::Retire | T::TemporaryCardRetire => CardWork::Ends(SmartcardEvent::Retire),
            T::SuspendOrReinstate => {
                let reinstating = match self.set_during {
                    Some(set) => set == SmartcardStatus::Active,
                    None => status == SmartcardStatus::Suspended,
                };
                if reinstating {
                    CardWork::Reinstates
                } else {
                    CardWork::Ends(SmartcardEvent::Suspend)
                }
            }
            _ => CardWork::Keeps,
        }
    }

    /// What the request does to its own card as it is now (`Makes` before one is bound).
    pub fn work(&self) -> Option<CardWork> {
        match self.own {
            Some(c) => Some(self.work_on(c.status)),
            None if self.makes => Some(CardWork::Makes),
            None => None,
        }
    }

    /// Whether this request set its own card to `status` during execution and the card is still
    /// there (nobody moved it on since).
    pub fn still_set_to(&self, status: SmartcardStatus) -> bool {
        self.set_during == Some(status) && self.own.is_some_and(|c| c.status == status)
    }

    /// Whether the own card is still where this request's status set put it: out of service for
    /// a request that ends its service, Active for one that makes or reinstates it.
    pub fn still_as_set(&self) -> bool {
        match self.work() {
            Some(CardWork::Ends(e)) => self.still_set_to(ends_in(e)),
            Some(CardWork::Makes | CardWork::Reinstates) => {
                self.still_set_to(SmartcardStatus::Active)
            }
            _ => false,
        }
    }

    fn own_error(&self, c: &SmartcardState, needs: &'static str) -> CardRuleError {
        CardRuleError::Own {
            card: c.uuid,
            status: c.status,
            request_type: self.request_type,
            needs,
        }
    }

    /// The card the new one is made from must be in service.
    fn check_source(&self) -> Result<(), CardRuleError> {
        match self.source {
            Some(s) if s.status != SmartcardStatus::Active => Err(CardRuleError::Source {
                card: s.uuid,
                status: s.status,
                request_type: self.request_type,
                role: match self.request_type {
                    RequestType::TemporaryCards => "the permanent card it stands in for",
                    RequestType::Duplicate => "the card it duplicates",
                    _ => "the card it replaces",
                },
            }),
            _ => Ok(()),
        }
    }

    /// The own card must be in a status the request acts on.
    fn check_own(&self, c: &SmartcardState) -> Result<(), CardRuleError> {
        use SmartcardStatus as S;
        match self.work_on(c.status) {
            CardWork::Makes => match c.status {
                S::Assigned => Ok(()),
                S::Active if self.still_as_set() => Ok(()),
                _ => Err(self.own_error(c, "goes on only while the card it makes is Assigned")),
            },
            CardWork::Keeps if c.status == S::Active => Ok(()),
            CardWork::Keeps => Err(self.own_error(c, "needs the card Active")),
            CardWork::Ends(e) => {
                if self.still_as_set() || c.status.next(e).is_ok() {
                    Ok(())
                } else {
                    Err(self.own_error(c, "cannot take it further out of service"))
                }
            }
            CardWork::Reinstates => match c.status {
                S::Suspended => Ok(()),
                S::Active if self.still_as_set() => Ok(()),
                _ => Err(self.own_error(c, "reinstates a Suspended card only")),
            },
        }
    }

    /// Whether the request may be created, or run an execution step (binding, issuance, a
    /// secret's release, setting its card's status), now. Returns the guards the write carries:
    /// the step stands only if the cards are still as read.
    pub fn check_execution(&self) -> Result<Vec<SmartcardChange>, CardRuleError> {
        self.check_source()?;
        if let Some(c) = &self.own {
            self.check_own(c)?;
        }
        Ok(self
            .source
            .iter()
            .chain(self.own.iter())
            .map(SmartcardChange::guard)
            .collect())
    }

    /// Before certificates are issued onto the request's card: it must be bound and in service
    /// for the request (a temporary card past its expiry reads Disabled and takes nothing).
    pub fn check_issuance(
        &self,
        request: RequestId,
    ) -> Result<Vec<SmartcardChange>, CardRuleError> {
        if self.own.is_none() {
            return Err(CardRuleError::NotBound(request));
        }
        self.check_execution()
    }

    /// Whether the executor may have `secret` of card `card` now: it must be the request's own
    /// card, bound, in service (Assigned while being made, or Active); the PIN and PUK go only to
    /// a request that sets them. Returns the guards the release's audit write carries.
    pub fn release(
        &self,
        request: RequestId,
        card: SmartcardId,
        secret: CardSecret,
    ) -> Result<Vec<SmartcardChange>, CardRuleError> {
        let own = self.own_card(request, card)?;
        let guards = self.check_execution()?;
        if !matches!(
            own.status,
            SmartcardStatus::Assigned | SmartcardStatus::Active
        ) {
            return Err(self.own_error(&own, "gets no card secret for a card out of service"));
        }
        let sets_pin = self.makes
            || matches!(
                self.request_type,
                RequestType::Unblock | RequestType::OfflineUnblock
            );
        if matches!(secret, CardSecret::Puk | CardSecret::Pin) && !sets_pin {
            return Err(CardRuleError::SecretNotReleased {
                secret,
                request_type: self.request_type,
                card,
            });
        }
        Ok(guards)
    }

    /// The request's own card, if `card` is it.
    pub fn own_card(
        &self,
        request: RequestId,
        card: SmartcardId,
    ) -> Result<SmartcardState, CardRuleError> {
        match self.own {
            Some(c) if c.uuid == card => Ok(c),
            _ => Err(CardRuleError::NotOwnCard {
                card,
                request,
                copied: self.source.is_some_and(|s| s.uuid == card),
            }),
        }
    }

    /// The statuses the executor may set on the own card now
    /// (`PUT /requests/{reqid}/smartcards/{scid}`): a card the request makes, Active; the status
    /// a Retire, Revoke or Suspend takes it to; Active for a reinstatement; nothing for a request
    /// that keeps its card in service.
    pub fn settable(&self) -> &'static [SmartcardStatus] {
        use SmartcardStatus as S;
        match self.work() {
            Some(CardWork::Makes) | Some(CardWork::Reinstates) => &[S::Active],
            Some(CardWork::Ends(SmartcardEvent::Disable)) => &[S::Disabled],
            Some(CardWork::Ends(SmartcardEvent::Suspend)) => &[S::Suspended],
            Some(CardWork::Ends(_)) => &[S::Retired],
            Some(CardWork::Keeps) | None => &[],
        }
    }

    /// `PUT /requests/{reqid}/smartcards/{scid}` `{"status": to}`: what it does to the own card
    /// `card` and to the profile `on_card` on it (the profile the request acts on). Setting the
    /// status the card already has changes nothing. A status that takes the card out of service
    /// takes the profile with it now: its certificates are revoked or held in the same write.
    pub fn set_status(
        &self,
        request: RequestId,
        card: SmartcardId,
        to: SmartcardStatus,
        on_card: Option<&ProfileState>,
    ) -> Result<Option<CardEffects>, FinishError> {
        let own = self.own_card(request, card)?;
        let allowed = self.settable();
        if !allowed.contains(&to) {
            return Err(CardRuleError::NotSettable {
                request_type: self.request_type,
                to,
                allowed,
            }
            .into());
        }
        if own.status == to {
            return Ok(None);
        }
        let mut guards = self.check_execution()?;
        guards.retain(|g| g.card != own.uuid);
        let work = self.work_on(own.status);
        let event = match work {
            CardWork::Reinstates => SmartcardEvent::Reinstate,
            CardWork::Makes => SmartcardEvent::Activate,
            CardWork::Ends(e) => e,
            CardWork::Keeps => return Ok(None),
        };
        let change = SmartcardChange::apply(&own, Some(event))
            .map_err(|_| self.own_error(&own, "cannot set it so"))?;
        let mut profiles = Vec::new();
        match (work, on_card) {
            (CardWork::Ends(e), Some(p)) => {
                profiles.push(profile_follows(self.request_type, e, p)?)
            }
            // A reinstatement brings the profile and its certificates back with the card (and a
            // cancelation takes them away again): card and profile always agree.
            (CardWork::Reinstates, Some(p)) if p.status == ProfileStatus::Suspended => profiles
                .extend(profile::on_outcome(
                    self.request_type,
                    Outcome::Completed,
                    Some(p),
                    None,
                )?),
            _ => {}
        }
        if matches!(work, CardWork::Ends(_)) {
            profiles.extend(self.pending.iter().map(revoke_pending));
        }
        guards.push(change);
        Ok(Some(CardEffects {
            cards: guards,
            profiles,
        }))
    }

    /// What completing, canceling or abandoning the request does to its cards and profiles:
    /// `old` is the profile it acts on, `new` the profile it created (each as read now).
    ///
    /// Completed: a card it made goes into service (Active), the card a renewal replaces is
    /// retired, a card it takes out of service goes (with its profile, as the profile rules say),
    /// a reinstated one comes back. Canceled or abandoned: a card it made is retired; a
    /// reinstatement set during execution is undone (the card Suspended again); a card it took out
    /// of service stays out, and the profile on it follows.
    pub fn finish(
        &self,
        request: RequestId,
        outcome: Outcome,
        old: Option<&ProfileState>,
        new: Option<&ProfileState>,
        smartcard_template: bool,
    ) -> Result<CardEffects, FinishError> {
        let done = outcome == Outcome::Completed;
        let mut cards = Vec::new();
        if done {
            if self.makes && smartcard_template && self.own.is_none() {
                return Err(CardRuleError::NotBound(request).into());
            }
            self.check_source()?;
            if let Some(s) = &self.source {
                // A renewal onto a new card retires the card it replaces.
                let event =
                    (self.request_type == RequestType::Renew).then_some(SmartcardEvent::Retire);
                cards.push(
                    SmartcardChange::apply(s, event)
                        .map_err(|_| self.own_error(s, "cannot retire the card it replaces"))?,
                );
            }
        }
        let mut profiles = Vec::new();
        if let Some(own) = &self.own {
            let work = self.work_on(own.status);
            if done {
                self.check_own(own)?;
            }
            let event =
                match (work, done) {
                    (CardWork::Makes, true) => (own.status == SmartcardStatus::Assigned)
                        .then_some(SmartcardEvent::Activate),
                    (CardWork::Makes, false) => {
                        (own.status != SmartcardStatus::Retired).then_some(SmartcardEvent::Retire)
                    }
                    (CardWork::Keeps, _) | (CardWork::Ends(_), false) => None,
                    (CardWork::Ends(e), true) => (!self.still_as_set()).then_some(e),
                    (CardWork::Reinstates, true) => (own.status == SmartcardStatus::Suspended)
                        .then_some(SmartcardEvent::Reinstate),
                    // A reinstatement that does not complete is undone, unless someone moved the
                    // card on since.
                    (CardWork::Reinstates, false) => {
                        self.still_as_set().then_some(SmartcardEvent::Suspend)
                    }
                };
            cards.push(
                SmartcardChange::apply(own, event)
                    .map_err(|_| self.own_error(own, "cannot end so"))?,
            );
            match (work, old) {
                // The profile on a card taken out of service follows the card: when the request
                // completes, and — if the request set the card's status itself — however it ends
                // (it followed at once; a profile still behind is brought along).
                (CardWork::Ends(e), Some(p)) if done || self.still_as_set() => {
                    let follows = profile_follows(self.request_type, e, p);
                    // Canceling is always possible: a profile the rules cannot move is left as
                    // it is.
                    profiles.push(match follows {
                        Err(_) if !done => ProfileChange::guard(p),
                        other => other?,
                    });
                    profiles.extend(self.pending.iter().map(revoke_pending));
                    return Ok(CardEffects { cards, profiles });
                }
                // A reinstatement undone suspends the card again, and the profile with it.
                (CardWork::Reinstates, Some(p)) if !done && self.still_as_set() => {
                    profiles.push(
                        profile_follows(self.request_type, SmartcardEvent::Suspend, p)
                            .unwrap_or_else(|_| ProfileChange::guard(p)),
                    );
                    profiles.extend(self.pending.iter().map(revoke_pending));
                    return Ok(CardEffects { cards, profiles });
                }
                // A reinstatement brings back a suspended profile; one already in service stays.
                (CardWork::Reinstates, Some(p)) if done && p.status == ProfileStatus::Active => {
                    profiles.push(ProfileChange::guard(p));
                    return Ok(CardEffects { cards, profiles });
                }
                _ => {}
            }
        }
        profiles.extend(profile::on_outcome(self.request_type, outcome, old, new)?);
        Ok(CardEffects { cards, profiles })
    }
}

/// Whether a request of type `t` ever sets its card's status during execution (those that keep
/// the card in service never do).
pub fn sets_card_status(t: RequestType) -> bool {
    !matches!(
        t,
        RequestType::Unblock
            | RequestType::OfflineUnblock
            | RequestType::OnlineUpdate
            | RequestType::Recover
            | RequestType::RecoverOnBehalf
    )
}

/// Whether a request of type `t` may be started on a card in `status` (the card it names: the
/// one it acts on in place, or the one it makes a new card from), as `operations` offers it.
pub fn may_start(t: RequestType, status: SmartcardStatus) -> bool {
    let makes = matches!(t, RequestType::Duplicate | RequestType::TemporaryCards);
    let c = SmartcardState {
        uuid: SmartcardId::from_guid(Guid::NIL),
        status,
        version: 0,
        temporary: false,
    };
    RequestCards {
        request_type: t,
        makes,
        own: (!makes).then_some(c),
        source: makes.then_some(c),
        set_during: None,
        pending: Vec::new(),
    }
    .check_execution()
    .is_ok()
}

/// A profile another request reserved on a card that leaves service: disabled, and whatever was
/// issued onto it revoked (its card left service before its request completed). One already out
/// of service is only guarded.
fn revoke_pending(p: &ProfileState) -> ProfileChange {
    match p.status.next(crate::profile::ProfileEvent::Disable) {
        Ok(to) if p.status == ProfileStatus::New => ProfileChange {
            profile: p.uuid,
            version: p.version,
            from: p.status,
            to,
            superseded: false,
            certificates: Some(crate::issued::CertificateEvent::Revoke(
                crate::issued::RevocationReason::CessationOfOperation,
            )),
        },
        _ => ProfileChange::guard(p),
    }
}

/// The profile on a card that `event` took out of service follows the card: Suspend holds its
/// certificates, Disable and Retire revoke them, as completing the request does. A profile already
/// as far out of service (or further) is only guarded.
fn profile_follows(
    t: RequestType,
    event: SmartcardEvent,
    p: &ProfileState,
) -> Result<ProfileChange, ProfileError> {
    let target = match event {
        SmartcardEvent::Suspend => ProfileStatus::Suspended,
        SmartcardEvent::Disable => ProfileStatus::Disabled,
        _ => ProfileStatus::Retired,
    };
    if depth(p.status) >= depth(target) {
        return Ok(ProfileChange::guard(p));
    }
    let changes = profile::on_outcome(t, Outcome::Completed, Some(p), None)?;
    Ok(changes
        .into_iter()
        .find(|c| c.profile == p.uuid)
        .unwrap_or_else(|| ProfileChange::guard(p)))
}

#[cfg(test)]
mod tests;
