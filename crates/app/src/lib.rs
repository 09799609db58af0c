//! opencm's use cases: every operation the API, the CLI and (later) the portal and notifiers
//! perform, as methods of `App` over ports. Each is shaped *load → decide → write*: everything a
//! decision needs is loaded through the ports first, the domain decides without IO, and the write
//! carries the versions it read; a write that loses a race is decided again from a fresh read.
//!
//! This crate must not know HTTP (no status codes, no wire DTOs) nor SQL: it answers domain
//! values or an `AppError`, which the API crate maps to a status in one place.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod approval_queue;
mod audit;
mod caches;
mod card_lifecycle;
mod card_secrets;
mod change;
pub mod error;
mod expiring_cards;
mod expiry_warnings;
pub mod health;
pub mod help_desk;
pub mod identity;
mod issuance;
pub mod kerberos;
pub mod metrics;
pub mod ocsp;
pub mod offboarding;
pub mod outbox;
pub mod ports;
mod profiles;
mod recipients;
pub mod redact;
mod requests;
pub mod secrets;
pub mod sessions;
pub mod smartcards;
mod spnego;
mod templates;
pub mod web_sign_in;

pub use approval_queue::{ApprovalQueue, DECIDED_SHOWN};
pub use card_secrets::CardPresented;
pub use error::{AppError, ErrorCode, ErrorKind};
pub use identity::{
    Authenticator, Credential, Layered, LocalDirectory, TokenAuthenticator, UserSource,
};
pub use issuance::{CertificateData, Delivered, GenerationOption};
pub use kerberos::{KerberosMapping, NegotiateAcceptor, Negotiated};
pub use offboarding::{Actor, TokenInfo};
pub use profiles::ProfileView;
pub use requests::{NewRequest, Page, Paged, RequestFilter, MAX_PAGE};
pub use web_sign_in::{OidcAttempt, OidcSignOn, PeerCertificate};

use ports::{
    AuditLog, CaStore, CertificateStore, Clock, Database, Directory, IdentityStore, KeyArchive,
    OutboxStore, ProfileStore, RequestStore, SessionStore, SmartcardStore, Storage, StoreError,
    Transactions,
};
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the use cases, from the binary's configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a resolved bearer token is kept in memory.
    pub token_cache_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            token_cache_ttl: Duration::from_secs(10),
        }
    }
}

/// The application: its ports and the caches that sit above them (so both engines get them).
/// Built once in the binary, shared by every handler and command.
pub struct App {
    db: Arc<dyn Database>,
    tx: Arc<dyn Transactions>,
    requests: Arc<dyn RequestStore>,
    audit: Arc<dyn AuditLog>,
    profiles: Arc<dyn ProfileStore>,
    certificates: Arc<dyn CertificateStore>,
    templates: caches::Templates,
    /// Every template, briefly kept for what pages offer.
    template_list: caches::TemplateList,
    identities: Arc<dyn IdentityStore>,
    smartcards: Arc<dyn SmartcardStore>,
    directory: Arc<dyn Directory>,
    /// The LDAP / Active Directory beside opencm's own users, if one is configured.
    external_directory: Option<Arc<dyn Directory>>,
    authenticator: Arc<dyn Authenticator>,
    /// Kerberos (`Negotiate`) sign-in, if configured.
    kerberos: Option<Arc<kerberos::Kerberos>>,
    /// OpenID Connect sign-in for the portal, if `[oidc]` names opencm's client.
    oidc_sign_on: Option<Arc<dyn OidcSignOn>>,
    ca_store: Arc<dyn CaStore>,
    /// The CA and the key archive; absent for administration commands that issue nothing.
    issuing: Option<Issuing>,
    clock: Arc<dyn Clock>,
    /// Client certificates of other trust anchors may sign in by UPN alone.
    weak_certificate_mapping: bool,
    /// Portal passwords and sessions.
    sessions: Arc<dyn SessionStore>,
    session_limits: opencm_domain::session::SessionLimits,
    throttle: sessions::Throttle,
    /// The transactional outbox.
    outbox: Arc<dyn OutboxStore>,
    /// Notification channels, when `[notifications]` configures any.
    notifications: Option<Arc<outbox::Notifications>>,
    /// The OCSP responder, when `with_ocsp` turned it on.
    ocsp: Option<Arc<ocsp::Responder>>,
}

#[derive(Clone)]
pub(crate) struct Issuing {
    pub ca: Arc<dyn opencm_ca::CertificateAuthority>,
    pub keys: Arc<dyn KeyArchive>,
}

/// A CA signature (or anything as slow) run on the blocking pool when `slow` — an RSA key, a key
/// on an HSM — and inline otherwise (an ECDSA signature in memory costs less than the handoff).
/// The one way the use cases sign, so none holds an async worker through a token's round trip.
pub(crate) async fn signing<T: Send + 'static>(
    slow: bool,
    sign: impl FnOnce() -> Result<T, opencm_ca::CaError> + Send + 'static,
) -> Result<T, opencm_ca::CaError> {
    if slow {
        tokio::task::spawn_blocking(sign)
            .await
            .unwrap_or_else(|e| Err(opencm_ca::CaError::Generate(format!("signing task: {e}"))))
    } else {
        sign()
    }
}

impl App {
    /// The application over one storage engine, with opencm's own users and tokens as its
    /// directory and authenticator. It issues nothing until `with_ca` gives it a CA.
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>, settings: Settings) -> App {
        let identities: Arc<dyn IdentityStore> = store.clone();
        let directory: Arc<dyn Directory> = Arc::new(LocalDirectory(identities.clone()));
        let authenticator: Arc<dyn Authenticator> = Arc::new(TokenAuthenticator::new(
            identities.clone(),
            clock.clone(),
            settings.token_cache_ttl,
        ));
        App {
            db: store.clone(),
            tx: store.clone(),
            requests: store.clone(),
            audit: store.clone(),
            profiles: store.clone(),
            certificates: store.clone(),
            templates: caches::Templates::new(store.clone()),
            template_list: Default::default(),
            identities,
            smartcards: Arc::new(expiring_cards::ExpiringCards {
                inner: store.clone(),
                clock: clock.clone(),
            }),
            directory,
            external_directory: None,
            authenticator,
            kerberos: None,
            oidc_sign_on: None,
            ca_store: store.clone(),
            issuing: None,
            clock,
            weak_certificate_mapping: false,
            sessions: store.clone(),
            session_limits: Default::default(),
            throttle: Default::default(),
            outbox: store.clone(),
            notifications: None,
            ocsp: None,
        }
    }

    /// The CA that signs, and the archive that seals server-generated keys.
    pub fn with_ca(
        self,
        ca: Arc<dyn opencm_ca::CertificateAuthority>,
        keys: Arc<dyn KeyArchive>,
    ) -> App {
        App {
            issuing: Some(Issuing { ca, keys }),
            ..self
        }
    }

    pub(crate) fn issuing(&self) -> Result<&Issuing, AppError> {
        self.issuing
            .as_ref()
            .ok_or_else(|| AppError::internal("no CA is loaded in this process"))
    }

    pub fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The storage engine's name, when the database answers (`/readyz`).
    pub async fn ready(&self) -> Result<&'static str, AppError> {
        self.db.ping().await?;
        Ok(self.db.engine())
    }

    /// `opencm backup FILE`: a consistent copy of the database as of one moment, taken while
    /// servers keep writing to it.
    pub async fn backup(&self, dest: &std::path::Path) -> Result<(), AppError> {
        match self.db.backup(dest).await {
            Err(StoreError::Config(why)) => Err(AppError::new(ErrorCode::InvalidRequest, why)),
            other => Ok(other?),
        }
    }

    /// Finishes pending writes and closes the database (graceful shutdown).
    pub async fn close(&self) {
        self.db.close().await;
    }

    /// The stored CA, for start-up (`opencm serve`, `opencm ca`).
    pub fn ca_store(&self) -> &dyn CaStore {
        &*self.ca_store
    }
}
