//! `/profiletemplates` and their workflow policies.

use crate::error::ApiError;
use crate::extract::{Caller, PathGuids};
use crate::wire::{ProfileTemplateLimitedView, WorkflowPolicyView};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use opencm_domain::request::rights;
use opencm_domain::sddl::access_check;

/// Templates the caller may enroll from (Read and Enroll on the template). `targetuser=current`,
/// which MIM clients send, asks for exactly that and is accepted.
pub async fn list_profile_templates(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<Vec<ProfileTemplateLimitedView>>, ApiError> {
    let sids = caller.token_sids();
    let need = rights::TEMPLATE_READ.union(rights::TEMPLATE_ENROLL);
    let list = state
        .store
        .templates()
        .await?
        .iter()
        .filter(|t| access_check(&t.security_descriptor, &sids, need).is_granted())
        .map(ProfileTemplateLimitedView::from)
        .collect();
    Ok(Json(list))
}

pub async fn get_workflow_policy(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuids(id, type_name): PathGuids,
) -> Result<Json<WorkflowPolicyView>, ApiError> {
    let not_found = || {
        ApiError::not_found(
            "ProfileTemplateNotFound",
            format!("Profile template {id} was not found."),
        )
    };
    let t = state.store.template(id).await?.ok_or_else(not_found)?;
    if !access_check(
        &t.security_descriptor,
        &caller.token_sids(),
        rights::TEMPLATE_READ,
    )
    .is_granted()
    {
        return Err(not_found());
    }
    let rt = super::parse_request_type(&type_name)?;
    let p = t.policy(rt).ok_or_else(|| {
        ApiError::not_found(
            "PolicyNotFound",
            format!("Profile template '{}' has no {rt} workflow policy.", t.name),
        )
    })?;
    Ok(Json(WorkflowPolicyView::from(p)))
}
