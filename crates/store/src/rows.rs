//! Rows as stored, and their conversion to domain types. Shared by both engines: every column is
//! TEXT or a 64-bit integer so the same row types decode on SQLite and PostgreSQL.

use crate::StoreError;
use opencm_domain::request::{Approval, AuditEvent, DataValue, Decision, Request};
use opencm_domain::sddl::SecurityDescriptor;
use opencm_domain::{Guid, RequestFlags, RequestStatus, RequestType, Timestamp};

pub(crate) fn guid(s: &str) -> Result<Guid, StoreError> {
    s.parse().map_err(StoreError::corrupt)
}

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub uuid: String,
    pub request_type: i64,
    pub status: i64,
    pub flags: i64,
    pub data_collection: String,
    pub data_collection_flags: i64,
    pub originator_uuid: String,
    pub target_uuid: String,
    pub submitted: i64,
    pub completed: Option<i64>,
    pub new_profile_uuid: String,
    pub old_profile_uuid: String,
    pub new_smartcard_uuid: String,
    pub old_smartcard_uuid: String,
    pub priority: i64,
    pub comment: String,
    pub profile_template_uuid: String,
    pub security_descriptor: String,
    pub version: i64,
}

pub(crate) const REQUEST_COLUMNS: &str = "uuid, request_type, status, flags, data_collection, data_collection_flags, \
     originator_uuid, target_uuid, submitted, completed, new_profile_uuid, old_profile_uuid, new_smartcard_uuid, \
     old_smartcard_uuid, priority, comment, profile_template_uuid, security_descriptor, version";

impl RequestRow {
    pub fn into_domain(self) -> Result<Request, StoreError> {
        let items: Vec<(String, Option<String>)> =
            serde_json::from_str(&self.data_collection).map_err(StoreError::corrupt)?;
        Ok(Request {
            uuid: guid(&self.uuid)?,
            request_type: RequestType::from_number(self.request_type).ok_or_else(|| {
                StoreError::corrupt(format!("request type {}", self.request_type))
            })?,
            status: RequestStatus::from_number(self.status)
                .ok_or_else(|| StoreError::corrupt(format!("request status {}", self.status)))?,
            flags: RequestFlags(self.flags),
            data_collection: items
                .into_iter()
                .map(|(name, value)| DataValue { name, value })
                .collect(),
            data_collection_flags: self.data_collection_flags,
            originator: guid(&self.originator_uuid)?,
            target: guid(&self.target_uuid)?,
            submitted: Timestamp::from_micros(self.submitted),
            completed: Timestamp::from_option(self.completed),
            new_profile: guid(&self.new_profile_uuid)?,
            old_profile: guid(&self.old_profile_uuid)?,
            new_smartcard: guid(&self.new_smartcard_uuid)?,
            old_smartcard: guid(&self.old_smartcard_uuid)?,
            priority: u8::try_from(self.priority).map_err(StoreError::corrupt)?,
            comment: self.comment,
            profile_template: guid(&self.profile_template_uuid)?,
            security_descriptor: SecurityDescriptor::parse(&self.security_descriptor)
                .map_err(StoreError::corrupt)?,
            version: self.version,
        })
    }
}

pub(crate) fn data_collection_json(r: &Request) -> String {
    let items: Vec<(&str, Option<&str>)> = r
        .data_collection
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_deref()))
        .collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub uuid: String,
    pub login: String,
    pub display_name: String,
    pub sid: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    pub request_uuid: String,
    pub approver_uuid: String,
    pub decision: String,
    pub comment: String,
    pub at: i64,
}

impl ApprovalRow {
    pub fn into_domain(self) -> Result<Approval, StoreError> {
        Ok(Approval {
            request: guid(&self.request_uuid)?,
            approver: guid(&self.approver_uuid)?,
            decision: Decision::parse(&self.decision)
                .ok_or_else(|| StoreError::corrupt(&self.decision))?,
            comment: self.comment,
            at: Timestamp::from_micros(self.at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub request_uuid: String,
    pub at: i64,
    pub actor_uuid: String,
    pub action: String,
    pub from_status: i64,
    pub to_status: i64,
    pub detail: String,
}

impl AuditRow {
    pub fn into_domain(self) -> Result<AuditEvent, StoreError> {
        let status = |n: i64| {
            RequestStatus::from_number(n).ok_or_else(|| StoreError::corrupt(format!("status {n}")))
        };
        Ok(AuditEvent {
            request: guid(&self.request_uuid)?,
            at: Timestamp::from_micros(self.at),
            actor: guid(&self.actor_uuid)?,
            action: self.action,
            from: status(self.from_status)?,
            to: status(self.to_status)?,
            detail: self.detail,
        })
    }
}
