//! Authentication is an extractor, the one place that decides who the caller is, by the
//! `Authorization` scheme: `Bearer` (opencm's own tokens, then OpenID Connect access tokens),
//! `Negotiate` (Kerberos, when configured); without the header, the client certificate the
//! connection's TLS handshake verified.
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

pub use opencm_app::PeerCertificate;

fn challenge(message: &str, error: Option<&str>) -> ApiError {
    let mut e = ApiError::unauthorized(message);
    e.internal = error.map(String::from);
    e
}

/// The reply token of a Kerberos sign-in (mutual authentication), for the response: the
/// correlation layer puts an empty slot in a `Negotiate` request's extensions and sends what the
/// extractor left in it as `WWW-Authenticate: Negotiate <token>` (RFC 4559 §5).
#[derive(Clone, Default)]
pub struct NegotiateReply(pub std::sync::Arc<std::sync::Mutex<Option<String>>>);

/// 401 responses carry `WWW-Authenticate: Bearer` (RFC 6750), with `error="invalid_token"` when a
/// token was sent but is not valid, and, where Kerberos is configured, `Negotiate` first (the
/// order browsers and Windows clients try them in).
pub struct Unauthorized {
    error: ApiError,
    negotiate: bool,
}

impl IntoResponse for Unauthorized {
    fn into_response(self) -> axum::response::Response {
        let value = match self.error.internal.as_deref() {
            Some(_) => r#"Bearer realm="opencm", error="invalid_token""#,
            None => r#"Bearer realm="opencm""#,
        };
        let mut r = ApiError {
            internal: None,
            ..self.error
        }
        .into_response();
        if self.negotiate {
            r.headers_mut().append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Negotiate"),
            );
        }
        r.headers_mut()
            .append(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
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
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("Send one Authorization header, not {sent}."),
            )
            .into_response());
        }
        let negotiate = state.app.accepts_kerberos();
        let unauthorized = |message: &str, error: Option<&str>| {
            Unauthorized {
                error: challenge(message, error),
                negotiate,
            }
            .into_response()
        };
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            // No token: a verified client certificate may sign the caller in.
            if let Some(PeerCertificate(der)) = parts.extensions.get::<PeerCertificate>() {
                return match state
                    .app
                    .authenticate(&Credential::ClientCertificate(der))
                    .await
                {
                    Ok(p) => Ok(Caller(p)),
                    Err(e) if e.kind() == ErrorKind::Unauthenticated => {
                        Err(unauthorized(&e.message, Some("invalid")))
                    }
                    Err(e) => Err(ApiError::from(e).into_response()),
                };
            }
            return Err(unauthorized(
                "Authentication is required: send 'Authorization: Bearer <token>'.",
                None,
            ));
        };
        let (scheme, token) = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .map(|(scheme, t)| (scheme, t.trim()))
            .filter(|(_, t)| !t.is_empty())
            .unwrap_or(("", ""));
        if scheme.eq_ignore_ascii_case("negotiate") && negotiate {
            return negotiate_caller(&parts.extensions, state, token)
                .await
                .map_err(|e| match e.kind() {
                    ErrorKind::Unauthenticated => unauthorized(&e.message, Some("invalid")),
                    _ => ApiError::from(e).into_response(),
                });
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            let supported = if negotiate {
                "Only 'Authorization: Bearer <token>' and 'Authorization: Negotiate <token>' are supported."
            } else {
                "Only 'Authorization: Bearer <token>' is supported."
            };
            return Err(unauthorized(supported, Some("scheme")));
        }
        match state.app.authenticate(&Credential::Bearer(token)).await {
            Ok(p) => Ok(Caller(p)),
            Err(e) if e.kind() == ErrorKind::Unauthenticated => {
                Err(unauthorized(&e.message, Some("invalid")))
            }
            Err(e) => Err(ApiError::from(e).into_response()),
        }
    }
}

/// `Authorization: Negotiate <base64 SPNEGO token>`: the user the Kerberos ticket names; the
/// acceptor's reply goes into the request's `NegotiateReply` slot for the response.
async fn negotiate_caller(
    extensions: &axum::http::Extensions,
    state: &AppState,
    token: &str,
) -> Result<Caller, opencm_app::AppError> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| {
            opencm_app::AppError::new(
                ErrorCode::Unauthorized,
                "The Negotiate token is not base64.",
            )
        })?;
    let (principal, reply) = state.app.authenticate_negotiate(&bytes).await?;
    if let (Some(reply), Some(NegotiateReply(slot))) = (reply, extensions.get::<NegotiateReply>()) {
        if let Ok(mut s) = slot.lock() {
            *s = Some(base64::engine::general_purpose::STANDARD.encode(reply));
        }
    }
    Ok(Caller(principal))
}
