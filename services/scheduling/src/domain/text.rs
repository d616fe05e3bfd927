//! Checks of names, free text and specialty words shared by every resource;
//! the text rules themselves are the platform's.

use medsec_platform::text as platform;

/// Longest name (staff, location, room).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free text (reasons, notes, summaries).
pub const MAX_TEXT_CHARS: usize = 2000;

/// A required single-line name, trimmed.
pub fn name(text: &str) -> Result<String, String> {
    platform::required_line(text, MAX_NAME_CHARS)
}

/// Optional free text, trimmed; newlines allowed.
pub fn free_text(text: &str) -> Result<String, String> {
    platform::optional(text, MAX_TEXT_CHARS)
}

/// Required free text.
pub fn required_text(text: &str) -> Result<String, String> {
    platform::required(text, MAX_TEXT_CHARS)
}

/// A specialty as the allocation model names it: lower-case words joined by
/// underscores ("cardiology", "ear_nose_throat"). Input is lower-cased and
/// spaces become underscores.
pub fn specialty(text: &str) -> Result<String, &'static str> {
    let normalised: String = text
        .trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_");
    if normalised.is_empty() {
        return Err("is required");
    }
    if normalised.len() > 64
        || !normalised
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
    {
        return Err("must be words of letters a-z (e.g. cardiology, ear_nose_throat)");
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specialties_are_normalised_words() {
        assert_eq!(specialty(" Ear Nose  Throat ").unwrap(), "ear_nose_throat");
        assert!(specialty("cardio-logy").is_err());
        assert!(specialty("").is_err());
    }
}
