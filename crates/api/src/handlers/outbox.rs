//! opencm extension, administrators only: the notification outbox (docs/API.md, "Outbox").
//!
//! - `GET /opencm/v1/outbox[?state=pending|delivered|dead][&limit=N]` — rows, newest first;
//! - `GET /opencm/v1/outbox/{id}` — one row and its delivery log;
//! - `POST /opencm/v1/outbox/{id}/replay` — a dead row due again (its log says who replayed it).

use super::QueryPairs;
use crate::error::ApiError;
use crate::extract::{Caller, PathGuid};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use opencm_app::ports::OutboxAttempt;
use opencm_app::{Actor, ErrorCode};
use opencm_domain::notification::OutboxRow;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RowView {
    id: String,
    event_id: String,
    event: &'static str,
    channel: String,
    state: &'static str,
    attempts: i64,
    created: String,
    next_attempt: Option<String>,
    last_error: Option<String>,
    finished: Option<String>,
    /// The event as webhooks receive it.
    payload: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<Vec<AttemptView>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttemptView {
    at: String,
    node: String,
    outcome: String,
    detail: String,
}

fn view(r: OutboxRow, log: Option<Vec<OutboxAttempt>>) -> RowView {
    let pending = r.state == opencm_domain::notification::OutboxState::Pending;
    RowView {
        id: r.id.to_string(),
        event_id: r.event_id.to_string(),
        event: r.event.name(),
        channel: r.channel,
        state: r.state.name(),
        attempts: r.attempts,
        created: r.created.to_string(),
        next_attempt: pending.then(|| r.next_at.to_string()),
        last_error: r.last_error,
        finished: r.finished.map(|t| t.to_string()),
        payload: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
        log: log.map(|l| {
            l.into_iter()
                .map(|a| AttemptView {
                    at: a.at.to_string(),
                    node: a.node,
                    outcome: a.outcome,
                    detail: a.detail,
                })
                .collect()
        }),
    }
}

pub async fn list_outbox(
    State(state): State<AppState>,
    Caller(caller): Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Vec<RowView>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let limit = match q.get("limit") {
        None => None,
        Some(l) => Some(l.parse::<u32>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "limit is a whole number from 1 to 1000.",
            )
        })?),
    };
    let rows = state
        .app
        .outbox_list(Actor::User(&caller), q.get("state"), limit)
        .await?;
    Ok(Json(rows.into_iter().map(|r| view(r, None)).collect()))
}

pub async fn get_outbox_row(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<RowView>, ApiError> {
    let (row, log) = state.app.outbox_entry(Actor::User(&caller), id).await?;
    Ok(Json(view(row, Some(log))))
}

pub async fn replay_outbox_row(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<RowView>, ApiError> {
    let (row, log) = state.app.replay_outbox(Actor::User(&caller), id).await?;
    Ok(Json(view(row, Some(log))))
}
