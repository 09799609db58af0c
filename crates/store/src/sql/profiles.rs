//! Profiles: the certificates a user holds from one template, on a card or not.

use super::{Arg, Columns, Numbered};
use opencm_app::ports::{ProfileQuery, ProfileRecord, StoreError};
use opencm_domain::profile::ProfileStatus;
use opencm_domain::Timestamp;

macro_rules! columns {
    () => {
        "uuid, status, flags, parent_profile_uuid, primary_profile_uuid, assigned_user_uuid, \
         profile_template_uuid, profile_template_version, comment, request_uuid, created_at, \
         version, smartcard_uuid"
    };
}

pub(crate) const BY_UUID: &str = concat!("SELECT ", columns!(), " FROM profiles WHERE uuid = $1");

pub(crate) const OF_REQUEST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM profiles WHERE request_uuid = $1 ORDER BY uuid"
);

pub(crate) const ON_SMARTCARD: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM profiles WHERE smartcard_uuid = $1 \
     AND smartcard_uuid <> '00000000-0000-0000-0000-000000000000' ORDER BY created_at, uuid"
);

pub(crate) const INSERT: &str = concat!(
    "INSERT INTO profiles (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

/// A status change (flags only ever gain bits: `SUPERSEDED`).
pub(crate) const SET_STATUS: &str =
    "UPDATE profiles SET status = $1, flags = flags | $2, version = version + 1 WHERE uuid = $3";

/// The version a write decided on, read again under the write lock.
pub(crate) const VERSION: &str = "SELECT version FROM profiles WHERE uuid = $1";

pub(crate) fn insert_args(p: &ProfileRecord) -> Vec<Arg> {
    super::args![
        p.uuid,
        p.status.number(),
        p.flags,
        p.parent,
        p.primary,
        p.assigned_user,
        p.template,
        p.template_version,
        &p.comment,
        p.request,
        p.created.micros(),
        p.version,
        p.smartcard,
    ]
}

pub(crate) fn decode(r: &dyn Columns) -> Result<ProfileRecord, StoreError> {
    let status = r.int("status")?;
    Ok(ProfileRecord {
        uuid: r.guid("uuid")?.into(),
        status: ProfileStatus::from_number(status)
            .ok_or_else(|| StoreError::corrupt(format!("profile status {status}")))?,
        flags: r.int("flags")?,
        parent: r.nullable_guid("parent_profile_uuid")?.map(Into::into),
        primary: r.nullable_guid("primary_profile_uuid")?.map(Into::into),
        assigned_user: r.guid("assigned_user_uuid")?.into(),
        template: r.guid("profile_template_uuid")?.into(),
        template_version: r.int("profile_template_version")?,
        comment: r.text("comment")?,
        request: r.guid("request_uuid")?.into(),
        created: Timestamp::from_micros(r.int("created_at")?),
        version: r.int("version")?,
        smartcard: r.nullable_guid("smartcard_uuid")?.map(Into::into),
    })
}

/// A page of profiles for `GET /profiles`.
pub(crate) fn list(q: &ProfileQuery) -> Numbered {
    let mut s = Numbered::new(concat!("SELECT ", columns!(), " FROM profiles WHERE 1 = 1"));
    if let Some(u) = q.user {
        s.push(" AND assigned_user_uuid = ").bind(u);
    }
    if let Some(status) = q.status {
        s.push(" AND status = ").bind(status.number());
    }
    if let Some(a) = q.after {
        s.push(" AND uuid > ").bind(a);
    }
    s.push(" ORDER BY uuid LIMIT ").bind(i64::from(q.limit));
    s
}
