use opencm_domain::policy::{ProvidedBy, WorkflowPolicy};
use opencm_domain::smartcard::{PinPolicy, SmartcardConfig};
use opencm_domain::template::ProfileTemplate;
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
        ProfileTemplateLimitedView {
            name: t.name.clone(),
            description: t.description.clone(),
            uuid: t.uuid.into(),
            is_smartcard_profile_template: t.kind.is_smartcard(),
            is_virtual_smartcard_profile_template: t.kind.is_virtual(),
        }
    }
}

/// As on the MIM CM reference page "Get Workflow Policy" (whose example body is unpublished; the
/// property list is docs/API.md, "Objects"'s). Role descriptors are SDDL strings.
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

/// `GET /profiletemplates/{id}/configuration/smartcards`, in the published example's order and
/// shape; opencm's own settings (`AdminKeyAlgorithm`, `PivSlots`, `ResetOnRetire`,
/// `TemporaryCardDays`) follow MIM's.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SmartcardConfigView {
    pub user_pin_option: i64,
    pub user_pin_policy: PinPolicyView,
    pub admin_pin_policy: PinPolicyView,
    pub default_admin_key_hex: String,
    pub provider_name: String,
    pub provider_id: String,
    pub provider_type: i64,
    pub diversify_admin_key: bool,
    pub card_initialization_type: String,
    pub card_initialization_data: String,
    pub initialize_new_smartcard: bool,
    pub use_secure_key_injection: bool,
    pub do_not_install_ca_certificates: bool,
    pub certificate_label: String,
    pub max_number_of_certificates: u32,
    pub allow_smartcard_reuse: bool,
    pub erase_on_overflow: bool,
    pub use_virtual_smartcards: bool,
    pub smartcard_print_policy: PrintPolicyView,
    pub admin_key_algorithm: &'static str,
    pub piv_slots: std::collections::BTreeMap<String, String>,
    pub reset_on_retire: bool,
    pub temporary_card_days: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PinPolicyView {
    pub min_length: u32,
    pub max_length: u32,
    pub character_set: i64,
    pub rollover: bool,
    pub default_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PrintPolicyView {
    pub field_mapping: String,
    pub project_name: String,
    pub card_name: String,
    pub print: bool,
}

impl From<&PinPolicy> for PinPolicyView {
    fn from(p: &PinPolicy) -> Self {
        PinPolicyView {
            min_length: p.min_length,
            max_length: p.max_length,
            character_set: p.character_set.number(),
            rollover: p.rollover,
            default_value: p.default_value.clone(),
        }
    }
}

impl From<&SmartcardConfig> for SmartcardConfigView {
    fn from(c: &SmartcardConfig) -> Self {
        SmartcardConfigView {
            user_pin_option: c.user_pin_option.number(),
            user_pin_policy: PinPolicyView::from(&c.user_pin_policy),
            admin_pin_policy: PinPolicyView::from(&c.admin_pin_policy),
            default_admin_key_hex: c.default_admin_key_hex(),
            provider_name: c.provider_name.clone(),
            provider_id: c.provider_id.clone(),
            provider_type: c.provider_type,
            diversify_admin_key: c.diversify_admin_key,
            card_initialization_type: c.card_initialization_type.clone(),
            card_initialization_data: c.card_initialization_data.clone(),
            initialize_new_smartcard: c.initialize_new_smartcard,
            use_secure_key_injection: c.use_secure_key_injection,
            do_not_install_ca_certificates: c.do_not_install_ca_certificates,
            certificate_label: c.certificate_label.clone(),
            max_number_of_certificates: c.max_number_of_certificates,
            allow_smartcard_reuse: c.allow_smartcard_reuse,
            erase_on_overflow: c.erase_on_overflow,
            use_virtual_smartcards: c.use_virtual_smartcards,
            smartcard_print_policy: PrintPolicyView {
                field_mapping: c.print_policy.field_mapping.clone(),
                project_name: c.print_policy.project_name.clone(),
                card_name: c.print_policy.card_name.clone(),
                print: c.print_policy.print,
            },
            admin_key_algorithm: c.admin_key_algorithm.name(),
            piv_slots: c
                .piv_slots
                .iter()
                .map(|(k, v)| (k.clone(), v.to_ascii_lowercase()))
                .collect(),
            reset_on_retire: c.reset_on_retire,
            temporary_card_days: c.temporary_card_days,
        }
    }
}
