//! Stage 2 for the LP engine: clashing sub-problems merged into components,
//! each solved as a HiGHS MIP (integer arcs only for multi-referral patients)
//! with patient-day rows added lazily and arcs fixed by reduced cost against an
//! upper bound from a repaired allocation, so the MIP stays small.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use super::certificate::reduced_cost;
use super::clashes::{conflicts, repair};
use super::lp::{self, ArcSets, ModelRequest, PatientDay};
use super::network::{Arc, Subproblem};
use super::relaxation::SubResult;
use super::{flow, split};
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::validate::Problem;

#[derive(Debug)]
pub(crate) struct ConflictOutcome {
    pub proven: bool,
    pub mip_solves: usize,
    /// (sub-problems of a component, proven lower bound on its total cost).
    pub component_bounds: Vec<(Vec<usize>, i64)>,
}

/// Resolves every clash in `clashes` (and any the re-solves create), leaving a
/// clash-free `assignment`; proven unless a MIP ran out of time or rounds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn resolve_conflicts(
    problem: &Problem,
    subs: &[Subproblem],
    results: &[SubResult],
    unallocated_total: &[i64],
    assignment: &mut Assignment,
    mut clashes: BTreeMap<(u32, i32), Vec<usize>>,
    deadline: Option<(Instant, f64)>,
) -> Result<ConflictOutcome, SolveError> {
    // Where each individual referral lives: (sub-problem, class).
    let mut home: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut individuals_of: HashMap<u32, Vec<usize>> = HashMap::new();
    for (k, sub) in subs.iter().enumerate() {
        for (c, class) in sub.classes.iter().enumerate() {
            if class.individual {
                let r = class.members[0];
                home.insert(r, (k, c));
                individuals_of
                    .entry(problem.referrals[r].patient)
                    .or_default()
                    .push(r);
            }
        }
    }
    let mut outcome = ConflictOutcome {
        proven: true,
        mip_solves: 0,
        component_bounds: Vec::new(),
    };
    // Components only ever grow: a clash joins the sub-problems it touches, and
    // a component is re-solved whole whenever a clash touches it.
    let mut component: Vec<usize> = (0..subs.len()).collect();
    let find = |component: &mut Vec<usize>, mut k: usize| {
        while component[k] != k {
            component[k] = component[component[k]];
            k = component[k];
        }
        k
    };
    let mut rows: BTreeSet<(u32, i32)> = BTreeSet::new();
    let mut solved: BTreeMap<usize, i64> = BTreeMap::new();

    let mut rounds = 0;
    while !clashes.is_empty() {
        rounds += 1;
        let mut dirty: BTreeSet<usize> = BTreeSet::new();
        for (&(patient, day), referrals) in &clashes {
            rows.insert((patient, day));
            let touched: Vec<usize> = referrals
                .iter()
                .filter_map(|r| home.get(r).map(|h| h.0))
                .collect();
            for pair in touched.windows(2) {
                let (a, b) = (find(&mut component, pair[0]), find(&mut component, pair[1]));
                // The smaller index becomes the root so components are named stably.
                component[a.max(b)] = a.min(b);
            }
            dirty.extend(touched);
        }
        let roots: BTreeSet<usize> = dirty.iter().map(|&k| find(&mut component, k)).collect();
        for root in roots {
            solved.remove(&root);
            let members: Vec<usize> = (0..subs.len())
                .filter(|&k| find(&mut component, k) == root)
                .collect();
            for k in &members {
                solved.remove(k);
            }
            let lower: i64 = members
                .iter()
                .map(|&k| results[k].bound + unallocated_total[k])
                .sum();
            let time_limit = deadline.map(|(start, limit)| limit - start.elapsed().as_secs_f64());
            let mip = if rounds > 20 || time_limit.is_some_and(|t| t <= 0.0) {
                None
            } else {
                outcome.mip_solves += 1;
                solve_component(
                    problem,
                    subs,
                    results,
                    &members,
                    &rows,
                    &home,
                    &individuals_of,
                    assignment,
                    lower,
                    time_limit,
                )?
            };
            match mip {
                Some(candidate) => {
                    *assignment = candidate;
                    solved.insert(root, component_cost(problem, subs, &members, assignment));
                }
                None => {
                    // Out of time (or rounds): settle for a repaired allocation.
                    *assignment = repair(problem, subs, &members, assignment);
                    outcome.proven = false;
                    solved.insert(root, lower);
                }
            }
        }
        clashes = conflicts(problem, assignment);
    }
    for (root, bound) in solved {
        let members: Vec<usize> = (0..subs.len())
            .filter(|&k| find(&mut component, k) == root)
            .collect();
        outcome.component_bounds.push((members, bound));
    }
    Ok(outcome)
}

/// Solves one component as a MIP with reduced-cost fixing; `None` when HiGHS
/// gave no proven answer in time. The returned allocation respects every
/// patient-day row in `rows` but may clash elsewhere (the caller checks).
#[allow(clippy::too_many_arguments)]
fn solve_component(
    problem: &Problem,
    subs: &[Subproblem],
    results: &[SubResult],
    members: &[usize],
    rows: &BTreeSet<(u32, i32)>,
    home: &HashMap<usize, (usize, usize)>,
    individuals_of: &HashMap<u32, Vec<usize>>,
    assignment: &Assignment,
    lower: i64,
    time_limit: Option<f64>,
) -> Result<Option<Assignment>, SolveError> {
    let repaired = repair_by_flow(
        problem,
        subs,
        members,
        rows,
        home,
        individuals_of,
        assignment,
    )?;
    let upper = component_cost(problem, subs, members, &repaired);
    let gap = upper - lower;
    // Reduced-cost fixing: by weak duality any allocation costs at least
    // `lower` plus the certified reduced cost of each arc it uses, so an arc
    // whose reduced cost exceeds the gap is unused by every allocation no
    // dearer than the repaired one, and in particular by an optimal one.
    let arc_sets: ArcSets = members
        .iter()
        .map(|&k| {
            let sub = &subs[k];
            sub.classes
                .iter()
                .enumerate()
                .map(|(c, class)| {
                    sub.arcs(problem, class)
                        .into_iter()
                        .filter(|a| {
                            reduced_cost(a, results[k].class_dual[c], &results[k].duals) <= gap
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let position: HashMap<usize, usize> =
        members.iter().enumerate().map(|(i, &k)| (k, i)).collect();
    let patient_days: Vec<PatientDay> = rows
        .iter()
        .map(|&(patient, day)| PatientDay {
            day,
            classes: individuals_of
                .get(&patient)
                .into_iter()
                .flatten()
                .filter_map(|r| home.get(r))
                .filter_map(|&(k, c)| position.get(&k).map(|&i| (i, c)))
                .collect(),
        })
        .filter(|row| row.classes.len() > 1)
        .collect();
    let request = |all_integer| ModelRequest {
        problem,
        subs: members.iter().map(|&k| &subs[k]).collect(),
        arcs: &arc_sets,
        patient_days: &patient_days,
        integer: true,
        all_integer,
        time_limit,
    };
    let mut outcome = lp::solve_model(&request(false));
    if matches!(&outcome, Ok(o) if !o.proven) {
        // Possibly only a fractional continuous part: insist on integers.
        outcome = lp::solve_model(&request(true));
    }
    let outcome = match outcome {
        Ok(o) if o.proven => o,
        _ => return Ok(None),
    };
    let mut candidate = assignment.clone();
    for &k in members {
        for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
            candidate[r] = None;
        }
    }
    for (i, &k) in members.iter().enumerate() {
        split::place(problem, &subs[k], &outcome.flows[i], &mut candidate)?;
    }
    Ok(Some(candidate))
}

/// A good feasible allocation for a component, for a tight upper bound: in each
/// clash all but the lowest-id referral are barred from the day and their
/// sub-problems re-solved by min-cost flow (so everyone else may shift to make
/// room); repeated while new clashes appear, then [`repair`] settles the rest.
fn repair_by_flow(
    problem: &Problem,
    subs: &[Subproblem],
    members: &[usize],
    rows: &BTreeSet<(u32, i32)>,
    home: &HashMap<usize, (usize, usize)>,
    individuals_of: &HashMap<u32, Vec<usize>>,
    assignment: &Assignment,
) -> Result<Assignment, SolveError> {
    let mut current = assignment.clone();
    let mut forbidden: BTreeMap<usize, HashSet<(usize, i32)>> =
        members.iter().map(|&k| (k, HashSet::new())).collect();
    let mut rows = rows.clone();
    for _ in 0..5 {
        let mut changed: BTreeSet<usize> = BTreeSet::new();
        for &(patient, day) in &rows {
            let mut holders: Vec<usize> = individuals_of
                .get(&patient)
                .into_iter()
                .flatten()
                .copied()
                .filter(|&r| current[r].is_some_and(|s| problem.slots[s].day == day))
                .collect();
            holders.sort_unstable();
            for &r in holders.iter().skip(1) {
                if let Some(&(k, c)) = home.get(&r)
                    && let Some(set) = forbidden.get_mut(&k)
                {
                    set.insert((c, day));
                    changed.insert(k);
                }
            }
        }
        if changed.is_empty() {
            break;
        }
        for &k in &changed {
            let sub = &subs[k];
            let offered: Vec<Vec<Arc>> = sub
                .classes
                .iter()
                .enumerate()
                .map(|(c, class)| {
                    let mut arcs = sub.arcs(problem, class);
                    arcs.retain(|a| !forbidden[&k].contains(&(c, sub.dates[a.date as usize])));
                    arcs
                })
                .collect();
            let outcome = flow::min_cost_flow(sub, &offered, None);
            for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
                current[r] = None;
            }
            split::place(problem, &subs[k], &outcome.flows, &mut current)?;
        }
        let in_component: BTreeSet<usize> = members.iter().copied().collect();
        for ((patient, day), referrals) in conflicts(problem, &current) {
            if referrals
                .iter()
                .any(|r| home.get(r).is_some_and(|h| in_component.contains(&h.0)))
            {
                rows.insert((patient, day));
            }
        }
    }
    Ok(repair(problem, subs, members, &current))
}

/// Total model cost of the referrals of some sub-problems.
fn component_cost(
    problem: &Problem,
    subs: &[Subproblem],
    members: &[usize],
    assignment: &Assignment,
) -> i64 {
    members
        .iter()
        .flat_map(|&k| subs[k].classes.iter().flat_map(|c| &c.members))
        .map(|&r| match assignment[r] {
            Some(s) => problem.cost(r, problem.slots[s].day, problem.slots[s].clinician),
            None => problem.unallocated_cost(r),
        })
        .sum()
}
