//! Configuration errors and logs without secrets.

pub(super) use opencm_app::redact::{toml_error as redacted, without_values};

/// The database URL. It may hold a password (`postgres://user:password@host/db`,
/// `?password=…`): `Display` and `Debug` show it with the user information masked and the query
/// string left out; only [`DatabaseUrl::expose`] gives the whole URL, to connect with.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl(url.to_string())
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&masked_url(&self.0))
    }
}

/// A URL as a log or a message may show it: `scheme://***@host:port/path?…`, everything between
/// `://` and the last `@` (a password may hold `/`, `?` or `@` written unescaped) masked, the
/// query string left out; a text that is not a URL at all (`host=… password=…`) is not shown.
pub fn masked_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".to_string();
    };
    let (masked, rest) = match rest.rfind('@') {
        Some(at) => ("***", &rest[at..]),
        None => ("", rest),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((before, _)) => (before, "?…"),
        None => (rest, ""),
    };
    format!("{scheme}://{masked}{rest}{query}")
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}
