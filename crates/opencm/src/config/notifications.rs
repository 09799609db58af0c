//! `[notifications]`: e-mail over SMTP, signed webhooks, and how the outbox retries
//! (docs/OPERATIONS.md, "Notifications"). Secrets (the SMTP password, webhook secrets) come from
//! files or the environment, never from the configuration file itself.

use anyhow::{bail, Context};
use opencm_app::outbox::{NotificationSettings, WebhookSubscription};
use opencm_domain::notification::EventType;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Deserialize, Clone, Debug)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// Your own e-mail templates (docs/OPERATIONS.md); the built-in ones otherwise.
    pub templates_dir: Option<PathBuf>,
    /// The language of e-mails to people whose directory entry names none: en or es.
    pub default_language: String,
    /// Who is told by e-mail when a notification is given up (dead letter).
    pub admin_addresses: Vec<String>,
    /// Days before a certificate's NotAfter at which its holder is warned (each once).
    pub expiry_days: Vec<i64>,
    /// How often each node looks for certificates to warn of (default 3600 s).
    pub expiry_check_secs: u64,
    /// How long a one-time password works (default 72 h), and how many tries it allows (5).
    pub secret_lifetime_hours: u64,
    pub secret_attempts: i64,
    /// Tries before a notification is given up (default 8).
    pub max_attempts: u32,
    /// The first retry's delay (default 30 s), doubled at each try up to `max_backoff_secs`.
    pub backoff_secs: u64,
    pub max_backoff_secs: u64,
    /// How long a node holds the notifications it is delivering (default 60 s): a node that dies
    /// mid-delivery leaves them to the others after this.
    pub lease_secs: u64,
    /// How often a node looks for due notifications it was not woken for (default 2000 ms).
    pub poll_ms: u64,
    pub smtp: Option<SmtpConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            templates_dir: None,
            default_language: "en".into(),
            admin_addresses: Vec::new(),
            expiry_days: vec![30, 7],
            expiry_check_secs: 3600,
            secret_lifetime_hours: 72,
            secret_attempts: 5,
            max_attempts: 8,
            backoff_secs: 30,
            max_backoff_secs: 3600,
            lease_secs: 60,
            poll_ms: 2000,
            smtp: None,
            webhooks: Vec::new(),
        }
    }
}

/// `[notifications.smtp]`.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// Default: 587 for starttls, 465 for tls, 25 for none.
    pub port: Option<u16>,
    /// starttls (default), tls (implicit, SMTPS) or none (a relay on this host only).
    pub tls: Option<String>,
    /// `opencm <pki@example.org>`.
    pub from: String,
    pub username: Option<String>,
    /// The password, from this file or `OPENCM_SMTP_PASSWORD`.
    pub password_file: Option<PathBuf>,
    /// Connection and command timeout (default 10 s).
    pub timeout_secs: Option<u64>,
}

/// `[[notifications.webhooks]]`.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A short name (letters, digits, `-`, `_`): the channel `webhook:NAME` in the outbox.
    pub name: String,
    pub url: String,
    /// The `whsec_…` secret, from this file or `OPENCM_WEBHOOK_SECRET_<NAME>` (upper case, `-`
    /// as `_`).
    pub secret_file: Option<PathBuf>,
    /// Event names or families (`request.*`); default every event (`*`).
    #[serde(default)]
    pub events: Vec<String>,
    /// Default 10 s.
    pub timeout_secs: Option<u64>,
}

/// A secret from its file (first line) or the environment.
fn secret(file: Option<&PathBuf>, env: &str, what: &str) -> anyhow::Result<Option<String>> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("{what}: cannot read {}", f.display()))?;
        return Ok(Some(
            text.lines().next().unwrap_or_default().trim().to_string(),
        ));
    }
    Ok(std::env::var(env).ok().filter(|v| !v.is_empty()))
}

impl NotificationsConfig {
    /// The app's settings and the channels, every secret read and every value checked.
    pub fn build(
        &self,
        portal_url: Option<String>,
    ) -> anyhow::Result<(NotificationSettings, opencm_notify::Channels)> {
        if !matches!(self.default_language.as_str(), "en" | "es") {
            bail!("[notifications] default_language must be en or es");
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            bail!("[notifications] max_attempts must be 1 to 100");
        }
        if self.backoff_secs == 0 || self.max_backoff_secs < self.backoff_secs {
            bail!("[notifications] backoff_secs must be at least 1 and at most max_backoff_secs");
        }
        if self.lease_secs == 0 || self.poll_ms == 0 || self.expiry_check_secs == 0 {
            bail!("[notifications] lease_secs, poll_ms and expiry_check_secs must be at least 1");
        }
        if !(1..=24 * 90).contains(&self.secret_lifetime_hours) {
            bail!("[notifications] secret_lifetime_hours must be 1 to 2160");
        }
        if !(1..=100).contains(&self.secret_attempts) {
            bail!("[notifications] secret_attempts must be 1 to 100");
        }
        if self.expiry_days.iter().any(|d| !(1..=3650).contains(d)) {
            bail!("[notifications] expiry_days are 1 to 3650 days");
        }
        if let Some(dir) = &self.templates_dir {
            if !dir.is_dir() {
                bail!(
                    "[notifications] templates_dir {} is not a directory",
                    dir.display()
                );
            }
        }
        for a in &self.admin_addresses {
            opencm_notify::smtp::check_address(a)
                .map_err(|e| anyhow::anyhow!("[notifications] admin_addresses: {e}"))?;
        }
        if !self.admin_addresses.is_empty() && self.smtp.is_none() {
            bail!("[notifications] admin_addresses are e-mailed: they need [notifications.smtp]");
        }
        let smtp = match &self.smtp {
            None => None,
            Some(s) => {
                let tls = match s.tls.as_deref() {
                    None => opencm_notify::SmtpTls::StartTls,
                    Some(t) => opencm_notify::SmtpTls::parse(t).with_context(|| {
                        "[notifications.smtp] tls must be starttls, tls or none".to_string()
                    })?,
                };
                let port = s.port.unwrap_or(match tls {
                    opencm_notify::SmtpTls::StartTls => 587,
                    opencm_notify::SmtpTls::Implicit => 465,
                    opencm_notify::SmtpTls::None => 25,
                });
                let password = secret(
                    s.password_file.as_ref(),
                    "OPENCM_SMTP_PASSWORD",
                    "[notifications.smtp] password_file",
                )?;
                if password.is_some() && s.username.is_none() {
                    bail!("[notifications.smtp] a password needs a username");
                }
                if s.username.is_some() && password.is_none() {
                    bail!("[notifications.smtp] username is set but no password: set password_file or OPENCM_SMTP_PASSWORD");
                }
                if s.host.trim().is_empty() || s.port == Some(0) {
                    bail!("[notifications.smtp] host must be named and port must be 1 to 65535");
                }
                Some(opencm_notify::SmtpSettings {
                    host: s.host.clone(),
                    port,
                    tls,
                    username: s.username.clone(),
                    password,
                    from: s.from.clone(),
                    timeout: Duration::from_secs(s.timeout_secs.unwrap_or(10).clamp(1, 300)),
                })
            }
        };
        let mut hooks = Vec::new();
        let mut subscriptions = Vec::new();
        for w in &self.webhooks {
            if w.name.is_empty()
                || w.name.len() > 64
                || !w
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("[[notifications.webhooks]] name must be 1 to 64 letters, digits, - or _");
            }
            if subscriptions
                .iter()
                .any(|s: &WebhookSubscription| s.name == w.name)
            {
                bail!("[[notifications.webhooks]] name '{}' is used twice", w.name);
            }
            if !(w.url.starts_with("https://") || w.url.starts_with("http://")) {
                bail!(
                    "webhook '{}': url must be an http:// or https:// URL",
                    w.name
                );
            }
            let events = if w.events.is_empty() {
                vec!["*".to_string()]
            } else {
                w.events.clone()
            };
            if let Some(bad) = events.iter().find(|e| !EventType::is_pattern(e)) {
                bail!(
                    "webhook '{}': '{bad}' names no event (one of: {}; or a family such as request.*, or *)",
                    w.name,
                    EventType::ALL.map(|e| e.name()).join(", ")
                );
            }
            let env = format!(
                "OPENCM_WEBHOOK_SECRET_{}",
                w.name.to_ascii_uppercase().replace('-', "_")
            );
            let text = secret(w.secret_file.as_ref(), &env, "webhook secret_file")?.with_context(
                || {
                    format!(
                        "webhook '{}' has no secret: set secret_file or {env}",
                        w.name
                    )
                },
            )?;
            let key = opencm_notify::webhook::parse_secret(&text)
                .map_err(|e| anyhow::anyhow!("webhook '{}': {e}", w.name))?;
            hooks.push(opencm_notify::WebhookSettings {
                name: w.name.clone(),
                url: w.url.clone(),
                secret: key,
                timeout: Duration::from_secs(w.timeout_secs.unwrap_or(10).clamp(1, 120)),
            });
            subscriptions.push(WebhookSubscription {
                name: w.name.clone(),
                events,
            });
        }
        let channels =
            opencm_notify::Channels::new(smtp.as_ref(), self.templates_dir.clone(), hooks)
                .map_err(|e| anyhow::anyhow!(e))?;
        // Your templates are compiled now: one that does not parse stops the start, naming its
        // file, instead of killing its e-mails later.
        if let Some(dir) = &self.templates_dir {
            opencm_notify::templates::check_dir(dir).map_err(|e| anyhow::anyhow!(e))?;
        }
        let settings = NotificationSettings {
            email: smtp.is_some(),
            webhooks: subscriptions,
            portal_url,
            default_language: self.default_language.clone(),
            admin_addresses: self.admin_addresses.clone(),
            max_attempts: self.max_attempts,
            backoff: Duration::from_secs(self.backoff_secs),
            max_backoff: Duration::from_secs(self.max_backoff_secs),
            lease: Duration::from_secs(self.lease_secs),
            poll: Duration::from_millis(self.poll_ms),
            expiry_days: self.expiry_days.clone(),
            expiry_check: Duration::from_secs(self.expiry_check_secs),
            secret_lifetime: Duration::from_secs(self.secret_lifetime_hours * 3600),
            secret_attempts: self.secret_attempts,
            ..Default::default()
        };
        Ok((settings, channels))
    }
}
