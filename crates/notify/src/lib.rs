//! opencm's notification channels, behind the app's `Notifier` port: e-mail (templates rendered
//! here, sent over SMTP) and signed webhooks. What to send, to whom, when and how often to retry
//! is the app's (`opencm_app::outbox`); this crate only renders and talks to the peers.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod smtp;
pub mod templates;
pub mod webhook;

use async_trait::async_trait;
use opencm_app::outbox::{DeliveryError, Mail};
use opencm_domain::notification::OutboxRow;
use std::collections::HashMap;

pub use smtp::{Smtp, SmtpSettings, SmtpTls};
pub use templates::Templates;
pub use webhook::{Webhook, WebhookSettings};

pub struct Channels {
    smtp: Option<Smtp>,
    templates: std::sync::Arc<Templates>,
    webhooks: HashMap<String, Webhook>,
}

impl Channels {
    pub fn new(
        smtp: Option<&SmtpSettings>,
        templates_dir: Option<std::path::PathBuf>,
        webhooks: Vec<WebhookSettings>,
    ) -> Result<Channels, String> {
        let smtp = smtp.map(Smtp::new).transpose()?;
        let webhooks = webhooks
            .into_iter()
            .map(|w| Ok((w.name.clone(), Webhook::new(w)?)))
            .collect::<Result<_, String>>()?;
        Ok(Channels {
            smtp,
            templates: std::sync::Arc::new(Templates::new(templates_dir)),
            webhooks,
        })
    }
}

#[async_trait]
impl opencm_app::outbox::Notifier for Channels {
    async fn email(&self, mail: &Mail) -> Result<String, DeliveryError> {
        let smtp = self
            .smtp
            .as_ref()
            .ok_or_else(|| DeliveryError::permanent("no SMTP server is configured"))?;
        // Rendering reads the operator's files: off the async workers.
        let (templates, m) = (self.templates.clone(), mail.clone());
        let r = tokio::task::spawn_blocking(move || {
            templates.render(m.event, m.policy.as_deref(), &m.to.language, &m.context)
        })
        .await
        .map_err(|e| DeliveryError::transient(format!("rendering an e-mail: {e}")))?
        .map_err(DeliveryError::permanent)?;
        smtp.send(&mail.to.name, &mail.to.address, &r.subject, r.text, r.html)
            .await
    }

    async fn webhook(&self, endpoint: &str, row: &OutboxRow) -> Result<String, DeliveryError> {
        let w = self.webhooks.get(endpoint).ok_or_else(|| {
            DeliveryError::permanent(format!("webhook '{endpoint}' is not configured"))
        })?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        w.post(row, now).await
    }
}
