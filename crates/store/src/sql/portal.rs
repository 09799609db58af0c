//! The portal's rows: local users' passwords, browser sessions, an approver's decisions and the
//! audit search.

use super::{Arg, Columns};
use opencm_app::ports::{AuditQuery, StoreError};
use opencm_domain::request::{Approval, Decision, Request};
use opencm_domain::session::SessionRecord;
use opencm_domain::Timestamp;

/// A local user's password (PHC string), replacing the one before.
pub(crate) const SET_PASSWORD: &str = "INSERT INTO user_passwords (user_uuid, phc, set_at) \
     VALUES ($1, $2, $3) ON CONFLICT (user_uuid) DO UPDATE SET phc = $2, set_at = $3";

/// The password of a local user who is not disabled, by login without regard to case.
pub(crate) const PASSWORD_OF: &str = "SELECT u.uuid, p.phc FROM users u \
     JOIN user_passwords p ON p.user_uuid = u.uuid \
     WHERE lower(u.login) = lower($1) AND u.disabled_at IS NULL";

pub(crate) const INSERT_SESSION: &str = "INSERT INTO portal_sessions \
     (session_hash, user_uuid, method, created_at, last_seen, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

pub(crate) const SESSION: &str = "SELECT session_hash, user_uuid, method, created_at, last_seen, \
     expires_at FROM portal_sessions WHERE session_hash = $1";

pub(crate) const TOUCH_SESSION: &str =
    "UPDATE portal_sessions SET last_seen = $1 WHERE session_hash = $2 AND last_seen < $1";

pub(crate) const END_SESSION: &str = "DELETE FROM portal_sessions WHERE session_hash = $1";

/// Every session of a user: disabled, or a new password set.
pub(crate) const END_SESSIONS_OF: &str = "DELETE FROM portal_sessions WHERE user_uuid = $1";

/// Sessions past their absolute expiry, removed when a new one is made.
pub(crate) const FORGET_EXPIRED_SESSIONS: &str =
    "DELETE FROM portal_sessions WHERE expires_at <= $1";

/// The requests an approver has decided, with the decision, newest request first: one query.
pub(crate) const DECIDED_BY: &str =
    "SELECT r.uuid, r.request_type, r.status, r.flags, r.data_collection, \
     r.data_collection_flags, r.originator_uuid, r.target_uuid, r.submitted, r.completed, \
     r.new_profile_uuid, r.old_profile_uuid, r.new_smartcard_uuid, r.old_smartcard_uuid, \
     r.priority, r.comment, r.profile_template_uuid, r.security_descriptor, r.version, r.secret_required, \
     a.request_uuid, a.approver_uuid, a.decision, a.comment AS decision_comment, a.at \
     FROM approvals a JOIN requests r ON r.uuid = a.request_uuid \
     WHERE a.approver_uuid = $1 ORDER BY a.request_uuid DESC LIMIT $2";

pub(crate) fn decode_decided(r: &dyn Columns) -> Result<(Request, Approval), StoreError> {
    let decision = r.text("decision")?;
    Ok((
        super::requests::decode(r)?,
        Approval {
            request: r.guid("request_uuid")?.into(),
            approver: r.guid("approver_uuid")?.into(),
            decision: Decision::parse(&decision).ok_or_else(|| StoreError::corrupt(&decision))?,
            comment: r.text("decision_comment")?,
            at: Timestamp::from_micros(r.int("at")?),
        },
    ))
}

/// Request events, newest first, by any combination of actor, request and action, in a time
/// window, a page at a time (keyset on the event id). An empty filter matches everything.
pub(crate) const AUDIT_SEARCH: &str =
    "SELECT id, request_uuid, at, actor_uuid, action, from_status, to_status, detail \
     FROM audit_events \
     WHERE ($1 = '' OR actor_uuid = $1) AND ($2 = '' OR request_uuid = $2) \
     AND ($3 = '' OR action = $3) AND at >= $4 AND at < $5 AND id < $6 \
     ORDER BY id DESC LIMIT $7";

pub(crate) fn audit_search_args(q: &AuditQuery) -> Vec<Arg> {
    let text = |g: Option<String>| g.unwrap_or_default();
    super::args![
        text(q.actor.map(|u| u.to_string())),
        text(q.request.map(|r| r.to_string())),
        text(q.action.map(|a| a.name().to_string())),
        q.from.map_or(i64::MIN, |t| t.micros()),
        q.until.map_or(i64::MAX, |t| t.micros()),
        q.before.unwrap_or(i64::MAX),
        i64::from(q.limit),
    ]
}

pub(crate) fn session_args(s: &SessionRecord) -> Vec<Arg> {
    super::args![
        &s.hash,
        s.user,
        &s.method,
        s.created.micros(),
        s.last_seen.micros(),
        s.expires.micros()
    ]
}

pub(crate) fn decode_session(r: &dyn Columns) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        hash: r.text("session_hash")?,
        user: r.guid("user_uuid")?.into(),
        method: r.text("method")?,
        created: Timestamp::from_micros(r.int("created_at")?),
        last_seen: Timestamp::from_micros(r.int("last_seen")?),
        expires: Timestamp::from_micros(r.int("expires_at")?),
    })
}
