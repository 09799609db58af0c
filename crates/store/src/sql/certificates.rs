//! Issued certificates, their revocations and the CRL's entries.

use super::{Arg, Columns};
use opencm_app::ports::{CertificateRecord, RevokedCertificate, SerialStatus, StoreError};
use opencm_domain::issued::{CertificateStatus, RevocationReason};
use opencm_domain::Timestamp;

macro_rules! columns {
    () => {
        "serial, profile_uuid, request_uuid, user_uuid, template_common_name, der, thumbprint, \
         issuer, subject, not_before, not_after, status, revoked_at, revocation_reason, \
         server_generated, sealed_key"
    };
}

pub(crate) const OF_PROFILE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM certificates WHERE profile_uuid = $1 ORDER BY serial"
);

pub(crate) const OF_USER: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM certificates WHERE user_uuid = $1 ORDER BY not_before DESC, serial"
);

/// Any one certificate of a profile (whether it has one).
pub(crate) const ONE_OF_PROFILE: &str =
    "SELECT serial FROM certificates WHERE profile_uuid = $1 LIMIT 1";

/// Every certificate not valid, for the CRL.
pub(crate) const REVOKED: &str =
    "SELECT serial, revoked_at, revocation_reason FROM certificates WHERE status <> 0 ORDER BY serial";

/// One certificate's status by serial (OCSP).
pub(crate) const STATUS_OF_SERIAL: &str =
    "SELECT serial, status, revoked_at, revocation_reason FROM certificates WHERE serial = $1";

/// How many valid certificates end in ($1, $2] (a gauge of `/metrics`).
pub(crate) const COUNT_EXPIRING: &str =
    "SELECT COUNT(*) AS n FROM certificates WHERE status = 0 AND not_after > $1 AND not_after <= $2";

/// Certificates revoked or held, by reason (a gauge of `/metrics`; the partial index on status).
pub(crate) const COUNT_REVOKED: &str = "SELECT revocation_reason, COUNT(*) AS n FROM certificates \
     WHERE status <> 0 GROUP BY revocation_reason ORDER BY revocation_reason";

/// Valid certificates expiring in ($1, $2], not warned at a threshold of $3 days or fewer.
pub(crate) const EXPIRING: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM certificates c WHERE c.status = 0 AND c.not_after > $1 AND c.not_after <= $2 \
     AND NOT EXISTS (SELECT 1 FROM expiry_warnings w WHERE w.serial = c.serial AND w.days <= $3) \
     ORDER BY c.not_after, c.serial LIMIT $4"
);

pub(crate) const INSERT: &str = concat!(
    "INSERT INTO certificates (",
    columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
);

/// The certificates of a profile in one status moved to another.
pub(crate) const SET_STATUS: &str =
    "UPDATE certificates SET status = $1, revoked_at = $2, revocation_reason = $3 \
     WHERE profile_uuid = $4 AND status = $5";

pub(crate) fn insert_args(c: &CertificateRecord) -> Vec<Arg> {
    super::args![
        &c.serial_hex,
        c.profile,
        c.request,
        c.user,
        &c.template_common_name,
        &c.der_b64,
        &c.thumbprint,
        &c.issuer,
        &c.subject,
        c.not_before.micros(),
        c.not_after.micros(),
        c.status.number(),
        c.revoked_at,
        c.revocation_reason.map(|r| r.code()),
        i64::from(c.server_generated),
        &c.sealed_key,
    ]
}

pub(crate) fn decode(r: &dyn Columns) -> Result<CertificateRecord, StoreError> {
    let status = r.int("status")?;
    Ok(CertificateRecord {
        serial_hex: r.text("serial")?,
        profile: r.guid("profile_uuid")?.into(),
        request: r.guid("request_uuid")?.into(),
        user: r.guid("user_uuid")?.into(),
        template_common_name: r.text("template_common_name")?,
        der_b64: r.text("der")?,
        thumbprint: r.text("thumbprint")?,
        issuer: r.text("issuer")?,
        subject: r.text("subject")?,
        not_before: Timestamp::from_micros(r.int("not_before")?),
        not_after: Timestamp::from_micros(r.int("not_after")?),
        status: CertificateStatus::from_number(status)
            .ok_or_else(|| StoreError::corrupt(format!("certificate status {status}")))?,
        revoked_at: r.opt_time("revoked_at")?,
        revocation_reason: r
            .opt_int("revocation_reason")?
            .map(|code| {
                RevocationReason::from_code(code)
                    .ok_or_else(|| StoreError::corrupt(format!("revocation reason {code}")))
            })
            .transpose()?,
        server_generated: r.int("server_generated")? != 0,
        sealed_key: r.opt_text("sealed_key")?,
    })
}

pub(crate) fn decode_revoked(r: &dyn Columns) -> Result<RevokedCertificate, StoreError> {
    Ok(RevokedCertificate {
        serial_hex: r.text("serial")?,
        revoked_at: Timestamp::from_micros(r.opt_int("revoked_at")?.unwrap_or(0)),
        reason: r
            .opt_int("revocation_reason")?
            .and_then(RevocationReason::from_code)
            .unwrap_or(RevocationReason::Unspecified),
    })
}

pub(crate) fn decode_serial_status(r: &dyn Columns) -> Result<SerialStatus, StoreError> {
    Ok(match r.int("status")? {
        0 => SerialStatus::Valid,
        _ => SerialStatus::Revoked(decode_revoked(r)?),
    })
}
