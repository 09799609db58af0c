//! SQLite, the embedded default: WAL journal, `synchronous=FULL` unless configured otherwise (a
//! committed transition survives power loss), a busy timeout for other processes on the same file,
//! and writes serialised through this process's group-commit writer (`BEGIN IMMEDIATE`).

use crate::batch::Batcher;
use crate::StoreOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: sqlx::SqlitePool,
    batcher: Batcher,
    readers: crate::sqlite_reads::Readers,
}

impl SqliteStore {
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("bad SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if opts.sqlite_synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.unwrap_or(4).max(2))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect.clone())
            .await?;
        let batcher = Batcher::spawn(opts.max_batch, batch_fn(pool.clone()));
        let readers = crate::sqlite_reads::Readers::new(connect.get_filename().to_path_buf());
        Ok(SqliteStore {
            pool,
            batcher,
            readers,
        })
    }

    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    fn closing(&self) {
        self.readers.close();
    }

    async fn fetch_request(
        &self,
        id: opencm_domain::Guid,
    ) -> Result<Option<opencm_domain::request::Request>, crate::StoreError> {
        self.readers.request(id)
    }

    async fn fetch_template(
        &self,
        id: opencm_domain::Guid,
    ) -> Result<Option<opencm_domain::policy::ProfileTemplate>, crate::StoreError> {
        self.readers.template(id)
    }
}

crate::backend::impl_store!(
    SqliteStore,
    sqlx::Sqlite,
    "sqlite",
    "BEGIN IMMEDIATE",
    "",
    MIGRATOR
);
