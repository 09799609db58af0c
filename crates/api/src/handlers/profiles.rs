//! `/profiles`, `/profiles/{id}`, `/profiles/{id}/operations`, `/requests/{id}/profiles`.
//! A profile is visible to the user it is assigned to and to administrators (BA).

use super::QueryPairs;
use crate::error::ApiError;
use crate::extract::{Caller, PathGuid};
use crate::service::visible;
use crate::wire::ProfileView;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use opencm_domain::profile::ProfileStatus;
use opencm_domain::{Guid, Principal, Sid};
use opencm_store::ProfileRecord;

fn is_admin(caller: &Principal) -> bool {
    caller.token_sids().contains(&Sid::administrators())
}

pub(crate) async fn visible_profile(
    state: &AppState,
    caller: &Principal,
    id: Guid,
) -> Result<ProfileRecord, ApiError> {
    let not_found =
        || ApiError::not_found("ProfileNotFound", format!("Profile {id} was not found."));
    let p = state.store.profile(id).await?.ok_or_else(not_found)?;
    if p.assigned_user != caller.uuid && !is_admin(caller) {
        return Err(not_found());
    }
    Ok(p)
}

async fn view(
    state: &AppState,
    caller: &Principal,
    p: &ProfileRecord,
) -> Result<ProfileView, ApiError> {
    let ops = match state.store.template(p.template).await? {
        Some(t) => {
            opencm_domain::profile::operations(&t, p.status, caller, p.assigned_user == caller.uuid)
        }
        None => Vec::new(),
    };
    Ok(ProfileView::new(p, ops))
}

async fn views(
    state: &AppState,
    caller: &Principal,
    list: &[ProfileRecord],
) -> Result<Vec<ProfileView>, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        out.push(view(state, caller, p).await?);
    }
    Ok(out)
}

/// The caller's profiles (`status=` filters by name or number).
pub async fn list_profiles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<Vec<ProfileView>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let status = match q.get("status") {
        Some(s) => Some(ProfileStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = ProfileStatus::ALL.iter().map(|s| s.name()).collect();
            ApiError::bad_request(
                "InvalidStatus",
                format!(
                    "Unknown profile status '{s}'; use one of: {}.",
                    names.join(", ")
                ),
            )
        })?),
        None => None,
    };
    let list = state.store.profiles(Some(caller.uuid), status).await?;
    Ok(Json(views(&state, &caller, &list).await?))
}

pub async fn get_profile(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<ProfileView>, ApiError> {
    let p = visible_profile(&state, &caller, id).await?;
    Ok(Json(view(&state, &caller, &p).await?))
}

pub async fn list_profile_operations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<&'static str>>, ApiError> {
    let p = visible_profile(&state, &caller, id).await?;
    Ok(Json(view(&state, &caller, &p).await?.profile_operations))
}

/// The profiles a request created or acts on; visible with the request.
pub async fn list_request_profiles(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<ProfileView>>, ApiError> {
    visible(&state, &caller, id).await?;
    let list = state.store.profiles_of_request(id).await?;
    Ok(Json(views(&state, &caller, &list).await?))
}
