//! A card's answer to reset (ATR) as clients send it: hexadecimal, 2 to 33 bytes (ISO/IEC
//! 7816-3), kept lowercase. Binding a card and every card secret route parse it here, so a card is
//! recognised by the same rule everywhere.

/// An ATR is at most 33 bytes (ISO/IEC 7816-3).
pub const ATR_MAX_BYTES: usize = 33;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'atr' must be the card's answer to reset in hexadecimal, 2 to {ATR_MAX_BYTES} bytes (got '{0}').")]
pub struct AtrError(pub String);

/// The ATR in lowercase hex, surrounding spaces removed.
pub fn parse_atr(s: &str) -> Result<String, AtrError> {
    let a = s.trim();
    if a.len() < 4
        || a.len() > 2 * ATR_MAX_BYTES
        || !a.len().is_multiple_of(2)
        || !a.bytes().all(|c| c.is_ascii_hexdigit())
    {
        return Err(AtrError(crate::limits::excerpt(s)));
    }
    Ok(a.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atrs_are_even_hex_of_2_to_33_bytes_kept_lowercase() {
        assert_eq!(
            parse_atr(" 3B8D0180FBA000000397425446590301C8 ").unwrap(),
            "3b8d0180fba000000397425446590301c8"
        );
        assert!(parse_atr("3b8").is_err(), "odd length");
        assert!(parse_atr("3b").is_err(), "one byte");
        assert!(parse_atr("zz00").is_err());
        assert!(parse_atr(&"00".repeat(33)).is_ok());
        assert!(parse_atr(&"00".repeat(34)).is_err());
        let long = "x".repeat(10_000);
        assert!(parse_atr(&long).unwrap_err().0.len() < 200, "bounded echo");
    }
}
