//! Session templates, slots and absences as validated values, and the rules
//! of a diary: session days and times, slot lengths and places, how far
//! ahead slots are generated, tentative holds and the state a slot shows.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use medsec_platform::Reader;
use uuid::Uuid;

use super::{AbsenceReason, Kind, Mode, london};

/// Longest slot, and what a client is told of a longer one.
pub const LONGEST_SLOT: (Duration, &str) = (Duration::hours(8), "a slot lasts at most 8 hours");

/// Longest GenerateSlots window, and what a client is told of a longer one.
pub const LONGEST_GENERATION: (Duration, &str) = (
    Duration::days(366),
    "must be at most 366 days after from_date",
);

/// A weekly session to create, in Europe/London wall-clock time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSessionTemplate {
    pub clinician_id: Uuid,
    pub specialty: String,
    pub location_id: Uuid,
    pub room_id: Option<Uuid>,
    /// ISO weekday: 1 = Monday ... 7 = Sunday.
    pub weekday: i32,
    pub start_time: NaiveTime,
    pub end_time: NaiveTime,
    pub slot_minutes: i32,
    pub kind: Kind,
    pub mode: Mode,
    pub capacity: i32,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

/// An ad-hoc slot to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSlot {
    pub clinician_id: Uuid,
    pub specialty: String,
    pub location_id: Uuid,
    pub room_id: Option<Uuid>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub kind: Kind,
    pub mode: Mode,
    pub capacity: i32,
}

impl NewSlot {
    /// The slot's civil date in Europe/London.
    pub fn date(&self) -> NaiveDate {
        london::local_date(self.start)
    }
}

/// An absence to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAbsence {
    pub clinician_id: Uuid,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: AbsenceReason,
    pub note: String,
}

/// A weekly session as slot generation reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    /// ISO weekday: 1 = Monday ... 7 = Sunday.
    pub weekday: i32,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub slot_minutes: i32,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
}

impl Session {
    /// The (date, start, end) of every slot the session makes on the dates
    /// `from..=to` it is valid on, in time order.
    pub fn slots(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<(NaiveDate, DateTime<Utc>, DateTime<Utc>)> {
        let first = from.max(self.valid_from);
        let last = self.valid_to.map_or(to, |valid_to| valid_to.min(to));
        let minutes = u32::try_from(self.slot_minutes).unwrap_or(1);
        first
            .iter_days()
            .take_while(|date| *date <= last)
            .filter(|date| i64::from(london::iso_weekday(*date)) == i64::from(self.weekday))
            .flat_map(|date| {
                london::session_slots(date, self.start, self.end, minutes)
                    .into_iter()
                    .map(move |(start, end)| (date, start, end))
            })
            .collect()
    }
}

/// A session's day of the week.
pub fn weekday(r: &mut Reader, field: &str, value: i32) -> Option<i32> {
    within(r, field, value, 1..=7, "must be 1 (Monday) to 7 (Sunday)")
}

/// A session's start or end, wall-clock `HH:MM`.
pub fn session_time(r: &mut Reader, field: &str, text: &str) -> Option<NaiveTime> {
    r.check(
        field,
        london::parse_time(text).ok_or("must be a time HH:MM"),
    )
}

/// The length of a template's slots.
pub fn slot_minutes(r: &mut Reader, field: &str, value: i32) -> Option<i32> {
    within(r, field, value, 5..=480, "must be 5 to 480")
}

/// How many patients a slot takes.
pub fn capacity(r: &mut Reader, field: &str, value: i32) -> Option<i32> {
    within(r, field, value, 1..=50, "must be 1 to 50")
}

fn within(
    r: &mut Reader,
    field: &str,
    value: i32,
    range: RangeInclusive<i32>,
    why: &str,
) -> Option<i32> {
    r.check(
        field,
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(why)
        },
    )
}

/// What a slot shows (FHIR Slot.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Free,
    Busy,
    /// The clinician is absent.
    BusyUnavailable,
    /// Held for one referral's offer.
    BusyTentative,
}

/// The state of a slot: an absence first, then full, then held.
pub fn slot_state(unavailable: bool, booked: i32, capacity: i32, held: bool) -> SlotState {
    if unavailable {
        SlotState::BusyUnavailable
    } else if booked >= capacity {
        SlotState::Busy
    } else if held {
        SlotState::BusyTentative
    } else {
        SlotState::Free
    }
}

/// The referral a slot is held for and until when (epoch seconds), while
/// the hold lasts at `now`.
pub fn active_hold(
    held_for: Option<Uuid>,
    held_until: Option<i64>,
    now: i64,
) -> Option<(Uuid, i64)> {
    match (held_for, held_until) {
        (Some(referral), Some(until)) if until > now => Some((referral, until)),
        _ => None,
    }
}

/// Spans of time (epoch seconds, end excluded) already taken, asked whether
/// a new span overlaps any of them in logarithmic time: kept by start, with
/// the longest span bounding how far before a new span an overlapping one
/// can start. Generating a year of one-minute slots stays linear-logarithmic
/// instead of quadratic.
#[derive(Debug, Default, Clone)]
pub struct Spans {
    /// End by start; of two spans starting together, the later end.
    by_start: BTreeMap<i64, i64>,
    longest: i64,
}

impl Spans {
    pub fn insert(&mut self, start: i64, end: i64) {
        let entry = self.by_start.entry(start).or_insert(end);
        *entry = (*entry).max(end);
        self.longest = self.longest.max(end.saturating_sub(start));
    }

    /// Whether exactly this span is taken.
    pub fn contains(&self, start: i64, end: i64) -> bool {
        self.by_start.get(&start) == Some(&end)
    }

    /// Whether any taken span overlaps `start..end`.
    pub fn overlaps(&self, start: i64, end: i64) -> bool {
        let earliest = start.saturating_sub(self.longest);
        if earliest >= end {
            return false;
        }
        self.by_start
            .range(earliest..end)
            .any(|(_, taken_end)| *taken_end > start)
    }
}

impl FromIterator<(i64, i64)> for Spans {
    fn from_iter<I: IntoIterator<Item = (i64, i64)>>(spans: I) -> Self {
        let mut taken = Self::default();
        for (start, end) in spans {
            taken.insert(start, end);
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::{date, violations};

    #[test]
    fn sessions_have_a_weekday_a_time_a_length_and_places() {
        let mut r = Reader::new();
        assert_eq!(weekday(&mut r, "a", 7), Some(7));
        assert_eq!(weekday(&mut r, "b", 8), None);
        assert_eq!(session_time(&mut r, "c", "9:00"), None);
        assert_eq!(slot_minutes(&mut r, "d", 4), None);
        assert_eq!(capacity(&mut r, "e", 50), Some(50));
        assert_eq!(capacity(&mut r, "f", 0), None);
        assert_eq!(
            violations(r),
            [
                "b: must be 1 (Monday) to 7 (Sunday)",
                "c: must be a time HH:MM",
                "d: must be 5 to 480",
                "f: must be 1 to 50",
            ]
        );
    }

    #[test]
    fn a_weekly_session_makes_slots_on_its_days_while_valid() {
        let time = |text| london::parse_time(text).unwrap();
        let mondays = Session {
            weekday: 1,
            start: time("09:00"),
            end: time("10:00"),
            slot_minutes: 20,
            valid_from: date("2026-03-09"),
            valid_to: Some(date("2026-03-16")),
        };
        let slots = mondays.slots(date("2026-03-01"), date("2026-03-31"));
        let dates: Vec<_> = slots.iter().map(|(date, _, _)| date.to_string()).collect();
        assert_eq!(
            dates,
            [
                "2026-03-09",
                "2026-03-09",
                "2026-03-09",
                "2026-03-16",
                "2026-03-16",
                "2026-03-16"
            ]
        );
        assert_eq!(slots[0].1.to_rfc3339(), "2026-03-09T09:00:00+00:00");
        assert!(
            mondays
                .slots(date("2026-03-10"), date("2026-03-15"))
                .is_empty()
        );
    }

    #[test]
    fn an_absence_outranks_a_full_slot_and_a_full_slot_a_hold() {
        assert_eq!(slot_state(true, 1, 1, true), SlotState::BusyUnavailable);
        assert_eq!(slot_state(false, 1, 1, true), SlotState::Busy);
        assert_eq!(slot_state(false, 0, 1, true), SlotState::BusyTentative);
        assert_eq!(slot_state(false, 1, 2, false), SlotState::Free);
    }

    #[test]
    fn a_hold_lasts_until_its_time() {
        let referral = Uuid::now_v7();
        assert_eq!(
            active_hold(Some(referral), Some(100), 99),
            Some((referral, 100))
        );
        assert_eq!(active_hold(Some(referral), Some(100), 100), None);
        assert_eq!(active_hold(None, Some(100), 0), None);
    }

    #[test]
    fn spans_answer_overlaps_like_a_scan_of_every_span() {
        let spans = [
            (0, 10),
            (10, 20),
            (5, 100),
            (200, 201),
            (300, 400),
            (300, 350),
        ];
        let taken: Spans = spans.into_iter().collect();
        let scan = |start: i64, end: i64| spans.iter().any(|(s, e)| *s < end && *e > start);
        for start in -5..410 {
            for length in [1, 5, 50, 150] {
                let end = start + length;
                assert_eq!(
                    taken.overlaps(start, end),
                    scan(start, end),
                    "{start}..{end}"
                );
            }
        }
        assert!(taken.contains(300, 400) && taken.contains(0, 10));
        assert!(!taken.contains(300, 350) && !taken.contains(0, 11));
        assert!(!Spans::default().overlaps(i64::MIN, i64::MAX));
    }
}
