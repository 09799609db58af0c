//! Rendering: the frame every page shares (`Chrome`), and errors as pages in the visitor's
//! language with the status their kind calls for.

use crate::i18n::Msg;
use crate::visitor::{SignedIn, Visitor};
use crate::Portal;
use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use opencm_app::{AppError, ErrorKind};

/// What the frame of every page shows: the language, the user and their sign-out form, the
/// number of requests waiting for them, the language switch.
pub struct Chrome {
    pub t: &'static Msg,
    pub user_name: Option<String>,
    pub csrf: String,
    pub queue: usize,
    pub admin: bool,
    /// Works for other users (help desk, administrators): the help desk's pages are offered.
    pub help_desk: bool,
    /// The link that shows this page in the other language.
    pub switch: String,
}

impl Chrome {
    pub fn anonymous(v: &Visitor) -> Chrome {
        Chrome {
            t: v.t,
            user_name: None,
            csrf: String::new(),
            queue: 0,
            admin: false,
            help_desk: false,
            switch: switch_link(v),
        }
    }

    /// The frame of a signed-in page whose approval count is already known.
    pub fn signed_in_without_count(s: &SignedIn) -> Chrome {
        Chrome {
            t: s.v.t,
            user_name: Some(s.user.display_name.clone()),
            csrf: opencm_app::sessions::csrf_token(&s.cookie),
            queue: 0,
            admin: s.user.is_administrator(),
            help_desk: s.user.is_administrator(),
            switch: switch_link(&s.v),
        }
    }

    /// The frame of a signed-in page; the approval count is one more query (the pending
    /// requests the user may read, and their own decisions).
    pub async fn signed_in(portal: &Portal, s: &SignedIn) -> Result<Chrome, AppError> {
        let queue = portal.app.approval_queue(&s.user).await?.needs_me.len();
        Ok(Chrome {
            queue,
            help_desk: portal.app.helps_others(&s.user).await?,
            ..Chrome::signed_in_without_count(s)
        })
    }
}

fn switch_link(v: &Visitor) -> String {
    format!(
        "/language?set={}&back={}",
        v.t.other_lang,
        crate::forms::encode(&v.here)
    )
}

/// A rendered page, or a 500 page if the template fails (it cannot, short of a bug).
pub fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    App(AppError),
    /// A form without its session's CSRF token.
    Csrf,
    NotFound,
}

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        PageError::App(e)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    c: Chrome,
    message: &'static str,
    detail: String,
    reference: String,
}

impl PageError {
    pub fn page(self, v: &Visitor) -> Response {
        let t = v.t;
        let (status, message, detail) = match &self {
            PageError::Csrf => (StatusCode::FORBIDDEN, t.error_csrf, String::new()),
            PageError::NotFound => (StatusCode::NOT_FOUND, t.error_not_found, String::new()),
            PageError::App(e) => {
                let (status, message) = match e.kind() {
                    ErrorKind::NotFound => (StatusCode::NOT_FOUND, t.error_not_found),
                    ErrorKind::Forbidden => (StatusCode::FORBIDDEN, t.error_forbidden),
                    ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, t.error_forbidden),
                    ErrorKind::Conflict => (StatusCode::CONFLICT, t.error_conflict),
                    ErrorKind::Unavailable => {
                        (StatusCode::SERVICE_UNAVAILABLE, t.error_unavailable)
                    }
                    ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, t.error_internal),
                    _ => (StatusCode::BAD_REQUEST, t.error_invalid),
                };
                // The use case's own words say exactly what to fix; they are English, so a
                // Spanish page keeps to its own message. Internal details are logged, never shown.
                let detail = match e.kind() {
                    ErrorKind::Internal | ErrorKind::Unavailable => String::new(),
                    _ if v.lang == crate::i18n::Lang::En => e.message.clone(),
                    _ => String::new(),
                };
                (status, message, detail)
            }
        };
        if let PageError::App(e) = &self {
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), code = e.code.as_str(), detail = ?e.internal, "page failed");
            }
        }
        let page = ErrorPage {
            c: Chrome {
                user_name: v.user.as_ref().map(|u| u.display_name.clone()),
                csrf: v
                    .cookie
                    .as_deref()
                    .map(opencm_app::sessions::csrf_token)
                    .unwrap_or_default(),
                admin: v.user.as_ref().is_some_and(|u| u.is_administrator()),
                ..Chrome::anonymous(v)
            },
            message,
            detail,
            reference: if status.is_server_error() {
                v.correlation.clone()
            } else {
                String::new()
            },
        };
        let mut res = html(status, &page);
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        res
    }
}

/// The response of a page handler: its page, or its error as a page.
pub fn respond(v: &Visitor, r: Result<Response, PageError>) -> Response {
    r.unwrap_or_else(|e| e.page(v))
}

/// A page for a status the framework or the same-origin rule answered, in `lang`.
pub fn status_page(lang: crate::i18n::Lang, status: StatusCode, correlation: &str) -> Response {
    let t = lang.msg();
    let message = match status {
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => t.error_not_found,
        StatusCode::FORBIDDEN => t.error_csrf,
        s if s.is_server_error() => t.error_internal,
        _ => t.error_invalid,
    };
    let page = ErrorPage {
        c: Chrome {
            t,
            user_name: None,
            csrf: String::new(),
            queue: 0,
            admin: false,
            help_desk: false,
            switch: format!("/language?set={}&back=%2F", t.other_lang),
        },
        message,
        detail: String::new(),
        reference: if status.is_server_error() {
            correlation.to_string()
        } else {
            String::new()
        },
    };
    html(status, &page)
}
