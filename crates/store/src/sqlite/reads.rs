//! SQLite reads: a small pool of read-only connections on the same file, each with its prepared
//! statements cached. In WAL mode a reader never waits for the writer and sees the last committed
//! state. A point read by primary key from SQLite's page cache takes microseconds, so it runs
//! inline on the calling thread (a thread handoff would cost more than the query); reads that
//! return many rows run on the blocking pool so they cannot stall the async workers.
//!
//! **One read transaction per stretch of reads.** Within `snapshot_scope` (the server wraps each
//! HTTP request in one), the inline reads of a task share one connection and one read
//! transaction, until the task writes: a write ends it, so the next read sees the write and
//! everything committed before it. Starting a read transaction is what costs on a busy server:
//! once any commit happened since the connection's previous one, SQLite discards the
//! connection's page cache and unmaps its memory map (`pagerBeginReadTransaction`), and every page
//! is then faulted in again. A request used to start one per point read (the identity epoch, the
//! request, the profile, ...); now it starts one per stretch. The snapshot is also consistent:
//! every read of the stretch sees the same committed state.

use crate::error::sqlite_err;
use opencm_app::ports::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

const IDLE_MAX: usize = 8;

tokio::task_local! {
    static PINNED: RefCell<Pinned>;
}

/// The connection a task's reads share, and whether its read transaction is open.
#[derive(Default)]
struct Pinned {
    held: Option<(Arc<Readers>, Connection)>,
    open: bool,
}

impl Pinned {
    /// Ends the read transaction and gives the connection back to its pool.
    fn release(&mut self) {
        if let Some((readers, conn)) = self.held.take() {
            if self.open {
                // A read transaction's end cannot fail in a way that matters: the connection is
                // dropped instead of pooled if it does.
                if run_cached(&conn, "COMMIT").is_err() {
                    self.open = false;
                    return;
                }
            }
            readers.put_back(conn);
        }
        self.open = false;
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        self.release();
    }
}

/// Runs `f` with its inline reads sharing one read transaction per stretch between writes.
pub async fn snapshot_scope<F: std::future::Future>(f: F) -> F::Output {
    PINNED.scope(RefCell::new(Pinned::default()), f).await
}

/// Ends the current task's read transaction (before it writes), if it has one.
pub(crate) fn end_snapshot() {
    let _ = PINNED.try_with(|p| {
        if let Ok(mut p) = p.try_borrow_mut() {
            p.release();
        }
    });
}

/// `BEGIN` and `COMMIT` from the connection's statement cache: `execute_batch` would parse them
/// again for every request.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

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

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(c) = self.idle.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(c);
        }
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
        // Readers do not memory-map the file. In WAL mode a reader whose previous read
        // transaction predates any commit resets its page cache and, when memory-mapped, unmaps
        // the whole mapping at its next one (`pagerBeginReadTransaction`); under writes that is
        // nearly every request, and the munmap, its TLB shootdowns and the page faults that map
        // the pages back were a third of the workers' time in a PUT benchmark. Read with
        // `pread` from the OS page cache instead, into a modest page cache of the connection's
        // own (docs/PERFORMANCE.md, issue #6). The writer keeps its map: its cache is never reset
        // by its own commits.
        c.pragma_update(None, "mmap_size", 0i64)
            .map_err(sqlite_err)?;
        c.pragma_update(None, "cache_size", -8192i64)
            .map_err(sqlite_err)?;
        Ok(c)
    }

    fn put_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_MAX && !self.closed.load(Ordering::SeqCst) {
                idle.push(conn);
            }
        }
    }

    /// Runs `f` on a reader connection, on this thread: within `snapshot_scope`, on the task's
    /// connection and in its read transaction (begun here if none is open).
    pub fn with<T>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        if PINNED.try_with(|_| ()).is_ok() {
            return PINNED.with(|p| match p.try_borrow_mut() {
                Ok(mut p) => self.in_snapshot(&mut p, f),
                // Reads do not nest (a read closure only runs SQL).
                Err(_) => Err(StoreError::Database("a read inside a read".into())),
            });
        }
        let conn = self.take()?;
        let result = f(&conn);
        self.put_back(conn);
        result
    }

    fn in_snapshot<T>(
        self: &Arc<Self>,
        p: &mut Pinned,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A connection of another store (tests run several in one process) is not this one's.
        if p.held.as_ref().is_some_and(|(r, _)| !Arc::ptr_eq(r, self)) {
            p.release();
        }
        if p.held.is_none() {
            p.held = Some((self.clone(), self.take()?));
        }
        let Some((_, conn)) = p.held.as_ref() else {
            return Err(StoreError::Database("no reader connection".into()));
        };
        if !p.open {
            run_cached(conn, "BEGIN").map_err(sqlite_err)?;
            p.open = true;
        }
        let result = f(conn);
        if result.is_err() {
            // A failed read may have ended the transaction; start afresh next time.
            p.release();
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
