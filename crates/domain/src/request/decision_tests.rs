//! The use-case decisions as tables, without IO: finishing, approving, the execution steps
//! (begin, a card status set, a secret's release), binding a card, and issuance (claim, record,
//! release, recover). Each row is a snapshot as the app would load it and what the decision must
//! answer: the request's next status, the audit action, the effects, or the refusal.

use super::approving::{self, ApprovalSnapshot};
use super::binding::{self, BindSnapshot, Binding};
use super::creating::{self, CreateSnapshot, NewRequest};
use super::executing::{self, Execution};
use super::finishing::{self, FinishSnapshot};
use super::issuing::{self, Claim};
use super::*;
use crate::decided::{AuditAction, Decided, Effect, RuleError};
use crate::issued::{CertificateRecord, CertificateStatus, RevocationReason};
use crate::profile::{ProfileError, ProfileRecord, ProfileState, ProfileStatus};
use crate::smartcard::{CardRuleError, CardSecret, RequestCards, SmartcardState, SmartcardStatus};
use crate::template::TemplateFile;
use crate::testing::user;
use crate::{Guid, ProfileId, RequestId, SmartcardId, UserId};

const REQ: RequestId = RequestId::from_guid(Guid::from_u128(0x0100));
const OLD_P: ProfileId = ProfileId::from_guid(Guid::from_u128(0x0400));
const NEW_P: ProfileId = ProfileId::from_guid(Guid::from_u128(0x0500));
const CARD: SmartcardId = SmartcardId::from_guid(Guid::from_u128(0x0200));
const SOURCE: SmartcardId = SmartcardId::from_guid(Guid::from_u128(0x0300));

fn now() -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_000)
}
const APPROVERS: &str = "S-1-5-21-7-5000";

/// The requester and target (user 1: read, execute, cancel).
fn alice() -> Principal {
    user(1, &[])
}
/// An approver (read, approve).
fn bob() -> Principal {
    user(2, &[APPROVERS])
}
/// A second approver.
fn dave() -> Principal {
    user(4, &[APPROVERS])
}
/// Nobody on the request.
fn mallory() -> Principal {
    user(3, &[])
}

/// A template of `kind` (`software`, `smartcard`) whose Enroll policy needs two approvals and
/// issues one certificate; `extra` lines go in its head.
fn template(kind: &str, extra: &str) -> Arc<ProfileTemplate> {
    let text = format!(
        "[[template]]\nuuid = '2b7044cf-aa96-4911-b886-177947e9271b'\nname = 'T'\n\
         security_descriptor = 'D:(A;;RC;;;AU)'\nkind = '{kind}'\n{extra}\n\
         [template.policies.Enroll]\nenabled = true\napprovals_needed = 2\n\
         [template.policies.Renew]\nenabled = true\n\
         [[template.certificates]]\ncommon_name = 'c'\n"
    );
    let file: TemplateFile = toml::from_str(&text).unwrap();
    let doc = file.template.into_iter().next().unwrap();
    Arc::new(ProfileTemplate::try_from(doc).unwrap())
}

fn request(t: RequestType, status: RequestStatus) -> Request {
    let sd = format!("D:(A;;RCCCDC;;;S-1-5-21-7-1)(A;;RCLC;;;{APPROVERS})");
    Request {
        uuid: REQ,
        request_type: t,
        status,
        flags: RequestFlags::default(),
        data_collection: Vec::new(),
        data_collection_flags: 0,
        originator: alice().uuid,
        target: alice().uuid,
        submitted: Timestamp::from_micros(1),
        completed: None,
        new_profile: None,
        old_profile: (t != RequestType::Enroll).then_some(OLD_P),
        new_smartcard: None,
        old_smartcard: None,
        priority: 100,
        comment: String::new(),
        profile_template: Guid::from_u128(42).into(),
        security_descriptor: Arc::new(SecurityDescriptor::parse(&sd).unwrap()),
        version: 5,
        secret_required: false,
    }
}

fn prof(uuid: ProfileId, status: ProfileStatus) -> ProfileState {
    ProfileState {
        uuid,
        status,
        version: 3,
    }
}

fn card(status: SmartcardStatus) -> SmartcardState {
    SmartcardState {
        uuid: CARD,
        status,
        version: 7,
        temporary: false,
    }
}

/// No card: a software request.
fn no_cards(t: RequestType) -> RequestCards {
    RequestCards {
        request_type: t,
        makes: false,
        own: None,
        source: None,
        set_during: None,
        pending: Vec::new(),
    }
}

fn execution(
    t: RequestType,
    old: Option<ProfileState>,
    new: Option<ProfileState>,
    target_enabled: bool,
) -> Execution {
    Execution {
        old,
        new,
        cards: no_cards(t),
        target_enabled: Some(target_enabled),
    }
}

fn profile_to(d: &Decided, p: ProfileId) -> Option<ProfileStatus> {
    d.effects.iter().rev().find_map(|e| match e {
        Effect::Profile(c) if c.profile == p => Some(c.to),
        _ => None,
    })
}

fn card_to(d: &Decided) -> Option<SmartcardStatus> {
    d.effects.iter().rev().find_map(|e| match e {
        Effect::Smartcard(c) if c.card == CARD => Some(c.to),
        _ => None,
    })
}

// ---- finishing -----------------------------------------------------------------------------

#[test]
fn finishing_a_request() {
    use Outcome::*;
    use RequestType::*;
    let software = template("software", "");
    let smartcard = template("smartcard", "");
    let executing_enroll = || Request {
        new_profile: Some(NEW_P),
        ..request(Enroll, RequestStatus::Executing)
    };
    let new_p = || Some(prof(NEW_P, ProfileStatus::New));
    let active = || Some(prof(OLD_P, ProfileStatus::Active));
    type Want = Result<Option<(RequestStatus, AuditAction, Option<ProfileStatus>)>, RuleError>;
    #[allow(clippy::type_complexity)]
    let rows: Vec<(&str, Request, FinishSnapshot, Principal, Outcome, Want)> = vec![
        (
            "an enrolment that issued completes; its profile goes into service",
            executing_enroll(),
            FinishSnapshot {
                execution: execution(Enroll, None, new_p(), true),
                template: Some(software.clone()),
                new_has_certificates: true,
            },
            alice(),
            Completed,
            Ok(Some((
                RequestStatus::Completed,
                AuditAction::Complete,
                Some(ProfileStatus::Active),
            ))),
        ),
        (
            "an enrolment that issued nothing does not complete",
            executing_enroll(),
            FinishSnapshot {
                execution: execution(Enroll, None, new_p(), true),
                template: Some(software.clone()),
                new_has_certificates: false,
            },
            alice(),
            Completed,
            Err(RuleError::Profile(ProfileError::NothingIssued {
                request: REQ,
                request_type: Enroll,
            })),
        ),
        (
            "a card enrolment without a card says so before anything else",
            request(Enroll, RequestStatus::Approved),
            FinishSnapshot {
                execution: Execution {
                    cards: RequestCards {
                        makes: true,
                        ..no_cards(Enroll)
                    },
                    ..execution(Enroll, None, None, true)
                },
                template: Some(smartcard.clone()),
                new_has_certificates: false,
            },
            alice(),
            Completed,
            Err(RuleError::Card(CardRuleError::NotBound(REQ))),
        ),
        (
            "completing for a user disabled meanwhile is refused",
            executing_enroll(),
            FinishSnapshot {
                execution: execution(Enroll, None, new_p(), false),
                template: Some(software.clone()),
                new_has_certificates: true,
            },
            alice(),
            Completed,
            Err(RuleError::TargetDisabled(TargetDisabled {
                user: alice().uuid,
                request_type: Enroll,
            })),
        ),
        (
            "canceling for a disabled user goes, and the reserved profile is disabled",
            executing_enroll(),
            FinishSnapshot {
                execution: execution(Enroll, None, new_p(), false),
                template: Some(software.clone()),
                new_has_certificates: true,
            },
            alice(),
            Canceled,
            Ok(Some((
                RequestStatus::Canceled,
                AuditAction::Cancel,
                Some(ProfileStatus::Disabled),
            ))),
        ),
        (
            "a revocation completes for a disabled user (it gives nothing)",
            request(Revoke, RequestStatus::Approved),
            FinishSnapshot {
                execution: Execution {
                    target_enabled: None,
                    ..execution(Revoke, active(), None, false)
                },
                template: Some(software.clone()),
                new_has_certificates: false,
            },
            alice(),
            Completed,
            Ok(Some((
                RequestStatus::Completed,
                AuditAction::Complete,
                Some(ProfileStatus::Disabled),
            ))),
        ),
        (
            "a repeat of the outcome is answered as it stands",
            request(Enroll, RequestStatus::Completed),
            FinishSnapshot {
                execution: execution(Enroll, None, None, true),
                template: Some(software.clone()),
                new_has_certificates: true,
            },
            alice(),
            Completed,
            Ok(None),
        ),
        (
            "someone who cannot read the request does not learn it exists",
            executing_enroll(),
            FinishSnapshot {
                execution: execution(Enroll, None, new_p(), true),
                template: Some(software.clone()),
                new_has_certificates: true,
            },
            mallory(),
            Completed,
            Err(RuleError::Action(ActionError::NotFound(REQ))),
        ),
        (
            "an approver may read but not complete",
            executing_enroll(),
            FinishSnapshot {
                execution: execution(Enroll, None, new_p(), true),
                template: Some(software),
                new_has_certificates: true,
            },
            bob(),
            Completed,
            Err(RuleError::Action(ActionError::Forbidden(
                rights::EXECUTE,
                REQ,
            ))),
        ),
    ];
    for (why, r, s, caller, outcome, want) in rows {
        let got = finishing::decide(&r, &s, &caller, outcome, now()).map(|d| {
            d.map(|d| {
                assert_eq!(d.next.version, r.version, "{why}: the version read");
                assert_eq!(d.next.completed, Some(now()), "{why}");
                let p = r.new_profile.or(r.old_profile).unwrap_or(NEW_P);
                (d.next.status, d.action, profile_to(&d, p))
            })
        });
        assert_eq!(got, want, "{why}");
    }
}

// ---- approving -----------------------------------------------------------------------------

#[test]
fn approving_and_denying() {
    use Decision::*;
    let pending = || request(RequestType::Enroll, RequestStatus::Pending);
    let snap = |needed: Option<u32>, prior: Vec<Approval>, enabled: bool| ApprovalSnapshot {
        approvals_needed: needed,
        secrets: crate::policy::SecretDistribution::None,
        prior,
        execution: Some(execution(RequestType::Enroll, None, None, enabled)),
    };
    let by = |who: &Principal, d: Decision| Approval {
        request: REQ,
        approver: who.uuid,
        decision: d,
        comment: String::new(),
        at: Timestamp::from_micros(2),
    };
    type Want = Result<(RequestStatus, AuditAction), RuleError>;
    let rows: Vec<(&str, ApprovalSnapshot, Principal, Decision, Want)> = vec![
        (
            "the first of two approvals leaves it pending",
            snap(Some(2), vec![], true),
            bob(),
            Approve,
            Ok((RequestStatus::Pending, AuditAction::Approve)),
        ),
        (
            "the last approval approves",
            snap(Some(2), vec![by(&dave(), Approve)], true),
            bob(),
            Approve,
            Ok((RequestStatus::Approved, AuditAction::Approve)),
        ),
        (
            "one denial denies",
            snap(Some(2), vec![by(&dave(), Approve)], true),
            bob(),
            Deny,
            Ok((RequestStatus::Denied, AuditAction::Deny)),
        ),
        (
            "each approver decides once",
            snap(Some(2), vec![by(&bob(), Approve)], true),
            bob(),
            Approve,
            Err(RuleError::Action(ActionError::AlreadyDecided(REQ))),
        ),
        (
            "approving for a disabled user would give them something",
            snap(Some(1), vec![], false),
            bob(),
            Approve,
            Err(RuleError::TargetDisabled(TargetDisabled {
                user: alice().uuid,
                request_type: RequestType::Enroll,
            })),
        ),
        (
            "denying for a disabled user goes",
            snap(Some(1), vec![], false),
            bob(),
            Deny,
            Ok((RequestStatus::Denied, AuditAction::Deny)),
        ),
        (
            "a policy deleted since is said",
            snap(None, vec![], true),
            bob(),
            Approve,
            Err(RuleError::PolicyNotFound),
        ),
        (
            "the requester may not approve their own request",
            snap(Some(1), vec![], true),
            alice(),
            Approve,
            Err(RuleError::Action(ActionError::Forbidden(
                rights::APPROVE,
                REQ,
            ))),
        ),
    ];
    for (why, s, caller, decision, want) in rows {
        let got = approving::decide(&pending(), &s, &caller, decision, "ok", now()).map(|d| {
            let a = d.approval.as_ref().expect("an approval is recorded");
            assert_eq!(
                (a.approver, a.decision, a.at),
                (caller.uuid, decision, now())
            );
            assert_eq!(d.detail, "ok", "{why}: the comment is the history's detail");
            (d.next.status, d.action)
        });
        assert_eq!(got, want, "{why}");
    }
}

// ---- execution steps -----------------------------------------------------------------------

#[test]
fn beginning_execution_guards_the_profile_and_the_target() {
    use RequestType::*;
    let active = Some(prof(OLD_P, ProfileStatus::Active));
    let disabled = Some(prof(OLD_P, ProfileStatus::Disabled));
    let approved = |t| request(t, RequestStatus::Approved);
    let r = approved(Renew);
    let d = executing::begin(&r, &execution(Renew, active, None, true), &alice())
        .unwrap()
        .unwrap();
    assert_eq!(
        (d.next.status, d.action),
        (RequestStatus::Executing, AuditAction::Execute)
    );
    // The write carries the version of the profile it read, unchanged.
    assert!(matches!(&d.effects[..], [Effect::Profile(c)]
        if c.profile == OLD_P && c.version == 3 && c.to == ProfileStatus::Active));
    let already = request(Renew, RequestStatus::Executing);
    assert!(
        executing::begin(&already, &execution(Renew, active, None, true), &alice())
            .unwrap()
            .is_none(),
        "already executing: nothing to write"
    );
    assert!(matches!(
        executing::begin(&r, &execution(Renew, disabled, None, true), &alice()),
        Err(RuleError::Profile(_))
    ));
    assert!(matches!(
        executing::begin(
            &approved(Enroll),
            &execution(Enroll, None, None, false),
            &alice()
        ),
        Err(RuleError::TargetDisabled(_))
    ));
    // A target not read (the load thought it unneeded) fails closed for a step that gives.
    let unread = Execution {
        target_enabled: None,
        ..execution(Enroll, None, None, true)
    };
    assert!(matches!(
        executing::begin(&approved(Enroll), &unread, &alice()),
        Err(RuleError::TargetDisabled(_))
    ));
    assert!(matches!(
        executing::begin(&r, &execution(Renew, active, None, true), &bob()),
        Err(RuleError::Action(ActionError::Forbidden(..)))
    ));
}

fn on_card(t: RequestType, own: SmartcardStatus) -> Execution {
    Execution {
        cards: RequestCards {
            own: Some(card(own)),
            ..no_cards(t)
        },
        ..execution(t, Some(prof(OLD_P, ProfileStatus::Active)), None, true)
    }
}

#[test]
fn the_executor_sets_its_own_cards_status_and_the_profile_follows() {
    use RequestType::*;
    let r = Request {
        old_smartcard: Some(CARD),
        ..request(Retire, RequestStatus::Approved)
    };
    let d = executing::set_card_status(
        &r,
        &on_card(Retire, SmartcardStatus::Active),
        &alice(),
        CARD,
        SmartcardStatus::Retired,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        d.action,
        AuditAction::SetSmartcard(Some(SmartcardStatus::Retired))
    );
    assert_eq!(d.next.status, RequestStatus::Executing);
    assert_eq!(card_to(&d), Some(SmartcardStatus::Retired));
    assert_eq!(profile_to(&d, OLD_P), Some(ProfileStatus::Retired));
    // One change per object: the guards of what changes are replaced by the change.
    let cards = d
        .effects
        .iter()
        .filter(|e| matches!(e, Effect::Smartcard(c) if c.card == CARD))
        .count();
    assert_eq!(cards, 1);
    // A Retire may not bring its card back into service.
    assert!(matches!(
        executing::set_card_status(
            &r,
            &on_card(Retire, SmartcardStatus::Active),
            &alice(),
            CARD,
            SmartcardStatus::Active
        ),
        Err(RuleError::Card(CardRuleError::NotSettable { .. }))
    ));
    // Another card than the request's own.
    assert!(matches!(
        executing::set_card_status(
            &r,
            &on_card(Retire, SmartcardStatus::Active),
            &alice(),
            SOURCE,
            SmartcardStatus::Retired
        ),
        Err(RuleError::Card(CardRuleError::NotOwnCard { .. }))
    ));
}

#[test]
fn a_card_secret_leaves_only_for_the_own_card_in_service() {
    use RequestType::*;
    let r = Request {
        old_smartcard: Some(CARD),
        ..request(Unblock, RequestStatus::Approved)
    };
    let (next, effects) = executing::release_secret(
        &r,
        &on_card(Unblock, SmartcardStatus::Active),
        &alice(),
        CARD,
        CardSecret::Puk,
    )
    .unwrap();
    assert_eq!(next.status, RequestStatus::Executing);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::Smartcard(c) if c.card == CARD && c.version == 7)));
    for out in [
        SmartcardStatus::Suspended,
        SmartcardStatus::Disabled,
        SmartcardStatus::Retired,
    ] {
        assert!(
            executing::release_secret(
                &r,
                &on_card(Unblock, out),
                &alice(),
                CARD,
                CardSecret::AdminKey
            )
            .is_err(),
            "no secret for a card {out}"
        );
    }
    assert!(matches!(
        executing::release_secret(
            &r,
            &on_card(Unblock, SmartcardStatus::Active),
            &alice(),
            SOURCE,
            CardSecret::Puk
        ),
        Err(RuleError::Card(CardRuleError::NotOwnCard { .. }))
    ));
    assert!(matches!(
        executing::release_secret(
            &r,
            &on_card(Unblock, SmartcardStatus::Active),
            &mallory(),
            CARD,
            CardSecret::Puk
        ),
        Err(RuleError::Action(ActionError::NotFound(_)))
    ));
}

// ---- binding -------------------------------------------------------------------------------

#[test]
fn binding_a_card() {
    use RequestType::*;
    let smartcard = template("smartcard", "");
    let reusable = template(
        "smartcard",
        "[template.smartcard]\nallow_smartcard_reuse = true",
    );
    let b = Binding {
        uuid: CARD,
        card_id: Guid::from_u128(0xC0FFEE),
        atr: "3B8F80".into(),
        key_version: 2,
    };
    let snap = |t: &Arc<ProfileTemplate>, live: bool, served: bool| BindSnapshot {
        template: Some(t.clone()),
        execution: execution(Enroll, None, None, true),
        card_id_live: live,
        card_id_served: served,
    };
    let approved = request(Enroll, RequestStatus::Approved);
    let bind = |r: &Request, s: &BindSnapshot| binding::bind(r, s, &alice(), &b, now());

    let d = bind(&approved, &snap(&smartcard, false, false)).unwrap();
    assert_eq!(
        (d.next.status, d.next.new_smartcard, d.action),
        (
            RequestStatus::Executing,
            Some(CARD),
            AuditAction::BindSmartcard
        )
    );
    let Some(Effect::InsertSmartcard(c)) = d.effects.last() else {
        panic!("the card is inserted")
    };
    assert_eq!(
        (
            c.status,
            c.key_diversifier,
            c.key_version,
            c.assigned_user,
            c.expires
        ),
        (
            SmartcardStatus::Assigned,
            CARD.guid(),
            2,
            alice().uuid,
            None
        )
    );

    type Refused = fn(&RuleError) -> bool;
    let rows: Vec<(&str, Request, BindSnapshot, Refused)> = vec![
        (
            "a software request has no card",
            approved.clone(),
            snap(&template("software", ""), false, false),
            |e| matches!(e, RuleError::NotASmartcardRequest { .. }),
        ),
        (
            "a request binds one card",
            Request {
                new_smartcard: Some(SOURCE),
                ..approved.clone()
            },
            snap(&smartcard, false, false),
            |e| matches!(e, RuleError::SmartcardAlreadyBound { card, .. } if *card == SOURCE),
        ),
        (
            "a card id live on another card",
            approved.clone(),
            snap(&smartcard, true, false),
            |e| matches!(e, RuleError::SmartcardInUse(_)),
        ),
        (
            "a card that served before, where cards are not reused",
            approved.clone(),
            snap(&smartcard, false, true),
            |e| matches!(e, RuleError::SmartcardNotReusable { .. }),
        ),
        (
            "a pending request",
            request(Enroll, RequestStatus::Pending),
            snap(&smartcard, false, false),
            |e| matches!(e, RuleError::Action(ActionError::Transition(_))),
        ),
    ];
    for (why, r, s, refused) in rows {
        match bind(&r, &s) {
            Err(e) => assert!(refused(&e), "{why}: {e:?}"),
            Ok(d) => panic!("{why}: bound ({:?})", d.action),
        }
    }
    // Where the template reuses cards, a card that served before is bound again.
    assert!(bind(&approved, &snap(&reusable, false, true)).is_ok());
    // A temporary card expires; it names its user's permanent card.
    let temp = Request {
        old_smartcard: Some(SOURCE),
        ..request(TemporaryCards, RequestStatus::Approved)
    };
    let d = bind(&temp, &snap(&smartcard, false, false)).unwrap();
    let Some(Effect::InsertSmartcard(c)) = d.effects.last() else {
        panic!("the card is inserted")
    };
    let days = smartcard.smartcard_config().unwrap().temporary_card_days;
    assert_eq!(c.permanent, Some(SOURCE));
    assert_eq!(
        c.expires.map(Timestamp::micros),
        Some(now().micros() + i64::from(days) * 86_400_000_000)
    );
}

// ---- issuance ------------------------------------------------------------------------------

fn signed(serial: &str) -> CertificateRecord {
    CertificateRecord {
        serial_hex: serial.into(),
        profile: NEW_P,
        request: REQ,
        user: alice().uuid,
        template_common_name: "c".into(),
        der_b64: String::new(),
        thumbprint: String::new(),
        issuer: String::new(),
        subject: String::new(),
        not_before: now(),
        not_after: now(),
        status: CertificateStatus::Valid,
        revoked_at: None,
        revocation_reason: None,
        server_generated: false,
        sealed_key: None,
    }
}

#[test]
fn issuance_claims_records_and_gives_back() {
    use RequestType::*;
    let t = template("software", "");
    let claim = Claim {
        profile: NEW_P,
        template: &t,
        user: alice().uuid,
        card: None,
        comment: "why",
    };
    let x = execution(
        Duplicate,
        Some(prof(OLD_P, ProfileStatus::Active)),
        None,
        true,
    );
    let approved = request(Duplicate, RequestStatus::Approved);
    let d = issuing::claim(&approved, &x, &alice(), &claim, now()).unwrap();
    assert_eq!(
        (d.next.status, d.next.new_profile, d.action),
        (RequestStatus::Executing, Some(NEW_P), AuditAction::Execute)
    );
    let Some(Effect::InsertProfile(p)) = d.effects.first() else {
        panic!("the profile is reserved first")
    };
    assert_eq!(
        (p.status, p.primary, p.parent, p.comment.as_str()),
        (ProfileStatus::New, Some(OLD_P), None, "why")
    );
    // A second claim finds the first.
    assert_eq!(
        issuing::claim(&d.next, &x, &alice(), &claim, now()).unwrap_err(),
        RuleError::AlreadyIssued(REQ)
    );

    // Recorded valid while executing; revoked at once when canceled meanwhile.
    let executing = d.next.clone();
    let canceled = Request {
        status: RequestStatus::Canceled,
        ..executing.clone()
    };
    for (r, status, reason, at) in [
        (&executing, CertificateStatus::Valid, None, None),
        (
            &canceled,
            CertificateStatus::Revoked,
            Some(RevocationReason::CessationOfOperation),
            Some(now()),
        ),
    ] {
        let d = issuing::record(r, NEW_P, &[signed("01"), signed("02")], now()).unwrap();
        assert_eq!(
            (d.action, d.detail.as_str()),
            (AuditAction::Issue, "2 certificate(s) issued")
        );
        for e in &d.effects {
            let Effect::InsertCertificate(c) = e else {
                panic!("only certificates")
            };
            assert_eq!(
                (c.status, c.revocation_reason, c.revoked_at),
                (status, reason, at)
            );
        }
    }
    assert_eq!(
        issuing::record(&approved, NEW_P, &[signed("01")], now()).unwrap_err(),
        RuleError::ClaimLost(REQ)
    );

    // A failed signing gives its claim back; another claim since is left alone.
    let reserved = prof(NEW_P, ProfileStatus::New);
    let d = issuing::release_claim(&executing, NEW_P, Some(&reserved))
        .unwrap()
        .unwrap();
    assert_eq!((d.next.new_profile, d.action), (None, AuditAction::Release));
    assert_eq!(profile_to(&d, NEW_P), Some(ProfileStatus::Disabled));
    assert!(issuing::release_claim(&executing, OLD_P, Some(&reserved))
        .unwrap()
        .is_none());

    // A Recover delivers once.
    let recover = request(Recover, RequestStatus::Approved);
    let x = execution(
        Recover,
        Some(prof(OLD_P, ProfileStatus::Active)),
        None,
        true,
    );
    let d = issuing::recover(&recover, &x, &alice(), 3).unwrap();
    assert_eq!(
        (d.next.status, d.action),
        (RequestStatus::Executing, AuditAction::Recover)
    );
    assert_eq!(
        issuing::recover(&d.next, &x, &alice(), 3).unwrap_err(),
        RuleError::AlreadyDelivered(REQ)
    );
}

#[test]
fn every_audit_action_reads_back_as_itself() {
    let all: Vec<AuditAction> = AuditAction::all().collect();
    // The 21 named actions, a set for each of the 6 card statuses, and the older unnamed set.
    assert_eq!(all.len(), 21 + SmartcardStatus::ALL.len() + 1);
    let names: std::collections::HashSet<&str> = all.iter().map(|a| a.name()).collect();
    assert_eq!(names.len(), all.len(), "names are unique");
    for a in all {
        assert_eq!(AuditAction::parse(a.name()), Some(a));
    }
    assert_eq!(AuditAction::parse("Delete"), None);
}

// ---- creating ------------------------------------------------------------------------------

/// A software template anyone authenticated may enrol from; agents (S-1-5-21-7-6000) initiate
/// for others; Revoke acts on a profile.
fn enrol_template() -> Arc<ProfileTemplate> {
    let text = "[[template]]\nuuid = '2b7044cf-aa96-4911-b886-177947e9271b'\nname = 'VPN'\n\
         security_descriptor = 'D:(A;;RCCR;;;AU)'\nkind = 'software'\n\
         [template.policies.Enroll]\nenabled = true\nself_service_enabled = true\n\
         authorized_initiator = 'D:(A;;CR;;;S-1-5-21-7-6000)'\n\
         [template.policies.Revoke]\nenabled = true\nself_service_enabled = true\n\
         [[template.certificates]]\ncommon_name = 'c'\n";
    let file: TemplateFile = toml::from_str(text).unwrap();
    Arc::new(ProfileTemplate::try_from(file.template.into_iter().next().unwrap()).unwrap())
}

fn new_request(t: RequestType, target: Option<UserId>) -> NewRequest {
    NewRequest {
        template: (t == RequestType::Enroll).then(|| enrol_template().uuid),
        profile: (t != RequestType::Enroll).then_some(OLD_P),
        smartcard: None,
        request_type: t,
        target,
        data: Vec::new(),
        comment: String::new(),
        priority: None,
    }
}

fn profile_of(owner: &Principal) -> ProfileRecord {
    ProfileRecord {
        uuid: OLD_P,
        status: ProfileStatus::Active,
        flags: 0,
        parent: None,
        primary: None,
        assigned_user: owner.uuid,
        template: enrol_template().uuid,
        template_version: 1,
        comment: String::new(),
        request: REQ,
        created: now(),
        version: 3,
        smartcard: None,
    }
}

fn snapshot(profile: Option<Option<ProfileRecord>>, target: Option<Principal>) -> CreateSnapshot {
    CreateSnapshot {
        card: None,
        profile: profile.map(|p| (OLD_P, p)),
        template: Some(enrol_template()),
        target,
        target_enabled: true,
        on_card: None,
    }
}

#[test]
fn creating_a_request() {
    use RequestType::*;
    let agent = user(6, &["S-1-5-21-7-6000"]);
    let dana = user(9, &[]);
    // Self-service: approved at once (no approvals needed), recorded as Create.
    let s = snapshot(None, None);
    let n = new_request(Enroll, None);
    assert_eq!(creating::check_before_target(&s, &alice(), &n), Ok(None));
    let (r, event) = creating::decide(&s, &alice(), n, REQ, now()).unwrap();
    assert_eq!(
        (r.status, r.target, r.originator),
        (RequestStatus::Approved, alice().uuid, alice().uuid)
    );
    assert_eq!(
        (event.action.as_str(), event.to),
        ("Create", RequestStatus::Approved)
    );

    // For someone else: only an initiator, told before anything about the target is known.
    let n = new_request(Enroll, Some(dana.uuid));
    assert!(matches!(
        creating::check_before_target(&s, &mallory(), &n),
        Err(CreateError::NotAllowed(_))
    ));
    assert_eq!(
        creating::check_before_target(&s, &agent, &n),
        Ok(Some(dana.uuid))
    );
    // The target the load found (or did not).
    assert_eq!(
        creating::decide(&s, &agent, n.clone(), REQ, now()).unwrap_err(),
        CreateError::TargetNotFound(dana.uuid)
    );
    let found = snapshot(None, Some(dana.clone()));
    let (r, _) = creating::decide(&found, &agent, n.clone(), REQ, now()).unwrap();
    assert_eq!((r.target, r.originator), (dana.uuid, agent.uuid));
    let disabled = CreateSnapshot {
        target_enabled: false,
        ..found
    };
    assert!(matches!(
        creating::decide(&disabled, &agent, n, REQ, now()),
        Err(CreateError::TargetDisabled(_))
    ));

    // On a profile: it must exist, be the caller's (or the caller an initiator), and the body
    // may not contradict it.
    let rows: Vec<(&str, CreateSnapshot, Principal, NewRequest, CreateError)> = vec![
        (
            "a profile that does not exist",
            snapshot(Some(None), None),
            alice(),
            new_request(Revoke, None),
            CreateError::ProfileNotFound(OLD_P),
        ),
        (
            "someone else's profile is not shown to a stranger",
            snapshot(Some(Some(profile_of(&alice()))), None),
            mallory(),
            new_request(Revoke, None),
            CreateError::ProfileNotFound(OLD_P),
        ),
        (
            "a target that is not the profile's user",
            snapshot(Some(Some(profile_of(&alice()))), None),
            alice(),
            new_request(Revoke, Some(dana.uuid)),
            CreateError::Body("'target' is not the profile's user; omit it."),
        ),
        (
            "a template that is not the profile's",
            snapshot(Some(Some(profile_of(&alice()))), None),
            alice(),
            NewRequest {
                template: Some(Guid::from_u128(77).into()),
                ..new_request(Revoke, None)
            },
            CreateError::Body("'profiletemplateuuid' is not the profile's template; omit it."),
        ),
        (
            "no template, no profile",
            snapshot(None, None),
            alice(),
            NewRequest {
                template: None,
                ..new_request(Enroll, None)
            },
            CreateError::Body("'profiletemplateuuid' (or 'profile') is required."),
        ),
        (
            "a template that does not exist",
            CreateSnapshot {
                template: None,
                ..snapshot(None, None)
            },
            alice(),
            new_request(Enroll, None),
            CreateError::TemplateNotFound(enrol_template().uuid),
        ),
    ];
    for (why, s, caller, n, want) in rows {
        assert_eq!(
            creating::decide(&s, &caller, n, REQ, now()).unwrap_err(),
            want,
            "{why}"
        );
    }
    // The owner revokes their own profile.
    let s = snapshot(Some(Some(profile_of(&alice()))), None);
    let (r, _) = creating::decide(&s, &alice(), new_request(Revoke, None), REQ, now()).unwrap();
    assert_eq!((r.old_profile, r.request_type), (Some(OLD_P), Revoke));
}

#[test]
fn a_request_waiting_for_its_one_time_password_neither_executes_nor_completes() {
    let r = Request {
        secret_required: true,
        ..request(RequestType::Enroll, RequestStatus::Approved)
    };
    assert!(matches!(
        begin_execution(&r, &alice()),
        Err(ActionError::SecretRequired(_))
    ));
    assert!(matches!(
        finish(&r, &alice(), Outcome::Completed, now()),
        Err(ActionError::SecretRequired(_))
    ));
    // Abandoning needs no secret.
    assert!(finish(&r, &alice(), Outcome::Abandoned, now()).is_ok());
}

#[test]
fn a_one_time_password_is_accepted_once_and_refused_wrong_expired_or_exhausted() {
    use super::secrets::{present, Refusal, SecretChange, SecretRecord};
    let r = Request {
        secret_required: true,
        ..request(RequestType::Enroll, RequestStatus::Approved)
    };
    let later = |s: i64| Timestamp::from_micros(now().micros() + s * 1_000_000);
    let record = SecretRecord {
        request: r.uuid,
        hash: "h".into(),
        expires: later(60),
        attempts_left: 2,
        for_originator: None,
    };
    let (d, why) = present(&r, &alice(), Some(&record), false, now()).unwrap();
    assert_eq!(why, Some(Refusal::Wrong { attempts_left: 1 }));
    assert!(d.next.secret_required);
    assert_eq!(d.action, AuditAction::OneTimePasswordRefused);
    assert!(matches!(
        d.effects.as_slice(),
        [Effect::Secret(SecretChange::Attempt(_))]
    ));
    let (_, why) = present(&r, &alice(), Some(&record), true, later(60)).unwrap();
    assert_eq!(why, Some(Refusal::Expired));
    let (_, why) = present(&r, &alice(), None, true, now()).unwrap();
    assert_eq!(why, Some(Refusal::Expired));
    let spent = SecretRecord {
        attempts_left: 0,
        ..record.clone()
    };
    let (_, why) = present(&r, &alice(), Some(&spent), true, now()).unwrap();
    assert_eq!(why, Some(Refusal::NoAttemptsLeft));
    let (d, why) = present(&r, &alice(), Some(&record), true, now()).unwrap();
    assert_eq!(why, None);
    assert!(!d.next.secret_required);
    assert!(matches!(
        d.effects.as_slice(),
        [Effect::Secret(SecretChange::Consume(_))]
    ));
    // Only who may execute presents it; a request waiting for none refuses.
    assert!(present(&r, &bob(), Some(&record), true, now()).is_err());
    let plain = request(RequestType::Enroll, RequestStatus::Approved);
    assert!(matches!(
        present(&plain, &alice(), Some(&record), true, now()),
        Err(RuleError::NoSecretPending(_))
    ));
}
