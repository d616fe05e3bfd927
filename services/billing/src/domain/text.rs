//! Checks of free text and identifiers sent by callers.

use uuid::Uuid;

/// Trimmed text of 1 to `max` characters with no control characters.
pub fn required_text(text: &str, max: usize) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("is required".to_owned());
    }
    optional_text(trimmed, max)
}

/// Like [`required_text`], but empty is allowed.
pub fn optional_text(text: &str, max: usize) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(trimmed.to_owned())
}

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
