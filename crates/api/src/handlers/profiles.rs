//! `/profiles`, `/profiles/{id}`, `/profiles/{id}/operations`, `/requests/{id}/profiles`.
//! A profile is visible to the user it is assigned to and to administrators (BA).

use super::QueryPairs;
use crate::error::ApiError;
use crate::extract::{Caller, PathGuid};
use crate::wire::ProfileView;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opencm_app::ErrorCode;
use opencm_domain::profile::ProfileStatus;

/// The caller's profiles (`status=` filters by name or number; `limit`, `after` page by uuid).
pub async fn list_profiles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = QueryPairs::from(q)?;
    let status = match q.get("status") {
        Some(s) => Some(ProfileStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = ProfileStatus::ALL.iter().map(|s| s.name()).collect();
            ApiError::new(
                ErrorCode::InvalidStatus,
                format!(
                    "Unknown profile status '{}'; use one of: {}.",
                    crate::wire::excerpt(s),
                    names.join(", ")
                ),
            )
        })?),
        None => None,
    };
    let page = super::page(&q)?;
    let found = state.app.profiles(&caller, status, page).await?;
    let views: Vec<ProfileView> = found.items.iter().map(ProfileView::from).collect();
    let mut params = Vec::new();
    if let Some(s) = status {
        params.push(format!("status={}", s.name()));
    }
    Ok(super::with_next_link(
        Json(views).into_response(),
        "profiles",
        params,
        page,
        found.next_after,
    ))
}

pub async fn get_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<ProfileView>, ApiError> {
    let p = state.app.profile(&caller, id.into()).await?;
    Ok(Json(ProfileView::from(&p)))
}

pub async fn list_profile_operations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<&'static str>>, ApiError> {
    Ok(Json(
        state.app.profile(&caller, id.into()).await?.operations,
    ))
}

/// The profiles a request created or acts on; visible with the request.
pub async fn list_request_profiles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<ProfileView>>, ApiError> {
    let list = state.app.profiles_of_request(&caller, id.into()).await?;
    Ok(Json(list.iter().map(ProfileView::from).collect()))
}
