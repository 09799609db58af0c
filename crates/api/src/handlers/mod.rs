//! One module per resource. Handler names read `verb_resource`.

pub mod approvals;
pub mod certificates;
pub mod health;
pub mod pki;
pub mod profiles;
pub mod requests;
pub mod templates;

use crate::error::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use opencm_app::ErrorCode;
use opencm_domain::RequestType;

/// Query-string pairs with lowercased names (MIM matches them case-insensitively).
pub struct QueryPairs(Vec<(String, String)>);

impl QueryPairs {
    pub fn from(q: Result<Query<Vec<(String, String)>>, QueryRejection>) -> Result<Self, ApiError> {
        let Query(v) =
            q.map_err(|e| ApiError::bad_request(ErrorCode::InvalidQuery, e.body_text()))?;
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
        ApiError::bad_request(
            ErrorCode::InvalidRequestType,
            format!(
                "Unknown request type '{}'; use one of: {}.",
                crate::wire::excerpt(name),
                RequestType::names()
            ),
        )
    })
}
