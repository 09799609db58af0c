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

use crate::error::sqlite_err;
use crate::rows::{
    guid, ApprovalRow, AuditRow, CertificateRow, ProfileRow, RequestRow, SmartcardRow, UserRow,
    CERTIFICATE_COLUMNS, PROFILE_COLUMNS, REQUEST_COLUMNS, SMARTCARD_COLUMNS,
};
use crate::StoreOptions;
use async_trait::async_trait;
use opencm_app::ports::{
    AdminEvent, AuditLog, CaStore, CertificateRecord, CertificateStore, Database, IdentityChange,
    IdentityStore, NewUser, ProfileQuery, ProfileRecord, ProfileStore, RequestQuery, RequestStore,
    RevokedCertificate, SmartcardRecord, SmartcardStore, StoreError, StoredCa, StoredTemplate,
    TemplateStore, TokenRecord, Transactions, Write, WriteOutcome,
};
use opencm_domain::issued::RevocationReason;
use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::template::ProfileTemplate;
use opencm_domain::{Guid, Principal, Sid, Timestamp};
use reads::Readers;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use writer::Writer;

pub struct SqliteStore {
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

impl SqliteStore {
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
        Ok(SqliteStore {
            readers: Readers::new(path.clone()),
            path,
            writer: Mutex::new(Some(Arc::new(writer))),
            migrator: Mutex::new(Some(migrator)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

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

fn load_principal(c: &Connection, row: UserRow) -> Result<Principal, StoreError> {
    let mut st = c
        .prepare_cached("SELECT group_sid FROM user_groups WHERE user_uuid = ?1 ORDER BY group_sid")
        .map_err(sqlite_err)?;
    let groups = st
        .query_map([&row.uuid], |r| r.get::<_, String>(0))
        .map_err(sqlite_err)?
        .map(|g| {
            let g = g.map_err(sqlite_err)?;
            Sid::parse(&g).map_err(StoreError::corrupt)
        })
        .collect::<Result<_, _>>()?;
    let certificate_mappings = c
        .prepare_cached(
            "SELECT mapping FROM user_certificate_mappings WHERE user_uuid = ?1 ORDER BY mapping",
        )
        .map_err(sqlite_err)?
        .query_map([&row.uuid], |r| r.get::<_, String>(0))
        .map_err(sqlite_err)?
        .collect::<Result<_, _>>()
        .map_err(sqlite_err)?;
    Ok(Principal {
        uuid: guid(&row.uuid)?,
        login: row.login,
        display_name: row.display_name,
        sid: Sid::parse(&row.sid).map_err(StoreError::corrupt)?,
        groups,
        upn: None,
        email: None,
        certificate_mappings,
    })
}

fn user_where(c: &Connection, condition: &str, key: &str) -> Result<Option<Principal>, StoreError> {
    let row = c
        .prepare_cached(&format!(
            "SELECT uuid, login, display_name, sid FROM users WHERE {condition}(?1)"
        ))
        .map_err(sqlite_err)?
        .query_row([key], UserRow::from_sqlite)
        .optional()
        .map_err(sqlite_err)?;
    row.map(|r| load_principal(c, r)).transpose()
}

/// Every row of `sql` (bound to `args`), converted.
fn all<R, T>(
    c: &Connection,
    sql: &str,
    args: impl rusqlite::Params,
    row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    convert: fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut st = c.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = st.query_map(args, row).map_err(sqlite_err)?;
    rows.map(|r| convert(r.map_err(sqlite_err)?)).collect()
}

/// The one row of `sql` for `id` (a point read by primary key), converted.
fn by_uuid<R, T>(
    c: &Connection,
    sql: &str,
    id: Guid,
    row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    convert: fn(R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    c.prepare_cached(sql)
        .map_err(sqlite_err)?
        .query_row([id.to_string()], row)
        .optional()
        .map_err(sqlite_err)?
        .map(convert)
        .transpose()
}

fn duplicate(e: StoreError, what: String) -> StoreError {
    match e {
        StoreError::Duplicate(_) => StoreError::Duplicate(what),
        other => other,
    }
}

#[async_trait]
impl Database for SqliteStore {
    fn engine(&self) -> &'static str {
        "sqlite"
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
        self.readers
            .with(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(sqlite_err))
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

#[async_trait]
impl Transactions for SqliteStore {
    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        self.writer()?.write(w).await
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn add_user(&self, u: &NewUser, now: Timestamp) -> Result<(), StoreError> {
        let u = u.clone();
        self.writer()?
            .exec(move |t| {
                // A user's own SID is never a group's: members of it would act as the user.
                let group: bool = t
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM user_groups WHERE group_sid = ?1) OR EXISTS (SELECT 1 FROM directory_groups WHERE sid = ?1)",
                        [&u.sid],
                        |r| r.get(0),
                    )
                    .map_err(sqlite_err)?;
                if group {
                    return Err(StoreError::Duplicate(format!("a group with SID {}", u.sid)));
                }
                t.execute(
                    "INSERT INTO users (uuid, login, display_name, sid, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![u.uuid.to_string(), u.login, u.display_name, u.sid, now.micros()],
                )
                .map_err(|e| {
                    duplicate(
                        sqlite_err(e),
                        format!("a user with login '{}', that uuid or SID", u.login),
                    )
                })?;
                for g in &u.groups {
                    t.execute(
                        "INSERT INTO user_groups (user_uuid, group_sid) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![u.uuid.to_string(), g],
                    )
                    .map_err(sqlite_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn add_group(&self, name: &str, sid: &str) -> Result<(), StoreError> {
        let (name, sid) = (name.to_string(), sid.to_string());
        self.writer()?
            .exec(move |t| {
                t.execute(
                    "INSERT INTO directory_groups (sid, name) VALUES (?1, ?2)",
                    params![sid, name],
                )
                .map_err(|e| {
                    duplicate(
                        sqlite_err(e),
                        format!("a group named '{name}' or with SID {sid}"),
                    )
                })?;
                Ok(())
            })
            .await
    }

    async fn user_by_uuid(&self, id: Guid) -> Result<Option<Principal>, StoreError> {
        self.readers
            .with(|c| user_where(c, "uuid = ", &id.to_string()))
    }

    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        // Without regard to case (the unique index on lower(login) keeps it one user).
        self.readers
            .with(|c| user_where(c, "lower(login) = lower", login))
    }

    async fn user_disabled(&self, id: Guid) -> Result<bool, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT disabled_at IS NOT NULL FROM users WHERE uuid = ?1")
                .map_err(sqlite_err)?
                .query_row([id.to_string()], |r| r.get::<_, bool>(0))
                .optional()
                .map(|d| d.unwrap_or(false))
                .map_err(sqlite_err)
        })
    }

    async fn first_use(
        &self,
        authenticator: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let key = authenticator.to_string();
        self.writer()?
            .exec(move |t| {
                t.execute(
                    "DELETE FROM kerberos_replay WHERE expires_at < ?1",
                    [now.micros()],
                )
                .map_err(sqlite_err)?;
                let n = t
                    .execute(
                        "INSERT INTO kerberos_replay (authenticator, expires_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![key, expires.micros()],
                    )
                    .map_err(sqlite_err)?;
                Ok(n == 1)
            })
            .await
    }

    async fn local_user_enabled(&self, id: Guid) -> Result<Option<bool>, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT disabled_at IS NULL FROM users WHERE uuid = ?1")
                .map_err(sqlite_err)?
                .query_row([id.to_string()], |r| r.get::<_, bool>(0))
                .optional()
                .map_err(sqlite_err)
        })
    }

    async fn user_with_sid(&self, sid: &str) -> Result<Option<String>, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT login FROM users WHERE sid = ?1")
                .map_err(sqlite_err)?
                .query_row([sid], |r| r.get::<_, String>(0))
                .optional()
                .map_err(sqlite_err)
        })
    }

    async fn count_users(&self) -> Result<i64, StoreError> {
        self.readers.with(|c| {
            c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
                .map_err(sqlite_err)
        })
    }

    async fn add_token(
        &self,
        hash: &str,
        user: Guid,
        now: Timestamp,
        expires: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let hash = hash.to_string();
        self.writer()?
            .exec(move |t| {
                t.execute(
                    "INSERT INTO api_tokens (token_hash, user_uuid, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                    params![hash, user.to_string(), now.micros(), expires.map(|e| e.micros())],
                )
                .map_err(sqlite_err)?;
                Ok(())
            })
            .await
    }

    async fn principal_by_token(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Principal, Timestamp)>, StoreError> {
        self.readers.with(|c| {
            let row = c
                .prepare_cached(
                    "SELECT u.uuid, u.login, u.display_name, u.sid, t.expires_at FROM api_tokens t \
                     JOIN users u ON u.uuid = t.user_uuid \
                     WHERE t.token_hash = ?1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
                )
                .map_err(sqlite_err)?
                .query_row([hash], |r| {
                    Ok((UserRow::from_sqlite(r)?, r.get::<_, Option<i64>>(4)?))
                })
                .optional()
                .map_err(sqlite_err)?;
            let Some((user, expires)) = row else {
                return Ok(None);
            };
            if expires.is_some_and(|e| e <= now.micros()) {
                return Ok(None);
            }
            Ok(Some((
                load_principal(c, user)?,
                Timestamp::from_option(expires),
            )))
        })
    }

    async fn identity_epoch(&self) -> Result<i64, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT epoch FROM identity_epoch WHERE id = 1")
                .map_err(sqlite_err)?
                .query_row([], |r| r.get(0))
                .map_err(sqlite_err)
        })
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                "SELECT t.token_hash, t.user_uuid, u.login, t.created_at, t.expires_at, t.revoked_at \
                 FROM api_tokens t JOIN users u ON u.uuid = t.user_uuid ORDER BY t.created_at, t.token_hash",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                        r.get::<_, Option<i64>>(5)?,
                    ))
                },
                crate::rows::token_record,
            )
        })
    }

    async fn change_identity(
        &self,
        change: &IdentityChange,
        event: &AdminEvent,
    ) -> Result<bool, StoreError> {
        let (change, event) = (change.clone(), event.clone());
        self.writer()?
            .exec(move |t| {
                let n = match &change {
                    IdentityChange::RevokeToken { hash, at } => t.execute(
                        "UPDATE api_tokens SET revoked_at = ?1 WHERE token_hash = ?2 AND revoked_at IS NULL",
                        params![at.micros(), hash],
                    ),
                    IdentityChange::DisableUser { user, at } => t.execute(
                        "UPDATE users SET disabled_at = ?1 WHERE uuid = ?2 AND disabled_at IS NULL",
                        params![at.micros(), user.to_string()],
                    ),
                    IdentityChange::EnableUser { user } => t.execute(
                        "UPDATE users SET disabled_at = NULL WHERE uuid = ?1 AND disabled_at IS NOT NULL",
                        params![user.to_string()],
                    ),
                    IdentityChange::AddMember { user, group_sid } => t.execute(
                        "INSERT INTO user_groups (user_uuid, group_sid) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![user.to_string(), group_sid],
                    ),
                    IdentityChange::RemoveMember { user, group_sid } => t.execute(
                        "DELETE FROM user_groups WHERE user_uuid = ?1 AND group_sid = ?2",
                        params![user.to_string(), group_sid],
                    ),
                    IdentityChange::MapCertificate { user, mapping } => t.execute(
                        "INSERT INTO user_certificate_mappings (user_uuid, mapping) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        params![user.to_string(), mapping],
                    ),
                    IdentityChange::UnmapCertificate { user, mapping } => t.execute(
                        "DELETE FROM user_certificate_mappings WHERE user_uuid = ?1 AND mapping = ?2",
                        params![user.to_string(), mapping],
                    ),
                }
                .map_err(sqlite_err)?;
                if n == 0 {
                    return Ok(false);
                }
                t.execute("UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1", [])
                    .map_err(sqlite_err)?;
                t.execute(
                    "INSERT INTO admin_events (at, actor, action, subject) VALUES (?1, ?2, ?3, ?4)",
                    params![event.at.micros(), event.actor, event.action, event.subject],
                )
                .map_err(sqlite_err)?;
                Ok(true)
            })
            .await
    }
}

#[async_trait]
impl SmartcardStore for SqliteStore {
    async fn smartcard(&self, id: Guid) -> Result<Option<SmartcardRecord>, StoreError> {
        self.readers.with(|c| {
            by_uuid(
                c,
                &format!("SELECT {SMARTCARD_COLUMNS} FROM smartcards WHERE uuid = ?1"),
                id,
                SmartcardRow::from_sqlite,
                SmartcardRow::into_record,
            )
        })
    }

    async fn smartcards_by_card_id(
        &self,
        card_id: Guid,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                &format!(
                    "SELECT {SMARTCARD_COLUMNS} FROM smartcards WHERE card_id = ?1 ORDER BY created_at, uuid"
                ),
                [card_id.to_string()],
                SmartcardRow::from_sqlite,
                SmartcardRow::into_record,
            )
        })
    }

    async fn smartcards_of(&self, user: Option<Guid>) -> Result<Vec<SmartcardRecord>, StoreError> {
        self.readers.with(|c| match user {
            Some(u) => all(
                c,
                &format!(
                    "SELECT {SMARTCARD_COLUMNS} FROM smartcards WHERE assigned_user_uuid = ?1 ORDER BY uuid"
                ),
                [u.to_string()],
                SmartcardRow::from_sqlite,
                SmartcardRow::into_record,
            ),
            None => all(
                c,
                &format!("SELECT {SMARTCARD_COLUMNS} FROM smartcards ORDER BY uuid"),
                [],
                SmartcardRow::from_sqlite,
                SmartcardRow::into_record,
            ),
        })
    }

    async fn profiles_of_smartcard(&self, card: Guid) -> Result<Vec<ProfileRecord>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles WHERE smartcard_uuid = ?1 \
                     AND smartcard_uuid <> '00000000-0000-0000-0000-000000000000' ORDER BY created_at, uuid"
                ),
                [card.to_string()],
                ProfileRow::from_sqlite,
                ProfileRow::into_record,
            )
        })
    }

    async fn sealed_pin(&self, card: Guid) -> Result<Option<String>, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT sealed_pin FROM smartcards WHERE uuid = ?1")
                .map_err(sqlite_err)?
                .query_row([card.to_string()], |r| r.get::<_, Option<String>>(0))
                .optional()
                .map(Option::flatten)
                .map_err(sqlite_err)
        })
    }

    async fn card_master(&self, version: Option<i64>) -> Result<Option<(i64, String)>, StoreError> {
        self.readers.with(|c| {
            let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
            match version {
                Some(v) => c.query_row(
                    "SELECT version, sealed FROM card_master_keys WHERE version = ?1",
                    [v],
                    row,
                ),
                None => c.query_row(
                    "SELECT version, sealed FROM card_master_keys ORDER BY version DESC LIMIT 1",
                    [],
                    row,
                ),
            }
            .optional()
            .map_err(sqlite_err)
        })
    }

    async fn add_card_master(
        &self,
        version: i64,
        sealed: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let sealed = sealed.to_string();
        self.writer()?
            .exec(move |t| {
                t.execute(
                    "INSERT INTO card_master_keys (version, sealed, created_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (version) DO NOTHING",
                    params![version, sealed, now.micros()],
                )
                .map(|n| n == 1)
                .map_err(sqlite_err)
            })
            .await
    }
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn put_template(&self, t: &ProfileTemplate, now: Timestamp) -> Result<(), StoreError> {
        let body = serde_json::to_string(t).map_err(StoreError::corrupt)?;
        let (uuid, name) = (t.uuid.to_string(), t.name.clone());
        self.writer()?
            .exec(move |tx| {
                tx.execute(
                    "INSERT INTO profile_templates (uuid, name, body, updated_at) VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, body = excluded.body, \
                     updated_at = excluded.updated_at, revision = profile_templates.revision + 1",
                    params![uuid, name, body, now.micros()],
                )
                .map_err(|e| {
                    duplicate(
                        sqlite_err(e),
                        format!("another profile template named '{name}'"),
                    )
                })?;
                Ok(())
            })
            .await
    }

    async fn templates(&self) -> Result<Vec<ProfileTemplate>, StoreError> {
        self.readers
            .blocking(|c| {
                all(
                    c,
                    "SELECT body FROM profile_templates ORDER BY name",
                    [],
                    |r| r.get::<_, String>(0),
                    |b| serde_json::from_str(&b).map_err(StoreError::corrupt),
                )
            })
            .await
    }

    async fn template_revision(&self, id: Guid) -> Result<Option<i64>, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT revision FROM profile_templates WHERE uuid = ?1")
                .map_err(sqlite_err)?
                .query_row([id.to_string()], |r| r.get(0))
                .optional()
                .map_err(sqlite_err)
        })
    }

    async fn template(&self, id: Guid) -> Result<Option<StoredTemplate>, StoreError> {
        let row: Option<(i64, String)> = self.readers.with(|c| {
            c.prepare_cached("SELECT revision, body FROM profile_templates WHERE uuid = ?1")
                .map_err(sqlite_err)?
                .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(sqlite_err)
        })?;
        row.map(|(revision, body)| {
            Ok(StoredTemplate {
                revision,
                template: serde_json::from_str(&body).map_err(StoreError::corrupt)?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl RequestStore for SqliteStore {
    async fn request(&self, id: Guid) -> Result<Option<Request>, StoreError> {
        self.readers.with(|c| {
            by_uuid(
                c,
                &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE uuid = ?1"),
                id,
                RequestRow::from_sqlite,
                RequestRow::into_domain,
            )
        })
    }

    async fn list_requests(&self, q: &RequestQuery) -> Result<Vec<Request>, StoreError> {
        // The plans are those of the PostgreSQL store (see there); SQL text with `?` parameters.
        let mut sql = format!("SELECT {REQUEST_COLUMNS} FROM requests r WHERE ");
        let mut args: Vec<Value> = Vec::new();
        let filters = |sql: &mut String, args: &mut Vec<Value>| {
            if let Some(t) = q.target {
                sql.push_str(" AND r.target_uuid = ?");
                args.push(Value::Text(t.to_string()));
            }
            if let Some(s) = q.status {
                sql.push_str(" AND r.status = ?");
                args.push(Value::Integer(s.number()));
            }
        };
        let limit = i64::from(q.limit);
        let readers = if q.target.is_some() {
            None
        } else {
            q.reader_sids.as_ref()
        };
        match readers {
            None => {
                sql.push_str("1 = 1");
                if let Some(a) = q.after {
                    sql.push_str(" AND r.uuid > ?");
                    args.push(Value::Text(a.to_string()));
                }
                filters(&mut sql, &mut args);
            }
            Some(sids) if sids.is_empty() => return Ok(Vec::new()),
            Some(sids) => {
                sql.push_str("r.uuid IN (");
                for (i, sid) in sids.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(" UNION ");
                    }
                    sql.push_str("SELECT request_uuid FROM (SELECT rr.request_uuid FROM request_readers rr CROSS JOIN requests r WHERE r.uuid = rr.request_uuid AND rr.sid = ?");
                    args.push(Value::Text(sid.clone()));
                    if let Some(a) = q.after {
                        sql.push_str(" AND rr.request_uuid > ?");
                        args.push(Value::Text(a.to_string()));
                    }
                    filters(&mut sql, &mut args);
                    sql.push_str(" ORDER BY rr.request_uuid LIMIT ?)");
                    args.push(Value::Integer(limit));
                }
                sql.push(')');
            }
        }
        sql.push_str(" ORDER BY r.uuid LIMIT ?");
        args.push(Value::Integer(limit));
        self.readers
            .blocking(move |c| {
                all(
                    c,
                    &sql,
                    params_from_iter(args),
                    RequestRow::from_sqlite,
                    RequestRow::into_domain,
                )
            })
            .await
    }

    async fn approvals(&self, id: Guid) -> Result<Vec<Approval>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                "SELECT request_uuid, approver_uuid, decision, comment, at FROM approvals \
                 WHERE request_uuid = ?1 ORDER BY at, approver_uuid",
                [id.to_string()],
                ApprovalRow::from_sqlite,
                ApprovalRow::into_domain,
            )
        })
    }
}

#[async_trait]
impl AuditLog for SqliteStore {
    async fn history(&self, id: Guid) -> Result<Vec<AuditEvent>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                "SELECT request_uuid, at, actor_uuid, action, from_status, to_status, detail \
                 FROM audit_events WHERE request_uuid = ?1 ORDER BY id",
                [id.to_string()],
                AuditRow::from_sqlite,
                AuditRow::into_domain,
            )
        })
    }
}

#[async_trait]
impl CaStore for SqliteStore {
    async fn ca(&self) -> Result<Option<StoredCa>, StoreError> {
        self.readers.with(|c| {
            c.query_row(
                "SELECT cert_pem, chain_pem, sealed_key FROM certificate_authorities WHERE id = 'default'",
                [],
                |r| {
                    Ok(StoredCa {
                        cert_pem: r.get(0)?,
                        chain_pem: r.get(1)?,
                        sealed_key: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(sqlite_err)
        })
    }

    async fn init_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<StoredCa, StoreError> {
        let ca = ca.clone();
        self.writer()?
            .exec(move |t| {
                t.execute(
                    "INSERT INTO certificate_authorities (id, cert_pem, chain_pem, sealed_key, created_at) \
                     VALUES ('default', ?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
                    params![ca.cert_pem, ca.chain_pem, ca.sealed_key, now.micros()],
                )
                .map_err(sqlite_err)?;
                t.query_row(
                    "SELECT cert_pem, chain_pem, sealed_key FROM certificate_authorities WHERE id = 'default'",
                    [],
                    |r| {
                        Ok(StoredCa {
                            cert_pem: r.get(0)?,
                            chain_pem: r.get(1)?,
                            sealed_key: r.get(2)?,
                        })
                    },
                )
                .map_err(sqlite_err)
            })
            .await
    }

    async fn replace_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<(), StoreError> {
        let ca = ca.clone();
        self.writer()?
            .exec(move |t| {
                t.execute(
                    "INSERT INTO certificate_authorities (id, cert_pem, chain_pem, sealed_key, created_at) \
                     VALUES ('default', ?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET cert_pem = excluded.cert_pem, \
                     chain_pem = excluded.chain_pem, sealed_key = excluded.sealed_key, created_at = excluded.created_at",
                    params![ca.cert_pem, ca.chain_pem, ca.sealed_key, now.micros()],
                )
                .map_err(sqlite_err)?;
                Ok(())
            })
            .await
    }
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn profile(&self, id: Guid) -> Result<Option<ProfileRecord>, StoreError> {
        self.readers.with(|c| {
            by_uuid(
                c,
                &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE uuid = ?1"),
                id,
                ProfileRow::from_sqlite,
                ProfileRow::into_record,
            )
        })
    }

    async fn profiles(&self, q: &ProfileQuery) -> Result<Vec<ProfileRecord>, StoreError> {
        let mut sql = format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(u) = q.user {
            sql.push_str(" AND assigned_user_uuid = ?");
            args.push(Value::Text(u.to_string()));
        }
        if let Some(s) = q.status {
            sql.push_str(" AND status = ?");
            args.push(Value::Integer(s.number()));
        }
        if let Some(a) = q.after {
            sql.push_str(" AND uuid > ?");
            args.push(Value::Text(a.to_string()));
        }
        sql.push_str(" ORDER BY uuid LIMIT ?");
        args.push(Value::Integer(i64::from(q.limit)));
        self.readers
            .blocking(move |c| {
                all(
                    c,
                    &sql,
                    params_from_iter(args),
                    ProfileRow::from_sqlite,
                    ProfileRow::into_record,
                )
            })
            .await
    }

    async fn profiles_of_request(&self, request: Guid) -> Result<Vec<ProfileRecord>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                &format!(
                    "SELECT {PROFILE_COLUMNS} FROM profiles WHERE request_uuid = ?1 ORDER BY uuid"
                ),
                [request.to_string()],
                ProfileRow::from_sqlite,
                ProfileRow::into_record,
            )
        })
    }
}

#[async_trait]
impl CertificateStore for SqliteStore {
    async fn certificates_of_profile(
        &self,
        profile: Guid,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        self.readers.with(|c| {
            all(
                c,
                &format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE profile_uuid = ?1 ORDER BY serial"),
                [profile.to_string()],
                CertificateRow::from_sqlite,
                CertificateRow::into_record,
            )
        })
    }

    async fn has_certificates(&self, profile: Guid) -> Result<bool, StoreError> {
        self.readers.with(|c| {
            c.prepare_cached("SELECT 1 FROM certificates WHERE profile_uuid = ?1 LIMIT 1")
                .map_err(sqlite_err)?
                .query_row([profile.to_string()], |_| Ok(()))
                .optional()
                .map(|found| found.is_some())
                .map_err(sqlite_err)
        })
    }

    async fn certificates_of_user(&self, user: Guid) -> Result<Vec<CertificateRecord>, StoreError> {
        self.readers
            .blocking(move |c| {
                all(
                    c,
                    &format!("SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE user_uuid = ?1 ORDER BY not_before DESC, serial"),
                    [user.to_string()],
                    CertificateRow::from_sqlite,
                    CertificateRow::into_record,
                )
            })
            .await
    }

    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError> {
        self.readers
            .blocking(|c| {
                all(
                    c,
                    "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE status <> 0 ORDER BY serial",
                    [],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?)),
                    |(serial_hex, at, reason)| {
                        Ok(RevokedCertificate {
                            serial_hex,
                            revoked_at: Timestamp::from_micros(at.unwrap_or(0)),
                            reason: reason
                                .and_then(RevocationReason::from_code)
                                .unwrap_or(RevocationReason::Unspecified),
                        })
                    },
                )
            })
            .await
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
