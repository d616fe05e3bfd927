//! Clinic sessions are defined in Europe/London wall-clock time; slots are
//! stored as UTC instants. This module owns that conversion, including the
//! two days a year the wall clock jumps.
//!
//! The rule: a session lasts the real time between the first moment the wall
//! clock shows its start and the last moment it shows its end, and slots are
//! laid end to end in real time from its start.
//!
//! - Last Sunday of March (01:00 GMT -> 02:00 BST), a local time from 01:00
//!   to 01:59 never happens: such a start or end means the instant the clock
//!   jumps past it (01:30 is read as 02:30 BST), so a session spanning the
//!   gap is an hour shorter and holds fewer slots.
//! - Last Sunday of October (02:00 BST -> 01:00 GMT), 01:00 to 01:59 happens
//!   twice: a start means its first occurrence (BST) and an end its second
//!   (GMT), so a session spanning the repeat is an hour longer.
//!
//! Daytime clinics are untouched by either rule: only their UTC offset changes.

use chrono::{DateTime, Datelike as _, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono::{LocalResult, TimeZone as _};
use chrono_tz::Europe::London;

/// The civil date in Europe/London of an instant.
pub fn local_date(instant: DateTime<Utc>) -> NaiveDate {
    instant.with_timezone(&London).date_naive()
}

/// The instant a session starting at local `time` on `date` starts.
pub fn session_start(date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    resolve(date.and_time(time), true)
}

/// The instant a session ending at local `time` on `date` ends.
pub fn session_end(date: NaiveDate, time: NaiveTime) -> Option<DateTime<Utc>> {
    resolve(date.and_time(time), false)
}

/// Midnight in London at the start of `date`, as an instant.
pub fn start_of_day(date: NaiveDate) -> Option<DateTime<Utc>> {
    session_start(date, NaiveTime::MIN)
}

fn resolve(local: NaiveDateTime, first: bool) -> Option<DateTime<Utc>> {
    match London.from_local_datetime(&local) {
        LocalResult::Single(instant) => Some(instant.with_timezone(&Utc)),
        LocalResult::Ambiguous(earliest, latest) => {
            Some(if first { earliest } else { latest }.with_timezone(&Utc))
        }
        // In the spring gap: the wall clock jumps one hour, so the same
        // reading an hour later is the moment it lands.
        LocalResult::None => London
            .from_local_datetime(&(local + Duration::hours(1)))
            .earliest()
            .map(|instant| instant.with_timezone(&Utc)),
    }
}

/// The (start, end) instants of the slots of one session on `date`.
pub fn session_slots(
    date: NaiveDate,
    start: NaiveTime,
    end: NaiveTime,
    slot_minutes: u32,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let (Some(first), Some(last)) = (session_start(date, start), session_end(date, end)) else {
        return Vec::new();
    };
    let length = Duration::minutes(i64::from(slot_minutes.max(1)));
    let mut slots = Vec::new();
    let mut at = first;
    while at + length <= last {
        slots.push((at, at + length));
        at += length;
    }
    slots
}

/// ISO weekday number of a date: 1 = Monday ... 7 = Sunday.
pub fn iso_weekday(date: NaiveDate) -> u32 {
    date.weekday().number_from_monday()
}

/// Parses a wall-clock time `HH:MM`.
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    if text.len() != 5 {
        return None;
    }
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

pub fn format_time(time: NaiveTime) -> String {
    time.format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::date;

    fn time(text: &str) -> NaiveTime {
        parse_time(text).unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn daytime_sessions_move_with_the_offset() {
        let winter = session_slots(date("2026-03-22"), time("09:00"), time("10:00"), 30);
        assert_eq!(winter[0].0, utc("2026-03-22T09:00:00Z"));
        let summer = session_slots(date("2026-03-29"), time("09:00"), time("10:00"), 30);
        assert_eq!(summer[0].0, utc("2026-03-29T08:00:00Z"));
        assert_eq!(summer.len(), 2);
        let back = session_slots(date("2026-10-25"), time("09:00"), time("10:00"), 30);
        assert_eq!(back[0].0, utc("2026-10-25T09:00:00Z"));
    }

    #[test]
    fn a_session_across_the_spring_gap_is_an_hour_shorter() {
        let slots = session_slots(date("2026-03-29"), time("00:30"), time("03:30"), 30);
        assert_eq!(slots.first().unwrap().0, utc("2026-03-29T00:30:00Z"));
        assert_eq!(slots.last().unwrap().1, utc("2026-03-29T02:30:00Z"));
        assert_eq!(slots.len(), 4);
        // A start inside the gap is the moment the clock lands after it.
        assert_eq!(
            session_start(date("2026-03-29"), time("01:30")),
            Some(utc("2026-03-29T01:30:00Z"))
        );
    }

    #[test]
    fn a_session_across_the_autumn_repeat_is_an_hour_longer() {
        let slots = session_slots(date("2026-10-25"), time("00:30"), time("03:30"), 30);
        assert_eq!(slots.first().unwrap().0, utc("2026-10-24T23:30:00Z"));
        assert_eq!(slots.last().unwrap().1, utc("2026-10-25T03:30:00Z"));
        assert_eq!(slots.len(), 8);
        assert_eq!(
            session_start(date("2026-10-25"), time("01:30")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        assert_eq!(
            session_end(date("2026-10-25"), time("01:30")),
            Some(utc("2026-10-25T01:30:00Z"))
        );
    }

    #[test]
    fn times_have_one_form() {
        assert!(parse_time("9:00").is_none());
        assert!(parse_time("24:00").is_none());
        assert_eq!(format_time(time("09:05")), "09:05");
    }
}
