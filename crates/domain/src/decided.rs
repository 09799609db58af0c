//! What a use case decided, ready to commit: the request as it must be stored (its `version` is
//! the version the decision read), the approval recorded beside it, the effects on the other
//! aggregates (each carrying the version it was decided on), and the audit action. The store
//! writes all of it in one transaction, or nothing when anything read changed since.

use crate::issued::CertificateRecord;
use crate::profile::{ProfileChange, ProfileError, ProfileRecord};
use crate::request::{ActionError, Approval, Request, TargetDisabled};
use crate::smartcard::{
    CardRuleError, FinishError, SmartcardChange, SmartcardRecord, SmartcardStatus,
    SmartcardTransitionError,
};
use crate::{Guid, RequestId, SmartcardId};

/// What a transition does besides changing the request, in the same transaction.
#[derive(Clone, Debug)]
pub enum Effect {
    InsertProfile(ProfileRecord),
    /// A card bound to a request; refused (`Duplicate`) when its card id is live on another card.
    InsertSmartcard(SmartcardRecord),
    InsertCertificate(Box<CertificateRecord>),
    /// A profile's new status and flags, and what happens to its certificates (revocations are
    /// stamped with the write's audit time). The write is refused (`Conflict`) unless the profile
    /// still has the version the decision read.
    Profile(ProfileChange),
    /// A card's new status; refused (`Conflict`) unless the card still has the version read.
    Smartcard(SmartcardChange),
    /// A PIN the server proposed for the card, sealed under the KEK (ServerDistributed).
    SealPin {
        card: SmartcardId,
        sealed: String,
    },
    /// An event on its way to a channel (the transactional outbox): written with the change, so
    /// a change is never lost to its notification nor a notification sent for a change that
    /// lost.
    Outbox(Box<crate::notification::OutboxRow>),
    /// The request's one-time password: made, tried, presented, shown.
    Secret(crate::request::secrets::SecretChange),
}

/// What a request's history records of a change: one action per use case (the names are the
/// audit trail's, read by people and by `GET /requests/{id}/history`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAction {
    Create,
    Approve,
    Deny,
    Complete,
    Cancel,
    Abandon,
    /// Approved → Executing (an execution step began, or a profile was reserved for issuance).
    Execute,
    BindSmartcard,
    /// The executor set its card's status; `None` for the single action versions before 0.9
    /// recorded (`SetSmartcardStatus`), which did not say which status.
    SetSmartcard(Option<SmartcardStatus>),
    Issue,
    /// A failed issuance gave its reserved profile back.
    Release,
    Recover,
    ReleaseAdminKey,
    ReleasePuk,
    ReleasePin,
    ProposePin,
    DistributePin,
    AuthenticationResponse,
    /// A one-time password was made and sent again (the old one no longer works).
    DistributeSecrets,
    /// The executor presented the one-time password.
    OneTimePasswordAccepted,
    /// A one-time password presented was wrong, expired or tried too often.
    OneTimePasswordRefused,
    /// The originator was shown the one-time password.
    ReleaseOneTimePassword,
}

impl AuditAction {
    /// Every action but the card status sets.
    const NAMED: [AuditAction; 21] = [
        AuditAction::Create,
        AuditAction::Approve,
        AuditAction::Deny,
        AuditAction::Complete,
        AuditAction::Cancel,
        AuditAction::Abandon,
        AuditAction::Execute,
        AuditAction::BindSmartcard,
        AuditAction::Issue,
        AuditAction::Release,
        AuditAction::Recover,
        AuditAction::ReleaseAdminKey,
        AuditAction::ReleasePuk,
        AuditAction::ReleasePin,
        AuditAction::ProposePin,
        AuditAction::DistributePin,
        AuditAction::AuthenticationResponse,
        AuditAction::DistributeSecrets,
        AuditAction::OneTimePasswordAccepted,
        AuditAction::OneTimePasswordRefused,
        AuditAction::ReleaseOneTimePassword,
    ];

    pub fn name(self) -> &'static str {
        use AuditAction as A;
        match self {
            A::Create => "Create",
            A::Approve => "Approve",
            A::Deny => "Deny",
            A::Complete => "Complete",
            A::Cancel => "Cancel",
            A::Abandon => "Abandon",
            A::Execute => "Execute",
            A::BindSmartcard => "BindSmartcard",
            A::SetSmartcard(None) => "SetSmartcardStatus",
            A::SetSmartcard(Some(s)) => match s {
                SmartcardStatus::Active => "SetSmartcardActive",
                SmartcardStatus::Suspended => "SetSmartcardSuspended",
                SmartcardStatus::Disabled => "SetSmartcardDisabled",
                SmartcardStatus::Retired => "SetSmartcardRetired",
                SmartcardStatus::New => "SetSmartcardNew",
                SmartcardStatus::Assigned => "SetSmartcardAssigned",
            },
            A::Issue => "Issue",
            A::Release => "Release",
            A::Recover => "Recover",
            A::ReleaseAdminKey => "ReleaseAdminKey",
            A::ReleasePuk => "ReleasePuk",
            A::ReleasePin => "ReleasePin",
            A::ProposePin => "ProposePin",
            A::DistributePin => "DistributePin",
            A::AuthenticationResponse => "AuthenticationResponse",
            A::DistributeSecrets => "DistributeSecrets",
            A::OneTimePasswordAccepted => "OneTimePasswordAccepted",
            A::OneTimePasswordRefused => "OneTimePasswordRefused",
            A::ReleaseOneTimePassword => "ReleaseOneTimePassword",
        }
    }

    /// Every action a history can record (an audit search lists them).
    pub fn all() -> impl Iterator<Item = AuditAction> {
        let card_sets = SmartcardStatus::ALL
            .into_iter()
            .map(|st| AuditAction::SetSmartcard(Some(st)));
        Self::NAMED
            .into_iter()
            .chain(card_sets)
            .chain([AuditAction::SetSmartcard(None)])
    }

    /// The action a history row records, as written by `name`.
    pub fn parse(s: &str) -> Option<AuditAction> {
        Self::all().find(|a| a.name() == s)
    }
}

/// One decided change of a request.
#[derive(Clone, Debug)]
pub struct Decided {
    /// The request as it must be stored; its `version` is the one the decision read.
    pub next: Request,
    pub approval: Option<Approval>,
    pub action: AuditAction,
    /// What the history says besides the action (never a secret).
    pub detail: String,
    pub effects: Vec<Effect>,
}

impl Decided {
    /// A change of the request alone, recorded as `action`.
    pub fn new(next: Request, action: AuditAction, detail: impl Into<String>) -> Self {
        Decided {
            next,
            approval: None,
            action,
            detail: detail.into(),
            effects: Vec::new(),
        }
    }

    pub fn with_effects(self, effects: Vec<Effect>) -> Self {
        Decided { effects, ..self }
    }
}

/// Why a decision refused: one of the rules' own errors. Each maps to one error code (the app's
/// `AppError: From<RuleError>` is exhaustive).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Action(#[from] ActionError),
    #[error(transparent)]
    Card(#[from] CardRuleError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    TargetDisabled(#[from] TargetDisabled),
    #[error(transparent)]
    CardTransition(#[from] SmartcardTransitionError),
    #[error("The request's workflow policy no longer exists.")]
    PolicyNotFound,
    #[error("Certificates were already issued for request {0}.")]
    AlreadyIssued(RequestId),
    #[error("The archived keys were already delivered for request {0}.")]
    AlreadyDelivered(RequestId),
    /// The request's template is gone (a defect: templates in use are not deleted).
    #[error("request {0} names a missing template")]
    TemplateGone(RequestId),
    #[error(
        "Request {request} is for the software template '{template}': no card can be bound to it."
    )]
    NotASmartcardRequest {
        request: RequestId,
        template: String,
    },
    #[error("Request {request} already has card {card}.")]
    SmartcardAlreadyBound {
        request: RequestId,
        card: SmartcardId,
    },
    #[error("Card {0} is in service as another smart card: retire that one first.")]
    SmartcardInUse(Guid),
    #[error("Card {card_id} was in service before, and template '{template}' does not allow reusing cards.")]
    SmartcardNotReusable { card_id: Guid, template: String },
    #[error("Request {0} is not waiting for a one-time password.")]
    NoSecretPending(RequestId),
    #[error("Only the originator of request {0} is shown its one-time password.")]
    SecretNotYours(RequestId),
    #[error("The one-time password of request {0} was already shown; ask the help desk to send a new one.")]
    SecretAlreadyShown(RequestId),
    /// The profile issuance claimed is no longer the request's (a defect if ever seen).
    #[error("the claimed profile of request {0} changed under issuance")]
    ClaimLost(RequestId),
}

impl From<FinishError> for RuleError {
    fn from(e: FinishError) -> Self {
        match e {
            FinishError::Card(e) => RuleError::Card(e),
            FinishError::Profile(e) => RuleError::Profile(e),
        }
    }
}
