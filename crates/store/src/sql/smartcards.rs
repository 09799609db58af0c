//! Smart cards (and TPM virtual smart cards), their sealed PINs, and the card master keys.

use super::{Arg, Columns};
use opencm_app::ports::{SmartcardRecord, StoreError};
use opencm_domain::smartcard::SmartcardStatus;
use opencm_domain::Timestamp;

macro_rules! columns {
    () => {
        "uuid, status, flags, card_id, atr, middleware, assigned_user_uuid, template_uuid, \
         template_version, request_uuid, comment, created_at, version, key_version, parent_uuid, \
         primary_uuid, permanent_uuid, expires_at, key_diversifier"
    };
}

pub(crate) const BY_UUID: &str = concat!("SELECT ", columns!(), " FROM smartcards WHERE uuid = $1");

pub(crate) const BY_CARD_ID: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM smartcards WHERE card_id = $1 ORDER BY created_at, uuid"
);

pub(crate) const OF_USER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM smartcards WHERE assigned_user_uuid = $1 ORDER BY uuid"
);

/// The card inventory's search: an empty text or a negative status matches every card.
pub(crate) const SEARCH: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM smartcards WHERE ($1 = '' OR card_id = $1) AND ($2 = '' OR atr = $2) \
     AND ($3 < 0 OR status = $3) AND ($4 = '' OR assigned_user_uuid = $4) \
     ORDER BY created_at DESC, uuid DESC LIMIT $5"
);

pub(crate) fn search_args(q: &opencm_app::ports::CardSearch) -> Vec<Arg> {
    let text = |g: Option<String>| g.unwrap_or_default();
    super::args![
        text(q.card_id.map(|c| c.to_string())),
        text(q.atr.clone()),
        q.status.map_or(-1, |s| s.number()),
        text(q.user.map(|u| u.to_string())),
        i64::from(q.limit)
    ]
}

pub(crate) const ALL: &str = concat!("SELECT ", columns!(), " FROM smartcards ORDER BY uuid");

pub(crate) const INSERT: &str = concat!(
    "INSERT INTO smartcards (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
);

pub(crate) const SET_STATUS: &str =
    "UPDATE smartcards SET status = $1, version = version + 1 WHERE uuid = $2";

/// The version a write decided on, read again under the write lock.
pub(crate) const VERSION: &str = "SELECT version FROM smartcards WHERE uuid = $1";

pub(crate) const SEAL_PIN: &str = "UPDATE smartcards SET sealed_pin = $1 WHERE uuid = $2";

pub(crate) const SEALED_PIN: &str = "SELECT sealed_pin FROM smartcards WHERE uuid = $1";

pub(crate) const MASTER: &str = "SELECT version, sealed FROM card_master_keys WHERE version = $1";

pub(crate) const LATEST_MASTER: &str =
    "SELECT version, sealed FROM card_master_keys ORDER BY version DESC LIMIT 1";

pub(crate) const INSERT_MASTER: &str =
    "INSERT INTO card_master_keys (version, sealed, created_at) VALUES ($1, $2, $3) \
     ON CONFLICT (version) DO NOTHING";

pub(crate) fn insert_args(c: &SmartcardRecord) -> Vec<Arg> {
    super::args![
        c.uuid,
        c.status.number(),
        c.flags,
        c.card_id,
        &c.atr,
        &c.middleware,
        c.assigned_user,
        c.template,
        c.template_version,
        c.request,
        &c.comment,
        c.created.micros(),
        c.version,
        c.key_version,
        c.parent,
        c.primary,
        c.permanent,
        c.expires,
        c.key_diversifier,
    ]
}

pub(crate) fn decode(r: &dyn Columns) -> Result<SmartcardRecord, StoreError> {
    let status = r.int("status")?;
    Ok(SmartcardRecord {
        uuid: r.guid("uuid")?.into(),
        status: SmartcardStatus::from_number(status)
            .ok_or_else(|| StoreError::corrupt(format!("smart card status {status}")))?,
        flags: r.int("flags")?,
        card_id: r.guid("card_id")?,
        atr: r.text("atr")?,
        middleware: r.text("middleware")?,
        assigned_user: r.guid("assigned_user_uuid")?.into(),
        template: r.guid("template_uuid")?.into(),
        template_version: r.int("template_version")?,
        request: r.guid("request_uuid")?.into(),
        comment: r.text("comment")?,
        created: Timestamp::from_micros(r.int("created_at")?),
        version: r.int("version")?,
        key_version: r.int("key_version")?,
        parent: r.nullable_guid("parent_uuid")?.map(Into::into),
        primary: r.nullable_guid("primary_uuid")?.map(Into::into),
        permanent: r.nullable_guid("permanent_uuid")?.map(Into::into),
        expires: r.opt_time("expires_at")?,
        key_diversifier: r.guid("key_diversifier")?,
    })
}

pub(crate) fn decode_master(r: &dyn Columns) -> Result<(i64, String), StoreError> {
    Ok((r.int("version")?, r.text("sealed")?))
}

/// Cards by status (a gauge of `/metrics`).
pub(crate) const COUNT_BY_STATUS: &str =
    "SELECT status, COUNT(*) AS n FROM smartcards GROUP BY status ORDER BY status";
