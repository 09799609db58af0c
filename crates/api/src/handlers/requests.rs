//! `/requests`: create, list, read, and `PUT` Completed / Canceled / Abandoned.

use super::QueryPairs;
use crate::error::ApiError;
use crate::extract::{parse_guid, Caller, MimJson, PathGuid};
use crate::router::BASE_PATH;
use crate::service::{self, NewRequest};
use crate::wire::{parse_data_collection, AuditEventView, RequestView};
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opencm_domain::request::rights;
use opencm_domain::{Outcome, RequestStatus, Sid};
use opencm_store::RequestQuery;

pub const MAX_PAGE: u32 = 1000;

pub async fn create_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    MimJson(body): MimJson,
) -> Result<Response, ApiError> {
    if let Some(sc) = body.str("smartcard")? {
        let id = parse_guid("smartcard", &sc)?;
        return Err(ApiError::not_found(
            "SmartcardNotFound",
            format!("Smart card {id} was not found."),
        ));
    }
    let profile = body
        .str("profile")?
        .map(|p| parse_guid("profile", &p))
        .transpose()?;
    let template = body
        .str("profiletemplateuuid")?
        .map(|t| parse_guid("profiletemplateuuid", &t))
        .transpose()?;
    let type_name = match body.get("type") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => body.required_str("type")?,
    };
    let request_type = super::parse_request_type(&type_name)?;
    let target = body
        .str("target")?
        .map(|t| parse_guid("target", &t))
        .transpose()?;
    let new = NewRequest {
        template,
        profile,
        request_type,
        target,
        data: parse_data_collection(body.get("datacollection"))?,
        comment: body.str("comment")?.unwrap_or_default(),
        priority: body.int("priority")?,
    };
    let r = service::create(&state, &caller, new).await?;
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
    let mut query = RequestQuery {
        limit: MAX_PAGE,
        ..Default::default()
    };
    let mut next_params = Vec::new();
    if let Some(t) = q.get("targetuser") {
        if !t.eq_ignore_ascii_case("current") {
            return Err(ApiError::bad_request(
                "InvalidQuery",
                format!("targetuser='{t}' is not supported; use targetuser=current."),
            ));
        }
        query.target = Some(caller.uuid);
        next_params.push("targetuser=current".to_string());
    }
    if let Some(s) = q.get("status") {
        let status = RequestStatus::parse(s).ok_or_else(|| {
            let names: Vec<&str> = RequestStatus::ALL.iter().map(|s| s.name()).collect();
            ApiError::bad_request(
                "InvalidStatus",
                format!("Unknown status '{s}'; use one of: {}.", names.join(", ")),
            )
        })?;
        query.status = Some(status);
        next_params.push(format!("status={}", status.name()));
    }
    if let Some(l) = q.get("limit") {
        let n: u32 = l.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidQuery",
                format!("limit must be a whole number from 1 to {MAX_PAGE}."),
            )
        })?;
        query.limit = n.min(MAX_PAGE);
    }
    if let Some(a) = q.get("after") {
        query.after = Some(parse_guid("after", a)?);
    }
    let sids = caller.token_sids();
    // Request descriptors always grant everything to BA, so administrators need no pre-filter.
    if !sids.contains(&Sid::administrators()) {
        query.reader_sids = Some(sids.iter().map(|s| s.to_string()).collect());
    }
    let rows = state.store.list_requests(&query).await?;
    let full_page = rows.len() as u32 == query.limit;
    let last = rows.last().map(|r| r.uuid);
    let visible: Vec<RequestView> = rows
        .iter()
        .filter(|r| r.allows(&caller, rights::READ))
        .map(RequestView::from)
        .collect();
    let mut res = Json(visible).into_response();
    if let (true, Some(last)) = (full_page, last) {
        next_params.push(format!("limit={}", query.limit));
        next_params.push(format!("after={last}"));
        let link = format!(
            "<{BASE_PATH}/requests?{}>; rel=\"next\"",
            next_params.join("&")
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            res.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(res)
}

pub async fn get_request(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<RequestView>, ApiError> {
    let r = service::visible(&state, &caller, id).await?;
    Ok(Json(RequestView::from(&r)))
}

pub async fn set_request_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
    MimJson(body): MimJson,
) -> Result<Json<RequestView>, ApiError> {
    let allowed = || {
        Outcome::ALL
            .iter()
            .map(|o| o.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let status = match body.get("status") {
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => body.str("status")?.ok_or_else(|| {
            ApiError::bad_request(
                "InvalidStatus",
                format!("'status' is required; use one of: {}.", allowed()),
            )
        })?,
    };
    let outcome = Outcome::parse(&status).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidStatus",
            format!(
                "Status '{status}' cannot be set on a request; use one of: {}.",
                allowed()
            ),
        )
    })?;
    let r = service::finish(&state, &caller, id, outcome).await?;
    Ok(Json(RequestView::from(&r)))
}

pub async fn list_request_history(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<AuditEventView>>, ApiError> {
    service::visible(&state, &caller, id).await?;
    let events = state.store.history(id).await?;
    Ok(Json(events.iter().map(AuditEventView::from).collect()))
}
