//! PostgreSQL, for many stateless opencm nodes sharing one database. Concurrency control is the same
//! optimistic version check as on SQLite: under READ COMMITTED, an `UPDATE ... WHERE version = $v`
//! that races another writer waits for it and then matches no row, so exactly one writer wins
//! across processes.

use crate::batch::Batcher;
use crate::StoreOptions;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: sqlx::PgPool,
    batcher: Batcher,
}

impl PgStore {
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("bad PostgreSQL URL".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await?;
        let batcher = Batcher::spawn(opts.max_batch, batch_fn(pool.clone()));
        Ok(PgStore { pool, batcher })
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

crate::backend::impl_store!(PgStore, sqlx::Postgres, "postgres", "BEGIN", MIGRATOR);
