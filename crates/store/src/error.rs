use std::fmt;

/// Store failures, classified for the API's status mapping: `Unavailable` is 503, `Duplicate` 409,
/// the rest 500. Messages never carry credentials (connection URLs are not echoed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
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
    pub(crate) fn corrupt(what: impl fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error as E;
        match &e {
            E::PoolTimedOut | E::PoolClosed | E::Io(_) | E::Tls(_) | E::WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            E::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(db.message().to_string())
            }
            // SQLite "database is locked" / "busy" after busy_timeout: another process holds it.
            E::Database(db)
                if matches!(db.code().as_deref(), Some("5") | Some("6") | Some("517")) =>
            {
                StoreError::Unavailable(db.message().to_string())
            }
            // PostgreSQL: connection exceptions, shutdown, too many connections.
            E::Database(db)
                if db.code().is_some_and(|c| {
                    c.starts_with("08") || c.starts_with("57P") || c == "53300"
                }) =>
            {
                StoreError::Unavailable(db.message().to_string())
            }
            E::Decode(_) | E::ColumnDecode { .. } | E::ColumnNotFound(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {e}"))
    }
}
