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
    /// The token scrapers must send, read now: missing, empty, or one no scraper could send
    /// (several lines, spaces, characters beyond printable ASCII) stops the start; a short one is
    /// warned of.
    pub fn token(&self) -> anyhow::Result<Option<String>> {
        let (t, from) = if let Ok(t) = std::env::var("OPENCM_METRICS_TOKEN") {
            (t, "OPENCM_METRICS_TOKEN".to_string())
        } else if let Some(p) = &self.token_file {
            let t = std::fs::read_to_string(p)
                .with_context(|| format!("[metrics] token_file {}", p.display()))?;
            (t, format!("[metrics] token_file {}", p.display()))
        } else {
            return Ok(None);
        };
        let t = t.trim().to_string();
        if t.is_empty() {
            bail!("{from} is empty");
        }
        if !t.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("{from}: the token must be one line of printable ASCII without spaces (a scraper sends it in an HTTP header)");
        }
        if t.len() < 16 {
            tracing::warn!(source = %from, "the metrics token is shorter than 16 characters: easy to guess");
        }
        Ok(Some(t))
    }

    pub fn access(&self, on_main: bool) -> anyhow::Result<opencm_api::MetricsAccess> {
        Ok(opencm_api::MetricsAccess {
            served: self.enabled && on_main == self.listen.is_none(),
            token: self.token()?,
        })
    }
}
