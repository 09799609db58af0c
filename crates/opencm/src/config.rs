//! Configuration, loaded once: defaults, then `--config FILE` (TOML), then `OPENCM_*` environment
//! variables, then command-line flags. Unknown keys in the file are errors.

use anyhow::{bail, Context};
use serde::Deserialize;

/// `Debug` is written by hand: the database URL may hold a password.
#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    /// SQLite durability: "full" (default: a committed transition survives power loss) or "normal".
    pub sqlite_synchronous: String,
    pub max_body_bytes: usize,
    /// "text" (default) or "json".
    pub log_format: String,
    /// The file holding the CA's key-encryption key (base64), created 0600 on first start.
    /// `OPENCM_CA_KEK` (the key itself, base64) takes precedence.
    pub ca_kek_file: std::path::PathBuf,
    /// The key of a CA created on first start: ecdsa-p256 (default), rsa-2048, rsa-3072, rsa-4096.
    pub ca_key_algorithm: String,
    /// Where the database and KEK file live unless `database_url` / `ca_kek_file` say otherwise.
    pub data_dir: Option<std::path::PathBuf>,
    /// HTTPS from a PEM certificate chain and key...
    pub tls_cert_file: Option<std::path::PathBuf>,
    pub tls_key_file: Option<std::path::PathBuf>,
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
    /// Users and groups from LDAP / Active Directory beside opencm's own (`[directory]` in the
    /// configuration file).
    pub directory: Option<DirectoryConfig>,
    /// OpenID Connect / OAuth access tokens (`[oidc]` in the configuration file).
    pub oidc: Option<OidcConfig>,
    /// Kerberos sign-in (`[kerberos]` in the configuration file).
    pub kerberos: Option<KerberosConfig>,
    /// Over HTTPS, a client certificate opencm issued (valid, with the user's UPN) signs its user
    /// in when no token is sent. Default on.
    pub client_certificate_auth: bool,
    /// Other CAs whose client certificates sign users in (PEM files), e.g. AD CS issuing smart
    /// card logon certificates; they need `client_certificate_crls`.
    pub client_certificate_anchors: Vec<std::path::PathBuf>,
    /// The CRLs (PEM or DER files) of those CAs, read again when they change.
    pub client_certificate_crls: Vec<std::path::PathBuf>,
    /// Certificates of those CAs sign in by their UPN alone, without the account's SID or an
    /// explicit mapping (weak mapping, which domain controllers refuse since KB5014754). Default
    /// off; when on, every such sign-in is logged as a warning.
    pub client_certificate_weak_mapping: bool,
    /// Whether `database_url` / `ca_kek_file` were given (then `data_dir` does not move them).
    database_set: bool,
    kek_set: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &self.database_for_logs())
            .field("listen", &self.listen)
            .field("sqlite_synchronous", &self.sqlite_synchronous)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_format", &self.log_format)
            .field("ca_kek_file", &self.ca_kek_file)
            .field("ca_key_algorithm", &self.ca_key_algorithm)
            .field("data_dir", &self.data_dir)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("tls_names", &self.tls_names)
            .field("max_connections", &self.max_connections)
            .field("header_timeout_secs", &self.header_timeout_secs)
            .field("body_timeout_secs", &self.body_timeout_secs)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            database_url: "sqlite://opencm.db".into(),
            listen: "127.0.0.1:8080".into(),
            sqlite_synchronous: "full".into(),
            max_body_bytes: 1 << 20,
            log_format: "text".into(),
            ca_kek_file: "opencm-ca.kek".into(),
            ca_key_algorithm: "ecdsa-p256".into(),
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
            database_set: false,
            kek_set: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    sqlite_synchronous: Option<String>,
    max_body_bytes: Option<usize>,
    log_format: Option<String>,
    ca_kek_file: Option<std::path::PathBuf>,
    ca_key_algorithm: Option<String>,
    data_dir: Option<std::path::PathBuf>,
    tls_cert_file: Option<std::path::PathBuf>,
    tls_key_file: Option<std::path::PathBuf>,
    tls_names: Option<Vec<String>>,
    max_connections: Option<usize>,
    header_timeout_secs: Option<u64>,
    body_timeout_secs: Option<u64>,
    idle_timeout_secs: Option<u64>,
    public_url: Option<String>,
    directory: Option<DirectoryConfig>,
    oidc: Option<OidcConfig>,
    kerberos: Option<KerberosConfig>,
    client_certificate_auth: Option<bool>,
    client_certificate_anchors: Option<Vec<std::path::PathBuf>>,
    client_certificate_crls: Option<Vec<std::path::PathBuf>>,
    client_certificate_weak_mapping: Option<bool>,
}

/// `[kerberos]`: `Authorization: Negotiate` (SPNEGO) with the service's keytab, for
/// domain-joined clients. Needs a server built with `--features kerberos`.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct KerberosConfig {
    /// The keytab holding `HTTP/host@REALM` (default: `KRB5_KTNAME`, else krb5.conf's
    /// `default_keytab_name`).
    pub keytab: Option<std::path::PathBuf>,
    /// Accept tickets for this principal only (default: any principal in the keytab).
    pub service_principal: Option<String>,
    /// Realms whose users may sign in; at least one.
    pub realms: Vec<String>,
    /// `alice@REALM` signs in as login `alice` (default true); false: as `alice@REALM`.
    pub strip_realm: Option<bool>,
}

impl KerberosConfig {
    pub fn mapping(&self) -> anyhow::Result<opencm_app::KerberosMapping> {
        if self.realms.iter().all(|r| r.trim().is_empty()) {
            anyhow::bail!("[kerberos] realms: name at least one realm whose users may sign in");
        }
        Ok(opencm_app::KerberosMapping {
            realms: self.realms.iter().map(|r| r.trim().to_string()).collect(),
            strip_realm: self.strip_realm.unwrap_or(true),
        })
    }
}

/// `[oidc]`: access tokens (JWT) from an OpenID provider — ADFS, Entra ID, Keycloak — beside
/// opencm's own tokens.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Exactly as the tokens' `iss` (`https://adfs.example.com/adfs`,
    /// `https://login.microsoftonline.com/{tenant}/v2.0`).
    pub issuer: String,
    /// The `aud` tokens must carry (the identifier of opencm at the provider); one or more.
    pub audience: Vec<String>,
    /// Accepted signature algorithms (asymmetric only). Default RS256, PS256, ES256.
    pub algorithms: Option<Vec<String>>,
    /// The claim naming the user's login: `upn` (the default: ADFS, Entra ID), or
    /// `preferred_username`, `unique_name`, ...
    pub login_claim: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 60).
    pub leeway_secs: Option<u64>,
    /// Without `[directory]`: the claim holding an unknown user's GUID (default `oid`), the claims
    /// tried for its SID (default `onprem_sid`, `primarysid`), the claim listing its group SIDs
    /// (default `groups`).
    pub uuid_claim: Option<String>,
    pub sid_claims: Option<Vec<String>>,
    pub groups_claim: Option<String>,
}

impl OidcConfig {
    /// `with_directory`: whether a directory is configured (then it is the only source of users).
    pub fn settings(&self, with_directory: bool) -> anyhow::Result<opencm_directory::OidcSettings> {
        if !(self.issuer.starts_with("https://") || self.issuer.starts_with("http://")) {
            bail!("[oidc] issuer must be the provider's https:// URL, exactly as its tokens' iss");
        }
        if self.audience.iter().all(|a| a.trim().is_empty()) {
            bail!("[oidc] audience: name the audience tokens are issued for (opencm's identifier at the provider)");
        }
        if self.algorithms.as_ref().is_some_and(|a| a.is_empty()) {
            bail!("[oidc] algorithms: name at least one (RS256, PS256, ES256, ...), or leave it out for those three");
        }
        let names = self
            .algorithms
            .clone()
            .unwrap_or_else(|| vec!["RS256".into(), "PS256".into(), "ES256".into()]);
        let algorithms = names
            .iter()
            .map(|n| {
                opencm_directory::parse_algorithm(n).ok_or_else(|| {
                    anyhow::anyhow!("[oidc] algorithm '{n}' is not an accepted asymmetric signature (RS256, PS256, ES256, ...)")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut s =
            opencm_directory::OidcSettings::new(&self.issuer, self.audience.clone(), algorithms);
        if let Some(c) = &self.login_claim {
            s.login_claim = c.clone();
        }
        s.leeway = std::time::Duration::from_secs(self.leeway_secs.unwrap_or(60));
        s.users_from_claims = !with_directory;
        if let Some(c) = &self.uuid_claim {
            s.uuid_claim = c.clone();
        }
        if let Some(c) = &self.sid_claims {
            s.sid_claims = c.clone();
        }
        if let Some(c) = &self.groups_claim {
            s.groups_claim = c.clone();
        }
        Ok(s)
    }
}

/// `[directory]`: LDAP or Active Directory. The bind password comes from `bind_password_file`
/// or `OPENCM_DIRECTORY_BIND_PASSWORD`, never from the configuration file itself.
#[derive(Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    /// `ldaps://dc.example.com` or `ldap://…` (with `starttls = true` off loopback).
    pub url: String,
    #[serde(default)]
    pub starttls: bool,
    /// PEM CA certificates the directory's TLS certificate must chain to (default: system roots).
    pub ca_file: Option<std::path::PathBuf>,
    pub bind_dn: String,
    pub bind_password_file: Option<std::path::PathBuf>,
    /// Where users are searched (`DC=example,DC=com`).
    pub user_base: String,
    /// `{login}` is replaced by the escaped login. Default: sAMAccountName or userPrincipalName.
    pub user_filter: Option<String>,
    /// Default `sAMAccountName`.
    pub login_attribute: Option<String>,
    /// `token_groups` (Active Directory, the default) or `member_of` (the memberof overlay).
    pub groups: Option<String>,
    /// How long an answer is kept (default 60 s): a user removed from a group loses its rights
    /// within it.
    pub cache_secs: Option<u64>,
    /// Connection and operation timeout (default 5 s).
    pub timeout_secs: Option<u64>,
}

impl DirectoryConfig {
    /// The adapter's settings, with the bind password read from its file or the environment.
    pub fn settings(&self) -> anyhow::Result<opencm_directory::LdapSettings> {
        let url = self.url.trim();
        let host = url
            .strip_prefix("ldaps://")
            .or_else(|| url.strip_prefix("ldap://"))
            .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace));
        let Some(host) = host else {
            bail!("[directory] url must be ldaps://host[:port] or ldap://host[:port]");
        };
        let loopback =
            host.starts_with("127.") || host.starts_with("localhost") || host.starts_with("[::1]");
        if url.starts_with("ldap://") && !self.starttls && !loopback {
            tracing::warn!(url, "the directory is reached without TLS: its bind password and every answer cross the network in clear text (use ldaps://, or starttls = true)");
            eprintln!("warning: [directory] {url} without TLS: the bind password crosses the network in clear text (use ldaps://, or starttls = true)");
        }
        let password = match (
            &self.bind_password_file,
            std::env::var("OPENCM_DIRECTORY_BIND_PASSWORD").ok(),
        ) {
            (_, Some(p)) if !p.is_empty() => p,
            (Some(f), _) => std::fs::read_to_string(f)
                .with_context(|| {
                    format!("reading the directory bind password from {}", f.display())
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            _ => bail!("[directory] needs bind_password_file or OPENCM_DIRECTORY_BIND_PASSWORD"),
        };
        let mut s = opencm_directory::LdapSettings::active_directory(
            &self.url,
            &self.bind_dn,
            &password,
            &self.user_base,
        );
        s.starttls = self.starttls;
        s.ca_file = self.ca_file.clone();
        if let Some(f) = &self.user_filter {
            s.user_filter = f.clone();
        }
        if let Some(a) = &self.login_attribute {
            s.login_attribute = a.clone();
        }
        s.groups = match self.groups.as_deref().unwrap_or("token_groups") {
            "token_groups" => opencm_directory::GroupSource::TokenGroups,
            "member_of" => opencm_directory::GroupSource::MemberOf,
            other => bail!("[directory] groups must be token_groups or member_of, not '{other}'"),
        };
        s.cache_ttl = std::time::Duration::from_secs(self.cache_secs.unwrap_or(60));
        s.timeout = std::time::Duration::from_secs(self.timeout_secs.unwrap_or(5).max(1));
        Ok(s)
    }
}

/// Flags that override everything else.
#[derive(Default)]
pub struct Overrides {
    pub config_file: Option<std::path::PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub tls_names: Option<Vec<String>>,
}

fn number<T: std::str::FromStr>(v: Option<String>, name: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.map(|v| v.parse::<T>())
        .transpose()
        .with_context(|| format!("{name} must be a whole number"))
}

impl Config {
    pub fn load(o: &Overrides) -> anyhow::Result<Config> {
        let mut c = Config::default();
        if let Some(path) = &o.config_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let f: FileConfig = toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!(redacted(&e, &text)))
                .with_context(|| format!("in {}", path.display()))?;
            c.apply(f);
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        c.apply(FileConfig {
            database_url: env("OPENCM_DATABASE_URL"),
            listen: env("OPENCM_LISTEN"),
            sqlite_synchronous: env("OPENCM_SQLITE_SYNCHRONOUS"),
            max_body_bytes: number(env("OPENCM_MAX_BODY_BYTES"), "OPENCM_MAX_BODY_BYTES")?,
            log_format: env("OPENCM_LOG_FORMAT"),
            ca_kek_file: env("OPENCM_CA_KEK_FILE").map(Into::into),
            ca_key_algorithm: env("OPENCM_CA_KEY_ALGORITHM"),
            data_dir: env("OPENCM_DATA_DIR").map(Into::into),
            tls_cert_file: env("OPENCM_TLS_CERT_FILE").map(Into::into),
            tls_key_file: env("OPENCM_TLS_KEY_FILE").map(Into::into),
            tls_names: env("OPENCM_TLS_NAMES").map(|v| {
                v.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect()
            }),
            max_connections: number(env("OPENCM_MAX_CONNECTIONS"), "OPENCM_MAX_CONNECTIONS")?,
            header_timeout_secs: number(
                env("OPENCM_HEADER_TIMEOUT_SECS"),
                "OPENCM_HEADER_TIMEOUT_SECS",
            )?,
            body_timeout_secs: number(env("OPENCM_BODY_TIMEOUT_SECS"), "OPENCM_BODY_TIMEOUT_SECS")?,
            idle_timeout_secs: number(env("OPENCM_IDLE_TIMEOUT_SECS"), "OPENCM_IDLE_TIMEOUT_SECS")?,
            public_url: env("OPENCM_PUBLIC_URL"),
            directory: None,
            oidc: None,
            kerberos: None,
            client_certificate_auth: env("OPENCM_CLIENT_CERTIFICATE_AUTH")
                .map(|v| v.parse::<bool>())
                .transpose()
                .context("OPENCM_CLIENT_CERTIFICATE_AUTH must be true or false")?,
            client_certificate_anchors: None,
            client_certificate_crls: None,
            client_certificate_weak_mapping: env("OPENCM_CLIENT_CERTIFICATE_WEAK_MAPPING")
                .map(|v| v.parse::<bool>())
                .transpose()
                .context("OPENCM_CLIENT_CERTIFICATE_WEAK_MAPPING must be true or false")?,
        });
        c.apply(FileConfig {
            database_url: o.database_url.clone(),
            listen: o.listen.clone(),
            tls_names: o.tls_names.clone(),
            ..Default::default()
        });
        if let Some(dir) = c.data_dir.clone() {
            if !c.database_set {
                c.database_url = format!("sqlite://{}", dir.join("opencm.db").display());
            }
            if !c.kek_set {
                c.ca_kek_file = dir.join("opencm-ca.kek");
            }
        }
        for (name, v) in [
            ("max_connections", c.max_connections as u64),
            ("header_timeout_secs", c.header_timeout_secs),
            ("body_timeout_secs", c.body_timeout_secs),
            ("idle_timeout_secs", c.idle_timeout_secs),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if let Some(u) = &c.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || u.chars().any(|ch| ch.is_whitespace() || ch.is_control())
            {
                bail!("public_url must be an http:// or https:// URL without spaces");
            }
        }
        if !matches!(c.sqlite_synchronous.as_str(), "full" | "normal") {
            bail!(
                "sqlite_synchronous must be 'full' or 'normal', not '{}'",
                c.sqlite_synchronous
            );
        }
        if opencm_ca::CaKeyAlgorithm::parse(&c.ca_key_algorithm).is_none() {
            bail!(
                "ca_key_algorithm must be ecdsa-p256, rsa-2048, rsa-3072 or rsa-4096, not '{}'",
                c.ca_key_algorithm
            );
        }
        if !matches!(c.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format must be 'text' or 'json', not '{}'",
                c.log_format
            );
        }
        Ok(c)
    }

    fn apply(&mut self, f: FileConfig) {
        if let Some(v) = f.database_url {
            self.database_url = v;
            self.database_set = true;
        }
        if let Some(v) = f.listen {
            self.listen = v;
        }
        if let Some(v) = f.sqlite_synchronous {
            self.sqlite_synchronous = v.to_ascii_lowercase();
        }
        if let Some(v) = f.max_body_bytes {
            self.max_body_bytes = v;
        }
        if let Some(v) = f.log_format {
            self.log_format = v.to_ascii_lowercase();
        }
        if let Some(v) = f.ca_kek_file {
            self.ca_kek_file = v;
            self.kek_set = true;
        }
        if let Some(v) = f.data_dir {
            self.data_dir = Some(v);
        }
        if let Some(v) = f.tls_cert_file {
            self.tls_cert_file = Some(v);
        }
        if let Some(v) = f.tls_key_file {
            self.tls_key_file = Some(v);
        }
        if let Some(v) = f.tls_names {
            self.tls_names = v;
        }
        if let Some(v) = f.public_url {
            self.public_url = Some(v);
        }
        if let Some(v) = f.directory {
            self.directory = Some(v);
        }
        if let Some(v) = f.oidc {
            self.oidc = Some(v);
        }
        if let Some(v) = f.kerberos {
            self.kerberos = Some(v);
        }
        if let Some(v) = f.client_certificate_auth {
            self.client_certificate_auth = v;
        }
        if let Some(v) = f.client_certificate_anchors {
            self.client_certificate_anchors = v;
        }
        if let Some(v) = f.client_certificate_crls {
            self.client_certificate_crls = v;
        }
        if let Some(v) = f.client_certificate_weak_mapping {
            self.client_certificate_weak_mapping = v;
        }
        if let Some(v) = f.max_connections {
            self.max_connections = v;
        }
        if let Some(v) = f.header_timeout_secs {
            self.header_timeout_secs = v;
        }
        if let Some(v) = f.body_timeout_secs {
            self.body_timeout_secs = v;
        }
        if let Some(v) = f.idle_timeout_secs {
            self.idle_timeout_secs = v;
        }
        if let Some(v) = f.ca_key_algorithm {
            self.ca_key_algorithm = v.to_ascii_lowercase();
        }
    }

    pub fn store_options(&self) -> opencm_store::StoreOptions {
        opencm_store::StoreOptions {
            sqlite_synchronous_full: self.sqlite_synchronous == "full",
            ..Default::default()
        }
    }

    /// The database URL with any password hidden, for logs and errors: the user information
    /// (`user:password@`) masked and the query string (`?password=…&sslpassword=…`) left out.
    pub fn database_for_logs(&self) -> String {
        let (url, query) = match self.database_url.split_once('?') {
            Some((u, _)) => (u, "?…"),
            None => (self.database_url.as_str(), ""),
        };
        match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                format!("{}://***{}{query}", &url[..s], &url[at..])
            }
            _ => format!("{url}{query}"),
        }
    }
}

/// A refused configuration file, said without its values: the line and column, and the parser's
/// reason with every quoted value replaced by `…` — never the offending line itself, which may hold
/// a password (`bind_password = "…"`, `client_secret`, a database URL with its credentials) even
/// where opencm takes no such key.
fn redacted(e: &toml::de::Error, text: &str) -> String {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    format!("{}{}", at.unwrap_or_default(), without_values(e.message()))
}

/// The message with every double-quoted value and every backquoted value that is not a key name
/// replaced by `…` (serde quotes a value it refused: `invalid type: string "s3cret", expected …`).
fn without_values(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        match rest[open + 1..].find('"') {
            Some(close) => {
                out.push_str("\"…\"");
                rest = &rest[open + 1 + close + 1..];
            }
            None => {
                out.push('…');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// One test owns the OPENCM_* variables (tests in a binary share the environment).
    #[test]
    fn file_then_environment_then_flags() {
        let dir = std::env::temp_dir().join(format!("opencm-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("opencm.toml");
        std::fs::write(&file, "database_url = 'sqlite://from-file.db'\nlisten = '0.0.0.0:9000'\nlog_format = 'json'\n").unwrap();
        std::env::remove_var("OPENCM_DATABASE_URL");
        std::env::remove_var("OPENCM_LISTEN");
        let c = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (
                c.database_url.as_str(),
                c.listen.as_str(),
                c.log_format.as_str()
            ),
            ("sqlite://from-file.db", "0.0.0.0:9000", "json")
        );
        std::env::set_var("OPENCM_LISTEN", "127.0.0.1:9100");
        let c = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (c.database_url.as_str(), c.listen.as_str()),
            ("sqlite://from-file.db", "127.0.0.1:9100")
        );
        let c = Config::load(&Overrides {
            config_file: Some(file.clone()),
            listen: Some("127.0.0.1:1".into()),
            database_url: Some("postgres://h/db".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (c.database_url.as_str(), c.listen.as_str()),
            ("postgres://h/db", "127.0.0.1:1")
        );
        std::env::remove_var("OPENCM_LISTEN");
        let c = Config::load(&Overrides::default()).unwrap();
        assert_eq!(
            (
                c.database_url.as_str(),
                c.listen.as_str(),
                c.sqlite_synchronous.as_str()
            ),
            ("sqlite://opencm.db", "127.0.0.1:8080", "full")
        );
        // data_dir keeps the database and the KEK together, unless they are named explicitly.
        std::fs::write(&file, "data_dir = '/srv/opencm'\n").unwrap();
        let c = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.database_url, "sqlite:///srv/opencm/opencm.db");
        assert_eq!(
            c.ca_kek_file,
            std::path::Path::new("/srv/opencm/opencm-ca.kek")
        );
        let c = Config::load(&Overrides {
            config_file: Some(file.clone()),
            database_url: Some("postgres://h/db".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.database_url, "postgres://h/db");
        assert_eq!(
            c.ca_kek_file,
            std::path::Path::new("/srv/opencm/opencm-ca.kek")
        );
        std::fs::write(&file, "header_timeout_secs = 0\n").unwrap();
        let e = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("header_timeout_secs must be at least 1"),
            "{e:#}"
        );
        std::fs::write(&file, "databse_url = 'typo'\n").unwrap();
        let e = Config::load(&Overrides {
            config_file: Some(file.clone()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("unknown field"), "{e:#}");
        std::fs::write(&file, "sqlite_synchronous = 'off'\n").unwrap();
        assert!(Config::load(&Overrides {
            config_file: Some(file),
            ..Default::default()
        })
        .is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passwords_are_masked_in_logs() {
        let c = Config {
            database_url: "postgres://opencm:s3cret@db.example/opencm".into(),
            ..Default::default()
        };
        assert_eq!(c.database_for_logs(), "postgres://***@db.example/opencm");
        let query = Config {
            database_url: "postgres://db.example/opencm?user=u&password=s3cret".into(),
            ..Default::default()
        };
        assert_eq!(query.database_for_logs(), "postgres://db.example/opencm?…");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cret") && debug.contains("***@db.example"),
            "{debug}"
        );
    }
}
