//! `ApiError`: every failure a client can see, with its status and stable `ErrorCode`.
//!
//! A handler returns `ApiError`; its response carries the error as an extension and no body. The
//! correlation middleware writes the SPEC §1 body (`Message`, `ErrorCode`, `CorrelationId`) and logs
//! the error once, inside the request's span, with the internal detail that never reaches clients.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use opencm_domain::request::{ActionError, CreateError};
use opencm_store::StoreError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Logged, never sent.
    pub internal: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            internal: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "InternalError",
            message: "The server failed to process the request. Quote the correlation id to your administrator.".into(),
            internal: Some(detail.into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(self);
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(detail) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "DatabaseUnavailable",
                message: "The database is unavailable; try again shortly.".into(),
                internal: Some(detail),
            },
            StoreError::Duplicate(what) => {
                ApiError::conflict("AlreadyExists", format!("{what} already exists."))
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let msg = e.to_string();
        match e {
            ActionError::NotFound(_) => ApiError::not_found("RequestNotFound", msg),
            ActionError::Forbidden(..) => ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", msg),
            ActionError::Transition(_) => ApiError::conflict("InvalidTransition", msg),
            ActionError::AlreadyDecided(_) => ApiError::conflict("AlreadyDecided", msg),
            _ => ApiError::internal(msg),
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        let msg = e.to_string();
        match e {
            CreateError::TemplateNotFound(_) => ApiError::not_found("ProfileTemplateNotFound", msg),
            CreateError::PolicyNotEnabled(..) => ApiError::bad_request("PolicyNotEnabled", msg),
            CreateError::NotAllowed(_) => ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", msg),
            CreateError::MissingData(_)
            | CreateError::InvalidData(_)
            | CreateError::UnknownData(..)
            | CreateError::DuplicateData(_) => ApiError::bad_request("InvalidDataCollection", msg),
            CreateError::CommentRequired(_) => ApiError::bad_request("CommentRequired", msg),
            CreateError::PriorityOutOfRange(_) => ApiError::bad_request("InvalidPriority", msg),
            CreateError::ProfileRequired(_) => ApiError::bad_request("ProfileRequired", msg),
            CreateError::ProfileNotAllowed(_) => ApiError::bad_request("ProfileNotAllowed", msg),
            CreateError::ProfileState(e) => ApiError::from(e),
            _ => ApiError::bad_request("InvalidRequest", msg),
        }
    }
}

impl From<opencm_domain::profile::ProfileError> for ApiError {
    fn from(e: opencm_domain::profile::ProfileError) -> Self {
        ApiError::conflict(e.code(), e.to_string())
    }
}
