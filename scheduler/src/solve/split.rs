//! Splitting an aggregated flow back into referral-to-slot allocations.
//!
//! Within a class every member has the same costs, so any split keeps the
//! objective; we use a fixed one so the output is deterministic: members in id
//! order take the class's flow in (date, hub) order, so the lowest id gets the
//! earliest date. Slots are then filled in slot-id order: first the referrals
//! sent straight to a bin (required or preferred clinician), then those sent to
//! the date hub, bins of a date taken in clinician-name order.

use super::network::{Arc, Hub, Subproblem};
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::validate::Problem;

/// Writes the allocations of one sub-problem's flows into `assignment`.
pub(crate) fn place(
    problem: &Problem,
    sub: &Subproblem,
    flows: &[Vec<(Arc, i64)>],
    assignment: &mut Assignment,
) -> Result<(), SolveError> {
    let mut to_date: Vec<Vec<usize>> = vec![Vec::new(); sub.dates.len()];
    let mut to_bin: Vec<Vec<usize>> = vec![Vec::new(); sub.bins.len()];
    for (class, class_flows) in sub.classes.iter().zip(flows) {
        let mut sorted: Vec<&(Arc, i64)> = class_flows.iter().collect();
        sorted.sort_by_key(|(arc, _)| (arc.date, arc.hub));
        let mut members = class.members.iter();
        for (arc, units) in sorted {
            for _ in 0..*units {
                let Some(&r) = members.next() else {
                    return Err(SolveError::Solution(format!(
                        "class of referral {} got more flow than members",
                        problem.referrals[class.representative()].id
                    )));
                };
                match arc.hub {
                    Hub::Date(d) => to_date[d as usize].push(r),
                    Hub::Bin(b) => to_bin[b as usize].push(r),
                }
            }
        }
    }

    let mut free: Vec<Vec<i64>> = sub
        .bins
        .iter()
        .map(|bin| {
            bin.slots
                .iter()
                .map(|&s| problem.slots[s].capacity)
                .collect()
        })
        .collect();
    let overfull =
        |what: String| SolveError::Solution(format!("{what} got more referrals than places"));
    for (b, referrals) in to_bin.iter_mut().enumerate() {
        referrals.sort_by_key(|&r| problem.id_rank[r]);
        let mut cursor = 0;
        for &r in referrals.iter() {
            while cursor < free[b].len() && free[b][cursor] == 0 {
                cursor += 1;
            }
            let Some(places) = free[b].get_mut(cursor) else {
                return Err(overfull(format!("slot group {b} of {}", sub.name(problem))));
            };
            *places -= 1;
            assignment[r] = Some(sub.bins[b].slots[cursor]);
        }
    }
    for (d, referrals) in to_date.iter_mut().enumerate() {
        referrals.sort_by_key(|&r| problem.id_rank[r]);
        let mut places = sub.date_bins[d]
            .iter()
            .flat_map(|&b| (0..sub.bins[b as usize].slots.len()).map(move |i| (b as usize, i)));
        let mut current = places.next();
        for &r in referrals.iter() {
            while let Some((b, i)) = current {
                if free[b][i] > 0 {
                    break;
                }
                current = places.next();
            }
            let Some((b, i)) = current else {
                return Err(overfull(format!(
                    "date {} of {}",
                    sub.dates[d],
                    sub.name(problem)
                )));
            };
            free[b][i] -= 1;
            assignment[r] = Some(sub.bins[b].slots[i]);
        }
    }
    Ok(())
}
