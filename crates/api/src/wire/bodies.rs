//! Request bodies, parsed from their JSON into the use cases' inputs in one place. Property names
//! are matched case-insensitively (`Fields` lowercases them); each error names the property.

use crate::error::ApiError;
use crate::extract::{parse_guid, Fields};
use crate::handlers::parse_request_type;
use crate::wire::{bounded, excerpt, parse_data_collection};
use opencm_app::{CertificateData, ErrorCode, NewRequest};
use opencm_domain::limits::{COMMENT_MAX, PASSWORD_MAX};
use opencm_domain::request::Decision;
use opencm_domain::smartcard::SmartcardStatus;
use opencm_domain::Outcome;
use serde_json::Value;

/// `POST /requests` (MIM "Create Request"): `profiletemplateuuid`, `type` (name, alias or
/// number), `datacollection`, `target`, `comment`, `priority`, `profile`, `smartcard`.
pub fn new_request(body: &Fields) -> Result<NewRequest, ApiError> {
    let guid = |name: &str| -> Result<_, ApiError> {
        body.str(name)?.map(|v| parse_guid(name, &v)).transpose()
    };
    let type_name = match body.get("type") {
        Some(Value::Number(n)) => n.to_string(),
        _ => body.required_str("type")?,
    };
    let comment = body.str("comment")?.unwrap_or_default();
    bounded("'comment'", &comment, COMMENT_MAX)?;
    Ok(NewRequest {
        profile: guid("profile")?.map(Into::into),
        smartcard: guid("smartcard")?.map(Into::into),
        template: guid("profiletemplateuuid")?.map(Into::into),
        request_type: parse_request_type(&type_name)?,
        target: guid("target")?.map(Into::into),
        data: parse_data_collection(body.get("datacollection"))?,
        comment,
        priority: body.int("priority")?,
    })
}

/// `PUT /requests/{id}` (MIM "Update Request Status"): `{"status": "Completed" | "Canceled" |
/// "Abandoned"}`.
pub fn outcome(body: &Fields) -> Result<Outcome, ApiError> {
    let allowed = || {
        Outcome::ALL
            .iter()
            .map(|o| o.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let status = status_text(body, &allowed())?;
    Outcome::parse(&status).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidStatus,
            format!(
                "Status '{}' cannot be set on a request; use one of: {}.",
                excerpt(&status),
                allowed()
            ),
        )
    })
}

/// `status` as text: a name, or a number written as one; 400 naming `allowed` when absent.
fn status_text(body: &Fields, allowed: &str) -> Result<String, ApiError> {
    match body.get("status") {
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => body.str("status")?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidStatus,
                format!("'status' is required; use one of: {allowed}."),
            )
        }),
    }
}

/// `PUT /requests/{reqid}/smartcards/{scid}` (MIM "Update Smartcard Status"): `{"status": ...}`, a
/// card status name or number.
pub fn card_status(body: &Fields) -> Result<SmartcardStatus, ApiError> {
    let allowed = || {
        SmartcardStatus::ALL
            .iter()
            .map(|s| format!("{} ({})", s.name(), s.number()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let status = status_text(body, &allowed())?;
    SmartcardStatus::parse(&status).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidStatus,
            format!(
                "Unknown smart card status '{}'; use one of: {}.",
                excerpt(&status),
                allowed()
            ),
        )
    })
}

/// `POST /requests/{id}/approvals` (opencm): `{"decision": "Approve" | "Deny", "comment"}`.
pub fn approval(body: &Fields) -> Result<(Decision, String), ApiError> {
    let raw = body.required_str("decision")?;
    let decision = Decision::parse(&raw).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidDecision,
            format!("Unknown decision '{}'; use Approve or Deny.", excerpt(&raw)),
        )
    })?;
    let comment = body.str("comment")?.unwrap_or_default();
    bounded("'comment'", &comment, COMMENT_MAX)?;
    Ok((decision, comment))
}

/// `POST /requests/{id}/certificatedata` (MIM "Create Certificate Data"): `certificaterequests`
/// (base64 PKCS#10, PEM tolerated; an array, or one string), `pfxpassword`, `comments`.
pub fn certificate_data(body: &Fields) -> Result<CertificateData, ApiError> {
    let not_strings = || {
        ApiError::new(
            ErrorCode::InvalidBody,
            "'certificaterequests' must be an array of strings.",
        )
    };
    let csrs = match body.get("certificaterequests") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(not_strings)?,
        Some(_) => return Err(not_strings()),
    };
    let pfx_password = body.str("pfxpassword")?;
    if let Some(p) = &pfx_password {
        bounded("'pfxpassword'", p, PASSWORD_MAX)?;
    }
    let comment = body
        .str("comments")?
        .or(body.str("comment")?)
        .unwrap_or_default();
    bounded("'comments'", &comment, COMMENT_MAX)?;
    Ok(CertificateData {
        csrs,
        pfx_password,
        comment,
    })
}
