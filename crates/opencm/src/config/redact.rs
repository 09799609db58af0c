//! Configuration errors and logs without secrets.

/// A refused configuration file, said without its values: the line and column, and the parser's
/// reason with every quoted value replaced by `…` — never the offending line itself, which may hold
/// a password (`bind_password = "…"`, `client_secret`, a database URL with its credentials) even
/// where opencm takes no such key.
pub(super) fn redacted(e: &toml::de::Error, text: &str) -> String {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    format!("{}{}", at.unwrap_or_default(), without_values(e.message()))
}

/// The message with every double-quoted value and every backquoted value that is not a key name
/// replaced by `…` (serde quotes a value it refused: `invalid type: string "s3cret", expected …`).
pub(super) fn without_values(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        match rest[open + 1..].find('"') {
            Some(close) => {
                out.push_str("\"…\"");
                rest = &rest[open + 1 + close + 1..];
            }
            None => {
                out.push('…');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    let line = out.lines().next().unwrap_or_default();
    // serde names Rust's integer types; an operator reads "a whole number".
    ["usize", "u64", "u32", "i64"]
        .iter()
        .fold(line.to_string(), |l, t| {
            l.replace(&format!("expected {t}"), "expected a whole number")
        })
}

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
        let (url, query) = match self.0.split_once('?') {
            Some((u, _)) => (u, "?…"),
            None => (self.0.as_str(), ""),
        };
        match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => write!(f, "{}://***{}{query}", &url[..s], &url[at..]),
            _ => write!(f, "{url}{query}"),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}
