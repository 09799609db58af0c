//! Who the caller is: `Authenticator`s turn a credential into a `Principal` (opencm's own bearer
//! tokens today; JWT, Kerberos and client certificates next), and the `Directory` says who users
//! are (opencm's own table today; LDAP next). Also the administration of local users, groups and
//! tokens that `opencm user|group|token` perform.
//!
//! Tokens are opaque random strings shown once at creation and stored only as their SHA-256: they
//! carry 256 bits of randomness, so a fast hash is the right tool (a password hash would only add
//! latency to every request without adding security).

use crate::error::{AppError, ErrorCode};
use crate::ports::{Clock, Directory, IdentityStore, NewUser, StoreError};
use crate::App;
use async_trait::async_trait;
use opencm_domain::certmap;
use opencm_domain::{Principal, Timestamp, UserId};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use opencm_domain::offboarding::TOKEN_PREFIX;

/// A new token: `ocm_` and 43 base64url characters.
pub fn generate_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// What a client presented to prove who it is.
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>`.
    Bearer(&'a str),
    /// A client certificate (DER) the TLS handshake verified against opencm's CA.
    ClientCertificate(&'a [u8]),
}

/// Turns a credential into the principal it proves, or `None` when it proves nothing (unknown or
/// expired). Errors are for the source being unreachable, never for a bad credential.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    async fn authenticate(&self, c: &Credential<'_>) -> Result<Option<Principal>, AppError>;
}

/// opencm's own API tokens, resolved through the identity store and kept in memory, keyed by
/// hash, for as long as the store's identity epoch stays the same. Every revocation, disabled or
/// enabled user and membership change moves the epoch in the transaction that makes it, so the
/// next request on any node — which reads the epoch, one single-row point read — sees it. A token
/// stops working at its expiry exactly (the expiry is cached with it). The TTL only bounds how
/// long an unused entry is kept.
pub struct TokenAuthenticator {
    store: Arc<dyn IdentityStore>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    principal: Principal,
    at: Instant,
    expires: Option<Timestamp>,
    epoch: i64,
}

const CACHE_MAX: usize = 10_000;

impl TokenAuthenticator {
    pub fn new(store: Arc<dyn IdentityStore>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        TokenAuthenticator {
            store,
            clock,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, hash: &str, now: Timestamp, epoch: i64) -> Option<Principal> {
        let map = self.cache.lock().ok()?;
        let c = map.get(hash)?;
        let expired = c.expires.is_some_and(|e| e <= now);
        (c.epoch == epoch && c.at.elapsed() < self.ttl && !expired).then(|| c.principal.clone())
    }

    fn remember(&self, hash: String, principal: Principal, expires: Option<Timestamp>, epoch: i64) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut map) = self.cache.lock() {
            if map.len() >= CACHE_MAX {
                map.retain(|_, c| c.at.elapsed() < self.ttl && c.epoch == epoch);
                if map.len() >= CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(
                hash,
                Cached {
                    principal,
                    at: Instant::now(),
                    expires,
                    epoch,
                },
            );
        }
    }
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn authenticate(&self, c: &Credential<'_>) -> Result<Option<Principal>, AppError> {
        let Credential::Bearer(token) = c else {
            return Ok(None);
        };
        // opencm's tokens carry their prefix: anything else (a JWT) is another authenticator's.
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = hash_token(token);
        let now = self.clock.now();
        let epoch = self.store.identity_epoch().await?;
        if let Some(p) = self.cached(&hash, now, epoch) {
            return Ok(Some(p));
        }
        match self.store.principal_by_token(&hash, now).await? {
            Some((p, expires)) => {
                self.remember(hash, p.clone(), expires, epoch);
                Ok(Some(p))
            }
            None => Ok(None),
        }
    }
}

/// Authenticators tried in order; the first that recognises the credential decides.
pub struct Chain(pub Vec<Arc<dyn Authenticator>>);

#[async_trait]
impl Authenticator for Chain {
    async fn authenticate(&self, c: &Credential<'_>) -> Result<Option<Principal>, AppError> {
        for a in &self.0 {
            if let Some(p) = a.authenticate(c).await? {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }
}

/// opencm's own users and groups as the directory.
pub struct LocalDirectory(pub Arc<dyn IdentityStore>);

#[async_trait]
impl Directory for LocalDirectory {
    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError> {
        self.0.user_by_uuid(id).await
    }
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        self.0.user_by_login(login).await
    }
    async fn members_of(&self, sid: &opencm_domain::Sid) -> Result<Vec<Principal>, StoreError> {
        self.0.members_of(sid.as_str()).await
    }
}

/// opencm's own users first, then an external directory (LDAP / Active Directory): local users
/// keep working beside the directory, and a local login shadows a directory one.
pub struct Layered {
    pub local: Arc<dyn Directory>,
    pub external: Arc<dyn Directory>,
}

#[async_trait]
impl Directory for Layered {
    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError> {
        match self.local.user_by_uuid(id).await? {
            Some(p) => Ok(Some(p)),
            None => self.external.user_by_uuid(id).await,
        }
    }
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        match self.local.user_by_login(login).await? {
            Some(p) => Ok(Some(p)),
            None => self.external.user_by_login(login).await,
        }
    }
    async fn manager_of(&self, user: &Principal) -> Result<Option<Principal>, StoreError> {
        match self.local.manager_of(user).await? {
            Some(m) => Ok(Some(m)),
            None => self.external.manager_of(user).await,
        }
    }
    async fn members_of(&self, sid: &opencm_domain::Sid) -> Result<Vec<Principal>, StoreError> {
        let mut all = self.local.members_of(sid).await?;
        for p in self.external.members_of(sid).await? {
            if !all.iter().any(|a| a.uuid == p.uuid) {
                all.push(p);
            }
        }
        Ok(all)
    }
}

/// The users who may sign in: as `Layered`, except that a disabled local user is nobody (and
/// does not fall through to a directory user of the same login). Every sign-in that names a user
/// — OIDC, Kerberos, client certificates — goes through it; the directory itself finds no
/// disabled account.
pub struct SignInUsers {
    pub local: Arc<dyn IdentityStore>,
    pub external: Option<Arc<dyn Directory>>,
}

impl SignInUsers {
    async fn enabled(&self, p: Principal) -> Result<Option<Principal>, StoreError> {
        if self.local.user_disabled(p.uuid).await? {
            tracing::info!(login = ?p.login, "sign-in by a disabled user refused");
            return Ok(None);
        }
        Ok(Some(p))
    }
}

#[async_trait]
impl Directory for SignInUsers {
    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError> {
        match self.local.user_by_uuid(id).await? {
            Some(p) => self.enabled(p).await,
            None => match &self.external {
                Some(d) => d.user_by_uuid(id).await,
                None => Ok(None),
            },
        }
    }
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        match self.local.user_by_login(login).await? {
            Some(p) => self.enabled(p).await,
            None => match &self.external {
                Some(d) => d.user_by_login(login).await,
                None => Ok(None),
            },
        }
    }
}

/// Where `App::look_up_user` found a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserSource {
    Local,
    Directory,
}

impl App {
    /// Users from an external directory beside opencm's own (`Layered`).
    pub fn with_directory(self, external: Arc<dyn Directory>) -> App {
        App {
            external_directory: Some(external.clone()),
            directory: Arc::new(Layered {
                local: Arc::new(LocalDirectory(self.identities.clone())),
                external,
            }),
            ..self
        }
    }

    /// Another way to sign in, tried after opencm's own tokens (OIDC access tokens, ...).
    pub fn with_authenticator(self, extra: Arc<dyn Authenticator>) -> App {
        App {
            authenticator: Arc::new(Chain(vec![self.authenticator.clone(), extra])),
            ..self
        }
    }

    /// The users who may sign in (opencm's own enabled users, then any directory), for
    /// authenticators that map a sign-in to a user.
    pub fn sign_in_users(&self) -> Arc<dyn Directory> {
        Arc::new(SignInUsers {
            local: self.identities.clone(),
            external: self.external_directory.clone(),
        })
    }

    /// `opencm directory test LOGIN`: the user as opencm sees it, and where it came from.
    pub async fn look_up_user(
        &self,
        login: &str,
    ) -> Result<Option<(Principal, UserSource)>, AppError> {
        if let Some(p) = self.identities.user_by_login(login).await? {
            return Ok(Some((p, UserSource::Local)));
        }
        match &self.external_directory {
            Some(d) => Ok(d
                .user_by_login(login)
                .await?
                .map(|p| (p, UserSource::Directory))),
            None => Ok(None),
        }
    }

    /// The user a client certificate names: its UPN (SAN otherName) finds the user — opencm's
    /// own first, then the directory. A certificate of opencm's own CA must moreover be one
    /// opencm issued to that user and valid now in opencm's records — neither revoked nor on hold
    /// nor expired, so a revocation applies at once. One of another trust anchor
    /// (`client_certificate_anchors`) had its revocation checked against that CA's CRL by the
    /// handshake, and signs in only by a strong mapping (KB5014754, `certmap`): the account's SID
    /// in the certificate, or an explicit mapping of the account naming it — by UPN alone only
    /// when `client_certificate_weak_mapping` allows it, and then with a warning in the log.
    pub(crate) async fn certificate_principal(
        &self,
        der: &[u8],
    ) -> Result<Option<Principal>, AppError> {
        let Some(cert) = opencm_ca::presented_certificate(der) else {
            tracing::info!("client certificate without a UPN; not a sign-in");
            return Ok(None);
        };
        let upn = cert.upn.as_str();
        let serial: String = cert.serial.iter().map(|b| format!("{b:02X}")).collect();
        let Some(user) = self.sign_in_users().user_by_login(upn).await? else {
            tracing::info!(?upn, "client certificate for an unknown or disabled user");
            return Ok(None);
        };
        let ours = match &self.issuing {
            Some(i) => {
                i.ca.chain_der()
                    .first()
                    .is_none_or(|ca| opencm_ca::issued_by(der, ca))
            }
            None => true,
        };
        if !ours {
            return Ok(
                match certmap::map(&cert, &user, self.weak_certificate_mapping) {
                    Ok(certmap::Mapped::WeakUpn) => {
                        tracing::warn!(?upn, %serial, issuer = ?cert.issuer, "client certificate of another trust anchor mapped by its UPN alone (client_certificate_weak_mapping is on): a UPN that moves to another account takes this certificate with it");
                        Some(user)
                    }
                    Ok(how) => {
                        tracing::info!(?upn, %serial, mapping = ?how, "client certificate of another trust anchor, strongly mapped");
                        Some(user)
                    }
                    Err(why) => {
                        tracing::info!(?upn, %serial, issuer = ?cert.issuer, %why, "client certificate of another trust anchor refused");
                        None
                    }
                },
            );
        }
        let now = self.clock.now();
        let issued = self.certificates.certificates_of_user(user.uuid).await?;
        let valid = issued.iter().any(|c| {
            c.serial_hex.eq_ignore_ascii_case(&serial)
                && c.status == opencm_domain::issued::CertificateStatus::Valid
                && c.not_after > now
        });
        if !valid {
            tracing::info!(?upn, %serial, "client certificate revoked, on hold, expired or not issued to this user");
            return Ok(None);
        }
        Ok(Some(user))
    }

    /// Whether client certificates of other trust anchors may sign in by their UPN alone (weak
    /// mapping, refused by domain controllers since KB5014754). Off unless configured.
    pub fn with_weak_certificate_mapping(self, allowed: bool) -> App {
        if allowed {
            tracing::warn!("client_certificate_weak_mapping is on: client certificates of other trust anchors sign in by their UPN alone, without a SID or an explicit mapping");
        }
        App {
            weak_certificate_mapping: allowed,
            ..self
        }
    }

    /// The principal a credential proves; `Unauthenticated` when it proves nothing.
    pub async fn authenticate(&self, c: &Credential<'_>) -> Result<Principal, AppError> {
        let r = self.authenticate_unmetered(c).await;
        if matches!(&r, Err(e) if e.kind() == crate::ErrorKind::Unauthenticated) {
            crate::metrics::authentication_failed(match c {
                Credential::Bearer(_) => "bearer",
                Credential::ClientCertificate(_) => "client_certificate",
            });
        }
        r
    }

    async fn authenticate_unmetered(&self, c: &Credential<'_>) -> Result<Principal, AppError> {
        if let Credential::ClientCertificate(der) = c {
            return self.certificate_principal(der).await?.ok_or_else(|| {
                AppError::new(ErrorCode::Unauthorized,
                    "The client certificate does not sign anyone in: unknown user, or revoked, on hold or expired.",
                )
            });
        }
        self.authenticator.authenticate(c).await?.ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthorized,
                "The bearer token is unknown or has expired.",
            )
        })
    }

    /// `opencm token create`: a new token for `login`, shown once; only its hash is stored.
    pub async fn create_token(
        &self,
        login: &str,
        expires: Option<Timestamp>,
    ) -> Result<String, AppError> {
        let user = self.local_user(login).await?;
        let token = generate_token();
        self.identities
            .add_token(&hash_token(&token), user.uuid, self.clock.now(), expires)
            .await?;
        Ok(token)
    }

    /// One of opencm's own users, for what only they have (tokens, the disabled flag, local group
    /// membership). A directory user is named as such: it is managed in the directory.
    pub(crate) async fn local_user(&self, login: &str) -> Result<Principal, AppError> {
        if let Some(u) = self.identities.user_by_login(login).await? {
            return Ok(u);
        }
        let message = match &self.external_directory {
            Some(d) if d.user_by_login(login).await?.is_some() => format!(
                "'{}' is a directory user: it is managed in the directory, not by opencm (tokens, disabling and group membership are for opencm's own users).",
                opencm_domain::limits::excerpt(login)
            ),
            _ => format!(
                "No user with login '{}'.",
                opencm_domain::limits::excerpt(login)
            ),
        };
        Err(AppError::new(ErrorCode::UserNotFound, message))
    }

    /// `opencm user add`. A login is written as it is matched: no space around it, no control
    /// characters (two logins that print alike must not name two users). A user's SID is an
    /// account SID (`S-1-5-21-…`): a well-known SID (`S-1-5-18`, a builtin group) names no user.
    pub async fn add_user(&self, user: &NewUser) -> Result<(), AppError> {
        let login = &user.login;
        if login.is_empty() || login.trim() != login || login.chars().any(char::is_control) {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "'{}' is not a login: no spaces around it and no control characters.",
                    opencm_domain::limits::excerpt(login)
                ),
            ));
        }
        let sid = opencm_domain::Sid::parse(&user.sid).map_err(|e| {
            AppError::new(ErrorCode::InvalidRequest, format!("The user's SID: {e}"))
        })?;
        if !sid.as_str().starts_with("S-1-5-21-") {
            return Err(AppError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{sid} is a well-known SID, not an account's: a user's SID is S-1-5-21-… (a domain's, or a machine's)."
                ),
            ));
        }
        let user = NewUser {
            sid: sid.to_string(),
            ..user.clone()
        };
        Ok(self.identities.add_user(&user, self.clock.now()).await?)
    }

    /// `opencm group add`.
    pub async fn add_group(&self, name: &str, sid: &str) -> Result<(), AppError> {
        Ok(self.identities.add_group(name, sid).await?)
    }

    pub async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, AppError> {
        Ok(self.directory.user_by_login(login).await?)
    }

    /// Whether any user exists (the demo realm only seeds an empty database).
    pub async fn has_users(&self) -> Result<bool, AppError> {
        Ok(self.identities.count_users().await? > 0)
    }
}

impl App {
    /// A user as an administrator manages them: who they are, where they are kept, and whether
    /// they may sign in. Refused to anyone else before the directory is asked.
    pub async fn user_for_administrator(
        &self,
        actor: crate::Actor<'_>,
        login: &str,
    ) -> Result<Option<(Principal, UserSource, bool)>, AppError> {
        actor.authorize()?;
        let Some((p, source)) = self.look_up_user(login).await? else {
            return Ok(None);
        };
        let enabled = self.user_enabled(p.uuid).await?;
        Ok(Some((p, source, enabled)))
    }

    /// The display names of users (opencm's own, then the directory's), for pages that show who
    /// did what; an id no directory knows is left out.
    pub async fn user_names(&self, ids: Vec<UserId>) -> Result<HashMap<UserId, String>, AppError> {
        let mut out = HashMap::new();
        for id in ids {
            if out.contains_key(&id) {
                continue;
            }
            if let Some(p) = self.directory.user_by_uuid(id).await? {
                out.insert(id, format!("{} ({})", p.display_name, p.login));
            }
        }
        Ok(out)
    }
}
