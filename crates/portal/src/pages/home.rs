//! The home page: the signed-in user's requests (newest first, a page at a time), certificates
//! with their days to expiry and the operations each allows, and smart cards.

use crate::pages::requests::RequestRow;
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use opencm_app::{Page, RequestFilter};
use opencm_domain::{Guid, Timestamp};
use serde::Deserialize;
use std::collections::HashMap;

/// Requests per page of the home page.
pub const REQUESTS_SHOWN: u32 = 20;

pub struct ProfileRow {
    pub template: String,
    pub status: &'static str,
    pub expires: String,
    pub operations: Vec<&'static str>,
    pub request: String,
}

pub struct CardRow {
    pub uuid: String,
    pub card_id: String,
    pub status: &'static str,
    pub template: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    c: Chrome,
    hello: String,
    requests: Vec<RequestRow>,
    more: Option<String>,
    profiles: Vec<ProfileRow>,
    cards: Vec<CardRow>,
}

#[derive(Deserialize)]
pub struct HomeQuery {
    after: Option<String>,
}

pub async fn page(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<HomeQuery>,
) -> Response {
    let r = async {
        let t = s.v.t;
        let app = &portal.app;
        let after = match q.after.as_deref().filter(|a| !a.is_empty()) {
            Some(a) => Some(a.parse::<Guid>().map_err(|_| PageError::NotFound)?),
            None => None,
        };
        let page = app
            .list_requests(
                &s.user,
                RequestFilter {
                    target_is_caller: true,
                    newest_first: true,
                    page: Page {
                        after,
                        limit: Some(REQUESTS_SHOWN),
                    },
                    ..Default::default()
                },
            )
            .await?;
        let profiles = app.profiles(&s.user, None, Page::default()).await?.items;
        let my_cards: Vec<_> = app
            .smartcards(&s.user)
            .await?
            .into_iter()
            .filter(|c| c.assigned_user == s.user.uuid)
            .collect();
        let names = template_names(
            &portal,
            page.items
                .iter()
                .map(|r| r.profile_template.guid())
                .chain(profiles.iter().map(|v| v.profile.template.guid()))
                .chain(my_cards.iter().map(|c| c.template.guid()))
                .collect::<Vec<_>>(),
        )
        .await?;
        let people = app
            .user_names(page.items.iter().map(|r| r.originator).collect())
            .await?;
        let requests = page
            .items
            .iter()
            .map(|r| RequestRow::of(t, r, &names, &people))
            .collect();
        let profiles = app.profiles(&s.user, None, Page::default()).await?.items;
        let expiry = soonest_expiry(&portal, &s).await?;
        let now = app.clock().now();
        let profiles = profiles
            .into_iter()
            .map(|v| ProfileRow {
                template: name_of(&names, v.profile.template.guid()),
                status: t.profile_status(&v.profile.status),
                expires: expiry
                    .get(&v.profile.uuid.guid())
                    .map_or_else(|| t.none.to_string(), |e| days_left(t, *e, now)),
                operations: v.operations.iter().map(|o| t.operation(o)).collect(),
                request: v.profile.request.to_string(),
            })
            .collect();
        let cards = my_cards
            .into_iter()
            .map(|c| CardRow {
                uuid: c.uuid.to_string(),
                card_id: c.card_id.to_string(),
                status: t.card_status(&c.status),
                template: name_of(&names, c.template.guid()),
            })
            .collect();
        Ok(html(
            StatusCode::OK,
            &HomePage {
                c: Chrome::signed_in(&portal, &s).await?,
                hello: t.fill(t.hello, &s.user.display_name),
                requests,
                more: page.next_after.map(|a| format!("/?after={a}")),
                profiles,
                cards,
            },
        ))
    }
    .await;
    respond(&s.v, r)
}

/// The names of the templates `ids` name (each read from the use cases' template cache).
pub async fn template_names(
    portal: &Portal,
    ids: impl IntoIterator<Item = Guid>,
) -> Result<HashMap<Guid, String>, PageError> {
    let mut out = HashMap::new();
    let ids: Vec<Guid> = ids.into_iter().collect();
    for id in ids {
        if out.contains_key(&id) {
            continue;
        }
        if let Some(t) = portal.app.template_of(id.into()).await? {
            out.insert(id, t.name.clone());
        }
    }
    Ok(out)
}

pub fn name_of(names: &HashMap<Guid, String>, id: Guid) -> String {
    names.get(&id).cloned().unwrap_or_else(|| id.to_string())
}

/// The earliest expiry of each profile's valid certificates.
async fn soonest_expiry(
    portal: &Portal,
    s: &SignedIn,
) -> Result<HashMap<Guid, Timestamp>, PageError> {
    let mut out: HashMap<Guid, Timestamp> = HashMap::new();
    for c in portal.app.certificates(&s.user, None).await? {
        let e = out.entry(c.profile.guid()).or_insert(c.not_after);
        if c.not_after < *e {
            *e = c.not_after;
        }
    }
    Ok(out)
}

fn days_left(t: &crate::i18n::Msg, expires: Timestamp, now: Timestamp) -> String {
    let days = (expires.micros() - now.micros()) / (86_400 * 1_000_000);
    if expires <= now {
        t.expired.to_string()
    } else {
        format!(
            "{} ({})",
            t.datetime(&expires),
            t.fill(t.days_left, &days.to_string())
        )
    }
}
