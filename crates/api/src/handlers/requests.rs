//! `/requests`: create, list, read, and `PUT` Completed / Canceled / Abandoned.

use super::QueryPairs;
use crate::error::ApiError;
use crate::extract::{Caller, MimJson, PathGuid};
use crate::router::BASE_PATH;
use crate::wire::{bodies, AuditEventView, RequestView};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opencm_app::ErrorCode;
use opencm_app::RequestFilter;
use opencm_domain::RequestStatus;

pub async fn create_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    MimJson(body): MimJson,
) -> Result<Response, ApiError> {
    let new = bodies::new_request(&body)?;
    let r = state.app.create_request(&caller, new).await?;
    let relative = format!("api/v1.0/requests/{}", r.uuid);
    let location = format!("{BASE_PATH}/requests/{}", r.uuid);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(relative)).into_response())
}

pub async fn list_requests(
    State(state): State<AppState>,
    Caller(caller): Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = QueryPairs::from(q)?;
    let mut filter = RequestFilter::default();
    let mut next_params = Vec::new();
    if let Some(t) = q.get("targetuser") {
        if !t.eq_ignore_ascii_case("current") {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "targetuser='{}' is not supported; use targetuser=current.",
                    crate::wire::excerpt(t)
                ),
            ));
        }
        filter.target_is_caller = true;
        next_params.push("targetuser=current".to_string());
    }
    if let Some(s) = q.get("status") {
        let status = RequestStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = RequestStatus::ALL.iter().map(|s| s.name()).collect();
            ApiError::new(
                ErrorCode::InvalidStatus,
                format!(
                    "Unknown status '{}'; use one of: {}.",
                    crate::wire::excerpt(s),
                    names.join(", ")
                ),
            )
        })?;
        filter.status = Some(status);
        next_params.push(format!("status={}", status.name()));
    }
    let page = super::page(&q)?;
    filter.page = page;
    let found = state.app.list_requests(&caller, filter).await?;
    let views: Vec<RequestView> = found.items.iter().map(RequestView::from).collect();
    Ok(super::with_next_link(
        Json(views).into_response(),
        "requests",
        next_params,
        page,
        found.next_after,
    ))
}

pub async fn get_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<RequestView>, ApiError> {
    let r = state.app.request(&caller, id.into()).await?;
    Ok(Json(RequestView::from(&r)))
}

pub async fn set_request_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
    MimJson(body): MimJson,
) -> Result<Json<RequestView>, ApiError> {
    let outcome = bodies::outcome(&body)?;
    let r = state.app.finish(&caller, id.into(), outcome).await?;
    Ok(Json(RequestView::from(&r)))
}

pub async fn list_request_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<AuditEventView>>, ApiError> {
    let events = state.app.history(&caller, id.into()).await?;
    Ok(Json(events.iter().map(AuditEventView::from).collect()))
}
