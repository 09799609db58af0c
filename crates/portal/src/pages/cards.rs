//! Smart cards: the inventory (by card id, holder, ATR, status), a card's page with the
//! operations the caller may start on it, and the offline unblock the help desk performs for a
//! user whose card cannot reach the server (challenge in, response out).

use crate::forms::check_csrf;
use crate::pages::enrol::IssuedRow;
use crate::pages::help_desk::CardRow;
use crate::pages::home::template_names;
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use base64::Engine;
use opencm_app::help_desk::{card_status, OfflineUnblocked};
use opencm_app::ports::CardSearch;
use opencm_app::{AppError, ErrorCode, NewRequest};
use opencm_domain::smartcard::SmartcardStatus;
use opencm_domain::{Guid, RequestType, SmartcardId};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "inventory.html")]
struct InventoryPage {
    c: Chrome,
    q_card_id: String,
    q_holder: String,
    q_atr: String,
    q_status: String,
    statuses: Vec<(String, &'static str)>,
    searched: bool,
    error: String,
    cards: Vec<CardRow>,
}

#[derive(Deserialize, Default)]
pub struct InventoryQuery {
    #[serde(default)]
    card_id: String,
    #[serde(default)]
    holder: String,
    #[serde(default)]
    atr: String,
    #[serde(default)]
    status: String,
}

/// `GET /cards?card_id=&holder=&atr=&status=`: the cards the caller may see that match.
pub async fn inventory(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(q): Query<InventoryQuery>,
) -> Response {
    let r = async {
        let t = s.v.t;
        let app = &portal.app;
        let searched = [&q.card_id, &q.holder, &q.atr, &q.status]
            .iter()
            .any(|v| !v.trim().is_empty());
        let mut error = String::new();
        let mut search = CardSearch {
            limit: opencm_app::help_desk::HELP_DESK_ROWS,
            atr: Some(q.atr.chars().take(128).collect()),
            ..Default::default()
        };
        match q.card_id.trim() {
            "" => {}
            id => match id.trim_matches(['{', '}']).parse::<Guid>() {
                Ok(g) => search.card_id = Some(g),
                Err(_) => error = t.bad_card_id.to_string(),
            },
        }
        match q.status.trim() {
            "" => {}
            st => match card_status(st) {
                Some(v) => search.status = Some(v),
                None => error = t.error_invalid.to_string(),
            },
        }
        let mut holder_unknown = false;
        match q.holder.trim() {
            "" => {}
            login => match app.look_up_user(login).await? {
                Some((u, _)) => search.user = Some(u.uuid),
                None => holder_unknown = true,
            },
        }
        let found = if searched && error.is_empty() && !holder_unknown {
            app.search_cards(&s.user, search).await?
        } else {
            Vec::new()
        };
        let names = template_names(
            &portal,
            found
                .iter()
                .map(|(c, _)| c.template.guid())
                .collect::<Vec<_>>(),
        )
        .await?;
        let page = InventoryPage {
            c: Chrome::signed_in(&portal, &s).await?,
            q_card_id: q.card_id.chars().take(64).collect(),
            q_holder: q.holder.chars().take(256).collect(),
            q_atr: q.atr.chars().take(128).collect(),
            q_status: q.status.clone(),
            statuses: SmartcardStatus::ALL
                .iter()
                .map(|st| (st.name().to_string(), t.card_status(st)))
                .collect(),
            searched,
            error,
            cards: found
                .iter()
                .map(|(c, owner)| CardRow::of(t, c, owner.as_ref(), &names))
                .collect(),
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}

pub struct Response64 {
    pub base64: String,
    pub hex: String,
    pub request: String,
}

#[derive(Template)]
#[template(path = "card.html")]
struct CardPage {
    c: Chrome,
    k: CardRow,
    holder_login: String,
    request: String,
    notice: String,
    /// (operation, plain name, MIM name)
    operations: Vec<(&'static str, &'static str, &'static str)>,
    offline: bool,
    response: Option<Response64>,
    certificates: Vec<IssuedRow>,
}

fn card_uuid(id: &str) -> Result<SmartcardId, PageError> {
    id.parse::<Guid>()
        .map(SmartcardId::from)
        .map_err(|_| PageError::NotFound)
}

async fn card_page(
    portal: &Portal,
    s: &SignedIn,
    id: SmartcardId,
    status: StatusCode,
    notice: String,
    response: Option<Response64>,
) -> Result<Response, PageError> {
    let t = s.v.t;
    let app = &portal.app;
    let (view, owner) = app.card_for_help_desk(&s.user, id).await?;
    let names = template_names(portal, [view.card.template.guid()]).await?;
    let certificates = app
        .card_certificates(&s.user, id)
        .await?
        .into_iter()
        .map(|c| IssuedRow::of(t, c))
        .collect();
    let own = view.card.assigned_user == s.user.uuid;
    let page = CardPage {
        c: Chrome::signed_in(portal, s).await?,
        k: CardRow::of(t, &view.card, owner.as_ref(), &names),
        holder_login: match &owner {
            Some(o) if !own => crate::forms::encode(&o.login),
            _ => String::new(),
        },
        request: view.card.request.to_string(),
        notice,
        offline: !own && view.operations.contains(&"offlineunblock"),
        operations: view
            .operations
            .iter()
            .filter(|o| **o != "offlineunblock" || own)
            .map(|o| (*o, t.operation(o), *o))
            .collect(),
        response,
        certificates,
    };
    Ok(html(status, &page))
}

/// `GET /cards/{id}`: one card, for its holder, the help desk that serves them, administrators.
pub async fn card(State(portal): State<Portal>, s: SignedIn, Path(id): Path<String>) -> Response {
    let r = async {
        let id = card_uuid(&id)?;
        card_page(&portal, &s, id, StatusCode::OK, String::new(), None).await
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct OperationForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    comment: String,
}

/// `POST /cards/{id}/requests`: a request of this operation on the card, for its holder; on to
/// the request's page (it waits for approval, or hands off to `opencm card`, or is done).
pub async fn start(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<OperationForm>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        let id = card_uuid(&id)?;
        let (view, owner) = portal.app.card_for_help_desk(&s.user, id).await?;
        let own = view.card.assigned_user == s.user.uuid;
        // Someone else's offline unblock has a form of its own (a reason, the challenge).
        let op = view
            .operations
            .iter()
            .filter(|o| own || **o != "offlineunblock")
            .find(|o| o.eq_ignore_ascii_case(f.operation.trim()))
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::AccessDenied,
                    "That operation is not one you may start on this card now.",
                )
            })?;
        let request_type = RequestType::parse(op).ok_or(PageError::NotFound)?;
        let r = portal
            .app
            .create_request(
                &s.user,
                NewRequest {
                    request_type,
                    template: None,
                    profile: None,
                    smartcard: Some(id),
                    target: owner.map(|o| o.uuid),
                    comment: f.comment.trim().to_string(),
                    priority: None,
                    data: Vec::new(),
                },
            )
            .await?;
        Ok(Redirect::to(&format!("/requests/{}?created=1", r.uuid)).into_response())
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct OfflineForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    key: String,
}

/// A challenge as the user reads it: base64, or hex (with or without spaces), as base64.
fn challenge_base64(s: &str) -> Option<String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let is_hex = matches!(compact.len(), 16 | 32) && compact.chars().all(|c| c.is_ascii_hexdigit());
    let b64 = base64::engine::general_purpose::STANDARD;
    if is_hex {
        let bytes: Option<Vec<u8>> = (0..compact.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&compact[i..i + 2], 16).ok())
            .collect();
        return bytes.map(|b| b64.encode(b));
    }
    b64.decode(&compact).ok().map(|_| compact)
}

/// `POST /cards/{id}/offline-unblock`: the request, the response, the request completed.
pub async fn offline_unblock(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<OfflineForm>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        let id = card_uuid(&id)?;
        let t = s.v.t;
        let challenge = challenge_base64(&f.challenge).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidQuery,
                "The challenge is neither base64 nor hex (16 or 32 hex digits).",
            )
        })?;
        let factory = match f.key.as_str() {
            "own" => false,
            "factory" => true,
            _ => {
                return Err(AppError::new(
                    ErrorCode::InvalidQuery,
                    "Choose the admin key: the card's own ('own') or the template's factory key ('factory').",
                )
                .into())
            }
        };
        let done = portal
            .app
            .offline_unblock(&s.user, id, &f.reason, &challenge, factory)
            .await?;
        match done {
            OfflineUnblocked::Response { request, response } => {
                let hex = base64::engine::general_purpose::STANDARD
                    .decode(&response)
                    .map(|b| b.iter().map(|x| format!("{x:02X}")).collect::<String>())
                    .unwrap_or_default();
                card_page(
                    &portal,
                    &s,
                    id,
                    StatusCode::OK,
                    t.offline_done.to_string(),
                    Some(Response64 {
                        base64: response,
                        hex,
                        request: request.uuid.to_string(),
                    }),
                )
                .await
            }
            OfflineUnblocked::Waiting(request) => {
                Ok(Redirect::to(&format!("/requests/{}?created=1", request.uuid)).into_response())
            }
        }
    }
    .await;
    respond(&s.v, r)
}

#[cfg(test)]
mod tests {
    use super::challenge_base64;

    #[test]
    fn a_challenge_is_read_as_base64_or_hex() {
        assert_eq!(
            challenge_base64("1hFD+cz/0so=").as_deref(),
            Some("1hFD+cz/0so=")
        );
        assert_eq!(
            challenge_base64("D6 11 43 F9 CC FF D2 CA").as_deref(),
            Some("1hFD+cz/0so=")
        );
        assert_eq!(
            challenge_base64("d61143f9ccffd2ca").as_deref(),
            Some("1hFD+cz/0so=")
        );
        assert_eq!(challenge_base64("“not base64”"), None);
    }
}
