//! Why a template cannot be built, by template and problem.

use crate::certificate::CertificateProblem;
use crate::limits::{excerpt, TextError};
use crate::smartcard::SmartcardProblem;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("template '{}': {problem}", excerpt(.template))]
pub struct TemplateError {
    pub template: String,
    pub problem: TemplateProblem,
}

impl TemplateError {
    pub fn new(template: &str, problem: TemplateProblem) -> Self {
        TemplateError {
            template: template.to_string(),
            problem,
        }
    }
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum TemplateProblem {
    #[error("{0}")]
    Text(TextError),
    #[error("a software template has no [template.smartcard]")]
    SmartcardOnSoftware,
    #[error("certificate '{}': {problem}", excerpt(.certificate))]
    Certificate {
        certificate: String,
        problem: CertificateProblem,
    },
    #[error("certificate '{}' appears twice", excerpt(.0))]
    CertificateTwice(String),
    #[error("smartcard: {0}")]
    Smartcard(SmartcardProblem),
    #[error("{0} contains a control character")]
    ControlCharacters(String),
    #[error("one_time_password_policy '{}' is none of: {}", excerpt(.0), crate::policy::SecretDistribution::NAMES)]
    OneTimePasswordPolicy(String),
}
