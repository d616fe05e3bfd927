//! UK postcodes: validated against the Royal Mail format and normalised to
//! upper case with one space before the inward code ("SW1A 1AA").

use std::fmt;

/// Longest input read as a postcode (or an outward code): seven letters
/// and digits with room for spacing; anything longer is refused unread.
pub const MAX_INPUT_CHARS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Postcode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a valid UK postcode (e.g. SW1A 1AA)")]
pub struct PostcodeError;

impl Postcode {
    /// Parses a full postcode in any case and spacing: `sw1a1aa`, `SW1A 1AA`.
    pub fn parse(input: &str) -> Result<Self, PostcodeError> {
        if input.trim().chars().count() > MAX_INPUT_CHARS {
            return Err(PostcodeError);
        }
        let compact: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if compact == "GIR0AA" {
            return Ok(Self("GIR 0AA".to_owned()));
        }
        if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
            return Err(PostcodeError);
        }
        let (outward, inward) = compact.split_at(compact.len() - 3);
        if !is_outward_code(outward) || !is_inward_code(inward) {
            return Err(PostcodeError);
        }
        Ok(Self(format!("{outward} {inward}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A postcode search: one whole postcode, or every postcode of a district
/// (an outward code alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostcodeFilter {
    Exact(Postcode),
    District(String),
}

impl PostcodeFilter {
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        match Postcode::parse(input) {
            Ok(postcode) => Ok(Self::Exact(postcode)),
            Err(_) => parse_outward_code(input)
                .map(Self::District)
                .ok_or("must be a UK postcode or an outward code (e.g. SW1A 1AA or SW1A)"),
        }
    }
}

/// Normalises an outward code alone (`sw1a` -> `SW1A`), for searching a
/// whole postcode district.
fn parse_outward_code(input: &str) -> Option<String> {
    let outward = input.trim().to_ascii_uppercase();
    is_outward_code(&outward).then_some(outward)
}

/// A9, A99, AA9, AA99, A9A, AA9A, with the letters each position allows.
fn is_outward_code(code: &str) -> bool {
    const FIRST: &str = "ABCDEFGHIJKLMNOPRSTUWYZ"; // not Q, V, X
    const SECOND: &str = "ABCDEFGHKLMNOPQRSTUVWXY"; // not I, J, Z
    const THIRD: &str = "ABCDEFGHJKPSTUW"; // in A9A
    const FOURTH: &str = "ABEHMNPRVWXY"; // in AA9A
    let c: Vec<char> = code.chars().collect();
    let letter = |ch: char, allowed: &str| allowed.contains(ch);
    let digit = |ch: char| ch.is_ascii_digit();
    match c.as_slice() {
        [a, b] => letter(*a, FIRST) && digit(*b),
        [a, b, d] if digit(*b) => letter(*a, FIRST) && (digit(*d) || letter(*d, THIRD)),
        [a, b, d] => letter(*a, FIRST) && letter(*b, SECOND) && digit(*d),
        [a, b, d, e] => {
            letter(*a, FIRST)
                && letter(*b, SECOND)
                && digit(*d)
                && (digit(*e) || letter(*e, FOURTH))
        }
        _ => false,
    }
}

/// 9AA, where the letters are never C, I, K, M, O or V.
fn is_inward_code(code: &str) -> bool {
    const LETTERS: &str = "ABDEFGHJLNPQRSTUWXYZ";
    let c: Vec<char> = code.chars().collect();
    matches!(c.as_slice(), [d, x, y] if d.is_ascii_digit() && LETTERS.contains(*x) && LETTERS.contains(*y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_every_outward_form() {
        for (input, expected) in [
            ("m1 1ae", "M1 1AE"),
            ("B33 8TH", "B33 8TH"),
            ("cr26xh", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("w1a 0ax", "W1A 0AX"),
            ("EC1A1BB", "EC1A 1BB"),
            (" sw1a  1aa ", "SW1A 1AA"),
            ("gir 0aa", "GIR 0AA"),
        ] {
            assert_eq!(
                Postcode::parse(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_what_royal_mail_never_issues() {
        for input in [
            "",
            "SW1A",
            "SW1A 1A",
            "SW1A 1AAA",
            "QA1 1AA",
            "AI1 1AA",
            "SW1A 1CA",
            "1SW 1AA",
            "EC1Z 1BB",
            "SW1A-1AA",
        ] {
            assert!(Postcode::parse(input).is_err(), "{input}");
        }
    }

    #[test]
    fn outward_codes_alone() {
        assert_eq!(parse_outward_code("sw1a").as_deref(), Some("SW1A"));
        assert_eq!(parse_outward_code("M1").as_deref(), Some("M1"));
        assert_eq!(parse_outward_code("SW1A 1AA"), None);
        assert_eq!(
            PostcodeFilter::parse("ls1"),
            Ok(PostcodeFilter::District("LS1".into()))
        );
        assert!(matches!(
            PostcodeFilter::parse("ls29jt"),
            Ok(PostcodeFilter::Exact(_))
        ));
        assert!(PostcodeFilter::parse("NOT A POSTCODE").is_err());
    }

    proptest::proptest! {
        /// Any text: an answer, never a panic; an accepted postcode is in its
        /// one stored form, which parses again to itself.
        #[test]
        fn any_text_is_answered_and_accepted_postcodes_round_trip(input in ".{0,24}") {
            if let Ok(postcode) = Postcode::parse(&input) {
                proptest::prop_assert_eq!(Postcode::parse(postcode.as_str()), Ok(postcode.clone()));
            }
            let _ = PostcodeFilter::parse(&input);
        }

        /// A postcode-shaped text, if accepted, is stored upper-case with one
        /// space before the inward code.
        #[test]
        fn postcode_shaped_text_keeps_its_characters(input in "[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}") {
            if let Ok(postcode) = Postcode::parse(&input) {
                let compact: String = input.split_whitespace().collect::<String>().to_uppercase();
                let (outward, inward) = compact.split_at(compact.len() - 3);
                proptest::prop_assert_eq!(postcode.as_str(), format!("{outward} {inward}"));
            }
        }
    }
}
