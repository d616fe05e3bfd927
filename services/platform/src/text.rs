//! Checks of free text typed by people: trimmed, bounded, and free of
//! control characters (a single line unless the field allows more).

/// Trimmed text that must be present.
pub fn required(value: &str, max_chars: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("is required".into());
    }
    optional(value, max_chars)
}

/// Trimmed text that may be empty.
pub fn optional(value: &str, max_chars: usize) -> Result<String, String> {
    let value = value.trim();
    if value.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// Trimmed single-line text that may be empty.
pub fn optional_line(value: &str, max_chars: usize) -> Result<String, String> {
    let value = optional(value, max_chars)?;
    if value.contains(['\n', '\t']) {
        return Err("must be a single line".into());
    }
    Ok(value)
}

/// Trimmed single-line text that must be present.
pub fn required_line(value: &str, max_chars: usize) -> Result<String, String> {
    let value = required(value, max_chars)?;
    if value.contains(['\n', '\t']) {
        return Err("must be a single line".into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_bounds_and_refuses_control_characters() {
        assert_eq!(required(" Ada ", 10).unwrap(), "Ada");
        assert!(required("  ", 10).is_err());
        assert!(required("x".repeat(11).as_str(), 10).is_err());
        assert_eq!(optional("", 10).unwrap(), "");
        assert_eq!(optional("two\nlines", 20).unwrap(), "two\nlines");
        assert!(optional("bell\u{7}", 20).is_err());
        assert!(required_line("two\nlines", 20).is_err());
        assert!(optional_line("tab\there", 20).is_err());
        assert_eq!(optional_line("", 5).unwrap(), "");
    }
}
