//! What relying parties fetch, outside the API base path and without authentication: the CA chain
//! and the CRL. The CRL is signed on each fetch from the certificates table, so a revocation is in
//! it as soon as its transaction has committed.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

pub async fn get_ca_chain(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        state.app.ca_chain_pem()?,
    )
        .into_response())
}

pub async fn get_crl_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    let der = state.app.crl().await?;
    opencm_app::metrics::crl_served();
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

pub async fn get_crl_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let pem = state.app.crl_pem().await?;
    opencm_app::metrics::crl_served();
    Ok(([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response())
}

/// The issuing CA's certificate, DER: the caIssuers location written into every certificate.
pub async fn get_ca_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok((
        [(header::CONTENT_TYPE, "application/pkix-cert")],
        state.app.ca_der()?,
    )
        .into_response())
}
