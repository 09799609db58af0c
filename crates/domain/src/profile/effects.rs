//! What a request does to the profiles it touches (docs/API.md, "The request lifecycle"), decided without IO from the current
//! state of those profiles. The same rules are checked when a request is created, when it
//! executes and when it completes, so a request made on an Active profile cannot run or complete
//! after that profile was revoked, suspended or superseded by someone else.
//!
//! Every decision returns the version of each profile it read; the store refuses the write if any
//! of them changed meanwhile, and the request is decided again from a fresh read.

use super::status::{ProfileEvent, ProfileStatus};
use super::{allowed_statuses, list_statuses};
use crate::enums::RequestType;
use crate::ids::{ProfileId, RequestId};
use crate::issued::{CertificateEvent, RevocationReason};
use crate::lifecycle::Outcome;

/// A profile as a decision reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileState {
    pub uuid: ProfileId,
    pub status: ProfileStatus,
    pub version: i64,
}

/// One profile a write touches: the version the decision was made on (the write is refused if the
/// profile changed since), and what changes. A change with `to` equal to the current status and no
/// certificate event only guards the decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileChange {
    pub profile: ProfileId,
    pub version: i64,
    /// The status read (what a notification says it changed from).
    pub from: ProfileStatus,
    pub to: ProfileStatus,
    /// Add the Superseded flag (a Renew replaced the profile).
    pub superseded: bool,
    pub certificates: Option<CertificateEvent>,
}

impl ProfileChange {
    /// Reads `p` and changes nothing: the write stands only if `p` is still as read.
    pub fn guard(p: &ProfileState) -> Self {
        ProfileChange {
            profile: p.uuid,
            version: p.version,
            from: p.status,
            to: p.status,
            superseded: false,
            certificates: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The profile is not (or no longer) in a status the request type acts on.
    #[error(
        "Profile {profile} is {status}; a {request_type} request needs it {}.",
        list_statuses(needs)
    )]
    State {
        profile: ProfileId,
        status: ProfileStatus,
        request_type: RequestType,
        needs: &'static [ProfileStatus],
    },
    /// The profile changed in a way the request cannot follow (e.g. a transition the profile's
    /// lifecycle refuses).
    #[error("Profile {profile} is {status}; it cannot be {verb} by this {request_type} request.")]
    Transition {
        profile: ProfileId,
        status: ProfileStatus,
        request_type: RequestType,
        verb: &'static str,
    },
    #[error("Request {request} has issued nothing yet: a {request_type} request is completed after its certificates were issued (POST certificatedata), or canceled or abandoned.")]
    NothingIssued {
        request: RequestId,
        request_type: RequestType,
    },
}

impl ProfileError {
    /// The profile's status the error is about (`None` for NothingIssued).
    pub fn status(&self) -> Option<ProfileStatus> {
        match self {
            ProfileError::State { status, .. } | ProfileError::Transition { status, .. } => {
                Some(*status)
            }
            ProfileError::NothingIssued { .. } => None,
        }
    }
}

/// The profile a request acts on must be in a status its type allows.
fn check(t: RequestType, p: &ProfileState) -> Result<(), ProfileError> {
    match allowed_statuses(t) {
        Some(needs) if !needs.contains(&p.status) => Err(ProfileError::State {
            profile: p.uuid,
            status: p.status,
            request_type: t,
            needs,
        }),
        _ => Ok(()),
    }
}

/// Whether a request of type `t` may be created, or run an execution step, on `old` (the existing
/// profile it acts on). Returns the guard the write must carry.
pub fn on_execution(
    t: RequestType,
    old: Option<&ProfileState>,
) -> Result<Option<ProfileChange>, ProfileError> {
    match old {
        Some(p) => check(t, p).map(|()| Some(ProfileChange::guard(p))),
        None => Ok(None),
    }
}

/// Completing an Enroll, Renew, Duplicate or Recover request that should have delivered
/// certificates and delivered none is refused.
pub fn ensure_issued(
    request: RequestId,
    t: RequestType,
    issues_certificates: bool,
    delivered: bool,
) -> Result<(), ProfileError> {
    let must = matches!(
        t,
        RequestType::Enroll
            | RequestType::Renew
            | RequestType::OnlineUpdate
            | RequestType::Duplicate
            | RequestType::Recover
            | RequestType::RecoverOnBehalf
    );
    if must && issues_certificates && !delivered {
        return Err(ProfileError::NothingIssued {
            request,
            request_type: t,
        });
    }
    Ok(())
}

/// What completing, canceling or abandoning a request of type `t` does to `old` (the existing
/// profile it acts on) and `new` (the profile it created), each as read now.
///
/// Completed: Enroll/Duplicate/TemporaryCards activate the new profile; Renew and OnlineUpdate
/// activate the new one and supersede the old (Retired, Superseded flag, certificates revoked as
/// superseded); Revoke (and TemporaryCardDisable) disables and revokes; Retire (and
/// TemporaryCardRetire) retires and revokes (cessationOfOperation); Suspend holds the certificates
/// and Reinstate releases them; the others change nothing but still need the profile in a status
/// they act on. Canceled/Abandoned: a profile the request created is disabled and its
/// certificates revoked; a profile it acted on in place is left as it was.
pub fn on_outcome(
    t: RequestType,
    outcome: Outcome,
    old: Option<&ProfileState>,
    new: Option<&ProfileState>,
) -> Result<Vec<ProfileChange>, ProfileError> {
    let change = |p: &ProfileState, event: ProfileEvent, certs: Option<CertificateEvent>| {
        let to = p.status.next(event).map_err(|_| ProfileError::Transition {
            profile: p.uuid,
            status: p.status,
            request_type: t,
            verb: event.verb(),
        })?;
        Ok(ProfileChange {
            profile: p.uuid,
            version: p.version,
            from: p.status,
            to,
            superseded: event == ProfileEvent::Supersede,
            certificates: certs,
        })
    };
    if outcome != Outcome::Completed {
        return match new {
            // Canceling is always possible: a created profile that cannot be disabled (there is
            // none today) is left as it is.
            Some(p) if p.status.next(ProfileEvent::Disable).is_err() => {
                Ok(vec![ProfileChange::guard(p)])
            }
            Some(p) => Ok(vec![change(
                p,
                ProfileEvent::Disable,
                Some(CertificateEvent::Revoke(
                    RevocationReason::CessationOfOperation,
                )),
            )?]),
            None => Ok(Vec::new()),
        };
    }
    if let Some(p) = old {
        check(t, p)?;
    }
    let mut out = Vec::new();
    match t {
        RequestType::Enroll | RequestType::Duplicate | RequestType::TemporaryCards => {
            if let Some(p) = old {
                out.push(ProfileChange::guard(p));
            }
            if let Some(n) = new {
                out.push(change(n, ProfileEvent::Activate, None)?);
            }
        }
        // OnlineUpdate brings a card up to its template's current version: a new profile with
        // new certificates on the same card, replacing the old one as a Renew does.
        RequestType::Renew | RequestType::OnlineUpdate => {
            if let Some(n) = new {
                out.push(change(n, ProfileEvent::Activate, None)?);
            }
            if let Some(p) = old {
                out.push(change(
                    p,
                    ProfileEvent::Supersede,
                    Some(CertificateEvent::Revoke(RevocationReason::Superseded)),
                )?);
            }
        }
        RequestType::Revoke | RequestType::TemporaryCardDisable => {
            if let Some(p) = old {
                out.push(change(
                    p,
                    ProfileEvent::Disable,
                    Some(CertificateEvent::Revoke(RevocationReason::Unspecified)),
                )?);
            }
        }
        RequestType::Retire | RequestType::TemporaryCardRetire => {
            if let Some(p) = old {
                out.push(change(
                    p,
                    ProfileEvent::Retire,
                    Some(CertificateEvent::Revoke(
                        RevocationReason::CessationOfOperation,
                    )),
                )?);
            }
        }
        RequestType::SuspendOrReinstate => {
            if let Some(p) = old {
                out.push(match p.status {
                    ProfileStatus::Suspended => {
                        change(p, ProfileEvent::Reinstate, Some(CertificateEvent::Release))?
                    }
                    _ => change(p, ProfileEvent::Suspend, Some(CertificateEvent::Hold))?,
                });
            }
        }
        RequestType::Recover
        | RequestType::RecoverOnBehalf
        | RequestType::Unblock
        | RequestType::OfflineUnblock => {
            if let Some(p) = old {
                out.push(ProfileChange::guard(p));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Guid;
    use ProfileStatus::*;

    fn p(status: ProfileStatus) -> ProfileState {
        ProfileState {
            uuid: Guid::new_random().into(),
            status,
            version: 7,
        }
    }

    /// What Completed does to the profile a request acts on, for every in-place type and
    /// every status it may find the profile in. `Err` names the status in the code.
    #[test]
    fn completion_table_for_requests_on_an_existing_profile() {
        use RequestType as T;
        let hold = Some(CertificateEvent::Hold);
        let release = Some(CertificateEvent::Release);
        let revoke = |r| Some(CertificateEvent::Revoke(r));
        #[rustfmt::skip]
        type Expected = Result<(ProfileStatus, Option<CertificateEvent>), ProfileStatus>;
        let table: &[(RequestType, ProfileStatus, Expected)] = &[
            (
                T::Revoke,
                Active,
                Ok((Disabled, revoke(RevocationReason::Unspecified))),
            ),
            (
                T::Revoke,
                Suspended,
                Ok((Disabled, revoke(RevocationReason::Unspecified))),
            ),
            (T::Revoke, Disabled, Err(Disabled)),
            (T::Revoke, Retired, Err(Retired)),
            (
                T::Retire,
                Active,
                Ok((Retired, revoke(RevocationReason::CessationOfOperation))),
            ),
            (
                T::Retire,
                Disabled,
                Ok((Retired, revoke(RevocationReason::CessationOfOperation))),
            ),
            (T::Retire, Retired, Err(Retired)),
            (T::SuspendOrReinstate, Active, Ok((Suspended, hold))),
            (T::SuspendOrReinstate, Suspended, Ok((Active, release))),
            (T::SuspendOrReinstate, Disabled, Err(Disabled)),
            (T::SuspendOrReinstate, Retired, Err(Retired)),
            (T::Recover, Active, Ok((Active, None))),
            (T::Recover, Disabled, Err(Disabled)),
            (T::Unblock, Suspended, Err(Suspended)),
            (
                T::Renew,
                Active,
                Ok((Retired, revoke(RevocationReason::Superseded))),
            ),
            (T::Renew, Disabled, Err(Disabled)),
            (T::Renew, Retired, Err(Retired)),
            (T::Renew, Suspended, Err(Suspended)),
            (
                T::OnlineUpdate,
                Active,
                Ok((Retired, revoke(RevocationReason::Superseded))),
            ),
            (T::OnlineUpdate, Suspended, Err(Suspended)),
            (
                T::TemporaryCardDisable,
                Active,
                Ok((Disabled, revoke(RevocationReason::Unspecified))),
            ),
            (T::TemporaryCardDisable, Disabled, Err(Disabled)),
            (
                T::TemporaryCardRetire,
                Suspended,
                Ok((Retired, revoke(RevocationReason::CessationOfOperation))),
            ),
            (
                T::TemporaryCardRetire,
                Disabled,
                Ok((Retired, revoke(RevocationReason::CessationOfOperation))),
            ),
            (T::TemporaryCardRetire, Retired, Err(Retired)),
        ];
        for (t, status, expected) in table {
            let old = p(*status);
            let got = on_outcome(*t, Outcome::Completed, Some(&old), None);
            match (got, expected) {
                (Ok(changes), Ok((to, certs))) => {
                    let c = changes.iter().find(|c| c.profile == old.uuid).unwrap();
                    assert_eq!((c.to, c.certificates), (*to, *certs), "{t:?} on {status:?}");
                    assert_eq!(c.version, 7, "the write carries the version read");
                    assert_eq!(
                        c.superseded,
                        matches!(t, T::Renew | T::OnlineUpdate),
                        "{t:?}"
                    );
                }
                (Err(e), Err(refused)) => {
                    assert_eq!(e.status(), Some(*refused), "{t:?} on {status:?}: {e}")
                }
                (got, _) => panic!("{t:?} on {status:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn completion_activates_the_profile_the_request_created() {
        for t in [
            RequestType::Enroll,
            RequestType::Renew,
            RequestType::Duplicate,
        ] {
            let old = p(Active);
            let new = p(New);
            let old_ref = (t != RequestType::Enroll).then_some(&old);
            let changes = on_outcome(t, Outcome::Completed, old_ref, Some(&new)).unwrap();
            let c = changes.iter().find(|c| c.profile == new.uuid).unwrap();
            assert_eq!(c.to, Active, "{t:?}");
        }
    }

    #[test]
    fn cancel_and_abandon_disable_what_the_request_created_and_leave_the_rest() {
        for outcome in [Outcome::Canceled, Outcome::Abandoned] {
            let (old, new) = (p(Active), p(New));
            let changes = on_outcome(RequestType::Renew, outcome, Some(&old), Some(&new)).unwrap();
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].profile, new.uuid);
            assert_eq!(changes[0].to, Disabled);
            assert_eq!(
                changes[0].certificates,
                Some(CertificateEvent::Revoke(
                    RevocationReason::CessationOfOperation
                ))
            );
            // In place: nothing changes, whatever the profile's status.
            let retired = p(Retired);
            assert!(
                on_outcome(RequestType::Revoke, outcome, Some(&retired), None)
                    .unwrap()
                    .is_empty()
            );
        }
    }

    #[test]
    fn execution_rechecks_the_profile_and_guards_its_version() {
        let active = p(Active);
        let g = on_execution(RequestType::Renew, Some(&active))
            .unwrap()
            .unwrap();
        assert_eq!((g.version, g.to, g.certificates), (7, Active, None));
        let e = on_execution(RequestType::Renew, Some(&p(Disabled))).unwrap_err();
        assert_eq!(e.status(), Some(Disabled));
        assert!(e
            .to_string()
            .contains("is Disabled; a Renew request needs it Active"));
        assert_eq!(on_execution(RequestType::Enroll, None), Ok(None));
    }

    #[test]
    fn completing_without_certificates_is_refused_where_some_were_due() {
        let id = crate::RequestId::from_guid(Guid::new_random());
        let e = ensure_issued(id, RequestType::Enroll, true, false).unwrap_err();
        assert!(matches!(e, ProfileError::NothingIssued { .. }), "{e}");
        assert!(ensure_issued(id, RequestType::Enroll, true, true).is_ok());
        assert!(ensure_issued(id, RequestType::Enroll, false, false).is_ok());
        assert!(ensure_issued(id, RequestType::Revoke, true, false).is_ok());
        assert!(ensure_issued(id, RequestType::Recover, true, false).is_err());
        assert!(ensure_issued(id, RequestType::OnlineUpdate, true, false).is_err());
    }
}
