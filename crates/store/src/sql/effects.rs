//! What a decided write does besides its request: the effects, as the statements that apply
//! them, on either engine.

use super::Step;
use opencm_app::ports::Effect;
use opencm_domain::enums::profile_flags;
use opencm_domain::issued::{CertificateEvent, CertificateStatus, RevocationReason};
use opencm_domain::{ProfileId, Timestamp};

/// The statements of `e`, at `at` (when certificates it revokes are revoked).
pub(crate) fn steps(e: &Effect, at: Timestamp) -> Vec<Step> {
    match e {
        Effect::InsertProfile(p) => vec![Step::new(
            super::profiles::INSERT,
            super::profiles::insert_args(p),
        )],
        Effect::InsertSmartcard(c) => vec![Step::new(
            super::smartcards::INSERT,
            super::smartcards::insert_args(c),
        )],
        Effect::InsertCertificate(c) => vec![Step::new(
            super::certificates::INSERT,
            super::certificates::insert_args(c),
        )],
        Effect::Smartcard(c) => vec![Step::new(
            super::smartcards::SET_STATUS,
            super::args![c.to.number(), c.card],
        )],
        Effect::SealPin { card, sealed } => vec![Step::new(
            super::smartcards::SEAL_PIN,
            super::args![sealed, card],
        )],
        Effect::Outbox(row) => vec![Step::new(
            super::outbox::INSERT,
            super::outbox::insert_args(row),
        )],
        Effect::Secret(change) => {
            use super::requests as q;
            use opencm_domain::request::secrets::SecretChange as S;
            vec![match change {
                S::Put(s) => Step::new(
                    q::PUT_SECRET,
                    super::args![
                        s.request,
                        &s.hash,
                        s.expires.micros(),
                        s.attempts_left,
                        &s.for_originator,
                        at.micros()
                    ],
                ),
                S::Attempt(r) => Step::new(q::SPEND_SECRET, super::args![r]),
                S::Consume(r) => Step::new(q::DROP_SECRET, super::args![r]),
                S::Shown(r) => Step::new(q::SECRET_SHOWN, super::args![r]),
            }]
        }
        Effect::Profile(c) => {
            let flags = if c.superseded {
                profile_flags::SUPERSEDED
            } else {
                0
            };
            let mut steps = vec![Step::new(
                super::profiles::SET_STATUS,
                super::args![c.to.number(), flags, c.profile],
            )];
            if let Some(event) = c.certificates {
                steps.extend(certificates(c.profile, event, at));
            }
            steps
        }
    }
}

/// `event` applied to every certificate of `profile` it applies to (the domain's
/// `CertificateStatus::next` says which): one statement per status it moves from.
fn certificates(profile: ProfileId, event: CertificateEvent, at: Timestamp) -> Vec<Step> {
    let (to, reason) = match event {
        CertificateEvent::Revoke(r) => (CertificateStatus::Revoked, Some(r)),
        CertificateEvent::Hold => (
            CertificateStatus::OnHold,
            Some(RevocationReason::CertificateHold),
        ),
        CertificateEvent::Release => (CertificateStatus::Valid, None),
    };
    CertificateStatus::applies_to(event)
        .iter()
        .map(|from| {
            Step::new(
                super::certificates::SET_STATUS,
                super::args![
                    to.number(),
                    reason.map(|_| at.micros()),
                    reason.map(|r| r.code()),
                    profile,
                    from.number(),
                ],
            )
        })
        .collect()
}
