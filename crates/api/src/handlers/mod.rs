//! One module per resource. Handler names read `verb_resource`.

pub mod admin;
pub mod approvals;
pub mod certificates;
pub mod health;
pub mod metrics;
pub mod ocsp;
pub mod outbox;
pub mod pki;
pub mod profiles;
pub mod requests;
pub mod secrets;
pub mod smartcards;
pub mod templates;
pub mod whoami;

use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use opencm_app::ErrorCode;
use opencm_domain::RequestType;

/// A response that carries a secret — a card's admin key, a challenge response, a PIN or PUK, a
/// PKCS#12 with its private key: `Cache-Control: no-store` and `Pragma: no-cache` (for HTTP/1.0
/// caches), so no proxy or browser keeps a copy.
pub struct NoStore<T>(pub T);

impl<T: IntoResponse> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut r = self.0.into_response();
        let h = r.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        r
    }
}

/// Query-string pairs with lowercased names (MIM matches them case-insensitively).
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn from(q: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Self, ApiError> {
        let Query(v) = q.map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.body_text()))?;
        Ok(QueryPairs(
            v.into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        ))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A request type name, alias or number, or a 400 listing the names.
pub fn parse_request_type(name: &str) -> Result<RequestType, ApiError> {
    RequestType::parse(name).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequestType,
            format!(
                "Unknown request type '{}'; use one of: {}.",
                crate::wire::excerpt(name),
                RequestType::names()
            ),
        )
    })
}

/// `limit` and `after` of a list: a `limit` that is not a whole number is 400 like one out of
/// range (the use case checks the range); `after` must be a GUID.
pub fn page(q: &QueryPairs) -> Result<opencm_app::Page, ApiError> {
    Ok(opencm_app::Page {
        limit: q.get("limit").map(|l| l.parse().unwrap_or(0)),
        after: q
            .get("after")
            .map(|a| crate::extract::parse_guid("after", a))
            .transpose()?,
    })
}

/// Adds `Link: <…?params&limit=&after=>; rel="next"` when the page was full.
pub fn with_next_link(
    mut res: axum::response::Response,
    resource: &str,
    mut params: Vec<String>,
    page: opencm_app::Page,
    next: Option<opencm_domain::Guid>,
) -> axum::response::Response {
    if let Some(last) = next {
        params.push(format!(
            "limit={}",
            page.limit.unwrap_or(opencm_app::MAX_PAGE)
        ));
        params.push(format!("after={last}"));
        let link = format!(
            "<{}/{resource}?{}>; rel=\"next\"",
            crate::router::BASE_PATH,
            params.join("&")
        );
        if let Ok(v) = axum::http::HeaderValue::from_str(&link) {
            res.headers_mut().insert(axum::http::header::LINK, v);
        }
    }
    res
}
