//! The request lifecycle as a typed state machine (docs/API.md, "The request lifecycle").
//!
//! `RequestStatus::next` is the only place that decides whether an event may happen in a status;
//! handlers and the store never compare statuses themselves. The full table is tested below.

use crate::enums::RequestStatus;
use std::fmt;

/// Something that happens to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// An approval; `last` when it is the final one the policy needs.
    Approve {
        last: bool,
    },
    Deny,
    /// An execution step (card bind, certificate data) has started.
    BeginExecution,
    Complete,
    Cancel,
    Abandon,
}

impl Event {
    pub fn verb(self) -> &'static str {
        match self {
            Event::Approve { .. } => "approved",
            Event::Deny => "denied",
            Event::BeginExecution => "executed",
            Event::Complete => "completed",
            Event::Cancel => "canceled",
            Event::Abandon => "abandoned",
        }
    }

    /// Statuses from which the event is allowed, for error messages.
    pub fn allowed_from(self) -> &'static [RequestStatus] {
        use RequestStatus::*;
        match self {
            Event::Approve { .. } | Event::Deny => &[Pending],
            Event::BeginExecution => &[Approved, Executing],
            Event::Complete | Event::Abandon => &[Approved, Executing],
            Event::Cancel => &[Pending, Approved, Executing],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TransitionError {
    pub from: RequestStatus,
    pub event: Event,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed: Vec<&str> = self.event.allowed_from().iter().map(|s| s.name()).collect();
        let list = match allowed.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => allowed.join(""),
        };
        write!(
            f,
            "The request is {}; it can be {} only when it is {list}.",
            self.from,
            self.event.verb()
        )
    }
}

impl RequestStatus {
    /// The status after `event`, or why the event is not allowed now.
    pub fn next(self, event: Event) -> Result<RequestStatus, TransitionError> {
        use RequestStatus::*;
        let to = match (self, event) {
            (Pending, Event::Approve { last: false }) => Pending,
            (Pending, Event::Approve { last: true }) => Approved,
            (Pending, Event::Deny) => Denied,
            (Approved | Executing, Event::BeginExecution) => Executing,
            (Approved | Executing, Event::Complete) => Completed,
            (Pending | Approved | Executing, Event::Cancel) => Canceled,
            (Approved | Executing, Event::Abandon) => Failed,
            _ => return Err(TransitionError { from: self, event }),
        };
        Ok(to)
    }
}

/// What `PUT /requests/{id}` may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Completed,
    Canceled,
    Abandoned,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Completed, Outcome::Canceled, Outcome::Abandoned];

    pub fn parse(s: &str) -> Option<Outcome> {
        Self::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(s))
    }

    /// The verb recorded in the audit trail.
    pub fn action(self) -> &'static str {
        match self {
            Outcome::Completed => "Complete",
            Outcome::Canceled => "Cancel",
            Outcome::Abandoned => "Abandon",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Completed => "Completed",
            Outcome::Canceled => "Canceled",
            Outcome::Abandoned => "Abandoned",
        }
    }

    pub fn event(self) -> Event {
        match self {
            Outcome::Completed => Event::Complete,
            Outcome::Canceled => Event::Cancel,
            Outcome::Abandoned => Event::Abandon,
        }
    }

    /// The status a request ends in (Abandoned ends as Failed, docs/API.md, "Enumerations").
    pub fn final_status(self) -> RequestStatus {
        match self {
            Outcome::Completed => RequestStatus::Completed,
            Outcome::Canceled => RequestStatus::Canceled,
            Outcome::Abandoned => RequestStatus::Failed,
        }
    }
}

/// A status given as a case-insensitive name (not trimmed) or as its number in text — how query
/// strings and bodies name profile and smart card statuses (`status=Active`, `status=2`).
pub fn parse_status<T: Copy>(
    s: &str,
    all: &[T],
    number: fn(T) -> i64,
    name: fn(T) -> &'static str,
) -> Option<T> {
    match s.parse::<i64>() {
        Ok(n) => all.iter().copied().find(|x| number(*x) == n),
        Err(_) => all
            .iter()
            .copied()
            .find(|x| name(*x).eq_ignore_ascii_case(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    /// The whole transition table: every status × every event. `None` means refused.
    #[test]
    fn transition_table() {
        let events = [
            Event::Approve { last: false },
            Event::Approve { last: true },
            Event::Deny,
            Event::BeginExecution,
            Event::Complete,
            Event::Cancel,
            Event::Abandon,
        ];
        #[rustfmt::skip]
        let table: &[(RequestStatus, [Option<RequestStatus>; 7])] = &[
            //            approve      approve-last    deny          execute          complete         cancel          abandon
            (None,      [Option::None, Option::None, Option::None, Option::None,    Option::None,    Option::None,   Option::None]),
            (Pending,   [Some(Pending), Some(Approved), Some(Denied), Option::None, Option::None,    Some(Canceled), Option::None]),
            (Approved,  [Option::None, Option::None, Option::None, Some(Executing), Some(Completed), Some(Canceled), Some(Failed)]),
            (Executing, [Option::None, Option::None, Option::None, Some(Executing), Some(Completed), Some(Canceled), Some(Failed)]),
            (Denied,    [Option::None; 7]),
            (Completed, [Option::None; 7]),
            (Failed,    [Option::None; 7]),
            (Canceled,  [Option::None; 7]),
        ];
        assert_eq!(table.len(), RequestStatus::ALL.len());
        for (from, row) in table {
            for (event, expected) in events.iter().zip(row) {
                let got = from.next(*event).ok();
                assert_eq!(got, *expected, "{from:?} + {event:?}");
                if got.is_none() {
                    let err = from.next(*event).unwrap_err();
                    assert!(err.to_string().contains(from.name()));
                }
            }
        }
    }

    #[test]
    fn outcomes_end_in_the_spec_numbers() {
        assert_eq!(Outcome::Completed.final_status().number(), 8);
        assert_eq!(Outcome::Canceled.final_status().number(), 17);
        assert_eq!(Outcome::Abandoned.final_status().number(), 9);
        assert_eq!(Outcome::parse("abandoned"), Some(Outcome::Abandoned));
        assert_eq!(Outcome::parse("Failed"), Option::None);
    }

    #[test]
    fn error_names_the_current_state_and_allowed_ones() {
        let e = Pending.next(Event::Complete).unwrap_err();
        assert_eq!(
            e.to_string(),
            "The request is Pending; it can be completed only when it is Approved or Executing."
        );
    }
}
