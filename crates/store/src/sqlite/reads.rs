//! SQLite reads: a small pool of read-only connections on the same file, each with its prepared
//! statements cached. In WAL mode a reader never waits for the writer and sees the last committed
//! state. A point read by primary key from SQLite's page cache takes microseconds, so it runs
//! inline on the calling thread (a thread handoff would cost more than the query); reads that
//! return many rows run on the blocking pool so they cannot stall the async workers.

use crate::error::sqlite_err;
use opencm_app::ports::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const IDLE_MAX: usize = 8;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
}

impl Readers {
    pub fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Readers {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        })
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// Runs `f` on a reader connection, on this thread.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let pooled = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(sqlite_err)?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(sqlite_err)?;
                super::tune(&c)?;
                c
            }
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_MAX && !self.closed.load(Ordering::SeqCst) {
                idle.push(conn);
            }
        }
        result
    }

    /// Runs `f` on a reader connection on the blocking pool (for reads of many rows).
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.with(f))
            .await
            .map_err(|e| StoreError::Database(format!("read task failed: {e}")))?
    }
}
