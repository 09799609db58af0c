//! The identity sources' sections: `[directory]`, `[oidc]`, `[kerberos]`, and how each becomes
//! its adapter's settings.

use anyhow::{bail, Context};
use serde::Deserialize;

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
    /// The portal's sign-in with this provider (the authorization-code flow with PKCE): opencm's
    /// client id at the provider, registered with the redirect URI `{public_url}/sign-in/oidc`.
    /// Without it the portal offers no OpenID sign-in.
    pub client_id: Option<String>,
    /// The client secret, from this file or `OPENCM_OIDC_CLIENT_SECRET`; none for a public
    /// client.
    pub client_secret_file: Option<std::path::PathBuf>,
    /// Scopes asked for at sign-in besides `openid` (default `profile`, `email`).
    pub scopes: Option<Vec<String>>,
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

    /// The portal's client registration, when `client_id` is set.
    pub fn client(&self) -> anyhow::Result<Option<opencm_directory::OidcClientSettings>> {
        let Some(client_id) = &self.client_id else {
            if self.client_secret_file.is_some() {
                bail!("[oidc] client_secret_file without client_id: name opencm's client id at the provider");
            }
            return Ok(None);
        };
        if client_id.trim().is_empty() {
            bail!("[oidc] client_id is empty: name opencm's client id at the provider, or leave it out");
        }
        let client_secret = match (
            &self.client_secret_file,
            std::env::var("OPENCM_OIDC_CLIENT_SECRET").ok(),
        ) {
            (_, Some(p)) if !p.is_empty() => Some(p),
            (Some(f), _) => Some(
                std::fs::read_to_string(f)
                    .with_context(|| {
                        format!("reading the OIDC client secret from {}", f.display())
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
            _ => None,
        };
        Ok(Some(opencm_directory::OidcClientSettings {
            client_id: client_id.clone(),
            client_secret,
            scopes: self
                .scopes
                .clone()
                .unwrap_or_else(|| vec!["profile".into(), "email".into()]),
        }))
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
            // A URL may carry credentials (`ldap://user:password@host`): never shown.
            let url = super::redact::masked_url(url);
            tracing::warn!(%url, "the directory is reached without TLS: its bind password and every answer cross the network in clear text (use ldaps://, or starttls = true)");
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
