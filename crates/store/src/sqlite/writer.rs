//! The SQLite writer: one dedicated OS thread owns the only read-write connection, with its
//! prepared statements cached. Request writes queue up while the previous commit's fsync is in
//! flight and are applied together — group commit: one `BEGIN IMMEDIATE … COMMIT`, one fsync,
//! for every write waiting at that moment. Administrative writes (users, tokens, templates, the
//! CA) run on the same thread, one transaction each.
//!
//! Why a thread and not async: SQLite is a C library doing blocking file IO. A thread that owns
//! the connection needs no pool and no locking, keeps its statement cache warm, and costs one
//! channel send and one wake per *batch* — where going through sqlx cost a thread handoff per
//! statement.

use super::batch;
use crate::error::sqlite_err;
use opencm_app::ports::{StoreError, Write, WriteOutcome};
use rusqlite::Connection;
use std::sync::mpsc;
use tokio::sync::oneshot;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

// Writes are the hot path and travel by value: boxing them would cost an allocation each, to save
// a memcpy the channel does anyway.
#[allow(clippy::large_enum_variant)]
enum Job {
    Write(Write, Reply<WriteOutcome>),
    Exec(Box<dyn FnOnce(&mut Connection) + Send>),
}

pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it stops when the `Writer` is dropped and the queue
    /// is drained.
    pub fn spawn(conn: Connection, max_batch: usize) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("opencm-sqlite-writer".into())
            .spawn(move || run(conn, rx, max_batch.max(1)))?;
        Ok(Writer { tx })
    }

    pub async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Write(w, reply)).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the writer's connection, in a transaction of its own, between batches.
    pub async fn exec<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = Job::Exec(Box::new(move |conn: &mut Connection| {
            let result = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(sqlite_err)
                .and_then(|t| {
                    let out = f(&t)?;
                    t.commit().map_err(sqlite_err)?;
                    Ok(out)
                });
            let _ = reply.send(result);
        }));
        self.tx.send(job).map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the writer has stopped".into())
}

fn run(mut conn: Connection, rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut writes: Vec<(Write, Reply<WriteOutcome>)> = Vec::with_capacity(max_batch);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Write(w, reply) => writes.push((w, reply)),
                Job::Exec(f) => {
                    // Keep order: the writes queued before it commit first.
                    flush(&mut conn, &mut writes);
                    f(&mut conn);
                }
            }
            if writes.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        flush(&mut conn, &mut writes);
    }
}

fn flush(conn: &mut Connection, writes: &mut Vec<(Write, Reply<WriteOutcome>)>) {
    if writes.is_empty() {
        return;
    }
    let (batch, replies): (Vec<Write>, Vec<_>) = writes.drain(..).unzip();
    let started = std::time::Instant::now();
    let results = batch::run(conn, &batch);
    opencm_app::metrics::observe_commit(batch.len(), started.elapsed().as_secs_f64());
    for (reply, result) in replies.into_iter().zip(results) {
        let _ = reply.send(result);
    }
}
