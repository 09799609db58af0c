//! opencm's rules, free of IO: identifiers, the MIM CM enumerations with their wire numbers,
//! SDDL security descriptors and the MS-DTYP access check, profile templates and workflow policies,
//! and the request lifecycle as a typed state machine.
//!
//! This crate must not depend on axum, sqlx, tokio or anything that performs IO. Every decision takes
//! its inputs (caller, clock reading, policy) explicitly so it can be tested as a plain function.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod certificate;
pub mod certmap;
pub mod decided;
pub mod enums;
pub mod identity;
pub mod ids;
pub mod issued;
pub mod lifecycle;
pub mod limits;
pub mod notification;
pub mod offboarding;
pub mod policy;
pub mod profile;
pub mod request;
pub mod sddl;
pub mod session;
pub mod smartcard;
pub mod template;
#[cfg(test)]
mod testing;
pub mod timestamp;

pub use enums::{RequestFlags, RequestStatus, RequestType};
pub use identity::{Principal, Sid};
pub use ids::{Guid, GuidError, ProfileId, RequestId, SmartcardId, TemplateId, UserId};
pub use lifecycle::{Event, Outcome, TransitionError};
pub use timestamp::Timestamp;
