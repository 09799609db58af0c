//! Group commit for PostgreSQL: one task per store takes every write waiting at that moment (up to `max_batch`)
//! and hands them to the engine as one batch, which runs them in a single transaction. Under load
//! the batch grows while the previous commit's fsync is in flight, so throughput rises with
//! concurrency instead of being capped at one fsync per transition.

use opencm_app::ports::{StoreError, Write, WriteOutcome};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub(crate) type BatchResult = Vec<Result<WriteOutcome, StoreError>>;
pub(crate) type BatchFn =
    Arc<dyn Fn(Vec<Write>) -> Pin<Box<dyn Future<Output = BatchResult> + Send>> + Send + Sync>;

type Job = (Write, oneshot::Sender<Result<WriteOutcome, StoreError>>);

#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Job>,
}

impl Batcher {
    pub fn spawn(max_batch: usize, run: BatchFn) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(max_batch.max(1) * 16);
        tokio::spawn(async move {
            let mut jobs: Vec<Job> = Vec::with_capacity(max_batch);
            while rx.recv_many(&mut jobs, max_batch.max(1)).await > 0 {
                let (writes, replies): (Vec<Write>, Vec<_>) = jobs.drain(..).unzip();
                let n = writes.len();
                let started = std::time::Instant::now();
                let results = run(writes).await;
                opencm_app::metrics::observe_commit(n, started.elapsed().as_secs_f64());
                debug_assert_eq!(results.len(), n);
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        });
        Batcher { tx }
    }

    pub async fn submit(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((w, tx))
            .await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?
    }
}

/// Fails every write of a batch with copies of one error.
pub(crate) fn fail_all(n: usize, e: &StoreError) -> BatchResult {
    (0..n)
        .map(|_| {
            Err(match e {
                StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
                other => StoreError::Database(other.to_string()),
            })
        })
        .collect()
}

/// A row whose version a write decided on: the write stands only if the row still has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Guarded {
    Profile(opencm_domain::ProfileId),
    Smartcard(opencm_domain::SmartcardId),
}

impl Guarded {
    pub fn id(self) -> opencm_domain::Guid {
        match self {
            Guarded::Profile(g) => g.guid(),
            Guarded::Smartcard(g) => g.guid(),
        }
    }
    pub fn table(self) -> &'static str {
        match self {
            Guarded::Profile(_) => "profiles",
            Guarded::Smartcard(_) => "smartcards",
        }
    }
    /// The statement reading the row's version.
    pub fn version_sql(self) -> &'static str {
        match self {
            Guarded::Profile(_) => crate::sql::profiles::VERSION,
            Guarded::Smartcard(_) => crate::sql::smartcards::VERSION,
        }
    }
}

/// The rows an update decided on, with the versions it read.
pub(crate) fn guarded_rows(w: &Write) -> Vec<(Guarded, i64)> {
    use opencm_app::ports::Effect;
    match w {
        Write::Update { effects, .. } => effects
            .iter()
            .filter_map(|e| match e {
                Effect::Profile(c) => Some((Guarded::Profile(c.profile), c.version)),
                Effect::Smartcard(c) => Some((Guarded::Smartcard(c.card), c.version)),
                _ => None,
            })
            .collect(),
        Write::Create { .. } => Vec::new(),
    }
}
