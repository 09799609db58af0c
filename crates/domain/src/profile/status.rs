//! The profile lifecycle as a typed state machine, like `RequestStatus::next`.
//!
//! `ProfileStatus::next` is the only place that decides whether something may happen to a profile
//! in its current status. A Disabled (revoked) profile can only be retired; a Retired one never
//! changes again. The full table is tested below.

use std::fmt;

/// Profile `Status` (docs/API.md, "Enumerations"). `Assigned` (1) exists for smart cards only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileStatus {
    New,
    Active,
    Disabled,
    Suspended,
    Retired,
}

impl ProfileStatus {
    pub const ALL: [ProfileStatus; 5] = [
        ProfileStatus::New,
        ProfileStatus::Active,
        ProfileStatus::Disabled,
        ProfileStatus::Suspended,
        ProfileStatus::Retired,
    ];

    pub fn number(self) -> i64 {
        match self {
            ProfileStatus::New => 0,
            ProfileStatus::Active => 2,
            ProfileStatus::Disabled => 3,
            ProfileStatus::Suspended => 4,
            ProfileStatus::Retired => 6,
        }
    }

    pub fn from_number(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.number() == n)
    }

    pub fn name(self) -> &'static str {
        match self {
            ProfileStatus::New => "New",
            ProfileStatus::Active => "Active",
            ProfileStatus::Disabled => "Disabled",
            ProfileStatus::Suspended => "Suspended",
            ProfileStatus::Retired => "Retired",
        }
    }

    /// A case-insensitive name, or the number as text (query strings: `status=Active`, `status=2`).
    pub fn parse(s: &str) -> Option<Self> {
        crate::lifecycle::parse_status(s, &Self::ALL, Self::number, Self::name)
    }

    /// The status after `event`, or why it may not happen now.
    pub fn next(self, event: ProfileEvent) -> Result<ProfileStatus, ProfileTransitionError> {
        use ProfileEvent as E;
        use ProfileStatus::*;
        let to = match (self, event) {
            (New, E::Activate) => Active,
            // A profile whose request was canceled or abandoned never became Active.
            (New, E::Disable) => Disabled,
            (Active, E::Suspend) => Suspended,
            (Suspended, E::Reinstate) => Active,
            (Active | Suspended, E::Disable) => Disabled,
            (Active | Suspended | Disabled, E::Retire) => Retired,
            (Active, E::Supersede) => Retired,
            _ => return Err(ProfileTransitionError { from: self, event }),
        };
        Ok(to)
    }
}

impl fmt::Display for ProfileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something that happens to a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProfileEvent {
    /// Its Enroll, Duplicate or Renew request completed.
    Activate,
    Suspend,
    Reinstate,
    /// Revoked (MIM "Disable"), or its creating request was canceled or abandoned.
    Disable,
    Retire,
    /// A Renew replaced it: Retired, with the Superseded flag.
    Supersede,
}

impl ProfileEvent {
    pub fn verb(self) -> &'static str {
        match self {
            ProfileEvent::Activate => "activated",
            ProfileEvent::Suspend => "suspended",
            ProfileEvent::Reinstate => "reinstated",
            ProfileEvent::Disable => "disabled",
            ProfileEvent::Retire => "retired",
            ProfileEvent::Supersede => "superseded",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("The profile is {from}; it cannot be {} now.", event.verb())]
pub struct ProfileTransitionError {
    pub from: ProfileStatus,
    pub event: ProfileEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProfileStatus::*;

    #[test]
    fn transition_table() {
        use ProfileEvent as E;
        let events = [
            E::Activate,
            E::Suspend,
            E::Reinstate,
            E::Disable,
            E::Retire,
            E::Supersede,
        ];
        #[rustfmt::skip]
        let table: &[(ProfileStatus, [Option<ProfileStatus>; 6])] = &[
            //           activate      suspend          reinstate     disable         retire         supersede
            (New,       [Some(Active), None,            None,         Some(Disabled), None,          None]),
            (Active,    [None,         Some(Suspended), None,         Some(Disabled), Some(Retired), Some(Retired)]),
            (Suspended, [None,         None,            Some(Active), Some(Disabled), Some(Retired), None]),
            (Disabled,  [None,         None,            None,         None,           Some(Retired), None]),
            (Retired,   [None; 6]),
        ];
        assert_eq!(table.len(), ProfileStatus::ALL.len());
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
    fn a_revoked_or_retired_profile_never_becomes_active_again() {
        for s in [Disabled, Retired] {
            for e in [ProfileEvent::Activate, ProfileEvent::Reinstate] {
                assert!(s.next(e).is_err());
            }
        }
    }

    #[test]
    fn numbers_and_names_match_spec() {
        let n: Vec<i64> = ProfileStatus::ALL.iter().map(|s| s.number()).collect();
        assert_eq!(n, vec![0, 2, 3, 4, 6]);
        assert_eq!(ProfileStatus::parse("retired"), Some(Retired));
        assert_eq!(ProfileStatus::parse("4"), Some(Suspended));
        assert_eq!(ProfileStatus::parse("1"), None, "Assigned is for cards");
    }
}
