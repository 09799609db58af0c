//! Profile templates (docs/API.md, "Objects"; docs/TEMPLATES.md): parsed once, never re-checked.
//!
//! A template arrives as text — the `opencm template import` TOML file, or the JSON body the store
//! keeps — in the shape of [`TemplateDoc`]. `ProfileTemplate::try_from(doc)` checks what the shape
//! alone cannot (the card configuration against the kind and the certificates, unique certificate
//! names, text bounds) and yields the normalised template the rest of opencm works with: its kind
//! carries the card configuration, extended key usages are OIDs, the factory admin key is bytes.
//! Nothing downstream parses or validates a template again; a template that cannot be built is a
//! [`TemplateError`] naming the template and the problem.

mod doc;
mod error;

pub use doc::{TemplateDoc, TemplateFile, TemplateKindName};
pub use error::{TemplateError, TemplateProblem};

use crate::certificate::CertificateTemplate;
use crate::enums::RequestType;
use crate::ids::TemplateId;
use crate::policy::{PolicyKey, WorkflowPolicy};
use crate::sddl::SecurityDescriptor;
use crate::smartcard::SmartcardConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a profile from the template lives on; smart card kinds carry their card configuration.
#[derive(Clone, Debug, PartialEq)]
pub enum TemplateKind {
    Software,
    Smartcard(SmartcardConfig),
    VirtualSmartcard(SmartcardConfig),
}

impl TemplateKind {
    pub fn is_smartcard(&self) -> bool {
        !matches!(self, Self::Software)
    }
    pub fn is_virtual(&self) -> bool {
        matches!(self, Self::VirtualSmartcard(_))
    }
    /// The card configuration of a smart card kind.
    pub fn smartcard(&self) -> Option<&SmartcardConfig> {
        match self {
            Self::Software => None,
            Self::Smartcard(c) | Self::VirtualSmartcard(c) => Some(c),
        }
    }
    pub fn name(&self) -> &'static str {
        self.kind_name().name()
    }
    pub fn kind_name(&self) -> TemplateKindName {
        match self {
            Self::Software => TemplateKindName::Software,
            Self::Smartcard(_) => TemplateKindName::Smartcard,
            Self::VirtualSmartcard(_) => TemplateKindName::VirtualSmartcard,
        }
    }
}

/// A profile template as opencm uses it. Built only from a [`TemplateDoc`] (serde goes through
/// it both ways), so every value of this type has passed the checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "TemplateDoc", into = "TemplateDoc")]
pub struct ProfileTemplate {
    pub uuid: TemplateId,
    pub name: String,
    pub description: String,
    pub kind: TemplateKind,
    pub version: i64,
    /// Who may see the template (`RC`), enroll from it (`CR`) and administer it (`WP`).
    pub security_descriptor: SecurityDescriptor,
    /// Policies by request type. A type with no entry is not enabled.
    pub policies: BTreeMap<PolicyKey, WorkflowPolicy>,
    /// The certificates a profile from this template holds, with unique common names.
    pub certificates: Vec<CertificateTemplate>,
}

impl ProfileTemplate {
    /// Whether the template's descriptor grants `right` to a token of `sids` (Read to see it,
    /// Read and Enroll to enrol from it).
    pub fn grants(&self, sids: &[crate::identity::Sid], right: crate::sddl::AccessMask) -> bool {
        crate::sddl::access_check(&self.security_descriptor, sids, right).is_granted()
    }

    pub fn policy(&self, t: RequestType) -> Option<&WorkflowPolicy> {
        self.policies.get(&PolicyKey(t))
    }

    /// The certificates a request of type `t` issues: every certificate of the profile for the
    /// types that make a new profile (Enroll, Renew, Duplicate, TemporaryCards), none otherwise.
    pub fn certificates_issued_by(&self, t: RequestType) -> &[CertificateTemplate] {
        match t {
            RequestType::Enroll
            | RequestType::Renew
            | RequestType::OnlineUpdate
            | RequestType::Duplicate
            | RequestType::TemporaryCards => &self.certificates,
            _ => &[],
        }
    }

    /// The card configuration of a smart card template; `None` for software templates.
    pub fn smartcard_config(&self) -> Option<&SmartcardConfig> {
        self.kind.smartcard()
    }
}

impl TryFrom<TemplateDoc> for ProfileTemplate {
    type Error = TemplateError;

    fn try_from(doc: TemplateDoc) -> Result<Self, TemplateError> {
        use crate::limits::{check, TEMPLATE_DESCRIPTION_MAX, TEMPLATE_NAME_MAX};
        let named = |problem| TemplateError::new(&doc.name, problem);
        check("the template name", &doc.name, TEMPLATE_NAME_MAX)
            .map_err(|e| named(TemplateProblem::Text(e)))?;
        // Names are printed (`opencm template list`, the portal, logs): no terminal controls.
        if has_controls(&doc.name) {
            return Err(named(TemplateProblem::ControlCharacters(
                "the template name".into(),
            )));
        }
        check(
            "the description",
            &doc.description,
            TEMPLATE_DESCRIPTION_MAX,
        )
        .map_err(|e| named(TemplateProblem::Text(e)))?;
        for p in doc.policies.values() {
            if crate::policy::SecretDistribution::parse(&p.one_time_password_policy).is_none() {
                return Err(named(TemplateProblem::OneTimePasswordPolicy(
                    p.one_time_password_policy.clone(),
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for c in &doc.certificates {
            check(
                "a certificate's common name",
                &c.common_name,
                TEMPLATE_NAME_MAX,
            )
            .map_err(|e| named(TemplateProblem::Text(e)))?;
            if has_controls(&c.common_name) {
                return Err(named(TemplateProblem::ControlCharacters(
                    "a certificate's common name".into(),
                )));
            }
            c.check().map_err(|problem| {
                named(TemplateProblem::Certificate {
                    certificate: c.common_name.clone(),
                    problem,
                })
            })?;
            if !names.insert(c.common_name.to_ascii_lowercase()) {
                return Err(named(TemplateProblem::CertificateTwice(
                    c.common_name.clone(),
                )));
            }
        }
        let certificates: Vec<&str> = doc
            .certificates
            .iter()
            .map(|c| c.common_name.as_str())
            .collect();
        let card = |virtual_cards: bool, given: Option<SmartcardConfig>| {
            let mut config = given.unwrap_or_default();
            // The kind says it; `use_virtual_smartcards` need not repeat it, only not contradict
            // it on a smart card template.
            if virtual_cards {
                config.use_virtual_smartcards = true;
            }
            config
                .check(&certificates, virtual_cards)
                .map(|()| config)
                .map_err(|p| named(TemplateProblem::Smartcard(p)))
        };
        let kind = match (doc.kind, doc.smartcard) {
            (TemplateKindName::Software, Some(_)) => {
                return Err(named(TemplateProblem::SmartcardOnSoftware))
            }
            (TemplateKindName::Software, None) => TemplateKind::Software,
            (TemplateKindName::Smartcard, c) => TemplateKind::Smartcard(card(false, c)?),
            (TemplateKindName::VirtualSmartcard, c) => {
                TemplateKind::VirtualSmartcard(card(true, c)?)
            }
        };
        Ok(ProfileTemplate {
            uuid: doc.uuid.into(),
            name: doc.name,
            description: doc.description,
            kind,
            version: doc.version,
            security_descriptor: doc.security_descriptor,
            policies: doc.policies,
            certificates: doc.certificates,
        })
    }
}

/// Control characters (C0, DEL, C1) and the bidirectional embeddings, overrides and isolates,
/// which make a printed name read other than it is.
fn has_controls(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

impl From<ProfileTemplate> for TemplateDoc {
    fn from(t: ProfileTemplate) -> Self {
        let kind = t.kind.kind_name();
        let smartcard = match t.kind {
            TemplateKind::Software => None,
            TemplateKind::Smartcard(c) | TemplateKind::VirtualSmartcard(c) => Some(c),
        };
        TemplateDoc {
            uuid: t.uuid.guid(),
            name: t.name,
            description: t.description,
            kind,
            version: t.version,
            security_descriptor: t.security_descriptor,
            policies: t.policies,
            certificates: t.certificates,
            smartcard,
        }
    }
}

#[cfg(test)]
mod tests;
