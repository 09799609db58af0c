//! PostgreSQL, for many stateless opencm nodes sharing one database, through sqlx (async, no
//! worker threads: a PostgreSQL round trip is network IO, which is what tokio is for).
//! Concurrency control is the same optimistic version check as on SQLite: under READ COMMITTED,
//! an `UPDATE ... WHERE version = $v` that races another writer waits for it and then matches no
//! row, so exactly one writer wins across processes; profiles a write decided on are read
//! `FOR UPDATE` and their versions compared. Writes go through the group-commit `Batcher`: the
//! writes waiting at one moment share one transaction, with a fixed number of statements per
//! batch whatever its size.

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
            .await
            .map_err(db_err)?;
        let batcher = Batcher::spawn(opts.max_batch, batch_fn(pool.clone()));
        Ok(PgStore { pool, batcher })
    }

    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }
}

use crate::batch::{fail_all, guarded_rows, BatchResult};
use crate::error::{db_err, migrate_err};
use crate::rows::{
    data_collection_json, guid, ApprovalRow, AuditRow, CertificateRow, ProfileRow, RequestRow,
    SmartcardRow, UserRow, CERTIFICATE_COLUMNS, PROFILE_COLUMNS, REQUEST_COLUMNS,
    SMARTCARD_COLUMNS,
};
use opencm_app::ports::{
    AdminEvent, AuditLog, CaStore, CertificateRecord, CertificateStore, Database, Effect,
    IdentityChange, IdentityStore, NewUser, ProfileQuery, ProfileRecord, ProfileStore,
    RequestQuery, RequestStore, RevokedCertificate, SmartcardRecord, SmartcardStore, StoreError,
    StoredCa, StoredTemplate, TemplateStore, TokenRecord, Transactions, Write, WriteOutcome,
};
use opencm_domain::issued::{CertificateEvent, CertificateStatus, RevocationReason};
use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::template::ProfileTemplate;
use opencm_domain::{Guid, Principal, Sid, Timestamp};

type Conn = <sqlx::Postgres as sqlx::Database>::Connection;

async fn load_principal(
    pool: &sqlx::Pool<sqlx::Postgres>,
    row: UserRow,
) -> Result<Principal, StoreError> {
    let groups: Vec<String> = sqlx::query_scalar(
        "SELECT group_sid FROM user_groups WHERE user_uuid = $1 ORDER BY group_sid",
    )
    .bind(&row.uuid)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(Principal {
        uuid: guid(&row.uuid)?,
        login: row.login,
        display_name: row.display_name,
        sid: Sid::parse(&row.sid).map_err(StoreError::corrupt)?,
        groups: groups
            .iter()
            .map(|g| Sid::parse(g).map_err(StoreError::corrupt))
            .collect::<Result<_, _>>()?,
        upn: None,
        email: None,
        certificate_mappings: sqlx::query_scalar(
            "SELECT mapping FROM user_certificate_mappings WHERE user_uuid = $1 ORDER BY mapping",
        )
        .bind(&row.uuid)
        .fetch_all(pool)
        .await
        .map_err(db_err)?,
    })
}

/// Applies a batch with a fixed number of statements whatever its size: one multi-row
/// INSERT for new requests and one for their readers, one `UPDATE ... FROM (VALUES ...)
/// RETURNING` for every version-checked update, then one multi-row INSERT each for the
/// approvals and audit events of the writes that won. (Each statement is a round trip to
/// the database; on SQLite through sqlx that round trip is a thread handoff, and was most
/// of the cost of a transition when every write took four.)
async fn apply_batch(conn: &mut Conn, writes: &[Write]) -> Result<Vec<WriteOutcome>, sqlx::Error> {
    let mut outcomes = vec![WriteOutcome::Done; writes.len()];
    let creates: Vec<&Request> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Create { request, .. } => Some(request),
            _ => None,
        })
        .collect();
    if !creates.is_empty() {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "INSERT INTO requests ({REQUEST_COLUMNS}) "
        ));
        qb.push_values(creates.iter(), |mut row, r| {
            row.push_bind(r.uuid.to_string())
                .push_bind(r.request_type.number())
                .push_bind(r.status.number())
                .push_bind(r.flags.0)
                .push_bind(data_collection_json(r))
                .push_bind(r.data_collection_flags)
                .push_bind(r.originator.to_string())
                .push_bind(r.target.to_string())
                .push_bind(r.submitted.micros())
                .push_bind(r.completed.to_option())
                .push_bind(r.new_profile.to_string())
                .push_bind(r.old_profile.to_string())
                .push_bind(r.new_smartcard.to_string())
                .push_bind(r.old_smartcard.to_string())
                .push_bind(i64::from(r.priority))
                .push_bind(r.comment.clone())
                .push_bind(r.profile_template.to_string())
                .push_bind(r.security_descriptor.to_string())
                .push_bind(r.version);
        });
        qb.build().execute(&mut *conn).await?;
        let readers: Vec<(String, String)> = creates
            .iter()
            .flat_map(|r| {
                r.reader_sids()
                    .into_iter()
                    .map(move |s| (s.as_str().to_string(), r.uuid.to_string()))
            })
            .collect();
        if !readers.is_empty() {
            let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO request_readers (sid, request_uuid) ",
            );
            qb.push_values(readers, |mut row, (sid, id)| {
                row.push_bind(sid).push_bind(id);
            });
            qb.push(" ON CONFLICT DO NOTHING");
            qb.build().execute(&mut *conn).await?;
        }
    }
    // Only the first write per request competes; later ones in the same batch were decided
    // on the same version and lose, exactly as they would in a later transaction.
    let mut updates: Vec<(usize, &Request)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, w) in writes.iter().enumerate() {
        if let Write::Update { request, .. } = w {
            if seen.insert(request.uuid) {
                updates.push((i, request));
            } else {
                outcomes[i] = WriteOutcome::Conflict;
            }
        }
    }
    check_versions(conn, writes, &mut outcomes).await?;
    updates.retain(|(i, _)| outcomes[*i] == WriteOutcome::Done);
    if !updates.is_empty() {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "UPDATE requests SET status = v.column3, flags = v.column4, data_collection = v.column5, \
             data_collection_flags = v.column6, completed = v.column7, new_profile_uuid = v.column8, \
             old_profile_uuid = v.column9, new_smartcard_uuid = v.column10, old_smartcard_uuid = v.column11, \
             priority = v.column12, comment = v.column13, version = requests.version + 1 FROM (",
        );
        qb.push_values(updates.iter(), |mut row, (_, r)| {
            row.push("CAST(")
                .push_bind_unseparated(r.uuid.to_string())
                .push_unseparated(" AS TEXT)");
            row.push("CAST(")
                .push_bind_unseparated(r.version)
                .push_unseparated(" AS BIGINT)");
            row.push("CAST(")
                .push_bind_unseparated(r.status.number())
                .push_unseparated(" AS BIGINT)");
            row.push("CAST(")
                .push_bind_unseparated(r.flags.0)
                .push_unseparated(" AS BIGINT)");
            row.push("CAST(")
                .push_bind_unseparated(data_collection_json(r))
                .push_unseparated(" AS TEXT)");
            row.push("CAST(")
                .push_bind_unseparated(r.data_collection_flags)
                .push_unseparated(" AS BIGINT)");
            row.push("CAST(")
                .push_bind_unseparated(r.completed.to_option())
                .push_unseparated(" AS BIGINT)");
            row.push("CAST(")
                .push_bind_unseparated(r.new_profile.to_string())
                .push_unseparated(" AS TEXT)");
            row.push("CAST(")
                .push_bind_unseparated(r.old_profile.to_string())
                .push_unseparated(" AS TEXT)");
            row.push("CAST(")
                .push_bind_unseparated(r.new_smartcard.to_string())
                .push_unseparated(" AS TEXT)");
            row.push("CAST(")
                .push_bind_unseparated(r.old_smartcard.to_string())
                .push_unseparated(" AS TEXT)");
            row.push("CAST(")
                .push_bind_unseparated(i64::from(r.priority))
                .push_unseparated(" AS BIGINT)");
            row.push("CAST(")
                .push_bind_unseparated(r.comment.clone())
                .push_unseparated(" AS TEXT)");
        });
        qb.push(") AS v WHERE requests.uuid = v.column1 AND requests.version = v.column2 RETURNING requests.uuid");
        let won: std::collections::HashSet<String> = qb
            .build_query_scalar::<String>()
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        for (i, r) in &updates {
            if !won.contains(&r.uuid.to_string()) {
                outcomes[*i] = WriteOutcome::Conflict;
            }
        }
    }
    let done = || {
        writes
            .iter()
            .zip(&outcomes)
            .filter(|(_, o)| **o == WriteOutcome::Done)
            .map(|(w, _)| w)
    };
    let approvals: Vec<&Approval> = done()
        .filter_map(|w| match w {
            Write::Update {
                approval: Some(a), ..
            } => Some(a),
            _ => None,
        })
        .collect();
    if !approvals.is_empty() {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "INSERT INTO approvals (request_uuid, approver_uuid, decision, comment, at) ",
        );
        qb.push_values(approvals, |mut row, a| {
            row.push_bind(a.request.to_string())
                .push_bind(a.approver.to_string())
                .push_bind(a.decision.name())
                .push_bind(a.comment.clone())
                .push_bind(a.at.micros());
        });
        qb.build().execute(&mut *conn).await?;
    }
    for w in done() {
        if let Write::Update { effects, event, .. } = w {
            for e in effects {
                apply_effect(conn, e, event.at).await?;
            }
        }
    }
    let events: Vec<&AuditEvent> = done()
        .map(|w| match w {
            Write::Create { event, .. } | Write::Update { event, .. } => event,
        })
        .collect();
    if !events.is_empty() {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(
            "INSERT INTO audit_events (request_uuid, at, actor_uuid, action, from_status, to_status, detail) ",
        );
        qb.push_values(events, |mut row, e| {
            row.push_bind(e.request.to_string())
                .push_bind(e.at.micros())
                .push_bind(e.actor.to_string())
                .push_bind(e.action.clone())
                .push_bind(e.from.number())
                .push_bind(e.to.number())
                .push_bind(e.detail.clone());
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(outcomes)
}

/// The profiles and cards a batch's updates decided on must still have the versions read. Only
/// the first write per row competes; the rows are read under the write lock (`FOR UPDATE`, in a
/// fixed order so concurrent batches cannot deadlock), so no other writer can change them before
/// this transaction commits. A write that loses is `Conflict` and writes nothing.
async fn check_versions(
    conn: &mut Conn,
    writes: &[Write],
    outcomes: &mut [WriteOutcome],
) -> Result<(), sqlx::Error> {
    use crate::batch::Guarded;
    let mut claimed: std::collections::BTreeMap<Guarded, i64> = std::collections::BTreeMap::new();
    for (i, w) in writes.iter().enumerate() {
        let mine = guarded_rows(w);
        if outcomes[i] != WriteOutcome::Done || mine.is_empty() {
            continue;
        }
        if mine.iter().any(|(row, _)| claimed.contains_key(row)) {
            outcomes[i] = WriteOutcome::Conflict;
        } else {
            claimed.extend(mine);
        }
    }
    let mut current: std::collections::HashMap<Guarded, i64> = std::collections::HashMap::new();
    for (table, make) in [
        ("profiles", Guarded::Profile as fn(Guid) -> Guarded),
        ("smartcards", Guarded::Smartcard as fn(Guid) -> Guarded),
    ] {
        let ids: Vec<String> = claimed
            .keys()
            .filter(|row| row.table().0 == table)
            .map(|row| row.table().1.to_string())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT uuid, version FROM {table} WHERE uuid IN ("
        ));
        let mut list = qb.separated(", ");
        for id in &ids {
            list.push_bind(id.clone());
        }
        qb.push(") ORDER BY uuid FOR UPDATE");
        for (uuid, version) in qb
            .build_query_as::<(String, i64)>()
            .fetch_all(&mut *conn)
            .await?
        {
            if let Ok(g) = uuid.parse::<Guid>() {
                current.insert(make(g), version);
            }
        }
    }
    for (i, w) in writes.iter().enumerate() {
        if outcomes[i] != WriteOutcome::Done {
            continue;
        }
        if guarded_rows(w)
            .iter()
            .any(|(row, v)| current.get(row) != Some(v))
        {
            outcomes[i] = WriteOutcome::Conflict;
        }
    }
    Ok(())
}

async fn apply_effect(conn: &mut Conn, e: &Effect, at: Timestamp) -> Result<(), sqlx::Error> {
    match e {
        Effect::InsertProfile(p) => {
            sqlx::query(&format!(
                "INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(p.uuid.to_string())
            .bind(p.status.number())
            .bind(p.flags)
            .bind(p.parent.to_string())
            .bind(p.primary.to_string())
            .bind(p.assigned_user.to_string())
            .bind(p.template.to_string())
            .bind(p.template_version)
            .bind(&p.comment)
            .bind(p.request.to_string())
            .bind(p.created.micros())
            .bind(p.version)
            .bind(p.smartcard.to_string())
            .execute(&mut *conn)
            .await?;
        }
        Effect::InsertSmartcard(c) => {
            sqlx::query(&format!(
                "INSERT INTO smartcards ({SMARTCARD_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
            ))
            .bind(c.uuid.to_string())
            .bind(c.status.number())
            .bind(c.flags)
            .bind(c.card_id.to_string())
            .bind(&c.atr)
            .bind(&c.middleware)
            .bind(c.assigned_user.to_string())
            .bind(c.template.to_string())
            .bind(c.template_version)
            .bind(c.request.to_string())
            .bind(&c.comment)
            .bind(c.created.micros())
            .bind(c.version)
            .bind(c.key_version)
            .bind(c.parent.to_string())
            .bind(c.primary.to_string())
            .bind(c.permanent.to_string())
            .bind(c.expires.to_option())
            .bind(c.key_diversifier.to_string())
            .execute(&mut *conn)
            .await?;
        }
        Effect::Smartcard(c) => {
            sqlx::query("UPDATE smartcards SET status = $1, version = version + 1 WHERE uuid = $2")
                .bind(c.to.number())
                .bind(c.card.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Effect::SealPin { card, sealed } => {
            sqlx::query("UPDATE smartcards SET sealed_pin = $1 WHERE uuid = $2")
                .bind(sealed)
                .bind(card.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Effect::InsertCertificate(c) => {
            sqlx::query(&format!(
                "INSERT INTO certificates ({CERTIFICATE_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ))
            .bind(&c.serial_hex)
            .bind(c.profile.to_string())
            .bind(c.request.to_string())
            .bind(c.user.to_string())
            .bind(&c.template_common_name)
            .bind(&c.der_b64)
            .bind(&c.thumbprint)
            .bind(&c.issuer)
            .bind(&c.subject)
            .bind(c.not_before.micros())
            .bind(c.not_after.micros())
            .bind(c.status.number())
            .bind(c.revoked_at.to_option())
            .bind(c.revocation_reason.map(|r| r.code()))
            .bind(i64::from(c.server_generated))
            .bind(c.sealed_key.clone())
            .execute(&mut *conn)
            .await?;
        }
        Effect::Profile(c) => {
            let flags = if c.superseded {
                opencm_domain::enums::profile_flags::SUPERSEDED
            } else {
                0
            };
            sqlx::query("UPDATE profiles SET status = $1, flags = flags | $2, version = version + 1 WHERE uuid = $3")
                .bind(c.to.number())
                .bind(flags)
                .bind(c.profile.to_string())
                .execute(&mut *conn)
                .await?;
            if let Some(event) = c.certificates {
                change_certificates(conn, c.profile, event, at).await?;
            }
        }
    }
    Ok(())
}

/// Applies `event` to every certificate of `profile` it applies to (the domain's
/// `CertificateStatus::next` says which), mapping the enums to their columns.
async fn change_certificates(
    conn: &mut Conn,
    profile: Guid,
    event: CertificateEvent,
    at: Timestamp,
) -> Result<(), sqlx::Error> {
    let (to, reason) = match event {
        CertificateEvent::Revoke(r) => (CertificateStatus::Revoked, Some(r)),
        CertificateEvent::Hold => (
            CertificateStatus::OnHold,
            Some(RevocationReason::CertificateHold),
        ),
        CertificateEvent::Release => (CertificateStatus::Valid, None),
    };
    let from: Vec<i64> = CertificateStatus::applies_to(event)
        .iter()
        .map(|s| s.number())
        .collect();
    let revoked_at = reason.map(|_| at.micros());
    let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("UPDATE certificates SET status = ");
    qb.push_bind(to.number())
        .push(", revoked_at = ")
        .push_bind(revoked_at)
        .push(", revocation_reason = ")
        .push_bind(reason.map(|r| r.code()))
        .push(" WHERE profile_uuid = ")
        .push_bind(profile.to_string())
        .push(" AND status IN (");
    let mut list = qb.separated(", ");
    for s in from {
        list.push_bind(s);
    }
    qb.push(")");
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

/// Certificates matching `condition` (with one `$1`, bound to `id`).
async fn certificates_where(
    pool: &sqlx::Pool<sqlx::Postgres>,
    condition: &str,
    id: Guid,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let rows: Vec<CertificateRow> = sqlx::query_as(&format!(
        "SELECT {CERTIFICATE_COLUMNS} FROM certificates WHERE {condition}"
    ))
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.into_iter().map(CertificateRow::into_record).collect()
}

async fn exec(conn: &mut Conn, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(&mut *conn).await.map(|_| ())
}

/// Runs `writes` in one transaction. No savepoints are needed: the version-checked UPDATE
/// is each write's first statement, so a conflicting write has written nothing. If any
/// statement fails, the whole transaction is rolled back and `None` is returned.
async fn try_batch(conn: &mut Conn, writes: &[Write]) -> Result<Vec<WriteOutcome>, sqlx::Error> {
    exec(conn, "BEGIN").await?;
    let outcomes = match apply_batch(conn, writes).await {
        Ok(o) => o,
        Err(e) => {
            let _ = exec(conn, "ROLLBACK").await;
            return Err(e);
        }
    };
    if let Err(e) = exec(conn, "COMMIT").await {
        let _ = exec(conn, "ROLLBACK").await;
        return Err(e);
    }
    Ok(outcomes)
}

/// One transaction (one fsync) for the whole batch. When it fails and the batch held more
/// than one write, each write is replayed alone so one bad write cannot fail the others.
async fn run_batch(pool: sqlx::Pool<sqlx::Postgres>, writes: Vec<Write>) -> BatchResult {
    let n = writes.len();
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return fail_all(n, &db_err(e)),
    };
    match try_batch(&mut conn, &writes).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if n == 1 => vec![Err(db_err(e))],
        Err(e) => {
            tracing::warn!(error = %e, writes = n, "group commit failed; replaying its writes one by one");
            let mut results = Vec::with_capacity(n);
            for w in &writes {
                let r = try_batch(&mut conn, std::slice::from_ref(w)).await;
                results.push(r.map(|mut o| o.remove(0)).map_err(db_err));
            }
            results
        }
    }
}

pub(crate) fn batch_fn(pool: sqlx::Pool<sqlx::Postgres>) -> crate::batch::BatchFn {
    std::sync::Arc::new(move |writes| Box::pin(run_batch(pool.clone(), writes)))
}

/// The one row of `sql` (with `$1` bound to `id`: a point read by primary key), converted.
async fn by_uuid<R, T>(
    pool: &sqlx::PgPool,
    sql: &str,
    id: Guid,
    convert: fn(R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    let row: Option<R> = sqlx::query_as(sql)
        .bind(id.to_string())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(convert).transpose()
}

#[async_trait::async_trait]
impl Database for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(migrate_err)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
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

#[async_trait::async_trait]
impl IdentityStore for PgStore {
    async fn add_user(&self, u: &NewUser, now: Timestamp) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        // A user's own SID is never a group's: members of it would act as the user.
        let group: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM user_groups WHERE group_sid = $1) OR EXISTS (SELECT 1 FROM directory_groups WHERE sid = $1)",
        )
        .bind(&u.sid)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        if group {
            return Err(StoreError::Duplicate(format!("a group with SID {}", u.sid)));
        }
        sqlx::query("INSERT INTO users (uuid, login, display_name, sid, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(u.uuid.to_string())
            .bind(&u.login)
            .bind(&u.display_name)
            .bind(&u.sid)
            .bind(now.micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Duplicate(_) => StoreError::Duplicate(format!("a user with login '{}', that uuid or SID", u.login)),
                other => other,
            })?;
        for g in &u.groups {
            sqlx::query("INSERT INTO user_groups (user_uuid, group_sid) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(u.uuid.to_string())
                .bind(g)
                .execute(&mut *tx)
                .await.map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn add_group(&self, name: &str, sid: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO directory_groups (sid, name) VALUES ($1, $2)")
            .bind(sid)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(|e| match db_err(e) {
                StoreError::Duplicate(_) => {
                    StoreError::Duplicate(format!("a group named '{name}' or with SID {sid}"))
                }
                other => other,
            })?;
        Ok(())
    }

    async fn user_by_uuid(&self, id: Guid) -> Result<Option<Principal>, StoreError> {
        let row: Option<UserRow> =
            sqlx::query_as("SELECT uuid, login, display_name, sid FROM users WHERE uuid = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        match row {
            Some(r) => Ok(Some(load_principal(&self.pool, r).await?)),
            None => Ok(None),
        }
    }

    async fn user_by_login(&self, login: &str) -> Result<Option<Principal>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT uuid, login, display_name, sid FROM users WHERE lower(login) = lower($1)",
        )
        .bind(login)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        match row {
            Some(r) => Ok(Some(load_principal(&self.pool, r).await?)),
            None => Ok(None),
        }
    }

    async fn user_disabled(&self, id: Guid) -> Result<bool, StoreError> {
        let d: Option<bool> =
            sqlx::query_scalar("SELECT disabled_at IS NOT NULL FROM users WHERE uuid = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(d.unwrap_or(false))
    }

    async fn first_use(
        &self,
        authenticator: &str,
        expires: Timestamp,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        sqlx::query("DELETE FROM kerberos_replay WHERE expires_at < $1")
            .bind(now.micros())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        // The primary key decides between nodes racing with one token: one insert wins.
        let n = sqlx::query(
            "INSERT INTO kerberos_replay (authenticator, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(authenticator)
        .bind(expires.micros())
        .execute(&self.pool)
        .await
        .map_err(db_err)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn local_user_enabled(&self, id: Guid) -> Result<Option<bool>, StoreError> {
        sqlx::query_scalar("SELECT disabled_at IS NULL FROM users WHERE uuid = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn user_with_sid(&self, sid: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT login FROM users WHERE sid = $1")
            .bind(sid)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?)
    }

    async fn add_token(
        &self,
        hash: &str,
        user: Guid,
        now: Timestamp,
        expires: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_tokens (token_hash, user_uuid, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(user.to_string())
            .bind(now.micros())
            .bind(expires.map(|t| t.micros()))
            .execute(&self.pool)
            .await.map_err(db_err)?;
        Ok(())
    }

    async fn principal_by_token(
        &self,
        hash: &str,
        now: Timestamp,
    ) -> Result<Option<(Principal, Timestamp)>, StoreError> {
        let row: Option<(String, String, String, String, Option<i64>)> = sqlx::query_as(
            "SELECT u.uuid, u.login, u.display_name, u.sid, t.expires_at FROM api_tokens t \
             JOIN users u ON u.uuid = t.user_uuid \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some((uuid, login, display_name, sid, expires)) = row else {
            return Ok(None);
        };
        if expires.is_some_and(|e| e <= now.micros()) {
            return Ok(None);
        }
        let principal = load_principal(
            &self.pool,
            UserRow {
                uuid,
                login,
                display_name,
                sid,
            },
        )
        .await?;
        Ok(Some((principal, Timestamp::from_option(expires))))
    }

    async fn identity_epoch(&self) -> Result<i64, StoreError> {
        let (epoch,): (i64,) = sqlx::query_as("SELECT epoch FROM identity_epoch WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(epoch)
    }

    async fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<(String, String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT t.token_hash, t.user_uuid, u.login, t.created_at, t.expires_at, t.revoked_at \
             FROM api_tokens t JOIN users u ON u.uuid = t.user_uuid ORDER BY t.created_at, t.token_hash",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(crate::rows::token_record).collect()
    }

    async fn change_identity(
        &self,
        change: &IdentityChange,
        event: &AdminEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await.map_err(db_err)?;
        let q = match change {
            IdentityChange::RevokeToken { hash, at } => sqlx::query(
                "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
            )
            .bind(at.micros())
            .bind(hash),
            IdentityChange::DisableUser { user, at } => sqlx::query(
                "UPDATE users SET disabled_at = $1 WHERE uuid = $2 AND disabled_at IS NULL",
            )
            .bind(at.micros())
            .bind(user.to_string()),
            IdentityChange::EnableUser { user } => sqlx::query(
                "UPDATE users SET disabled_at = NULL WHERE uuid = $1 AND disabled_at IS NOT NULL",
            )
            .bind(user.to_string()),
            IdentityChange::AddMember { user, group_sid } => sqlx::query(
                "INSERT INTO user_groups (user_uuid, group_sid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(user.to_string())
            .bind(group_sid),
            IdentityChange::RemoveMember { user, group_sid } => {
                sqlx::query("DELETE FROM user_groups WHERE user_uuid = $1 AND group_sid = $2")
                    .bind(user.to_string())
                    .bind(group_sid)
            }
            IdentityChange::MapCertificate { user, mapping } => sqlx::query(
                "INSERT INTO user_certificate_mappings (user_uuid, mapping) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(user.to_string())
            .bind(mapping),
            IdentityChange::UnmapCertificate { user, mapping } => sqlx::query(
                "DELETE FROM user_certificate_mappings WHERE user_uuid = $1 AND mapping = $2",
            )
            .bind(user.to_string())
            .bind(mapping),
        };
        let n = q.execute(&mut *tx).await.map_err(db_err)?.rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO admin_events (at, actor, action, subject) VALUES ($1, $2, $3, $4)",
        )
        .bind(event.at.micros())
        .bind(&event.actor)
        .bind(event.action)
        .bind(&event.subject)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }
}

#[async_trait::async_trait]
impl SmartcardStore for PgStore {
    async fn smartcard(&self, id: Guid) -> Result<Option<SmartcardRecord>, StoreError> {
        by_uuid(
            &self.pool,
            &format!("SELECT {SMARTCARD_COLUMNS} FROM smartcards WHERE uuid = $1"),
            id,
            SmartcardRow::into_record,
        )
        .await
    }

    async fn smartcards_by_card_id(
        &self,
        card_id: Guid,
    ) -> Result<Vec<SmartcardRecord>, StoreError> {
        let rows: Vec<SmartcardRow> = sqlx::query_as(&format!(
            "SELECT {SMARTCARD_COLUMNS} FROM smartcards WHERE card_id = $1 ORDER BY created_at, uuid"
        ))
        .bind(card_id.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(SmartcardRow::into_record).collect()
    }

    async fn smartcards_of(&self, user: Option<Guid>) -> Result<Vec<SmartcardRecord>, StoreError> {
        let rows: Vec<SmartcardRow> = match user {
            Some(u) => sqlx::query_as(&format!(
                "SELECT {SMARTCARD_COLUMNS} FROM smartcards WHERE assigned_user_uuid = $1 ORDER BY uuid"
            ))
            .bind(u.to_string())
            .fetch_all(&self.pool)
            .await,
            None => sqlx::query_as(&format!(
                "SELECT {SMARTCARD_COLUMNS} FROM smartcards ORDER BY uuid"
            ))
            .fetch_all(&self.pool)
            .await,
        }
        .map_err(db_err)?;
        rows.into_iter().map(SmartcardRow::into_record).collect()
    }

    async fn profiles_of_smartcard(&self, card: Guid) -> Result<Vec<ProfileRecord>, StoreError> {
        let rows: Vec<ProfileRow> = sqlx::query_as(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE smartcard_uuid = $1 \
             AND smartcard_uuid <> '00000000-0000-0000-0000-000000000000' ORDER BY created_at, uuid"
        ))
        .bind(card.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(ProfileRow::into_record).collect()
    }

    async fn sealed_pin(&self, card: Guid) -> Result<Option<String>, StoreError> {
        let row: Option<(Option<String>,)> =
            sqlx::query_as("SELECT sealed_pin FROM smartcards WHERE uuid = $1")
                .bind(card.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(row.and_then(|(p,)| p))
    }

    async fn card_master(&self, version: Option<i64>) -> Result<Option<(i64, String)>, StoreError> {
        match version {
            Some(v) => {
                sqlx::query_as("SELECT version, sealed FROM card_master_keys WHERE version = $1")
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await
            }
            None => {
                sqlx::query_as(
                    "SELECT version, sealed FROM card_master_keys ORDER BY version DESC LIMIT 1",
                )
                .fetch_optional(&self.pool)
                .await
            }
        }
        .map_err(db_err)
    }

    async fn add_card_master(
        &self,
        version: i64,
        sealed: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO card_master_keys (version, sealed, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(version)
        .bind(sealed)
        .bind(now.micros())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait::async_trait]
impl TemplateStore for PgStore {
    async fn put_template(&self, t: &ProfileTemplate, now: Timestamp) -> Result<(), StoreError> {
        let body = serde_json::to_string(t).map_err(StoreError::corrupt)?;
        sqlx::query(
            "INSERT INTO profile_templates (uuid, name, body, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, body = excluded.body, updated_at = excluded.updated_at, revision = profile_templates.revision + 1",
        )
        .bind(t.uuid.to_string())
        .bind(&t.name)
        .bind(body)
        .bind(now.micros())
        .execute(&self.pool)
        .await
        .map_err(|e| match db_err(e) {
            StoreError::Duplicate(_) => StoreError::Duplicate(format!("another profile template named '{}'", t.name)),
            other => other,
        })?;
        Ok(())
    }

    async fn templates(&self) -> Result<Vec<ProfileTemplate>, StoreError> {
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT body FROM profile_templates ORDER BY name")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(StoreError::corrupt))
            .collect()
    }

    async fn template_revision(&self, id: Guid) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar("SELECT revision FROM profile_templates WHERE uuid = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn template(&self, id: Guid) -> Result<Option<StoredTemplate>, StoreError> {
        let row: Option<(i64, String)> =
            sqlx::query_as("SELECT revision, body FROM profile_templates WHERE uuid = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        row.map(|(revision, body)| {
            Ok(StoredTemplate {
                revision,
                template: serde_json::from_str(&body).map_err(StoreError::corrupt)?,
            })
        })
        .transpose()
    }
}

#[async_trait::async_trait]
impl RequestStore for PgStore {
    async fn request(&self, id: Guid) -> Result<Option<Request>, StoreError> {
        by_uuid(
            &self.pool,
            &format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE uuid = $1"),
            id,
            RequestRow::into_domain,
        )
        .await
    }

    async fn list_requests(&self, q: &RequestQuery) -> Result<Vec<Request>, StoreError> {
        // Filters shared by both plans, on `requests` aliased `r`.
        fn filters(qb: &mut sqlx::QueryBuilder<'_, sqlx::Postgres>, q: &RequestQuery) {
            if let Some(t) = q.target {
                qb.push(" AND r.target_uuid = ").push_bind(t.to_string());
            }
            if let Some(s) = q.status {
                qb.push(" AND r.status = ").push_bind(s.number());
            }
        }
        let limit = i64::from(q.limit);
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT {REQUEST_COLUMNS} FROM requests r WHERE "
        ));
        // With a target filter the target index is the narrowest path whoever asks.
        let readers = if q.target.is_some() {
            None
        } else {
            q.reader_sids.as_ref()
        };
        match readers {
            None => {
                // Administrators, or one target's requests: one range scan of the primary
                // key (or of the status or target index), stopping at the limit.
                qb.push("1 = 1");
                if let Some(a) = q.after {
                    qb.push(" AND r.uuid > ").push_bind(a.to_string());
                }
                filters(&mut qb, q);
            }
            Some(sids) if sids.is_empty() => return Ok(Vec::new()),
            Some(sids) => {
                // One range scan of request_readers per SID, each stopping at the limit,
                // then their union: the cost is (SIDs x limit) rows whatever the table
                // size, also for a group that may read every request. (CROSS JOIN makes
                // SQLite drive from request_readers; PostgreSQL plans it as an inner join.)
                qb.push("r.uuid IN (");
                for (i, sid) in sids.iter().enumerate() {
                    if i > 0 {
                        qb.push(" UNION ");
                    }
                    qb.push("SELECT request_uuid FROM (SELECT rr.request_uuid FROM request_readers rr CROSS JOIN requests r WHERE r.uuid = rr.request_uuid AND rr.sid = ");
                    qb.push_bind(sid.clone());
                    if let Some(a) = q.after {
                        qb.push(" AND rr.request_uuid > ").push_bind(a.to_string());
                    }
                    filters(&mut qb, q);
                    qb.push(" ORDER BY rr.request_uuid LIMIT ").push_bind(limit);
                    qb.push(format!(") AS s{i}"));
                }
                qb.push(")");
            }
        }
        qb.push(" ORDER BY r.uuid LIMIT ").push_bind(limit);
        let rows: Vec<RequestRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(RequestRow::into_domain).collect()
    }

    async fn approvals(&self, id: Guid) -> Result<Vec<Approval>, StoreError> {
        let rows: Vec<ApprovalRow> = sqlx::query_as(
            "SELECT request_uuid, approver_uuid, decision, comment, at FROM approvals WHERE request_uuid = $1 ORDER BY at, approver_uuid",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await.map_err(db_err)?;
        rows.into_iter().map(ApprovalRow::into_domain).collect()
    }
}

#[async_trait::async_trait]
impl AuditLog for PgStore {
    async fn history(&self, id: Guid) -> Result<Vec<AuditEvent>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT request_uuid, at, actor_uuid, action, from_status, to_status, detail FROM audit_events \
             WHERE request_uuid = $1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await.map_err(db_err)?;
        rows.into_iter().map(AuditRow::into_domain).collect()
    }
}

#[async_trait::async_trait]
impl CaStore for PgStore {
    async fn ca(&self) -> Result<Option<StoredCa>, StoreError> {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT cert_pem, chain_pem, sealed_key FROM certificate_authorities WHERE id = 'default'")
                .fetch_optional(&self.pool)
                .await.map_err(db_err)?;
        Ok(row.map(|(cert_pem, chain_pem, sealed_key)| StoredCa {
            cert_pem,
            chain_pem,
            sealed_key,
        }))
    }

    async fn init_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<StoredCa, StoreError> {
        sqlx::query(
            "INSERT INTO certificate_authorities (id, cert_pem, chain_pem, sealed_key, created_at) \
             VALUES ('default', $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&ca.cert_pem)
        .bind(&ca.chain_pem)
        .bind(&ca.sealed_key)
        .bind(now.micros())
        .execute(&self.pool)
        .await.map_err(db_err)?;
        self.ca()
            .await?
            .ok_or_else(|| StoreError::Database("the CA row vanished".into()))
    }

    async fn replace_ca(&self, ca: &StoredCa, now: Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO certificate_authorities (id, cert_pem, chain_pem, sealed_key, created_at) \
             VALUES ('default', $1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET cert_pem = excluded.cert_pem, \
             chain_pem = excluded.chain_pem, sealed_key = excluded.sealed_key, created_at = excluded.created_at",
        )
        .bind(&ca.cert_pem)
        .bind(&ca.chain_pem)
        .bind(&ca.sealed_key)
        .bind(now.micros())
        .execute(&self.pool)
        .await.map_err(db_err)?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl ProfileStore for PgStore {
    async fn profile(&self, id: Guid) -> Result<Option<ProfileRecord>, StoreError> {
        by_uuid(
            &self.pool,
            &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE uuid = $1"),
            id,
            ProfileRow::into_record,
        )
        .await
    }

    async fn profiles(&self, q: &ProfileQuery) -> Result<Vec<ProfileRecord>, StoreError> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE 1 = 1"
        ));
        if let Some(u) = q.user {
            qb.push(" AND assigned_user_uuid = ")
                .push_bind(u.to_string());
        }
        if let Some(s) = q.status {
            qb.push(" AND status = ").push_bind(s.number());
        }
        if let Some(a) = q.after {
            qb.push(" AND uuid > ").push_bind(a.to_string());
        }
        qb.push(" ORDER BY uuid LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows: Vec<ProfileRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.into_iter().map(ProfileRow::into_record).collect()
    }

    async fn profiles_of_request(&self, request: Guid) -> Result<Vec<ProfileRecord>, StoreError> {
        let rows: Vec<ProfileRow> = sqlx::query_as(&format!(
            "SELECT {PROFILE_COLUMNS} FROM profiles WHERE request_uuid = $1 ORDER BY uuid"
        ))
        .bind(request.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.into_iter().map(ProfileRow::into_record).collect()
    }
}

#[async_trait::async_trait]
impl CertificateStore for PgStore {
    async fn revoked_certificates(&self) -> Result<Vec<RevokedCertificate>, StoreError> {
        let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE status <> 0 ORDER BY serial",
        )
        .fetch_all(&self.pool)
        .await.map_err(db_err)?;
        Ok(rows
            .into_iter()
            .map(|(serial_hex, at, reason)| RevokedCertificate {
                serial_hex,
                revoked_at: Timestamp::from_micros(at.unwrap_or(0)),
                reason: reason
                    .and_then(RevocationReason::from_code)
                    .unwrap_or(RevocationReason::Unspecified),
            })
            .collect())
    }

    async fn certificates_of_profile(
        &self,
        profile: Guid,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        certificates_where(&self.pool, "profile_uuid = $1 ORDER BY serial", profile).await
    }

    async fn has_certificates(&self, profile: Guid) -> Result<bool, StoreError> {
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM certificates WHERE profile_uuid = $1 LIMIT 1")
                .bind(profile.to_string())
                .fetch_optional(&self.pool)
                .await
                .map_err(db_err)?;
        Ok(found.is_some())
    }

    async fn certificates_of_user(&self, user: Guid) -> Result<Vec<CertificateRecord>, StoreError> {
        certificates_where(
            &self.pool,
            "user_uuid = $1 ORDER BY not_before DESC, serial",
            user,
        )
        .await
    }
}

#[async_trait::async_trait]
impl Transactions for PgStore {
    async fn write(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        self.batcher.submit(w).await
    }
}
