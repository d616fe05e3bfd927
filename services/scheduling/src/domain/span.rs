//! Spans in requests (a shift, a slot, an absence, a session's times, a
//! date range): an end after its start, a `to` not before its `from`, and
//! how long a span may last. A bad span is reported on its later field;
//! nothing is checked when either end was already bad.

use chrono::Duration;
use medsec_platform::Reader;

/// How long a span may last, and what a client is told when it is longer.
pub type Longest<'a> = Option<(Duration, &'a str)>;

/// `end` must come after `start_time` and at most `longest` after it.
pub fn ends_after<T>(
    r: &mut Reader,
    end_field: &str,
    start: Option<T>,
    end: Option<T>,
    longest: Longest<'_>,
) where
    T: PartialOrd + Copy + std::ops::Sub<Output = Duration>,
{
    if let Some((start, end)) = start.zip(end) {
        let why = (end <= start).then_some("must be after start_time".to_owned());
        check(r, end_field, why, end - start, longest);
    }
}

/// `to` must not be before `from` (named `from_name`), and at most
/// `longest` after it.
pub fn not_before<T>(
    r: &mut Reader,
    to_field: &str,
    from_name: &str,
    from: Option<T>,
    to: Option<T>,
    longest: Longest<'_>,
) where
    T: PartialOrd + Copy + std::ops::Sub<Output = Duration>,
{
    if let Some((from, to)) = from.zip(to) {
        let why = (to < from).then(|| format!("must not be before {from_name}"));
        check(r, to_field, why, to - from, longest);
    }
}

/// Records why a span is out of order, or else too long.
fn check(
    r: &mut Reader,
    field: &str,
    disorder: Option<String>,
    length: Duration,
    longest: Longest<'_>,
) {
    if let Some(why) = disorder {
        r.add(field, why);
    } else if let Some((longest, why)) = longest
        && length > longest
    {
        r.add(field, why);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, NaiveTime};

    use super::*;
    use crate::domain::tests::violations;

    fn time(text: &str) -> Option<NaiveTime> {
        NaiveTime::parse_from_str(text, "%H:%M").ok()
    }

    fn date(text: &str) -> Option<NaiveDate> {
        Some(crate::domain::tests::date(text))
    }

    #[test]
    fn an_end_comes_after_its_start_and_within_the_longest_span() {
        let mut r = Reader::new();
        ends_after(&mut r, "a", time("09:00"), time("09:00"), None);
        ends_after(
            &mut r,
            "b",
            time("09:00"),
            time("17:01"),
            Some((Duration::hours(8), "too long")),
        );
        ends_after(
            &mut r,
            "c",
            time("09:00"),
            time("17:00"),
            Some((Duration::hours(8), "too long")),
        );
        ends_after(&mut r, "d", None, time("08:00"), None);
        assert_eq!(
            violations(r),
            ["a: must be after start_time", "b: too long"]
        );
    }

    #[test]
    fn a_to_is_not_before_its_from() {
        let mut r = Reader::new();
        not_before(
            &mut r,
            "to",
            "from",
            date("2026-02-14"),
            date("2026-02-01"),
            None,
        );
        not_before(
            &mut r,
            "same",
            "from",
            date("2026-02-14"),
            date("2026-02-14"),
            None,
        );
        not_before(
            &mut r,
            "far",
            "from",
            date("2026-01-01"),
            date("2027-01-03"),
            Some((Duration::days(366), "at most a year")),
        );
        assert_eq!(
            violations(r),
            ["to: must not be before from", "far: at most a year"]
        );
    }
}
