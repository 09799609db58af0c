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
pub fn on_outcome(
    t: RequestType,
    outcome: Outcome,
    status: SmartcardStatus,
) -> Result<Option<SmartcardEvent>, SmartcardTransitionError> {
    use RequestType as T;
    use SmartcardEvent as E;
    let event = match (t, outcome) {
        // A card bound for a new profile goes into service, or — when its request never
        // finished — out of it (a reusable card id can then be bound again).
        (T::Enroll | T::Duplicate | T::TemporaryCards | T::Renew, Outcome::Completed) => {
            (status == SmartcardStatus::Assigned).then_some(E::Activate)
        }
        (T::Enroll | T::Duplicate | T::TemporaryCards | T::Renew, _) => {
            (status == SmartcardStatus::Assigned).then_some(E::Retire)
        }
        (_, Outcome::Canceled | Outcome::Abandoned) => None,
        (T::Revoke | T::TemporaryCardDisable, Outcome::Completed) => Some(E::Disable),
        (T::Retire | T::TemporaryCardRetire, Outcome::Completed) => Some(E::Retire),
        (T::SuspendOrReinstate, Outcome::Completed) => Some(match status {
            SmartcardStatus::Suspended => E::Reinstate,
            _ => E::Suspend,
        }),
        // Unblock, OfflineUnblock, OnlineUpdate, Recover: the card stays, and must be in service.
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
                on_outcome(*t, *o, *s).map_err(|_| ()),
                *want,
                "{t:?} {o:?} on {s:?}"
            );
        }
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
