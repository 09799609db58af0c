//! `/profiletemplates`, their workflow policies and their smart card configuration.

use crate::error::ApiError;
use crate::extract::{Caller, PathGuid, PathGuids};
use crate::wire::{ProfileTemplateLimitedView, SmartcardConfigView, WorkflowPolicyView};
use crate::AppState;
use axum::extract::State;
use axum::Json;

/// Templates the caller may enroll from (Read and Enroll on the template). `targetuser=current`,
/// which MIM clients send, asks for exactly that and is accepted.
pub async fn list_profile_templates(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ProfileTemplateLimitedView>>, ApiError> {
    let list = state.app.templates_for(&caller).await?;
    Ok(Json(
        list.iter().map(ProfileTemplateLimitedView::from).collect(),
    ))
}

pub async fn get_workflow_policy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuids(id, type_name): PathGuids,
) -> Result<Json<WorkflowPolicyView>, ApiError> {
    let rt = super::parse_request_type(&type_name)?;
    let p = state.app.workflow_policy(&caller, id.into(), rt).await?;
    Ok(Json(WorkflowPolicyView::from(&p)))
}

/// `GET /profiletemplates/{id}/configuration/smartcards`.
pub async fn get_smartcard_configuration(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<SmartcardConfigView>, ApiError> {
    let c = state
        .app
        .smartcard_configuration(&caller, id.into())
        .await?;
    Ok(Json(SmartcardConfigView::from(&c)))
}
