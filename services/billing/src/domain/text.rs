//! Checks of identifiers sent by callers (free text is checked by
//! `medsec_platform::text`).

use uuid::Uuid;

/// A required UUID.
pub fn uuid(text: &str) -> Result<Uuid, &'static str> {
    if text.is_empty() {
        return Err("is required");
    }
    Uuid::parse_str(text).map_err(|_| "must be a UUID")
}

/// A price-list code: 1 to 32 of `A-Z 0-9 - _ .`, upper-cased.
pub fn price_code(text: &str) -> Result<String, &'static str> {
    let code = text.trim().to_uppercase();
    if code.is_empty() {
        return Err("is required");
    }
    if code.len() > 32
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("must be 1 to 32 of A-Z, 0-9, '-', '_' and '.'");
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_normalised_and_checked() {
        assert_eq!(price_code(" cons-new ").unwrap(), "CONS-NEW");
        assert!(price_code("").is_err());
        assert!(price_code("a b").is_err());
        assert!(price_code(&"X".repeat(33)).is_err());
    }
}
