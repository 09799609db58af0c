//! Signing in without a password: OpenID Connect (the authorization-code flow with PKCE, two
//! legs: `/sign-in/oidc/start` sends the browser to the provider, `/sign-in/oidc` is where the
//! provider sends it back), Kerberos (`/sign-in/kerberos`: the browser answers the `Negotiate`
//! challenge with its ticket) and client certificates (`/sign-in/certificate`: the certificate
//! the TLS handshake verified, a smart card's logon certificate). The proof is checked by the use
//! cases (`opencm_app::web_sign_in`); these handlers only carry it.

use crate::forms::local_path;
use crate::pages::sign_in::{sign_in_page, signed_in};
use crate::render::PageError;
use crate::visitor::{cookie, Visitor};
use crate::Portal;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use base64::Engine;
use opencm_app::sessions::SignIn;
use opencm_app::{AppError, ErrorKind, OidcAttempt, PeerCertificate};
use serde::Deserialize;

/// The cookie holding one OpenID attempt (its state, nonce and PKCE verifier) and where to go
/// after it; only sent back to the provider's redirect, for ten minutes.
const ATTEMPT_COOKIE: &str = "opencm_oidc";
const ATTEMPT_PATH: &str = "/sign-in/oidc";
const ATTEMPT_SECONDS: u32 = 600;

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn attempt_cookie(portal: &Portal, value: &str, max_age: u32) -> Option<HeaderValue> {
    let secure = if portal.config.tls { "; Secure" } else { "" };
    // SameSite=Lax: the provider's redirect back is a top-level GET, which carries it.
    HeaderValue::from_str(&format!(
        "{ATTEMPT_COOKIE}={value}; Path={ATTEMPT_PATH}; HttpOnly; SameSite=Lax{secure}; Max-Age={max_age}"
    ))
    .ok()
}

fn redirect_uri(v: &Visitor) -> String {
    format!("{}{ATTEMPT_PATH}", v.base_url)
}

/// A sign-in that did not work: the sign-in page with `error`, answered 401.
fn refused(portal: &Portal, v: &Visitor, next: String, error: &str) -> Response {
    sign_in_page(
        portal,
        v,
        StatusCode::UNAUTHORIZED,
        next,
        String::new(),
        "",
        error.to_string(),
    )
}

/// Errors of the provider or the directory are pages of their own; a proof that signs nobody
/// in is the sign-in page again.
fn failed(portal: &Portal, v: &Visitor, next: String, e: AppError, error: &str) -> Response {
    match e.kind() {
        ErrorKind::Unauthenticated | ErrorKind::Forbidden => refused(portal, v, next, error),
        _ => PageError::from(e).page(v),
    }
}

/// `GET /sign-in/oidc/start?next=`: a new attempt, remembered by this browser; off to the
/// provider.
pub async fn oidc_start(
    State(portal): State<Portal>,
    v: Visitor,
    Query(q): Query<Next>,
) -> Response {
    let next = local_path(q.next.as_deref());
    match portal.app.begin_oidc_sign_in(&redirect_uri(&v)).await {
        Ok((url, attempt)) => {
            let value = format!("{}.{}", attempt.encode(), b64().encode(next.as_bytes()));
            let mut res = Redirect::to(&url).into_response();
            if let Some(c) = attempt_cookie(&portal, &value, ATTEMPT_SECONDS) {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            res
        }
        Err(e) => PageError::from(e).page(&v),
    }
}

#[derive(Deserialize)]
pub struct ProviderAnswer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /sign-in/oidc?code=&state=`: the provider's answer, for the attempt this browser began.
pub async fn oidc_return(
    State(portal): State<Portal>,
    v: Visitor,
    headers: HeaderMap,
    Query(q): Query<ProviderAnswer>,
) -> Response {
    // The attempt's cookie is used once: it goes whatever the answer.
    let remembered = cookie(&headers, ATTEMPT_COOKIE).and_then(|c| {
        let (attempt, next) = c.rsplit_once('.')?;
        let next = String::from_utf8(b64().decode(next).ok()?).ok()?;
        Some((OidcAttempt::decode(attempt)?, local_path(Some(&next))))
    });
    let next = remembered
        .as_ref()
        .map_or_else(|| "/".to_string(), |(_, n)| n.clone());
    let mut res = match (&q.error, &q.code, &q.state) {
        (None, Some(code), Some(state)) => {
            match portal
                .app
                .finish_oidc_sign_in(
                    &redirect_uri(&v),
                    state,
                    code,
                    remembered.as_ref().map(|(a, _)| a),
                )
                .await
            {
                Ok(SignIn::Session { cookie, .. }) => signed_in(&portal, &next, &cookie),
                Ok(_) => refused(&portal, &v, next, v.t.sign_in_sso_failed),
                Err(e) => failed(&portal, &v, next, e, v.t.sign_in_sso_failed),
            }
        }
        // The user cancelled at the provider, or it refused them (`error=access_denied`).
        _ => {
            tracing::info!(error = ?q.error.as_deref().map(opencm_domain::limits::excerpt), "OpenID sign-in ended without a code");
            refused(&portal, &v, next, v.t.sign_in_sso_failed)
        }
    };
    if let Some(c) = attempt_cookie(&portal, "", 0) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// `GET /sign-in/kerberos?next=`: without a ticket, the `Negotiate` challenge (a browser that
/// may sign in to this site answers it at once); with one, the session.
pub async fn kerberos(
    State(portal): State<Portal>,
    v: Visitor,
    headers: HeaderMap,
    Query(q): Query<Next>,
) -> Response {
    let next = local_path(q.next.as_deref());
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Negotiate "))
        .map(|t| base64::engine::general_purpose::STANDARD.decode(t.trim()));
    match token {
        None => {
            let mut res = refused(&portal, &v, next, v.t.sign_in_no_kerberos);
            if portal.app.accepts_kerberos() {
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Negotiate"),
                );
            }
            res
        }
        Some(Err(_)) => refused(&portal, &v, next, v.t.sign_in_no_kerberos),
        Some(Ok(token)) => match portal.app.sign_in_kerberos(&token).await {
            Ok((cookie, _, reply)) => {
                let mut res = signed_in(&portal, &next, &cookie);
                if let Some(r) = reply {
                    let r = base64::engine::general_purpose::STANDARD.encode(r);
                    if let Ok(h) = HeaderValue::from_str(&format!("Negotiate {r}")) {
                        res.headers_mut().insert(header::WWW_AUTHENTICATE, h);
                    }
                }
                res
            }
            Err(e) => failed(&portal, &v, next, e, v.t.sign_in_no_kerberos),
        },
    }
}

/// `GET /sign-in/certificate?next=`: the client certificate of this connection signs its user
/// in, mapped as the API maps it.
pub async fn certificate(
    State(portal): State<Portal>,
    v: Visitor,
    peer: Option<Extension<PeerCertificate>>,
    Query(q): Query<Next>,
) -> Response {
    let next = local_path(q.next.as_deref());
    let Some(Extension(PeerCertificate(der))) = peer else {
        return refused(&portal, &v, next, v.t.sign_in_no_certificate);
    };
    match portal.app.sign_in_certificate(&der).await {
        Ok(SignIn::Session { cookie, .. }) => signed_in(&portal, &next, &cookie),
        Ok(_) => refused(&portal, &v, next, v.t.sign_in_no_certificate),
        Err(e) => failed(&portal, &v, next, e, v.t.sign_in_no_certificate),
    }
}
