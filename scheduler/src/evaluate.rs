//! Checking and scoring an allocation, independently of how it was found.
//!
//! The solver's proof of optimality compares this recomputed objective with its
//! lower bound, so this module deliberately shares nothing with the solver but
//! [`Problem::cost`] and [`Problem::unallocated_cost`].

use std::collections::HashSet;

use crate::model::{Allocation, Solution, Summary};
use crate::validate::Problem;

/// An allocation in index form: `assignment[r]` is the slot index of referral `r`.
pub type Assignment = Vec<Option<usize>>;

/// Checks every rule of the model and returns the objective, or the first broken rule.
pub fn check(problem: &Problem, assignment: &[Option<usize>]) -> Result<i64, String> {
    if assignment.len() != problem.referrals.len() {
        return Err(format!(
            "{} referrals but {} assignments",
            problem.referrals.len(),
            assignment.len()
        ));
    }
    let mut used = vec![0_i64; problem.slots.len()];
    let mut patient_days = HashSet::new();
    let mut objective = 0_i64;
    for (r, slot) in assignment.iter().enumerate() {
        let referral = &problem.referrals[r];
        let Some(s) = *slot else {
            objective += problem.unallocated_cost(r);
            continue;
        };
        if s >= problem.slots.len() {
            return Err(format!("referral {} has no slot {s}", referral.id));
        }
        let slot = &problem.slots[s];
        if !problem.feasible(r, s) {
            return Err(format!(
                "referral {} may not take slot {}",
                referral.id, slot.id
            ));
        }
        used[s] += 1;
        if used[s] > slot.capacity {
            return Err(format!("slot {} is over capacity", slot.id));
        }
        if !patient_days.insert((referral.patient, slot.day)) {
            return Err(format!(
                "patient {} has two slots on one day (referral {})",
                problem.patients[referral.patient as usize], referral.id
            ));
        }
        objective += problem.cost(r, slot.day, slot.clinician);
    }
    Ok(objective)
}

/// Objective, breaches and waits of a (valid) assignment.
pub fn summarise(problem: &Problem, assignment: &[Option<usize>]) -> Summary {
    let mut summary = Summary {
        objective: 0,
        breaches: 0,
        allocated: 0,
        unallocated: 0,
        mean_wait_days: 0.0,
        max_wait_days: 0,
    };
    let mut total_wait = 0_i64;
    for (r, slot) in assignment.iter().enumerate() {
        let referral = &problem.referrals[r];
        match *slot {
            Some(s) => {
                let slot = &problem.slots[s];
                summary.objective += problem.cost(r, slot.day, slot.clinician);
                summary.allocated += 1;
                let wait = i64::from(slot.day - referral.clock_start);
                total_wait += wait;
                summary.max_wait_days = summary.max_wait_days.max(wait);
                if problem.breaches(r, Some(slot.day)) {
                    summary.breaches += 1;
                }
            }
            None => {
                summary.objective += problem.unallocated_cost(r);
                summary.unallocated += 1;
                if problem.breaches(r, None) {
                    summary.breaches += 1;
                }
            }
        }
    }
    if summary.allocated > 0 {
        // Rounded to hundredths so the figure is stable to print.
        let mean = total_wait as f64 / summary.allocated as f64;
        summary.mean_wait_days = (mean * 100.0).round() / 100.0;
    }
    summary
}

/// Converts a solution document back to index form, checking that it names only
/// known referrals and slots and mentions every referral exactly once.
pub fn assignment_of(problem: &Problem, solution: &Solution) -> Result<Assignment, String> {
    let referral_index: std::collections::HashMap<&str, usize> = problem
        .referrals
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.as_str(), i))
        .collect();
    let slot_index: std::collections::HashMap<&str, usize> = problem
        .slots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut assignment: Vec<Option<Option<usize>>> = vec![None; problem.referrals.len()];
    let mut place = |referral: &str, slot: Option<usize>| -> Result<(), String> {
        let &r = referral_index
            .get(referral)
            .ok_or_else(|| format!("unknown referral {referral:?}"))?;
        if assignment[r].replace(slot).is_some() {
            return Err(format!("referral {referral:?} appears twice"));
        }
        Ok(())
    };
    for Allocation { referral, slot } in &solution.allocations {
        let &s = slot_index
            .get(slot.as_str())
            .ok_or_else(|| format!("unknown slot {slot:?}"))?;
        place(referral, Some(s))?;
    }
    for referral in &solution.unallocated {
        place(referral, None)?;
    }
    assignment
        .into_iter()
        .enumerate()
        .map(|(r, a)| a.ok_or_else(|| format!("referral {:?} is missing", problem.referrals[r].id)))
        .collect()
}

/// Builds the allocation lists of a solution document, in instance order.
pub fn allocation_lists(
    problem: &Problem,
    assignment: &[Option<usize>],
) -> (Vec<Allocation>, Vec<String>) {
    let mut allocations = Vec::new();
    let mut unallocated = Vec::new();
    for (r, slot) in assignment.iter().enumerate() {
        let id = problem.referrals[r].id.clone();
        match *slot {
            Some(s) => allocations.push(Allocation {
                referral: id,
                slot: problem.slots[s].id.clone(),
            }),
            None => unallocated.push(id),
        }
    }
    (allocations, unallocated)
}
