//! opencm's persistence: the schema, its migrations, and SQLite and PostgreSQL behind one `Store`
//! trait. The store keeps and finds; it never decides policy (that is the domain's job).
//!
//! Writes to requests are optimistic: each carries the version it was decided on, and a write whose
//! version no longer matches reports `WriteOutcome::Conflict` so the caller can decide again from a
//! fresh read. All request writes go through a group-commit writer (`batch`) that runs the writes
//! waiting at that moment in one transaction, each inside its own savepoint, so one fsync serves many.

mod backend;
mod batch;
mod error;
pub mod postgres;
mod rows;
pub mod sqlite;
mod sqlite_reads;

pub use error::StoreError;

use async_trait::async_trait;
use opencm_domain::issued::{CertificateStatus, RevocationReason};
use opencm_domain::policy::ProfileTemplate;
use opencm_domain::profile::{ProfileChange, ProfileState, ProfileStatus};
use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::{Guid, Principal, RequestStatus, Timestamp};
use std::sync::Arc;

/// A user as `opencm user add` creates one.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub uuid: Guid,
    pub login: String,
    pub display_name: String,
    pub sid: String,
    pub groups: Vec<String>,
}

/// What `GET /requests` asks the store for. `reader_sids` pre-filters to requests whose descriptor
/// grants Read to one of those SIDs (`None`: no pre-filter, for administrators; ignored when
/// `target` is set, since the target index is narrower). The pre-filter may let through rows the
/// caller cannot read (it ignores deny ACEs), never the reverse: the API runs the exact access
/// check on every row it returns.
#[derive(Clone, Debug, Default)]
pub struct RequestQuery {
    pub reader_sids: Option<Vec<String>>,
    pub target: Option<Guid>,
    pub status: Option<RequestStatus>,
    pub after: Option<Guid>,
    pub limit: u32,
}

/// A software profile (MIM "Profile").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileRecord {
    pub uuid: Guid,
    pub status: ProfileStatus,
    pub flags: i64,
    pub parent: Guid,
    pub primary: Guid,
    pub assigned_user: Guid,
    pub template: Guid,
    pub template_version: i64,
    pub comment: String,
    pub request: Guid,
    pub created: Timestamp,
    /// Incremented by every change; writes that decided on the profile carry the version read.
    pub version: i64,
}

impl ProfileRecord {
    /// The profile as a decision reads it.
    pub fn state(&self) -> ProfileState {
        ProfileState {
            uuid: self.uuid,
            status: self.status,
            version: self.version,
        }
    }
}

/// A certificate opencm issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRecord {
    pub serial_hex: String,
    pub profile: Guid,
    pub request: Guid,
    pub user: Guid,
    pub template_common_name: String,
    /// Base64 of the DER.
    pub der_b64: String,
    pub thumbprint: String,
    pub issuer: String,
    pub subject: String,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Valid, Revoked or OnHold (Expired is derived, never stored).
    pub status: CertificateStatus,
    pub revoked_at: Timestamp,
    pub revocation_reason: Option<RevocationReason>,
    pub server_generated: bool,
    /// The archived private key, sealed under the KEK.
    pub sealed_key: Option<String>,
}

/// What a transition does besides changing the request, in the same transaction.
#[derive(Clone, Debug)]
pub enum Effect {
    InsertProfile(ProfileRecord),
    InsertCertificate(Box<CertificateRecord>),
    /// A profile's new status and flags, and what happens to its certificates (revocations are
    /// stamped with the write's audit time). The write is refused (`Conflict`) unless the profile
    /// still has the version the decision read.
    Profile(ProfileChange),
}

/// A change to requests, applied atomically with its audit event.
#[derive(Clone, Debug)]
pub enum Write {
    Create {
        request: Request,
        event: AuditEvent,
    },
    /// `request.version` is the version the decision was made on; `effects` are applied only if
    /// the update wins.
    Update {
        request: Request,
        approval: Option<Approval>,
        event: AuditEvent,
        effects: Vec<Effect>,
    },
}

/// The CA as persisted: certificate, parents, and the private key sealed under the KEK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCa {
    pub cert_pem: String,
    pub chain_pem: String,
    pub sealed_key: String,
}

/// A revoked (or held) certificate, as the CRL lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokedCertificate {
    pub serial_hex: String,
    pub revoked_at: Timestamp,
    pub reason: RevocationReason,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// Someone else changed the request since it was read; nothing was written.
    Conflict,
}

#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// SQLite `synchronous=FULL` (true, the default) or `NORMAL`.
    pub sqlite_synchronous_full: bool,
    /// Pool size; `None` for the engine's default (SQLite 4: its hot reads bypass the pool and it
    /// has one writer; PostgreSQL 16).
    pub max_connections: Option<u32>,
    /// Most writes one group commit may carry.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sqlite_synchronous_full: true,
            max_connections: None,
            max_batch: 256,
        }
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which engine this is, for logs and the benchmark ("sqlite", "postgres").
    fn engine(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Closes the connection pool; later calls fail as `Unavailable`.
    async fn close(&self);

    async fn add_user(&self, user: &NewUser, now: Timestamp) -> Result<(), StoreError>;
    async fn add_group(&self, name: &str, sid: &str) -> Result<(), StoreError>;
    async fn user_by_uuid(&self, id: Guid) -> Result<Option<Principal>, StoreError>;
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError>;
    async fn count_users(&self) -> Result<i64, StoreError>;

    async fn add_token(
        &self,
        hash: &str,
        user: Guid,
        now: Timestamp,
        expires: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// The principal a token hash belongs to and the token's expiry (`Timestamp::UNSET` for none),
    /// if the token exists and has not expired at `now`.
    async fn principal_by_token(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Principal, Timestamp)>, StoreError>;

    /// Inserts or replaces a template (by uuid).
    async fn put_template(&self, t: &ProfileTemplate, now: Timestamp) -> Result<(), StoreError>;
    async fn templates(&self) -> Result<Vec<ProfileTemplate>, StoreError>;
    async fn template(&self, id: Guid) -> Result<Option<ProfileTemplate>, StoreError>;

    async fn request(&self, id: Guid) -> Result<Option<Request>, StoreError>;
    async fn list_requests(&self, q: &RequestQuery) -> Result<Vec<Request>, StoreError>;
    async fn approvals(&self, id: Guid) -> Result<Vec<Approval>, StoreError>;
    async fn history(&self, id: Guid) -> Result<Vec<AuditEvent>, StoreError>;

    async fn ca(&self) -> Result<Option<StoredCa>, StoreError>;
    /// Stores `ca` unless a CA exists; returns the stored one (another node may have won the race).
    async fn init_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<StoredCa, StoreError>;
    /// Replaces the CA (`opencm ca import`).
    async fn replace_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<(), StoreError>;
    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError>;
    async fn profile(&self, id: Guid) -> Result<Option<ProfileRecord>, StoreError>;
    /// Profiles assigned to `user` (all when `None`), optionally of one status, by uuid.
    async fn profiles(
        &self,
        user: Option<Guid>,
        status: Option<ProfileStatus>,
    ) -> Result<Vec<ProfileRecord>, StoreError>;
    async fn profiles_of_request(&self, request: Guid) -> Result<Vec<ProfileRecord>, StoreError>;
    async fn certificates_of_profile(
        &self,
        profile: Guid,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    async fn certificates_of_user(&self, user: Guid) -> Result<Vec<CertificateRecord>, StoreError>;

    /// Applies one write through the group-commit writer.
    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError>;
}

/// Opens the store a URL names: `sqlite://path` (created if missing) or `postgres://...`.
pub async fn connect(url: &str, opts: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, opts).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(postgres::PgStore::connect(url, opts).await?))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL '{}': use sqlite://FILE or postgres://...",
            url.split('@').next_back().unwrap_or("")
        )))
    }
}

#[cfg(feature = "testing")]
pub mod testing;
