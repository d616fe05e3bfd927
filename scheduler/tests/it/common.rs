//! Shared helpers: an independent objective, written against the wire types
//! (dates as `NaiveDate`, weights from the documented table), so a bug in the
//! crate's own cost code cannot hide itself; the tests' days, and the
//! solves they ask for.

use std::collections::{HashMap, HashSet};

use chrono::{Days, NaiveDate};
use medsec_scheduler::model::{Instance, Priority, Solution};
use medsec_scheduler::{Engine, Problem, SolveOptions};

/// Day `offset` of the tests' horizons, which start on day 0.
pub(crate) fn day(offset: u64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + Days::new(offset)
}

/// `problem` solved by `engine`, every other option its default.
pub(crate) fn solved_by(problem: &Problem, engine: Engine) -> Solution {
    let options = SolveOptions {
        engine,
        ..SolveOptions::default()
    };
    medsec_scheduler::solve(problem, &options).unwrap()
}

/// `problem` solved under a time limit already over when stage 1 starts (so
/// no relaxation is solved and stage 2 is skipped): not timing-dependent,
/// because building the network takes longer than a nanosecond.
pub(crate) fn solved_out_of_time(problem: &Problem) -> Solution {
    let options = SolveOptions {
        time_limit: Some(1e-9),
        ..SolveOptions::default()
    };
    medsec_scheduler::solve(problem, &options).unwrap()
}

fn table(p: Priority) -> (i64, i64, i64) {
    // (target_days, P, B) from allocation-model.md.
    match p {
        Priority::TwoWeekWait => (14, 20, 200_000),
        Priority::Urgent => (28, 5, 50_000),
        Priority::Routine => (126, 1, 20_000),
    }
}

/// Recomputes the objective of `solution` for an instance with default weights,
/// checking every feasibility rule on the way. Panics on a broken rule.
pub(crate) fn independent_objective(instance: &Instance, solution: &Solution) -> i64 {
    let slots: HashMap<&str, &medsec_scheduler::model::Slot> =
        instance.slots.iter().map(|s| (s.id.as_str(), s)).collect();
    let given: HashMap<&str, &str> = solution
        .allocations
        .iter()
        .map(|a| (a.referral.as_str(), a.slot.as_str()))
        .collect();
    let unallocated: HashSet<&str> = solution.unallocated.iter().map(String::as_str).collect();
    assert_eq!(
        given.len() + unallocated.len(),
        instance.referrals.len(),
        "every referral appears exactly once"
    );
    let mut used: HashMap<&str, i64> = HashMap::new();
    let mut patient_days = HashSet::new();
    let mut total = 0;
    for r in &instance.referrals {
        let (target, p, b) = table(r.priority);
        let due = r
            .due
            .unwrap_or(r.clock_start + chrono::Days::new(target as u64));
        match given.get(r.id.as_str()) {
            Some(slot_id) => {
                assert!(!unallocated.contains(r.id.as_str()));
                let s = slots[slot_id];
                assert_eq!(s.specialty, r.specialty);
                assert_eq!(s.kind, r.kind);
                assert!(s.date >= instance.horizon.start && s.date <= instance.horizon.end);
                assert!(s.date >= r.clock_start);
                assert!(r.earliest.is_none_or(|e| s.date >= e));
                assert!(
                    r.unavailable
                        .iter()
                        .all(|u| s.date < u.from || s.date > u.to)
                );
                assert!(
                    r.required_clinician
                        .as_ref()
                        .is_none_or(|c| *c == s.clinician)
                );
                *used.entry(slot_id).or_default() += 1;
                assert!(used[slot_id] <= s.capacity, "slot {slot_id} over capacity");
                assert!(
                    patient_days.insert((r.patient.clone(), s.date)),
                    "patient-day rule"
                );
                let w = (s.date - r.clock_start).num_days();
                total += p * w * w;
                if s.date > due {
                    total += b;
                }
                if r.preferred_clinician
                    .as_ref()
                    .is_some_and(|c| *c != s.clinician)
                {
                    total += 20;
                }
            }
            None => {
                assert!(unallocated.contains(r.id.as_str()));
                let after = instance.horizon.end + chrono::Days::new(1);
                let w = (after - r.clock_start).num_days().max(0);
                total += p * w * w + 1000;
                if after > due {
                    total += b;
                }
            }
        }
    }
    total
}
