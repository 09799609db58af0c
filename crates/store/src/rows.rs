//! Rows as stored, and their conversion to domain types. Shared by both engines: every column is
//! TEXT or a 64-bit integer so the same row types decode on SQLite and PostgreSQL.

use opencm_app::ports::StoreError;
use opencm_domain::issued::{CertificateStatus, RevocationReason};
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::{Approval, AuditEvent, DataValue, Decision, Request};
use opencm_domain::sddl::SecurityDescriptor;
use opencm_domain::{Guid, RequestFlags, RequestStatus, RequestType, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

pub(crate) fn guid(s: &str) -> Result<Guid, StoreError> {
    s.parse().map_err(StoreError::corrupt)
}

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    pub uuid: String,
    pub request_type: i64,
    pub status: i64,
    pub flags: i64,
    pub data_collection: String,
    pub data_collection_flags: i64,
    pub originator_uuid: String,
    pub target_uuid: String,
    pub submitted: i64,
    pub completed: Option<i64>,
    pub new_profile_uuid: String,
    pub old_profile_uuid: String,
    pub new_smartcard_uuid: String,
    pub old_smartcard_uuid: String,
    pub priority: i64,
    pub comment: String,
    pub profile_template_uuid: String,
    pub security_descriptor: String,
    pub version: i64,
}

pub(crate) const REQUEST_COLUMNS: &str = "uuid, request_type, status, flags, data_collection, data_collection_flags, \
     originator_uuid, target_uuid, submitted, completed, new_profile_uuid, old_profile_uuid, new_smartcard_uuid, \
     old_smartcard_uuid, priority, comment, profile_template_uuid, security_descriptor, version";

impl RequestRow {
    pub fn into_domain(self) -> Result<Request, StoreError> {
        let items: Vec<(String, Option<String>)> =
            serde_json::from_str(&self.data_collection).map_err(StoreError::corrupt)?;
        Ok(Request {
            uuid: guid(&self.uuid)?,
            request_type: RequestType::from_number(self.request_type).ok_or_else(|| {
                StoreError::corrupt(format!("request type {}", self.request_type))
            })?,
            status: RequestStatus::from_number(self.status)
                .ok_or_else(|| StoreError::corrupt(format!("request status {}", self.status)))?,
            flags: RequestFlags(self.flags),
            data_collection: items
                .into_iter()
                .map(|(name, value)| DataValue { name, value })
                .collect(),
            data_collection_flags: self.data_collection_flags,
            originator: guid(&self.originator_uuid)?,
            target: guid(&self.target_uuid)?,
            submitted: Timestamp::from_micros(self.submitted),
            completed: Timestamp::from_option(self.completed),
            new_profile: guid(&self.new_profile_uuid)?,
            old_profile: guid(&self.old_profile_uuid)?,
            new_smartcard: guid(&self.new_smartcard_uuid)?,
            old_smartcard: guid(&self.old_smartcard_uuid)?,
            priority: u8::try_from(self.priority).map_err(StoreError::corrupt)?,
            comment: self.comment,
            profile_template: guid(&self.profile_template_uuid)?,
            security_descriptor: descriptor(&self.security_descriptor)?,
            version: self.version,
        })
    }
}

/// Parsed descriptors, shared by every row that stores the same text. A request's descriptor is one
/// per template, originator and target, so a few repeat across many rows, and parsing one costs
/// more than the rest of a request row (a tenth of a `GET /requests/{id}`). Bounded: emptied when
/// full.
fn descriptor(text: &str) -> Result<Arc<SecurityDescriptor>, StoreError> {
    const MAX: usize = 4096;
    static PARSED: OnceLock<Mutex<HashMap<String, Arc<SecurityDescriptor>>>> = OnceLock::new();
    let parsed = PARSED.get_or_init(Default::default);
    if let Some(hit) = parsed.lock().ok().and_then(|m| m.get(text).cloned()) {
        return Ok(hit);
    }
    let sd = Arc::new(SecurityDescriptor::parse(text).map_err(StoreError::corrupt)?);
    if let Ok(mut m) = parsed.lock() {
        if m.len() >= MAX {
            m.clear();
        }
        m.insert(text.to_owned(), sd.clone());
    }
    Ok(sd)
}

pub(crate) fn data_collection_json(r: &Request) -> String {
    let items: Vec<(&str, Option<&str>)> = r
        .data_collection
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_deref()))
        .collect();
    serde_json::to_string(&items).unwrap_or_else(|_| "[]".into())
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub uuid: String,
    pub login: String,
    pub display_name: String,
    pub sid: String,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApprovalRow {
    pub request_uuid: String,
    pub approver_uuid: String,
    pub decision: String,
    pub comment: String,
    pub at: i64,
}

impl ApprovalRow {
    pub fn into_domain(self) -> Result<Approval, StoreError> {
        Ok(Approval {
            request: guid(&self.request_uuid)?,
            approver: guid(&self.approver_uuid)?,
            decision: Decision::parse(&self.decision)
                .ok_or_else(|| StoreError::corrupt(&self.decision))?,
            comment: self.comment,
            at: Timestamp::from_micros(self.at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub request_uuid: String,
    pub at: i64,
    pub actor_uuid: String,
    pub action: String,
    pub from_status: i64,
    pub to_status: i64,
    pub detail: String,
}

impl AuditRow {
    pub fn into_domain(self) -> Result<AuditEvent, StoreError> {
        let status = |n: i64| {
            RequestStatus::from_number(n).ok_or_else(|| StoreError::corrupt(format!("status {n}")))
        };
        Ok(AuditEvent {
            request: guid(&self.request_uuid)?,
            at: Timestamp::from_micros(self.at),
            actor: guid(&self.actor_uuid)?,
            action: self.action,
            from: status(self.from_status)?,
            to: status(self.to_status)?,
            detail: self.detail,
        })
    }
}

pub(crate) const PROFILE_COLUMNS: &str =
    "uuid, status, flags, parent_profile_uuid, primary_profile_uuid, assigned_user_uuid, \
     profile_template_uuid, profile_template_version, comment, request_uuid, created_at, version, \
     smartcard_uuid";

#[derive(sqlx::FromRow)]
pub(crate) struct ProfileRow {
    pub uuid: String,
    pub status: i64,
    pub flags: i64,
    pub parent_profile_uuid: String,
    pub primary_profile_uuid: String,
    pub assigned_user_uuid: String,
    pub profile_template_uuid: String,
    pub profile_template_version: i64,
    pub comment: String,
    pub request_uuid: String,
    pub created_at: i64,
    pub version: i64,
    pub smartcard_uuid: String,
}

impl ProfileRow {
    pub fn into_record(self) -> Result<opencm_app::ports::ProfileRecord, StoreError> {
        Ok(opencm_app::ports::ProfileRecord {
            uuid: guid(&self.uuid)?,
            status: ProfileStatus::from_number(self.status)
                .ok_or_else(|| StoreError::corrupt(format!("profile status {}", self.status)))?,
            flags: self.flags,
            parent: guid(&self.parent_profile_uuid)?,
            primary: guid(&self.primary_profile_uuid)?,
            assigned_user: guid(&self.assigned_user_uuid)?,
            template: guid(&self.profile_template_uuid)?,
            template_version: self.profile_template_version,
            comment: self.comment,
            request: guid(&self.request_uuid)?,
            created: Timestamp::from_micros(self.created_at),
            version: self.version,
            smartcard: guid(&self.smartcard_uuid)?,
        })
    }
}

pub(crate) const CERTIFICATE_COLUMNS: &str = "serial, profile_uuid, request_uuid, user_uuid, template_common_name, der, \
     thumbprint, issuer, subject, not_before, not_after, status, revoked_at, revocation_reason, server_generated, sealed_key";

#[derive(sqlx::FromRow)]
pub(crate) struct CertificateRow {
    pub serial: String,
    pub profile_uuid: String,
    pub request_uuid: String,
    pub user_uuid: String,
    pub template_common_name: String,
    pub der: String,
    pub thumbprint: String,
    pub issuer: String,
    pub subject: String,
    pub not_before: i64,
    pub not_after: i64,
    pub status: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<i64>,
    pub server_generated: i64,
    pub sealed_key: Option<String>,
}

impl CertificateRow {
    pub fn into_record(self) -> Result<opencm_app::ports::CertificateRecord, StoreError> {
        Ok(opencm_app::ports::CertificateRecord {
            serial_hex: self.serial,
            profile: guid(&self.profile_uuid)?,
            request: guid(&self.request_uuid)?,
            user: guid(&self.user_uuid)?,
            template_common_name: self.template_common_name,
            der_b64: self.der,
            thumbprint: self.thumbprint,
            issuer: self.issuer,
            subject: self.subject,
            not_before: Timestamp::from_micros(self.not_before),
            not_after: Timestamp::from_micros(self.not_after),
            status: CertificateStatus::from_number(self.status).ok_or_else(|| {
                StoreError::corrupt(format!("certificate status {}", self.status))
            })?,
            revoked_at: Timestamp::from_option(self.revoked_at),
            revocation_reason: self
                .revocation_reason
                .map(|r| {
                    RevocationReason::from_code(r)
                        .ok_or_else(|| StoreError::corrupt(format!("revocation reason {r}")))
                })
                .transpose()?,
            server_generated: self.server_generated != 0,
            sealed_key: self.sealed_key,
        })
    }
}

pub(crate) const SMARTCARD_COLUMNS: &str =
    "uuid, status, flags, card_id, atr, middleware, assigned_user_uuid, template_uuid, \
     template_version, request_uuid, comment, created_at, version, key_version, parent_uuid, \
     primary_uuid, permanent_uuid, expires_at, key_diversifier";

#[derive(sqlx::FromRow)]
pub(crate) struct SmartcardRow {
    pub uuid: String,
    pub status: i64,
    pub flags: i64,
    pub card_id: String,
    pub atr: String,
    pub middleware: String,
    pub assigned_user_uuid: String,
    pub template_uuid: String,
    pub template_version: i64,
    pub request_uuid: String,
    pub comment: String,
    pub created_at: i64,
    pub version: i64,
    pub key_version: i64,
    pub parent_uuid: String,
    pub primary_uuid: String,
    pub permanent_uuid: String,
    pub expires_at: Option<i64>,
    pub key_diversifier: String,
}

impl SmartcardRow {
    pub fn into_record(self) -> Result<opencm_app::ports::SmartcardRecord, StoreError> {
        use opencm_domain::smartcard::SmartcardStatus;
        Ok(opencm_app::ports::SmartcardRecord {
            uuid: guid(&self.uuid)?,
            status: SmartcardStatus::from_number(self.status)
                .ok_or_else(|| StoreError::corrupt(format!("smart card status {}", self.status)))?,
            flags: self.flags,
            card_id: guid(&self.card_id)?,
            atr: self.atr,
            middleware: self.middleware,
            assigned_user: guid(&self.assigned_user_uuid)?,
            template: guid(&self.template_uuid)?,
            template_version: self.template_version,
            request: guid(&self.request_uuid)?,
            comment: self.comment,
            created: Timestamp::from_micros(self.created_at),
            version: self.version,
            key_version: self.key_version,
            parent: guid(&self.parent_uuid)?,
            primary: guid(&self.primary_uuid)?,
            permanent: guid(&self.permanent_uuid)?,
            expires: Timestamp::from_option(self.expires_at),
            key_diversifier: guid(&self.key_diversifier)?,
        })
    }
}

/// `from_sqlite` for a row type: its columns read by position, in the struct's field order — the
/// order of its `*_COLUMNS` list and of every SELECT that reads it.
macro_rules! sqlite_row {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl $t {
            pub fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let mut column = 0..;
                Ok($t { $($f: r.get(column.next().unwrap_or_default())?),* })
            }
        }
    };
}

sqlite_row!(RequestRow {
    uuid,
    request_type,
    status,
    flags,
    data_collection,
    data_collection_flags,
    originator_uuid,
    target_uuid,
    submitted,
    completed,
    new_profile_uuid,
    old_profile_uuid,
    new_smartcard_uuid,
    old_smartcard_uuid,
    priority,
    comment,
    profile_template_uuid,
    security_descriptor,
    version,
});
sqlite_row!(UserRow {
    uuid,
    login,
    display_name,
    sid
});
sqlite_row!(ApprovalRow {
    request_uuid,
    approver_uuid,
    decision,
    comment,
    at
});
sqlite_row!(AuditRow {
    request_uuid,
    at,
    actor_uuid,
    action,
    from_status,
    to_status,
    detail,
});
sqlite_row!(ProfileRow {
    uuid,
    status,
    flags,
    parent_profile_uuid,
    primary_profile_uuid,
    assigned_user_uuid,
    profile_template_uuid,
    profile_template_version,
    comment,
    request_uuid,
    created_at,
    version,
    smartcard_uuid,
});
sqlite_row!(CertificateRow {
    serial,
    profile_uuid,
    request_uuid,
    user_uuid,
    template_common_name,
    der,
    thumbprint,
    issuer,
    subject,
    not_before,
    not_after,
    status,
    revoked_at,
    revocation_reason,
    server_generated,
    sealed_key,
});

/// A token row as administrators see it.
pub(crate) fn token_record(
    (hash, user, login, created, expires, revoked): (
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<i64>,
    ),
) -> Result<opencm_app::ports::TokenRecord, StoreError> {
    Ok(opencm_app::ports::TokenRecord {
        hash,
        user: guid(&user)?,
        login,
        created: opencm_domain::Timestamp::from_micros(created),
        expires: expires.map(opencm_domain::Timestamp::from_micros),
        revoked: revoked.map(opencm_domain::Timestamp::from_micros),
    })
}
sqlite_row!(SmartcardRow {
    uuid,
    status,
    flags,
    card_id,
    atr,
    middleware,
    assigned_user_uuid,
    template_uuid,
    template_version,
    request_uuid,
    comment,
    created_at,
    version,
    key_version,
    parent_uuid,
    primary_uuid,
    permanent_uuid,
    expires_at,
    key_diversifier,
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn rows_with_the_same_descriptor_share_one_parse_and_a_corrupt_one_is_refused() {
        let text = "O:S-1-5-21-1-2-3-1001D:(A;;RCCR;;;S-1-5-21-1-2-3-1001)(A;;GA;;;BA)";
        let a = descriptor(text).unwrap();
        let b = descriptor(text).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, SecurityDescriptor::parse(text).unwrap());
        assert!(matches!(
            descriptor("D:(A;;RC;;;not-a-sid)"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
