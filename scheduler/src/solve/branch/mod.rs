//! Stage 2 for the flow engine: best-first branch and bound on patient-day
//! clashes, with each node's relaxation solved exactly by the min-cost flow.
//!
//! A clash is a patient with referrals r1..rm on one day. Any valid allocation
//! gives that day to at most one of them, so it lies in one of m branches:
//! "every rj except ri is barred from the day". Barring is just deleting the
//! class's arcs into that day, so each branch's relaxation is again one flow
//! per sub-problem, and only the sub-problems whose bars changed are re-solved,
//! warm-started from their previous prices (one refine at the finest epsilon).
//! Nodes are expanded cheapest first; the first node whose allocation has no
//! clash is optimal, because every open node's relaxation (a lower bound on
//! its branch) is at least as dear. Each re-solve carries its own certificate.
//!
//! This file splits the clashes into components and combines their results;
//! `search.rs` searches one component, and `barred.rs` holds the re-solves
//! under bars and the clash penalties that key its nodes.

mod barred;
mod lagrange;
mod search;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Instant;

use super::clashes::{conflicts, repair};
use super::network::Subproblem;
use super::relaxation::SubResult;
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::validate::Problem;

use barred::Resolver;
pub(crate) use barred::SubSolution;

#[derive(Debug)]
pub(crate) struct BranchOutcome {
    pub assignment: Assignment,
    pub proven: bool,
    /// Whether every relaxation behind `bound` was certified (so `bound` is a
    /// proven lower bound even when `proven` is false because a limit hit).
    pub certified: bool,
    /// Lower bound on the total `sum(cost - unallocated)` over all sub-problems.
    pub bound: i64,
    pub nodes: usize,
    pub solves: usize,
    /// LP solves (HiGHS) for clash-dense components.
    pub lp_solves: usize,
    /// Sub-problems outside the searched component that a clash reached.
    pub expand: Option<BTreeSet<usize>>,
    /// The sub-problems finally searched.
    pub scope: BTreeSet<usize>,
}

/// Most nodes expanded per component before giving up the proof and diving
/// to an allocation; a guard against pathological instances (the 50k
/// benchmark instance needs ~1600).
pub(crate) const NODE_LIMIT: usize = 4000;

/// When a component's search gives up its proof and dives to an allocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// (start of the solve, seconds allowed).
    pub deadline: Option<(Instant, f64)>,
    /// Most nodes expanded per component ([`NODE_LIMIT`] in a solve).
    pub nodes: usize,
    /// Worker threads the search may use.
    pub threads: usize,
    /// Whether a component may go to the LP with patient-day rows
    /// ([`lagrange`]) when it is clash-dense or branching gave up.
    pub lp: bool,
}

/// Resolves every clash: sub-problems joined by clashes form components, and
/// components are searched one at a time (their choices are independent, so
/// searching them jointly would multiply node counts for nothing). A component
/// grows when its search meets a clash with a sub-problem outside it, and
/// components merge if their final allocations clash with each other.
pub(crate) fn resolve_clashes(
    problem: &Problem,
    subs: &[Subproblem],
    base: Vec<SubSolution>,
    base_assignment: &Assignment,
    limits: Limits,
) -> Result<BranchOutcome, SolveError> {
    let base: Vec<Rc<SubSolution>> = base.into_iter().map(Rc::new).collect();
    let sub_of = |r: usize| {
        let referral = &problem.referrals[r];
        subs.iter()
            .position(|s| s.specialty == referral.specialty && s.kind == referral.kind)
    };
    let mut components: Vec<BTreeSet<usize>> = Vec::new();
    let join = |components: &mut Vec<BTreeSet<usize>>, touched: BTreeSet<usize>| {
        let mut merged = touched;
        components.retain(|c| {
            if c.is_disjoint(&merged) {
                true
            } else {
                merged.extend(c.iter().copied());
                false
            }
        });
        components.push(merged);
        components.sort();
    };
    for referrals in conflicts(problem, base_assignment).values() {
        join(
            &mut components,
            referrals.iter().filter_map(|&r| sub_of(r)).collect(),
        );
    }

    let mut total = BranchOutcome {
        assignment: base_assignment.clone(),
        proven: true,
        certified: true,
        bound: 0,
        nodes: 0,
        solves: 0,
        lp_solves: 0,
        expand: None,
        scope: BTreeSet::new(),
    };
    let mut bounds: BTreeMap<BTreeSet<usize>, i64> = BTreeMap::new();
    let mut resolver = Resolver::new(problem, subs, limits.threads);
    let mut deltas = search::Deltas::new();
    for _ in 0..subs.len() + 1 {
        let mut queue: Vec<BTreeSet<usize>> = components
            .iter()
            .filter(|c| !bounds.contains_key(*c))
            .cloned()
            .collect();
        while let Some(scope) = queue.pop() {
            let settled: BTreeSet<usize> = bounds.keys().flatten().copied().collect();
            let outcome = search_component(
                problem,
                subs,
                &base,
                &total.assignment,
                &scope,
                &settled,
                limits,
                &mut resolver,
                &mut deltas,
            )?;
            total.nodes += outcome.nodes;
            total.solves += outcome.solves;
            total.lp_solves += outcome.lp_solves;
            match outcome.expand {
                Some(more) => {
                    let mut grown = outcome.scope;
                    grown.extend(more);
                    join(&mut components, grown);
                    bounds.retain(|c, _| components.contains(c));
                    queue = components
                        .iter()
                        .filter(|c| !bounds.contains_key(*c))
                        .cloned()
                        .collect();
                }
                None => {
                    total.proven &= outcome.proven;
                    let grown = outcome.scope;
                    for &k in &grown {
                        for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
                            total.assignment[r] = outcome.assignment[r];
                        }
                    }
                    if grown != scope {
                        join(&mut components, grown.clone());
                        bounds.retain(|c, _| c.is_disjoint(&grown));
                        queue.retain(|c| c.is_disjoint(&grown));
                    }
                    bounds.insert(grown, outcome.bound);
                }
            }
        }
        // Components solved apart may clash with each other: merge and redo.
        let clashes = conflicts(problem, &total.assignment);
        if clashes.is_empty() {
            break;
        }
        for referrals in clashes.values() {
            let touched: BTreeSet<usize> = referrals.iter().filter_map(|&r| sub_of(r)).collect();
            join(&mut components, touched);
        }
        bounds.retain(|c, _| components.contains(c));
    }
    let covered: BTreeSet<usize> = bounds.keys().flatten().copied().collect();
    total.bound = bounds.values().sum::<i64>()
        + (0..subs.len())
            .filter(|k| !covered.contains(k))
            .map(|k| base[k].value)
            .sum::<i64>();
    if !conflicts(problem, &total.assignment).is_empty() {
        total.assignment = repair(
            problem,
            subs,
            &(0..subs.len()).collect::<Vec<_>>(),
            &total.assignment,
        );
        total.proven = false;
    }
    Ok(total)
}

/// Clashes in a component's relaxation from which it goes straight to the
/// LP with patient-day rows ([`lagrange`]) rather than branching first: at
/// least this many, and at least two per sub-problem.
const DENSE_CLASHES: usize = 8;

/// One component's stage 2: branch and bound, the LP with patient-day rows
/// and its Lagrangian bound, or both; the answer is the better allocation
/// found and the stronger bound.
#[allow(clippy::too_many_arguments)]
fn search_component(
    problem: &Problem,
    subs: &[Subproblem],
    base: &[Rc<SubSolution>],
    current: &Assignment,
    scope: &BTreeSet<usize>,
    settled: &BTreeSet<usize>,
    limits: Limits,
    resolver: &mut Resolver<'_>,
    deltas: &mut search::Deltas,
) -> Result<BranchOutcome, SolveError> {
    let remaining = || {
        limits
            .deadline
            .map(|(start, limit)| limit - start.elapsed().as_secs_f64())
    };
    let clashes = conflicts(problem, current)
        .values()
        .filter(|referrals| {
            referrals.iter().any(|&r| {
                let referral = &problem.referrals[r];
                scope.iter().any(|&k| {
                    subs[k].specialty == referral.specialty && subs[k].kind == referral.kind
                })
            })
        })
        .count();
    let dense_first = clashes >= DENSE_CLASHES && clashes >= 2 * scope.len();
    let try_dense = |scope: &BTreeSet<usize>| -> Result<Option<lagrange::Dense>, SolveError> {
        if !limits.lp || remaining().is_some_and(|t| t <= 0.0) {
            return Ok(None);
        }
        lagrange::solve_dense(
            problem,
            subs,
            base,
            scope,
            current,
            limits.deadline,
            limits.threads,
        )
        .map(Some)
    };
    let mut dense = None;
    if dense_first {
        let found = try_dense(scope)?;
        if let Some(found) = &found {
            if !found.expand.is_empty() {
                return Ok(BranchOutcome {
                    assignment: current.clone(),
                    proven: false,
                    certified: true,
                    bound: 0,
                    nodes: 0,
                    solves: found.solves,
                    lp_solves: found.lp_solves,
                    expand: Some(found.expand.clone()),
                    scope: scope.clone(),
                });
            }
            if let (Some((assignment, value)), Some(bound)) = (&found.candidate, found.bound)
                && bound >= *value
            {
                return Ok(BranchOutcome {
                    assignment: assignment.clone(),
                    proven: true,
                    certified: true,
                    bound: *value,
                    nodes: 0,
                    solves: found.solves,
                    lp_solves: found.lp_solves,
                    expand: None,
                    scope: scope.clone(),
                });
            }
        }
        dense = found;
    }
    let mut outcome = search::branch_and_bound(
        problem, subs, base, current, scope, settled, limits, resolver, deltas,
    )?;
    if outcome.expand.is_some() || outcome.proven {
        return Ok(outcome);
    }
    if dense.is_none() {
        dense = try_dense(&outcome.scope)?;
    }
    let Some(dense) = dense else {
        return Ok(outcome);
    };
    if !dense.expand.is_empty() || (dense_first && outcome.scope != *scope) {
        // The LP saw another component than the one the search ended with.
        return Ok(outcome);
    }
    outcome.solves += dense.solves;
    outcome.lp_solves += dense.lp_solves;
    let searched = scope_value(problem, subs, &outcome.scope, &outcome.assignment);
    if let Some((assignment, value)) = dense.candidate
        && value < searched
    {
        outcome.assignment = assignment;
    }
    let value = scope_value(problem, subs, &outcome.scope, &outcome.assignment);
    if let Some(bound) = dense.bound {
        // An uncertified search bound is no bound at all.
        outcome.bound = if outcome.certified {
            outcome.bound.max(bound)
        } else {
            bound
        };
        outcome.certified = true;
    }
    outcome.proven = outcome.certified && value <= outcome.bound;
    if outcome.proven {
        outcome.bound = value;
    }
    Ok(outcome)
}

/// An exact lower bound on `sum(cost - unallocated)` over the sub-problems
/// `members` for every allocation keeping the patient-day rule: the
/// Lagrangian bound of [`lagrange`], for the LP engine, whose MIPs are proven
/// only in floating point.
pub(crate) fn exact_bound(
    problem: &Problem,
    subs: &[Subproblem],
    results: &[SubResult],
    members: &[usize],
    current: &Assignment,
    deadline: Option<(Instant, f64)>,
) -> Result<Option<i64>, SolveError> {
    let base: Vec<Rc<SubSolution>> = results
        .iter()
        .map(|r| {
            Rc::new(
                SubSolution::new(r.flows.clone(), Vec::new(), r.proven)
                    .with_duals(r.duals.clone(), r.class_dual.clone()),
            )
        })
        .collect();
    let scope: BTreeSet<usize> = members.iter().copied().collect();
    let dense = lagrange::solve_dense(problem, subs, &base, &scope, current, deadline, 1)?;
    Ok(dense.bound)
}

/// `sum(cost - unallocated)` over the referrals of the sub-problems in `scope`.
fn scope_value(
    problem: &Problem,
    subs: &[Subproblem],
    scope: &BTreeSet<usize>,
    assignment: &Assignment,
) -> i64 {
    scope
        .iter()
        .flat_map(|&k| subs[k].classes.iter().flat_map(|c| &c.members))
        .map(|&r| match assignment[r] {
            Some(s) => {
                problem.cost(r, problem.slots[s].day, problem.slots[s].clinician)
                    - problem.unallocated_cost(r)
            }
            None => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate;
    use crate::model::Priority;
    use crate::solve::testkit::{brute_force, problem, referral, slot};
    use crate::solve::{network, relaxation, split};

    /// Stage 1 as the solver hands it to stage 2: every sub-problem's certified
    /// relaxation, its allocation, and the total unallocated cost (the offset
    /// between relaxation values and the model's objective).
    fn relaxed(problem: &Problem) -> (Vec<Subproblem>, Vec<SubSolution>, Assignment, i64) {
        let subs = network::build(problem, 1);
        let mut assignment = vec![None; problem.referrals.len()];
        let mut base = Vec::new();
        for sub in &subs {
            let result = relaxation::solve_flow(problem, sub, None);
            assert!(result.proven);
            split::place(problem, sub, &result.flows, &mut assignment).unwrap();
            base.push(SubSolution::new(result.flows, result.prices, result.proven));
        }
        let unallocated = (0..problem.referrals.len())
            .map(|r| problem.unallocated_cost(r))
            .sum();
        (subs, base, assignment, unallocated)
    }

    fn nodes(nodes: usize) -> Limits {
        Limits {
            deadline: None,
            nodes,
            threads: 1,
            lp: false,
        }
    }

    fn slot_of(problem: &Problem, assignment: &Assignment, referral: &str) -> Option<String> {
        let r = problem.referrals.iter().position(|x| x.id == referral)?;
        assignment[r].map(|s| problem.slots[s].id.clone())
    }

    /// One patient with a routine cardiology referral (waited 100 days) and an
    /// urgent dermatology one (waited 20 days). Each clinic has a place on
    /// day 1; cardiology has another on day 3, dermatology on day 2.
    fn one_patient_two_clinics() -> Problem {
        problem(
            vec![
                slot("c1", "cardiology", "x", 1, 1),
                slot("c3", "cardiology", "x", 3, 1),
                slot("d1", "dermatology", "y", 1, 1),
                slot("d2", "dermatology", "y", 2, 1),
            ],
            vec![
                referral("r1", "p1", "cardiology", Priority::Routine, 100),
                referral("r2", "p1", "dermatology", Priority::Urgent, 20),
            ],
        )
    }

    #[test]
    fn a_clash_the_relaxation_makes_is_resolved_at_the_known_optimum() {
        let problem = one_patient_two_clinics();
        let (subs, base, assignment, unallocated) = relaxed(&problem);
        // Relaxed, both take day 1: 101² + 5·21² = 10201 + 2205, which breaks
        // the patient-per-day rule.
        assert_eq!(conflicts(&problem, &assignment).len(), 1);
        assert!(evaluate::check(&problem, &assignment).is_err());
        let relaxed_value: i64 = base.iter().map(|b| b.value).sum();
        assert_eq!(relaxed_value + unallocated, 10201 + 2205);

        let outcome =
            resolve_clashes(&problem, &subs, base, &assignment, nodes(NODE_LIMIT)).unwrap();
        // Moving dermatology to day 2 costs 5·(22² - 21²) = 215; moving
        // cardiology to day 3 costs 103² - 101² = 408.
        let optimum = 10201 + 2420;
        assert_eq!(brute_force(&problem), optimum);
        assert_eq!(evaluate::check(&problem, &outcome.assignment), Ok(optimum));
        assert_eq!(
            slot_of(&problem, &outcome.assignment, "r1").as_deref(),
            Some("c1")
        );
        assert_eq!(
            slot_of(&problem, &outcome.assignment, "r2").as_deref(),
            Some("d2")
        );
        assert!(outcome.proven);
        assert_eq!(outcome.bound + unallocated, optimum);
        // The root, re-keyed once by its clash's cheapest resolution (both
        // branches re-solved for that), then the cheaper child, clash-free;
        // the child reuses the cached re-solve.
        assert_eq!((outcome.nodes, outcome.solves), (2, 2));
    }

    #[test]
    fn at_the_node_limit_the_search_dives_to_a_valid_allocation_and_claims_no_proof() {
        let problem = one_patient_two_clinics();
        let optimum = brute_force(&problem);
        let out_of_time = Limits {
            deadline: Some((Instant::now(), 0.0)),
            nodes: NODE_LIMIT,
            threads: 1,
            lp: true,
        };
        for limits in [nodes(1), out_of_time] {
            let (subs, base, assignment, unallocated) = relaxed(&problem);
            let outcome = resolve_clashes(&problem, &subs, base, &assignment, limits).unwrap();
            assert!(!outcome.proven, "{limits:?}");
            // A valid allocation (every rule holds) and an honest bound. The
            // dive takes the cheaper child (moving dermatology, +215, rather
            // than cardiology, +408: 12814), which here is the optimum.
            let objective = evaluate::check(&problem, &outcome.assignment).unwrap();
            assert_eq!(objective, optimum, "{limits:?}");
            assert_eq!(optimum, 12621);
            // The bound is the root's key when the proof was given up: its
            // relaxation plus its clash's cheapest resolution.
            assert_eq!(
                outcome.bound + unallocated,
                10201 + 2205 + 215,
                "{limits:?}"
            );
            assert!(outcome.bound + unallocated <= optimum);
        }
    }

    #[test]
    fn where_branching_gives_up_the_lp_with_patient_day_rows_proves_the_optimum() {
        let problem = one_patient_two_clinics();
        let (subs, base, assignment, unallocated) = relaxed(&problem);
        let limits = Limits {
            lp: true,
            ..nodes(1)
        };
        let outcome = resolve_clashes(&problem, &subs, base, &assignment, limits).unwrap();
        assert!(outcome.proven);
        assert_eq!(
            evaluate::check(&problem, &outcome.assignment),
            Ok(10201 + 2420)
        );
        assert_eq!(outcome.bound + unallocated, 10201 + 2420);
        assert!(outcome.lp_solves >= 1);
    }

    #[test]
    fn a_three_way_clash_with_a_displaced_neighbour_matches_enumeration() {
        // Patient p1 has three referrals, each relaxed onto day 1; in
        // cardiology p2 competes for the later place, so resolving p1's clash
        // there moves p2 too.
        let problem = problem(
            vec![
                slot("c1", "cardiology", "x", 1, 1),
                slot("c2", "cardiology", "x", 2, 1),
                slot("d1", "dermatology", "y", 1, 1),
                slot("d3", "dermatology", "y", 3, 1),
                slot("n1", "neurology", "z", 1, 1),
                slot("n2", "neurology", "z", 2, 1),
            ],
            vec![
                referral("r1", "p1", "cardiology", Priority::Urgent, 20),
                referral("r2", "p1", "dermatology", Priority::Routine, 200),
                referral("r3", "p1", "neurology", Priority::TwoWeekWait, 3),
                referral("r4", "p2", "cardiology", Priority::Routine, 100),
            ],
        );
        let (subs, base, assignment, unallocated) = relaxed(&problem);
        let clashes = conflicts(&problem, &assignment);
        assert_eq!(clashes.values().map(Vec::len).collect::<Vec<_>>(), vec![3]);
        let outcome =
            resolve_clashes(&problem, &subs, base, &assignment, nodes(NODE_LIMIT)).unwrap();
        let optimum = brute_force(&problem);
        assert_eq!(evaluate::check(&problem, &outcome.assignment), Ok(optimum));
        assert!(outcome.proven);
        assert_eq!(outcome.bound + unallocated, optimum);
    }
}
