//! Wire types: MIM CM JSON exactly as the reference pages show it (PascalCase out, enums as
//! integers, GUIDs lowercase, MIM timestamps). Each type says which page it mirrors; deliberate
//! differences are listed in docs/COMPATIBILITY.md.

pub mod bodies;
mod certificate;
mod data_collection;
mod request;
mod smartcard;
mod template;

pub use certificate::{
    CertificateResponseView, GenerationOptionView, IssuedCertificateView, ProfileView,
};
pub use data_collection::parse_data_collection;
pub use request::{ApprovalView, AuditEventView, RequestView};
pub use smartcard::SmartcardView;
pub use template::{ProfileTemplateLimitedView, SmartcardConfigView, WorkflowPolicyView};

pub use opencm_domain::limits::excerpt;

/// A client's text for a field named `what`, within the field's bounds (`opencm_domain::limits`).
pub fn bounded(what: &str, text: &str, max: usize) -> Result<(), crate::ApiError> {
    opencm_domain::limits::check(what, text, max)
        .map_err(|e| crate::ApiError::new(opencm_app::ErrorCode::InvalidBody, format!("{e}.")))
}

/// An optional id as MIM writes it: the all-zero GUID for "none". Only the wire knows that
/// spelling; everything behind it has `Option`.
pub(crate) fn nullable<I: Into<opencm_domain::Guid>>(id: Option<I>) -> opencm_domain::Guid {
    id.map_or(opencm_domain::Guid::NIL, Into::into)
}

/// An optional time as MIM writes it: `0001-01-01T00:00:00` for "not set".
pub(crate) fn time(t: Option<opencm_domain::Timestamp>) -> String {
    t.unwrap_or(opencm_domain::Timestamp::UNSET).to_string()
}
