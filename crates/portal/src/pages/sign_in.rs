//! Signing in with a password, signing out, and the language switch.

use crate::forms::{check_csrf, local_path};
use crate::render::{html, respond, Chrome, PageError};
use crate::visitor::{SignedIn, Visitor, LANG_COOKIE, SESSION_COOKIE};
use crate::Portal;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use opencm_app::sessions::SignIn;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    c: Chrome,
    next: String,
    /// `next`, encoded for the single sign-on links.
    next_query: String,
    login: String,
    notice: &'static str,
    error: String,
    oidc: bool,
    kerberos: bool,
    certificate: bool,
}

/// The sign-in page with every way this server offers.
pub fn sign_in_page(
    portal: &Portal,
    v: &Visitor,
    status: StatusCode,
    next: String,
    login: String,
    notice: &'static str,
    error: String,
) -> Response {
    html(
        status,
        &SignInPage {
            c: Chrome::anonymous(v),
            next_query: crate::forms::encode(&next),
            next,
            login,
            notice,
            error,
            oidc: portal.app.offers_oidc_sign_in(),
            kerberos: portal.app.accepts_kerberos(),
            certificate: portal.config.client_certificates,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    ended: Option<String>,
    out: Option<String>,
}

pub async fn form(
    State(portal): State<Portal>,
    v: Visitor,
    Query(q): Query<SignInQuery>,
) -> Response {
    let next = local_path(q.next.as_deref());
    if v.user.is_some() {
        return Redirect::to(&next).into_response();
    }
    let notice = if q.out.is_some() {
        v.t.signed_out
    } else if q.ended.is_some() || v.session_ended {
        v.t.session_ended
    } else {
        ""
    };
    sign_in_page(
        &portal,
        &v,
        StatusCode::OK,
        next,
        String::new(),
        notice,
        String::new(),
    )
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub fn session_cookie(portal: &Portal, value: &str, max_age: Option<u32>) -> HeaderValue {
    let secure = if portal.config.tls { "; Secure" } else { "" };
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax{secure}{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("opencm_session=; Path=/; Max-Age=0"))
}

pub async fn submit(
    State(portal): State<Portal>,
    v: Visitor,
    Form(f): Form<Credentials>,
) -> Response {
    let next = local_path(Some(&f.next));
    let login = f.login.trim().to_string();
    let outcome = portal
        .app
        .sign_in_password(&login, &f.password, v.addr)
        .await;
    let error = match outcome {
        Ok(SignIn::Session { cookie, .. }) => {
            return signed_in(&portal, &next, &cookie);
        }
        Ok(SignIn::Refused) => v.t.sign_in_failed.to_string(),
        Ok(SignIn::Throttled { retry_after }) => v.t.sign_in_throttled.replacen(
            "{}",
            &retry_after.as_secs().div_ceil(60).max(1).to_string(),
            1,
        ),
        Err(e) => return PageError::from(e).page(&v),
    };
    sign_in_page(
        &portal,
        &v,
        StatusCode::UNAUTHORIZED,
        next,
        login.chars().take(256).collect(),
        "",
        error,
    )
}

/// Where a sign-in ends: on `next`, with the new session's cookie.
pub fn signed_in(portal: &Portal, next: &str, cookie: &str) -> Response {
    let mut res = Redirect::to(next).into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie(portal, cookie, None));
    res
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(portal): State<Portal>,
    s: SignedIn,
    Form(f): Form<CsrfOnly>,
) -> Response {
    let r = async {
        check_csrf(&s.cookie, &f.csrf)?;
        portal.app.end_session(&s.cookie).await?;
        let mut res = Redirect::to("/sign-in?out=1").into_response();
        res.headers_mut()
            .append(header::SET_COOKIE, session_cookie(&portal, "", Some(0)));
        Ok(res)
    }
    .await;
    respond(&s.v, r)
}

#[derive(Deserialize)]
pub struct LanguageQuery {
    set: Option<String>,
    back: Option<String>,
}

/// `GET /language?set=es&back=/path`: remembers the language for a year and goes back.
pub async fn language(Query(q): Query<LanguageQuery>) -> Response {
    let lang = q
        .set
        .as_deref()
        .and_then(crate::i18n::Lang::parse)
        .unwrap_or(crate::i18n::Lang::En);
    let mut res = Redirect::to(&local_path(q.back.as_deref())).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
        lang.code()
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
