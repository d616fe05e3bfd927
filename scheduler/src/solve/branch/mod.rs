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
mod search;

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Instant;

use super::clashes::{conflicts, repair};
use super::network::Subproblem;
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::validate::Problem;

pub(crate) use barred::SubSolution;

#[derive(Debug)]
pub(crate) struct BranchOutcome {
    pub assignment: Assignment,
    pub proven: bool,
    /// Lower bound on the total `sum(cost - unallocated)` over all sub-problems.
    pub bound: i64,
    pub nodes: usize,
    pub solves: usize,
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
        bound: 0,
        nodes: 0,
        solves: 0,
        expand: None,
        scope: BTreeSet::new(),
    };
    let mut bounds: BTreeMap<BTreeSet<usize>, i64> = BTreeMap::new();
    for _ in 0..subs.len() + 1 {
        let mut queue: Vec<BTreeSet<usize>> = components
            .iter()
            .filter(|c| !bounds.contains_key(*c))
            .cloned()
            .collect();
        while let Some(scope) = queue.pop() {
            let settled: BTreeSet<usize> = bounds.keys().flatten().copied().collect();
            let outcome = search::branch_and_bound(
                problem,
                subs,
                &base,
                &total.assignment,
                &scope,
                &settled,
                limits,
            )?;
            total.nodes += outcome.nodes;
            total.solves += outcome.solves;
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
