//! Referral-to-treatment clocks: due dates from the allocation model's
//! targets, weeks waited, the long-wait bands the NHS reports, and the
//! waiting-list report built from them.

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

/// One weeks-waited band of a report: waits from `min_weeks` up to (not
/// including) `max_weeks`, or beyond when it is the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    pub min_weeks: i64,
    pub max_weeks: Option<i64>,
    pub count: usize,
}

/// The waiting list of a specialty on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub waiting: usize,
    pub bands: Vec<Band>,
    /// Referrals past their due date on `as_of`.
    pub breaches: usize,
    /// Referrals past their due date on the projected day, if none is booked.
    pub projected_breaches: usize,
}

/// The report of the `waiting` referrals (clock start and priority each;
/// a priority this version does not know counts in its band only) on
/// `as_of`, projected to `projected_at`.
pub fn report(
    waiting: impl IntoIterator<Item = (NaiveDate, Option<Priority>)>,
    as_of: NaiveDate,
    projected_at: Option<NaiveDate>,
) -> Report {
    let mut counts = [0usize; BAND_STARTS.len()];
    let (mut total, mut breaches, mut projected_breaches) = (0, 0, 0);
    for (clock_start, priority) in waiting {
        total += 1;
        counts[band(weeks_waited(clock_start, as_of))] += 1;
        let Some(priority) = priority else {
            continue;
        };
        if breached(clock_start, priority, as_of) {
            breaches += 1;
        }
        if projected_at.is_some_and(|at| breached(clock_start, priority, at)) {
            projected_breaches += 1;
        }
    }
    let bands = BAND_STARTS
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (start, count))| Band {
            min_weeks: *start,
            max_weeks: BAND_STARTS.get(i + 1).copied(),
            count,
        })
        .collect();
    Report {
        waiting: total,
        bands,
        breaches,
        projected_breaches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tests::date;

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

    #[test]
    fn a_report_counts_bands_breaches_and_projected_breaches() {
        let as_of = date("2026-06-01");
        let report = report(
            [
                (date("2026-05-25"), Some(Priority::TwoWeekWait)),
                (date("2026-01-01"), Some(Priority::Routine)),
                (date("2025-01-01"), Some(Priority::Urgent)),
                (date("2025-01-01"), None),
            ],
            as_of,
            Some(date("2026-06-10")),
        );
        assert_eq!(report.waiting, 4);
        let counts: Vec<_> = report.bands.iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 1, 0, 2, 0, 0]);
        assert_eq!(report.bands[0].max_weeks, Some(18));
        assert_eq!(report.bands[5].max_weeks, None);
        assert_eq!(report.breaches, 2);
        assert_eq!(report.projected_breaches, 3);
    }
}
