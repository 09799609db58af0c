//! The transactional outbox: rows written with the change they announce, claimed by a
//! dispatcher under a lease, finished (delivered, retried later, dead), replayed; the log of
//! every try; the expiry warnings already given.
//!
//! **Claiming is one statement on both engines.** `CLAIM` leases the due rows of the inner
//! SELECT and repeats the due conditions in its outer WHERE. On PostgreSQL two nodes claiming at
//! once both pick the same rows in the inner SELECT, but the second `UPDATE` waits on the first's
//! row locks and then re-evaluates the outer WHERE on the row as the first left it (READ
//! COMMITTED's recheck): its lease is now in the future, so the second claims nothing of it. On
//! SQLite the single writer serializes claims. A lease that runs out (its node died mid-delivery)
//! makes the row claimable again: delivery is at least once, under the same event id.

use super::{Arg, Columns};
use opencm_app::ports::{OutboxAttempt, StoreError};
use opencm_domain::notification::{EventType, OutboxRow, OutboxState};
use opencm_domain::Timestamp;

/// A new row, not leased (every column bound: PostgreSQL's group commit writes many in one
/// multi-row INSERT).
pub(crate) const INSERT: &str = "INSERT INTO outbox (id, event_id, event, channel, payload, \
     created, state, attempts, next_at, last_error, finished) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

pub(crate) fn insert_args(r: &OutboxRow) -> Vec<Arg> {
    super::args![
        r.id,
        r.event_id,
        r.event.name(),
        &r.channel,
        &r.payload,
        r.created.micros(),
        r.state.number(),
        r.attempts,
        r.next_at.micros(),
        &r.last_error,
        r.finished,
    ]
}

/// Leases up to $4 due rows to node $1 until $2 (the claim's token: its rows are read back by
/// it), at $3.
pub(crate) const CLAIM: &str = "UPDATE outbox SET lease_owner = $1, lease_until = $2 \
     WHERE state = 0 AND next_at <= $3 AND lease_until <= $3 AND id IN (\
     SELECT id FROM outbox WHERE state = 0 AND next_at <= $3 AND lease_until <= $3 \
     ORDER BY next_at, id LIMIT $4)";

/// The rows one claim leased.
pub(crate) const CLAIMED: &str = "SELECT id, event_id, event, channel, payload, created, state, \
     attempts, next_at, last_error, finished FROM outbox \
     WHERE lease_owner = $1 AND lease_until = $2 AND state = 0 ORDER BY next_at, id";

/// A try's outcome, when node $7 still holds the row's lease: its state, when it is next due,
/// the error, when it finished.
pub(crate) const FINISH: &str = "UPDATE outbox SET state = $1, attempts = attempts + 1, \
     next_at = $2, last_error = $3, finished = $4, lease_owner = NULL, lease_until = 0 \
     WHERE id = $5 AND state = $6 AND lease_owner = $7";

pub(crate) const INSERT_ATTEMPT: &str =
    "INSERT INTO outbox_attempts (outbox_id, at, node, outcome, detail) VALUES ($1, $2, $3, $4, $5)";

pub(crate) const ATTEMPTS: &str = "SELECT outbox_id, at, node, outcome, detail \
     FROM outbox_attempts WHERE outbox_id = $1 ORDER BY at";

pub(crate) const ROW: &str = "SELECT id, event_id, event, channel, payload, created, state, \
     attempts, next_at, last_error, finished FROM outbox WHERE id = $1";

/// Newest first, in one state ($1) or all ($1 < 0), older than ($2, $3) when paging.
pub(crate) const LIST: &str = "SELECT id, event_id, event, channel, payload, created, state, \
     attempts, next_at, last_error, finished FROM outbox \
     WHERE ($1 < 0 OR state = $1) AND (created < $2 OR (created = $2 AND id < $3)) \
     ORDER BY created DESC, id DESC LIMIT $4";

/// A dead row due again at $1, its tries counted afresh.
pub(crate) const REPLAY: &str = "UPDATE outbox SET state = 0, attempts = 0, next_at = $1, \
     last_error = NULL, finished = NULL, lease_owner = NULL, lease_until = 0 \
     WHERE id = $2 AND state = 2";

pub(crate) const COUNTS: &str =
    "SELECT state, COUNT(*) AS n FROM outbox GROUP BY state ORDER BY state";

/// A threshold's warning for a certificate, unless it was given (1 row when this call gives it).
pub(crate) const WARN_EXPIRY: &str =
    "INSERT INTO expiry_warnings (serial, days, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

pub(crate) fn decode(r: &dyn Columns) -> Result<OutboxRow, StoreError> {
    let event = r.text("event")?;
    let state = r.int("state")?;
    Ok(OutboxRow {
        id: r.guid("id")?,
        event_id: r.guid("event_id")?,
        event: EventType::parse(&event).ok_or_else(|| StoreError::corrupt(&event))?,
        channel: r.text("channel")?,
        payload: r.text("payload")?,
        created: Timestamp::from_micros(r.int("created")?),
        state: OutboxState::from_number(state).ok_or_else(|| StoreError::corrupt(state))?,
        attempts: r.int("attempts")?,
        next_at: Timestamp::from_micros(r.int("next_at")?),
        last_error: r.opt_text("last_error")?,
        finished: r.opt_time("finished")?,
    })
}

pub(crate) fn decode_attempt(r: &dyn Columns) -> Result<OutboxAttempt, StoreError> {
    Ok(OutboxAttempt {
        at: Timestamp::from_micros(r.int("at")?),
        node: r.text("node")?,
        outcome: r.text("outcome")?,
        detail: r.text("detail")?,
    })
}
