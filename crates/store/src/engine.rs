//! What the store needs from a database engine, and no more: read rows, run a few statements in
//! one transaction, group-commit request writes, and look after itself (migrations, a ping, a
//! backup, closing). `Store<E>` (`ports.rs`) implements every port of `opencm-app` once on top of
//! it; `sqlite/` and `postgres/` implement it each their own way.

use crate::sql::{Arg, Decode, Rows, Step};
use async_trait::async_trait;
use opencm_app::ports::{StoreError, Write, WriteOutcome};

#[async_trait]
pub trait Engine: Send + Sync + 'static {
    fn name(&self) -> &'static str;

    /// Every row of `sql` (bound to `args`), decoded.
    async fn query<T: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<Arg>,
        rows: Rows,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError>;

    /// Runs `steps` in one transaction: the rows each step that ran changed (see `Step`).
    async fn transact(&self, steps: Vec<Step>) -> Result<Vec<u64>, StoreError>;

    /// A request write, group-committed with the writes waiting at the same moment.
    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError>;

    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);
    async fn backup(&self, dest: &std::path::Path) -> Result<(), StoreError>;
}
