//! Liveness and readiness, outside the API base path and without authentication.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn healthz() -> Json<Value> {
    Json(json!({ "Status": "ok" }))
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let engine = state.app.ready().await?;
    Ok(Json(json!({ "Status": "ready", "Database": engine })))
}
