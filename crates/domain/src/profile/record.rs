//! A software profile as stored.

use super::{ProfileState, ProfileStatus};
use crate::{ProfileId, RequestId, SmartcardId, TemplateId, Timestamp, UserId};

/// A software profile (MIM "Profile").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    pub uuid: ProfileId,
    pub status: ProfileStatus,
    pub flags: i64,
    /// The profile a renewal replaced.
    pub parent: Option<ProfileId>,
    /// For a duplicate: the profile it copies.
    pub primary: Option<ProfileId>,
    pub assigned_user: UserId,
    pub template: TemplateId,
    pub template_version: i64,
    pub comment: String,
    pub request: RequestId,
    pub created: Timestamp,
    /// Incremented by every change; writes that decided on the profile carry the version read.
    pub version: i64,
    /// The card the profile lives on; `None` for software profiles.
    pub smartcard: Option<SmartcardId>,
}

impl ProfileRecord {
    /// The profile as a decision reads it.
    pub fn state(&self) -> ProfileState {
        ProfileState {
            uuid: self.uuid,
            status: self.status,
            version: self.version,
        }
    }
}
