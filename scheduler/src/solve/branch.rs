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

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::rc::Rc;
use std::time::Instant;

use super::certificate::certify_arcs;
use super::clashes::{conflicts, repair};
use super::network::{Arc, Subproblem};
use super::{flow, split};
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::validate::Problem;

/// One sub-problem's relaxation under some bars.
#[derive(Debug)]
pub(crate) struct SubSolution {
    pub flows: Vec<Vec<(Arc, i64)>>,
    /// `sum(cost - unallocated)` of the flow.
    pub value: i64,
    pub prices: Vec<i64>,
    pub proven: bool,
    /// The split of `flows` into (referral, slot) pairs, made once on first use:
    /// a node applies every re-solved sub-problem of its branch, so the same
    /// split is applied many times.
    pub placed: std::cell::OnceCell<Vec<(usize, usize)>>,
}

impl SubSolution {
    fn placements(
        &self,
        problem: &Problem,
        sub: &Subproblem,
    ) -> Result<&[(usize, usize)], SolveError> {
        if let Some(placed) = self.placed.get() {
            return Ok(placed);
        }
        let placed = split::placements(problem, sub, &self.flows)?;
        Ok(self.placed.get_or_init(|| placed))
    }
}

type Bars = BTreeSet<(usize, i32)>;

#[derive(Debug)]
struct Node {
    /// Barred (class, day) pairs per sub-problem, for the sub-problems that have any.
    bars: BTreeMap<usize, Bars>,
    /// Total of `sum(cost - unallocated)` over all sub-problems.
    value: i64,
    /// Whether the node's heap key already includes its clash penalties.
    strong: bool,
    /// The clash to branch on, remembered when the node was re-keyed so its
    /// allocation need not be rebuilt when it comes round again.
    branch: Option<(i32, Vec<usize>)>,
}

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
const NODE_LIMIT: usize = 4000;

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
    deadline: Option<(Instant, f64)>,
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
            let outcome = branch_and_bound(
                problem,
                subs,
                &base,
                &total.assignment,
                &scope,
                &settled,
                deadline,
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

/// Best-first search over the clashes of one component (`scope`); sub-problems
/// outside it stay as in `current`. Returns `expand` instead of a result when a
/// clash reaches outside the component.
fn branch_and_bound(
    problem: &Problem,
    subs: &[Subproblem],
    base: &[Rc<SubSolution>],
    current: &Assignment,
    scope: &BTreeSet<usize>,
    settled: &BTreeSet<usize>,
    deadline: Option<(Instant, f64)>,
) -> Result<BranchOutcome, SolveError> {
    // Where each referral lives, and which patients hold several referrals.
    let mut home: HashMap<usize, (usize, usize)> = HashMap::new();
    let mut by_patient: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (k, sub) in subs.iter().enumerate() {
        for (c, class) in sub.classes.iter().enumerate() {
            if class.individual {
                let r = class.members[0];
                home.insert(r, (k, c));
                by_patient
                    .entry(problem.referrals[r].patient)
                    .or_default()
                    .push(r);
            }
        }
    }
    for referrals in by_patient.values_mut() {
        referrals.sort_unstable();
    }
    let all_by_patient = by_patient;
    let mut scope = scope.clone();
    let in_scope = |scope: &BTreeSet<usize>| {
        let mut view = all_by_patient.clone();
        view.retain(|_, referrals| {
            referrals
                .iter()
                .any(|r| home.get(r).is_some_and(|h| scope.contains(&h.0)))
        });
        view
    };
    let mut by_patient = in_scope(&scope);
    // Sub-problems pulled into the search later contribute a constant (their
    // base value) to every node, so node order is unaffected.
    let mut offset = 0_i64;

    let mut cache: HashMap<(usize, Bars), Rc<SubSolution>> = HashMap::new();
    let mut solves = 0;
    let mut proven = true;
    let mut nodes: Vec<Node> = vec![Node {
        bars: BTreeMap::new(),
        value: scope.iter().map(|&k| base[k].value).sum(),
        strong: false,
        branch: None,
    }];
    let mut open: BinaryHeap<Reverse<(i64, usize)>> =
        BinaryHeap::from([Reverse((nodes[0].value, 0))]);
    let mut expanded = 0;
    let mut diving: Option<i64> = None;

    let solution_of =
        |cache: &HashMap<(usize, Bars), Rc<SubSolution>>, node: &Node, k: usize| match node
            .bars
            .get(&k)
        {
            Some(bars) => cache.get(&(k, bars.clone())).cloned(),
            None => Some(base[k].clone()),
        };

    let mut work = current.clone();
    for &k in &scope {
        for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
            work[r] = None;
        }
        split::place(problem, &subs[k], &base[k].flows, &mut work)?;
    }
    let mut deltas: HashMap<i32, HashMap<Vec<usize>, i64>> = HashMap::new();
    while let Some(Reverse((key, id))) = open.pop() {
        let value = nodes[id].value;
        expanded += 1;
        let mut saved: Vec<(usize, Option<usize>)> = Vec::new();
        let remembered = if nodes[id].strong {
            nodes[id].branch.take()
        } else {
            None
        };
        let (day, referrals, outside) = if let Some((day, referrals)) = remembered {
            (day, referrals, BTreeSet::new())
        } else {
            // Apply this node's re-solved sub-problems to the working copy; they
            // are reverted below, so no node pays for copying the whole allocation.
            for &k in nodes[id].bars.keys() {
                let Some(solution) = solution_of(&cache, &nodes[id], k) else {
                    continue;
                };
                for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
                    saved.push((r, work[r]));
                    work[r] = None;
                }
                for &(r, slot) in solution.placements(problem, &subs[k])? {
                    work[r] = Some(slot);
                }
            }
            let assignment = &work;
            // Branch on the clash known to be dearest to resolve (ties: the first
            // in (patient, day) order): the bound then rises fastest.
            let clash = all_clashes(problem, &by_patient, assignment)
                .into_iter()
                .enumerate()
                .max_by_key(|(i, (day, referrals))| {
                    let known = deltas
                        .get(day)
                        .and_then(|m| m.get(referrals.as_slice()))
                        .copied()
                        .unwrap_or(-1);
                    (known, std::cmp::Reverse(*i))
                })
                .map(|(_, clash)| clash);
            let Some((day, referrals)) = clash else {
                return Ok(BranchOutcome {
                    assignment: work.clone(),
                    proven: proven && diving.is_none(),
                    bound: diving.unwrap_or(key) + offset,
                    nodes: expanded,
                    solves,
                    expand: None,
                    scope,
                });
            };
            let outside: BTreeSet<usize> = referrals
                .iter()
                .filter_map(|r| home.get(r).map(|h| h.0))
                .filter(|k| !scope.contains(k))
                .collect();
            if !outside.is_empty() && outside.is_disjoint(settled) {
                // Still at their base allocation: grow the search in place.
                for &k in &outside {
                    offset += base[k].value;
                }
                scope.extend(outside);
                by_patient = in_scope(&scope);
                for &(r, slot) in &saved {
                    work[r] = slot;
                }
                expanded -= 1;
                open.push(Reverse((key, id)));
                continue;
            }
            if !nodes[id].strong && diving.is_none() {
                // Re-key the node by a stronger bound before expanding it: every
                // clash among untouched sub-problems must still be resolved, and
                // clashes on disjoint sub-problems add their cheapest resolution
                // cost independently (see `penalty`).
                nodes[id].strong = true;
                let touched: BTreeSet<usize> = nodes[id].bars.keys().copied().collect();
                let clashes = all_clashes(problem, &by_patient, &work);
                let mut candidates = Vec::new();
                for (day, referrals) in clashes.iter().cloned() {
                    let subs_of: BTreeSet<usize> = referrals
                        .iter()
                        .filter_map(|r| home.get(r).map(|h| h.0))
                        .collect();
                    if !subs_of.is_subset(&scope) || !subs_of.is_disjoint(&touched) {
                        continue;
                    }
                    let delta = match deltas.get(&day).and_then(|m| m.get(referrals.as_slice())) {
                        Some(&delta) => delta,
                        None => {
                            let (delta, all_proven, count) =
                                penalty(problem, subs, base, &home, &mut cache, day, &referrals);
                            proven &= all_proven;
                            solves += count;
                            deltas
                                .entry(day)
                                .or_default()
                                .insert(referrals.clone(), delta);
                            delta
                        }
                    };
                    candidates.push((delta, subs_of));
                }
                candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
                let mut used: BTreeSet<usize> = BTreeSet::new();
                let mut strong = value;
                for (delta, subs_of) in candidates {
                    if subs_of.is_disjoint(&used) {
                        used.extend(subs_of);
                        strong += delta;
                    }
                }
                if strong > key {
                    if outside.is_empty() {
                        let chosen = clashes
                            .iter()
                            .enumerate()
                            .max_by_key(|(i, (day, referrals))| {
                                let known = deltas
                                    .get(day)
                                    .and_then(|m| m.get(referrals.as_slice()))
                                    .copied()
                                    .unwrap_or(-1);
                                (known, std::cmp::Reverse(*i))
                            })
                            .map(|(_, clash)| clash.clone());
                        nodes[id].branch = chosen;
                    }
                    for &(r, slot) in &saved {
                        work[r] = slot;
                    }
                    expanded -= 1;
                    open.push(Reverse((strong, id)));
                    continue;
                }
            }
            (day, referrals, outside)
        };
        if !outside.is_empty() {
            return Ok(BranchOutcome {
                assignment: work.clone(),
                proven,
                bound: key + offset,
                nodes: expanded,
                solves,
                expand: Some(outside),
                scope,
            });
        }
        let out_of_time =
            deadline.is_some_and(|(start, limit)| start.elapsed().as_secs_f64() >= limit);
        if diving.is_none() && (out_of_time || expanded >= NODE_LIMIT) {
            // Give up the proof but not the allocation: the cheapest open
            // node's value stays a valid bound, and a dive (always the
            // cheapest child) reaches a clash-free allocation in at most one
            // step per clash.
            diving = Some(key);
        }
        for keep in 0..referrals.len() {
            let mut bars = nodes[id].bars.clone();
            let mut changed = BTreeSet::new();
            for (j, r) in referrals.iter().enumerate() {
                if j == keep {
                    continue;
                }
                if let Some(&(k, c)) = home.get(r)
                    && bars.entry(k).or_default().insert((c, day))
                {
                    changed.insert(k);
                }
            }
            if changed.is_empty() {
                continue;
            }
            let mut child_value = value;
            for &k in &changed {
                let previous =
                    solution_of(&cache, &nodes[id], k).unwrap_or_else(|| base[k].clone());
                let key = (k, bars[&k].clone());
                let solution = match cache.get(&key) {
                    Some(solution) => solution.clone(),
                    None => {
                        solves += 1;
                        let solution =
                            Rc::new(resolve(problem, &subs[k], &bars[&k], &previous.prices));
                        cache.insert(key, solution.clone());
                        solution
                    }
                };
                proven &= solution.proven;
                child_value += solution.value - previous.value;
            }
            nodes.push(Node {
                bars,
                value: child_value,
                strong: false,
                branch: None,
            });
            // A child's relaxation is at least its parent's bound's relaxation
            // part; keep the parent's penalties out, they may have changed.
            open.push(Reverse((child_value.max(value), nodes.len() - 1)));
        }
        for &(r, slot) in &saved {
            work[r] = slot;
        }
        if diving.is_some() {
            // Keep only the cheapest child.
            let best = open.iter().filter(|Reverse((_, n))| *n > id).min().copied();
            open.clear();
            open.extend(best);
        }
    }
    // Unreachable in practice: some branch of every clash is clash-free.
    Ok(BranchOutcome {
        assignment: current.clone(),
        proven: false,
        bound: i64::MIN / 4,
        nodes: expanded,
        solves,
        expand: None,
        scope,
    })
}

/// Every clash in (patient, day) order: day and referrals (sorted).
fn all_clashes(
    problem: &Problem,
    by_patient: &BTreeMap<u32, Vec<usize>>,
    assignment: &Assignment,
) -> Vec<(i32, Vec<usize>)> {
    let mut clashes = Vec::new();
    let mut seen: Vec<(i32, usize)> = Vec::new();
    for referrals in by_patient.values() {
        seen.clear();
        seen.extend(
            referrals
                .iter()
                .filter_map(|&r| assignment[r].map(|s| (problem.slots[s].day, r))),
        );
        if seen.len() < 2 {
            continue;
        }
        seen.sort_unstable();
        let mut i = 0;
        while i < seen.len() {
            let day = seen[i].0;
            let run = seen[i..].iter().take_while(|(d, _)| *d == day).count();
            if run > 1 {
                clashes.push((day, seen[i..i + run].iter().map(|&(_, r)| r).collect()));
            }
            i += run;
        }
    }
    clashes
}

/// The cheapest way to resolve one clash among sub-problems still at their
/// base solution: the least increase in relaxation value over its branches.
/// Any allocation resolving it pays at least this on those sub-problems, as
/// barring only ever raises a flow's optimum. Returns (penalty, all
/// certificates held, re-solves done).
#[allow(clippy::too_many_arguments)]
fn penalty(
    problem: &Problem,
    subs: &[Subproblem],
    base: &[Rc<SubSolution>],
    home: &HashMap<usize, (usize, usize)>,
    cache: &mut HashMap<(usize, Bars), Rc<SubSolution>>,
    day: i32,
    referrals: &[usize],
) -> (i64, bool, usize) {
    let mut best = i64::MAX;
    let mut proven = true;
    let mut count = 0;
    for keep in 0..referrals.len() {
        let mut bars: BTreeMap<usize, Bars> = BTreeMap::new();
        for (j, r) in referrals.iter().enumerate() {
            if j != keep
                && let Some(&(k, c)) = home.get(r)
            {
                bars.entry(k).or_default().insert((c, day));
            }
        }
        let mut delta = 0;
        for (k, bars) in bars {
            let key = (k, bars);
            let solution = match cache.get(&key) {
                Some(solution) => solution.clone(),
                None => {
                    count += 1;
                    let solution = Rc::new(resolve(problem, &subs[k], &key.1, &base[k].prices));
                    cache.insert(key, solution.clone());
                    solution
                }
            };
            proven &= solution.proven;
            delta += solution.value - base[k].value;
        }
        best = best.min(delta);
    }
    (best.max(0), proven, count)
}

/// Solves a sub-problem's relaxation with some (class, day) pairs barred.
pub(crate) fn resolve(
    problem: &Problem,
    sub: &Subproblem,
    bars: &Bars,
    warm: &[i64],
) -> SubSolution {
    let offered: Vec<Vec<Arc>> = sub
        .classes
        .iter()
        .enumerate()
        .map(|(c, class)| {
            let mut arcs = sub.arcs(problem, class);
            arcs.retain(|a| !bars.contains(&(c, sub.dates[a.date as usize])));
            arcs
        })
        .collect();
    let outcome = flow::min_cost_flow(problem, sub, &offered, (!warm.is_empty()).then_some(warm));
    let value: i64 = outcome
        .flows
        .iter()
        .flatten()
        .map(|(arc, units)| arc.cost * units)
        .sum();
    // The certificate must hold for the barred network: check it over the
    // offered arcs only (barred arcs are absent from this branch's problem).
    let (bound, _) = certify_arcs(sub, &offered, &outcome.duals);
    SubSolution {
        placed: std::cell::OnceCell::new(),
        flows: outcome.flows,
        value,
        prices: outcome.prices,
        proven: bound >= value,
    }
}
