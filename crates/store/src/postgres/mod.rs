//! PostgreSQL, for many stateless opencm nodes sharing one database, through sqlx (async, no
//! worker threads: a PostgreSQL round trip is network IO, which is what tokio is for).
//! Concurrency control is the same optimistic version check as on SQLite: under READ COMMITTED,
//! an `UPDATE ... WHERE version = $v` that races another writer waits for it and then matches no
//! row, so exactly one writer wins across processes; profiles a write decided on are read
//! `FOR UPDATE` and their versions compared. Writes go through the group-commit `Batcher`: the
//! writes waiting at one moment share one transaction, with a fixed number of statements per
//! batch whatever its size (`batch`).

mod batch;

use crate::batch::Batcher;
use crate::engine::Engine;
pub(crate) use crate::error::db_err;
use crate::error::migrate_err;
use crate::ports::Store;
use crate::sql::{Arg, Columns, Decode, Rows, Step};
use crate::StoreOptions;
use opencm_app::ports::{StoreError, Write, WriteOutcome};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
pub type PgStore = Store<Pg>;

pub struct Pg {
    pool: sqlx::PgPool,
    batcher: Batcher,
}

impl Store<Pg> {
    pub async fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|_| StoreError::Config("bad PostgreSQL URL".into()))?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.unwrap_or(16).max(2))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
            .await
            .map_err(db_err)?;
        let batcher = Batcher::spawn(opts.max_batch, batch::batch_fn(pool.clone()));
        Ok(Store(Pg { pool, batcher }))
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.0.pool
    }
}

/// `q` with `args` bound in order.
pub(crate) fn bind(
    mut q: sqlx::query::Query<'_, Postgres, PgArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'_, Postgres, PgArguments> {
    for a in args {
        q = match a {
            Arg::Text(v) => q.bind(v),
            Arg::Int(v) => q.bind(v),
            Arg::OptText(v) => q.bind(v),
            Arg::OptInt(v) => q.bind(v),
        };
    }
    q
}

impl Columns for PgRow {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.try_get(name).map_err(db_err)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.try_get(name).map_err(db_err)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.try_get(name).map_err(db_err)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.try_get(name).map_err(db_err)
    }
}

#[async_trait::async_trait]
impl Engine for Pg {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn query<T: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<Arg>,
        _rows: Rows,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        let rows = bind(sqlx::query(sql), args)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(|r| decode(r)).collect()
    }

    async fn transact(&self, steps: Vec<Step>) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let mut changed = Vec::with_capacity(steps.len());
        for step in steps {
            let n = bind(sqlx::query(step.sql), step.args)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            changed.push(n);
            if step.stop_unless_changed && n == 0 {
                break;
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(changed)
    }

    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        self.batcher.submit(w).await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(migrate_err)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(crate::sql::PING)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn backup(&self, _dest: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::Config(
            "opencm backup copies SQLite databases; back up PostgreSQL with pg_dump (or your provider's snapshots), and keep the KEK apart (docs/OPERATIONS.md)".into(),
        ))
    }
}
