//! Rules about existing profiles: which operations a caller may start on one now.

use crate::enums::{profile_status, RequestType};
use crate::identity::Principal;
use crate::policy::ProfileTemplate;
use crate::request::rights;
use crate::sddl::access_check;

/// MIM's lowercase operation names, in the order MIM lists them.
const OPERATIONS: &[(RequestType, &str, &[i64])] = &[
    (RequestType::Renew, "renew", &[profile_status::ACTIVE]),
    (
        RequestType::Revoke,
        "disable",
        &[profile_status::ACTIVE, profile_status::SUSPENDED],
    ),
    (RequestType::Recover, "recover", &[profile_status::ACTIVE]),
    (
        RequestType::Retire,
        "retire",
        &[
            profile_status::ACTIVE,
            profile_status::SUSPENDED,
            profile_status::DISABLED,
        ],
    ),
    (
        RequestType::SuspendOrReinstate,
        "suspend",
        &[profile_status::ACTIVE],
    ),
    (
        RequestType::SuspendOrReinstate,
        "reinstate",
        &[profile_status::SUSPENDED],
    ),
    (
        RequestType::Duplicate,
        "duplicate",
        &[profile_status::ACTIVE],
    ),
    (
        RequestType::OnlineUpdate,
        "onlineupdate",
        &[profile_status::ACTIVE],
    ),
];

/// The operations `caller` may start now on a profile in `status` assigned to `assigned_to`: the
/// template's policy for the type is enabled, the profile's status allows it, and the caller may
/// initiate it (self-service for their own profile, or the initiator role).
pub fn operations(
    template: &ProfileTemplate,
    status: i64,
    caller: &Principal,
    assigned_to_caller: bool,
) -> Vec<&'static str> {
    let sids = caller.token_sids();
    OPERATIONS
        .iter()
        .filter(|(t, _, allowed)| {
            allowed.contains(&status)
                && template.policy(*t).is_some_and(|p| {
                    p.enabled
                        && ((assigned_to_caller && p.self_service_enabled)
                            || access_check(&p.authorized_initiator, &sids, rights::ROLE)
                                .is_granted())
                })
        })
        .map(|(_, name, _)| *name)
        .collect()
}

/// Which request types act on an existing profile, and from which statuses.
pub fn allowed_statuses(t: RequestType) -> Option<&'static [i64]> {
    use profile_status::*;
    match t {
        RequestType::Enroll | RequestType::TemporaryCards => None,
        RequestType::Renew
        | RequestType::Recover
        | RequestType::RecoverOnBehalf
        | RequestType::Duplicate
        | RequestType::OnlineUpdate => Some(&[ACTIVE]),
        RequestType::Revoke => Some(&[ACTIVE, SUSPENDED]),
        RequestType::Retire => Some(&[ACTIVE, SUSPENDED, DISABLED]),
        RequestType::SuspendOrReinstate => Some(&[ACTIVE, SUSPENDED]),
        RequestType::Unblock | RequestType::OfflineUnblock => Some(&[ACTIVE]),
        RequestType::TemporaryCardDisable | RequestType::TemporaryCardRetire => {
            Some(&[ACTIVE, SUSPENDED])
        }
    }
}

/// Why a request of type `t` may not be made on a profile in `status`, if it may not.
pub fn check_applies(t: RequestType, status: i64) -> Result<(), String> {
    let name = |s: i64| {
        profile_status::NAMES
            .iter()
            .find(|(_, v)| *v == s)
            .map_or("unknown", |(n, _)| n)
    };
    match allowed_statuses(t) {
        None => Err(format!(
            "{t} requests create a new profile; do not name an existing one"
        )),
        Some(ok) if ok.contains(&status) => Ok(()),
        Some(ok) => Err(format!(
            "The profile is {}; a {t} request needs it {}.",
            name(status),
            ok.iter().map(|s| name(*s)).collect::<Vec<_>>().join(" or ")
        )),
    }
}
