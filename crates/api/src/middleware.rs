//! Cross-cutting request handling: case-insensitive paths, the correlation id, and turning every
//! error response (ours, or a framework's 405/413) into the error body (docs/API.md, "Errors"), logged once.

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use opencm_app::ErrorCode;
use opencm_domain::Guid;
use tracing::Instrument;

pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// MIM clients send `/certificatemanagement/...` and GUIDs in any case: route on the lowercased
/// path (every route segment is lowercase; identifiers are case-insensitive) without a trailing `/`.
pub fn normalize_path(mut req: Request) -> Request {
    let path = req.uri().path();
    // An OCSP GET carries base64 in its path: case and a trailing '/' are part of it. Only the
    // prefix is normalised (a proxy may forward `/OCSP/…`).
    let normal = if path.len() > 6 && path.as_bytes()[..6].eq_ignore_ascii_case(b"/ocsp/") {
        (&path[..6] != "/ocsp/").then(|| format!("/ocsp/{}", &path[6..]))
    } else {
        let trimmed = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        (trimmed.bytes().any(|b| b.is_ascii_uppercase()) || trimmed.len() != path.len()).then(
            || match trimmed.to_ascii_lowercase() {
                p if p.is_empty() => "/".to_string(),
                p => p,
            },
        )
    };
    if let Some(mut pq) = normal {
        let uri = req.uri();
        if let Some(q) = uri.query() {
            pq.push('?');
            pq.push_str(q);
        }
        let mut parts = uri.clone().into_parts();
        if let Ok(p) = pq.parse() {
            parts.path_and_query = Some(p);
            if let Ok(u) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = u;
            }
        }
    }
    req
}

/// Text that came from a client (an error message quoting it, an internal detail) is logged with
/// `?` (Debug: quoted, control characters escaped), so a `\n` in what a client sent cannot start a
/// forged log line.
///
/// A request whose `Content-Length` already exceeds the body limit is answered 413 here, before
/// any of its body is read.
pub async fn correlate(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get(CORRELATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<Guid>().ok())
        .unwrap_or_else(Guid::new_random);
    let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), correlation_id = %id);
    // Metrics are labelled by route template, never by path (whose ids would make a series per
    // request), and by the standard methods.
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string());
    let method = match *req.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    async move {
        let started = std::time::Instant::now();
        let limit = state.config.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut res = match declared {
            Some(n) if n > limit as u64 => {
                let mut r = crate::extract::too_large(limit).into_response();
                // The unread body stays unread: the connection is closed after this answer.
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
            _ => {
                let negotiate = is_negotiate(&req).then(crate::extract::NegotiateReply::default);
                let mut req = req;
                // The id, for handlers that show it (the portal's error pages).
                if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
                    req.headers_mut().insert(CORRELATION_HEADER, v);
                }
                if let Some(slot) = &negotiate {
                    req.extensions_mut().insert(slot.clone());
                }
                let mut res = next.run(req).await;
                if let Some(reply) = negotiate.and_then(|s| s.0.lock().ok()?.take()) {
                    if let Ok(v) = HeaderValue::from_str(&format!("Negotiate {reply}")) {
                        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                    }
                }
                res
            }
        };
        let status = res.status();
        // A page (the portal's) is its own error body, in the reader's language.
        let page = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        if page && (status.is_client_error() || status.is_server_error()) {
            tracing::debug!(status = status.as_u16(), "page answered with an error");
        } else if status.is_client_error() || status.is_server_error() {
            let err = res.extensions_mut().remove::<ApiError>().unwrap_or_else(|| framework_error(status));
            match &err.internal {
                Some(detail) if status.is_server_error() => {
                    tracing::error!(status = status.as_u16(), code = err.code.as_str(), detail = ?detail, "request failed")
                }
                _ if status.is_server_error() => tracing::error!(status = status.as_u16(), code = err.code.as_str(), "request failed"),
                _ => tracing::debug!(status = status.as_u16(), code = err.code.as_str(), message = ?err.message, "request refused"),
            }
            let body = ErrorBody { message: &err.message, error_code: err.code.as_str(), correlation_id: id };
            let headers = std::mem::take(res.headers_mut());
            res = (status, axum::Json(body)).into_response();
            for (k, v) in headers.iter() {
                if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
                    res.headers_mut().append(k.clone(), v.clone());
                }
            }
        }
        tracing::debug!(status = res.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "done");
        opencm_app::metrics::observe_http(
            method,
            route.as_deref().unwrap_or("unmatched"),
            res.status().as_u16(),
            started.elapsed().as_secs_f64(),
        );
        if let Ok(v) = HeaderValue::from_str(&id.to_string()) {
            res.headers_mut().insert(CORRELATION_HEADER, v);
        }
        res
    }
    .instrument(span)
    .await
}

/// A handler that panics answers 500 `InternalError` like any internal failure — logged by
/// `correlate` with the panic's message and the correlation id the client is given — instead of
/// a connection closed without an answer. (Panics are defects; this keeps one from looking like
/// a network fault to the client and from going unlogged with its request.)
pub async fn catch_panics(req: Request, next: Next) -> Response {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(res) => res,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            ApiError::internal(format!("panic: {what}")).into_response()
        }
    }
}

/// Whether the request signs in with Kerberos (`Authorization: Negotiate …`).
fn is_negotiate(req: &Request) -> bool {
    req.headers().get(header::AUTHORIZATION).is_some_and(|v| {
        v.as_bytes().len() > 10 && v.as_bytes()[..10].eq_ignore_ascii_case(b"negotiate ")
    })
}

/// The error body (docs/API.md, "Errors"), in its documented property order.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody<'a> {
    message: &'a str,
    error_code: &'a str,
    correlation_id: Guid,
}

/// Error responses produced by the framework rather than our handlers.
fn framework_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "This method is not allowed on this resource.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::PayloadTooLarge, "The request body is too large.")
        }
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::NotFound, "No such resource."),
        s if s.is_server_error() => ApiError::internal(format!("framework error {s}")),
        _ => ApiError::new(ErrorCode::BadRequest, "The request could not be processed."),
    }
}

pub async fn fallback() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "No such resource. Routes live under /CertificateManagement/api/v1.0/.",
    )
}

#[cfg(test)]
mod panic_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_internal_error() {
        let app = axum::Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    let oid: Vec<u64> = vec![3, 1];
                    if oid[0] > 2 {
                        panic!("Invalid OID {oid:?}");
                    }
                    "unreachable"
                }),
            )
            .route("/fine", axum::routing::get(|| async { "fine" }))
            .layer(axum::middleware::from_fn(catch_panics));
        let res = app
            .clone()
            .oneshot(
                Request::builder()
                    .uri("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let err = res.extensions().get::<ApiError>().unwrap();
        assert_eq!(err.code, ErrorCode::InternalError);
        assert!(
            err.internal
                .as_deref()
                .unwrap()
                .contains("Invalid OID [3, 1]"),
            "the panic's message is logged: {:?}",
            err.internal
        );
        let res = app
            .oneshot(
                Request::builder()
                    .uri("/fine")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
}
