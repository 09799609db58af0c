//! Parser errors said without the values they refused: a configuration or template file may hold
//! a password or a key where the parser stopped (`bind_password = "…"`, `default_admin_key_hex`,
//! a database URL with its credentials), and the parser's own message quotes the offending line
//! and the value.

/// A refused TOML text, said as the line and column and the parser's reason with every quoted
/// value replaced by `…` — never the offending line itself.
pub fn toml_error(e: &toml::de::Error, text: &str) -> String {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    format!("{}{}", at.unwrap_or_default(), without_values(e.message()))
}

/// The first line of a parser's message with every double-quoted value replaced by `…` (serde
/// quotes a value it refused: `invalid type: string "s3cret", expected …`, escaping the quotes
/// inside it as `\"`), and Rust's integer type names said as an operator reads them.
pub fn without_values(message: &str) -> String {
    let mut out = String::new();
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        // Up to the closing quote, past escaped characters; all of it hidden.
        let mut escaped = false;
        for d in chars.by_ref() {
            match (escaped, d) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => break,
                _ => {}
            }
        }
        out.push_str("\"…\"");
    }
    let line = out.lines().next().unwrap_or_default();
    ["usize", "u64", "u32", "i64"]
        .iter()
        .fold(line.to_string(), |l, t| {
            l.replace(&format!("expected {t}"), "expected a whole number")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_are_hidden_whole_even_with_quotes_inside() {
        for (message, said) in [
            (
                r#"invalid type: string "abc\"s3cretPW", expected usize"#,
                r#"invalid type: string "…", expected a whole number"#,
            ),
            (r#"a "x\\" then "s3cret" end"#, r#"a "…" then "…" end"#),
            (r#"unterminated "s3cret"#, r#"unterminated "…""#),
            ("first line\nsecond \"s3cret\"", "first line"),
        ] {
            assert_eq!(without_values(message), said, "{message}");
            assert!(!without_values(message).contains("s3cret"));
        }
    }

    #[test]
    fn a_toml_error_names_the_place_not_the_line() {
        let text = "a = 1\nkey = \"S3CRET\" junk\n";
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let said = toml_error(&e, text);
        assert!(said.starts_with("line 2, column"), "{said}");
        assert!(!said.contains("S3CRET"), "{said}");
    }
}
