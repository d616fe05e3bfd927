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
        .any(|c| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c))
    {
        return Err("must not contain control characters".into());
    }
    Ok(value.to_owned())
}

/// The bidirectional embedding, override and isolate controls, which make
/// text display in another order than it reads (and so can disguise it).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Longest part of a client's value repeated back in an error (characters).
pub const MAX_QUOTED_CHARS: usize = 64;

/// A client's value quoted in an error message: escaped, and cut at
/// [`MAX_QUOTED_CHARS`] characters, so that a huge or hostile value costs
/// nothing to answer and cannot forge the message around it.
pub fn quoted(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(MAX_QUOTED_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
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

    #[test]
    fn refuses_bidi_overrides_but_not_scripts_or_emoji() {
        assert!(required_line("evil\u{202E}txt.exe", 40).is_err());
        assert!(required_line("\u{2067}isolate", 40).is_err());
        assert_eq!(required_line("שרה כהן", 40).unwrap(), "שרה כהן");
        assert_eq!(required_line("Zoë 🩺", 40).unwrap(), "Zoë 🩺");
    }

    #[test]
    fn quotes_at_most_sixty_four_characters_escaped() {
        assert_eq!(quoted("name"), "\"name\"");
        assert_eq!(quoted("a\u{0}b"), "\"a\\0b\"");
        let long = quoted(&"x".repeat(1 << 20));
        assert_eq!(long, format!("{:?}…", "x".repeat(MAX_QUOTED_CHARS)));
    }
}
