//! The SQLite hot read path: point reads by primary key run inline on the calling thread through
//! a small pool of read-only rusqlite connections on the same file.
//!
//! Why not sqlx here: sqlx-sqlite runs every statement on a per-connection worker thread, and the
//! handoff (a channel send and a futex wake each way) cost more CPU than the query itself. A
//! primary-key read from SQLite's page cache takes microseconds, and in WAL mode a reader never
//! waits for the writer, so running it inline does not stall the async runtime. Writes stay on
//! sqlx, serialised through the group-commit writer. rusqlite links the same libsqlite3-sys.

use crate::rows::{RequestRow, REQUEST_COLUMNS};
use crate::StoreError;
use opencm_domain::policy::ProfileTemplate;
use opencm_domain::request::Request;
use opencm_domain::Guid;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

const IDLE_MAX: usize = 8;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    closed: AtomicBool,
    /// Parsed templates by uuid with the revision they were parsed at: parsing a template (its
    /// policies' SDDL, its validation patterns) costs more than reading it, and every request
    /// creation reads one. Each read still checks the revision, which every import increments,
    /// so an import by another process is seen at once.
    templates: Mutex<std::collections::HashMap<Guid, (i64, ProfileTemplate)>>,
}

fn map_err(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            rusqlite::ErrorCode::DatabaseBusy
            | rusqlite::ErrorCode::DatabaseLocked
            | rusqlite::ErrorCode::CannotOpen,
        ) => StoreError::Unavailable(e.to_string()),
        _ => match e {
            rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..) => StoreError::corrupt(e),
            other => StoreError::Database(other.to_string()),
        },
    }
}

impl Readers {
    pub fn new(path: PathBuf) -> Self {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            templates: Mutex::new(Default::default()),
        }
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
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
                .map_err(map_err)?;
                c.busy_timeout(std::time::Duration::from_secs(5))
                    .map_err(map_err)?;
                c
            }
        };
        let result = f(&conn).map_err(map_err);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_MAX && !self.closed.load(Ordering::SeqCst) {
                idle.push(conn);
            }
        }
        result
    }

    pub fn request(&self, id: Guid) -> Result<Option<Request>, StoreError> {
        let row = self.with(|c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE uuid = ?1"
            ))?;
            st.query_row([id.to_string()], |r| {
                Ok(RequestRow {
                    uuid: r.get(0)?,
                    request_type: r.get(1)?,
                    status: r.get(2)?,
                    flags: r.get(3)?,
                    data_collection: r.get(4)?,
                    data_collection_flags: r.get(5)?,
                    originator_uuid: r.get(6)?,
                    target_uuid: r.get(7)?,
                    submitted: r.get(8)?,
                    completed: r.get(9)?,
                    new_profile_uuid: r.get(10)?,
                    old_profile_uuid: r.get(11)?,
                    new_smartcard_uuid: r.get(12)?,
                    old_smartcard_uuid: r.get(13)?,
                    priority: r.get(14)?,
                    comment: r.get(15)?,
                    profile_template_uuid: r.get(16)?,
                    security_descriptor: r.get(17)?,
                    version: r.get(18)?,
                })
            })
            .optional()
        })?;
        row.map(RequestRow::into_domain).transpose()
    }

    pub fn template(&self, id: Guid) -> Result<Option<ProfileTemplate>, StoreError> {
        let stamp: Option<i64> = self.with(|c| {
            c.prepare_cached("SELECT revision FROM profile_templates WHERE uuid = ?1")?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()
        })?;
        let Some(stamp) = stamp else { return Ok(None) };
        if let Some((at, t)) = self.templates.lock().ok().and_then(|m| m.get(&id).cloned()) {
            if at == stamp {
                return Ok(Some(t));
            }
        }
        let row: Option<(i64, String)> = self.with(|c| {
            c.prepare_cached("SELECT revision, body FROM profile_templates WHERE uuid = ?1")?
                .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })?;
        let Some((at, body)) = row else {
            return Ok(None);
        };
        let t: ProfileTemplate = serde_json::from_str(&body).map_err(StoreError::corrupt)?;
        if let Ok(mut m) = self.templates.lock() {
            if m.len() > 1000 {
                m.clear();
            }
            m.insert(id, (at, t.clone()));
        }
        Ok(Some(t))
    }
}
