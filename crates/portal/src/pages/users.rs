//! Administrators' users and tokens: find a user (opencm's own or the directory's), see their
//! groups, status and API tokens, disable or enable them, revoke a token — the same use cases as
//! `opencm user|token` and `/opencm/v1/…`, so every change is authorized there and audited.

use crate::forms::check_csrf;
use crate::render::{html, respond, Chrome};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use opencm_app::{Actor, UserSource};
use serde::Deserialize;

pub struct Found {
    pub login: String,
    pub name: String,
    pub uuid: String,
    pub sid: String,
    pub local: bool,
    pub enabled: bool,
    pub groups: Vec<String>,
}

pub struct TokenRow {
    pub id: String,
    pub login: String,
    pub created: String,
    pub expires: String,
    pub revoked: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    login: String,
    found: Option<Found>,
    searched: bool,
    tokens: Vec<TokenRow>,
    notice: String,
}

#[derive(Deserialize)]
pub struct UsersQuery {
    #[serde(default)]
    login: String,
    done: Option<String>,
}

pub async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<UsersQuery>,
) -> Response {
    let r = async {
        let t = s.v.t;
        let app = &portal.app;
        let login = q.login.trim().to_string();
        let found = match login.as_str() {
            "" => None,
            l => app
                .user_for_administrator(Actor::User(&s.user), l)
                .await?
                .map(|(p, source, enabled)| Found {
                    enabled,
                    local: source == UserSource::Local,
                    login: p.login.clone(),
                    name: p.display_name.clone(),
                    uuid: p.uuid.to_string(),
                    sid: p.sid.to_string(),
                    groups: p.groups.iter().map(|g| g.to_string()).collect(),
                }),
        };
        let tokens = app
            .tokens(
                Actor::User(&s.user),
                found.as_ref().map(|f| f.login.as_str()),
            )
            .await?
            .into_iter()
            .rev()
            .take(200)
            .map(|i| TokenRow {
                id: i.id,
                login: i.record.login,
                created: t.datetime(&i.record.created),
                expires: t.opt_datetime(&i.record.expires),
                revoked: t.opt_datetime(&i.record.revoked),
            })
            .collect();
        let page = UsersPage {
            c: Chrome::signed_in(&portal, &s).await?,
            searched: !login.is_empty(),
            login,
            found,
            tokens,
            notice: if q.done.is_some() {
                t.saved.to_string()
            } else {
                String::new()
            },
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct EnabledForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

pub async fn set_enabled(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(login): Path<String>,
    Form(f): Form<EnabledForm>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        let enabled = f.enabled == "true";
        portal
            .app
            .set_user_enabled(Actor::User(&s.user), &login, enabled)
            .await?;
        Ok(Redirect::to(&format!(
            "/users?login={}&done=1",
            crate::forms::encode(&login)
        ))
        .into_response())
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
}

pub async fn revoke_token(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<RevokeForm>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        portal.app.revoke_token(Actor::User(&s.user), &id).await?;
        Ok(Redirect::to(&format!(
            "/users?login={}&done=1",
            crate::forms::encode(&f.login)
        ))
        .into_response())
    }
    .await;
    respond(&s.v, r)
}
