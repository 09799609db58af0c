//! Software certificates from the portal: an approved request's certificates are issued from a
//! CSR the user pastes (the key never leaves their machine), or, where the template has the
//! server make the key, handed over once as a PKCS#12 protected by a password the user chooses
//! (never stored; only the sealed key is kept when the template archives it). Issued
//! certificates download as DER.

use crate::forms::check_csrf;
use crate::render::{respond, PageError};
use crate::visitor::SignedIn;
use crate::Portal;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use opencm_app::{AppError, CertificateData, ErrorCode};
use opencm_domain::request::{rights, Request};
use opencm_domain::template::{ProfileTemplate, TemplateKind};
use opencm_domain::{Outcome, RequestStatus};
use std::collections::HashMap;

/// The shortest PKCS#12 password the portal accepts.
pub const PFX_PASSWORD_MIN: usize = 8;

/// What the request page offers for getting a software request's certificates.
pub struct IssueForm {
    /// The certificates the user makes a key and CSR for (their template common names).
    pub csrs: Vec<String>,
    /// The server makes a key: the user chooses the PKCS#12's password.
    pub server_key: bool,
}

/// The form, when the request is a software request the caller may execute now.
pub fn issue_form(
    r: &Request,
    tpl: Option<&ProfileTemplate>,
    caller_may_execute: bool,
) -> Option<IssueForm> {
    let tpl = tpl?;
    if !matches!(tpl.kind, TemplateKind::Software)
        || r.status != RequestStatus::Approved
        || !caller_may_execute
    {
        return None;
    }
    let certs = tpl.certificates_issued_by(r.request_type);
    if certs.is_empty() {
        return None;
    }
    Some(IssueForm {
        csrs: certs
            .iter()
            .filter(|c| !c.server_generated)
            .map(|c| c.common_name.clone())
            .collect(),
        server_key: certs.iter().any(|c| c.server_generated),
    })
}

pub fn may_execute(r: &Request, caller: &opencm_domain::Principal) -> bool {
    r.allows(caller, rights::EXECUTE)
}

fn invalid(message: &str) -> PageError {
    PageError::App(AppError::new(ErrorCode::InvalidBody, message))
}

pub async fn issue(
    State(portal): State<Portal>,
    s: SignedIn,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, f.get("csrf").map_or("", String::as_str))?;
        let id = crate::forms::request_id(&id)?;
        let app = &portal.app;
        let current = app.request(&s.user, id).await?;
        let tpl = app.template_of(current.profile_template).await?;
        let form = issue_form(&current, tpl.as_deref(), may_execute(&current, &s.user))
            .ok_or_else(|| {
                PageError::App(AppError::new(
                    ErrorCode::InvalidStatus,
                    "This request has no certificates to get now.",
                ))
            })?;
        let csrs: Vec<String> = (0..form.csrs.len())
            .map(|i| f.get(&format!("csr{i}")).cloned().unwrap_or_default())
            .collect();
        let password = if form.server_key {
            let p = f.get("password").cloned().unwrap_or_default();
            if p.chars().count() < PFX_PASSWORD_MIN {
                return Err(invalid("The file's password has at least 8 characters."));
            }
            if f.get("password2") != Some(&p) {
                return Err(invalid("The two passwords differ."));
            }
            Some(p)
        } else {
            None
        };
        let delivered = app
            .submit_certificate_data(
                &s.user,
                id,
                CertificateData {
                    csrs,
                    pfx_password: password,
                    comment: String::new(),
                },
            )
            .await?;
        app.finish(&s.user, id, Outcome::Completed).await?;
        match delivered.iter().find(|d| d.pfx.is_some()) {
            Some(d) => Ok((
                [
                    (header::CONTENT_TYPE, "application/x-pkcs12".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!(
                            "attachment; filename=\"{}.p12\"",
                            file_name(&d.template_common_name)
                        ),
                    ),
                ],
                d.pfx.clone().unwrap_or_default(),
            )
                .into_response()),
            None => Ok(Redirect::to(&format!("/requests/{id}?issued=1")).into_response()),
        }
    }
    .await;
    respond(&s.v, r)
}

/// A name safe in `Content-Disposition`: letters, digits, `-`, `_`, `.`.
fn file_name(s: &str) -> String {
    let n: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    if n.is_empty() {
        "certificate".into()
    } else {
        n
    }
}

pub struct IssuedRow {
    pub name: String,
    pub serial: String,
    pub expires: String,
    pub status: String,
}

impl IssuedRow {
    pub fn of(t: &crate::i18n::Msg, c: opencm_app::ports::CertificateRecord) -> IssuedRow {
        IssuedRow {
            name: c.template_common_name,
            expires: t.datetime(&c.not_after),
            status: format!("{:?}", c.status),
            serial: c.serial_hex,
        }
    }
}

/// The certificates a request's new profile holds, for its page.
pub async fn issued(
    portal: &Portal,
    s: &SignedIn,
    r: &Request,
) -> Result<Vec<IssuedRow>, PageError> {
    if r.new_profile.is_none() {
        return Ok(Vec::new());
    }
    let t = s.v.t;
    Ok(portal
        .app
        .request_certificates(&s.user, r.uuid)
        .await?
        .into_iter()
        .map(|c| IssuedRow::of(t, c))
        .collect())
}

/// `GET /requests/{id}/certificates/{serial}`: one of the request's certificates, DER.
pub async fn download(
    State(portal): State<Portal>,
    s: SignedIn,
    Path((id, serial)): Path<(String, String)>,
) -> Response {
    let r = async {
        let id = crate::forms::request_id(&id)?;
        let cert = portal
            .app
            .request_certificates(&s.user, id)
            .await?
            .into_iter()
            .find(|c| c.serial_hex.eq_ignore_ascii_case(&serial))
            .ok_or(PageError::NotFound)?;
        use base64::Engine;
        let der = base64::engine::general_purpose::STANDARD
            .decode(&cert.der_b64)
            .map_err(|e| PageError::App(AppError::internal(format!("stored certificate: {e}"))))?;
        Ok((
            [
                (header::CONTENT_TYPE, "application/pkix-cert".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"{}-{}.cer\"",
                        file_name(&cert.template_common_name),
                        file_name(&cert.serial_hex)
                    ),
                ),
            ],
            der,
        )
            .into_response())
    }
    .await;
    respond(&s.v, r)
}
