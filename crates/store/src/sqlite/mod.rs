//! SQLite, the embedded default, through its C API (rusqlite) alone: one writer thread that owns
//! the only read-write connection and group-commits request writes (`writer`), and read-only
//! connections for reads (`reads`). WAL journal, `synchronous=FULL` unless configured otherwise
//! (a committed transition survives power loss), and a busy timeout for other processes on the
//! same file. Why not sqlx here, as on PostgreSQL: see docs/ARCHITECTURE.md ("One driver per
//! engine").

mod batch;
mod migrate;
mod reads;
pub use reads::snapshot_scope;
mod writer;

use crate::engine::Engine;
use crate::error::sqlite_err;
use crate::ports::Store;
use crate::sql::{Arg, Columns, Decode, Rows, Step};
use crate::StoreOptions;
use async_trait::async_trait;
use opencm_app::ports::{StoreError, Write, WriteOutcome};
use reads::Readers;
use rusqlite::{params_from_iter, Connection};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use writer::Writer;

/// The SQLite store.
pub type SqliteStore = Store<Sqlite>;

pub struct Sqlite {
    path: PathBuf,
    /// `None` once closed.
    writer: Mutex<Option<Arc<Writer>>>,
    readers: Arc<Readers>,
    /// Migrations run on a connection of their own, before the writer is used.
    migrator: Mutex<Option<Connection>>,
}

/// Creates the database file readable by its owner only (0600) if it does not exist: SQLite gives
/// its WAL and shared-memory files the database file's permissions.
fn create_private(path: &std::path::Path) -> Result<(), StoreError> {
    match create_new_private(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Unavailable(format!(
            "cannot create {}: {e}",
            path.display()
        ))),
    }
}

/// A new empty file readable by its owner only.
fn create_new_private(path: &std::path::Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).map(drop)
}

/// Opens a read-write connection with opencm's settings.
fn open(path: &PathBuf, opts: &StoreOptions) -> Result<Connection, StoreError> {
    create_private(path)?;
    let c = Connection::open(path).map_err(sqlite_err)?;
    c.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_err)?;
    c.pragma_update(None, "journal_mode", "WAL")
        .map_err(sqlite_err)?;
    let sync = if opts.sqlite_synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    c.pragma_update(None, "synchronous", sync)
        .map_err(sqlite_err)?;
    c.pragma_update(None, "foreign_keys", "ON")
        .map_err(sqlite_err)?;
    tune(&c)?;
    Ok(c)
}

/// Memory settings of every connection: pages are read through a memory map (no `pread` system
/// call per page: that was ~9% of a PUT's CPU once the database outgrew the page cache), and
/// prepared statements stay cached.
fn tune(c: &Connection) -> Result<(), StoreError> {
    c.pragma_update(None, "mmap_size", 1i64 << 30)
        .map_err(sqlite_err)?;
    c.set_prepared_statement_cache_capacity(64);
    Ok(())
}

impl Store<Sqlite> {
    /// `sqlite://PATH` or `sqlite:PATH` (query parameters are ignored); the file is created if
    /// missing.
    pub fn connect(url: &str, opts: StoreOptions) -> Result<Self, StoreError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::Config("a SQLite URL starts with sqlite://".into()))?;
        let path = PathBuf::from(rest.split('?').next().unwrap_or(rest));
        if path.as_os_str().is_empty() {
            return Err(StoreError::Config("the SQLite URL names no file".into()));
        }
        let conn = open(&path, &opts)?;
        let writer = Writer::spawn(conn, opts.max_batch)
            .map_err(|e| StoreError::Database(format!("starting the writer thread: {e}")))?;
        let migrator = open(&path, &opts)?;
        Ok(Store(Sqlite {
            readers: Readers::new(path.clone()),
            path,
            writer: Mutex::new(Some(Arc::new(writer))),
            migrator: Mutex::new(Some(migrator)),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.0.path
    }
}

impl Sqlite {
    /// The writer, for a write: the task's read transaction (`reads::snapshot_scope`) ends
    /// first, so its next read sees this write.
    fn writer(&self) -> Result<Arc<Writer>, StoreError> {
        reads::end_snapshot();
        self.writer
            .lock()
            .ok()
            .and_then(|w| w.clone())
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))
    }
}

#[async_trait]
impl Engine for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn query<T: Send + 'static>(
        &self,
        sql: &str,
        args: Vec<Arg>,
        rows: Rows,
        decode: Decode<T>,
    ) -> Result<Vec<T>, StoreError> {
        match rows {
            // A point read from the page cache takes microseconds: inline, in the task's
            // snapshot (`reads`).
            Rows::Few => self.readers.with(|c| all(c, sql, args, decode)),
            Rows::Many => {
                let sql = sql.to_string();
                self.readers
                    .blocking(move |c| all(c, &sql, args, decode))
                    .await
            }
        }
    }

    async fn transact(&self, steps: Vec<Step>) -> Result<Vec<u64>, StoreError> {
        self.writer()?
            .exec(move |t| {
                let mut changed = Vec::with_capacity(steps.len());
                for step in steps {
                    let n = t
                        .prepare_cached(step.sql)
                        .and_then(|mut st| st.execute(params_from_iter(step.args)))
                        .map_err(sqlite_err)? as u64;
                    changed.push(n);
                    if step.stop_unless_changed && n == 0 {
                        break;
                    }
                }
                Ok(changed)
            })
            .await
    }

    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        self.writer()?.write(w).await
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let conn = self.migrator.lock().ok().and_then(|mut m| m.take());
        let Some(mut conn) = conn else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || migrate::run(&mut conn))
            .await
            .map_err(|e| StoreError::Database(format!("migration task failed: {e}")))?
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers.with(|c| {
            c.query_row(crate::sql::PING, [], |_| Ok(()))
                .map_err(sqlite_err)
        })
    }

    async fn close(&self) {
        // Dropping the last handle ends the writer thread once its queue is drained.
        if let Ok(mut w) = self.writer.lock() {
            w.take();
        }
        self.readers.close();
    }

    /// `VACUUM INTO` on a reader: one read transaction, so the copy is the database as of the
    /// moment it began, while the writer goes on committing (WAL). The copy is compact and
    /// self-contained (no WAL beside it) and created 0600 like the database.
    async fn backup(&self, dest: &std::path::Path) -> Result<(), StoreError> {
        let dest = dest.to_path_buf();
        create_new_private(&dest).map_err(|e| {
            StoreError::Config(if e.kind() == std::io::ErrorKind::AlreadyExists {
                format!(
                    "{} already exists; a backup never overwrites a file",
                    dest.display()
                )
            } else {
                format!("cannot create {}: {e}", dest.display())
            })
        })?;
        let target = dest.clone();
        let result = self
            .readers
            .blocking(move |c| {
                let path = target.to_str().ok_or_else(|| {
                    StoreError::Config(format!("{} is not a UTF-8 path", target.display()))
                })?;
                c.execute("VACUUM INTO ?1", [path]).map_err(sqlite_err)?;
                Ok(())
            })
            .await;
        if result.is_err() {
            let _ = std::fs::remove_file(&dest);
        }
        result
    }
}

/// Every row of `sql` (bound to `args`), decoded.
fn all<T>(
    c: &Connection,
    sql: &str,
    args: Vec<Arg>,
    decode: Decode<T>,
) -> Result<Vec<T>, StoreError> {
    let mut st = c.prepare_cached(sql).map_err(sqlite_err)?;
    let mut rows = st.query(params_from_iter(args)).map_err(sqlite_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sqlite_err)? {
        out.push(decode(&SqliteRow {
            row,
            next: std::cell::Cell::new(0),
        })?);
    }
    Ok(out)
}

/// A SQLite row, read by column name. (rusqlite's own lookup by name compares every column's
/// name, case-insensitively, for every value read; decoders read in the SELECT list's order, so
/// the column after the last one read is tried first.)
struct SqliteRow<'a, 'b> {
    row: &'a rusqlite::Row<'b>,
    next: std::cell::Cell<usize>,
}

impl SqliteRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, name: &str) -> Result<T, StoreError> {
        let st = self.row.as_ref();
        let named = |i: usize| st.column_name(i).is_ok_and(|n| n == name);
        let hint = self.next.get();
        let i = if named(hint) {
            hint
        } else {
            (0..st.column_count())
                .find(|i| named(*i))
                .ok_or_else(|| StoreError::corrupt(format!("no column {name}")))?
        };
        self.next.set(i + 1);
        self.row.get(i).map_err(sqlite_err)
    }
}

impl Columns for SqliteRow<'_, '_> {
    fn text(&self, name: &str) -> Result<String, StoreError> {
        self.get(name)
    }
    fn int(&self, name: &str) -> Result<i64, StoreError> {
        self.get(name)
    }
    fn opt_text(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.get(name)
    }
    fn opt_int(&self, name: &str) -> Result<Option<i64>, StoreError> {
        self.get(name)
    }
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Text(v) => v.to_sql(),
            Arg::Int(v) => v.to_sql(),
            Arg::OptText(v) => v.to_sql(),
            Arg::OptInt(v) => v.to_sql(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The SQLite compiled in is the one `.cargo/config.toml` asks for: without the memory
    /// statistics and without the shared page-cache group (each takes a process-wide mutex on
    /// every page a connection fetches or frees; docs/PERFORMANCE.md, issue #6). A build that
    /// loses `LIBSQLITE3_FLAGS` (another cargo invocation, an upgraded libsqlite3-sys that reads
    /// it differently) fails here instead of quietly slowing every read.
    #[test]
    fn sqlite_is_built_without_process_wide_page_locks() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let options: Vec<String> = c
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        assert!(
            options
                .iter()
                .any(|o| o == "DISABLE_PAGECACHE_OVERFLOW_STATS"),
            "{options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
    }
}
