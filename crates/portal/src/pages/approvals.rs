//! The approval queue and an approver's decision. Two approvers deciding at once end with one
//! decision: the use case decides again on the current request, and the one who came second is
//! told what happened instead of overwriting it.

use crate::forms::check_csrf;
use crate::pages::home::template_names;
use crate::pages::requests::RequestRow;
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use opencm_app::{AppError, ErrorKind};
use opencm_domain::request::Decision;

use serde::Deserialize;

pub struct DecidedRow {
    pub r: RequestRow,
    pub decision: &'static str,
    pub when: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct QueuePage {
    c: Chrome,
    needs_me: Vec<RequestRow>,
    waiting: Vec<RequestRow>,
    decided: Vec<DecidedRow>,
}

pub async fn queue(State(portal): State<Portal>, s: SignedIn) -> Response {
    let r = async {
        let t = s.v.t;
        let q = portal.app.approval_queue(&s.user).await?;
        let templates = template_names(
            &portal,
            q.needs_me
                .iter()
                .chain(&q.waiting_on_others)
                .chain(q.decided.iter().map(|(r, _)| r))
                .map(|r| r.profile_template.guid())
                .collect::<Vec<_>>(),
        )
        .await?;
        let people = portal
            .app
            .user_names(
                q.needs_me
                    .iter()
                    .chain(&q.waiting_on_others)
                    .chain(q.decided.iter().map(|(r, _)| r))
                    .map(|r| r.originator)
                    .collect(),
            )
            .await?;
        let row = |r| RequestRow::of(t, r, &templates, &people);
        let page = QueuePage {
            needs_me: q.needs_me.iter().map(row).collect(),
            waiting: q.waiting_on_others.iter().map(row).collect(),
            decided: q
                .decided
                .iter()
                .map(|(r, a)| DecidedRow {
                    r: row(r),
                    decision: match a.decision {
                        Decision::Approve => t.decision_approve,
                        Decision::Deny => t.decision_deny,
                    },
                    when: t.datetime(&a.at),
                })
                .collect(),
            c: Chrome {
                queue: q.needs_me.len(),
                ..Chrome::signed_in_without_count(&s)
            },
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    comment: String,
}

pub async fn decide(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<DecisionForm>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        let id = crate::forms::request_id(&id)?;
        let decision = Decision::parse(&f.decision).ok_or_else(|| {
            PageError::App(AppError::new(
                opencm_app::ErrorCode::InvalidDecision,
                "Choose Approve or Deny.",
            ))
        })?;
        match portal
            .app
            .decide(&s.user, id, decision, f.comment.clone())
            .await
        {
            Ok(_) => Ok(Redirect::to(&format!("/requests/{id}")).into_response()),
            // Another approver decided first (or this one already did): show the request as
            // it is now, with what happened.
            Err(e) if e.kind() == ErrorKind::Conflict => {
                tracing::info!(request = %id, code = e.code.as_str(), "decision refused: the request changed first");
                Ok(Redirect::to(&format!("/requests/{id}?race=1")).into_response())
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    respond(&s.v, r)
}
