//! Authentication is an extractor: `Authorization: Bearer <token>` resolved to a `Principal`, or,
//! without one, the client certificate the connection's TLS handshake verified.
//! Authorization is not done here; it is a domain decision on the target object's descriptor.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use opencm_app::{Credential, ErrorCode, ErrorKind};
use opencm_domain::Principal;

pub struct Caller(pub Principal);

/// The client certificate (DER) the TLS handshake of the request's connection verified, put in
/// the request's extensions by the server's accept loop.
#[derive(Clone)]
pub struct PeerCertificate(pub std::sync::Arc<Vec<u8>>);

fn challenge(message: &str, error: Option<&str>) -> ApiError {
    let mut e = ApiError::unauthorized(message);
    e.internal = error.map(String::from);
    e
}

/// 401 responses carry `WWW-Authenticate: Bearer` (RFC 6750), with `error="invalid_token"` when a
/// token was sent but is not valid.
pub struct Unauthorized(ApiError);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> axum::response::Response {
        let value = match self.0.internal.as_deref() {
            Some(_) => r#"Bearer realm="opencm", error="invalid_token""#,
            None => r#"Bearer realm="opencm""#,
        };
        let mut r = ApiError {
            internal: None,
            ..self.0
        }
        .into_response();
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        r
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let sent = parts.headers.get_all(header::AUTHORIZATION).iter().count();
        if sent > 1 {
            return Err(ApiError::bad_request(
                ErrorCode::BadRequest,
                format!("Send one Authorization header, not {sent}."),
            )
            .into_response());
        }
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // No token: a verified client certificate may sign the caller in.
            if let Some(PeerCertificate(der)) = parts.extensions.get::<PeerCertificate>() {
                return match state
                    .app
                    .authenticate(&Credential::ClientCertificate(der))
                    .await
                {
                    Ok(p) => Ok(Caller(p)),
                    Err(e) if e.kind == ErrorKind::Unauthenticated => {
                        Err(Unauthorized(challenge(&e.message, Some("invalid"))).into_response())
                    }
                    Err(e) => Err(ApiError::from(e).into_response()),
                };
            }
            return Err(Unauthorized(challenge(
                "Authentication is required: send 'Authorization: Bearer <token>'.",
                None,
            ))
            .into_response());
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim())
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(Unauthorized(challenge(
                "Only 'Authorization: Bearer <token>' is supported.",
                Some("scheme"),
            ))
            .into_response());
        };
        match state.app.authenticate(&Credential::Bearer(token)).await {
            Ok(p) => Ok(Caller(p)),
            Err(e) if e.kind == ErrorKind::Unauthenticated => {
                Err(Unauthorized(challenge(&e.message, Some("invalid"))).into_response())
            }
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}
