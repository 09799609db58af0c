//! GUIDs in paths: any case, braces optional; anything else is a 400 that names the bad value.

use crate::error::ApiError;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use opencm_app::ErrorCode;
use opencm_domain::Guid;

pub fn parse_guid(what: &str, s: &str) -> Result<Guid, ApiError> {
    s.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidGuid,
            format!("The {what} '{}' is not a GUID.", crate::wire::excerpt(s)),
        )
    })
}

/// The single `{id}` of a path.
pub struct PathGuid(pub Guid);

impl<S: Send + Sync> FromRequestParts<S> for PathGuid {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))?;
        Ok(PathGuid(parse_guid("id", &raw)?))
    }
}

/// A GUID and a second segment (`/profiletemplates/{id}/policies/{type}`).
pub struct PathGuids(pub Guid, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathGuids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((raw, second)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))?;
        Ok(PathGuids(parse_guid("id", &raw)?, second))
    }
}

/// Two GUIDs (`/requests/{reqid}/smartcards/{scid}`).
pub struct PathTwoGuids(pub Guid, pub Guid);

impl<S: Send + Sync> FromRequestParts<S> for PathTwoGuids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((first, second)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(ErrorCode::InvalidPath, e.body_text()))?;
        Ok(PathTwoGuids(
            parse_guid("reqid", &first)?,
            parse_guid("scid", &second)?,
        ))
    }
}
