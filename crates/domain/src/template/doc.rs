//! The text form of a profile template: the `[[template]]` tables of an import file (snake_case
//! keys, docs/TEMPLATES.md) and the JSON body the store keeps. Only its shape is checked here;
//! `ProfileTemplate::try_from` checks the rest.

use crate::certificate::CertificateTemplate;
use crate::ids::Guid;
use crate::policy::{PolicyKey, WorkflowPolicy};
use crate::sddl::SecurityDescriptor;
use crate::smartcard::SmartcardConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The `kind` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKindName {
    Software,
    Smartcard,
    VirtualSmartcard,
}

impl TemplateKindName {
    pub fn name(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Smartcard => "smartcard",
            Self::VirtualSmartcard => "virtual_smartcard",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateDoc {
    pub uuid: Guid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: TemplateKindName,
    #[serde(default = "one")]
    pub version: i64,
    pub security_descriptor: SecurityDescriptor,
    /// Policies by request type name (`Enroll`, `Renew`, ...).
    #[serde(default)]
    pub policies: BTreeMap<PolicyKey, WorkflowPolicy>,
    #[serde(default)]
    pub certificates: Vec<CertificateTemplate>,
    /// `[template.smartcard]`: smart card and virtual smart card templates only; their defaults
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smartcard: Option<SmartcardConfig>,
}

fn one() -> i64 {
    1
}

/// The TOML import file: `[[template]]` tables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFile {
    #[serde(default)]
    pub template: Vec<TemplateDoc>,
}
