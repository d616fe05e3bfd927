//! Referral-to-treatment clocks: due dates from the allocation model's
//! targets, weeks waited, and the long-wait bands the NHS reports.

use chrono::{Duration, NaiveDate};

use super::Priority;

/// Days from clock start to due date, as `target_days` in allocation-model.md.
pub fn target_days(priority: Priority) -> i64 {
    match priority {
        Priority::TwoWeekWait => 14,
        Priority::Urgent => 28,
        Priority::Routine => 126,
    }
}

pub fn due_date(clock_start: NaiveDate, priority: Priority) -> NaiveDate {
    clock_start + Duration::days(target_days(priority))
}

/// Whole weeks from clock start to `as_of`; 0 before the clock starts.
pub fn weeks_waited(clock_start: NaiveDate, as_of: NaiveDate) -> i64 {
    (as_of - clock_start).num_days().max(0) / 7
}

/// A referral breaches when seen (or still waiting) after its due date.
pub fn breached(clock_start: NaiveDate, priority: Priority, on: NaiveDate) -> bool {
    on > due_date(clock_start, priority)
}

/// Lower bounds of the reported weeks-waited bands: 0-18, 18-52, 52-65,
/// 65-78, 78-104, 104+.
pub const BAND_STARTS: [i64; 6] = [0, 18, 52, 65, 78, 104];

/// The band a wait of `weeks` falls in.
pub fn band(weeks: i64) -> usize {
    BAND_STARTS
        .iter()
        .rposition(|start| weeks >= *start)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn due_dates_follow_the_allocation_model() {
        let start = date("2026-01-01");
        assert_eq!(due_date(start, Priority::TwoWeekWait), date("2026-01-15"));
        assert_eq!(due_date(start, Priority::Urgent), date("2026-01-29"));
        assert_eq!(due_date(start, Priority::Routine), date("2026-05-07"));
        assert!(!breached(start, Priority::Routine, date("2026-05-07")));
        assert!(breached(start, Priority::Routine, date("2026-05-08")));
    }

    #[test]
    fn waits_fall_in_bands() {
        assert_eq!(weeks_waited(date("2026-01-01"), date("2026-01-14")), 1);
        assert_eq!(weeks_waited(date("2026-01-01"), date("2025-12-01")), 0);
        assert_eq!(band(0), 0);
        assert_eq!(band(17), 0);
        assert_eq!(band(18), 1);
        assert_eq!(band(64), 2);
        assert_eq!(band(78), 4);
        assert_eq!(band(500), 5);
    }
}
