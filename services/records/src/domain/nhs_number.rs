//! The NHS number: ten digits whose last is a modulus-11 check digit.

use std::fmt;

/// A valid NHS number, held as its ten digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("must be 10 digits, optionally grouped with spaces or dashes (e.g. 943 476 5919)")]
    Format,
    #[error("fails the modulus 11 check digit")]
    CheckDigit,
}

/// Longest input read as an NHS number: ten digits with room for
/// separators; anything longer is refused unread.
pub const MAX_INPUT_CHARS: usize = 20;

impl NhsNumber {
    /// Parses `943 476 5919`, `943-476-5919` or `9434765919`.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let input = input.trim();
        if input.chars().count() > MAX_INPUT_CHARS {
            return Err(NhsNumberError::Format);
        }
        let digits: String = input.chars().filter(|c| *c != ' ' && *c != '-').collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NhsNumberError::Format);
        }
        let values = digit_values(&digits);
        if check_digit(&values[..9]) != Some(values[9]) {
            return Err(NhsNumberError::CheckDigit);
        }
        Ok(Self(digits))
    }

    /// The first valid number whose first nine digits are `stem` or come
    /// after it (`stem` below 10⁹). Test data take theirs from the 999
    /// range, which is never issued.
    pub fn at_or_after(stem: u32) -> Self {
        let mut stem = stem % 1_000_000_000;
        loop {
            let digits = format!("{stem:09}");
            if let Some(check) = check_digit(&digit_values(&digits)) {
                return Self(format!("{digits}{check}"));
            }
            stem += 1;
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn digit_values(digits: &str) -> Vec<u32> {
    digits.bytes().map(|b| u32::from(b - b'0')).collect()
}

/// The modulus 11 check digit of nine digits, weighted 10 down to 2; `None`
/// when it would be 10, which no number has.
fn check_digit(stem: &[u32]) -> Option<u32> {
    let sum: u32 = stem
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        check => Some(check),
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_numbers_in_any_grouping() {
        for input in [
            "9434765919",
            "943 476 5919",
            "943-476-5919",
            " 943 476 5919 ",
        ] {
            assert_eq!(NhsNumber::parse(input).unwrap().as_str(), "9434765919");
        }
        // Test range, never issued, still valid.
        assert!(NhsNumber::parse("999 000 0018").is_ok());
    }

    #[test]
    fn the_first_valid_number_at_or_after_a_stem() {
        assert_eq!(NhsNumber::at_or_after(943_476_591).as_str(), "9434765919");
        // 999 000 000 has no check digit (it would be 10).
        assert_eq!(NhsNumber::at_or_after(999_000_000).as_str(), "9990000018");
    }

    #[test]
    fn a_check_digit_of_eleven_is_zero() {
        // 401 023 001: the weighted sum is a multiple of 11, so the check
        // digit is 0.
        assert!(NhsNumber::parse("4010230010").is_ok());
        assert_eq!(
            NhsNumber::parse("4010230011"),
            Err(NhsNumberError::CheckDigit)
        );
    }

    #[test]
    fn refuses_bad_form_and_bad_check_digits() {
        for input in [
            "",
            "943476591",
            "94347659190",
            "943 476 591X",
            "943_476_5919",
            "٩٤٣٤٧٦٥٩١٩",
        ] {
            assert_eq!(
                NhsNumber::parse(input),
                Err(NhsNumberError::Format),
                "{input}"
            );
        }
        assert_eq!(
            NhsNumber::parse("9434765918"),
            Err(NhsNumberError::CheckDigit)
        );
    }

    #[test]
    fn a_remainder_giving_ten_is_never_valid() {
        // Find a nine-digit stem whose check would be 10: no tenth digit works.
        let stem = (0..1_000u32)
            .map(|n| format!("{:09}", 123_456_000 + n))
            .find(|stem| {
                let sum: u32 = stem
                    .bytes()
                    .zip((2..=10).rev())
                    .map(|(b, w)| u32::from(b - b'0') * w)
                    .sum();
                11 - sum % 11 == 10
            })
            .unwrap();
        for last in 0..10 {
            assert!(NhsNumber::parse(&format!("{stem}{last}")).is_err());
        }
    }

    proptest::proptest! {
        /// Any text at all: a clear answer, never a panic; what is accepted
        /// is ten digits that parse again to themselves.
        #[test]
        fn any_text_is_answered_and_accepted_numbers_round_trip(input in ".{0,40}") {
            if let Ok(number) = NhsNumber::parse(&input) {
                proptest::prop_assert_eq!(number.as_str().len(), 10);
                proptest::prop_assert_eq!(NhsNumber::parse(number.as_str()), Ok(number.clone()));
            }
        }

        /// Modulus 11 catches every single wrong digit.
        #[test]
        fn one_wrong_digit_is_always_caught(stem in 100_000_000u32..999_999_999, at in 0usize..10, by in 1u32..10) {
            let digits = format!("{stem:09}");
            let sum: u32 = digits.bytes().zip((2..=10).rev()).map(|(d, w)| u32::from(d - b'0') * w).sum();
            let check = match 11 - sum % 11 { 11 => 0, 10 => return Ok(()), c => c };
            let valid = format!("{digits}{check}");
            proptest::prop_assert!(NhsNumber::parse(&valid).is_ok());
            let mut wrong: Vec<u8> = valid.into_bytes();
            wrong[at] = b'0' + ((u32::from(wrong[at] - b'0') + by) % 10) as u8;
            let wrong = String::from_utf8(wrong).unwrap();
            proptest::prop_assert!(NhsNumber::parse(&wrong).is_err(), "{}", wrong);
        }
    }
}
