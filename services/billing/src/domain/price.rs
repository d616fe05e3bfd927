//! The price list's rules: what a price code looks like, and a version's
//! validity running forward.

use chrono::NaiveDate;

/// A price-list code: 1 to 32 of `A-Z 0-9 - _ .`, upper-cased.
pub fn price_code(text: &str) -> Result<String, &'static str> {
    let code = text.trim().to_uppercase();
    if code.is_empty() {
        return Err(medsec_platform::request::message::REQUIRED);
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

/// Checks that a version valid from `from` ends (`to`, inclusive) no earlier.
pub fn validity(from: NaiveDate, to: Option<NaiveDate>) -> Result<(), &'static str> {
    match to {
        Some(to) if to < from => Err("must not be before valid_from"),
        _ => Ok(()),
    }
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

    #[test]
    fn a_version_may_last_one_day_but_not_end_before_it_starts() {
        let day = |d| NaiveDate::from_ymd_opt(2026, 4, d).unwrap();
        assert!(validity(day(1), None).is_ok());
        assert!(validity(day(1), Some(day(1))).is_ok());
        assert!(validity(day(2), Some(day(1))).is_err());
    }
}
