//! `AppError`: what a use case can answer besides success — not found, forbidden, conflict,
//! invalid, unavailable, internal — each with a stable `ErrorCode`. The API crate maps the kind to
//! an HTTP status in one exhaustive `match`; nothing here knows HTTP.

use crate::ports::StoreError;
use opencm_domain::decided::RuleError;
use opencm_domain::profile::{ProfileError, ProfileStatus};
use opencm_domain::request::{ActionError, CreateError, TargetDisabled};
use opencm_domain::smartcard::{
    CardKindError, CardRuleError, CardSecret, FinishError, SmartcardStatus,
    SmartcardTransitionError,
};

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Every stable `ErrorCode` opencm sends (docs/API.md, "Errors"), written as its PascalCase name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $name),*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$name => stringify!($name)),*
                }
            }
        }
    };
}

error_codes! {
    AccessDenied,
    AlreadyDecided,
    AlreadyDelivered,
    AlreadyExists,
    AlreadyIssued,
    AlreadyRevoked,
    BadRequest,
    /// The CA's key (on an HSM) could not sign right now.
    CaUnavailable,
    CommentRequired,
    /// A request changed by others so often that the change could not be applied; retry.
    ConcurrentUpdate,
    DatabaseUnavailable,
    /// The LDAP / Active Directory server cannot be reached.
    DirectoryUnavailable,
    /// The OpenID provider (its discovery document or its keys) cannot be reached or read.
    IdentityProviderUnavailable,
    InternalError,
    InvalidBody,
    InvalidCertificateRequest,
    InvalidCertificateRequests,
    InvalidDataCollection,
    InvalidDecision,
    InvalidGuid,
    InvalidPath,
    InvalidPriority,
    InvalidQuery,
    InvalidRequest,
    InvalidRequestType,
    InvalidStatus,
    InvalidTransition,
    MalformedJson,
    MethodNotAllowed,
    NoCertificates,
    NotFound,
    /// Completing a request that should have issued certificates and issued none.
    NothingIssued,
    NothingToRecover,
    /// A card bound to a request for a software template.
    NotASmartcardRequest,
    PayloadTooLarge,
    PfxPasswordRequired,
    PolicyNotEnabled,
    PolicyNotFound,
    /// The profile a request acts on is in a status the request cannot act on; one code per
    /// status, so the code says which.
    ProfileNew,
    ProfileActive,
    ProfileDisabled,
    ProfileSuspended,
    ProfileRetired,
    ProfileNotAllowed,
    ProfileNotFound,
    ProfileRequired,
    ProfileTemplateNotFound,
    /// The request line and headers exceed what the server buffers (431).
    RequestHeaderTooLarge,
    RequestNotFound,
    /// The request body did not arrive within the server's body timeout.
    RequestTimeout,
    /// The card a request acts on is in a status the request cannot act on; one code per
    /// status, as for profiles.
    SmartcardNew,
    SmartcardAssigned,
    SmartcardActive,
    SmartcardDisabled,
    SmartcardSuspended,
    SmartcardRetired,
    SmartcardAlreadyBound,
    SmartcardConfigurationNotFound,
    /// `cardid` does not match the card bound to the request.
    SmartcardMismatch,
    /// A smart card request that needs a card before it can go on has none bound.
    SmartcardNotBound,
    /// The card holds as many certificates as its template allows.
    SmartcardFull,
    /// The status is not one the request type may set on its card.
    SmartcardStatusNotAllowed,
    /// The template leaves the PIN to the user: the server proposes none.
    PinNotServerProposed,
    /// The request type sets no PIN on its card (Retire, Revoke, Suspend, Renew…).
    PinNotReleased,
    /// The request type is not one the card's PUK is released to.
    PukNotReleased,
    /// The card id is live on another card.
    SmartcardInUse,
    /// An Enroll named an existing card: an enrolment makes its own.
    SmartcardNotAllowed,
    SmartcardNotReusable,
    SmartcardNotFound,
    /// TemporaryCardDisable or TemporaryCardRetire named a permanent card.
    SmartcardNotTemporary,
    /// Duplicate or TemporaryCards named a temporary card.
    SmartcardTemporary,
    /// The request type acts on a card and none was named.
    SmartcardRequired,
    TokenNotFound,
    Unauthorized,
    UnsupportedMediaType,
    UserNotFound,
    /// The request would give something to a user who is disabled (offboarded).
    UserDisabled,
    /// opencm: the request waits for its one-time password before it is executed.
    OneTimePasswordRequired,
    /// opencm: the one-time password presented is wrong, expired or was tried too often.
    OneTimePasswordRefused,
    /// opencm: the request waits for no one-time password, or its originator was shown it.
    OneTimePasswordNotPending,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// The kind of failure each code is — and so its HTTP status (`api/src/error.rs`). This one
    /// exhaustive match is the only place a code is paired with a kind: every `AppError` and
    /// `ApiError` takes its kind from its code, and a new code does not compile until it is
    /// placed here. docs/API.md's table of codes by status is checked against it by a test.
    pub fn kind(self) -> ErrorKind {
        use ErrorCode as C;
        use ErrorKind as K;
        match self {
            C::AccessDenied | C::OneTimePasswordRequired | C::OneTimePasswordRefused => {
                K::Forbidden
            }
            C::Unauthorized => K::Unauthenticated,
            C::InternalError => K::Internal,
            C::DatabaseUnavailable
            | C::DirectoryUnavailable
            | C::IdentityProviderUnavailable
            | C::CaUnavailable => K::Unavailable,
            C::MethodNotAllowed => K::WrongMethod,
            C::PayloadTooLarge => K::BodyTooLarge,
            C::RequestHeaderTooLarge => K::HeadersTooLarge,
            C::RequestTimeout => K::TooSlow,
            C::UnsupportedMediaType => K::WrongMediaType,
            C::NotFound
            | C::RequestNotFound
            | C::ProfileNotFound
            | C::ProfileTemplateNotFound
            | C::PolicyNotFound
            | C::SmartcardNotFound
            | C::SmartcardConfigurationNotFound
            | C::TokenNotFound
            | C::UserNotFound => K::NotFound,
            C::BadRequest
            | C::CommentRequired
            | C::InvalidBody
            | C::InvalidCertificateRequest
            | C::InvalidCertificateRequests
            | C::InvalidDataCollection
            | C::InvalidDecision
            | C::InvalidGuid
            | C::InvalidPath
            | C::InvalidPriority
            | C::InvalidQuery
            | C::InvalidRequest
            | C::InvalidRequestType
            | C::InvalidStatus
            | C::MalformedJson
            | C::NoCertificates
            | C::PfxPasswordRequired
            | C::PolicyNotEnabled
            | C::ProfileNotAllowed
            | C::ProfileRequired
            | C::SmartcardNotAllowed
            | C::SmartcardRequired => K::Invalid,
            C::AlreadyDecided
            | C::AlreadyDelivered
            | C::AlreadyExists
            | C::AlreadyIssued
            | C::AlreadyRevoked
            | C::ConcurrentUpdate
            | C::InvalidTransition
            | C::NothingIssued
            | C::NothingToRecover
            | C::NotASmartcardRequest
            | C::ProfileNew
            | C::ProfileActive
            | C::ProfileDisabled
            | C::ProfileSuspended
            | C::ProfileRetired
            | C::SmartcardNew
            | C::SmartcardAssigned
            | C::SmartcardActive
            | C::SmartcardDisabled
            | C::SmartcardSuspended
            | C::SmartcardRetired
            | C::SmartcardAlreadyBound
            | C::SmartcardMismatch
            | C::SmartcardNotBound
            | C::SmartcardFull
            | C::SmartcardStatusNotAllowed
            | C::PinNotServerProposed
            | C::PinNotReleased
            | C::PukNotReleased
            | C::SmartcardInUse
            | C::SmartcardNotReusable
            | C::SmartcardNotTemporary
            | C::SmartcardTemporary
            | C::OneTimePasswordNotPending
            | C::UserDisabled => K::Conflict,
        }
    }

    /// The code that names a profile's status in a 409.
    pub fn profile_state(s: ProfileStatus) -> ErrorCode {
        match s {
            ProfileStatus::New => ErrorCode::ProfileNew,
            ProfileStatus::Active => ErrorCode::ProfileActive,
            ProfileStatus::Disabled => ErrorCode::ProfileDisabled,
            ProfileStatus::Suspended => ErrorCode::ProfileSuspended,
            ProfileStatus::Retired => ErrorCode::ProfileRetired,
        }
    }

    /// The code that names a card's status in a 409.
    pub fn smartcard_state(s: SmartcardStatus) -> ErrorCode {
        match s {
            SmartcardStatus::New => ErrorCode::SmartcardNew,
            SmartcardStatus::Assigned => ErrorCode::SmartcardAssigned,
            SmartcardStatus::Active => ErrorCode::SmartcardActive,
            SmartcardStatus::Disabled => ErrorCode::SmartcardDisabled,
            SmartcardStatus::Suspended => ErrorCode::SmartcardSuspended,
            SmartcardStatus::Retired => ErrorCode::SmartcardRetired,
        }
    }
}

/// The kinds of failure a client can act on differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input is wrong; fix it.
    Invalid,
    /// Not authenticated.
    Unauthenticated,
    /// Authenticated but not allowed.
    Forbidden,
    /// Unknown, or not visible to the caller.
    NotFound,
    /// The object's current state does not allow it.
    Conflict,
    /// The database cannot be reached now; try again.
    Unavailable,
    /// A fault of ours; the detail is logged, never shown.
    Internal,
    /// The HTTP layer's own refusals: a method the resource does not take, a body or headers too
    /// large, a body too slow, a content type that is not JSON.
    WrongMethod,
    BodyTooLarge,
    HeadersTooLarge,
    TooSlow,
    WrongMediaType,
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// What went wrong; its kind (and HTTP status) is `code.kind()`.
    pub code: ErrorCode,
    /// A sentence a person can act on.
    pub message: String,
    /// Logged, never sent.
    pub internal: Option<String>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            internal: None,
        }
    }

    /// The kind of failure, from the code.
    pub fn kind(&self) -> ErrorKind {
        self.code.kind()
    }

    /// An unavailable dependency (`code`), with the detail for the log.
    pub fn unavailable(code: ErrorCode, message: impl Into<String>, detail: String) -> Self {
        AppError {
            internal: Some(detail),
            ..Self::new(code, message)
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        AppError {
            code: ErrorCode::InternalError,
            message: "The server failed to process the request. Quote the correlation id to your administrator.".into(),
            internal: Some(detail.into()),
        }
    }
}

impl AppError {
    /// A CA failure while `doing` something: a key on a token that did not answer is 503
    /// `CaUnavailable` (try again shortly); anything else is internal.
    pub fn from_ca(doing: &str, e: opencm_ca::CaError) -> AppError {
        match e {
            opencm_ca::CaError::Unavailable(detail) => AppError::unavailable(
                ErrorCode::CaUnavailable,
                "The CA's key (HSM) is unavailable; try again shortly.",
                format!("{doing}: {detail}"),
            ),
            other => AppError::internal(format!("{doing} failed: {other}")),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => AppError::unavailable(
                ErrorCode::DatabaseUnavailable,
                "The database is unavailable; try again shortly.",
                detail,
            ),
            StoreError::DirectoryUnavailable(detail) => AppError::unavailable(
                ErrorCode::DirectoryUnavailable,
                "The user directory is unreachable; try again shortly.",
                detail,
            ),
            StoreError::Duplicate(what) => {
                AppError::new(ErrorCode::AlreadyExists, format!("{what} already exists."))
            }
            other => AppError::internal(other.to_string()),
        }
    }
}

impl From<ActionError> for AppError {
    fn from(e: ActionError) -> Self {
        let msg = e.to_string();
        match e {
            ActionError::NotFound(_) => AppError::new(ErrorCode::RequestNotFound, msg),
            ActionError::Forbidden(..) => AppError::new(ErrorCode::AccessDenied, msg),
            ActionError::Transition(_) => AppError::new(ErrorCode::InvalidTransition, msg),
            ActionError::AlreadyDecided(_) => AppError::new(ErrorCode::AlreadyDecided, msg),
            ActionError::SecretRequired(_) => {
                AppError::new(ErrorCode::OneTimePasswordRequired, msg)
            }
        }
    }
}

impl From<CreateError> for AppError {
    fn from(e: CreateError) -> Self {
        use ErrorCode as C;
        let msg = e.to_string();
        match e {
            CreateError::TemplateNotFound(_) => AppError::new(C::ProfileTemplateNotFound, msg),
            CreateError::PolicyNotEnabled(..) => AppError::new(C::PolicyNotEnabled, msg),
            CreateError::NotAllowed(_) => AppError::new(C::AccessDenied, msg),
            CreateError::MissingData(_)
            | CreateError::InvalidData(_)
            | CreateError::UnknownData(..)
            | CreateError::DuplicateData(_) => AppError::new(C::InvalidDataCollection, msg),
            CreateError::CommentRequired(_) => AppError::new(C::CommentRequired, msg),
            CreateError::PriorityOutOfRange(_) => AppError::new(C::InvalidPriority, msg),
            CreateError::ProfileRequired(_) => AppError::new(C::ProfileRequired, msg),
            CreateError::ProfileNotAllowed(_) => AppError::new(C::ProfileNotAllowed, msg),
            CreateError::ProfileState(e) => AppError::from(e),
            CreateError::SmartcardState(e) => AppError::from(e),
            CreateError::SmartcardRequired(_) => AppError::new(C::SmartcardRequired, msg),
            CreateError::SmartcardNotAllowed(_) => AppError::new(C::SmartcardNotAllowed, msg),
            CreateError::ProfileNotFound(_) => AppError::new(C::ProfileNotFound, msg),
            CreateError::TargetNotFound(_) => AppError::new(C::UserNotFound, msg),
            CreateError::Body(_) | CreateError::Text(_) | CreateError::TooManyItems(_) => {
                AppError::new(C::InvalidBody, msg)
            }
            CreateError::TargetDisabled(e) => AppError::from(e),
            CreateError::SmartcardKind(k) => AppError::new(
                match k {
                    CardKindError::NotTemporary(..) => C::SmartcardNotTemporary,
                    CardKindError::Temporary(..) => C::SmartcardTemporary,
                },
                msg,
            ),
        }
    }
}

impl From<ProfileError> for AppError {
    fn from(e: ProfileError) -> Self {
        let code = match (&e, e.status()) {
            (ProfileError::NothingIssued { .. }, _) => ErrorCode::NothingIssued,
            (_, Some(status)) => ErrorCode::profile_state(status),
            (_, None) => ErrorCode::InvalidTransition,
        };
        AppError::new(code, e.to_string())
    }
}

impl From<CardRuleError> for AppError {
    fn from(e: CardRuleError) -> Self {
        use ErrorCode as C;
        let msg = e.to_string();
        let code = match &e {
            CardRuleError::NotBound(_) => C::SmartcardNotBound,
            CardRuleError::Own { status, .. } | CardRuleError::Source { status, .. } => {
                C::smartcard_state(*status)
            }
            CardRuleError::NotOwnCard { .. } => C::SmartcardMismatch,
            CardRuleError::NotSettable { .. } => C::SmartcardStatusNotAllowed,
            CardRuleError::SecretNotReleased { secret, .. } => match secret {
                CardSecret::Pin => C::PinNotReleased,
                // Only the PIN and the PUK are ever refused by request type.
                CardSecret::Puk | CardSecret::AdminKey | CardSecret::ChallengeResponse => {
                    C::PukNotReleased
                }
            },
        };
        AppError::new(code, msg)
    }
}

impl From<FinishError> for AppError {
    fn from(e: FinishError) -> Self {
        match e {
            FinishError::Card(e) => e.into(),
            FinishError::Profile(e) => e.into(),
        }
    }
}

impl From<RuleError> for AppError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Action(e) => e.into(),
            RuleError::Card(e) => e.into(),
            RuleError::Profile(e) => e.into(),
            RuleError::TargetDisabled(e) => e.into(),
            RuleError::CardTransition(e) => e.into(),
            RuleError::PolicyNotFound => AppError::new(ErrorCode::PolicyNotFound, e.to_string()),
            RuleError::NoSecretPending(_) | RuleError::SecretAlreadyShown(_) => {
                AppError::new(ErrorCode::OneTimePasswordNotPending, e.to_string())
            }
            RuleError::SecretNotYours(_) => AppError::new(ErrorCode::AccessDenied, e.to_string()),
            RuleError::AlreadyIssued(_) => AppError::new(ErrorCode::AlreadyIssued, e.to_string()),
            RuleError::AlreadyDelivered(_) => {
                AppError::new(ErrorCode::AlreadyDelivered, e.to_string())
            }
            RuleError::ClaimLost(_) | RuleError::TemplateGone(_) => {
                AppError::internal(e.to_string())
            }
            RuleError::NotASmartcardRequest { .. } => {
                AppError::new(ErrorCode::NotASmartcardRequest, e.to_string())
            }
            RuleError::SmartcardAlreadyBound { .. } => {
                AppError::new(ErrorCode::SmartcardAlreadyBound, e.to_string())
            }
            RuleError::SmartcardInUse(_) => AppError::new(ErrorCode::SmartcardInUse, e.to_string()),
            RuleError::SmartcardNotReusable { .. } => {
                AppError::new(ErrorCode::SmartcardNotReusable, e.to_string())
            }
        }
    }
}

impl From<TargetDisabled> for AppError {
    fn from(e: TargetDisabled) -> Self {
        AppError::new(ErrorCode::UserDisabled, e.to_string())
    }
}

impl From<SmartcardTransitionError> for AppError {
    fn from(e: SmartcardTransitionError) -> Self {
        AppError::new(ErrorCode::smartcard_state(e.from), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_their_pascal_case_names_and_unique() {
        let names: std::collections::HashSet<&str> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::ProfileRetired.as_str(), "ProfileRetired");
        assert_eq!(
            ErrorCode::profile_state(ProfileStatus::Disabled),
            ErrorCode::ProfileDisabled
        );
    }
}
