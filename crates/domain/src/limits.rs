//! How much text a client may store, and in what form: every field has a maximum length (in
//! characters) and may not contain U+0000, which PostgreSQL's TEXT cannot hold — so the same input
//! is accepted or refused identically on both engines.

/// A request's comment, an approval's comment, certificatedata's comment.
pub const COMMENT_MAX: usize = 4_000;
/// A data collection item's name.
pub const DATA_NAME_MAX: usize = 256;
/// A data collection item's value.
pub const DATA_VALUE_MAX: usize = 1_024;
/// Data collection items in one request.
pub const DATA_ITEMS_MAX: usize = 64;
/// A PKCS#12 password.
pub const PASSWORD_MAX: usize = 1_024;
/// A profile template's name, and a certificate template's common name.
pub const TEMPLATE_NAME_MAX: usize = 256;
/// A profile template's description.
pub const TEMPLATE_DESCRIPTION_MAX: usize = 4_000;

/// Why a text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} is longer than {1} characters")]
    TooLong(String, usize),
    #[error("{0} contains a NUL character (U+0000)")]
    Nul(String),
}

/// `text` as a field named `what` may hold it.
pub fn check(what: &str, text: &str, max: usize) -> Result<(), TextError> {
    if text.contains('\u{0}') {
        return Err(TextError::Nul(what.to_string()));
    }
    if text.chars().count() > max {
        return Err(TextError::TooLong(what.to_string(), max));
    }
    Ok(())
}

/// What an error message may quote of a client's input: the first 40 characters, control
/// characters escaped, "…" when cut — never the whole of a megabyte-long value.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s.chars().take(MAX).flat_map(char::escape_debug).collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_counts_characters_and_nul_is_refused() {
        assert!(check("'comment'", &"é".repeat(COMMENT_MAX), COMMENT_MAX).is_ok());
        assert_eq!(
            check("'comment'", &"a".repeat(COMMENT_MAX + 1), COMMENT_MAX),
            Err(TextError::TooLong("'comment'".into(), COMMENT_MAX))
        );
        assert_eq!(
            check("'comment'", "a\u{0}b", COMMENT_MAX),
            Err(TextError::Nul("'comment'".into()))
        );
    }
}
