//! One group commit on SQLite: every write of the batch in one `BEGIN IMMEDIATE` transaction,
//! each write's statements run from the connection's prepared-statement cache. The rules are those
//! of the PostgreSQL batch: only the first write per request (and per profile) competes; a write
//! whose request version, or the version of any profile it decided on, no longer matches is
//! `Conflict` and writes nothing; effects, approvals and audit events follow only for the writes
//! that won.

use crate::batch::guarded_rows;
use crate::error::sqlite_err;
use crate::sql::{self, Arg};
use opencm_app::ports::{Effect, StoreError, Write, WriteOutcome};
use rusqlite::{params_from_iter, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::HashSet;

/// Applies a batch; when its transaction fails and it held more than one write, each write is
/// replayed alone so one bad write cannot fail the others.
pub(crate) fn run(
    conn: &mut Connection,
    writes: &[Write],
) -> Vec<Result<WriteOutcome, StoreError>> {
    match in_transaction(conn, writes) {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) if writes.len() == 1 => vec![Err(e)],
        Err(e) => {
            tracing::warn!(error = %e, writes = writes.len(), "group commit failed; replaying its writes one by one");
            writes
                .iter()
                .map(|w| in_transaction(conn, std::slice::from_ref(w)).map(|mut o| o.remove(0)))
                .collect()
        }
    }
}

fn in_transaction(
    conn: &mut Connection,
    writes: &[Write],
) -> Result<Vec<WriteOutcome>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let outcomes = apply(&tx, writes).map_err(sqlite_err)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(outcomes)
}

fn apply(tx: &Transaction<'_>, writes: &[Write]) -> rusqlite::Result<Vec<WriteOutcome>> {
    let mut outcomes = vec![WriteOutcome::Done; writes.len()];
    for w in writes {
        if let Write::Create {
            request: r,
            outbox,
            secret,
            event,
        } = w
        {
            exec(tx, sql::requests::INSERT, sql::requests::insert_args(r))?;
            for reader in sql::requests::reader_args(r) {
                exec(tx, sql::requests::INSERT_READER, reader)?;
            }
            for row in outbox {
                exec(tx, sql::outbox::INSERT, sql::outbox::insert_args(row))?;
            }
            if let Some(c) = secret {
                for step in sql::effects::steps(&Effect::Secret(c.clone()), event.at) {
                    exec(tx, step.sql, step.args)?;
                }
            }
        }
    }
    // Only the first write per request competes; later ones in the batch were decided on the
    // same version and lose, exactly as they would in a later transaction.
    let mut seen = HashSet::new();
    for (i, w) in writes.iter().enumerate() {
        if let Write::Update { request, .. } = w {
            if !seen.insert(request.uuid) {
                outcomes[i] = WriteOutcome::Conflict;
            }
        }
    }
    check_versions(tx, writes, &mut outcomes)?;
    for (i, w) in writes.iter().enumerate() {
        let Write::Update { request: r, .. } = w else {
            continue;
        };
        if outcomes[i] == WriteOutcome::Done
            && exec(tx, sql::requests::UPDATE, sql::requests::update_args(r))? == 0
        {
            outcomes[i] = WriteOutcome::Conflict;
        }
    }
    for (w, o) in writes.iter().zip(&outcomes) {
        if *o != WriteOutcome::Done {
            continue;
        }
        let event = match w {
            Write::Create { event, .. } => event,
            Write::Update {
                event,
                approval,
                effects,
                ..
            } => {
                if let Some(a) = approval {
                    exec(
                        tx,
                        sql::requests::INSERT_APPROVAL,
                        sql::requests::approval_args(a),
                    )?;
                }
                for e in effects {
                    for step in sql::effects::steps(e, event.at) {
                        exec(tx, step.sql, step.args)?;
                    }
                }
                event
            }
        };
        exec(
            tx,
            sql::requests::INSERT_EVENT,
            sql::requests::event_args(event),
        )?;
    }
    Ok(outcomes)
}

/// One statement from the connection's cache; the rows it changed.
fn exec(tx: &Transaction<'_>, sql: &str, args: Vec<Arg>) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(params_from_iter(args))
}

/// The profiles and cards the batch's updates decided on must still have the versions read; only
/// the first write per row competes. The writer holds SQLite's write lock (`BEGIN IMMEDIATE`), so
/// no other writer can change them before this transaction commits.
fn check_versions(
    tx: &Transaction<'_>,
    writes: &[Write],
    outcomes: &mut [WriteOutcome],
) -> rusqlite::Result<()> {
    let mut claimed = HashSet::new();
    for (i, w) in writes.iter().enumerate() {
        if outcomes[i] != WriteOutcome::Done {
            continue;
        }
        let mine = guarded_rows(w);
        if mine.iter().any(|(row, _)| claimed.contains(row)) {
            outcomes[i] = WriteOutcome::Conflict;
            continue;
        }
        for (row, expected) in &mine {
            let current: Option<i64> = tx
                .prepare_cached(row.version_sql())?
                .query_row([row.id().to_string()], |r| r.get("version"))
                .optional()?;
            if current != Some(*expected) {
                outcomes[i] = WriteOutcome::Conflict;
            }
        }
        if outcomes[i] == WriteOutcome::Done {
            claimed.extend(mine.into_iter().map(|(row, _)| row));
        }
    }
    Ok(())
}
