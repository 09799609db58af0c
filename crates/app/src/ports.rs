//! The ports the use cases reach the outside through, one per aggregate, and the records they
//! exchange. The store crate implements the storage ports for SQLite and PostgreSQL; the binary
//! wires them. Nothing here knows SQL or HTTP.
//!
//! Reads go through the aggregate's port. Every change goes through `Transactions::write`: the
//! request's change, its audit event and its effects on profiles and certificates in one
//! transaction, refused as a whole (`WriteOutcome::Conflict`) when any object it decided on
//! changed since it was read. Notifications join that transaction as outbox effects.

use async_trait::async_trait;
use opencm_domain::issued::RevocationReason;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::template::ProfileTemplate;
use opencm_domain::{
    Guid, Principal, ProfileId, RequestId, RequestStatus, SmartcardId, TemplateId, Timestamp,
    UserId,
};

// The records the ports exchange are the domain's (crates/domain): the decisions read and write them.
pub use opencm_domain::decided::Effect;
pub use opencm_domain::issued::CertificateRecord;
pub use opencm_domain::profile::ProfileRecord;
pub use opencm_domain::smartcard::SmartcardRecord;

/// Storage failures, classified for callers: `Unavailable` (try again later), `Duplicate`, the
/// rest internal. Messages never carry credentials (connection URLs are not echoed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The user directory (LDAP / Active Directory) cannot be reached: a 503, never "no such
    /// user".
    #[error("{0}")]
    DirectoryUnavailable(String),
    #[error("{0} already exists")]
    Duplicate(String),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

/// A user as `opencm user add` creates one.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub uuid: UserId,
    pub login: String,
    pub display_name: String,
    pub sid: String,
    pub groups: Vec<String>,
    /// Where the user's e-mails go, if anywhere.
    pub email: Option<String>,
    /// The language of the user's e-mails (BCP 47); the configured default when `None`.
    pub language: Option<String>,
}

/// What `GET /requests` asks the store for. `reader_sids` pre-filters to requests whose descriptor
/// grants Read to one of those SIDs (`None`: no pre-filter, for administrators; ignored when
/// `target` is set, since the target index is narrower). The pre-filter may let through rows the
/// caller cannot read (it ignores deny ACEs), never the reverse: the use case runs the exact
/// access check on every row it returns.
#[derive(Clone, Debug, Default)]
pub struct RequestQuery {
    pub reader_sids: Option<Vec<String>>,
    pub target: Option<UserId>,
    pub status: Option<RequestStatus>,
    pub after: Option<RequestId>,
    pub limit: u32,
    /// Newest first (ids descending; `after` then means "older than"), as the portal lists.
    pub newest_first: bool,
}

/// What `GET /profiles` asks the store for: a user's profiles (all when `user` is `None`),
/// optionally of one status, a page at a time by uuid.
#[derive(Clone, Debug)]
pub struct ProfileQuery {
    pub user: Option<UserId>,
    pub status: Option<ProfileStatus>,
    pub after: Option<ProfileId>,
    pub limit: u32,
}

/// What the card inventory searches by (each criterion optional; all given must match).
#[derive(Clone, Debug, Default)]
pub struct CardSearch {
    pub card_id: Option<Guid>,
    /// Lower-case hex without spaces, as cards are stored.
    pub atr: Option<String>,
    pub status: Option<opencm_domain::smartcard::SmartcardStatus>,
    pub user: Option<UserId>,
    pub limit: u32,
}

#[async_trait]
pub trait SmartcardStore: Send + Sync + 'static {
    async fn smartcard(&self, id: SmartcardId) -> Result<Option<SmartcardRecord>, StoreError>;
    /// Every card ever bound with this card id, oldest first (at most one is not Retired).
    async fn smartcards_by_card_id(
        &self,
        card_id: Guid,
    ) -> Result<Vec<SmartcardRecord>, StoreError>;
    /// The cards assigned to `user`, or every card when `None`, by uuid.
    async fn smartcards_of(&self, user: Option<UserId>)
        -> Result<Vec<SmartcardRecord>, StoreError>;
    /// The card inventory: cards matching every criterion given, newest first, at most
    /// `limit`.
    async fn search_smartcards(&self, q: &CardSearch) -> Result<Vec<SmartcardRecord>, StoreError>;
    /// The profiles that live on a card, oldest first.
    async fn profiles_of_smartcard(
        &self,
        card: SmartcardId,
    ) -> Result<Vec<ProfileRecord>, StoreError>;
    /// The PIN the server proposed for the card, sealed, if it keeps one.
    async fn sealed_pin(&self, card: SmartcardId) -> Result<Option<String>, StoreError>;
    /// A card master admin-key secret, sealed: `version`, or the newest when `None`.
    async fn card_master(&self, version: Option<i64>) -> Result<Option<(i64, String)>, StoreError>;
    /// Adds master `version` unless it exists; answers whether this call added it.
    async fn add_card_master(
        &self,
        version: i64,
        sealed: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
}

/// A change to requests, applied atomically with its audit event.
#[derive(Clone, Debug)]
pub enum Write {
    Create {
        request: Request,
        event: AuditEvent,
        /// The notifications of its creation (the transactional outbox).
        outbox: Vec<opencm_domain::notification::OutboxRow>,
        /// Its one-time password, when it is approved at creation under a policy with one.
        secret: Option<opencm_domain::request::secrets::SecretChange>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    /// Something the write decided on changed since it was read; nothing was written.
    Conflict,
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

/// What the certificates table says of one serial number (the OCSP responder's question).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialStatus {
    /// No certificate of this CA has that serial.
    Unknown,
    Valid,
    /// Revoked or on hold, as the CRL lists it.
    Revoked(RevokedCertificate),
}

/// A template with the revision its row had when read (every import increments it).
#[derive(Clone, Debug)]
pub struct StoredTemplate {
    pub revision: i64,
    pub template: ProfileTemplate,
}

/// The database itself: which engine, whether it answers, its schema.
#[async_trait]
pub trait Database: Send + Sync + 'static {
    /// "sqlite" or "postgres", for logs and `/readyz`.
    fn engine(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// Finishes pending writes and closes; later calls fail as `Unavailable`.
    async fn close(&self);
    /// Writes a consistent copy of the database, as of one moment, to a new file `dest`, while
    /// the database stays in use (SQLite); engines with their own tools (PostgreSQL: pg_dump)
    /// refuse with `Config` naming them.
    async fn backup(&self, dest: &std::path::Path) -> Result<(), StoreError>;
    /// What `/metrics` reads from the database at each scrape (the whole cluster's values).
    async fn gauges(&self, now: Timestamp) -> Result<Gauges, StoreError>;
}

/// Counts `/metrics` reports as gauges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    pub smartcards_by_status: Vec<(opencm_domain::smartcard::SmartcardStatus, i64)>,
    /// Valid certificates whose NotAfter is within 7 (30) days of now.
    pub expiring_7_days: i64,
    pub expiring_30_days: i64,
    /// Certificates revoked or on hold now, by their CRL reason.
    pub revoked_by_reason: Vec<(opencm_domain::issued::RevocationReason, i64)>,
}

/// The one way anything changes: a request with its audit event and effects, in one
/// transaction, guarded by the versions the decision read.
#[async_trait]
pub trait Transactions: Send + Sync + 'static {
    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError>;
}

#[async_trait]
pub trait RequestStore: Send + Sync + 'static {
    async fn request(&self, id: RequestId) -> Result<Option<Request>, StoreError>;
    /// The request's one-time password, if it has one.
    async fn secret(
        &self,
        id: RequestId,
    ) -> Result<Option<opencm_domain::request::secrets::SecretRecord>, StoreError>;
    async fn list_requests(&self, q: &RequestQuery) -> Result<Vec<Request>, StoreError>;
    async fn approvals(&self, id: RequestId) -> Result<Vec<Approval>, StoreError>;
    /// The requests an approver has decided, with the decision, newest request first (the
    /// approval queue).
    async fn decided_by(
        &self,
        approver: UserId,
        limit: u32,
    ) -> Result<Vec<(Request, Approval)>, StoreError>;
}

#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    /// A request's events, oldest first.
    async fn history(&self, request: RequestId) -> Result<Vec<AuditEvent>, StoreError>;
    /// Events of every request, newest first, with their ids (the keyset of the next page).
    async fn search(&self, q: &AuditQuery) -> Result<Vec<(i64, AuditEvent)>, StoreError>;
}

/// An audit search: each filter that is set must match.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub actor: Option<UserId>,
    pub request: Option<RequestId>,
    pub action: Option<opencm_domain::decided::AuditAction>,
    /// From this instant (inclusive) until that one (exclusive).
    pub from: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Events older than this id (the previous page's last).
    pub before: Option<i64>,
    pub limit: u32,
}

/// The portal's sign-in: local users' passwords and browser sessions.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Sets a local user's password (a PHC string) and ends the user's sessions, with its
    /// audit event, in one transaction.
    async fn set_password(
        &self,
        user: UserId,
        phc: &str,
        event: &AdminEvent,
    ) -> Result<(), StoreError>;
    /// The user and password hash of an enabled local user with a password.
    async fn password_of(&self, login: &str) -> Result<Option<(UserId, String)>, StoreError>;
    /// Stores a new session; sessions past their expiry are removed in the same transaction.
    async fn create_session(
        &self,
        s: &opencm_domain::session::SessionRecord,
    ) -> Result<(), StoreError>;
    async fn session(
        &self,
        hash: &str,
    ) -> Result<Option<opencm_domain::session::SessionRecord>, StoreError>;
    async fn touch_session(&self, hash: &str, at: Timestamp) -> Result<(), StoreError>;
    async fn end_session(&self, hash: &str) -> Result<(), StoreError>;
}

#[async_trait]
pub trait ProfileStore: Send + Sync + 'static {
    async fn profile(&self, id: ProfileId) -> Result<Option<ProfileRecord>, StoreError>;
    /// A page of profiles, by uuid.
    async fn profiles(&self, q: &ProfileQuery) -> Result<Vec<ProfileRecord>, StoreError>;
    async fn profiles_of_request(
        &self,
        request: RequestId,
    ) -> Result<Vec<ProfileRecord>, StoreError>;
}

#[async_trait]
pub trait CertificateStore: Send + Sync + 'static {
    async fn certificates_of_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    /// Whether the profile holds any certificate (cheaper than reading them).
    async fn has_certificates(&self, profile: ProfileId) -> Result<bool, StoreError>;
    async fn certificates_of_user(
        &self,
        user: UserId,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError>;
    /// One certificate's status by its serial (upper-case hex): a point read.
    async fn serial_status(&self, serial_hex: &str) -> Result<SerialStatus, StoreError>;
    /// Valid certificates whose NotAfter is after `now` and at most `until`, not yet warned at a
    /// threshold of `days` or fewer, soonest first, at most `limit`.
    async fn expiring_certificates(
        &self,
        now: Timestamp,
        until: Timestamp,
        days: i64,
        limit: u32,
    ) -> Result<Vec<CertificateRecord>, StoreError>;
}

#[async_trait]
pub trait TemplateStore: Send + Sync + 'static {
    /// Inserts or replaces templates (by uuid), incrementing their revisions: all of them in one
    /// transaction, or none.
    async fn put_templates(&self, ts: &[ProfileTemplate], now: Timestamp)
        -> Result<(), StoreError>;
    /// Every template that can be read; one stored by an earlier version that this one refuses
    /// is left out (and logged, naming it) rather than hiding all the others.
    async fn templates(&self) -> Result<Vec<ProfileTemplate>, StoreError>;
    /// The template's current revision, a cheap read that lets a cache stay exact.
    async fn template_revision(&self, id: TemplateId) -> Result<Option<i64>, StoreError>;
    async fn template(&self, id: TemplateId) -> Result<Option<StoredTemplate>, StoreError>;
}

/// Local users, groups and opencm API tokens.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    async fn add_user(&self, user: &NewUser, now: Timestamp) -> Result<(), StoreError>;
    async fn add_group(&self, name: &str, sid: &str) -> Result<(), StoreError>;
    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError>;
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError>;
    async fn count_users(&self) -> Result<i64, StoreError>;
    /// Records a Kerberos authenticator as used until `expires`, and answers whether this is its
    /// first use anywhere in the cluster (false: a replay). Entries expired at `now` are removed
    /// in the same transaction.
    async fn first_use(
        &self,
        authenticator: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// Whether the local user is enabled; `None` when no local user has this uuid.
    async fn local_user_enabled(&self, id: UserId) -> Result<Option<bool>, StoreError>;
    /// The login of the local user whose own SID `sid` is, if any.
    async fn user_with_sid(&self, sid: &str) -> Result<Option<String>, StoreError>;
    /// The enabled local users with SID `sid` or in group `sid`.
    async fn members_of(&self, sid: &str) -> Result<Vec<Principal>, StoreError>;
    /// Whether the local user is disabled (`opencm user disable`); false for an unknown uuid.
    async fn user_disabled(&self, id: UserId) -> Result<bool, StoreError>;
    async fn add_token(
        &self,
        hash: &str,
        user: UserId,
        now: Timestamp,
        expires: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// The principal a token hash belongs to and the token's expiry, if the token exists and has
    /// not expired at `now`.
    async fn principal_by_token(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Principal, Option<Timestamp>)>, StoreError>;
    /// A number that moves whenever a token is revoked, a user disabled or enabled, or a group
    /// membership changes: a cached principal is valid while it stays the same.
    async fn identity_epoch(&self) -> Result<i64, StoreError>;
    /// Every token, revoked and expired ones included, oldest first.
    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Applies `change` with its audit event and moves the epoch, in one transaction; `false`
    /// (and nothing written) when it would change nothing.
    async fn change_identity(
        &self,
        change: &IdentityChange,
        event: &AdminEvent,
    ) -> Result<bool, StoreError>;
}

// The records of administrative changes are the domain's (crates/domain/src/offboarding.rs).
pub use opencm_domain::offboarding::{AdminEvent, IdentityChange, TokenRecord};

#[async_trait]
pub trait CaStore: Send + Sync + 'static {
    async fn ca(&self) -> Result<Option<StoredCa>, StoreError>;
    /// Stores `ca` unless a CA exists; returns the stored one (another node may have won the race).
    async fn init_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<StoredCa, StoreError>;
    /// Replaces the CA (`opencm ca import`).
    async fn replace_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<(), StoreError>;
}

/// One try of an outbox row, as the delivery log keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxAttempt {
    pub at: Timestamp,
    /// The node that tried.
    pub node: String,
    /// `delivered`, `failed`, `dead`, or `sent` for one recipient of an e-mail row.
    pub outcome: String,
    /// What the peer said (an SMTP reply, an HTTP status), or why it failed.
    pub detail: String,
}

/// How a try of an outbox row ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finished {
    Delivered {
        detail: String,
    },
    /// Tried again at `next_at`.
    Retry {
        next_at: Timestamp,
        error: String,
    },
    /// Given up; `follow` are the `outbox.dead_letter` notices, written in the same transaction.
    Dead {
        error: String,
        follow: Vec<opencm_domain::notification::OutboxRow>,
    },
}

/// The transactional outbox, beside the requests whose changes write into it.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Leases up to `limit` rows due at `now` to `node` until `until`, and answers them.
    async fn claim_outbox(
        &self,
        node: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<opencm_domain::notification::OutboxRow>, StoreError>;
    /// Records a try of row `id` in its log (its per-recipient lines first: `sent` or
    /// `refused`, and the address), and its outcome when `node` still holds its lease: whether
    /// it did.
    async fn finish_outbox(
        &self,
        node: &str,
        id: Guid,
        at: Timestamp,
        lines: Vec<(String, String)>,
        outcome: Finished,
    ) -> Result<bool, StoreError>;
    /// Rows newest first, in one state or all, older than `before` (created, id) when paging.
    async fn outbox(
        &self,
        state: Option<opencm_domain::notification::OutboxState>,
        before: Option<(Timestamp, Guid)>,
        limit: u32,
    ) -> Result<Vec<opencm_domain::notification::OutboxRow>, StoreError>;
    async fn outbox_row(
        &self,
        id: Guid,
    ) -> Result<Option<opencm_domain::notification::OutboxRow>, StoreError>;
    async fn outbox_attempts(&self, id: Guid) -> Result<Vec<OutboxAttempt>, StoreError>;
    /// A dead row due again at `now`, its log saying who replayed it; whether it was dead.
    async fn replay_outbox(&self, id: Guid, now: Timestamp, by: &str) -> Result<bool, StoreError>;
    /// Rows of one event written outside a request's change (an expiry warning, a test), in one
    /// transaction with the expiry warning they give (serial, days) when they give one: a
    /// warning already given writes nothing. Answers whether the rows were written.
    async fn insert_outbox(
        &self,
        warning: Option<(String, i64)>,
        rows: Vec<opencm_domain::notification::OutboxRow>,
        now: Timestamp,
    ) -> Result<bool, StoreError>;
    /// How many rows are in each state.
    async fn outbox_counts(
        &self,
    ) -> Result<Vec<(opencm_domain::notification::OutboxState, i64)>, StoreError>;
}

/// Everything a storage engine provides; implemented by the SQLite and PostgreSQL stores.
pub trait Storage:
    Database
    + Transactions
    + RequestStore
    + AuditLog
    + ProfileStore
    + CertificateStore
    + TemplateStore
    + IdentityStore
    + SmartcardStore
    + CaStore
    + SessionStore
    + OutboxStore
{
}

impl<T> Storage for T where
    T: Database
        + Transactions
        + RequestStore
        + AuditLog
        + ProfileStore
        + CertificateStore
        + TemplateStore
        + IdentityStore
        + SmartcardStore
        + CaStore
        + SessionStore
        + OutboxStore
{
}

/// Where users and their groups come from: opencm's own table today, LDAP/Active Directory next.
#[async_trait]
pub trait Directory: Send + Sync + 'static {
    async fn user_by_uuid(&self, id: UserId) -> Result<Option<Principal>, StoreError>;
    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError>;
    /// The enabled users `sid` names: the user with that SID, or the members of the group with
    /// it (nested groups included). For notifications; empty where the directory cannot say.
    async fn members_of(&self, sid: &opencm_domain::Sid) -> Result<Vec<Principal>, StoreError> {
        let _ = sid;
        Ok(Vec::new())
    }
    /// The user's manager (the directory's `manager`), for one-time passwords; `None` where the
    /// directory names none.
    async fn manager_of(&self, user: &Principal) -> Result<Option<Principal>, StoreError> {
        let _ = user;
        Ok(None)
    }
}

/// The clock is a port so tests can pin time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp::from_micros(d.as_micros() as i64)
    }
}

/// Seals private keys kept for Recover: the CA's (`opencm_ca::KeyArchive`, over the KEK).
pub use opencm_ca::KeyArchive;
