//! `/smartcards`: binding a card to an approved smart card request, and reading cards.

use super::{NoStore, QueryPairs};
use crate::error::ApiError;
use crate::extract::{parse_guid, Caller, MimJson, PathGuid, PathTwoGuids};
use crate::router::BASE_PATH;
use crate::wire::bodies;
use crate::wire::IssuedCertificateView;
use crate::wire::SmartcardView;
use crate::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use opencm_app::smartcards::BindCard;
use opencm_app::{CardPresented, ErrorCode};
use opencm_domain::Guid;

/// `POST /smartcards` `{requestid, cardid, atr}`: 201, `Location`, and the relative URI as the
/// body, as the published example answers.
pub async fn bind_smartcard(
    State(state): State<AppState>,
    Caller(caller): Caller,
    MimJson(body): MimJson,
) -> Result<Response, ApiError> {
    let bind = BindCard {
        request: parse_guid("requestid", &body.required_str("requestid")?)?.into(),
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
    let card = state.app.smartcard(&caller, id.into()).await?;
    Ok(Json(SmartcardView::from(&card)))
}

/// `PUT /requests/{reqid}/smartcards/{scid}` `{"status": ...}`: the card's status during the
/// request's execution; answers the card.
pub async fn set_smartcard_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathTwoGuids(request, card): PathTwoGuids,
    MimJson(body): MimJson,
) -> Result<Json<SmartcardView>, ApiError> {
    let to = bodies::card_status(&body)?;
    let card = state
        .app
        .set_card_status(&caller, request.into(), card.into(), to)
        .await?;
    Ok(Json(SmartcardView::from(&card)))
}

pub async fn list_smartcard_operations(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<&'static str>>, ApiError> {
    Ok(Json(state.app.card_operations(&caller, id.into()).await?))
}

pub async fn list_smartcard_certificates(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(id): PathGuid,
) -> Result<Json<Vec<IssuedCertificateView>>, ApiError> {
    let certs = state.app.card_certificates(&caller, id.into()).await?;
    Ok(Json(
        certs.iter().map(IssuedCertificateView::short).collect(),
    ))
}

/// HEAD on a card secret route: refused (405, `Allow: GET`). Answered like GET, it would release
/// and record a secret whose answer is then thrown away.
pub async fn head_card_secret() -> Response {
    let mut r = ApiError::new(
        ErrorCode::MethodNotAllowed,
        "A card secret is released to GET only.",
    )
    .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    r
}

/// `cardid` (required) and `atr` (optional) of the card secret routes.
fn presented<'a>(
    q: &'a QueryPairs,
    request: Guid,
    card: Guid,
) -> Result<CardPresented<'a>, ApiError> {
    let card_id = q.get("cardid").ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "'cardid' is required: the id the card reports.",
        )
    })?;
    Ok(CardPresented {
        request: request.into(),
        card: card.into(),
        card_id,
        atr: q.get("atr"),
    })
}

/// `GET /requests/{reqid}/smartcards/{scid}/diversifiedkey?cardid=&atr=`: the card's admin key,
/// base64, as a JSON string.
pub async fn get_diversified_key(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathTwoGuids(request, card): PathTwoGuids,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<NoStore<Json<String>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let at = presented(&q, request, card)?;
    Ok(NoStore(Json(
        state.app.diversified_key(&caller, &at).await?,
    )))
}

/// `GET /requests/{reqid}/smartcards/{scid}/puk?cardid=&atr=` (opencm): the card's PUK, as a
/// JSON string, for the requests that personalise or unblock the card.
pub async fn get_puk(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathTwoGuids(request, card): PathTwoGuids,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<NoStore<Json<String>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let at = presented(&q, request, card)?;
    Ok(NoStore(Json(state.app.card_puk(&caller, &at).await?)))
}

/// `GET /requests/{reqid}/smartcards/{scid}/authenticationresponse?cardid=&challenge=&diversified=&atr=`.
pub async fn get_authentication_response(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathTwoGuids(request, card): PathTwoGuids,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<NoStore<Json<String>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let at = presented(&q, request, card)?;
    let challenge = q.get("challenge").ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            "'challenge' is required: the card's challenge in base64.",
        )
    })?;
    let diversified = match q.get("diversified").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "'diversified' must be true or false (got '{}').",
                    crate::wire::excerpt(other)
                ),
            ))
        }
    };
    Ok(NoStore(Json(
        state
            .app
            .authentication_response(&caller, &at, challenge, diversified)
            .await?,
    )))
}

/// `GET /requests/{reqid}/smartcards/{scid}/serverproposedpin?cardid=&challenge=&atr=`.
pub async fn get_request_proposed_pin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathTwoGuids(request, card): PathTwoGuids,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<NoStore<Json<String>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let at = presented(&q, request, card)?;
    Ok(NoStore(Json(state.app.proposed_pin(&caller, &at).await?)))
}

/// `GET /smartcards/{id}/serverproposedpin?cardid=&challenge=&atr=`: under the request the card
/// was bound for.
pub async fn get_proposed_pin(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathGuid(card): PathGuid,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<NoStore<Json<String>>, ApiError> {
    let q = QueryPairs::from(q)?;
    let request = state.app.card_request(card.into()).await?;
    let at = presented(&q, request.guid(), card)?;
    // The request is implied here: a caller who may not see it learns only that the card was
    // not found, never the request's id.
    match state.app.proposed_pin(&caller, &at).await {
        Err(e) if e.kind() == opencm_app::ErrorKind::NotFound => Err(opencm_app::AppError::new(
            ErrorCode::SmartcardNotFound,
            format!("Smart card {card} was not found."),
        )
        .into()),
        other => Ok(NoStore(Json(other?))),
    }
}
