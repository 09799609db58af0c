//! opencm extension: one-time passwords (MIM CM's `OneTimePasswordPolicy`), where the MIM REST
//! API has no place for them (docs/COMPATIBILITY.md, "One-time passwords"):
//!
//! - `POST /opencm/v1/requests/{id}/onetimepassword` `{"Password": "…"}` — the executor presents
//!   it; 200 with the request, then execution goes on through the MIM routes; 403
//!   `OneTimePasswordRefused` for a wrong, expired or exhausted one (recorded in the history);
//! - `GET /opencm/v1/requests/{id}/onetimepassword` — the originator is shown it once (policy
//!   `originator`): 200 `{"Password": "…"}`, then 409 `OneTimePasswordNotPending`;
//! - `POST /opencm/v1/requests/{id}/onetimepassword/resend` — a new one (the old one stops
//!   working), distributed as the policy says: the help desk, an approver, an administrator.

use crate::error::ApiError;
use crate::extract::{Caller, MimJson, PathGuid};
use crate::wire::RequestView;
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

pub async fn present(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
    MimJson(body): MimJson,
) -> Result<Json<RequestView>, ApiError> {
    let password = body.required_str("password")?;
    let r = state
        .app
        .present_secret(&caller, id.into(), &password)
        .await?;
    Ok(Json(RequestView::from(&r)))
}

pub async fn show(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<impl IntoResponse, ApiError> {
    let password = state.app.show_secret(&caller, id.into()).await?;
    Ok((
        // A secret: no cache keeps it.
        [(header::CACHE_CONTROL, "no-store")],
        Json(serde_json::json!({ "Password": password })),
    ))
}

pub async fn resend(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<RequestView>, ApiError> {
    let r = state.app.resend_secret(&caller, id.into()).await?;
    Ok(Json(RequestView::from(&r)))
}
