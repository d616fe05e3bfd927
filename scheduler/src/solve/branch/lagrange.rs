//! Clash-dense components: the LP relaxation with every patient-day row,
//! solved by HiGHS, gives an allocation and multipliers for those rows; the
//! Lagrangian bound for the multipliers, computed by the certified min-cost
//! flow in exact integers, proves it.
//!
//! When most patients hold two referrals, the relaxation without the
//! patient-day rule puts hundreds of pairs on one day, and branching on them
//! one at a time cannot close the gap: clashes in one sub-problem share it,
//! so their resolution costs do not add up in a node's key. The LP with the
//! rows is tight on such lists (on every clash-dense list we generated its
//! vertex was integral and equal to the optimum), so one LP solve is usually
//! the whole stage 2.
//!
//! Nothing is taken from floating point on trust. The LP's allocation is an
//! allocation like any other: checked against every rule and costed exactly
//! by the caller. Its row duals, rounded to integers (or to sixteenths,
//! costs scaled by 16), are Lagrange multipliers `λ >= 0`: for *any* such
//! `λ`, `L(λ) = min over flows of Σ (cost + λ·rows) - Σ λ` is a lower bound on
//! every allocation that keeps the patient-day rule (each row then contributes
//! `λ·(used - 1) <= 0`). Adding `λ` to arc costs keeps each sub-problem a
//! min-cost flow, whose optimum is bounded from below by the integral dual
//! certificate over every arc (`certify_arcs`), so the bound is exact
//! integer arithmetic whatever HiGHS's tolerances were. Equal to the
//! allocation's cost means optimal; otherwise the caller keeps searching.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Instant;

use super::barred::SubSolution;

use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::solve::certificate::{certify_arcs, flow_value, reduced_cost};
use crate::solve::clashes::conflicts;
use crate::solve::lp::{self, ArcSets, ModelRequest, PatientDay};
use crate::solve::network::{Arc, Hub, Subproblem};
use crate::solve::{flow, parallel_map, split};
use crate::validate::Problem;

/// What the LP and the Lagrangian bound gave for one component.
#[derive(Debug)]
pub(super) struct Dense {
    /// The LP's allocation (the whole assignment, the component's referrals
    /// replaced) and its value `sum(cost - unallocated)` over the component,
    /// when the LP's optimum was integral.
    pub candidate: Option<(Assignment, i64)>,
    /// Exact lower bound on `sum(cost - unallocated)` over the component for
    /// every allocation keeping the patient-day rule.
    pub bound: Option<i64>,
    /// Sub-problems outside the component that the candidate clashes with.
    pub expand: BTreeSet<usize>,
    /// Flow solves for the bound.
    pub solves: usize,
    /// LP solves (column-generation rounds).
    pub lp_solves: usize,
}

/// Arcs per class the first LP is offered: the cheapest by the stage-1
/// certificate's reduced cost. Column generation adds the rest as needed.
const FIRST_ARCS: usize = 10;

/// Column-generation rounds before giving up on a proof.
const ROUNDS: usize = 12;

/// Solves the component `scope` by its LP with patient-day rows and bounds it
/// by the Lagrangian of those rows. Referrals outside `scope` keep their slots
/// in `current`; rows join only referrals inside (so the bound is valid
/// whatever happens outside), and a candidate that clashes with one outside
/// asks for the component to grow instead.
///
/// The LP starts from each class's [`FIRST_ARCS`] cheapest arcs by reduced
/// cost and adds the arcs its own duals price as improving, until the
/// Lagrangian bound (always over every arc) meets the candidate's value or no
/// arc improves.
#[allow(clippy::too_many_arguments)]
pub(super) fn solve_dense(
    problem: &Problem,
    subs: &[Subproblem],
    base: &[Rc<SubSolution>],
    scope: &BTreeSet<usize>,
    current: &Assignment,
    deadline: Option<(Instant, f64)>,
    threads: usize,
) -> Result<Dense, SolveError> {
    let members: Vec<usize> = scope.iter().copied().collect();
    let all: ArcSets = members
        .iter()
        .map(|&k| {
            subs[k]
                .classes
                .iter()
                .map(|class| subs[k].arcs(problem, class))
                .collect()
        })
        .collect();

    // One row per (patient, day) where two or more of the patient's
    // referrals inside the component could be seen.
    let mut of_patient: BTreeMap<u32, Vec<(usize, usize)>> = BTreeMap::new();
    for (i, &k) in members.iter().enumerate() {
        for (c, class) in subs[k].classes.iter().enumerate() {
            if class.individual {
                of_patient
                    .entry(problem.referrals[class.representative()].patient)
                    .or_default()
                    .push((i, c));
            }
        }
    }
    let mut rows: Vec<PatientDay> = Vec::new();
    let mut row_of: HashMap<(usize, usize, i32), usize> = HashMap::new();
    for classes in of_patient.values().filter(|c| c.len() > 1) {
        let mut days: BTreeMap<i32, Vec<(usize, usize)>> = BTreeMap::new();
        for &(i, c) in classes {
            let sub = &subs[members[i]];
            let mut seen = BTreeSet::new();
            for arc in &all[i][c] {
                let day = sub.dates[arc.date as usize];
                if seen.insert(day) {
                    days.entry(day).or_default().push((i, c));
                }
            }
        }
        for (day, on_day) in days.into_iter().filter(|(_, v)| v.len() > 1) {
            for &(i, c) in &on_day {
                row_of.insert((i, c, day), rows.len());
            }
            rows.push(PatientDay {
                day,
                classes: on_day,
            });
        }
    }

    // The first columns: the cheapest arcs of each class by stage 1's
    // reduced costs (all of them where stage 1 kept no duals).
    let mut offered: ArcSets = members
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            all[i]
                .iter()
                .enumerate()
                .map(|(c, arcs)| match &base[k].duals {
                    Some((duals, class_dual)) if arcs.len() > FIRST_ARCS => {
                        let mut ranked: Vec<(i64, usize)> = arcs
                            .iter()
                            .enumerate()
                            .map(|(j, a)| (reduced_cost(a, class_dual[c], duals), j))
                            .collect();
                        ranked.sort_unstable();
                        let mut keep: Vec<usize> =
                            ranked.iter().take(FIRST_ARCS).map(|&(_, j)| j).collect();
                        keep.sort_unstable();
                        keep.into_iter().map(|j| arcs[j]).collect()
                    }
                    _ => arcs.clone(),
                })
                .collect()
        })
        .collect();

    let mut dense = Dense {
        candidate: None,
        bound: None,
        expand: BTreeSet::new(),
        solves: 0,
        lp_solves: 0,
    };
    for _ in 0..ROUNDS {
        let time_limit = deadline.map(|(start, limit)| limit - start.elapsed().as_secs_f64());
        if time_limit.is_some_and(|t| t <= 0.0) {
            break;
        }
        dense.lp_solves += 1;
        let outcome = lp::solve_model(&ModelRequest {
            problem,
            subs: members.iter().map(|&k| &subs[k]).collect(),
            arcs: &offered,
            patient_days: &rows,
            integer: false,
            all_integer: false,
            time_limit,
        })?;
        if outcome.proven {
            // An optimal vertex with every value integral: an allocation.
            let mut candidate = current.clone();
            for &k in &members {
                for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
                    candidate[r] = None;
                }
            }
            for (i, &k) in members.iter().enumerate() {
                split::place(problem, &subs[k], &outcome.flows[i], &mut candidate)?;
            }
            let value: i64 = outcome.flows.iter().map(|f| flow_value(f)).sum();
            // Rows forbid clashes among the component's own referrals; a
            // clash left is with a referral outside (grow the component) or
            // a broken LP answer (no candidate).
            let mut clean = true;
            for referrals in conflicts(problem, &candidate).values() {
                let mut outside = false;
                for &r in referrals {
                    let referral = &problem.referrals[r];
                    let home = subs
                        .iter()
                        .position(|s| s.specialty == referral.specialty && s.kind == referral.kind);
                    if let Some(k) = home.filter(|k| !scope.contains(k)) {
                        dense.expand.insert(k);
                        outside = true;
                    }
                }
                clean &= outside;
            }
            if !dense.expand.is_empty() {
                return Ok(dense);
            }
            if clean && dense.candidate.as_ref().is_none_or(|c| value < c.1) {
                dense.candidate = Some((candidate, value));
            }
        }

        // Duals integral to HiGHS's tolerance need no scaling; otherwise
        // costs are scaled by 16 so the multipliers keep four more bits.
        let integral = outcome
            .patient_day_duals
            .iter()
            .all(|d| (d - d.round()).abs() < 1e-6);
        let target = dense.candidate.as_ref().map(|c| c.1);
        let met = |bound: Option<i64>| bound.is_some_and(|b| target.is_some_and(|t| b >= t));
        for scale in [1_i64, 16] {
            if scale > 1 && (integral || met(dense.bound)) {
                break;
            }
            let lambda: Vec<i64> = outcome
                .patient_day_duals
                .iter()
                .map(|d| ((-d * scale as f64).round() as i64).max(0))
                .collect();
            if let Some(bound) =
                lagrangian_bound(subs, &members, &all, &row_of, &lambda, scale, threads)
            {
                dense.solves += members.len();
                dense.bound = Some(dense.bound.map_or(bound, |b| b.max(bound)));
            }
        }
        if met(dense.bound) {
            break;
        }

        // Price every arc not offered against the LP's duals, the rows'
        // included; add the improving ones.
        let mut added = 0;
        for (i, &k) in members.iter().enumerate() {
            let Some(duals) = outcome.duals.get(i) else {
                continue;
            };
            for (c, arcs) in all[i].iter().enumerate() {
                let have: BTreeSet<(u32, Hub)> =
                    offered[i][c].iter().map(|a| (a.date, a.hub)).collect();
                let class_dual = duals.class.get(c).copied().unwrap_or(0);
                for arc in arcs {
                    if have.contains(&(arc.date, arc.hub)) {
                        continue;
                    }
                    let day = subs[k].dates[arc.date as usize];
                    let row_dual = row_of
                        .get(&(i, c, day))
                        .map_or(0.0, |&row| outcome.patient_day_duals[row]);
                    let rc = reduced_cost(arc, class_dual, duals) as f64 - row_dual.round();
                    if rc < 0.0 {
                        offered[i][c].push(*arc);
                        added += 1;
                    }
                }
                offered[i][c].sort_by_key(|a| (a.date, a.hub));
            }
        }
        if added == 0 {
            break;
        }
    }
    Ok(dense)
}

/// `ceil(L(λ) / scale)` for multipliers `lambda` on the rows of `row_of`,
/// costs scaled by `scale`: each sub-problem's flow over costs
/// `scale·cost + λ(row of the arc)`, bounded by its certificate over every
/// arc, less `Σ λ`. `None` if the scaled costs could overflow cost scaling.
#[allow(clippy::too_many_arguments)]
fn lagrangian_bound(
    subs: &[Subproblem],
    members: &[usize],
    arcs: &ArcSets,
    row_of: &HashMap<(usize, usize, i32), usize>,
    lambda: &[i64],
    scale: i64,
    threads: usize,
) -> Option<i64> {
    let modified: Vec<Vec<Vec<Arc>>> = members
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            arcs[i]
                .iter()
                .enumerate()
                .map(|(c, class_arcs)| {
                    class_arcs
                        .iter()
                        .map(|arc| {
                            let day = subs[k].dates[arc.date as usize];
                            let price = row_of.get(&(i, c, day)).map_or(0, |&row| lambda[row]);
                            Arc {
                                cost: arc.cost.saturating_mul(scale).saturating_add(price),
                                ..*arc
                            }
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let largest = modified
        .iter()
        .flatten()
        .flatten()
        .map(|a| i128::from(a.cost).abs())
        .max()
        .unwrap_or(0);
    if members
        .iter()
        .any(|&k| !flow::fits_cost(&subs[k], largest + 1))
    {
        return None;
    }
    let bounds = parallel_map(members.len(), threads, |i| {
        let sub = &subs[members[i]];
        let outcome = flow::min_cost_flow(sub, &modified[i], None);
        certify_arcs(sub, &modified[i], &outcome.duals).0
    });
    let total: i64 = bounds.iter().sum::<i64>() - lambda.iter().sum::<i64>();
    Some(total.div_euclid(scale) + i64::from(total.rem_euclid(scale) != 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate;
    use crate::model::Priority;
    use crate::solve::testkit::{Rng, brute_force, problem, referral, slot};
    use crate::solve::{network, relaxation};

    /// A tiny clash-dense list: two or three patients each referred twice the
    /// same day (same priority and clock start), sometimes one more patient
    /// with one referral, and three to five places over three days, one of
    /// them preferring a clinician.
    fn twins(rng: &mut Rng) -> Problem {
        let priorities = [Priority::TwoWeekWait, Priority::Urgent, Priority::Routine];
        let mut referrals = Vec::new();
        for p in 0..rng.between(2, 3) {
            let priority = priorities[rng.below(3) as usize];
            let waited = rng.between(0, 150) as u64;
            for twin in 0..2 {
                let mut r = referral(
                    &format!("r{p}{twin}"),
                    &format!("p{p}"),
                    "cardiology",
                    priority,
                    waited,
                );
                if rng.below(4) == 0 {
                    r.preferred_clinician = Some(format!("c{}", rng.below(2)));
                }
                referrals.push(r);
            }
        }
        if rng.below(2) == 0 {
            referrals.push(referral("r9", "p9", "cardiology", Priority::Routine, 90));
        }
        let slots = (0..rng.between(3, 5))
            .map(|s| {
                slot(
                    &format!("s{s}"),
                    "cardiology",
                    &format!("c{}", rng.below(2)),
                    rng.below(3),
                    rng.between(1, 2),
                )
            })
            .collect();
        problem(slots, referrals)
    }

    #[test]
    fn on_tiny_twin_lists_the_bound_is_exact_and_the_allocation_optimal() {
        let mut rng = Rng::new(5);
        let mut proven = 0;
        for case in 0..60 {
            let problem = twins(&mut rng);
            let subs = network::build(&problem, 1);
            let mut current = vec![None; problem.referrals.len()];
            let mut base = Vec::new();
            for sub in &subs {
                let result = relaxation::solve_flow(&problem, sub, None);
                split::place(&problem, sub, &result.flows, &mut current).unwrap();
                base.push(Rc::new(
                    SubSolution::new(result.flows, result.prices, result.proven)
                        .with_duals(result.duals, result.class_dual),
                ));
            }
            let scope: BTreeSet<usize> = (0..subs.len()).collect();
            let dense = solve_dense(&problem, &subs, &base, &scope, &current, None, 2).unwrap();
            let unallocated: i64 = (0..problem.referrals.len())
                .map(|r| problem.unallocated_cost(r))
                .sum();
            let optimum = brute_force(&problem);
            // The bound never exceeds the optimum (it is a proof, not a guess).
            let bound = dense.bound.unwrap() + unallocated;
            assert!(bound <= optimum, "case {case}: {bound} > {optimum}");
            if let Some((assignment, value)) = &dense.candidate {
                // The candidate keeps every rule and is costed exactly.
                let objective = evaluate::check(&problem, assignment).unwrap();
                assert_eq!(objective, value + unallocated, "case {case}");
                if bound >= objective {
                    assert_eq!(objective, optimum, "case {case}");
                    proven += 1;
                }
            }
        }
        // The LP with patient-day rows is tight on nearly all of them.
        assert!(proven >= 50, "only {proven} of 60 proven");
    }
}
