//! The headers every portal response carries, and the same-origin rule for every POST.

use crate::Portal;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// No inline script or style, nothing from elsewhere, never framed; forms post only here.
pub const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A POST must come from a page of this origin: browsers send `Origin` with every form post
/// (and `Sec-Fetch-Site`); a cross-site one is refused before any handler runs. This is beside
/// the CSRF token, which also binds the form to the session.
fn cross_site(req: &Request) -> bool {
    let h = req.headers();
    if h.get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site" || v.as_bytes() == b"same-site")
    {
        return true;
    }
    let Some(origin) = h.get(header::ORIGIN) else {
        // Not a browser's form post (browsers send Origin with every POST): the CSRF token
        // still has to match.
        return false;
    };
    let origin = origin.to_str().unwrap_or("");
    let bare = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    // HTTP/2 carries the host in the request's authority, HTTP/1.1 in `Host`.
    match crate::visitor::host(req.headers(), req.uri()) {
        Some(host) => !bare.eq_ignore_ascii_case(host),
        None => true,
    }
}

pub async fn secure(State(portal): State<Portal>, req: Request, next: Next) -> Response {
    let page = PageContext::of(&req);
    let mut res = if req.method() == Method::POST && cross_site(&req) {
        tracing::info!("cross-site form post refused");
        page.error(StatusCode::FORBIDDEN)
    } else {
        let res = next.run(req).await;
        // What the framework refused before a handler ran (a method, a content type, a body
        // too large, a form that does not parse) is a page too, in the reader's language.
        let html = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        let status = res.status();
        if (status.is_client_error() || status.is_server_error()) && !html {
            page.error(status)
        } else {
            res
        }
    };
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(h, "content-security-policy", CSP);
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "same-origin");
    set(h, "x-frame-options", "DENY");
    set(h, "cross-origin-opener-policy", "same-origin");
    set(
        h,
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        // Pages show personal data: never kept by shared caches or the back button's disk cache.
        set(h, "cache-control", "no-store");
    }
    if portal.config.tls {
        set(h, "strict-transport-security", "max-age=31536000");
    }
    res
}

/// What an error page needs of the request, taken before the request is handed on.
struct PageContext {
    lang: crate::i18n::Lang,
    correlation: String,
}

impl PageContext {
    fn of(req: &Request) -> PageContext {
        let h = req.headers();
        PageContext {
            lang: crate::i18n::Lang::negotiate(
                crate::visitor::cookie(h, crate::visitor::LANG_COOKIE),
                h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
            ),
            correlation: h
                .get("x-correlation-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        }
    }

    fn error(&self, status: StatusCode) -> Response {
        crate::render::status_page(self.lang, status, &self.correlation)
    }
}
