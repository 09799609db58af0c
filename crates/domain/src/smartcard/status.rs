//! The card lifecycle as a typed state machine, like `ProfileStatus::next`, and what each request
//! type does to the card it executes on when it ends (SPEC §5).
//!
//! A card is created Assigned when it is bound to an approved request (`POST /smartcards`); it
//! becomes Active when that request completes. A Disabled card can only be retired; a Retired one
//! never changes again (a reusable card id is bound again as a new card).

use crate::enums::RequestType;
use crate::lifecycle::Outcome;
use std::fmt;

/// Smart card `Status` (SPEC §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmartcardStatus {
    New,
    Assigned,
    Active,
    Disabled,
    Suspended,
    Retired,
}

impl SmartcardStatus {
    pub const ALL: [SmartcardStatus; 6] = [
        Self::New,
        Self::Assigned,
        Self::Active,
        Self::Disabled,
        Self::Suspended,
        Self::Retired,
    ];

    pub fn number(self) -> i64 {
        match self {
            Self::New => 0,
            Self::Assigned => 1,
            Self::Active => 2,
            Self::Disabled => 3,
            Self::Suspended => 4,
            Self::Retired => 6,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::New => "New",
            Self::Assigned => "Assigned",
            Self::Active => "Active",
            Self::Disabled => "Disabled",
            Self::Suspended => "Suspended",
            Self::Retired => "Retired",
        }
    }

    /// A case-insensitive name (not trimmed), or the number as text.
    pub fn parse(s: &str) -> Option<Self> {
        crate::lifecycle::parse_status(s, &Self::ALL, Self::number, Self::name)
    }

    /// Whether a card in this status is in use: its id cannot be bound again.
    pub fn is_live(self) -> bool {
        self != Self::Retired
    }

    /// The status after `event`, or why it may not happen now.
    pub fn next(self, event: SmartcardEvent) -> Result<SmartcardStatus, SmartcardTransitionError> {
        use SmartcardEvent as E;
        use SmartcardStatus::*;
        let to = match (self, event) {
            (New, E::Assign) => Assigned,
            (Assigned, E::Activate) => Active,
            (Active, E::Suspend) => Suspended,
            (Suspended, E::Reinstate) => Active,
            (Assigned | Active | Suspended, E::Disable) => Disabled,
            (New | Assigned | Active | Suspended | Disabled, E::Retire) => Retired,
            _ => return Err(SmartcardTransitionError { from: self, event }),
        };
        Ok(to)
    }
}

impl fmt::Display for SmartcardStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happens to a card.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmartcardEvent {
    /// Bound to a request (`POST /smartcards`).
    Assign,
    /// The request it was bound for completed: the card is in service.
    Activate,
    Suspend,
    Reinstate,
    /// Revoked, or a temporary card disabled.
    Disable,
    /// Out of service for good (retired, replaced, or its enrolment never finished).
    Retire,
}

impl SmartcardEvent {
    pub fn verb(self) -> &'static str {
        match self {
            Self::Assign => "assigned",
            Self::Activate => "activated",
            Self::Suspend => "suspended",
            Self::Reinstate => "reinstated",
            Self::Disable => "disabled",
            Self::Retire => "retired",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("The smart card is {from}; it cannot be {} now.", event.verb())]
pub struct SmartcardTransitionError {
    pub from: SmartcardStatus,
    pub event: SmartcardEvent,
}

/// What a request of type `t` does, when it ends with `outcome`, to the card it executed on (the
/// card bound to it, or the card its profile lives on), in `status`. `None`: the card stays as it
/// is. Errors when the card is in a status the request cannot act on.
///
/// `set_during`: the request already set the card's status during its execution
/// (`PUT /requests/{reqid}/smartcards/{scid}`, as MIM's client does before it completes a Retire):
/// the card is then left where the request put it.
pub fn on_outcome(
    t: RequestType,
    outcome: Outcome,
    status: SmartcardStatus,
    set_during: bool,
) -> Result<Option<SmartcardEvent>, SmartcardTransitionError> {
    use RequestType as T;
    use SmartcardEvent as E;
    // Renew onto a new card (a template that does not reuse cards) brings that card into service
    // like an enrolment; onto the same card, the card stays.
    let creates_card = matches!(t, T::Enroll | T::Duplicate | T::TemporaryCards)
        || (t == T::Renew && status == SmartcardStatus::Assigned);
    if set_during && outcome == Outcome::Completed && settable_during(t).contains(&status) {
        return Ok(None);
    }
    let event = match (t, outcome) {
        // A card bound for a new profile goes into service, or — when its request never
        // finished — out of it (a reusable card id can then be bound again).
        (_, Outcome::Completed) if creates_card => {
            (status == SmartcardStatus::Assigned).then_some(E::Activate)
        }
        (_, _) if creates_card => (status == SmartcardStatus::Assigned
            || (set_during && status == SmartcardStatus::Active))
            .then_some(E::Retire),
        (_, Outcome::Canceled | Outcome::Abandoned) => None,
        (T::Revoke | T::TemporaryCardDisable, Outcome::Completed) => Some(E::Disable),
        (T::Retire | T::TemporaryCardRetire, Outcome::Completed) => Some(E::Retire),
        (T::SuspendOrReinstate, Outcome::Completed) => Some(match status {
            SmartcardStatus::Suspended => E::Reinstate,
            _ => E::Suspend,
        }),
        // Renew onto the same card, Unblock, OfflineUnblock, OnlineUpdate, Recover: the card
        // stays, and must be in service.
        (_, Outcome::Completed) => {
            if status != SmartcardStatus::Active {
                return Err(SmartcardTransitionError {
                    from: status,
                    event: E::Activate,
                });
            }
            None
        }
    };
    match event {
        Some(e) => status.next(e).map(|_| Some(e)),
        None => Ok(None),
    }
}

/// What a Renew onto a new card (a template that does not reuse cards) does to the card it
/// replaces, in `status`, when it ends with `outcome`: completed, the old card is retired (its
/// profile is superseded beside it); otherwise it stays. It must be in service until then.
pub fn on_replaced(
    outcome: Outcome,
    status: SmartcardStatus,
) -> Result<Option<SmartcardEvent>, SmartcardTransitionError> {
    if outcome != Outcome::Completed {
        return Ok(None);
    }
    if status != SmartcardStatus::Active {
        return Err(SmartcardTransitionError {
            from: status,
            event: SmartcardEvent::Retire,
        });
    }
    Ok(Some(SmartcardEvent::Retire))
}

/// Whether a request of type `t` may act on a card in `status` now: when it is created, when it
/// executes, and (with `on_outcome`) when it completes.
pub fn on_execution(
    t: RequestType,
    status: SmartcardStatus,
) -> Result<(), SmartcardTransitionError> {
    on_outcome(t, Outcome::Completed, status, false).map(|_| ())
}

/// A card as a decision reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmartcardState {
    pub uuid: crate::Guid,
    pub status: SmartcardStatus,
    pub version: i64,
    /// A temporary card (Flags Temporary), issued while its user's permanent card is away.
    pub temporary: bool,
}

/// A card's status as of `now`: a temporary card past its expiry is Disabled, whatever its
/// stored status says (only retiring it is left). Expiry is read, never swept: every reader sees
/// it at the same instant, and the first write that touches the card stores it.
pub fn status_at(
    status: SmartcardStatus,
    expires: crate::Timestamp,
    now: crate::Timestamp,
) -> SmartcardStatus {
    let expired = expires.is_set() && now >= expires;
    match status {
        SmartcardStatus::Assigned | SmartcardStatus::Active | SmartcardStatus::Suspended
            if expired =>
        {
            SmartcardStatus::Disabled
        }
        s => s,
    }
}

/// Why a request type cannot act on the kind of card it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardKindError {
    #[error("A {1} request acts on a temporary card; smart card {0} is a permanent one.")]
    NotTemporary(crate::Guid, RequestType),
    #[error("Smart card {0} is a temporary card: a {1} request needs the user's permanent card.")]
    Temporary(crate::Guid, RequestType),
    #[error("Smart card {0} is {2}; a {1} request copies an Active card only.")]
    OriginalNotActive(crate::Guid, RequestType, SmartcardStatus),
}

/// Whether a request of type `t` may name `card`: TemporaryCardDisable and TemporaryCardRetire
/// act on temporary cards only; Duplicate and TemporaryCards copy an Active permanent card.
pub fn check_card_kind(t: RequestType, card: &SmartcardState) -> Result<(), CardKindError> {
    use RequestType as T;
    match t {
        T::TemporaryCardDisable | T::TemporaryCardRetire if !card.temporary => {
            Err(CardKindError::NotTemporary(card.uuid, t))
        }
        T::Duplicate | T::TemporaryCards if card.temporary => {
            Err(CardKindError::Temporary(card.uuid, t))
        }
        T::Duplicate | T::TemporaryCards if card.status != SmartcardStatus::Active => {
            Err(CardKindError::OriginalNotActive(card.uuid, t, card.status))
        }
        _ => Ok(()),
    }
}

/// The request types that need a card named, because they make or act on temporary cards.
pub fn needs_card(t: RequestType) -> bool {
    matches!(
        t,
        RequestType::TemporaryCards
            | RequestType::TemporaryCardDisable
            | RequestType::TemporaryCardRetire
    )
}

/// One card a write touches: the version the decision read (the write is refused if the card
/// changed since) and its status afterwards. A change to the current status only guards the
/// decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmartcardChange {
    pub card: crate::Guid,
    pub version: i64,
    pub to: SmartcardStatus,
}

impl SmartcardChange {
    pub fn guard(c: &SmartcardState) -> Self {
        SmartcardChange {
            card: c.uuid,
            version: c.version,
            to: c.status,
        }
    }

    /// The change `event` makes to `c` (the event was checked by `on_outcome`).
    pub fn apply(
        c: &SmartcardState,
        event: Option<SmartcardEvent>,
    ) -> Result<Self, SmartcardTransitionError> {
        let to = match event {
            Some(e) => c.status.next(e)?,
            None => c.status,
        };
        Ok(SmartcardChange {
            card: c.uuid,
            version: c.version,
            to,
        })
    }
}

/// The operations (lowercase MIM names) `caller` may start now on a card in `card` status whose
/// profile in service is in `profile` status: the profile's operations, plus unblocking, that the
/// card's status allows too.
pub fn operations(
    template: &crate::policy::ProfileTemplate,
    profile: crate::profile::ProfileStatus,
    card: SmartcardStatus,
    caller: &crate::identity::Principal,
    assigned_to_caller: bool,
) -> Vec<&'static str> {
    crate::profile::operations_from(
        crate::profile::CARD_OPERATIONS,
        template,
        profile,
        caller,
        assigned_to_caller,
    )
    .into_iter()
    .filter(|(t, name)| {
        // Suspend and Reinstate share a type: the card's status says which one applies.
        let suspend_ok = match *name {
            "suspend" => card == SmartcardStatus::Active,
            "reinstate" => card == SmartcardStatus::Suspended,
            _ => true,
        };
        suspend_ok && on_execution(*t, card).is_ok()
    })
    .map(|(_, name)| name)
    .collect()
}

/// The statuses `PUT /requests/{reqid}/smartcards/{scid}` may set while a request of type `t`
/// executes on the card (the published example: a Retire request sets Retired).
pub fn settable_during(t: RequestType) -> &'static [SmartcardStatus] {
    use RequestType as T;
    use SmartcardStatus as S;
    match t {
        T::Retire | T::TemporaryCardRetire => &[S::Retired],
        T::Revoke | T::TemporaryCardDisable => &[S::Disabled],
        T::SuspendOrReinstate => &[S::Suspended, S::Active],
        T::Enroll | T::Duplicate | T::TemporaryCards | T::Renew => &[S::Active],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SmartcardStatus::*;

    #[test]
    fn transition_table() {
        use SmartcardEvent as E;
        let events = [
            E::Assign,
            E::Activate,
            E::Suspend,
            E::Reinstate,
            E::Disable,
            E::Retire,
        ];
        #[rustfmt::skip]
        let table: &[(SmartcardStatus, [Option<SmartcardStatus>; 6])] = &[
            //           assign          activate      suspend          reinstate     disable         retire
            (New,       [Some(Assigned), None,         None,            None,         None,           Some(Retired)]),
            (Assigned,  [None,           Some(Active), None,            None,         Some(Disabled), Some(Retired)]),
            (Active,    [None,           None,         Some(Suspended), None,         Some(Disabled), Some(Retired)]),
            (Suspended, [None,           None,         None,            Some(Active), Some(Disabled), Some(Retired)]),
            (Disabled,  [None,           None,         None,            None,         None,           Some(Retired)]),
            (Retired,   [None; 6]),
        ];
        assert_eq!(table.len(), SmartcardStatus::ALL.len());
        for (from, row) in table {
            for (event, expected) in events.iter().zip(row) {
                let got = from.next(*event).ok();
                assert_eq!(got, *expected, "{from:?} + {event:?}");
                if let Err(e) = from.next(*event) {
                    assert!(e.to_string().contains(from.name()), "{e}");
                }
            }
        }
    }

    #[test]
    fn what_each_request_type_does_to_its_card() {
        use Outcome::*;
        use RequestType as T;
        use SmartcardEvent as E;
        type Case = (RequestType, Outcome, SmartcardStatus, Result<Option<E>, ()>);
        let cases: &[Case] = &[
            (T::Enroll, Completed, Assigned, Ok(Some(E::Activate))),
            (T::Enroll, Canceled, Assigned, Ok(Some(E::Retire))),
            (T::Enroll, Abandoned, Assigned, Ok(Some(E::Retire))),
            (
                T::TemporaryCards,
                Completed,
                Assigned,
                Ok(Some(E::Activate)),
            ),
            (T::Renew, Completed, Active, Ok(None)),
            (T::Unblock, Completed, Active, Ok(None)),
            (T::OfflineUnblock, Completed, Active, Ok(None)),
            (T::OnlineUpdate, Completed, Active, Ok(None)),
            (T::Unblock, Completed, Disabled, Err(())),
            (T::Unblock, Canceled, Disabled, Ok(None)),
            (T::Retire, Completed, Active, Ok(Some(E::Retire))),
            (T::Retire, Completed, Retired, Err(())),
            (T::Revoke, Completed, Active, Ok(Some(E::Disable))),
            (T::Revoke, Completed, Disabled, Err(())),
            (
                T::TemporaryCardDisable,
                Completed,
                Active,
                Ok(Some(E::Disable)),
            ),
            (
                T::TemporaryCardRetire,
                Completed,
                Disabled,
                Ok(Some(E::Retire)),
            ),
            (
                T::SuspendOrReinstate,
                Completed,
                Active,
                Ok(Some(E::Suspend)),
            ),
            (
                T::SuspendOrReinstate,
                Completed,
                Suspended,
                Ok(Some(E::Reinstate)),
            ),
            (T::SuspendOrReinstate, Completed, Retired, Err(())),
        ];
        for (t, o, s, want) in cases {
            assert_eq!(
                on_outcome(*t, *o, *s, false).map_err(|_| ()),
                *want,
                "{t:?} {o:?} on {s:?}"
            );
        }
    }

    #[test]
    fn a_status_set_during_execution_stands_at_completion() {
        use RequestType as T;
        // The published Retire: the client sets Retired, then completes.
        assert_eq!(
            on_outcome(T::Retire, Outcome::Completed, Retired, true),
            Ok(None)
        );
        assert!(on_outcome(T::Retire, Outcome::Completed, Retired, false).is_err());
        // Suspended by this request: completing does not reinstate it.
        assert_eq!(
            on_outcome(T::SuspendOrReinstate, Outcome::Completed, Suspended, true),
            Ok(None)
        );
        // An enrolment canceled after its card was set Active retires the card.
        assert_eq!(
            on_outcome(T::Enroll, Outcome::Canceled, Active, true),
            Ok(Some(SmartcardEvent::Retire))
        );
        assert_eq!(
            on_outcome(T::Enroll, Outcome::Canceled, Active, false),
            Ok(None)
        );
        assert!(on_execution(T::Unblock, Disabled).is_err());
        assert!(on_execution(T::Enroll, Assigned).is_ok());
        let c = SmartcardState {
            uuid: crate::Guid::NIL,
            status: Active,
            version: 3,
            temporary: false,
        };
        let ch = SmartcardChange::apply(&c, Some(SmartcardEvent::Disable)).unwrap();
        assert_eq!((ch.to, ch.version), (Disabled, 3));
    }

    #[test]
    fn a_renewal_onto_a_new_card_retires_the_old_one_when_it_completes() {
        use SmartcardEvent as E;
        assert_eq!(on_replaced(Outcome::Completed, Active), Ok(Some(E::Retire)));
        assert_eq!(on_replaced(Outcome::Canceled, Active), Ok(None));
        assert_eq!(on_replaced(Outcome::Abandoned, Active), Ok(None));
        assert_eq!(
            on_replaced(Outcome::Canceled, Disabled),
            Ok(None),
            "canceling always can"
        );
        // Revoked or suspended meanwhile: the renewal cannot go on.
        assert!(on_replaced(Outcome::Completed, Disabled).is_err());
        assert!(on_replaced(Outcome::Completed, Suspended).is_err());
    }

    #[test]
    fn a_temporary_card_past_its_expiry_reads_disabled() {
        use crate::Timestamp;
        let expires = Timestamp::from_micros(1_000);
        let (before, at) = (Timestamp::from_micros(999), Timestamp::from_micros(1_000));
        for s in [Assigned, Active, Suspended] {
            assert_eq!(status_at(s, expires, before), s);
            assert_eq!(status_at(s, expires, at), Disabled);
            // A permanent card has no expiry.
            assert_eq!(status_at(s, Timestamp::UNSET, at), s);
        }
        assert_eq!(status_at(Retired, expires, at), Retired);
        assert_eq!(status_at(Disabled, expires, at), Disabled);
    }

    #[test]
    fn temporary_card_requests_name_the_right_kind_of_card() {
        use RequestType as T;
        let card = |status, temporary| SmartcardState {
            uuid: crate::Guid::NIL,
            status,
            version: 0,
            temporary,
        };
        let permanent = card(Active, false);
        let temporary = card(Active, true);
        assert!(check_card_kind(T::TemporaryCards, &permanent).is_ok());
        assert!(check_card_kind(T::Duplicate, &permanent).is_ok());
        assert!(matches!(
            check_card_kind(T::TemporaryCards, &temporary),
            Err(CardKindError::Temporary(..))
        ));
        assert!(matches!(
            check_card_kind(T::TemporaryCards, &card(Suspended, false)),
            Err(CardKindError::OriginalNotActive(_, _, Suspended))
        ));
        for t in [T::TemporaryCardDisable, T::TemporaryCardRetire] {
            assert!(check_card_kind(t, &temporary).is_ok());
            assert!(matches!(
                check_card_kind(t, &permanent),
                Err(CardKindError::NotTemporary(..))
            ));
        }
        // Everything else acts on either kind.
        assert!(check_card_kind(T::Revoke, &temporary).is_ok());
        assert!(check_card_kind(T::Unblock, &permanent).is_ok());
        assert!(needs_card(T::TemporaryCards) && !needs_card(T::Duplicate));
    }

    #[test]
    fn numbers_names_and_settable_statuses_match_spec() {
        let n: Vec<i64> = SmartcardStatus::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(n, vec![0, 1, 2, 3, 4, 6]);
        assert_eq!(SmartcardStatus::parse("assigned"), Some(Assigned));
        assert_eq!(SmartcardStatus::parse("6"), Some(Retired));
        assert_eq!(SmartcardStatus::parse(" Retired"), None);
        assert_eq!(settable_during(RequestType::Retire), &[Retired]);
        assert!(settable_during(RequestType::Unblock).is_empty());
        assert!(!Retired.is_live() && Disabled.is_live());
    }
}
