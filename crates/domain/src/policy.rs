//! A profile template's per-request-type workflow policies (docs/API.md, "Objects").
//!
//! The serde form of these types (snake_case) is both the documented TOML import format
//! (`opencm template import`, see docs/TEMPLATES.md) and what the store keeps; the PascalCase
//! MIM wire form lives in the API crate. The template itself is `crate::template`.

use crate::enums::RequestType;
use crate::sddl::SecurityDescriptor;
use serde::{Deserialize, Serialize};

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

/// Who gets a request's one-time password when it is approved (MIM's `OneTimePasswordPolicy`):
/// the executor must present it before executing the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretDistribution {
    /// No one-time password (`""`, the default).
    None,
    /// Shown once to the request's originator (`"originator"`).
    Originator,
    /// E-mailed to the request's target (`"user"`).
    User,
    /// E-mailed to the target's manager (`"manager"`).
    Manager,
    /// Split: the first half e-mailed to the target, the second to their manager
    /// (`"user_and_manager"`); the executor types both halves, in that order.
    UserAndManager,
}

impl SecretDistribution {
    pub const NAMES: &'static str = "\"\" (none), originator, user, manager, user_and_manager";

    pub fn parse(s: &str) -> Option<SecretDistribution> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => SecretDistribution::None,
            "originator" => SecretDistribution::Originator,
            "user" => SecretDistribution::User,
            "manager" => SecretDistribution::Manager,
            "user_and_manager" => SecretDistribution::UserAndManager,
            _ => return None,
        })
    }
}

impl WorkflowPolicy {
    /// Who gets the one-time password; a value import did not check reads as a one-time password
    /// for the target (failing closed: the request still needs a secret).
    pub fn secrets(&self) -> SecretDistribution {
        SecretDistribution::parse(&self.one_time_password_policy)
            .unwrap_or(SecretDistribution::User)
    }

    /// Whether a token of `sids` holds the initiator role: may request for other users.
    pub fn is_initiator(&self, sids: &[crate::Sid]) -> bool {
        crate::sddl::access_check(
            &self.authorized_initiator,
            sids,
            crate::request::rights::ROLE,
        )
        .is_granted()
    }

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
