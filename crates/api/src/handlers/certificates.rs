//! `/requests/{id}/certificaterequestgenerationoptions`, `/requests/{id}/certificatedata`,
//! `/profiles/{id}/certificates` and `/certificates`.

use super::NoStore;
use crate::error::ApiError;
use crate::extract::{Caller, MimJson, PathGuid};
use crate::wire::{bodies, CertificateResponseView, GenerationOptionView, IssuedCertificateView};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;

/// One entry per certificate the client must generate a key and request for. Needs Execute.
pub async fn get_generation_options(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<GenerationOptionView>>, ApiError> {
    let certs = state.app.generation_options(&caller, id.into()).await?;
    Ok(Json(certs.iter().map(GenerationOptionView::from).collect()))
}

/// `certificaterequests`: base64 PKCS#10 (PEM tolerated), one per generation option, as an array
/// (a single string is accepted for one); `pfxpassword` for server-generated keys; `comments`.
pub async fn create_certificate_data(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
    MimJson(body): MimJson,
) -> Result<NoStore<Json<Vec<CertificateResponseView>>>, ApiError> {
    let data = bodies::certificate_data(&body)?;
    let delivered = state
        .app
        .submit_certificate_data(&caller, id.into(), data)
        .await?;
    // A server-generated key or a recovered one travels in the PKCS#12.
    Ok(NoStore(Json(
        delivered
            .iter()
            .map(CertificateResponseView::from)
            .collect(),
    )))
}

pub async fn list_profile_certificates(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<IssuedCertificateView>>, ApiError> {
    let certs = state.app.profile_certificates(&caller, id.into()).await?;
    Ok(Json(
        certs.iter().map(IssuedCertificateView::short).collect(),
    ))
}

/// The caller's certificates, newest first, those of retired profiles left out (`limit`).
pub async fn list_certificates(
    State(state): State<AppState>,
    Caller(caller): Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Vec<IssuedCertificateView>>, ApiError> {
    let page = super::page(&super::QueryPairs::from(q)?)?;
    let certs = state.app.certificates(&caller, page.limit).await?;
    let now = state.app.clock().now();
    Ok(Json(
        certs
            .iter()
            .map(|c| IssuedCertificateView::long(c, &caller.login, now))
            .collect(),
    ))
}
