//! opencm's own users and groups, API tokens, certificate mappings, the identity epoch caches
//! check, administrators' audit events and the Kerberos replay cache.

use super::{Arg, Columns, Step};
use opencm_app::ports::{AdminEvent, IdentityChange, StoreError, TokenRecord};
use opencm_domain::Timestamp;

/// A new user, unless its SID is a group's (members of that group would act as the user): no
/// row is inserted then.
pub(crate) const INSERT_USER: &str =
    "INSERT INTO users (uuid, login, display_name, sid, created_at, email, language) \
     SELECT $1, $2, $3, $4, $5, $6, $7 \
     WHERE NOT EXISTS (SELECT 1 FROM user_groups WHERE group_sid = $4) \
     AND NOT EXISTS (SELECT 1 FROM directory_groups WHERE sid = $4)";

pub(crate) const INSERT_GROUP: &str = "INSERT INTO directory_groups (sid, name) VALUES ($1, $2)";

pub(crate) const ADD_MEMBER: &str =
    "INSERT INTO user_groups (user_uuid, group_sid) VALUES ($1, $2) ON CONFLICT DO NOTHING";

pub(crate) const REMOVE_MEMBER: &str =
    "DELETE FROM user_groups WHERE user_uuid = $1 AND group_sid = $2";

pub(crate) const USER_BY_UUID: &str =
    "SELECT uuid, login, display_name, sid, email, language FROM users WHERE uuid = $1";

/// Without regard to case (the unique index on lower(login) keeps it one user).
pub(crate) const USER_BY_LOGIN: &str =
    "SELECT uuid, login, display_name, sid, email, language FROM users WHERE lower(login) = lower($1)";

pub(crate) const GROUPS_OF: &str =
    "SELECT group_sid FROM user_groups WHERE user_uuid = $1 ORDER BY group_sid";

pub(crate) const MAPPINGS_OF: &str =
    "SELECT mapping FROM user_certificate_mappings WHERE user_uuid = $1 ORDER BY mapping";

pub(crate) const MAP_CERTIFICATE: &str =
    "INSERT INTO user_certificate_mappings (user_uuid, mapping) VALUES ($1, $2) ON CONFLICT DO NOTHING";

pub(crate) const UNMAP_CERTIFICATE: &str =
    "DELETE FROM user_certificate_mappings WHERE user_uuid = $1 AND mapping = $2";

/// 1 when the user is disabled, 0 when not; no row for a user opencm does not keep. (A 64-bit
/// integer on both engines: PostgreSQL's literals are 32-bit.)
pub(crate) const DISABLED: &str =
    "SELECT CAST(CASE WHEN disabled_at IS NULL THEN 0 ELSE 1 END AS BIGINT) AS disabled      FROM users WHERE uuid = $1";

pub(crate) const DISABLE_USER: &str =
    "UPDATE users SET disabled_at = $1 WHERE uuid = $2 AND disabled_at IS NULL";

pub(crate) const ENABLE_USER: &str =
    "UPDATE users SET disabled_at = NULL WHERE uuid = $1 AND disabled_at IS NOT NULL";

/// The enabled users with SID $1, or in group $1, by login.
pub(crate) const MEMBERS_OF: &str = "SELECT uuid, login, display_name, sid, email, language \
     FROM users WHERE disabled_at IS NULL AND (sid = $1 OR uuid IN \
     (SELECT user_uuid FROM user_groups WHERE group_sid = $1)) ORDER BY login";

pub(crate) const LOGIN_WITH_SID: &str = "SELECT login FROM users WHERE sid = $1";

pub(crate) const COUNT_USERS: &str = "SELECT COUNT(*) AS users FROM users";

pub(crate) const INSERT_TOKEN: &str =
    "INSERT INTO api_tokens (token_hash, user_uuid, created_at, expires_at) VALUES ($1, $2, $3, $4)";

/// The user of a token neither revoked nor of a disabled user, and when the token expires.
pub(crate) const USER_OF_TOKEN: &str =
    "SELECT u.uuid, u.login, u.display_name, u.sid, u.email, u.language, t.expires_at \
     FROM api_tokens t \
     JOIN users u ON u.uuid = t.user_uuid \
     WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND u.disabled_at IS NULL";

pub(crate) const TOKENS: &str =
    "SELECT t.token_hash, t.user_uuid, u.login, t.created_at, t.expires_at, t.revoked_at \
     FROM api_tokens t JOIN users u ON u.uuid = t.user_uuid ORDER BY t.created_at, t.token_hash";

pub(crate) const REVOKE_TOKEN: &str =
    "UPDATE api_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";

pub(crate) const EPOCH: &str = "SELECT epoch FROM identity_epoch WHERE id = 1";

pub(crate) const BUMP_EPOCH: &str = "UPDATE identity_epoch SET epoch = epoch + 1 WHERE id = 1";

pub(crate) const INSERT_ADMIN_EVENT: &str =
    "INSERT INTO admin_events (at, actor, action, subject) VALUES ($1, $2, $3, $4)";

pub(crate) const FORGET_EXPIRED_REPLAYS: &str = "DELETE FROM kerberos_replay WHERE expires_at < $1";

/// The primary key decides between nodes racing with one authenticator: one insert wins.
pub(crate) const FIRST_USE: &str =
    "INSERT INTO kerberos_replay (authenticator, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// An administrative change as its transaction: the change (which ends it when it changes
/// nothing), the identity epoch caches compare, the audit event.
pub(crate) fn change_steps(change: &IdentityChange, event: &AdminEvent) -> Vec<Step> {
    let change_of = change;
    let change = match change {
        IdentityChange::RevokeToken { hash, at } => {
            Step::new(REVOKE_TOKEN, super::args![at.micros(), hash])
        }
        IdentityChange::DisableUser { user, at } => {
            Step::new(DISABLE_USER, super::args![at.micros(), user])
        }
        IdentityChange::EnableUser { user } => Step::new(ENABLE_USER, super::args![user]),
        IdentityChange::AddMember { user, group_sid } => {
            Step::new(ADD_MEMBER, super::args![user, group_sid])
        }
        IdentityChange::RemoveMember { user, group_sid } => {
            Step::new(REMOVE_MEMBER, super::args![user, group_sid])
        }
        IdentityChange::MapCertificate { user, mapping } => {
            Step::new(MAP_CERTIFICATE, super::args![user, mapping])
        }
        IdentityChange::UnmapCertificate { user, mapping } => {
            Step::new(UNMAP_CERTIFICATE, super::args![user, mapping])
        }
    };
    let mut steps = vec![
        change.or_stop(),
        Step::new(BUMP_EPOCH, Vec::new()),
        Step::new(
            INSERT_ADMIN_EVENT,
            super::args![
                event.at.micros(),
                &event.actor,
                event.action,
                &event.subject
            ],
        ),
    ];
    // A disabled user's portal sessions end with the change, on every node.
    if let IdentityChange::DisableUser { user, .. } = change_of {
        steps.push(Step::new(
            super::portal::END_SESSIONS_OF,
            super::args![user],
        ));
    }
    steps
}

/// A user row: what `load_principal` completes with groups and mappings.
pub(crate) struct UserRow {
    pub uuid: String,
    pub login: String,
    pub display_name: String,
    pub sid: String,
    pub email: Option<String>,
    pub language: Option<String>,
}

pub(crate) fn decode_user(r: &dyn Columns) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        uuid: r.text("uuid")?,
        login: r.text("login")?,
        display_name: r.text("display_name")?,
        sid: r.text("sid")?,
        email: r.opt_text("email")?,
        language: r.opt_text("language")?,
    })
}

pub(crate) fn decode_token_user(r: &dyn Columns) -> Result<(UserRow, Option<i64>), StoreError> {
    Ok((decode_user(r)?, r.opt_int("expires_at")?))
}

pub(crate) fn decode_token(r: &dyn Columns) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        hash: r.text("token_hash")?,
        user: r.guid("user_uuid")?.into(),
        login: r.text("login")?,
        created: Timestamp::from_micros(r.int("created_at")?),
        expires: r.opt_int("expires_at")?.map(Timestamp::from_micros),
        revoked: r.opt_int("revoked_at")?.map(Timestamp::from_micros),
    })
}

pub(crate) fn args_of_user(u: &opencm_app::ports::NewUser, now: Timestamp) -> Vec<Arg> {
    super::args![
        u.uuid,
        &u.login,
        &u.display_name,
        &u.sid,
        now.micros(),
        &u.email,
        &u.language
    ]
}
