//! `[ocsp]`: the OCSP responder (docs/OPERATIONS.md, "OCSP").

use anyhow::bail;
use serde::{Deserialize, Deserializer};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OcspConfig {
    /// Answer `POST /ocsp` and `GET /ocsp/…`, and name the responder in every certificate issued
    /// (default on).
    pub enabled: bool,
    /// The responder's URL written into certificates (Authority Information Access). Default:
    /// `{public_url}/ocsp`.
    pub url: Option<String>,
    /// Who signs responses: `delegated` (default: a responder certificate the CA issues to each
    /// node, renewed before it ends) or `ca` (the CA's own key).
    #[serde(deserialize_with = "signer")]
    pub signer: Signer,
    /// `nextUpdate - thisUpdate` of every response, in minutes (default 60).
    pub response_validity_minutes: u64,
    /// Lifetime of the delegated responder certificate in days (default 7); a new one is issued
    /// when a third of it is left.
    pub responder_validity_days: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    Delegated,
    Ca,
}

fn signer<'de, D: Deserializer<'de>>(d: D) -> Result<Signer, D::Error> {
    super::one_of(d, &[("delegated", Signer::Delegated), ("ca", Signer::Ca)])
}

impl Default for OcspConfig {
    fn default() -> Self {
        OcspConfig {
            enabled: true,
            url: None,
            signer: Signer::Delegated,
            response_validity_minutes: 60,
            responder_validity_days: 7,
        }
    }
}

impl OcspConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(u) = &self.url {
            super::check_published_url("[ocsp] url", u)?;
        }
        if !(1..=7 * 24 * 60).contains(&self.response_validity_minutes) {
            bail!("[ocsp] response_validity_minutes must be 1 to 10080 (a week)");
        }
        if !(1..=365).contains(&self.responder_validity_days) {
            bail!("[ocsp] responder_validity_days must be 1 to 365");
        }
        if self.response_validity_minutes > self.responder_validity_days * 24 * 60 / 3 {
            bail!("[ocsp] response_validity_minutes must be at most a third of responder_validity_days: a response must not outlive the certificate that signed it");
        }
        Ok(())
    }

    /// The URL certificates name, given where the server is published.
    pub fn url_for(&self, published: &str) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("{}/ocsp", published.trim_end_matches('/')))
    }

    pub fn settings(&self) -> opencm_app::ocsp::OcspSettings {
        opencm_app::ocsp::OcspSettings {
            delegated: self.signer == Signer::Delegated,
            response_validity: time::Duration::minutes(self.response_validity_minutes as i64),
            responder_validity: time::Duration::days(self.responder_validity_days as i64),
        }
    }
}
