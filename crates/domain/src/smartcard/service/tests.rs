//! The card rules as tables: every request type × outcome × card status × profile status, what
//! happens to the card and the profile on it (and so to its certificates), and which secrets may
//! be released — first as invariants over the whole cross product, then row by row for the cases
//! an operator meets.

use super::*;
use crate::issued::{CertificateEvent, RevocationReason};
use crate::ProfileId;
use RequestType as T;
use SmartcardStatus as S;

const REQ: RequestId = RequestId::from_guid(Guid::from_u128(0x0100));
const OWN: SmartcardId = SmartcardId::from_guid(Guid::from_u128(0x0200));
const SOURCE: SmartcardId = SmartcardId::from_guid(Guid::from_u128(0x0300));
const OLD_P: ProfileId = ProfileId::from_guid(Guid::from_u128(0x0400));
const NEW_P: ProfileId = ProfileId::from_guid(Guid::from_u128(0x0500));

fn card(uuid: SmartcardId, status: SmartcardStatus) -> SmartcardState {
    SmartcardState {
        uuid,
        status,
        version: 7,
        temporary: false,
    }
}

fn prof(uuid: ProfileId, status: ProfileStatus) -> ProfileState {
    ProfileState {
        uuid,
        status,
        version: 3,
    }
}

/// A request of type `t` on its own card in `own` (`None`: not bound), made from an Active
/// source card when the type makes a card from one; `set_during`: the request set the card's
/// status, and the card is still as it set it.
fn cards(t: RequestType, own: Option<SmartcardStatus>, set_during: bool) -> RequestCards {
    let makes = matches!(t, T::Enroll | T::Duplicate | T::TemporaryCards);
    RequestCards {
        request_type: t,
        makes,
        own: own.map(|s| card(OWN, s)),
        source: matches!(t, T::Duplicate | T::TemporaryCards).then(|| card(SOURCE, S::Active)),
        set_during: own.filter(|_| set_during),
        pending: Vec::new(),
    }
}

const OUTCOMES: [Outcome; 3] = [Outcome::Completed, Outcome::Canceled, Outcome::Abandoned];

/// A card's status after `changes`, or as it was.
fn card_after(changes: &[SmartcardChange], c: &SmartcardState) -> SmartcardStatus {
    changes
        .iter()
        .rev()
        .find(|x| x.card == c.uuid)
        .map_or(c.status, |x| x.to)
}

fn profile_after(changes: &[ProfileChange], p: &ProfileState) -> ProfileStatus {
    changes
        .iter()
        .rev()
        .find(|x| x.profile == p.uuid)
        .map_or(p.status, |x| x.to)
}

fn profile_depth(s: ProfileStatus) -> u8 {
    depth(s)
}

fn card_depth(s: SmartcardStatus) -> u8 {
    match s {
        S::New | S::Assigned | S::Active => 0,
        S::Suspended => 1,
        S::Disabled => 2,
        S::Retired => 3,
    }
}

/// The profile that lives on the own card: the one the request made, or the one it acts on.
fn on_card<'a>(
    c: &RequestCards,
    old: Option<&'a ProfileState>,
    new: Option<&'a ProfileState>,
) -> Option<&'a ProfileState> {
    if c.makes {
        new
    } else {
        old
    }
}

/// Whether a card and the profile on it agree, as every request leaves them: a card being made
/// holds a New profile; a card in service an Active one; a card out of service a profile as far
/// out; and a reinstatement set during execution has a Suspended profile on an Active card until
/// it completes.
fn agree(c: &RequestCards, card: SmartcardStatus, p: ProfileStatus) -> bool {
    if c.makes {
        return p == ProfileStatus::New;
    }
    let reinstating = c.request_type == T::SuspendOrReinstate
        && c.set_during == Some(S::Active)
        && card == S::Active
        && p == ProfileStatus::Suspended;
    reinstating
        || (card_depth(card) == profile_depth(p)
            && !matches!(card, S::New | S::Assigned)
            && p != ProfileStatus::New)
}

#[test]
fn no_ending_leaves_a_card_out_of_service_with_its_profile_in_service() {
    let mut checked = 0;
    for t in RequestType::ALL {
        for own in std::iter::once(None).chain(S::ALL.map(Some)) {
            for set_during in std::iter::once(None).chain(S::ALL.map(Some)) {
                for ps in ProfileStatus::ALL {
                    for outcome in OUTCOMES {
                        let c = RequestCards {
                            set_during,
                            ..cards(t, own, false)
                        };
                        // A renewal or online update on the same card made a new profile
                        // beside the one it replaces.
                        let replaces = matches!(t, T::Renew | T::OnlineUpdate);
                        let (old, new) = if c.makes {
                            (None, Some(prof(NEW_P, ps)))
                        } else if replaces {
                            (Some(prof(OLD_P, ps)), Some(prof(NEW_P, ProfileStatus::New)))
                        } else {
                            (Some(prof(OLD_P, ps)), None)
                        };
                        let got = c.finish(REQ, outcome, old.as_ref(), new.as_ref(), true);
                        let ctx = format!(
                            "{t:?} own {own:?} set {set_during:?} profile {ps:?} {outcome:?}: {got:?}"
                        );
                        if outcome != Outcome::Completed {
                            assert!(got.is_ok(), "canceling is always possible: {ctx}");
                        }
                        let (Ok(e), Some(own)) = (&got, &c.own) else {
                            continue;
                        };
                        let Some(before) = on_card(&c, old.as_ref(), new.as_ref()) else {
                            continue;
                        };
                        // Invariants hold from states in which card and profile agree.
                        if !agree(&c, own.status, before.status) {
                            continue;
                        }
                        checked += 1;
                        let p = match (&new, outcome) {
                            (Some(n), Outcome::Completed) if replaces => n,
                            _ => before,
                        };
                        let card_to = card_after(&e.cards, own);
                        let p_to = profile_after(&e.profiles, p);
                        // The profile is at least as far out of service as its card: a
                        // suspended card's certificates are held or revoked, a disabled or
                        // retired card's revoked.
                        if card_depth(card_to) > 0 {
                            assert!(
                                profile_depth(p_to) >= card_depth(card_to).min(2),
                                "card {card_to:?} but profile {p_to:?}: {ctx}"
                            );
                        }
                        if outcome == Outcome::Completed {
                            // What completing does to the card, by what the request does to it.
                            let want = match c.work_on(own.status) {
                                CardWork::Makes | CardWork::Keeps | CardWork::Reinstates => {
                                    S::Active
                                }
                                CardWork::Ends(ev) => ends_in(ev),
                            };
                            assert_eq!(card_to, want, "{ctx}");
                            if card_to == S::Active {
                                assert_eq!(p_to, ProfileStatus::Active, "{ctx}");
                            }
                        } else if c.makes {
                            assert_eq!(card_to, S::Retired, "an unfinished card is retired: {ctx}");
                        } else if card_depth(own.status) > 0 && c.still_as_set() {
                            // Out of service by this request's hand: it stays out.
                            assert!(card_depth(card_to) >= card_depth(own.status), "{ctx}");
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 500, "{checked}");
}

#[test]
fn no_secret_leaves_for_a_card_out_of_service_nor_a_pin_to_a_request_that_sets_none() {
    for t in RequestType::ALL {
        for own in S::ALL {
            for set_during in [false, true] {
                for source in [S::Active, S::Suspended, S::Disabled, S::Retired] {
                    let mut c = cards(t, Some(own), set_during);
                    if c.source.is_some() {
                        c.source = Some(card(SOURCE, source));
                    }
                    for secret in CardSecret::ALL {
                        let got = c.release(REQ, OWN, secret);
                        let ctx = format!(
                            "{t:?} {own:?} set {set_during} source {source:?} {secret:?}: {got:?}"
                        );
                        if got.is_ok() {
                            assert!(matches!(own, S::Assigned | S::Active), "{ctx}");
                            assert!(c.source.is_none_or(|s| s.status == S::Active), "{ctx}");
                            if matches!(secret, CardSecret::Puk | CardSecret::Pin) {
                                assert!(
                                    c.makes || matches!(t, T::Unblock | T::OfflineUnblock),
                                    "{ctx}"
                                );
                            }
                        }
                        // Never a secret of the card a request only copies.
                        assert!(
                            matches!(
                                c.release(REQ, SOURCE, secret),
                                Err(CardRuleError::NotOwnCard { .. })
                            ),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn which_secrets_each_request_type_gets() {
    use CardSecret::*;
    // (type, own card status, secrets released)
    let rows: &[(RequestType, SmartcardStatus, &[CardSecret])] = &[
        (
            T::Enroll,
            S::Assigned,
            &[AdminKey, ChallengeResponse, Puk, Pin],
        ),
        (
            T::TemporaryCards,
            S::Assigned,
            &[AdminKey, ChallengeResponse, Puk, Pin],
        ),
        (
            T::Duplicate,
            S::Assigned,
            &[AdminKey, ChallengeResponse, Puk, Pin],
        ),
        (
            T::Unblock,
            S::Active,
            &[AdminKey, ChallengeResponse, Puk, Pin],
        ),
        (
            T::OfflineUnblock,
            S::Active,
            &[AdminKey, ChallengeResponse, Puk, Pin],
        ),
        (T::Renew, S::Active, &[AdminKey, ChallengeResponse]),
        (T::OnlineUpdate, S::Active, &[AdminKey, ChallengeResponse]),
        (T::Retire, S::Active, &[AdminKey, ChallengeResponse]),
        (T::Revoke, S::Active, &[AdminKey, ChallengeResponse]),
        (
            T::SuspendOrReinstate,
            S::Active,
            &[AdminKey, ChallengeResponse],
        ),
        // Out of service: nothing.
        (T::SuspendOrReinstate, S::Suspended, &[]),
        (T::Retire, S::Disabled, &[]),
        (T::Unblock, S::Disabled, &[]),
        (T::Unblock, S::Retired, &[]),
        // A temporary card past its expiry reads Disabled.
        (T::TemporaryCards, S::Disabled, &[]),
    ];
    for (t, own, want) in rows {
        let c = cards(*t, Some(*own), false);
        let got: Vec<CardSecret> = CardSecret::ALL
            .into_iter()
            .filter(|s| c.release(REQ, OWN, *s).is_ok())
            .collect();
        assert_eq!(&got, want, "{t:?} on {own:?}");
    }
    // A Retire that has set its card Retired gets nothing more.
    let c = cards(T::Retire, Some(S::Retired), true);
    assert!(c.release(REQ, OWN, AdminKey).is_err());
    // A temporary card is not made while its permanent card is away.
    let mut c = cards(T::TemporaryCards, Some(S::Assigned), false);
    c.source = Some(card(SOURCE, S::Disabled));
    assert!(matches!(
        c.release(REQ, OWN, AdminKey),
        Err(CardRuleError::Source {
            status: S::Disabled,
            ..
        })
    ));
    // The executor of a TemporaryCards request never gets the permanent card's secrets.
    let c = cards(T::TemporaryCards, Some(S::Assigned), false);
    assert_eq!(
        c.release(REQ, SOURCE, AdminKey),
        Err(CardRuleError::NotOwnCard {
            card: SOURCE,
            request: REQ,
            copied: true
        })
    );
}

/// One row: type, own card status, set during, profile on the card, outcome → the card's and the
/// profile's status afterwards and what happens to the certificates, or the error's card status.
type Row = (
    RequestType,
    SmartcardStatus,
    bool,
    ProfileStatus,
    Outcome,
    Result<(SmartcardStatus, ProfileStatus, Option<CertificateEvent>), Option<SmartcardStatus>>,
);

#[test]
fn what_ending_does_to_the_card_and_its_profile() {
    use Outcome::{Abandoned, Canceled, Completed};
    use ProfileStatus as P;
    let revoke = |r| Some(CertificateEvent::Revoke(r));
    let cessation = revoke(RevocationReason::CessationOfOperation);
    let unspecified = revoke(RevocationReason::Unspecified);
    #[rustfmt::skip]
    let rows: &[Row] = &[
        // Enrolments: the card made goes into service, or out of it when the request ends early.
        (T::Enroll, S::Assigned, false, P::New, Completed, Ok((S::Active, P::Active, None))),
        (T::Enroll, S::Active, true, P::New, Completed, Ok((S::Active, P::Active, None))),
        (T::Enroll, S::Assigned, false, P::New, Canceled, Ok((S::Retired, P::Disabled, cessation))),
        (T::Enroll, S::Active, true, P::New, Abandoned, Ok((S::Retired, P::Disabled, cessation))),
        // An expired temporary card (read Disabled) does not complete; canceling retires it.
        (T::TemporaryCards, S::Disabled, false, P::New, Completed, Err(Some(S::Disabled))),
        (T::TemporaryCards, S::Disabled, false, P::New, Canceled, Ok((S::Retired, P::Disabled, cessation))),
        // Retire: completed, or set during execution and then canceled or abandoned — the card,
        // the profile and the certificates agree either way.
        (T::Retire, S::Active, false, P::Active, Completed, Ok((S::Retired, P::Retired, cessation))),
        (T::Retire, S::Retired, true, P::Retired, Completed, Ok((S::Retired, P::Retired, None))),
        (T::Retire, S::Retired, true, P::Retired, Canceled, Ok((S::Retired, P::Retired, None))),
        (T::Retire, S::Retired, true, P::Retired, Abandoned, Ok((S::Retired, P::Retired, None))),
        // A card left Retired by a set status before the profile followed: the profile follows now.
        (T::Retire, S::Retired, true, P::Active, Canceled, Ok((S::Retired, P::Retired, cessation))),
        (T::Retire, S::Active, false, P::Active, Canceled, Ok((S::Active, P::Active, None))),
        (T::Retire, S::Retired, false, P::Retired, Completed, Err(Some(S::Retired))),
        // Revoke.
        (T::Revoke, S::Active, false, P::Active, Completed, Ok((S::Disabled, P::Disabled, unspecified))),
        (T::Revoke, S::Disabled, true, P::Active, Abandoned, Ok((S::Disabled, P::Disabled, unspecified))),
        (T::Revoke, S::Disabled, true, P::Disabled, Canceled, Ok((S::Disabled, P::Disabled, None))),
        (T::Revoke, S::Disabled, false, P::Disabled, Completed, Err(Some(S::Disabled))),
        // Suspend and reinstate.
        (T::SuspendOrReinstate, S::Active, false, P::Active, Completed, Ok((S::Suspended, P::Suspended, Some(CertificateEvent::Hold)))),
        (T::SuspendOrReinstate, S::Suspended, true, P::Active, Canceled, Ok((S::Suspended, P::Suspended, Some(CertificateEvent::Hold)))),
        (T::SuspendOrReinstate, S::Suspended, true, P::Suspended, Completed, Ok((S::Suspended, P::Suspended, None))),
        (T::SuspendOrReinstate, S::Suspended, false, P::Suspended, Completed, Ok((S::Active, P::Active, Some(CertificateEvent::Release)))),
        (T::SuspendOrReinstate, S::Active, true, P::Active, Completed, Ok((S::Active, P::Active, None))),
        // Before the profile came back with the card (a set recorded earlier): it comes back now.
        (T::SuspendOrReinstate, S::Active, true, P::Suspended, Completed, Ok((S::Active, P::Active, Some(CertificateEvent::Release)))),
        // A reinstatement set during execution and not completed is undone, profile and all.
        (T::SuspendOrReinstate, S::Active, true, P::Active, Canceled, Ok((S::Suspended, P::Suspended, Some(CertificateEvent::Hold)))),
        (T::SuspendOrReinstate, S::Active, true, P::Active, Abandoned, Ok((S::Suspended, P::Suspended, Some(CertificateEvent::Hold)))),
        (T::SuspendOrReinstate, S::Active, true, P::Suspended, Canceled, Ok((S::Suspended, P::Suspended, None))),
        (T::SuspendOrReinstate, S::Retired, false, P::Retired, Completed, Err(Some(S::Retired))),
        // Requests that keep the card in service need it Active.
        (T::Unblock, S::Active, false, P::Active, Completed, Ok((S::Active, P::Active, None))),
        (T::Unblock, S::Suspended, false, P::Suspended, Completed, Err(Some(S::Suspended))),
        (T::Unblock, S::Disabled, false, P::Disabled, Canceled, Ok((S::Disabled, P::Disabled, None))),
        (T::OfflineUnblock, S::Retired, false, P::Retired, Completed, Err(Some(S::Retired))),
        // TemporaryCardRetire of an expired (Disabled) temporary card.
        (T::TemporaryCardRetire, S::Disabled, false, P::Active, Completed, Ok((S::Retired, P::Retired, cessation))),
    ];
    for (t, own, set_during, ps, outcome, want) in rows {
        let c = cards(*t, Some(*own), *set_during);
        let (old, new) = if c.makes {
            (None, Some(prof(NEW_P, *ps)))
        } else {
            (Some(prof(OLD_P, *ps)), None)
        };
        let got = c.finish(REQ, *outcome, old.as_ref(), new.as_ref(), true);
        let ctx = format!("{t:?} {own:?} set {set_during} {ps:?} {outcome:?}: {got:?}");
        match (got, want) {
            (Ok(e), Ok((card_to, p_to, certs))) => {
                let p = on_card(&c, old.as_ref(), new.as_ref()).unwrap();
                assert_eq!(
                    card_after(&e.cards, c.own.as_ref().unwrap()),
                    *card_to,
                    "{ctx}"
                );
                assert_eq!(profile_after(&e.profiles, p), *p_to, "{ctx}");
                let event = e
                    .profiles
                    .iter()
                    .find(|x| x.profile == p.uuid)
                    .and_then(|x| x.certificates);
                assert_eq!(event, *certs, "{ctx}");
                // Every change carries the version read.
                assert!(e.cards.iter().all(|x| x.version == 7), "{ctx}");
                assert!(e.profiles.iter().all(|x| x.version == 3), "{ctx}");
            }
            (Err(err), Err(status)) => {
                let s = match &err {
                    FinishError::Card(e) => e.status(),
                    FinishError::Profile(e) => e.status().map(|_| S::New),
                };
                assert_eq!(s, *status, "{ctx}");
            }
            (got, want) => panic!("{ctx}: wanted {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn a_request_that_makes_a_card_completes_only_with_one_and_its_source_in_service() {
    let c = cards(T::Enroll, None, false);
    assert_eq!(
        c.finish(REQ, Outcome::Completed, None, None, true),
        Err(FinishError::Card(CardRuleError::NotBound(REQ)))
    );
    // A software template makes no card.
    assert!(c.finish(REQ, Outcome::Completed, None, None, false).is_ok());
    assert!(c.finish(REQ, Outcome::Canceled, None, None, true).is_ok());
    for left in [S::Suspended, S::Disabled, S::Retired] {
        for t in [T::TemporaryCards, T::Duplicate] {
            let mut c = cards(t, Some(S::Assigned), false);
            c.source = Some(card(SOURCE, left));
            let new = prof(NEW_P, ProfileStatus::New);
            let err = c
                .finish(REQ, Outcome::Completed, None, Some(&new), true)
                .unwrap_err();
            assert!(
                matches!(err, FinishError::Card(CardRuleError::Source { status, .. }) if status == left),
                "{t:?} {left:?}: {err}"
            );
            assert!(matches!(
                c.check_issuance(REQ),
                Err(CardRuleError::Source { .. })
            ));
            assert!(matches!(
                c.check_execution(),
                Err(CardRuleError::Source { .. })
            ));
            // Canceling it is still possible, and retires the card it made.
            let e = c
                .finish(REQ, Outcome::Canceled, None, Some(&new), true)
                .unwrap();
            assert_eq!(card_after(&e.cards, &c.own.unwrap()), S::Retired);
        }
    }
    // A renewal onto a new card retires the card it replaces when it completes.
    let c = RequestCards {
        request_type: T::Renew,
        makes: true,
        own: Some(card(OWN, S::Assigned)),
        source: Some(card(SOURCE, S::Active)),
        set_during: None,
        pending: Vec::new(),
    };
    let (old, new) = (
        prof(OLD_P, ProfileStatus::Active),
        prof(NEW_P, ProfileStatus::New),
    );
    let e = c
        .finish(REQ, Outcome::Completed, Some(&old), Some(&new), true)
        .unwrap();
    assert_eq!(card_after(&e.cards, &c.source.unwrap()), S::Retired);
    assert_eq!(card_after(&e.cards, &c.own.unwrap()), S::Active);
    let e = c
        .finish(REQ, Outcome::Abandoned, Some(&old), Some(&new), true)
        .unwrap();
    assert_eq!(card_after(&e.cards, &c.source.unwrap()), S::Active);
}

#[test]
fn only_the_requests_own_card_is_set_and_out_of_service_takes_the_profile_along() {
    let active = prof(OLD_P, ProfileStatus::Active);
    // A TemporaryCards request cannot touch the permanent card.
    let c = cards(T::TemporaryCards, Some(S::Assigned), false);
    assert!(matches!(
        c.set_status(REQ, SOURCE, S::Active, None),
        Err(FinishError::Card(CardRuleError::NotOwnCard {
            copied: true,
            ..
        }))
    ));
    // Retire sets Retired: the card, the profile and the certificates at once.
    let c = cards(T::Retire, Some(S::Active), false);
    let e = c
        .set_status(REQ, OWN, S::Retired, Some(&active))
        .unwrap()
        .unwrap();
    assert_eq!(card_after(&e.cards, &c.own.unwrap()), S::Retired);
    assert_eq!(e.profiles[0].to, ProfileStatus::Retired);
    assert_eq!(
        e.profiles[0].certificates,
        Some(CertificateEvent::Revoke(
            RevocationReason::CessationOfOperation
        ))
    );
    // Suspend: held.
    let c = cards(T::SuspendOrReinstate, Some(S::Active), false);
    assert_eq!(c.settable(), &[S::Suspended]);
    let e = c
        .set_status(REQ, OWN, S::Suspended, Some(&active))
        .unwrap()
        .unwrap();
    assert_eq!(e.profiles[0].certificates, Some(CertificateEvent::Hold));
    assert!(c.set_status(REQ, OWN, S::Active, Some(&active)).is_err());
    // Reinstate sets Active, and the profile and its certificates come back with the card.
    let suspended = prof(OLD_P, ProfileStatus::Suspended);
    let c = cards(T::SuspendOrReinstate, Some(S::Suspended), false);
    assert_eq!(c.settable(), &[S::Active]);
    let e = c
        .set_status(REQ, OWN, S::Active, Some(&suspended))
        .unwrap()
        .unwrap();
    assert_eq!(
        (e.profiles[0].to, e.profiles[0].certificates),
        (ProfileStatus::Active, Some(CertificateEvent::Release))
    );
    // Once set, the same status again changes nothing; a request that keeps its card sets none.
    let c = cards(T::Retire, Some(S::Retired), true);
    assert_eq!(c.set_status(REQ, OWN, S::Retired, None), Ok(None));
    let c = cards(T::Unblock, Some(S::Active), false);
    assert!(matches!(
        c.set_status(REQ, OWN, S::Active, None),
        Err(FinishError::Card(CardRuleError::NotSettable { .. }))
    ));
    // An expired temporary card cannot be set Active.
    let c = cards(T::TemporaryCards, Some(S::Disabled), false);
    assert!(c.set_status(REQ, OWN, S::Active, None).is_err());
}

#[test]
fn which_card_is_a_requests_own() {
    let (a, b) = (Some(OWN), Some(SOURCE));
    assert_eq!(card_ids(T::Unblock, a, a), (a, None));
    assert_eq!(card_ids(T::Renew, a, a), (a, None));
    assert_eq!(card_ids(T::Renew, a, None), (None, a));
    assert_eq!(card_ids(T::Renew, a, b), (b, a));
    assert_eq!(card_ids(T::TemporaryCards, a, None), (None, a));
    assert_eq!(card_ids(T::TemporaryCards, a, b), (b, a));
    assert_eq!(card_ids(T::Enroll, None, b), (b, None));
    assert_eq!(card_ids(T::Enroll, None, None), (None, None));
    assert!(!makes_card(T::Retire, a, a) && makes_card(T::Duplicate, a, None));
}

#[test]
fn what_requests_in_flight_issued_for_a_card_leaving_service_is_revoked_with_it() {
    use crate::issued::{CertificateEvent, RevocationReason};
    // A renewal on the card has issued onto its reserved profile; a temporary card made from it
    // has too. The card is revoked (completed), retired (set during execution), suspended.
    let renewal = prof(Guid::from_u128(0x600).into(), ProfileStatus::New);
    let temp = prof(Guid::from_u128(0x700).into(), ProfileStatus::New);
    let gone = prof(Guid::from_u128(0x800).into(), ProfileStatus::Disabled);
    let active = prof(OLD_P, ProfileStatus::Active);
    for (t, set) in [
        (T::Revoke, None),
        (T::Retire, Some(S::Retired)),
        (T::SuspendOrReinstate, Some(S::Suspended)),
    ] {
        let mut c = cards(t, Some(set.unwrap_or(S::Active)), set.is_some());
        c.pending = vec![renewal, temp, gone];
        let ends = |e: &CardEffects| {
            for (p, want) in [
                (&renewal, ProfileStatus::Disabled),
                (&temp, ProfileStatus::Disabled),
                (&gone, ProfileStatus::Disabled),
            ] {
                let ch = e.profiles.iter().find(|x| x.profile == p.uuid).unwrap();
                assert_eq!(ch.to, want, "{t:?}");
                let revoked = (p.status == ProfileStatus::New).then_some(CertificateEvent::Revoke(
                    RevocationReason::CessationOfOperation,
                ));
                assert_eq!(ch.certificates, revoked, "{t:?}");
            }
        };
        match set {
            // Set during execution: at once, and it stands however the request ends.
            Some(to) => {
                let before = cards(t, Some(S::Active), false);
                let before = RequestCards {
                    pending: c.pending.clone(),
                    ..before
                };
                ends(
                    &before
                        .set_status(REQ, OWN, to, Some(&active))
                        .unwrap()
                        .unwrap(),
                );
                for outcome in OUTCOMES {
                    let p = prof(
                        OLD_P,
                        profile_after(
                            &before
                                .set_status(REQ, OWN, to, Some(&active))
                                .unwrap()
                                .unwrap()
                                .profiles,
                            &active,
                        ),
                    );
                    ends(&c.finish(REQ, outcome, Some(&p), None, true).unwrap());
                }
            }
            None => ends(
                &c.finish(REQ, Outcome::Completed, Some(&active), None, true)
                    .unwrap(),
            ),
        }
        // A request that does not take the card out of service leaves them alone.
        let keep = RequestCards {
            pending: vec![renewal],
            ..cards(T::Unblock, Some(S::Active), false)
        };
        let e = keep
            .finish(REQ, Outcome::Completed, Some(&active), None, true)
            .unwrap();
        assert!(e.profiles.iter().all(|x| x.profile != renewal.uuid));
    }
}
