//! opencm's persistence: the schema and its migrations, and the storage ports of `opencm-app`
//! implemented once (`ports`, over the statements of `sql/`) for two engines: SQLite (rusqlite: a
//! writer thread with group commit, read-only readers) and PostgreSQL (sqlx). The store keeps and
//! finds; it never decides policy.
//!
//! Writes are optimistic: each carries the versions it was decided on (the request's, and those
//! of the profiles it touches), and a write whose versions no longer match reports
//! `WriteOutcome::Conflict` so the use case decides again from a fresh read. Request writes are
//! group-committed: the writes waiting at one moment share one transaction and one fsync.

mod batch;
mod engine;
mod error;
mod ports;
pub mod postgres;
mod rows;
mod sql;
pub mod sqlite;

pub use ports::Store;

pub use opencm_app::ports::{
    CertificateRecord, Effect, NewUser, ProfileRecord, RequestQuery, RevokedCertificate, Storage,
    StoreError, StoredCa, Write, WriteOutcome,
};

use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// SQLite `synchronous=FULL` (true, the default) or `NORMAL`.
    pub sqlite_synchronous_full: bool,
    /// PostgreSQL pool size; `None` for 16. (SQLite has one writer and a few readers.)
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

/// Opens the store a URL names: `sqlite://path` (created if missing) or `postgres://...`.
pub async fn connect(url: &str, opts: StoreOptions) -> Result<Arc<dyn Storage>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, opts)?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, opts).await?))
    } else {
        // Not echoed: a connection string that is not a URL may hold its password anywhere.
        Err(StoreError::Config(
            "unsupported database URL: use sqlite://FILE or postgres://user@host/database".into(),
        ))
    }
}

#[cfg(feature = "testing")]
pub mod testing;
