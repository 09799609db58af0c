//! Software profiles (MIM "Profile"): their lifecycle (`status`), what each request type does to
//! them (`effects`), and which operations a caller may start on one now.

mod effects;
mod record;
mod status;

pub use effects::{
    ensure_issued, on_execution, on_outcome, ProfileChange, ProfileError, ProfileState,
};
pub use record::ProfileRecord;
pub use status::{ProfileEvent, ProfileStatus, ProfileTransitionError};

use crate::enums::RequestType;
use crate::identity::Principal;
use crate::template::ProfileTemplate;
use ProfileStatus::{Active, Disabled, Suspended};

/// MIM's lowercase operation names, in the order MIM lists them, with the statuses each may start
/// from (Suspend and Reinstate share request type 9; the profile's status says which it is).
const OPERATIONS: &[(RequestType, &str, &[ProfileStatus])] = &[
    (RequestType::Renew, "renew", &[Active]),
    (RequestType::Revoke, "disable", &[Active, Suspended]),
    (RequestType::Recover, "recover", &[Active]),
    (
        RequestType::Retire,
        "retire",
        &[Active, Suspended, Disabled],
    ),
    (RequestType::SuspendOrReinstate, "suspend", &[Active]),
    (RequestType::SuspendOrReinstate, "reinstate", &[Suspended]),
    (RequestType::Duplicate, "duplicate", &[Active]),
    (RequestType::OnlineUpdate, "onlineupdate", &[Active]),
];

/// The operations `caller` may start now on a profile in `status` assigned to `assigned_to`: the
/// template's policy for the type is enabled, the profile's status allows it, and the caller may
/// initiate it (self-service for their own profile, or the initiator role).
pub fn operations(
    template: &ProfileTemplate,
    status: ProfileStatus,
    caller: &Principal,
    assigned_to_caller: bool,
) -> Vec<&'static str> {
    operations_from(OPERATIONS, template, status, caller, assigned_to_caller)
        .into_iter()
        .map(|(_, name)| name)
        .collect()
}

/// The entries of `list` a caller may start now on a profile in `status` (see `operations`).
pub(crate) fn operations_from(
    list: &[(RequestType, &'static str, &[ProfileStatus])],
    template: &ProfileTemplate,
    status: ProfileStatus,
    caller: &Principal,
    assigned_to_caller: bool,
) -> Vec<(RequestType, &'static str)> {
    let sids = caller.token_sids();
    list.iter()
        .filter(|(t, _, allowed)| {
            allowed.contains(&status)
                && template.policy(*t).is_some_and(|p| {
                    p.enabled
                        && ((assigned_to_caller && p.self_service_enabled) || p.is_initiator(&sids))
                })
        })
        .map(|(t, name, _)| (*t, *name))
        .collect()
}

/// The operations on a card's profile: those of a software profile, and unblocking.
/// MIM lists unblocking right after renewal (the published `/smartcards/{id}/operations`).
pub(crate) const CARD_OPERATIONS: &[(RequestType, &str, &[ProfileStatus])] = &[
    OPERATIONS[0],
    (RequestType::Unblock, "unblock", &[Active]),
    (RequestType::OfflineUnblock, "offlineunblock", &[Active]),
    OPERATIONS[1],
    OPERATIONS[2],
    OPERATIONS[3],
    OPERATIONS[4],
    OPERATIONS[5],
    OPERATIONS[6],
    OPERATIONS[7],
];

/// Which request types act on an existing profile, and the statuses it must be in — when the
/// request is created, when it executes and when it completes. `None`: the type creates a profile.
pub fn allowed_statuses(t: RequestType) -> Option<&'static [ProfileStatus]> {
    match t {
        RequestType::Enroll | RequestType::TemporaryCards => None,
        RequestType::Renew
        | RequestType::Recover
        | RequestType::RecoverOnBehalf
        | RequestType::Duplicate
        | RequestType::OnlineUpdate
        | RequestType::Unblock
        | RequestType::OfflineUnblock => Some(&[Active]),
        RequestType::Revoke
        | RequestType::SuspendOrReinstate
        | RequestType::TemporaryCardDisable => Some(&[Active, Suspended]),
        RequestType::Retire | RequestType::TemporaryCardRetire => {
            Some(&[Active, Suspended, Disabled])
        }
    }
}

/// "Active or Suspended", for messages.
pub(crate) fn list_statuses(statuses: &[ProfileStatus]) -> String {
    let names: Vec<&str> = statuses.iter().map(|s| s.name()).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.join(""),
    }
}
