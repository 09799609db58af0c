//! Profile templates: the ones a caller may enroll from, their workflow policies, and
//! `opencm template import|list`.

use crate::error::{AppError, ErrorCode};
use crate::App;
use opencm_domain::policy::WorkflowPolicy;
use opencm_domain::request::rights;
use opencm_domain::template::{ProfileTemplate, TemplateFile};
use opencm_domain::{Principal, RequestType, TemplateId};

impl App {
    /// Templates the caller may enroll from (Read and Enroll on the template).
    pub async fn templates_for(
        &self,
        caller: &Principal,
    ) -> Result<Vec<ProfileTemplate>, AppError> {
        let sids = caller.token_sids();
        let need = rights::TEMPLATE_READ.union(rights::TEMPLATE_ENROLL);
        Ok(self
            .templates
            .store()
            .templates()
            .await?
            .into_iter()
            .filter(|t| t.grants(&sids, need))
            .collect())
    }

    /// Every template with its policies, for an administrator (or the command line) to read.
    pub async fn templates_for_administrator(
        &self,
        actor: crate::Actor<'_>,
    ) -> Result<Vec<ProfileTemplate>, AppError> {
        actor.authorize()?;
        self.list_templates().await
    }

    /// The template of something the caller already sees (a request, a profile, a card), for its
    /// name and policy on a page: parsed once and cached (a revision point read per call).
    pub async fn template_of(
        &self,
        id: TemplateId,
    ) -> Result<Option<std::sync::Arc<ProfileTemplate>>, AppError> {
        Ok(self.templates.get(id).await?)
    }

    /// A template the caller may read (Read on its descriptor); 404 alike when it does not exist
    /// and when the caller may not see it.
    async fn readable_template(
        &self,
        caller: &Principal,
        id: TemplateId,
    ) -> Result<std::sync::Arc<ProfileTemplate>, AppError> {
        let not_found = || {
            AppError::new(
                ErrorCode::ProfileTemplateNotFound,
                format!("Profile template {id} was not found."),
            )
        };
        let template = self.templates.get(id).await?.ok_or_else(not_found)?;
        if !template.grants(&caller.token_sids(), rights::TEMPLATE_READ) {
            return Err(not_found());
        }
        Ok(template)
    }

    /// `GET /profiletemplates/{id}/configuration/smartcards`: a smart card template's card
    /// configuration.
    pub async fn smartcard_configuration(
        &self,
        caller: &Principal,
        id: TemplateId,
    ) -> Result<opencm_domain::smartcard::SmartcardConfig, AppError> {
        let template = self.readable_template(caller, id).await?;
        template.smartcard_config().cloned().ok_or_else(|| {
            AppError::new(
                ErrorCode::SmartcardConfigurationNotFound,
                format!(
                    "Profile template {id} is a software template: it has no smart card configuration."
                ),
            )
        })
    }

    /// A template's workflow policy for `t`; 404 when the caller may not read the template.
    pub async fn workflow_policy(
        &self,
        caller: &Principal,
        id: TemplateId,
        t: RequestType,
    ) -> Result<WorkflowPolicy, AppError> {
        let template = self.readable_template(caller, id).await?;
        template.policy(t).cloned().ok_or_else(|| {
            AppError::new(
                ErrorCode::PolicyNotFound,
                format!(
                    "Profile template '{}' has no {t} workflow policy.",
                    template.name
                ),
            )
        })
    }

    /// `opencm template import`: checks every template of a TOML file, then inserts or replaces
    /// them all in one transaction; returns their names. A file with one bad template imports
    /// nothing.
    pub async fn import_templates(&self, text: &str) -> Result<Vec<String>, AppError> {
        let invalid = |message: String| AppError::new(ErrorCode::InvalidBody, message);
        // Said by line and column, never quoting the line: it may hold a key.
        let file: TemplateFile = toml::from_str(text).map_err(|e| {
            invalid(format!(
                "the template file is not valid: {}",
                crate::redact::toml_error(&e, text)
            ))
        })?;
        if file.template.is_empty() {
            return Err(invalid(
                "the template file has no [[template]] tables".into(),
            ));
        }
        let templates = file
            .template
            .into_iter()
            .map(ProfileTemplate::try_from)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        let stored = self.templates.store().templates().await?;
        for (i, t) in templates.iter().enumerate() {
            let name = opencm_domain::limits::excerpt(&t.name);
            if let Some(twin) = templates[..i]
                .iter()
                .find(|o| o.uuid == t.uuid || o.name == t.name)
            {
                let what = if twin.uuid == t.uuid { "uuid" } else { "name" };
                return Err(invalid(format!(
                    "template '{name}': another template of this file has its {what}"
                )));
            }
            if let Some(other) = stored.iter().find(|o| o.name == t.name && o.uuid != t.uuid) {
                return Err(AppError::new(
                    ErrorCode::AlreadyExists,
                    format!(
                        "template '{name}': profile template {} already has this name.",
                        other.uuid
                    ),
                ));
            }
        }
        self.templates
            .store()
            .put_templates(&templates, self.clock.now())
            .await?;
        Ok(templates.into_iter().map(|t| t.name).collect())
    }

    /// `opencm template list`: every template, by name.
    pub async fn list_templates(&self) -> Result<Vec<ProfileTemplate>, AppError> {
        Ok(self.templates.store().templates().await?)
    }
}
