//! opencm extension, administrators only: offboarding over HTTP, so a portal or a script can do
//! what `opencm token|user|group` do. The use cases check that the caller is an administrator;
//! these handlers only extract and convert.
//!
//! - `GET /opencm/v1/tokens[?user=LOGIN]` — tokens by id, owner and dates (never the tokens);
//! - `DELETE /opencm/v1/tokens/{id}` — revoke (the id or its first 8+ characters);
//! - `POST /opencm/v1/users/disable` and `/enable` with `{"Login": ...}`;
//! - `POST /opencm/v1/groups/members` and `/members/remove` with `{"Login": ..., "Sid": ...}`.
//!
//! Logins and SIDs travel in bodies and queries, not paths: paths are lowercased for MIM's
//! case-insensitive routes, and a login need not be lowercase.

use crate::error::ApiError;
use crate::extract::{Caller, MimJson};
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use opencm_app::{Actor, TokenInfo};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TokenView {
    id: String,
    user: String,
    user_uuid: String,
    created: String,
    expires: Option<String>,
    revoked: Option<String>,
}

impl From<&TokenInfo> for TokenView {
    fn from(t: &TokenInfo) -> Self {
        let r = &t.record;
        TokenView {
            id: t.id.clone(),
            user: r.login.clone(),
            user_uuid: r.user.to_string(),
            created: r.created.to_string(),
            expires: r.expires.map(|t| t.to_string()),
            revoked: r.revoked.map(|t| t.to_string()),
        }
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    user: Option<String>,
}

pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<TokenQuery>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    let list = state
        .app
        .tokens(Actor::User(&caller), q.user.as_deref())
        .await?;
    Ok(Json(list.iter().map(TokenView::from).collect()))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let t = state.app.revoke_token(Actor::User(&caller), &id).await?;
    Ok(Json(TokenView::from(&t)))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Changed {
    changed: bool,
}

pub async fn disable_user(
    state: State<AppState>,
    caller: Caller,
    body: MimJson,
) -> Result<Json<Changed>, ApiError> {
    set_enabled(state, caller, body, false).await
}

pub async fn enable_user(
    state: State<AppState>,
    caller: Caller,
    body: MimJson,
) -> Result<Json<Changed>, ApiError> {
    set_enabled(state, caller, body, true).await
}

async fn set_enabled(
    State(state): State<AppState>,
    Caller(caller): Caller,
    MimJson(body): MimJson,
    enabled: bool,
) -> Result<Json<Changed>, ApiError> {
    let login = body.required_str("login")?;
    let changed = state
        .app
        .set_user_enabled(Actor::User(&caller), &login, enabled)
        .await?;
    Ok(Json(Changed { changed }))
}

pub async fn add_member(
    state: State<AppState>,
    caller: Caller,
    body: MimJson,
) -> Result<Json<Changed>, ApiError> {
    set_member(state, caller, body, true).await
}

pub async fn remove_member(
    state: State<AppState>,
    caller: Caller,
    body: MimJson,
) -> Result<Json<Changed>, ApiError> {
    set_member(state, caller, body, false).await
}

async fn set_member(
    State(state): State<AppState>,
    Caller(caller): Caller,
    MimJson(body): MimJson,
    member: bool,
) -> Result<Json<Changed>, ApiError> {
    let login = body.required_str("login")?;
    let sid = body.required_str("sid")?;
    let changed = state
        .app
        .set_member(Actor::User(&caller), &login, &sid, member)
        .await?;
    Ok(Json(Changed { changed }))
}
