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
            .max_connections(opts.max_connections.unwrap_or(16).max(2))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await?;
        let batcher = Batcher::spawn(opts.max_batch, batch_fn(pool.clone()));
        Ok(PgStore { pool, batcher })
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    fn closing(&self) {}

    async fn fetch_request(
        &self,
        id: opencm_domain::Guid,
    ) -> Result<Option<opencm_domain::request::Request>, crate::StoreError> {
        let sql = format!(
            "SELECT {} FROM requests WHERE uuid = $1",
            crate::rows::REQUEST_COLUMNS
        );
        let row: Option<crate::rows::RequestRow> = sqlx::query_as(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(crate::rows::RequestRow::into_domain).transpose()
    }

    async fn fetch_template(
        &self,
        id: opencm_domain::Guid,
    ) -> Result<Option<opencm_domain::policy::ProfileTemplate>, crate::StoreError> {
        let body: Option<String> =
            sqlx::query_scalar("SELECT body FROM profile_templates WHERE uuid = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        body.map(|b| serde_json::from_str(&b).map_err(crate::StoreError::corrupt))
            .transpose()
    }
}

crate::backend::impl_store!(
    PgStore,
    sqlx::Postgres,
    "postgres",
    "BEGIN",
    " FOR UPDATE",
    MIGRATOR
);
