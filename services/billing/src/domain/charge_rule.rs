//! Which price-list code billing charges for an appointment it hears of:
//! the clinic's rules (`billing.charges`), a code template per kind of
//! appointment with `{SPECIALTY}` standing for the slot's specialty.

/// Longest price-list code.
const MAX_CODE_CHARS: usize = 32;

/// The code `template` names for `specialty`: `{SPECIALTY}` replaced by the
/// specialty upper-cased, with each run of other characters than A-Z and
/// 0-9 made one `-` ("ear, nose & throat" -> "EAR-NOSE-THROAT"); the whole
/// code upper-cased and cut to 32 characters.
pub fn charge_code(template: &str, specialty: &str) -> String {
    let mut token = String::with_capacity(specialty.len());
    for c in specialty.trim().chars() {
        if c.is_ascii_alphanumeric() {
            token.push(c.to_ascii_uppercase());
        } else if !token.ends_with('-') && !token.is_empty() {
            token.push('-');
        }
    }
    let token = token.trim_end_matches('-');
    template
        .replace("{SPECIALTY}", token)
        .to_ascii_uppercase()
        .chars()
        .take(MAX_CODE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::charge_code;

    #[test]
    fn names_the_specialty_in_the_code() {
        assert_eq!(
            charge_code("{SPECIALTY}-NEW", "cardiology"),
            "CARDIOLOGY-NEW"
        );
        assert_eq!(
            charge_code("{SPECIALTY}-FUP", " ear, nose & throat "),
            "EAR-NOSE-THROAT-FUP"
        );
        assert_eq!(charge_code("CONS-NEW", "cardiology"), "CONS-NEW");
        assert_eq!(charge_code("dna", "x"), "DNA");
        assert_eq!(
            charge_code("{SPECIALTY}-NEW", "trauma and orthopaedics surgery"),
            "TRAUMA-AND-ORTHOPAEDICS-SURGERY-"
        );
    }
}
