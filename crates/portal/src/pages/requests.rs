//! Requests: choosing what to request, the policy's form, a request's page (details, information
//! provided, timeline, approvals, and the actions the caller may take), and cancelling.

use crate::forms::check_csrf;
use crate::i18n::Msg;
use crate::pages::home::{name_of, template_names};
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use opencm_app::NewRequest;
use opencm_domain::policy::WorkflowPolicy;
use opencm_domain::request::{rights, Decision, Request};
use opencm_domain::template::{ProfileTemplate, TemplateKind};
use opencm_domain::{Guid, Outcome, RequestStatus, RequestType, TemplateId, UserId};
use serde::Deserialize;
use std::collections::HashMap;

/// One request in a list.
pub struct RequestRow {
    pub id: String,
    pub kind: &'static str,
    pub kind_mim: &'static str,
    pub template: String,
    pub status: &'static str,
    pub status_class: String,
    pub by: String,
    pub submitted: String,
}

impl RequestRow {
    pub fn of(
        t: &Msg,
        r: &Request,
        templates: &HashMap<Guid, String>,
        people: &HashMap<UserId, String>,
    ) -> RequestRow {
        RequestRow {
            id: r.uuid.to_string(),
            kind: t.request_type(&r.request_type),
            kind_mim: t.request_type_mim(&r.request_type),
            template: name_of(templates, r.profile_template.guid()),
            status: t.request_status(&r.status),
            status_class: format!("{:?}", r.status).to_lowercase(),
            by: person(t, people, r.originator),
            submitted: t.datetime(&r.submitted),
        }
    }
}

pub fn person(t: &Msg, people: &HashMap<UserId, String>, id: UserId) -> String {
    people
        .get(&id)
        .cloned()
        .unwrap_or_else(|| format!("{} ({id})", t.unknown_user))
}

fn kind_label(t: &Msg, k: &TemplateKind) -> &'static str {
    match k {
        TemplateKind::Software => t.kind_software,
        TemplateKind::Smartcard(_) => t.kind_smartcard,
        TemplateKind::VirtualSmartcard(_) => t.kind_virtual_smartcard,
    }
}

pub struct TemplateChoice {
    pub id: String,
    pub name: String,
    pub description: String,
    pub kind: &'static str,
    pub approval: &'static str,
}

#[derive(Template)]
#[template(path = "choose.html")]
struct ChoosePage {
    c: Chrome,
    templates: Vec<TemplateChoice>,
}

fn enroll_policy(t: &ProfileTemplate) -> Option<&WorkflowPolicy> {
    t.policy(RequestType::Enroll).filter(|p| p.enabled)
}

pub async fn choose(State(portal): State<Portal>, s: SignedIn) -> Response {
    let r = async {
        let t = s.v.t;
        let sids = s.user.token_sids();
        let templates = portal
            .app
            .templates_for(&s.user)
            .await?
            .into_iter()
            .filter_map(|tpl| {
                let p = enroll_policy(&tpl)?;
                (p.self_service_enabled || p.is_initiator(&sids)).then(|| TemplateChoice {
                    id: tpl.uuid.to_string(),
                    kind: kind_label(t, &tpl.kind),
                    approval: if p.approvals_needed > 0 {
                        t.needs_approval
                    } else {
                        t.no_approval
                    },
                    name: tpl.name.clone(),
                    description: tpl.description.clone(),
                })
            })
            .collect();
        Ok(html(
            StatusCode::OK,
            &ChoosePage {
                c: Chrome::signed_in(&portal, &s).await?,
                templates,
            },
        ))
    }
    .await;
    respond(&s.v, r)
}

pub struct Field {
    pub name: String,
    pub key: String,
    pub description: String,
    pub required: bool,
    pub pattern: String,
}

#[derive(Template)]
#[template(path = "request_form.html")]
struct FormPage {
    c: Chrome,
    title: String,
    action: String,
    description: String,
    fields: Vec<Field>,
    comments: bool,
    on_behalf: bool,
}

/// The template and its Enroll policy, if the caller may request from it.
async fn requestable(
    portal: &Portal,
    s: &SignedIn,
    id: &str,
) -> Result<(ProfileTemplate, WorkflowPolicy), PageError> {
    let id: TemplateId = id.parse::<Guid>().map_err(|_| PageError::NotFound)?.into();
    let tpl = portal
        .app
        .templates_for(&s.user)
        .await?
        .into_iter()
        .find(|t| t.uuid == id)
        .ok_or(PageError::NotFound)?;
    let policy = enroll_policy(&tpl).cloned().ok_or(PageError::NotFound)?;
    Ok((tpl, policy))
}

pub async fn form(State(portal): State<Portal>, s: SignedIn, Path(id): Path<String>) -> Response {
    let r = async {
        let t = s.v.t;
        let (tpl, policy) = requestable(&portal, &s, &id).await?;
        let fields = policy
            .data_collection
            .iter()
            .enumerate()
            .map(|(i, d)| Field {
                name: d.name.clone(),
                key: format!("d{i}"),
                description: d.description.clone(),
                required: d.required,
                pattern: d
                    .validation
                    .as_ref()
                    .map(|v| v.source().to_string())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(html(
            StatusCode::OK,
            &FormPage {
                c: Chrome::signed_in(&portal, &s).await?,
                title: t.fill(t.request_form_title, &tpl.name),
                action: format!("/requests/new/{}", tpl.uuid),
                description: tpl.description.clone(),
                fields,
                comments: policy.collect_comments,
                on_behalf: policy.is_initiator(&s.user.token_sids()),
            },
        ))
    }
    .await;
    respond(&s.v, r)
}

pub async fn create(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, f.get("csrf").map_or("", String::as_str))?;
        let (tpl, policy) = requestable(&portal, &s, &id).await?;
        let data = policy
            .data_collection
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let v = f.get(&format!("d{i}")).map(|v| v.trim().to_string());
                (d.name.clone(), v.filter(|v| !v.is_empty()))
            })
            .collect();
        let for_user = f.get("for_user").map(|u| u.trim()).unwrap_or("");
        let target = if for_user.is_empty() {
            None
        } else if !policy.is_initiator(&s.user.token_sids()) {
            // Refused before the user is looked up: who exists is not for everyone to learn.
            return Err(PageError::App(opencm_app::AppError::new(
                opencm_app::ErrorCode::AccessDenied,
                format!(
                    "You may not request for other users from '{}': you do not hold its initiator role.",
                    tpl.name
                ),
            )));
        } else {
            match portal.app.look_up_user(for_user).await? {
                Some((p, _)) => Some(p.uuid),
                None => {
                    return Err(PageError::App(opencm_app::AppError::new(
                        opencm_app::ErrorCode::UserNotFound,
                        format!(
                            "No user '{}' was found.",
                            opencm_domain::limits::excerpt(for_user)
                        ),
                    )))
                }
            }
        };
        let created = portal
            .app
            .create_request(
                &s.user,
                NewRequest {
                    template: Some(tpl.uuid),
                    profile: None,
                    smartcard: None,
                    request_type: RequestType::Enroll,
                    target,
                    data,
                    comment: f.get("comment").cloned().unwrap_or_default(),
                    priority: None,
                },
            )
            .await?;
        Ok(Redirect::to(&format!("/requests/{}?created=1", created.uuid)).into_response())
    }
    .await;
    respond(&s.v, r)
}

pub struct Event {
    pub when: String,
    pub who: String,
    pub action: String,
    pub status: &'static str,
    pub detail: String,
}

pub struct ApprovalRow {
    pub who: String,
    pub decision: &'static str,
    pub comment: String,
    pub when: String,
}

#[derive(Template)]
#[template(path = "request.html")]
struct DetailPage {
    c: Chrome,
    r: RequestRow,
    notice: String,
    target: String,
    comment: String,
    completed: String,
    data: Vec<(String, String)>,
    events: Vec<Event>,
    approvals: Vec<ApprovalRow>,
    approvals_needed: u32,
    waiting: String,
    handoff: String,
    may_cancel: bool,
    may_decide: bool,
    decided: String,
    issue: Option<crate::pages::enrol::IssueForm>,
    issued: Vec<crate::pages::enrol::IssuedRow>,
}

#[derive(Deserialize)]
pub struct DetailQuery {
    created: Option<String>,
    race: Option<String>,
    issued: Option<String>,
}

/// The `opencm card` command that finishes an approved smart card request on the user's
/// machine: the browser never makes keys.
fn handoff(base_url: &str, r: &Request, tpl: Option<&ProfileTemplate>) -> String {
    let on_card = tpl.is_some_and(|t| !matches!(t.kind, TemplateKind::Software));
    let verb = match r.request_type {
        RequestType::Enroll | RequestType::TemporaryCards | RequestType::Duplicate => "enroll",
        RequestType::Unblock => "unblock",
        RequestType::OnlineUpdate | RequestType::Renew => "update",
        RequestType::Retire => "retire",
        _ => return String::new(),
    };
    let ready = matches!(r.status, RequestStatus::Approved | RequestStatus::Executing);
    if !on_card || !ready {
        return String::new();
    }
    format!(
        "opencm card {verb} --server {base_url} --request {}",
        r.uuid
    )
}

pub async fn detail(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    let r = async {
        let t = s.v.t;
        let app = &portal.app;
        let id = crate::forms::request_id(&id)?;
        let r = app.request(&s.user, id).await?;
        let history = app.history(&s.user, id).await?;
        let approvals = app.approvals(&s.user, id).await?;
        let templates = template_names(&portal, [r.profile_template.guid()]).await?;
        let people = app
            .user_names(
                [r.originator, r.target]
                    .into_iter()
                    .chain(history.iter().map(|e| e.actor))
                    .chain(approvals.iter().map(|a| a.approver))
                    .collect(),
            )
            .await?;
        let tpl = app.template_of(r.profile_template).await?;
        let approvals_needed = tpl
            .as_deref()
            .and_then(|x| x.policy(r.request_type))
            .map_or(0, |p| p.approvals_needed);
        let approved = approvals
            .iter()
            .filter(|a| a.decision == Decision::Approve)
            .count() as u32;
        let mine = approvals.iter().find(|a| a.approver == s.user.uuid);
        let open = matches!(r.status, RequestStatus::Pending | RequestStatus::Approved);
        let notice = if q.created.is_some() {
            t.request_created.to_string()
        } else if q.issued.is_some() {
            t.certificates_issued.to_string()
        } else if q.race.is_some() {
            t.fill(t.already_decided, t.request_status(&r.status))
        } else {
            String::new()
        };
        let page = DetailPage {
            c: Chrome::signed_in(&portal, &s).await?,
            target: person(t, &people, r.target),
            comment: r.comment.clone(),
            completed: t.opt_datetime(&r.completed),
            data: r
                .data_collection
                .iter()
                .map(|d| (d.name.clone(), d.value.clone().unwrap_or_default()))
                .collect(),
            events: history
                .iter()
                .map(|e| Event {
                    when: t.datetime(&e.at),
                    who: person(t, &people, e.actor),
                    action: t.action(&e.action),
                    status: t.request_status(&e.to),
                    detail: e.detail.clone(),
                })
                .collect(),
            approvals: approvals
                .iter()
                .map(|a| ApprovalRow {
                    who: person(t, &people, a.approver),
                    decision: match a.decision {
                        Decision::Approve => t.decision_approve,
                        Decision::Deny => t.decision_deny,
                    },
                    comment: a.comment.clone(),
                    when: t.datetime(&a.at),
                })
                .collect(),
            approvals_needed,
            waiting: if r.status == RequestStatus::Pending {
                t.fill(
                    t.waiting_approval,
                    &approvals_needed.saturating_sub(approved).to_string(),
                )
            } else {
                String::new()
            },
            handoff: handoff(&s.v.base_url, &r, tpl.as_deref()),
            issue: crate::pages::enrol::issue_form(
                &r,
                tpl.as_deref(),
                crate::pages::enrol::may_execute(&r, &s.user),
            ),
            issued: crate::pages::enrol::issued(&portal, &s, &r).await?,
            may_cancel: open && r.allows(&s.user, rights::CANCEL),
            may_decide: r.status == RequestStatus::Pending
                && mine.is_none()
                && r.allows(&s.user, rights::APPROVE),
            decided: mine.map_or(String::new(), |a| {
                t.fill(
                    t.decided_by_you,
                    match a.decision {
                        Decision::Approve => t.decision_approve,
                        Decision::Deny => t.decision_deny,
                    },
                )
            }),
            notice,
            r: RequestRow::of(t, &r, &templates, &people),
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn cancel(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        let id = crate::forms::request_id(&id)?;
        portal.app.finish(&s.user, id, Outcome::Canceled).await?;
        Ok(Redirect::to(&format!("/requests/{id}")).into_response())
    }
    .await;
    respond(&s.v, r)
}
