//! Administrators' audit search over every request's history, and its CSV export.

use crate::pages::requests::person;
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opencm_app::ports::AuditQuery;
use opencm_app::{AppError, ErrorCode};
use opencm_domain::decided::AuditAction;
use opencm_domain::request::AuditEvent;
use opencm_domain::{Guid, Timestamp};
use serde::Deserialize;

/// Events per page; the CSV export takes up to the use case's largest page.
const PAGE: u32 = 100;
const EXPORT: u32 = 1000;

#[derive(Deserialize, Default, Clone)]
pub struct AuditForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
}

pub struct Row {
    pub when: String,
    pub who: String,
    pub request: String,
    pub action: String,
    pub status: &'static str,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    f: AuditForm,
    actions: Vec<&'static str>,
    rows: Vec<Row>,
    older: Option<String>,
    export: String,
}

fn invalid(message: String) -> PageError {
    PageError::App(AppError::new(ErrorCode::InvalidQuery, message))
}

/// A `YYYY-MM-DD` day as the instant it starts (UTC).
fn day(s: &str, next: bool) -> Result<Option<Timestamp>, PageError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s.trim(), format).map_err(|_| {
        invalid(format!(
            "'{}' is not a date (YYYY-MM-DD).",
            opencm_domain::limits::excerpt(s)
        ))
    })?;
    let d = if next { d.next_day().unwrap_or(d) } else { d };
    let t = d.midnight().assume_utc();
    Ok(Some(Timestamp::from_micros(
        (t.unix_timestamp_nanos() / 1000) as i64,
    )))
}

async fn query(portal: &Portal, f: &AuditForm, limit: u32) -> Result<AuditQuery, PageError> {
    let actor = match f.user.trim() {
        "" => None,
        login => Some(
            portal
                .app
                .look_up_user(login)
                .await?
                .map(|(p, _)| p.uuid)
                // Nobody by that name: a search that finds nothing, not an error.
                .unwrap_or_else(|| Guid::NIL.into()),
        ),
    };
    let request = match f.request.trim() {
        "" => None,
        r => Some(
            r.parse::<Guid>()
                .map_err(|_| {
                    invalid(format!(
                        "'{}' is not a request id.",
                        opencm_domain::limits::excerpt(r)
                    ))
                })?
                .into(),
        ),
    };
    let action = match f.action.trim() {
        "" => None,
        a => Some(AuditAction::parse(a).ok_or_else(|| {
            invalid(format!(
                "'{}' is not an action.",
                opencm_domain::limits::excerpt(a)
            ))
        })?),
    };
    Ok(AuditQuery {
        actor,
        request,
        action,
        from: day(&f.from, false)?,
        until: day(&f.until, true)?,
        before: f.before,
        limit,
    })
}

async fn rows(
    portal: &Portal,
    s: &SignedIn,
    events: &[(i64, AuditEvent)],
) -> Result<Vec<Row>, PageError> {
    let t = s.v.t;
    let people = portal
        .app
        .user_names(events.iter().map(|(_, e)| e.actor).collect())
        .await?;
    Ok(events
        .iter()
        .map(|(_, e)| Row {
            when: t.datetime(&e.at),
            who: person(t, &people, e.actor),
            request: e.request.to_string(),
            action: e.action.clone(),
            status: t.request_status(&e.to),
            detail: e.detail.clone(),
        })
        .collect())
}

fn link(path: &str, f: &AuditForm, before: Option<i64>) -> String {
    use crate::forms::encode;
    let mut s = format!(
        "{path}?user={}&request={}&action={}&from={}&until={}",
        encode(&f.user),
        encode(&f.request),
        encode(&f.action),
        encode(&f.from),
        encode(&f.until)
    );
    if let Some(b) = before {
        s.push_str(&format!("&before={b}"));
    }
    s
}

pub async fn search(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(f): Query<AuditForm>,
) -> Response {
    let r = async {
        let q = query(&portal, &f, PAGE).await?;
        let events = portal.app.audit_search(&s.user, q).await?;
        let older = (events.len() as u32 == PAGE)
            .then(|| events.last().map(|(id, _)| link("/audit", &f, Some(*id))))
            .flatten();
        let page = AuditPage {
            c: Chrome::signed_in(&portal, &s).await?,
            actions: AuditAction::all().map(|a| a.name()).collect(),
            rows: rows(&portal, &s, &events).await?,
            older,
            export: link("/audit.csv", &f, None),
            f,
        };
        Ok(html(StatusCode::OK, &page))
    }
    .await;
    respond(&s.v, r)
}

/// A CSV field (RFC 4180), and never a formula a spreadsheet would run (`=`, `+`, `-`, `@`
/// first: OWASP's CSV injection advice).
fn csv(field: &str) -> String {
    let field = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{field}")
    } else {
        field.to_string()
    };
    format!("\"{}\"", field.replace('"', "\"\""))
}

pub async fn export(
    State(portal): State<Portal>,
    s: SignedIn,
    Query(f): Query<AuditForm>,
) -> Response {
    let r = async {
        let q = query(&portal, &f, EXPORT).await?;
        let events = portal.app.audit_search(&s.user, q).await?;
        let rows = rows(&portal, &s, &events).await?;
        let mut out = String::from("time,user,request,action,status,detail\r\n");
        for ((_, e), r) in events.iter().zip(&rows) {
            let when =
                e.at.to_offset_date_time()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
            out.push_str(
                &[
                    csv(&when),
                    csv(&r.who),
                    csv(&r.request),
                    csv(&r.action),
                    csv(r.status),
                    csv(&r.detail),
                ]
                .join(","),
            );
            out.push_str("\r\n");
        }
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"opencm-audit.csv\"",
                ),
            ],
            out,
        )
            .into_response())
    }
    .await;
    respond(&s.v, r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(super::csv("a\"b"), "\"a\"\"b\"");
        assert_eq!(super::csv("=HYPERLINK(1)"), "\"'=HYPERLINK(1)\"");
    }
}
