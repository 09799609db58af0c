//! The headers every portal response carries, and the same-origin rule for every POST.

use crate::Portal;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

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
    match (h.get(header::ORIGIN), h.get(header::HOST)) {
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or("");
            let host = host.to_str().unwrap_or("");
            let bare = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            !bare.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

pub async fn secure(State(portal): State<Portal>, req: Request, next: Next) -> Response {
    let mut res = if req.method() == Method::POST && cross_site(&req) {
        tracing::info!("cross-site form post refused");
        (StatusCode::FORBIDDEN, "Cross-site form posts are refused.").into_response()
    } else {
        next.run(req).await
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
