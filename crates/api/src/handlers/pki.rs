//! What relying parties fetch, outside the API base path and without authentication: the CA chain
//! and the CRL. The CRL is signed on each fetch from the certificates table, so a revocation is in
//! it as soon as its transaction has committed.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use opencm_ca::Revocation;

pub async fn get_ca_chain(State(state): State<AppState>) -> Response {
    let pem: String = state
        .ca
        .chain_der()
        .iter()
        .map(|c| opencm_ca::pem("CERTIFICATE", c))
        .collect();
    ([(header::CONTENT_TYPE, "application/x-pem-file")], pem).into_response()
}

async fn crl(state: &AppState) -> Result<Vec<u8>, ApiError> {
    let revoked = state.store.revoked_certificates().await?;
    let entries = revoked
        .iter()
        .map(|r| Revocation {
            serial: hex_bytes(&r.serial_hex),
            at: r.revoked_at.to_offset_date_time(),
            reason: r.reason,
        })
        .collect::<Vec<_>>();
    let now = state.clock.now().to_offset_date_time();
    // The CRL number only has to grow: the signing time in seconds does.
    let number = now.unix_timestamp().max(1) as u64;
    state
        .ca
        .crl(&entries, number, now, now + time::Duration::days(1))
        .map_err(|e| ApiError::internal(format!("CRL signing failed: {e}")))
}

pub async fn get_crl_der(State(state): State<AppState>) -> Result<Response, ApiError> {
    let der = crl(&state).await?;
    Ok(([(header::CONTENT_TYPE, "application/pkix-crl")], der).into_response())
}

pub async fn get_crl_pem(State(state): State<AppState>) -> Result<Response, ApiError> {
    let der = crl(&state).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        opencm_ca::pem("X509 CRL", &der),
    )
        .into_response())
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect()
}
