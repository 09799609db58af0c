use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::Guid;
use serde::Serialize;

/// A request, as on the MIM CM reference page "Get Request" (GET /requests/{id}): exactly these
/// 21 properties. `SecurityDescriptor` is clean SDDL, without MIM's U+0000 padding.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestView {
    pub uuid: Guid,
    pub request_type: i64,
    pub status: i64,
    pub flags: i64,
    pub data_collection: Vec<DataItemView>,
    pub data_collection_flags: i64,
    pub originator_user_uuid: Guid,
    pub target_user_uuid: Guid,
    pub submitted: String,
    pub completed: String,
    pub new_profile_uuid: Guid,
    pub old_profile_uuid: Guid,
    pub new_smartcard_uuid: Guid,
    pub old_smartcard_uuid: Guid,
    pub priority: u8,
    pub comment: String,
    pub profile_template_uuid: Guid,
    pub security_descriptor: String,
    pub is_smartcard: bool,
    pub is_enrollment_agent: bool,
    pub is_data_collection_complete: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataItemView {
    pub name: String,
    pub value: Option<String>,
}

impl From<&Request> for RequestView {
    fn from(r: &Request) -> Self {
        RequestView {
            uuid: r.uuid.into(),
            request_type: r.request_type.number(),
            status: r.status.number(),
            flags: r.flags.0,
            data_collection: r
                .data_collection
                .iter()
                .map(|d| DataItemView {
                    name: d.name.clone(),
                    value: d.value.clone(),
                })
                .collect(),
            data_collection_flags: r.data_collection_flags,
            originator_user_uuid: r.originator.into(),
            target_user_uuid: r.target.into(),
            submitted: r.submitted.to_string(),
            completed: super::time(r.completed),
            new_profile_uuid: super::nullable(r.new_profile),
            old_profile_uuid: super::nullable(r.old_profile),
            new_smartcard_uuid: super::nullable(r.new_smartcard),
            old_smartcard_uuid: super::nullable(r.old_smartcard),
            priority: r.priority,
            comment: r.comment.clone(),
            profile_template_uuid: r.profile_template.into(),
            security_descriptor: r.security_descriptor.to_string(),
            is_smartcard: r.flags.is_smartcard(),
            is_enrollment_agent: r.flags.is_enrollment_agent(),
            is_data_collection_complete: r.is_data_collection_complete(),
        }
    }
}

/// opencm extension: one decision in `GET /requests/{id}/approvals`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ApprovalView {
    pub request_uuid: Guid,
    pub approver_user_uuid: Guid,
    pub decision: &'static str,
    pub comment: String,
    pub decided: String,
}

impl From<&Approval> for ApprovalView {
    fn from(a: &Approval) -> Self {
        ApprovalView {
            request_uuid: a.request.into(),
            approver_user_uuid: a.approver.into(),
            decision: a.decision.name(),
            comment: a.comment.clone(),
            decided: a.at.to_string(),
        }
    }
}

/// opencm extension: one audit event in `GET /requests/{id}/history`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AuditEventView {
    pub time: String,
    pub actor_user_uuid: Guid,
    pub action: String,
    pub from_status: i64,
    pub to_status: i64,
    pub detail: String,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        AuditEventView {
            time: e.at.to_string(),
            actor_user_uuid: e.actor.into(),
            action: e.action.clone(),
            from_status: e.from.number(),
            to_status: e.to.number(),
            detail: e.detail.clone(),
        }
    }
}
