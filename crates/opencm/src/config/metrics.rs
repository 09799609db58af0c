//! `[metrics]`: `GET /metrics` for Prometheus (docs/OPERATIONS.md, "Metrics").

use anyhow::{bail, Context};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` (default on).
    pub enabled: bool,
    /// Serve `/metrics` on this address only (plain HTTP, e.g. `127.0.0.1:9464`) instead of the
    /// main listener.
    pub listen: Option<String>,
    /// A file holding the bearer token scrapers must send (`OPENCM_METRICS_TOKEN` takes
    /// precedence). Without either, `/metrics` is open to whoever reaches its listener.
    pub token_file: Option<PathBuf>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
            token_file: None,
        }
    }
}

impl MetricsConfig {
    /// The token scrapers must send, read now (a missing or empty file stops the start).
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        if let Ok(t) = std::env::var("OPENCM_METRICS_TOKEN") {
            let t = t.trim().to_string();
            if t.is_empty() {
                bail!("OPENCM_METRICS_TOKEN is set but empty");
            }
            return Ok(Some(t));
        }
        match &self.token_file {
            None => Ok(None),
            Some(p) => {
                let t = std::fs::read_to_string(p)
                    .with_context(|| format!("[metrics] token_file {}", p.display()))?;
                let t = t.trim().to_string();
                if t.is_empty() {
                    bail!("[metrics] token_file {} is empty", p.display());
                }
                Ok(Some(t))
            }
        }
    }

    pub fn access(&self, on_main: bool) -> anyhow::Result<opencm_api::MetricsAccess> {
        Ok(opencm_api::MetricsAccess {
            served: self.enabled && on_main == self.listen.is_none(),
            token: self.token()?,
        })
    }
}
