//! One group commit on SQLite: every write of the batch in one `BEGIN IMMEDIATE` transaction,
//! each write's statements run from the connection's prepared-statement cache. The rules are those
//! of the PostgreSQL batch: only the first write per request (and per profile) competes; a write
//! whose request version, or the version of any profile it decided on, no longer matches is
//! `Conflict` and writes nothing; effects, approvals and audit events follow only for the writes
//! that won.

use crate::batch::guarded_rows;
use crate::error::sqlite_err;
use crate::rows::{
    data_collection_json, CERTIFICATE_COLUMNS, PROFILE_COLUMNS, REQUEST_COLUMNS, SMARTCARD_COLUMNS,
};
use opencm_app::ports::{Effect, StoreError, Write, WriteOutcome};
use opencm_domain::enums::profile_flags;
use opencm_domain::issued::{CertificateEvent, CertificateStatus, RevocationReason};
use opencm_domain::request::Request;
use opencm_domain::{Guid, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
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
        if let Write::Create { request: r, .. } = w {
            insert_request(tx, r)?;
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
    let mut update = tx.prepare_cached(
        "UPDATE requests SET status = ?1, flags = ?2, data_collection = ?3, data_collection_flags = ?4, \
         completed = ?5, new_profile_uuid = ?6, old_profile_uuid = ?7, new_smartcard_uuid = ?8, \
         old_smartcard_uuid = ?9, priority = ?10, comment = ?11, version = version + 1 \
         WHERE uuid = ?12 AND version = ?13",
    )?;
    for (i, w) in writes.iter().enumerate() {
        let Write::Update { request: r, .. } = w else {
            continue;
        };
        if outcomes[i] != WriteOutcome::Done {
            continue;
        }
        let n = update.execute(params![
            r.status.number(),
            r.flags.0,
            data_collection_json(r),
            r.data_collection_flags,
            r.completed.to_option(),
            r.new_profile.to_string(),
            r.old_profile.to_string(),
            r.new_smartcard.to_string(),
            r.old_smartcard.to_string(),
            i64::from(r.priority),
            r.comment,
            r.uuid.to_string(),
            r.version,
        ])?;
        if n == 0 {
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
                    tx.prepare_cached(
                        "INSERT INTO approvals (request_uuid, approver_uuid, decision, comment, at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        a.request.to_string(),
                        a.approver.to_string(),
                        a.decision.name(),
                        a.comment,
                        a.at.micros()
                    ])?;
                }
                for e in effects {
                    apply_effect(tx, e, event.at)?;
                }
                event
            }
        };
        tx.prepare_cached(
            "INSERT INTO audit_events (request_uuid, at, actor_uuid, action, from_status, to_status, detail) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            event.request.to_string(),
            event.at.micros(),
            event.actor.to_string(),
            event.action,
            event.from.number(),
            event.to.number(),
            event.detail
        ])?;
    }
    Ok(outcomes)
}

fn insert_request(tx: &Transaction<'_>, r: &Request) -> rusqlite::Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO requests ({REQUEST_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    ))?
    .execute(params![
        r.uuid.to_string(),
        r.request_type.number(),
        r.status.number(),
        r.flags.0,
        data_collection_json(r),
        r.data_collection_flags,
        r.originator.to_string(),
        r.target.to_string(),
        r.submitted.micros(),
        r.completed.to_option(),
        r.new_profile.to_string(),
        r.old_profile.to_string(),
        r.new_smartcard.to_string(),
        r.old_smartcard.to_string(),
        i64::from(r.priority),
        r.comment,
        r.profile_template.to_string(),
        r.security_descriptor.to_string(),
        r.version,
    ])?;
    let mut readers = tx.prepare_cached(
        "INSERT INTO request_readers (sid, request_uuid) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    for sid in r.reader_sids() {
        readers.execute(params![sid.as_str(), r.uuid.to_string()])?;
    }
    Ok(())
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
            let (table, id) = row.table();
            let current: Option<i64> = tx
                .prepare_cached(&format!("SELECT version FROM {table} WHERE uuid = ?1"))?
                .query_row([id.to_string()], |r| r.get(0))
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

fn apply_effect(tx: &Transaction<'_>, e: &Effect, at: Timestamp) -> rusqlite::Result<()> {
    match e {
        Effect::InsertProfile(p) => {
            tx.prepare_cached(&format!(
                "INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ))?
            .execute(params![
                p.uuid.to_string(),
                p.status.number(),
                p.flags,
                p.parent.to_string(),
                p.primary.to_string(),
                p.assigned_user.to_string(),
                p.template.to_string(),
                p.template_version,
                p.comment,
                p.request.to_string(),
                p.created.micros(),
                p.version,
                p.smartcard.to_string(),
            ])?;
        }
        Effect::InsertSmartcard(c) => {
            tx.prepare_cached(&format!(
                "INSERT INTO smartcards ({SMARTCARD_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
            ))?
            .execute(params![
                c.uuid.to_string(),
                c.status.number(),
                c.flags,
                c.card_id.to_string(),
                c.atr,
                c.middleware,
                c.assigned_user.to_string(),
                c.template.to_string(),
                c.template_version,
                c.request.to_string(),
                c.comment,
                c.created.micros(),
                c.version,
                c.key_version,
                c.parent.to_string(),
                c.primary.to_string(),
                c.permanent.to_string(),
                c.expires.to_option(),
                c.key_diversifier.to_string(),
            ])?;
        }
        Effect::Smartcard(c) => {
            tx.prepare_cached(
                "UPDATE smartcards SET status = ?1, version = version + 1 WHERE uuid = ?2",
            )?
            .execute(params![c.to.number(), c.card.to_string()])?;
        }
        Effect::SealPin { card, sealed } => {
            tx.prepare_cached("UPDATE smartcards SET sealed_pin = ?1 WHERE uuid = ?2")?
                .execute(params![sealed, card.to_string()])?;
        }
        Effect::InsertCertificate(c) => {
            tx.prepare_cached(&format!(
                "INSERT INTO certificates ({CERTIFICATE_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))?
            .execute(params![
                c.serial_hex,
                c.profile.to_string(),
                c.request.to_string(),
                c.user.to_string(),
                c.template_common_name,
                c.der_b64,
                c.thumbprint,
                c.issuer,
                c.subject,
                c.not_before.micros(),
                c.not_after.micros(),
                c.status.number(),
                c.revoked_at.to_option(),
                c.revocation_reason.map(|r| r.code()),
                i64::from(c.server_generated),
                c.sealed_key,
            ])?;
        }
        Effect::Profile(c) => {
            let flags = if c.superseded {
                profile_flags::SUPERSEDED
            } else {
                0
            };
            tx.prepare_cached(
                "UPDATE profiles SET status = ?1, flags = flags | ?2, version = version + 1 WHERE uuid = ?3",
            )?
            .execute(params![c.to.number(), flags, c.profile.to_string()])?;
            if let Some(event) = c.certificates {
                change_certificates(tx, c.profile, event, at)?;
            }
        }
    }
    Ok(())
}

/// Applies `event` to every certificate of `profile` it applies to (the domain's
/// `CertificateStatus::next` says which), mapping the enums to their columns.
fn change_certificates(
    tx: &Transaction<'_>,
    profile: Guid,
    event: CertificateEvent,
    at: Timestamp,
) -> rusqlite::Result<()> {
    let (to, reason) = match event {
        CertificateEvent::Revoke(r) => (CertificateStatus::Revoked, Some(r)),
        CertificateEvent::Hold => (
            CertificateStatus::OnHold,
            Some(RevocationReason::CertificateHold),
        ),
        CertificateEvent::Release => (CertificateStatus::Valid, None),
    };
    let mut st = tx.prepare_cached(
        "UPDATE certificates SET status = ?1, revoked_at = ?2, revocation_reason = ?3 \
         WHERE profile_uuid = ?4 AND status = ?5",
    )?;
    for from in CertificateStatus::applies_to(event) {
        st.execute(params![
            to.number(),
            reason.map(|_| at.micros()),
            reason.map(|r| r.code()),
            profile.to_string(),
            from.number()
        ])?;
    }
    Ok(())
}
