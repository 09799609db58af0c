//! The help desk: find a user it serves and see their cards, certificates and requests, with
//! what it may do for them (`opencm_app::help_desk` decides who may see whom).

use crate::pages::home::{name_of, template_names};
use crate::pages::requests::RequestRow;
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use opencm_app::ports::SmartcardRecord;
use opencm_domain::{Guid, Principal};
use serde::Deserialize;
use std::collections::HashMap;

/// One card in a list.
pub struct CardRow {
    pub uuid: String,
    pub card_id: String,
    pub holder: String,
    pub template: String,
    pub status: &'static str,
    pub atr: String,
    pub created: String,
}

impl CardRow {
    pub fn of(
        t: &crate::i18n::Msg,
        c: &SmartcardRecord,
        holder: Option<&Principal>,
        templates: &HashMap<Guid, String>,
    ) -> CardRow {
        CardRow {
            uuid: c.uuid.to_string(),
            card_id: c.card_id.to_string(),
            holder: holder.map_or_else(
                || format!("{} ({})", t.unknown_user, c.assigned_user),
                |p| format!("{} ({})", p.display_name, p.login),
            ),
            template: name_of(templates, c.template.guid()),
            status: t.card_status(&c.status),
            atr: c.atr.clone(),
            created: t.datetime(&c.created),
        }
    }
}

pub struct ProfileRow {
    pub template: String,
    pub status: &'static str,
    pub operations: Vec<&'static str>,
    pub request: String,
}

#[derive(Template)]
#[template(path = "people.html")]
struct PeoplePage {
    c: Chrome,
    login: String,
    searched: bool,
}

#[derive(Template)]
#[template(path = "person.html")]
struct PersonPage {
    c: Chrome,
    name: String,
    login: String,
    login_query: String,
    enabled: bool,
    templates: Vec<(String, String)>,
    cards: Vec<CardRow>,
    profiles: Vec<ProfileRow>,
    requests: Vec<RequestRow>,
}

#[derive(Deserialize)]
pub struct PeopleQuery {
    #[serde(default)]
    login: String,
}

/// `GET /people?login=`: the search; a user the caller serves opens their page.
pub async fn search(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<PeopleQuery>,
) -> Response {
    let r = async {
        let login = q.login.trim().to_string();
        if !login.is_empty() {
            if let Some(f) = portal.app.user_for_help_desk(&s.user, &login).await? {
                let to = format!("/people/{}", crate::forms::encode(&f.user.login));
                return Ok(Redirect::to(&to).into_response());
            }
        }
        Ok(html(
            if login.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::NOT_FOUND
            },
            &PeoplePage {
                c: Chrome::signed_in(&portal, &s).await?,
                searched: !login.is_empty(),
                login: login.chars().take(256).collect(),
            },
        ))
    }
    .await;
    respond(&s.v, r)
}

/// `GET /people/{login}`: what the help desk sees of one user.
pub async fn person(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(login): Path<String>,
) -> Response {
    let r = async {
        let t = s.v.t;
        let app = &portal.app;
        let f = app
            .user_for_help_desk(&s.user, &login)
            .await?
            .ok_or(PageError::NotFound)?;
        let names = template_names(
            &portal,
            f.cards
                .iter()
                .map(|c| c.card.template.guid())
                .chain(f.profiles.iter().map(|p| p.profile.template.guid()))
                .chain(f.requests.iter().map(|r| r.profile_template.guid()))
                .collect::<Vec<_>>(),
        )
        .await?;
        let people = app
            .user_names(f.requests.iter().map(|r| r.originator).collect())
            .await?;
        let page = PersonPage {
            c: Chrome::signed_in(&portal, &s).await?,
            name: f.user.display_name.clone(),
            login_query: crate::forms::encode(&f.user.login),
            login: f.user.login.clone(),
            enabled: f.enabled,
            templates: f
                .templates
                .iter()
                .map(|(id, name)| (id.to_string(), name.clone()))
                .collect(),
            cards: f
                .cards
                .iter()
                .map(|c| CardRow::of(t, &c.card, Some(&f.user), &names))
                .collect(),
            profiles: f
                .profiles
                .iter()
                .map(|v| ProfileRow {
                    template: name_of(&names, v.profile.template.guid()),
                    status: t.profile_status(&v.profile.status),
                    operations: v.operations.iter().map(|o| t.operation(o)).collect(),
                    request: v.profile.request.to_string(),
                })
                .collect(),
            requests: f
                .requests
                .iter()
                .map(|r| RequestRow::of(t, r, &names, &people))
                .collect(),
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}
