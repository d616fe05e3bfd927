//! How long names and free text may be, and specialty words; the rules of
//! text itself (trimmed, bounded, no control characters) are the
//! platform's reader's.

use medsec_platform::Reader;

/// Longest name (staff, location, room).
pub const MAX_NAME_CHARS: usize = 200;
/// Longest free text (reasons, notes, summaries, addresses).
pub const MAX_TEXT_CHARS: usize = 2000;
/// Longest specialty, as given and as normalised.
pub const MAX_SPECIALTY_CHARS: usize = 64;

/// A specialty as the allocation model names it: lower-case words joined by
/// underscores ("cardiology", "ear_nose_throat"). Input is lower-cased and
/// spaces become underscores.
pub fn specialty(text: &str) -> Result<String, &'static str> {
    // Refused before it is copied and split, however much of it is spaces.
    if text.trim().chars().count() > MAX_SPECIALTY_CHARS {
        return Err("must be at most 64 characters");
    }
    let normalised: String = text
        .trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_");
    if normalised.is_empty() {
        return Err(medsec_platform::request::message::REQUIRED);
    }
    if normalised.len() > MAX_SPECIALTY_CHARS
        || !normalised
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit())
    {
        return Err("must be words of letters a-z (e.g. cardiology, ear_nose_throat)");
    }
    Ok(normalised)
}

/// A required specialty in `field`.
pub fn read_specialty(r: &mut Reader, field: &str, text: &str) -> Option<String> {
    r.check(field, specialty(text))
}

/// A specialty filter: empty is `None`.
pub fn optional_specialty(r: &mut Reader, field: &str, text: &str) -> Option<String> {
    if text.is_empty() {
        return None;
    }
    read_specialty(r, field, text)
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

    #[test]
    fn an_empty_filter_is_no_filter() {
        let mut r = Reader::new();
        assert_eq!(optional_specialty(&mut r, "specialty", ""), None);
        assert_eq!(
            optional_specialty(&mut r, "specialty", "Cardiology").as_deref(),
            Some("cardiology")
        );
        assert!(r.finish(()).is_ok());
    }
}
