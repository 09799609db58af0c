//! The OCSP responder over HTTP (RFC 6960 Appendix A, RFC 5019 §5): `POST /ocsp` with a DER
//! `OCSPRequest` (`application/ocsp-request`), or `GET /ocsp/{base64 of it, URL-encoded}`. Outside
//! the API base path and without authentication, as the CRL is. Every answer is an
//! `application/ocsp-response` with HTTP 200 — a request that cannot be answered carries the
//! RFC's status in the OCSP response (`malformedRequest`, `unauthorized`, `tryLater`), never a
//! 500. Responses without a nonce tell HTTP caches how long they hold (RFC 5019 §6.2).

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use opencm_app::ocsp::OcspAnswer;
use opencm_app::ErrorCode;
use time::format_description::well_known::Rfc2822;

/// An OCSP request is a few hundred bytes; more than this is not one.
const MAX_REQUEST: usize = 16 * 1024;

pub async fn post_ocsp(
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    if !state.app.offers_ocsp() {
        return Err(not_offered());
    }
    let headers: &HeaderMap = req.headers();
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/ocsp-request") {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "An OCSP request is sent as application/ocsp-request (a DER OCSPRequest).",
            ));
        }
    }
    // The body within the API's body deadline (a client trickling bytes is cut off) and at most
    // MAX_REQUEST bytes (more is not an OCSP request: malformedRequest).
    let body = crate::extract::body_within(req.into_body(), MAX_REQUEST, state.config.body_timeout)
        .await?;
    let answer = state.app.ocsp(body.as_deref().unwrap_or_default()).await;
    // A POST's answer is not for HTTP caches (RFC 5019 §5): no freshness headers.
    Ok(ocsp_response(answer, false))
}

pub async fn get_ocsp(
    State(state): State<AppState>,
    Path(encoded): Path<String>,
) -> Result<Response, ApiError> {
    if !state.app.offers_ocsp() {
        return Err(not_offered());
    }
    // The path is already percent-decoded; clients write standard base64 (some leave its '/'
    // unencoded, which the wildcard route keeps), a few the URL-safe alphabet or no padding.
    let text: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = if text.len() > MAX_REQUEST * 2 {
        None
    } else {
        let standard: String = text
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(standard)
            .ok()
    };
    let answer = state.app.ocsp(der.as_deref().unwrap_or_default()).await;
    Ok(ocsp_response(answer, true))
}

fn not_offered() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "This server does not answer OCSP ([ocsp] enabled = false).",
    )
}

fn ocsp_response(answer: OcspAnswer, cacheable_get: bool) -> Response {
    opencm_app::metrics::ocsp_served(answer.status);
    let mut res = (
        [(header::CONTENT_TYPE, "application/ocsp-response")],
        answer.der.as_ref().clone(),
    )
        .into_response();
    let h = res.headers_mut();
    match answer.cacheable.filter(|_| cacheable_get) {
        Some((this_update, next_update)) => {
            let now = time::OffsetDateTime::now_utc();
            let max_age = (next_update - now).whole_seconds().max(0);
            let http_date = |t: time::OffsetDateTime| {
                // RFC 7231's IMF-fixdate: RFC 2822 with GMT.
                t.format(&Rfc2822)
                    .ok()
                    .map(|s| s.replace("+0000", "GMT"))
                    .and_then(|s| HeaderValue::from_str(&s).ok())
            };
            if let Ok(v) = HeaderValue::from_str(&format!(
                "max-age={max_age}, public, no-transform, must-revalidate"
            )) {
                h.insert(header::CACHE_CONTROL, v);
            }
            if let Some(v) = http_date(this_update) {
                h.insert(header::LAST_MODIFIED, v);
            }
            if let Some(v) = http_date(next_update) {
                h.insert(header::EXPIRES, v);
            }
            use sha2::Digest;
            let etag = hex::encode(sha2::Sha256::digest(answer.der.as_slice()));
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", &etag[..32])) {
                h.insert(header::ETAG, v);
            }
        }
        None => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
    }
    res
}
