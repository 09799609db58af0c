//! `/requests/{id}/certificaterequestgenerationoptions`, `/requests/{id}/certificatedata`,
//! `/profiles/{id}/certificates` and `/certificates`.

use crate::error::ApiError;
use crate::extract::{Caller, MimJson, PathGuid};
use crate::issuance;
use crate::service::visible;
use crate::wire::{CertificateResponseView, GenerationOptionView, IssuedCertificateView};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::request::rights;
use serde_json::Value;

/// One entry per certificate the client must generate a key and request for. Needs Execute.
pub async fn get_generation_options(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<GenerationOptionView>>, ApiError> {
    let r = visible(&state, &caller, id).await?;
    if !r.allows(&caller, rights::EXECUTE) {
        return Err(ApiError::from(
            opencm_domain::request::ActionError::Forbidden(rights::EXECUTE, id),
        ));
    }
    let template = state.store.template(r.profile_template).await?;
    let certs = template
        .map(|t| issuance::certificates_for(&r, &t.certificates))
        .unwrap_or_default();
    Ok(Json(
        certs
            .iter()
            .filter(|c| !c.server_generated)
            .map(GenerationOptionView::from)
            .collect(),
    ))
}

/// `certificaterequests`: base64 PKCS#10 (PEM tolerated), one per generation option, as an array
/// (a single string is accepted for one); `pfxpassword` for server-generated keys; `comments`.
pub async fn create_certificate_data(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
    MimJson(body): MimJson,
) -> Result<Json<Vec<CertificateResponseView>>, ApiError> {
    let csrs = match body.get("certificaterequests") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ApiError::bad_request(
                    "InvalidBody",
                    "'certificaterequests' must be an array of strings.",
                )
            })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "InvalidBody",
                "'certificaterequests' must be an array of strings.",
            ))
        }
    };
    let password = body.str("pfxpassword")?;
    let comment = body
        .str("comments")?
        .or(body.str("comment")?)
        .unwrap_or_default();
    let delivered = issuance::submit(&state, &caller, id, csrs, password, comment).await?;
    Ok(Json(
        delivered
            .iter()
            .map(CertificateResponseView::from)
            .collect(),
    ))
}

pub async fn list_profile_certificates(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<IssuedCertificateView>>, ApiError> {
    let p = super::profiles::visible_profile(&state, &caller, id).await?;
    let certs = state.store.certificates_of_profile(p.uuid).await?;
    Ok(Json(
        certs.iter().map(IssuedCertificateView::short).collect(),
    ))
}

/// The caller's certificates, those of retired profiles left out.
pub async fn list_certificates(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<IssuedCertificateView>>, ApiError> {
    let certs = state.store.certificates_of_user(caller.uuid).await?;
    let now = state.clock.now();
    let retired: std::collections::HashSet<_> = state
        .store
        .profiles(Some(caller.uuid), Some(ProfileStatus::Retired))
        .await?
        .into_iter()
        .map(|p| p.uuid)
        .collect();
    Ok(Json(
        certs
            .iter()
            .filter(|c| !retired.contains(&c.profile))
            .map(|c| IssuedCertificateView::long(c, &caller.login, now))
            .collect(),
    ))
}
