//! Conversions between wire and domain time: `google.protobuf.Timestamp` for
//! instants, `YYYY-MM-DD` strings for civil dates.

use chrono::{DateTime, NaiveDate, Utc};

/// The one documented wire form of a civil date.
pub const CIVIL_DATE_FORMAT: &str = "%Y-%m-%d";

/// A `Timestamp` for an instant.
pub fn to_timestamp(instant: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: instant.timestamp(),
        // Always below 2e9, so the cast cannot truncate.
        nanos: instant.timestamp_subsec_nanos() as i32,
    }
}

/// The instant of a `Timestamp`, or `None` when it is out of range.
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos).ok()?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

/// The earliest civil date any request may carry: before the oldest living
/// patient was born.
pub const EARLIEST_CIVIL_DATE: NaiveDate = civil(1880, 1, 1);
/// The latest civil date any request may carry: far enough for any plan,
/// near enough that date arithmetic never overflows.
pub const LATEST_CIVIL_DATE: NaiveDate = civil(2199, 12, 31);

/// The date `year-month-day`, which must exist.
pub const fn civil(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("not a date"),
    }
}

/// Parses a civil date in its one wire form, `YYYY-MM-DD`.
pub fn parse_civil_date(text: &str) -> Option<NaiveDate> {
    // chrono accepts a sign and more digits in %Y; insist on the documented form.
    if text.len() != 10 {
        return None;
    }
    NaiveDate::parse_from_str(text, CIVIL_DATE_FORMAT).ok()
}

/// Formats a civil date as `YYYY-MM-DD`.
pub fn format_civil_date(date: NaiveDate) -> String {
    date.format(CIVIL_DATE_FORMAT).to_string()
}

/// Today's civil date in Europe/London, where every medsec clinic is.
pub fn today_in_london() -> NaiveDate {
    london_date(Utc::now())
}

/// The civil date in Europe/London at `instant`.
pub fn london_date(instant: DateTime<Utc>) -> NaiveDate {
    instant
        .with_timezone(&chrono_tz::Europe::London)
        .date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn civil_dates_round_trip_in_one_form() {
        let date = parse_civil_date("2026-03-29").unwrap();
        assert_eq!(format_civil_date(date), "2026-03-29");
        for bad in [
            "2026-3-29",
            "29/03/2026",
            "+2026-03-29",
            "2026-02-30",
            "",
            "2026-03-29T00:00",
        ] {
            assert!(parse_civil_date(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn timestamps_round_trip() {
        let instant = Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap();
        assert_eq!(from_timestamp(&to_timestamp(instant)), Some(instant));
        let bad = prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        };
        assert_eq!(from_timestamp(&bad), None);
    }

    proptest::proptest! {
        /// Any text: a date or `None`, never a panic; a date formats back to
        /// the text it came from.
        #[test]
        fn any_text_is_a_date_in_one_form_or_none(text in ".{0,16}") {
            if let Some(date) = parse_civil_date(&text) {
                proptest::prop_assert_eq!(format_civil_date(date), text);
            }
        }

        #[test]
        fn any_timestamp_is_an_instant_or_none(seconds in proptest::num::i64::ANY, nanos in proptest::num::i32::ANY) {
            let timestamp = prost_types::Timestamp { seconds, nanos };
            if let Some(instant) = from_timestamp(&timestamp) {
                proptest::prop_assert_eq!(to_timestamp(instant), timestamp);
            }
        }
    }
}
