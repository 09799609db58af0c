use opencm_domain::policy::{ProfileTemplate, ProvidedBy, WorkflowPolicy};
use opencm_domain::Guid;
use serde::Serialize;

/// As on the MIM CM reference page "Get Profile Templates".
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProfileTemplateLimitedView {
    pub name: String,
    pub description: String,
    pub uuid: Guid,
    pub is_smartcard_profile_template: bool,
    pub is_virtual_smartcard_profile_template: bool,
}

impl From<&ProfileTemplate> for ProfileTemplateLimitedView {
    fn from(t: &ProfileTemplate) -> Self {
        use opencm_domain::policy::TemplateKind::*;
        ProfileTemplateLimitedView {
            name: t.name.clone(),
            description: t.description.clone(),
            uuid: t.uuid,
            is_smartcard_profile_template: matches!(t.kind, Smartcard | VirtualSmartcard),
            is_virtual_smartcard_profile_template: t.kind == VirtualSmartcard,
        }
    }
}

/// As on the MIM CM reference page "Get Workflow Policy" (whose example body is unpublished; the
/// property list is SPEC §3's). Role descriptors are SDDL strings.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkflowPolicyView {
    pub approvals_needed: u32,
    pub authorized_approver: String,
    pub authorized_enrollment_agent: String,
    pub authorized_initiator: String,
    pub collect_comments: bool,
    pub collect_request_priority: bool,
    pub default_request_priority: u8,
    pub documents: Vec<String>,
    pub enabled: bool,
    pub enroll_agent_required: bool,
    pub one_time_password_policy: String,
    pub personalization: String,
    pub policy_data_collection: Vec<DataItemPolicyView>,
    pub self_service_enabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataItemPolicyView {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub provided_by: &'static str,
    pub validation: Option<String>,
}

impl From<&WorkflowPolicy> for WorkflowPolicyView {
    fn from(p: &WorkflowPolicy) -> Self {
        WorkflowPolicyView {
            approvals_needed: p.approvals_needed,
            authorized_approver: p.authorized_approver.to_string(),
            authorized_enrollment_agent: p.authorized_enrollment_agent.to_string(),
            authorized_initiator: p.authorized_initiator.to_string(),
            collect_comments: p.collect_comments,
            collect_request_priority: p.collect_request_priority,
            default_request_priority: p.default_request_priority,
            documents: p.documents.clone(),
            enabled: p.enabled,
            enroll_agent_required: p.enroll_agent_required,
            one_time_password_policy: p.one_time_password_policy.clone(),
            personalization: p.personalization.clone(),
            policy_data_collection: p
                .data_collection
                .iter()
                .map(|d| DataItemPolicyView {
                    name: d.name.clone(),
                    description: d.description.clone(),
                    required: d.required,
                    provided_by: match d.provided_by {
                        ProvidedBy::Subscriber => "Subscriber",
                        ProvidedBy::Manager => "Manager",
                    },
                    validation: d.validation.as_ref().map(|v| v.source().to_string()),
                })
                .collect(),
            self_service_enabled: p.self_service_enabled,
        }
    }
}
