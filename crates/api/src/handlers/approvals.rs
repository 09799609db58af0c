//! opencm extension: `POST /requests/{id}/approvals` (`{"decision": "Approve"|"Deny", "comment"}`)
//! and `GET /requests/{id}/approvals`.

use crate::error::ApiError;
use crate::extract::{Caller, MimJson, PathGuid};
use crate::wire::{bodies, ApprovalView, RequestView};
use crate::AppState;
use axum::extract::State;
use axum::Json;

/// Answers 200 with the request as it now stands (an approval is a change of the request).
pub async fn create_approval(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
    MimJson(body): MimJson,
) -> Result<Json<RequestView>, ApiError> {
    let (decision, comment) = bodies::approval(&body)?;
    let r = state
        .app
        .decide(&caller, id.into(), decision, comment)
        .await?;
    Ok(Json(RequestView::from(&r)))
}

pub async fn list_approvals(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<ApprovalView>>, ApiError> {
    let list = state.app.approvals(&caller, id.into()).await?;
    Ok(Json(list.iter().map(ApprovalView::from).collect()))
}
