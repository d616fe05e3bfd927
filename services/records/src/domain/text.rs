//! Checks of free text typed by people.

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
