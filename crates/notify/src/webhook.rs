//! Webhooks, signed as Standard Webhooks (standardwebhooks.com) sign them: the headers
//! `webhook-id` (the event id: the same on every retry, so receivers deduplicate),
//! `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,` then the base64 of
//! HMAC-SHA256 over `id.timestamp.body` with the endpoint's secret). Secrets are written
//! `whsec_` + base64, as that convention's libraries expect. Redirects are not followed (a
//! receiver that moved must be reconfigured, not obeyed), and every request has a timeout.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use opencm_app::outbox::DeliveryError;
use opencm_domain::notification::OutboxRow;
use sha2::Sha256;
use std::time::Duration;

#[derive(Clone)]
pub struct WebhookSettings {
    pub name: String,
    pub url: String,
    /// The key (the bytes of a `whsec_` secret).
    pub secret: Vec<u8>,
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"(hidden)")
            .finish()
    }
}

/// The key of a `whsec_…` secret.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, String> {
    let b64 = s
        .trim()
        .strip_prefix("whsec_")
        .ok_or("a webhook secret is written whsec_ followed by base64 (e.g. the output of: echo whsec_$(openssl rand -base64 32))")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("a webhook secret's base64 does not decode: {e}"))?;
    if key.len() < 16 {
        return Err("a webhook secret must hold at least 16 bytes (128 bits)".into());
    }
    Ok(key)
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

pub struct Webhook {
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(settings: WebhookSettings) -> Result<Webhook, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("opencm/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("webhook {}: {e}", settings.name))?;
        Ok(Webhook { settings, client })
    }

    /// POSTs the row's event; a 2xx answer delivers it, anything else is tried again later.
    pub async fn post(&self, row: &OutboxRow, now_secs: i64) -> Result<String, DeliveryError> {
        let id = row.event_id.to_string();
        let sig = signature(&self.settings.secret, &id, now_secs, &row.payload);
        let answer = self
            .client
            .post(&self.settings.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now_secs.to_string())
            .header("webhook-signature", sig)
            .body(row.payload.clone())
            .send()
            .await
            .map_err(|e| {
                DeliveryError::transient(format!(
                    "webhook {}: {}",
                    self.settings.name,
                    without_url(&e)
                ))
            })?;
        let status = answer.status();
        if status.is_success() {
            Ok(format!("HTTP {}", status.as_u16()))
        } else {
            Err(DeliveryError::transient(format!(
                "webhook {} answered HTTP {}",
                self.settings.name,
                status.as_u16()
            )))
        }
    }
}

/// A reqwest error without its URL (which may carry a token in its query).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its reference libraries' test).
    #[test]
    fn signs_as_standard_webhooks_does() {
        let key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = signature(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(parse_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(parse_secret("whsec_c2hvcnQ=").is_err());
    }
}
