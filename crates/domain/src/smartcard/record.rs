//! A smart card or TPM virtual smart card as stored.

use crate::{Guid, RequestId, SmartcardId, TemplateId, Timestamp, UserId};

/// A smart card or virtual smart card as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmartcardRecord {
    pub uuid: SmartcardId,
    pub status: super::SmartcardStatus,
    pub flags: i64,
    /// The card's own id (a GUID: the CHUID's, or the minidriver's card id), lowercase.
    pub card_id: Guid,
    /// Lower-case hex (`parse_atr`).
    pub atr: String,
    pub middleware: String,
    pub assigned_user: UserId,
    pub template: TemplateId,
    pub template_version: i64,
    /// The request it was bound for.
    pub request: RequestId,
    pub comment: String,
    pub created: Timestamp,
    pub version: i64,
    /// The master admin-key version the card's admin key is diversified under.
    pub key_version: i64,
    /// The card this one replaced (a Renew onto a new card).
    pub parent: Option<SmartcardId>,
    /// For a duplicate (Flags Duplicate): the card it duplicates.
    pub primary: Option<SmartcardId>,
    /// For a temporary card (Flags Temporary): the user's permanent card.
    pub permanent: Option<SmartcardId>,
    /// When a temporary card stops working; `None` for permanent cards.
    pub expires: Option<Timestamp>,
    /// The GUID the card's secrets (diversified admin key, PUK) derive from: this record's own
    /// uuid, so each binding of a card id has secrets of its own (the card id for cards bound
    /// before opencm did so).
    pub key_diversifier: Guid,
}

impl SmartcardRecord {
    /// The card as a decision reads it.
    pub fn state(&self) -> super::SmartcardState {
        super::SmartcardState {
            uuid: self.uuid,
            status: self.status,
            version: self.version,
            temporary: self.flags & crate::enums::profile_flags::TEMPORARY != 0,
        }
    }
}
