//! `GET /metrics`: Prometheus' text exposition format, outside the API base path. Without a token
//! configured anyone who reaches the listener may scrape it (bind a separate `[metrics] listen`
//! address to keep it off the public one); with one, the scraper sends `Authorization: Bearer`.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use opencm_app::ErrorCode;

pub async fn get_metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let access = &state.config.metrics;
    if !access.served {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "Metrics are served on the separate [metrics] listen address.",
        ));
    }
    if let Some(token) = &access.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .unwrap_or_default();
        // Compared in constant time: a timing difference must not spell the token out.
        let equal = sent.len() == token.len()
            && sent
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if !equal {
            opencm_app::metrics::authentication_failed("metrics_token");
            let mut r = ApiError::unauthorized(
                "Metrics need 'Authorization: Bearer <the [metrics] token>'.",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Bearer realm="opencm metrics""#),
            );
            return Ok(r);
        }
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.app.metrics_text().await,
    )
        .into_response())
}
