//! Configuration: one typed struct, each key declared once (its field, with its default in
//! `Default`). Layers, each overriding the one before: the defaults, `--config FILE` (TOML), the
//! `OPENCM_<KEY>` environment variables, the command-line flags. They are merged as TOML tables
//! and read into [`Config`] once, so a key needs no code of its own to be set from a file, the
//! environment or a flag. Unknown keys in the file are errors; a value that cannot be the key's
//! type is refused naming the key (and the line), never showing the value.

mod layers;
mod metrics;
mod notifications;
mod ocsp;
mod redact;
mod sources;
#[cfg(test)]
mod tests;

pub use metrics::MetricsConfig;
pub use notifications::{NotificationsConfig, SmtpConfig, WebhookConfig};
pub use ocsp::OcspConfig;
pub use redact::DatabaseUrl;
pub use sources::{DirectoryConfig, KerberosConfig, OidcConfig};

use anyhow::bail;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://FILE` or `postgres://…`; its password never reaches a log (`DatabaseUrl`).
    pub database_url: DatabaseUrl,
    pub listen: String,
    /// SQLite durability: full (default: a committed transition survives power loss) or normal.
    pub sqlite_synchronous: SqliteSynchronous,
    pub max_body_bytes: usize,
    pub log_format: LogFormat,
    /// The file holding the CA's key-encryption key (base64), created 0600 on first start.
    /// `OPENCM_CA_KEK` (the key itself, base64) takes precedence.
    pub ca_kek_file: PathBuf,
    /// The key of a CA created on first start: ecdsa-p256 (default), rsa-2048, rsa-3072, rsa-4096.
    #[serde(deserialize_with = "ca_key_algorithm")]
    pub ca_key_algorithm: opencm_ca::CaKeyAlgorithm,
    /// Where the database and KEK file live unless `database_url` / `ca_kek_file` say otherwise.
    pub data_dir: Option<PathBuf>,
    /// HTTPS from a PEM certificate chain and key...
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// ...or from a certificate the embedded CA issues at start for these DNS names / IPs.
    pub tls_names: Vec<String>,
    /// Open connections at most; more wait in the listen backlog (also lowered to fit the
    /// open-file limit).
    pub max_connections: usize,
    /// Seconds for a request's headers (and an HTTP/1.1 keep-alive wait for the next request).
    pub header_timeout_secs: u64,
    /// Seconds for a whole request body.
    pub body_timeout_secs: u64,
    /// Seconds a connection may stay silent (no bytes either way) before it is closed.
    pub idle_timeout_secs: u64,
    /// The URL relying parties reach this server at (`https://pki.example.com`): certificates name
    /// `{public_url}/pki/crl` and `{public_url}/pki/ca.cer`. Default: the listen address.
    pub public_url: Option<String>,
    /// Users and groups from LDAP / Active Directory beside opencm's own (`[directory]`).
    pub directory: Option<DirectoryConfig>,
    /// OpenID Connect / OAuth access tokens (`[oidc]`).
    pub oidc: Option<OidcConfig>,
    /// Kerberos sign-in (`[kerberos]`).
    pub kerberos: Option<KerberosConfig>,
    /// Over HTTPS, a client certificate opencm issued (valid, with the user's UPN) signs its user
    /// in when no token is sent. Default on.
    pub client_certificate_auth: bool,
    /// Other CAs whose client certificates sign users in (PEM files), e.g. AD CS issuing smart
    /// card logon certificates; they need `client_certificate_crls`.
    pub client_certificate_anchors: Vec<PathBuf>,
    /// The CRLs (PEM or DER files) of those CAs, read again when they change.
    pub client_certificate_crls: Vec<PathBuf>,
    /// Certificates of those CAs sign in by their UPN alone, without the account's SID or an
    /// explicit mapping (weak mapping, which domain controllers refuse since KB5014754). Default
    /// off; when on, every such sign-in is logged as a warning.
    pub client_certificate_weak_mapping: bool,
    /// `[portal]`: the web portal's sessions (docs/OPERATIONS.md, "The portal").
    pub portal: PortalConfig,
    /// `[notifications]`: e-mail, webhooks and the outbox's retries (docs/OPERATIONS.md,
    /// "Notifications"). Absent: nobody is notified.
    pub notifications: Option<NotificationsConfig>,
    /// `[ocsp]`: the OCSP responder (docs/OPERATIONS.md, "OCSP"). On by default.
    pub ocsp: OcspConfig,
    /// `[metrics]`: Prometheus' `/metrics` (docs/OPERATIONS.md, "Metrics"). On by default.
    pub metrics: MetricsConfig,
}

/// `[portal]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortalConfig {
    /// A session ends after this many minutes without a request (default 30).
    pub session_idle_minutes: u64,
    /// A session ends this many hours after sign-in, used or not (default 8).
    pub session_hours: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            session_idle_minutes: 30,
            session_hours: 8,
        }
    }
}

impl PortalConfig {
    pub fn limits(&self) -> opencm_domain::session::SessionLimits {
        opencm_domain::session::SessionLimits {
            idle_micros: self.session_idle_minutes as i64 * 60 * 1_000_000,
            absolute_micros: self.session_hours as i64 * 3600 * 1_000_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: DatabaseUrl::from("sqlite://opencm.db"),
            listen: "127.0.0.1:8080".into(),
            sqlite_synchronous: SqliteSynchronous::Full,
            max_body_bytes: 1 << 20,
            log_format: LogFormat::Text,
            ca_kek_file: "opencm-ca.kek".into(),
            ca_key_algorithm: opencm_ca::CaKeyAlgorithm::EcdsaP256,
            data_dir: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_names: Vec::new(),
            max_connections: 4096,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            idle_timeout_secs: 60,
            public_url: None,
            directory: None,
            oidc: None,
            kerberos: None,
            client_certificate_auth: true,
            client_certificate_anchors: Vec::new(),
            client_certificate_crls: Vec::new(),
            client_certificate_weak_mapping: false,
            portal: PortalConfig::default(),
            notifications: None,
            ocsp: OcspConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

/// `sqlite_synchronous`, in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqliteSynchronous {
    Full,
    Normal,
}

impl<'de> Deserialize<'de> for SqliteSynchronous {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, &[("full", Self::Full), ("normal", Self::Normal)])
    }
}

/// `log_format`, in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl<'de> Deserialize<'de> for LogFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        one_of(d, &[("text", Self::Text), ("json", Self::Json)])
    }
}

/// The value named by a string, in any case; the error lists the names and never the value.
fn one_of<'de, D: Deserializer<'de>, T: Copy>(d: D, names: &[(&str, T)]) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    names
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(text.trim()))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<String> = names.iter().map(|(n, _)| format!("'{n}'")).collect();
            serde::de::Error::custom(format!("expected one of {}", names.join(", ")))
        })
}

fn ca_key_algorithm<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<opencm_ca::CaKeyAlgorithm, D::Error> {
    let text = String::deserialize(d)?;
    opencm_ca::CaKeyAlgorithm::parse(&text).ok_or_else(|| {
        serde::de::Error::custom("expected one of 'ecdsa-p256', 'rsa-2048', 'rsa-3072', 'rsa-4096'")
    })
}

/// The longest timeout: a day (longer ones overflow the clock arithmetic of the connection
/// timers, and mean no timeout).
const MAX_TIMEOUT_SECS: u64 = 86_400;

/// A DNS name (labels of letters, digits and hyphens, the first possibly `*`) or an IP address,
/// as a server certificate names them.
fn is_host_name(name: &str) -> bool {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let labels: Vec<&str> = name.strip_suffix('.').unwrap_or(name).split('.').collect();
    name.len() <= 253
        && labels.iter().enumerate().all(|(i, l)| {
            (i == 0 && *l == "*" && labels.len() > 2)
                || (!l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        })
}

/// A URL written into certificates (CRL distribution point, AIA): an IA5String there, so ASCII
/// only (a host beyond ASCII is written in its punycode form, `xn--…`); http or https, a host, no
/// user name, query or fragment, at most 1024 characters.
pub(crate) fn check_published_url(key: &str, u: &str) -> anyhow::Result<()> {
    let rest = u
        .strip_prefix("http://")
        .or_else(|| u.strip_prefix("https://"));
    let host = rest
        .map(|r| r.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    if rest.is_none()
        || u.len() > 1024
        || !u.bytes().all(|b| b.is_ascii_graphic())
        || host.is_empty()
        || host.starts_with(':')
        || u.contains(['@', '?', '#'])
    {
        bail!("{key} must be an http:// or https:// URL of ASCII characters, with a host and no spaces, user name, query or fragment (a host beyond ASCII in its xn-- form), at most 1024 characters");
    }
    Ok(())
}

/// Flags that override everything else.
#[derive(Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub tls_names: Option<Vec<String>>,
}

impl Config {
    pub fn load(o: &Overrides) -> anyhow::Result<Config> {
        let merged = layers::merge(o)?;
        // `data_dir` moves the database and the KEK file, unless a layer named them.
        let database_set = merged.contains_key("database_url");
        let kek_set = merged.contains_key("ca_kek_file");
        let mut c = layers::read(merged)?;
        if let Some(dir) = c.data_dir.clone() {
            if !database_set {
                c.database_url =
                    DatabaseUrl::from(format!("sqlite://{}", dir.join("opencm.db").display()));
            }
            if !kek_set {
                c.ca_kek_file = dir.join("opencm-ca.kek");
            }
        }
        c.check()?;
        Ok(c)
    }

    /// What a key's type cannot say.
    fn check(&self) -> anyhow::Result<()> {
        if self.max_connections == 0 {
            bail!("max_connections must be at least 1");
        }
        for (name, v) in [
            ("header_timeout_secs", self.header_timeout_secs),
            ("body_timeout_secs", self.body_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&v) {
                bail!("{name} must be 1 to {MAX_TIMEOUT_SECS} seconds");
            }
        }
        if !(1..=24 * 60).contains(&self.portal.session_idle_minutes) {
            bail!("[portal] session_idle_minutes must be 1 to 1440");
        }
        if !(1..=24 * 30).contains(&self.portal.session_hours) {
            bail!("[portal] session_hours must be 1 to 720");
        }
        if let Some(u) = &self.public_url {
            check_published_url("public_url", u)?;
        }
        self.ocsp.check()?;
        if let Some(dir) = &self.data_dir {
            let text = dir.to_string_lossy();
            // It becomes part of the database URL: `?` and `#` would end the path there.
            if text.trim().is_empty() || text.contains(['?', '#']) {
                bail!("data_dir must name a directory, without ? or #");
            }
        }
        for name in &self.tls_names {
            if !is_host_name(name) {
                bail!(
                    "tls_names: '{}' is neither a DNS name nor an IP address",
                    opencm_domain::limits::excerpt(name)
                );
            }
        }
        Ok(())
    }

    pub fn store_options(&self) -> opencm_store::StoreOptions {
        opencm_store::StoreOptions {
            sqlite_synchronous_full: self.sqlite_synchronous == SqliteSynchronous::Full,
            ..Default::default()
        }
    }
}
