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
