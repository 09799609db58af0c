//! `/smartcards`: binding a card to an approved smart card request, and reading cards.

use super::QueryPairs;
use crate::error::ApiError;
use crate::extract::{parse_guid, Caller, MimJson, PathGuid};
use crate::router::BASE_PATH;
use crate::wire::SmartcardView;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opencm_app::smartcards::BindCard;

/// `POST /smartcards` `{requestid, cardid, atr}`: 201, `Location`, and the relative URI as the
/// body, as the published example answers.
pub async fn bind_smartcard(
    State(state): State<AppState>,
    Caller(caller): Caller,
    MimJson(body): MimJson,
) -> Result<Response, ApiError> {
    let bind = BindCard {
        request: parse_guid("requestid", &body.required_str("requestid")?)?,
        card_id: parse_guid("cardid", &body.required_str("cardid")?)?,
        atr: body.required_str("atr")?,
    };
    let card = state.app.bind_card(&caller, &bind).await?;
    let relative = format!("api/v1.0/smartcards/{}", card.uuid);
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("{BASE_PATH}/smartcards/{}", card.uuid)) {
        headers.insert(header::LOCATION, v);
    }
    Ok((StatusCode::CREATED, headers, Json(relative)).into_response())
}

/// `GET /smartcards`: the caller's cards (every card for administrators); with `cardid=`, the
/// one card bound with that id, as an object (the published example).
pub async fn list_smartcards(
    State(state): State<AppState>,
    Caller(caller): Caller,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = QueryPairs::from(q)?;
    if let Some(id) = q.get("cardid") {
        let card_id = parse_guid("cardid", id)?;
        let card = state.app.smartcard_by_card_id(&caller, card_id).await?;
        return Ok(Json(SmartcardView::from(&card)).into_response());
    }
    let cards = state.app.smartcards(&caller).await?;
    Ok(Json(cards.iter().map(SmartcardView::from).collect::<Vec<_>>()).into_response())
}

pub async fn get_smartcard(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<SmartcardView>, ApiError> {
    let card = state.app.smartcard(&caller, id).await?;
    Ok(Json(SmartcardView::from(&card)))
}
