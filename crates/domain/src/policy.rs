//! Profile templates and their per-request-type workflow policies (docs/API.md, "Objects").
//!
//! The serde form of these types (snake_case) is both the documented TOML import format
//! (`opencm template import`, see docs/TEMPLATES.md) and what the store keeps; the PascalCase
//! MIM wire form lives in the API crate.

use crate::enums::RequestType;
use crate::ids::Guid;
use crate::sddl::SecurityDescriptor;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    Software,
    Smartcard,
    VirtualSmartcard,
}

impl TemplateKind {
    pub fn is_smartcard(self) -> bool {
        matches!(self, Self::Smartcard | Self::VirtualSmartcard)
    }
    pub fn name(self) -> &'static str {
        match self {
            Self::Software => "software",
            Self::Smartcard => "smartcard",
            Self::VirtualSmartcard => "virtual_smartcard",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Software, Self::Smartcard, Self::VirtualSmartcard]
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileTemplate {
    pub uuid: Guid,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub kind: TemplateKind,
    #[serde(default = "one")]
    pub version: i64,
    /// Who may see the template (`RC`), enroll from it (`CR`) and administer it (`WP`).
    pub security_descriptor: SecurityDescriptor,
    /// Policies by request type name (`Enroll`, `Renew`, ...). A type with no entry is not enabled.
    #[serde(default)]
    pub policies: BTreeMap<PolicyKey, WorkflowPolicy>,
    /// The certificates a profile from this template holds.
    #[serde(default)]
    pub certificates: Vec<crate::certificate::CertificateTemplate>,
    /// Smart card and virtual smart card templates: the card configuration (defaults when
    /// absent); software templates have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smartcard: Option<crate::smartcard::SmartcardConfig>,
}

fn one() -> i64 {
    1
}

impl ProfileTemplate {
    pub fn policy(&self, t: RequestType) -> Option<&WorkflowPolicy> {
        self.policies.get(&PolicyKey(t))
    }

    /// The certificates a request of type `t` issues: every certificate of the profile for the
    /// types that make a new profile (Enroll, Renew, Duplicate, TemporaryCards), none otherwise.
    pub fn certificates_issued_by(
        &self,
        t: RequestType,
    ) -> &[crate::certificate::CertificateTemplate] {
        match t {
            RequestType::Enroll
            | RequestType::Renew
            | RequestType::OnlineUpdate
            | RequestType::Duplicate
            | RequestType::TemporaryCards => &self.certificates,
            _ => &[],
        }
    }

    /// The card configuration of a smart card template (its defaults when the file gives
    /// none); `None` for software templates.
    pub fn smartcard_config(&self) -> Option<crate::smartcard::SmartcardConfig> {
        match self.kind {
            TemplateKind::Software => None,
            TemplateKind::VirtualSmartcard => {
                Some(
                    self.smartcard
                        .clone()
                        .unwrap_or_else(|| crate::smartcard::SmartcardConfig {
                            use_virtual_smartcards: true,
                            ..Default::default()
                        }),
                )
            }
            TemplateKind::Smartcard => Some(self.smartcard.clone().unwrap_or_default()),
        }
    }

    /// Checks what the file's shape cannot: certificate templates, unique names, the card
    /// configuration.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.smartcard, self.smartcard_config()) {
            (Some(_), None) => {
                return Err(format!(
                    "template '{}': a software template has no [template.smartcard]",
                    self.name
                ))
            }
            (_, Some(c)) => {
                let names: Vec<&str> = self
                    .certificates
                    .iter()
                    .map(|c| c.common_name.as_str())
                    .collect();
                c.validate(&names, self.kind == TemplateKind::VirtualSmartcard)
                    .map_err(|e| format!("template '{}': smartcard: {e}", self.name))?;
            }
            (None, None) => {}
        }
        use crate::limits::{check, TEMPLATE_DESCRIPTION_MAX, TEMPLATE_NAME_MAX};
        check("the template name", &self.name, TEMPLATE_NAME_MAX)
            .map_err(|e| format!("template '{}': {e}", crate::limits::excerpt(&self.name)))?;
        check(
            "the description",
            &self.description,
            TEMPLATE_DESCRIPTION_MAX,
        )
        .map_err(|e| format!("template '{}': {e}", self.name))?;
        let mut names = std::collections::HashSet::new();
        for c in &self.certificates {
            check(
                "a certificate's common name",
                &c.common_name,
                TEMPLATE_NAME_MAX,
            )
            .map_err(|e| format!("template '{}': {e}", self.name))?;
            c.validate()
                .map_err(|e| format!("template '{}': {e}", self.name))?;
            if !names.insert(c.common_name.to_ascii_lowercase()) {
                return Err(format!(
                    "template '{}': certificate '{}' appears twice",
                    self.name, c.common_name
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod bounds {
    #[test]
    fn template_texts_are_bounded_and_nul_free() {
        let ok = r#"
uuid = "5f0c1b7e-2d7c-4f43-9a55-0d6d3c1e0a06"
name = "N"
kind = "software"
security_descriptor = "D:(A;;RC;;;AU)"
"#;
        let t: super::ProfileTemplate = toml::from_str(ok).unwrap();
        assert!(t.validate().is_ok());
        let mut long = t.clone();
        long.description = "x".repeat(4_001);
        assert!(long.validate().unwrap_err().contains("longer than 4000"));
        let mut nul = t.clone();
        nul.name = "a\u{0}b".into();
        assert!(nul.validate().unwrap_err().contains("NUL"));
    }
}

/// A request type used as a map key, written by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PolicyKey(pub RequestType);

impl Serialize for PolicyKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for PolicyKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RequestType::parse(&s).map(PolicyKey).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown request type '{s}' (one of {})",
                RequestType::names()
            ))
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowPolicy {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub approvals_needed: u32,
    /// Holders of `CR` may approve or deny.
    #[serde(default = "nobody")]
    pub authorized_approver: SecurityDescriptor,
    /// Holders of `CR` may execute requests on behalf of others (required when `enroll_agent_required`).
    #[serde(default = "nobody")]
    pub authorized_enrollment_agent: SecurityDescriptor,
    /// Holders of `CR` may create requests for other users.
    #[serde(default = "nobody")]
    pub authorized_initiator: SecurityDescriptor,
    /// opencm: when not empty, initiators may act only for users in one of these groups (SIDs,
    /// nested membership as the directory resolves it) — the helpdesk of one site — as MIM checks
    /// its CM Request right on the target user or a group containing it.
    #[serde(default)]
    pub initiator_target_groups: Vec<crate::Sid>,
    #[serde(default)]
    pub collect_comments: bool,
    #[serde(default)]
    pub collect_request_priority: bool,
    #[serde(default)]
    pub default_request_priority: u8,
    #[serde(default)]
    pub documents: Vec<String>,
    #[serde(default)]
    pub enroll_agent_required: bool,
    #[serde(default)]
    pub one_time_password_policy: String,
    #[serde(default)]
    pub personalization: String,
    #[serde(default)]
    pub data_collection: Vec<DataItem>,
    #[serde(default)]
    pub self_service_enabled: bool,
}

fn yes() -> bool {
    true
}

impl WorkflowPolicy {
    /// Whether an initiator of this policy may act for `target` (always, unless the policy is
    /// scoped to groups and the target is in none of them).
    pub fn initiator_may_target(&self, target: &crate::Principal) -> bool {
        self.initiator_target_groups.is_empty()
            || target
                .token_sids()
                .iter()
                .any(|s| self.initiator_target_groups.contains(s))
    }
}

/// An empty DACL: nobody holds the role.
fn nobody() -> SecurityDescriptor {
    SecurityDescriptor {
        dacl: Some(Default::default()),
        ..Default::default()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvidedBy {
    Subscriber,
    Manager,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataItem {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required: bool,
    #[serde(default = "subscriber")]
    pub provided_by: ProvidedBy,
    /// A regular expression the whole value must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<Validation>,
}

fn subscriber() -> ProvidedBy {
    ProvidedBy::Subscriber
}

/// A compiled validation pattern, matched against the whole value.
#[derive(Clone, Debug)]
pub struct Validation {
    source: String,
    anchored: regex::Regex,
}

impl Validation {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let anchored = regex::Regex::new(&format!("^(?:{source})$"))?;
        Ok(Validation {
            source: source.to_string(),
            anchored,
        })
    }
    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn matches(&self, value: &str) -> bool {
        self.anchored.is_match(value)
    }
}

impl PartialEq for Validation {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Validation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for Validation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Validation::new(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid validation pattern: {e}")))
    }
}

/// The TOML import file: `[[template]]` tables.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateFile {
    #[serde(default)]
    pub template: Vec<ProfileTemplate>,
}
