//! A software profile as stored.

use super::{ProfileState, ProfileStatus};
use crate::{Guid, Timestamp};

/// A software profile (MIM "Profile").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    pub uuid: Guid,
    pub status: ProfileStatus,
    pub flags: i64,
    pub parent: Guid,
    pub primary: Guid,
    pub assigned_user: Guid,
    pub template: Guid,
    pub template_version: i64,
    pub comment: String,
    pub request: Guid,
    pub created: Timestamp,
    /// Incremented by every change; writes that decided on the profile carry the version read.
    pub version: i64,
    /// The card the profile lives on; nil for software profiles.
    pub smartcard: Guid,
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
