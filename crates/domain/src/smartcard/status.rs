//! The card lifecycle as a typed state machine, like `ProfileStatus::next`; what each request does
//! to its cards is `service.rs`.
//!
//! A card is created Assigned when it is bound to an approved request (`POST /smartcards`); it
//! becomes Active when that request completes. A Disabled card can only be retired; a Retired one
//! never changes again (a reusable card id is bound again as a new card).

use crate::enums::RequestType;
use std::fmt;

/// Smart card `Status` (docs/API.md, "Enumerations").
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

/// A card as a decision reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmartcardState {
    pub uuid: crate::SmartcardId,
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
    expires: Option<crate::Timestamp>,
    now: crate::Timestamp,
) -> SmartcardStatus {
    let expired = expires.is_some_and(|e| now >= e);
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
    NotTemporary(crate::SmartcardId, RequestType),
    #[error("Smart card {0} is a temporary card: a {1} request needs the user's permanent card.")]
    Temporary(crate::SmartcardId, RequestType),
}

/// Whether a request of type `t` may name `card`: TemporaryCardDisable and TemporaryCardRetire
/// act on temporary cards only; Duplicate and TemporaryCards copy a permanent card (which must be
/// Active: `RequestCards::check_execution`).
pub fn check_card_kind(t: RequestType, card: &SmartcardState) -> Result<(), CardKindError> {
    use RequestType as T;
    match t {
        T::TemporaryCardDisable | T::TemporaryCardRetire if !card.temporary => {
            Err(CardKindError::NotTemporary(card.uuid, t))
        }
        T::Duplicate | T::TemporaryCards if card.temporary => {
            Err(CardKindError::Temporary(card.uuid, t))
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
    pub card: crate::SmartcardId,
    pub version: i64,
    /// The status read (what a notification says it changed from).
    pub from: SmartcardStatus,
    pub to: SmartcardStatus,
}

impl SmartcardChange {
    pub fn guard(c: &SmartcardState) -> Self {
        SmartcardChange {
            card: c.uuid,
            version: c.version,
            from: c.status,
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
            from: c.status,
            to,
        })
    }
}

/// The operations (lowercase MIM names) `caller` may start now on a card in `card` status whose
/// profile in service is in `profile` status: the profile's operations, plus unblocking, that the
/// card's status allows too.
pub fn operations(
    template: &crate::template::ProfileTemplate,
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
        suspend_ok && super::service::may_start(*t, card)
    })
    .map(|(_, name)| name)
    .collect()
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
    fn a_temporary_card_past_its_expiry_reads_disabled() {
        use crate::Timestamp;
        let expires = Some(Timestamp::from_micros(1_000));
        let (before, at) = (Timestamp::from_micros(999), Timestamp::from_micros(1_000));
        for s in [Assigned, Active, Suspended] {
            assert_eq!(status_at(s, expires, before), s);
            assert_eq!(status_at(s, expires, at), Disabled);
            // A permanent card has no expiry.
            assert_eq!(status_at(s, None, at), s);
        }
        assert_eq!(status_at(Retired, expires, at), Retired);
        assert_eq!(status_at(Disabled, expires, at), Disabled);
    }

    #[test]
    fn temporary_card_requests_name_the_right_kind_of_card() {
        use RequestType as T;
        let card = |status, temporary| SmartcardState {
            uuid: crate::Guid::NIL.into(),
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
    fn numbers_and_names_match_spec() {
        let n: Vec<i64> = SmartcardStatus::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(n, vec![0, 1, 2, 3, 4, 6]);
        assert_eq!(SmartcardStatus::parse("assigned"), Some(Assigned));
        assert_eq!(SmartcardStatus::parse("6"), Some(Retired));
        assert_eq!(SmartcardStatus::parse(" Retired"), None);
        assert!(!Retired.is_live() && Disabled.is_live());
    }
}
