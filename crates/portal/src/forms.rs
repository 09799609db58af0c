//! Small helpers for forms and links: percent-encoding of a query value, the local paths a
//! sign-in may return to, and the CSRF check of a posted form.

use crate::render::PageError;
use opencm_app::sessions::csrf_matches;

/// A value for a URL query (RFC 3986 unreserved characters kept, everything else `%XX`).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Where to go after signing in or switching language: a path of this site only — never
/// another origin (`//evil`, `/\evil`, `https://…`), so the portal cannot be used as an open
/// redirect.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.starts_with("/\\")
                && !p.chars().any(|c| c.is_control() || c == '\\')
                && p.len() <= 2048 =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// A request id from a path: anything else is a page that does not exist.
pub fn request_id(id: &str) -> Result<opencm_domain::RequestId, PageError> {
    id.parse::<opencm_domain::Guid>()
        .map(Into::into)
        .map_err(|_| PageError::NotFound)
}

/// A state-changing form must carry its session's CSRF token.
pub fn check_csrf(cookie: &str, sent: &str) -> Result<(), PageError> {
    if csrf_matches(cookie, sent) {
        Ok(())
    } else {
        tracing::info!("form post with a missing or foreign CSRF token refused");
        Err(PageError::Csrf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/requests/1?x=2")), "/requests/1?x=2");
        for evil in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "evil",
            "/\nSet-Cookie: x",
            "/%0d",
        ] {
            let p = local_path(Some(evil));
            assert!(p == "/" || p == evil && evil == "/%0d", "{evil:?} → {p:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("/a b?c=d&e"), "%2Fa%20b%3Fc%3Dd%26e");
    }
}
