//! Requests, who may read them, their approvals and their audit events.

use super::{Arg, Columns, Numbered};
use crate::rows::{data_collection, data_collection_json, descriptor};
use opencm_app::ports::{RequestQuery, StoreError};
use opencm_domain::request::{Approval, AuditEvent, Decision, Request};
use opencm_domain::{RequestFlags, RequestStatus, RequestType, Timestamp};

macro_rules! columns {
    () => {
        "uuid, request_type, status, flags, data_collection, data_collection_flags, \
         originator_uuid, target_uuid, submitted, completed, new_profile_uuid, old_profile_uuid, \
         new_smartcard_uuid, old_smartcard_uuid, priority, comment, profile_template_uuid, \
         security_descriptor, version, secret_required"
    };
}

pub(crate) const BY_UUID: &str = concat!("SELECT ", columns!(), " FROM requests WHERE uuid = $1");

pub(crate) const INSERT: &str = concat!(
    "INSERT INTO requests (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
);

/// Who may read a request: its reader SIDs, for listing.
pub(crate) const INSERT_READER: &str =
    "INSERT INTO request_readers (sid, request_uuid) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// What a transition changes, if the request still has the version it was decided on.
pub(crate) const UPDATE: &str =
    "UPDATE requests SET status = $1, flags = $2, data_collection = $3, data_collection_flags = $4, \
     completed = $5, new_profile_uuid = $6, old_profile_uuid = $7, new_smartcard_uuid = $8, \
     old_smartcard_uuid = $9, priority = $10, comment = $11, secret_required = $12, \
     version = version + 1 WHERE uuid = $13 AND version = $14";

/// The SET columns of `UPDATE`, in the order of `update_args` (its last two values are the uuid
/// and the version read).
pub(crate) const UPDATED: [&str; 12] = [
    "status",
    "flags",
    "data_collection",
    "data_collection_flags",
    "completed",
    "new_profile_uuid",
    "old_profile_uuid",
    "new_smartcard_uuid",
    "old_smartcard_uuid",
    "priority",
    "comment",
    "secret_required",
];

pub(crate) fn insert_args(r: &Request) -> Vec<Arg> {
    super::args![
        r.uuid,
        r.request_type.number(),
        r.status.number(),
        r.flags.0,
        data_collection_json(r),
        r.data_collection_flags,
        r.originator,
        r.target,
        r.submitted.micros(),
        r.completed,
        r.new_profile,
        r.old_profile,
        r.new_smartcard,
        r.old_smartcard,
        i64::from(r.priority),
        &r.comment,
        r.profile_template,
        r.security_descriptor.to_string(),
        r.version,
        i64::from(r.secret_required),
    ]
}

pub(crate) fn reader_args(r: &Request) -> Vec<Vec<Arg>> {
    r.reader_sids()
        .into_iter()
        .map(|sid| super::args![sid.as_str(), r.uuid])
        .collect()
}

pub(crate) fn update_args(r: &Request) -> Vec<Arg> {
    super::args![
        r.status.number(),
        r.flags.0,
        data_collection_json(r),
        r.data_collection_flags,
        r.completed,
        r.new_profile,
        r.old_profile,
        r.new_smartcard,
        r.old_smartcard,
        i64::from(r.priority),
        &r.comment,
        i64::from(r.secret_required),
        r.uuid,
        r.version,
    ]
}

pub(crate) fn decode(r: &dyn Columns) -> Result<Request, StoreError> {
    let number = |name: &str| r.int(name);
    let request_type = number("request_type")?;
    let status = number("status")?;
    Ok(Request {
        uuid: r.guid("uuid")?.into(),
        request_type: RequestType::from_number(request_type)
            .ok_or_else(|| StoreError::corrupt(format!("request type {request_type}")))?,
        status: RequestStatus::from_number(status)
            .ok_or_else(|| StoreError::corrupt(format!("request status {status}")))?,
        flags: RequestFlags(number("flags")?),
        data_collection: data_collection(&r.text("data_collection")?)?,
        data_collection_flags: number("data_collection_flags")?,
        originator: r.guid("originator_uuid")?.into(),
        target: r.guid("target_uuid")?.into(),
        submitted: Timestamp::from_micros(number("submitted")?),
        completed: r.opt_time("completed")?,
        new_profile: r.nullable_guid("new_profile_uuid")?.map(Into::into),
        old_profile: r.nullable_guid("old_profile_uuid")?.map(Into::into),
        new_smartcard: r.nullable_guid("new_smartcard_uuid")?.map(Into::into),
        old_smartcard: r.nullable_guid("old_smartcard_uuid")?.map(Into::into),
        priority: u8::try_from(number("priority")?).map_err(StoreError::corrupt)?,
        comment: r.text("comment")?,
        profile_template: r.guid("profile_template_uuid")?.into(),
        security_descriptor: descriptor(&r.text("security_descriptor")?)?,
        version: number("version")?,
        secret_required: number("secret_required")? != 0,
    })
}

/// A page of requests for `GET /requests`; `None` when the caller may read none.
///
/// Without reader SIDs (administrators) or with a target filter (the target index is the
/// narrowest path whoever asks): one range scan of the primary key, or of the status or target
/// index, stopping at the limit. With reader SIDs: one range scan of `request_readers` per SID,
/// each stopping at the limit, then their union — the cost is (SIDs × limit) rows whatever the
/// table's size, also for a group that may read every request. (`CROSS JOIN` makes SQLite drive
/// from `request_readers`; PostgreSQL plans it as an inner join.)
pub(crate) fn list(q: &RequestQuery) -> Option<Numbered> {
    let filters = |s: &mut Numbered| {
        if let Some(t) = q.target {
            s.push(" AND r.target_uuid = ").bind(t);
        }
        if let Some(status) = q.status {
            s.push(" AND r.status = ").bind(status.number());
        }
    };
    let limit = i64::from(q.limit);
    let (after, order) = match q.newest_first {
        false => (" > ", ""),
        true => (" < ", " DESC"),
    };
    let mut s = Numbered::new(concat!("SELECT ", columns!(), " FROM requests r WHERE "));
    let readers = if q.target.is_some() {
        None
    } else {
        q.reader_sids.as_ref()
    };
    match readers {
        None => {
            s.push("1 = 1");
            if let Some(a) = q.after {
                s.push(" AND r.uuid").push(after).bind(a);
            }
            filters(&mut s);
        }
        Some(sids) if sids.is_empty() => return None,
        // A status (the approval queue's Pending): the requests of that status, in id order on
        // the status index, each checked for a reader SID on the readers' primary key — the
        // cost is the number of requests in that status, not the number the caller may read
        // (a user with 1,000 finished requests and none pending reads no row).
        Some(sids) if q.status.is_some() => {
            let status = q.status.map(|st| st.number()).unwrap_or_default();
            s.push("r.status = ").bind(status);
            s.push(
                " AND EXISTS (SELECT 1 FROM request_readers rr WHERE rr.request_uuid = r.uuid AND rr.sid IN (",
            );
            for (i, sid) in sids.iter().enumerate() {
                if i > 0 {
                    s.push(", ");
                }
                s.bind(sid.as_str());
            }
            s.push("))");
            if let Some(a) = q.after {
                s.push(" AND r.uuid").push(after).bind(a);
            }
        }
        Some(sids) => {
            s.push("r.uuid IN (");
            for (i, sid) in sids.iter().enumerate() {
                if i > 0 {
                    s.push(" UNION ");
                }
                s.push(
                    "SELECT request_uuid FROM (SELECT rr.request_uuid FROM request_readers rr \
                     CROSS JOIN requests r WHERE r.uuid = rr.request_uuid AND rr.sid = ",
                )
                .bind(sid.as_str());
                if let Some(a) = q.after {
                    s.push(" AND rr.request_uuid").push(after).bind(a);
                }
                filters(&mut s);
                s.push(" ORDER BY rr.request_uuid")
                    .push(order)
                    .push(" LIMIT ")
                    .bind(limit)
                    .push(&format!(") AS s{i}"));
            }
            s.push(")");
        }
    }
    s.push(" ORDER BY r.uuid")
        .push(order)
        .push(" LIMIT ")
        .bind(limit);
    Some(s)
}

pub(crate) const INSERT_APPROVAL: &str =
    "INSERT INTO approvals (request_uuid, approver_uuid, decision, comment, at) VALUES ($1, $2, $3, $4, $5)";

pub(crate) const APPROVALS_OF: &str =
    "SELECT request_uuid, approver_uuid, decision, comment, at FROM approvals \
     WHERE request_uuid = $1 ORDER BY at, approver_uuid";

pub(crate) fn approval_args(a: &Approval) -> Vec<Arg> {
    super::args![
        a.request,
        a.approver,
        a.decision.name(),
        &a.comment,
        a.at.micros()
    ]
}

pub(crate) fn decode_approval(r: &dyn Columns) -> Result<Approval, StoreError> {
    let decision = r.text("decision")?;
    Ok(Approval {
        request: r.guid("request_uuid")?.into(),
        approver: r.guid("approver_uuid")?.into(),
        decision: Decision::parse(&decision).ok_or_else(|| StoreError::corrupt(&decision))?,
        comment: r.text("comment")?,
        at: Timestamp::from_micros(r.int("at")?),
    })
}

pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO audit_events (request_uuid, at, actor_uuid, action, from_status, to_status, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const HISTORY: &str =
    "SELECT request_uuid, at, actor_uuid, action, from_status, to_status, detail \
     FROM audit_events WHERE request_uuid = $1 ORDER BY id";

pub(crate) fn event_args(e: &AuditEvent) -> Vec<Arg> {
    super::args![
        e.request,
        e.at.micros(),
        e.actor,
        &e.action,
        e.from.number(),
        e.to.number(),
        &e.detail,
    ]
}

pub(crate) fn decode_event(r: &dyn Columns) -> Result<AuditEvent, StoreError> {
    let status = |name: &str| {
        let n = r.int(name)?;
        RequestStatus::from_number(n).ok_or_else(|| StoreError::corrupt(format!("status {n}")))
    };
    Ok(AuditEvent {
        request: r.guid("request_uuid")?.into(),
        at: Timestamp::from_micros(r.int("at")?),
        actor: r.guid("actor_uuid")?.into(),
        action: r.text("action")?,
        from: status("from_status")?,
        to: status("to_status")?,
        detail: r.text("detail")?,
    })
}

/// A request's one-time password, replacing any before.
pub(crate) const PUT_SECRET: &str = "INSERT INTO request_secrets \
     (request_uuid, hash, expires_at, attempts_left, for_originator, created) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_uuid) DO UPDATE SET hash = $2, \
     expires_at = $3, attempts_left = $4, for_originator = $5, created = $6";

pub(crate) const SECRET: &str = "SELECT request_uuid, hash, expires_at, attempts_left, \
     for_originator FROM request_secrets WHERE request_uuid = $1";

pub(crate) const SPEND_SECRET: &str =
    "UPDATE request_secrets SET attempts_left = attempts_left - 1 WHERE request_uuid = $1";

pub(crate) const DROP_SECRET: &str = "DELETE FROM request_secrets WHERE request_uuid = $1";

pub(crate) const SECRET_SHOWN: &str =
    "UPDATE request_secrets SET for_originator = NULL WHERE request_uuid = $1";

pub(crate) fn decode_secret(
    r: &dyn Columns,
) -> Result<opencm_domain::request::secrets::SecretRecord, StoreError> {
    Ok(opencm_domain::request::secrets::SecretRecord {
        request: r.guid("request_uuid")?.into(),
        hash: r.text("hash")?,
        expires: Timestamp::from_micros(r.int("expires_at")?),
        attempts_left: r.int("attempts_left")?,
        for_originator: r.opt_text("for_originator")?,
    })
}
