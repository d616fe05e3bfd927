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
///
/// Runs once per branch-and-bound node for every re-solved sub-problem, so it
/// works in a few flat vectors rather than one per bin or class.
pub(crate) fn place(
    problem: &Problem,
    sub: &Subproblem,
    flows: &[Vec<(Arc, i64)>],
    assignment: &mut Assignment,
) -> Result<(), SolveError> {
    place_with(problem, sub, flows, |r, s| assignment[r] = Some(s))
}

/// The (referral, slot) pairs [`place`] would write, for callers that apply
/// the same split many times.
pub(crate) fn placements(
    problem: &Problem,
    sub: &Subproblem,
    flows: &[Vec<(Arc, i64)>],
) -> Result<Vec<(usize, usize)>, SolveError> {
    let mut pairs = Vec::new();
    place_with(problem, sub, flows, |r, s| pairs.push((r, s)))?;
    Ok(pairs)
}

fn place_with(
    problem: &Problem,
    sub: &Subproblem,
    flows: &[Vec<(Arc, i64)>],
    mut assign: impl FnMut(usize, usize),
) -> Result<(), SolveError> {
    // (hub, id rank, referral): flows are listed per class in (date, hub)
    // order already (arcs are generated that way), so members in id order
    // meet them earliest date first.
    let mut placed: Vec<(Hub, u32, usize)> = Vec::new();
    for (class, class_flows) in sub.classes.iter().zip(flows) {
        let mut members = class.members.iter();
        let mut sorted_copy;
        let mut class_flows: &[(Arc, i64)] = class_flows;
        if !class_flows.is_sorted_by_key(|(arc, _)| (arc.date, arc.hub)) {
            sorted_copy = class_flows.to_vec();
            sorted_copy.sort_by_key(|(arc, _)| (arc.date, arc.hub));
            class_flows = &sorted_copy;
        }
        for (arc, units) in class_flows {
            for _ in 0..*units {
                let Some(&r) = members.next() else {
                    return Err(SolveError::Solution(format!(
                        "class of referral {} got more flow than members",
                        problem.referrals[class.representative()].id
                    )));
                };
                placed.push((arc.hub, problem.id_rank[r], r));
            }
        }
    }
    // Bins first (Hub::Date sorts before Hub::Bin, so reverse the kinds):
    // direct referrals must have their bin's places before date-hub referrals
    // fill what remains of the day.
    placed.sort_unstable_by_key(|&(hub, rank, _)| match hub {
        Hub::Bin(b) => (0, b, rank),
        Hub::Date(d) => (1, d, rank),
    });

    let mut offset = Vec::with_capacity(sub.bins.len() + 1);
    offset.push(0);
    for bin in &sub.bins {
        offset.push(offset[offset.len() - 1] + bin.slots.len());
    }
    let mut free: Vec<i64> = sub
        .bins
        .iter()
        .flat_map(|bin| bin.slots.iter().map(|&s| problem.slots[s].capacity))
        .collect();
    let overfull =
        |what: String| SolveError::Solution(format!("{what} got more referrals than places"));

    let mut i = 0;
    while i < placed.len() {
        let hub = placed[i].0;
        let run = placed[i..].iter().take_while(|p| p.0 == hub).count();
        let group = &placed[i..i + run];
        i += run;
        // The places this hub may use, in order: its bin's slots, or every
        // bin of the date in clinician order.
        let single: [u32; 1];
        let bins: &[u32] = match hub {
            Hub::Bin(b) => {
                single = [b];
                &single
            }
            Hub::Date(d) => &sub.date_bins[d as usize],
        };
        let mut places = bins.iter().flat_map(|&b| {
            (offset[b as usize]..offset[b as usize + 1]).map(move |k| (b as usize, k))
        });
        let mut current = places.next();
        for &(_, _, r) in group {
            while let Some((_, k)) = current {
                if free[k] > 0 {
                    break;
                }
                current = places.next();
            }
            let Some((b, k)) = current else {
                return Err(overfull(format!("{hub:?} of {}", sub.name(problem))));
            };
            free[k] -= 1;
            assign(r, sub.bins[b].slots[k - offset[b]]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Priority;
    use crate::solve::network;
    use crate::solve::testkit::{problem, referral, slot};

    /// Day 1 has a place with c1 (sA) and one with c2 (sB), day 2 one with c1
    /// (sC). x1 prefers c1; y1 and y2 are alike and form one class.
    fn clinic() -> (Problem, Subproblem) {
        let mut preferring = referral("x1", "p1", "cardiology", Priority::Routine, 50);
        preferring.preferred_clinician = Some("c1".to_owned());
        let problem = problem(
            vec![
                slot("sA", "cardiology", "c1", 1, 1),
                slot("sB", "cardiology", "c2", 1, 1),
                slot("sC", "cardiology", "c1", 2, 1),
            ],
            vec![
                preferring,
                referral("y1", "p2", "cardiology", Priority::Routine, 50),
                referral("y2", "p3", "cardiology", Priority::Routine, 50),
            ],
        );
        let sub = network::build(&problem, 1).remove(0);
        (problem, sub)
    }

    fn arc(problem: &Problem, sub: &Subproblem, class: usize, hub: Hub) -> Arc {
        let arcs = sub.arcs(problem, &sub.classes[class]);
        *arcs.iter().find(|a| a.hub == hub).unwrap()
    }

    fn slot_ids<'a>(problem: &'a Problem, assignment: &Assignment) -> Vec<Option<&'a str>> {
        assignment
            .iter()
            .map(|s| s.map(|s| problem.slots[s].id.as_str()))
            .collect()
    }

    #[test]
    fn direct_referrals_take_their_bin_first_and_members_take_dates_in_id_order() {
        let (problem, sub) = clinic();
        assert_eq!(sub.classes.len(), 2);
        // x1 straight to c1's bin on day 1; the class of y1 and y2 one unit on
        // each day, listed out of date order.
        let flows = vec![
            vec![(arc(&problem, &sub, 0, Hub::Bin(0)), 1)],
            vec![
                (arc(&problem, &sub, 1, Hub::Date(1)), 1),
                (arc(&problem, &sub, 1, Hub::Date(0)), 1),
            ],
        ];
        let mut assignment = vec![None; 3];
        place(&problem, &sub, &flows, &mut assignment).unwrap();
        // x1 keeps c1's place although the date hub lists c1 first; y1, the
        // lower id, gets the earlier day, in the place left (c2's).
        assert_eq!(
            slot_ids(&problem, &assignment),
            [Some("sA"), Some("sB"), Some("sC")]
        );
        let pairs = placements(&problem, &sub, &flows).unwrap();
        let mut from_pairs = vec![None; 3];
        for (r, s) in pairs {
            from_pairs[r] = Some(s);
        }
        assert_eq!(from_pairs, assignment);
    }

    #[test]
    fn more_flow_than_members_or_places_is_an_error() {
        let (problem, sub) = clinic();
        let too_much_flow = vec![vec![(arc(&problem, &sub, 0, Hub::Bin(0)), 2)], Vec::new()];
        let error = placements(&problem, &sub, &too_much_flow).unwrap_err();
        assert!(
            error.to_string().contains("more flow than members"),
            "{error}"
        );
        // Day 2 has one place; two referrals sent there cannot both fit.
        let too_few_places = vec![Vec::new(), vec![(arc(&problem, &sub, 1, Hub::Date(1)), 2)]];
        let error = placements(&problem, &sub, &too_few_places).unwrap_err();
        assert!(
            error.to_string().contains("more referrals than places"),
            "{error}"
        );
    }
}
