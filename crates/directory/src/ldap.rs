use async_trait::async_trait;
use ldap3::{ldap_escape, Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use opencm_app::ports::{Directory, StoreError};
use opencm_domain::{Guid, Principal, Sid, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a user's group SIDs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupSource {
    /// Active Directory's constructed `tokenGroups` (nested groups included).
    TokenGroups,
    /// `memberOf` values (the memberof overlay), followed through the groups' own `memberOf`.
    MemberOf,
}

#[derive(Clone, Debug)]
pub struct LdapSettings {
    /// `ldap://host:389` or `ldaps://host:636`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS.
    pub starttls: bool,
    /// PEM file of the CA certificates the directory's TLS certificate must chain to (else the
    /// system's roots).
    pub ca_file: Option<std::path::PathBuf>,
    pub bind_dn: String,
    pub bind_password: String,
    /// Where users are searched.
    pub user_base: String,
    /// The filter a login is found with; `{login}` is replaced by the escaped login.
    pub user_filter: String,
    pub login_attribute: String,
    pub groups: GroupSource,
    pub cache_ttl: Duration,
    pub timeout: Duration,
}

impl LdapSettings {
    /// Active Directory's attributes and defaults around a URL, bind and base.
    pub fn active_directory(url: &str, bind_dn: &str, bind_password: &str, base: &str) -> Self {
        LdapSettings {
            url: url.into(),
            starttls: false,
            ca_file: None,
            bind_dn: bind_dn.into(),
            bind_password: bind_password.into(),
            user_base: base.into(),
            user_filter:
                "(&(objectClass=user)(|(sAMAccountName={login})(userPrincipalName={login})))".into(),
            login_attribute: "sAMAccountName".into(),
            groups: GroupSource::TokenGroups,
            cache_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        }
    }
}

/// At most this many users are cached; past it the cache starts afresh.
const CACHE_MAX: usize = 10_000;
/// How far `memberOf` nesting is followed.
const MAX_NESTING: usize = 16;
/// At most this many users are told of one event through one group.
const MAX_MEMBERS: usize = 1000;
/// ADS_UF_ACCOUNTDISABLE.
const ACCOUNT_DISABLE: i64 = 0x2;

pub struct LdapDirectory {
    settings: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: Mutex<HashMap<String, (Instant, Option<Principal>)>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::DirectoryUnavailable(format!("the directory is unreachable ({what}: {e})"))
}

/// An attribute's values as bytes, whether ldap3 decoded them as text or kept them binary.
fn bytes_of(e: &SearchEntry, name: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (k, v) in &e.attrs {
        if k.eq_ignore_ascii_case(name) {
            out.extend(v.iter().map(|s| s.as_bytes().to_vec()));
        }
    }
    for (k, v) in &e.bin_attrs {
        if k.eq_ignore_ascii_case(name) {
            out.extend(v.iter().cloned());
        }
    }
    out
}

fn text_of(e: &SearchEntry, name: &str) -> Option<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

fn texts_of(e: &SearchEntry, name: &str) -> Vec<String> {
    e.attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

/// `\xx` for every byte: a binary value in a search filter.
fn escape_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

impl LdapDirectory {
    pub fn new(settings: LdapSettings) -> Result<Self, String> {
        let tls = match &settings.ca_file {
            None => None,
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    format!(
                        "cannot read the directory's CA file {}: {e}",
                        path.display()
                    )
                })?;
                let mut roots = rustls::RootCertStore::empty();
                let mut n = 0;
                for c in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                    let c: rustls_pki_types::CertificateDer<'static> =
                        c.map_err(|e| format!("{}: {e}", path.display()))?;
                    roots
                        .add(c)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    n += 1;
                }
                if n == 0 {
                    return Err(format!("{} holds no certificate", path.display()));
                }
                Some(Arc::new(
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
                ))
            }
        };
        if !settings.user_filter.contains("{login}") {
            return Err("the directory's user filter must contain {login}".into());
        }
        Ok(LdapDirectory {
            settings,
            tls,
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn connect(&self) -> Result<Ldap, StoreError> {
        let mut s = LdapConnSettings::new()
            .set_conn_timeout(self.settings.timeout)
            .set_starttls(self.settings.starttls);
        if let Some(c) = &self.tls {
            s = s.set_config(c.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(s, &self.settings.url)
            .await
            .map_err(|e| unavailable("connect", e))?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.settings.timeout)
            .simple_bind(&self.settings.bind_dn, &self.settings.bind_password)
            .await
            .map_err(|e| unavailable("bind", e))?
            .success()
            .map_err(|e| unavailable("bind", e))?;
        Ok(ldap)
    }

    async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<SearchEntry>, StoreError> {
        let (entries, _) = ldap
            .with_timeout(self.settings.timeout)
            .search(base, scope, filter, attrs.to_vec())
            .await
            .map_err(|e| unavailable("search", e))?
            .success()
            .map_err(|e| unavailable("search", e))?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    fn cached(&self, key: &str) -> Option<Option<Principal>> {
        let map = self.cache.lock().ok()?;
        let (at, p) = map.get(key)?;
        (at.elapsed() < self.settings.cache_ttl).then(|| p.clone())
    }

    fn remember(&self, key: String, p: Option<Principal>) {
        if self.settings.cache_ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.cache.lock() {
            if map.len() >= CACHE_MAX {
                let ttl = self.settings.cache_ttl;
                map.retain(|_, (at, _)| at.elapsed() < ttl);
                if map.len() >= CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(key, (Instant::now(), p));
        }
    }

    /// The one user `filter` finds, as a principal; `None` for none or a disabled account.
    async fn find(&self, filter: &str) -> Result<Option<Principal>, StoreError> {
        let mut ldap = self.connect().await?;
        let base = self.settings.user_base.clone();
        let found = self.find_in(&mut ldap, &base, Scope::Subtree, filter).await;
        let _ = ldap.unbind().await;
        found
    }

    /// The naming context of the user base (its `dc=` components), where groups are searched.
    fn domain_root(&self) -> String {
        let base = &self.settings.user_base;
        let dcs: Vec<&str> = base
            .split(',')
            .map(str::trim)
            .filter(|rdn| rdn.to_ascii_lowercase().starts_with("dc="))
            .collect();
        if dcs.is_empty() {
            base.clone()
        } else {
            dcs.join(",")
        }
    }

    /// The users `sid` names (a user, or a group's members, nested groups followed), for
    /// notifications.
    async fn members(&self, sid: &Sid) -> Result<Vec<Principal>, StoreError> {
        let mut ldap = self.connect().await?;
        let filter = format!("(objectSid={})", escape_bytes(&sid.to_binary()));
        let mut level: Vec<String> = self
            .search(
                &mut ldap,
                &self.domain_root(),
                Scope::Subtree,
                &filter,
                &["objectClass"],
            )
            .await?
            .into_iter()
            .map(|e| e.dn)
            .collect();
        let mut seen: HashSet<String> = HashSet::new();
        let mut users = Vec::new();
        for _ in 0..MAX_NESTING {
            let mut next = Vec::new();
            for dn in level {
                if !seen.insert(dn.to_ascii_lowercase()) || users.len() >= MAX_MEMBERS {
                    continue;
                }
                let entries = self
                    .search(
                        &mut ldap,
                        &dn,
                        Scope::Base,
                        "(objectClass=*)",
                        &["objectClass", "member"],
                    )
                    .await?;
                let Some(e) = entries.first() else { continue };
                let is_group = texts_of(e, "objectClass").iter().any(|c| {
                    matches!(
                        c.to_ascii_lowercase().as_str(),
                        "group" | "groupofnames" | "groupofuniquenames"
                    )
                });
                if is_group {
                    next.extend(texts_of(e, "member"));
                } else if let Some(p) = self
                    .find_in(&mut ldap, &dn, Scope::Base, "(objectClass=*)")
                    .await?
                {
                    users.push(p);
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        let _ = ldap.unbind().await;
        Ok(users)
    }

    /// `find` at `base` with `scope`, on an open connection.
    async fn find_in(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
    ) -> Result<Option<Principal>, StoreError> {
        let s = &self.settings;
        let attrs = [
            s.login_attribute.as_str(),
            "displayName",
            "cn",
            "mail",
            "userPrincipalName",
            "objectSid",
            "objectGUID",
            "userAccountControl",
            "memberOf",
            "altSecurityIdentities",
            "preferredLanguage",
        ];
        let found = self.search(ldap, base, scope, filter, &attrs).await?;
        let entry = match found.as_slice() {
            [] => return Ok(None),
            [one] => one,
            more => {
                tracing::warn!(
                    filter,
                    matches = more.len(),
                    "directory: a login matches more than one entry; refused"
                );
                return Ok(None);
            }
        };
        let uac = text_of(entry, "userAccountControl")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        if uac & ACCOUNT_DISABLE != 0 {
            tracing::info!(dn = %entry.dn, "directory: account disabled (userAccountControl); refused");
            return Ok(None);
        }
        let sid = bytes_of(entry, "objectSid")
            .first()
            .and_then(|b| Sid::from_binary(b).ok());
        let uuid = bytes_of(entry, "objectGUID")
            .first()
            .and_then(|b| Guid::from_windows_bytes(b));
        let (Some(sid), Some(uuid)) = (sid, uuid) else {
            tracing::warn!(dn = %entry.dn, "directory: entry has no usable objectSid or objectGUID; refused");
            return Ok(None);
        };
        let login = text_of(entry, &s.login_attribute).unwrap_or_default();
        let groups = match s.groups {
            GroupSource::TokenGroups => {
                let token = self
                    .search(
                        ldap,
                        &entry.dn,
                        Scope::Base,
                        "(objectClass=*)",
                        &["tokenGroups"],
                    )
                    .await?;
                token
                    .first()
                    .map(|t| {
                        bytes_of(t, "tokenGroups")
                            .iter()
                            .filter_map(|b| Sid::from_binary(b).ok())
                            .collect()
                    })
                    .unwrap_or_default()
            }
            GroupSource::MemberOf => {
                self.nested_group_sids(ldap, texts_of(entry, "memberOf"))
                    .await?
            }
        };
        Ok(Some(Principal {
            uuid: uuid.into(),
            display_name: text_of(entry, "displayName")
                .or_else(|| text_of(entry, "cn"))
                .unwrap_or_else(|| login.clone()),
            login,
            sid,
            groups,
            upn: text_of(entry, "userPrincipalName"),
            email: text_of(entry, "mail"),
            certificate_mappings: texts_of(entry, "altSecurityIdentities"),
            language: text_of(entry, "preferredLanguage"),
        }))
    }

    /// The SIDs of the groups in `dns` and of every group they are members of, in turn.
    async fn nested_group_sids(
        &self,
        ldap: &mut Ldap,
        dns: Vec<String>,
    ) -> Result<Vec<Sid>, StoreError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut sids = Vec::new();
        let mut level = dns;
        for _ in 0..MAX_NESTING {
            let mut next = Vec::new();
            for dn in level {
                if !seen.insert(dn.to_ascii_lowercase()) {
                    continue;
                }
                for g in self
                    .search(
                        ldap,
                        &dn,
                        Scope::Base,
                        "(objectClass=*)",
                        &["objectSid", "memberOf"],
                    )
                    .await?
                {
                    if let Some(sid) = bytes_of(&g, "objectSid")
                        .first()
                        .and_then(|b| Sid::from_binary(b).ok())
                    {
                        sids.push(sid);
                    }
                    next.extend(texts_of(&g, "memberOf"));
                }
            }
            if next.is_empty() {
                break;
            }
            level = next;
        }
        Ok(sids)
    }
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        let key = format!("login:{}", login.to_ascii_lowercase());
        if let Some(p) = self.cached(&key) {
            return Ok(p);
        }
        let filter = self
            .settings
            .user_filter
            .replace("{login}", &ldap_escape(login));
        let p = self.find(&filter).await?;
        self.remember(key, p.clone());
        Ok(p)
    }

    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError> {
        let key = format!("uuid:{id}");
        if let Some(p) = self.cached(&key) {
            return Ok(p);
        }
        let filter = format!(
            "(objectGUID={})",
            escape_bytes(&id.guid().to_windows_bytes())
        );
        let p = self.find(&filter).await?;
        self.remember(key, p.clone());
        Ok(p)
    }

    async fn members_of(&self, sid: &Sid) -> Result<Vec<Principal>, StoreError> {
        self.members(sid).await
    }

    async fn manager_of(&self, user: &Principal) -> Result<Option<Principal>, StoreError> {
        let mut ldap = self.connect().await?;
        let filter = format!(
            "(objectGUID={})",
            escape_bytes(&user.uuid.guid().to_windows_bytes())
        );
        let base = self.settings.user_base.clone();
        let entries = self
            .search(&mut ldap, &base, Scope::Subtree, &filter, &["manager"])
            .await?;
        let manager = match entries.first().and_then(|e| text_of(e, "manager")) {
            Some(dn) => {
                self.find_in(&mut ldap, &dn, Scope::Base, "(objectClass=*)")
                    .await?
            }
            None => None,
        };
        let _ = ldap.unbind().await;
        Ok(manager)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_filter_values_are_escaped_byte_by_byte() {
        assert_eq!(escape_bytes(&[0x00, 0x2a, 0xff]), "\\00\\2a\\ff");
    }

    #[test]
    fn a_user_filter_without_the_login_is_refused() {
        let mut s = LdapSettings::active_directory("ldap://x", "cn=a", "p", "dc=x");
        s.user_filter = "(objectClass=user)".into();
        assert!(LdapDirectory::new(s).is_err());
    }
}
