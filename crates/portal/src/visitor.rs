//! Who is looking at a page: their language, their session (if signed in) and where they come
//! from. `SignedIn` is the same for pages that need a user: without one, the visitor is sent to
//! the sign-in page and brought back after.

use crate::i18n::{Lang, Msg};
use crate::render::PageError;
use crate::Portal;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use opencm_domain::Principal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const SESSION_COOKIE: &str = "opencm_session";
pub const LANG_COOKIE: &str = "opencm_lang";

/// The peer address of the request's connection, put in its extensions by the server's accept
/// loop (sign-in attempts are limited per address).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddress(pub SocketAddr);

pub struct Visitor {
    pub lang: Lang,
    pub t: &'static Msg,
    /// The session cookie, when one was sent and is live.
    pub cookie: Option<String>,
    pub user: Option<Principal>,
    pub addr: IpAddr,
    /// The path and query of this page (for the language switch and the way back after sign-in).
    pub here: String,
    /// The correlation id of this request (also in the log and the response's header).
    pub correlation: String,
    /// `scheme://host` as the client reached this server.
    pub base_url: String,
    /// A session cookie was sent that no longer signs anyone in.
    pub session_ended: bool,
}

/// The host the client addressed: HTTP/1.1's `Host`, or HTTP/2's authority — only if it is a
/// plain host name or address with an optional port (it goes into links and a shell command).
pub fn host<'a>(headers: &'a HeaderMap, uri: &'a axum::http::Uri) -> Option<&'a str> {
    let h = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))?;
    let plain = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    plain.then_some(h)
}

/// The value of cookie `name`, from every `Cookie` header.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

impl FromRequestParts<Portal> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, Response> {
        let headers = &parts.headers;
        let lang = Lang::negotiate(
            cookie(headers, LANG_COOKIE),
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        );
        let t = lang.msg();
        let correlation = headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let addr = parts
            .extensions
            .get::<ClientAddress>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.0.ip());
        let here = parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        let base_url = match &portal.config.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let host = host(headers, &parts.uri).unwrap_or("localhost");
                let scheme = if portal.config.tls { "https" } else { "http" };
                format!("{scheme}://{host}")
            }
        };
        let sent = cookie(headers, SESSION_COOKIE)
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .map(String::from);
        let mut v = Visitor {
            lang,
            t,
            cookie: None,
            user: None,
            addr,
            here,
            correlation,
            base_url,
            session_ended: false,
        };
        if let Some(c) = sent {
            match portal.app.session_user(&c).await {
                Ok(Some(user)) => {
                    v.user = Some(user);
                    v.cookie = Some(c);
                }
                Ok(None) => v.session_ended = true,
                Err(e) => return Err(PageError::from(e).page(&v)),
            }
        }
        Ok(v)
    }
}

/// A visitor who is signed in.
pub struct SignedIn {
    pub v: Visitor,
    pub user: Principal,
    pub cookie: String,
}

impl FromRequestParts<Portal> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, portal: &Portal) -> Result<Self, Response> {
        let v = Visitor::from_request_parts(parts, portal).await?;
        match (v.user.clone(), v.cookie.clone()) {
            (Some(user), Some(cookie)) => Ok(SignedIn { v, user, cookie }),
            _ => {
                // After signing in, a form's page is where to go back to, not its action.
                let back = if parts.method == axum::http::Method::GET {
                    v.here.as_str()
                } else {
                    "/"
                };
                let mut to = format!("/sign-in?next={}", crate::forms::encode(back));
                let res = if v.session_ended {
                    to.push_str("&ended=1");
                    let mut r = Redirect::to(&to).into_response();
                    // The dead cookie goes.
                    r.headers_mut().append(
                        header::SET_COOKIE,
                        axum::http::HeaderValue::from_static(
                            "opencm_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
                        ),
                    );
                    r
                } else {
                    Redirect::to(&to).into_response()
                };
                Err(res)
            }
        }
    }
}
