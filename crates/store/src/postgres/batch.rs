//! One group commit on PostgreSQL: the writes waiting at one moment in one transaction, with a
//! fixed number of statements whatever the batch's size — one multi-row INSERT for new requests
//! and one for their readers, one `UPDATE … FROM (VALUES …) RETURNING` for every version-checked
//! update, one multi-row INSERT each for the approvals and audit events of the writes that won
//! (each statement is a round trip to the database). Their columns and values are those of the
//! single-row statements in `sql/`; only the multi-row forms are PostgreSQL's own.

use super::{bind, db_err};
use crate::batch::{fail_all, guarded_rows, BatchResult, Guarded};
use crate::sql::{self, Arg};
use opencm_app::ports::{Write, WriteOutcome};
use opencm_domain::request::{Approval, AuditEvent, Request};
use opencm_domain::Guid;
use sqlx::query_builder::Separated;
use sqlx::{Postgres, QueryBuilder};

type Conn = <Postgres as sqlx::Database>::Connection;

/// The `INSERT INTO table (columns)` of a single-row statement, for its multi-row form.
fn head(insert: &str) -> &str {
    insert.split(" VALUES (").next().unwrap_or(insert)
}

fn push_arg(row: &mut Separated<'_, '_, Postgres, &'static str>, a: Arg) {
    match a {
        Arg::Text(v) => row.push_bind(v),
        Arg::Int(v) => row.push_bind(v),
        Arg::OptText(v) => row.push_bind(v),
        Arg::OptInt(v) => row.push_bind(v),
    };
}

/// One multi-row INSERT of `rows` (each the values of `insert`'s single row), then `tail`.
async fn insert_rows(
    conn: &mut Conn,
    insert: &str,
    rows: Vec<Vec<Arg>>,
    tail: &str,
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut qb = QueryBuilder::<Postgres>::new(format!("{} ", head(insert)));
    qb.push_values(rows, |mut row, values| {
        for v in values {
            push_arg(&mut row, v);
        }
    });
    qb.push(tail);
    qb.build().execute(&mut *conn).await?;
    Ok(())
}

async fn apply(conn: &mut Conn, writes: &[Write]) -> Result<Vec<WriteOutcome>, sqlx::Error> {
    let mut outcomes = vec![WriteOutcome::Done; writes.len()];
    let creates: Vec<&Request> = writes
        .iter()
        .filter_map(|w| match w {
            Write::Create { request, .. } => Some(request),
            _ => None,
        })
        .collect();
    insert_rows(
        conn,
        sql::requests::INSERT,
        creates
            .iter()
            .map(|r| sql::requests::insert_args(r))
            .collect(),
        "",
    )
    .await?;
    insert_rows(
        conn,
        sql::requests::INSERT_READER,
        creates
            .iter()
            .flat_map(|r| sql::requests::reader_args(r))
            .collect(),
        " ON CONFLICT DO NOTHING",
    )
    .await?;
    insert_rows(
        conn,
        sql::outbox::INSERT,
        writes
            .iter()
            .flat_map(|w| match w {
                Write::Create { outbox, .. } => outbox.as_slice(),
                _ => &[],
            })
            .map(sql::outbox::insert_args)
            .collect(),
        "",
    )
    .await?;
    // A request approved at creation under a policy with a one-time password: its secret (rare:
    // one statement each).
    for w in writes {
        if let Write::Create {
            secret: Some(c),
            event,
            ..
        } = w
        {
            let e = opencm_app::ports::Effect::Secret(c.clone());
            for step in sql::effects::steps(&e, event.at) {
                bind(sqlx::query(step.sql), step.args)
                    .execute(&mut *conn)
                    .await?;
            }
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
    let won = update_requests(conn, &updates).await?;
    for (i, r) in &updates {
        if !won.contains(&r.uuid.to_string()) {
            outcomes[*i] = WriteOutcome::Conflict;
        }
    }
    let done: Vec<&Write> = writes
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == WriteOutcome::Done)
        .map(|(w, _)| w)
        .collect();
    let approvals: Vec<&Approval> = done
        .iter()
        .filter_map(|w| match w {
            Write::Update {
                approval: Some(a), ..
            } => Some(a),
            _ => None,
        })
        .collect();
    insert_rows(
        conn,
        sql::requests::INSERT_APPROVAL,
        approvals
            .into_iter()
            .map(sql::requests::approval_args)
            .collect(),
        "",
    )
    .await?;
    for w in &done {
        if let Write::Update { effects, event, .. } = w {
            for e in effects {
                for step in sql::effects::steps(e, event.at) {
                    bind(sqlx::query(step.sql), step.args)
                        .execute(&mut *conn)
                        .await?;
                }
            }
        }
    }
    let events: Vec<&AuditEvent> = done
        .iter()
        .map(|w| match w {
            Write::Create { event, .. } | Write::Update { event, .. } => event,
        })
        .collect();
    insert_rows(
        conn,
        sql::requests::INSERT_EVENT,
        events.into_iter().map(sql::requests::event_args).collect(),
        "",
    )
    .await?;
    Ok(outcomes)
}

/// `sql::requests::UPDATE` for many requests at once: the rows that still had the version read
/// are updated; the uuids of those returned.
async fn update_requests(
    conn: &mut Conn,
    updates: &[(usize, &Request)],
) -> Result<std::collections::HashSet<String>, sqlx::Error> {
    if updates.is_empty() {
        return Ok(Default::default());
    }
    let set: Vec<String> = sql::requests::UPDATED
        .iter()
        .enumerate()
        .map(|(i, column)| format!("{column} = v.column{}", i + 1))
        .collect();
    let (uuid, version) = (set.len() + 1, set.len() + 2);
    let mut qb = QueryBuilder::<Postgres>::new(format!(
        "UPDATE requests SET {}, version = requests.version + 1 FROM (",
        set.join(", ")
    ));
    qb.push_values(updates.iter(), |mut row, (_, r)| {
        // Typed: the VALUES list has no table column to take its types from.
        for a in sql::requests::update_args(r) {
            let ty = match a {
                Arg::Text(_) | Arg::OptText(_) => " AS TEXT)",
                Arg::Int(_) | Arg::OptInt(_) => " AS BIGINT)",
            };
            row.push("CAST(");
            match a {
                Arg::Text(v) => row.push_bind_unseparated(v),
                Arg::Int(v) => row.push_bind_unseparated(v),
                Arg::OptText(v) => row.push_bind_unseparated(v),
                Arg::OptInt(v) => row.push_bind_unseparated(v),
            };
            row.push_unseparated(ty);
        }
    });
    qb.push(format!(
        ") AS v WHERE requests.uuid = v.column{uuid} AND requests.version = v.column{version} \
         RETURNING requests.uuid"
    ));
    Ok(qb
        .build_query_scalar::<String>()
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect())
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
        (
            "profiles",
            (|g: Guid| Guarded::Profile(g.into())) as fn(Guid) -> Guarded,
        ),
        (
            "smartcards",
            (|g: Guid| Guarded::Smartcard(g.into())) as fn(Guid) -> Guarded,
        ),
    ] {
        let ids: Vec<String> = claimed
            .keys()
            .filter(|row| row.table() == table)
            .map(|row| row.id().to_string())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let mut qb = QueryBuilder::<Postgres>::new(format!(
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

async fn exec(conn: &mut Conn, sql: &str) -> Result<(), sqlx::Error> {
    sqlx::query(sql).execute(&mut *conn).await.map(|_| ())
}

/// Runs `writes` in one transaction. No savepoints are needed: the version-checked UPDATE
/// is each write's first statement, so a conflicting write has written nothing. If any
/// statement fails, the whole transaction is rolled back.
async fn try_batch(conn: &mut Conn, writes: &[Write]) -> Result<Vec<WriteOutcome>, sqlx::Error> {
    exec(conn, "BEGIN").await?;
    let outcomes = match apply(conn, writes).await {
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
async fn run_batch(pool: sqlx::Pool<Postgres>, writes: Vec<Write>) -> BatchResult {
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

pub(crate) fn batch_fn(pool: sqlx::Pool<Postgres>) -> crate::batch::BatchFn {
    std::sync::Arc::new(move |writes| Box::pin(run_batch(pool.clone(), writes)))
}
