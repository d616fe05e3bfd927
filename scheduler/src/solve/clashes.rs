//! Patient-per-day clashes, shared by both engines' stage 2: finding them in an
//! allocation, and a quick repair that removes them by moving the later
//! referrals to free slots.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::network::Subproblem;
use crate::evaluate::Assignment;
use crate::model::Kind;
use crate::validate::Problem;

/// Patient-days holding more than one referral: (patient, day) -> referrals.
pub(crate) fn conflicts(
    problem: &Problem,
    assignment: &Assignment,
) -> BTreeMap<(u32, i32), Vec<usize>> {
    let mut seen: HashMap<(u32, i32), Vec<usize>> = HashMap::new();
    for (r, slot) in assignment.iter().enumerate() {
        if let Some(s) = *slot {
            seen.entry((problem.referrals[r].patient, problem.slots[s].day))
                .or_default()
                .push(r);
        }
    }
    seen.into_iter().filter(|(_, rs)| rs.len() > 1).collect()
}

/// A feasible allocation for a component, for its upper bound: each clash keeps
/// its lowest referral index; the others take the cheapest free slot that breaks
/// no rule, or stay unallocated.
pub(crate) fn repair(
    problem: &Problem,
    subs: &[Subproblem],
    members: &[usize],
    assignment: &Assignment,
) -> Assignment {
    let mut repaired = assignment.clone();
    let mut used = vec![0_i64; problem.slots.len()];
    let mut patient_days: HashSet<(u32, i32)> = HashSet::new();
    let mut bumped = Vec::new();
    for (r, slot) in repaired.iter_mut().enumerate() {
        if let Some(s) = *slot {
            if patient_days.insert((problem.referrals[r].patient, problem.slots[s].day)) {
                used[s] += 1;
            } else {
                *slot = None;
                bumped.push(r);
            }
        }
    }
    let index: HashMap<(u32, Kind), usize> = members
        .iter()
        .map(|&k| ((subs[k].specialty, subs[k].kind), k))
        .collect();
    for r in bumped {
        let referral = &problem.referrals[r];
        let Some(&k) = index.get(&(referral.specialty, referral.kind)) else {
            continue;
        };
        let mut best: Option<(i64, usize)> = None;
        for bin in &subs[k].bins {
            for &s in &bin.slots {
                let day = problem.slots[s].day;
                if used[s] < problem.slots[s].capacity
                    && problem.feasible(r, s)
                    && !patient_days.contains(&(referral.patient, day))
                {
                    let cost = problem.cost(r, day, problem.slots[s].clinician);
                    if best.is_none_or(|(c, _)| cost < c) {
                        best = Some((cost, s));
                    }
                }
            }
        }
        if let Some((cost, s)) = best.filter(|&(cost, _)| cost < problem.unallocated_cost(r)) {
            let _ = cost;
            used[s] += 1;
            patient_days.insert((referral.patient, problem.slots[s].day));
            repaired[r] = Some(s);
        }
    }
    repaired
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Priority;
    use crate::solve::network;
    use crate::solve::testkit::{day, problem, referral, slot};
    use crate::validate::day_number;

    /// Patient p1 holds a routine and an urgent cardiology referral, both
    /// given a place on day 1; p3 holds the day-2 place; days 3 and 5 are
    /// free (day 5's place is met first, its id sorting before day 3's).
    fn clashing() -> (Problem, Assignment) {
        let problem = problem(
            vec![
                slot("a", "cardiology", "c1", 1, 1),
                slot("a2", "cardiology", "c2", 1, 1),
                slot("b", "cardiology", "c1", 2, 1),
                slot("c", "cardiology", "c1", 3, 1),
                slot("a3", "cardiology", "c3", 5, 1),
            ],
            vec![
                referral("r1", "p1", "cardiology", Priority::Routine, 50),
                referral("r2", "p1", "cardiology", Priority::Urgent, 10),
                referral("r3", "p3", "cardiology", Priority::Routine, 50),
            ],
        );
        (problem, vec![Some(0), Some(1), Some(2)])
    }

    #[test]
    fn conflicts_lists_each_patient_day_holding_several_referrals() {
        let (problem, assignment) = clashing();
        let found = conflicts(&problem, &assignment);
        let p1 = problem.referrals[0].patient;
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [((p1, day_number(day(1))), vec![0, 1])]
        );
        assert!(conflicts(&problem, &vec![Some(0), Some(2), Some(3)]).is_empty());
    }

    #[test]
    fn repair_keeps_the_lowest_index_and_moves_the_rest_to_the_cheapest_free_place() {
        let (problem, assignment) = clashing();
        let subs = network::build(&problem, 1);
        let repaired = repair(&problem, &subs, &[0], &assignment);
        // r2 leaves day 1; b (day 2) is full, so it takes the cheaper of the
        // free places, c (day 3) rather than a3 (day 5).
        assert_eq!(repaired, [Some(0), Some(3), Some(2)]);
        assert!(conflicts(&problem, &repaired).is_empty());
        assert!(crate::evaluate::check(&problem, &repaired).is_ok());
    }
}
