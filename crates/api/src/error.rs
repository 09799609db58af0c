//! `ApiError`: every failure a client can see, with its status and stable `ErrorCode`.
//!
//! A handler returns `ApiError`; its response carries the error as an extension and no body. The
//! correlation middleware writes the docs/API.md, "Errors" body (`Message`, `ErrorCode`, `CorrelationId`) and logs
//! the error once, inside the request's span, with the internal detail that never reaches clients.
//! Every error's status comes from its code: `ErrorCode::kind` (opencm-app), then `status_of` below.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opencm_app::{AppError, ErrorCode, ErrorKind};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Logged, never sent.
    pub internal: Option<String>,
}

/// The HTTP status of each kind of failure: with `ErrorCode::kind`, the one place a code gets its
/// status.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ErrorKind::TooSlow => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::WrongMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
    }
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            internal: None,
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        AppError::internal(detail).into()
    }
    /// The status this error answers with: its code's.
    pub fn status(&self) -> StatusCode {
        status_of(self.code.kind())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = self.status().into_response();
        r.extensions_mut().insert(self);
        r
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError {
            code: e.code,
            message: e.message,
            internal: e.internal,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    /// docs/API.md's table of error codes by status, as a reader sees it: every code opencm
    /// sends is listed once, under the status its kind gives it — so the documentation cannot
    /// drift from `ErrorCode::kind`.
    #[test]
    fn the_documented_status_of_every_code_is_the_one_it_answers_with() {
        let doc = include_str!("../../../docs/API.md");
        let start = doc
            .find("\n## Errors")
            .expect("docs/API.md has an Errors section");
        let section = &doc[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let mut documented: HashMap<String, u16> = HashMap::new();
        for line in section.lines().filter(|l| l.starts_with("| ")) {
            let cols: Vec<&str> = line.split('|').collect();
            let Ok(status) = cols[1].trim().parse::<u16>() else {
                continue;
            };
            for (i, quoted) in cols[2..].join("|").split('`').enumerate() {
                let is_code = i % 2 == 1
                    && quoted
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_ascii_uppercase())
                    && quoted.chars().all(|c| c.is_ascii_alphanumeric());
                if is_code {
                    if let Some(other) = documented.insert(quoted.to_string(), status) {
                        assert_eq!(other, status, "{quoted} is listed under two statuses");
                    }
                }
            }
        }
        let mut wrong = Vec::new();
        for code in ErrorCode::ALL {
            let answers = status_of(code.kind()).as_u16();
            match documented.remove(code.as_str()) {
                Some(s) if s == answers => {}
                Some(s) => wrong.push(format!("{code}: documented {s}, answers {answers}")),
                None => wrong.push(format!("{code}: not documented (answers {answers})")),
            }
        }
        assert!(
            wrong.is_empty(),
            "docs/API.md, Errors:\n{}",
            wrong.join("\n")
        );
        assert!(
            documented.is_empty(),
            "documented but not codes: {documented:?}"
        );
    }
}
