//! The best-first search over one component's clashes: nodes, their keys
//! (relaxation value plus clash penalties), branching, and the dive that keeps
//! an allocation when a limit ends the proof.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::rc::Rc;

use super::barred::{Bars, Job, Resolver, SubSolution, branch_bars, penalty, penalty_jobs};
use super::{BranchOutcome, Limits};
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::solve::network::Subproblem;
use crate::solve::split;
use crate::validate::Problem;

/// Each clash's cheapest resolution, by day and referrals, once computed:
/// it depends only on the base solutions, so every search shares it.
pub(super) type Deltas = HashMap<i32, HashMap<Vec<usize>, i64>>;

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

/// Best-first search over the clashes of one component (`scope`); sub-problems
/// outside it stay as in `current`. Returns `expand` instead of a result when a
/// clash reaches outside the component.
#[allow(clippy::too_many_arguments)]
pub(super) fn branch_and_bound(
    problem: &Problem,
    subs: &[Subproblem],
    base: &[Rc<SubSolution>],
    current: &Assignment,
    scope: &BTreeSet<usize>,
    settled: &BTreeSet<usize>,
    limits: Limits,
    resolver: &mut Resolver<'_>,
    deltas: &mut Deltas,
) -> Result<BranchOutcome, SolveError> {
    let solves_before = resolver.solves;
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

    let solution_of = |resolver: &Resolver<'_>, node: &Node, k: usize| match node.bars.get(&k) {
        Some(bars) => resolver.get(k, bars),
        None => Some(base[k].clone()),
    };

    let mut work = current.clone();
    for &k in &scope {
        for &r in subs[k].classes.iter().flat_map(|c| &c.members) {
            work[r] = None;
        }
        split::place(problem, &subs[k], &base[k].flows, &mut work)?;
    }
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
                let Some(solution) = solution_of(resolver, &nodes[id], k) else {
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
                    proven: resolver.proven && diving.is_none(),
                    certified: resolver.proven,
                    bound: diving.unwrap_or(key) + offset,
                    nodes: expanded,
                    solves: resolver.solves - solves_before,
                    lp_solves: 0,
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
                let mut counted = Vec::new();
                let mut jobs = Vec::new();
                for (day, referrals) in clashes.iter().cloned() {
                    let subs_of: BTreeSet<usize> = referrals
                        .iter()
                        .filter_map(|r| home.get(r).map(|h| h.0))
                        .collect();
                    if !subs_of.is_subset(&scope) || !subs_of.is_disjoint(&touched) {
                        continue;
                    }
                    if deltas
                        .get(&day)
                        .and_then(|m| m.get(referrals.as_slice()))
                        .is_none()
                    {
                        jobs.extend(penalty_jobs(base, &home, day, &referrals));
                    }
                    counted.push((day, referrals, subs_of));
                }
                // Every clash's branches re-solved at once, on every thread.
                resolver.run(jobs);
                let mut candidates = Vec::new();
                for (day, referrals, subs_of) in counted {
                    let delta = match deltas.get(&day).and_then(|m| m.get(referrals.as_slice())) {
                        Some(&delta) => delta,
                        None => {
                            let delta = penalty(resolver, base, &home, day, &referrals);
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
                proven: resolver.proven,
                certified: resolver.proven,
                bound: key + offset,
                nodes: expanded,
                solves: resolver.solves - solves_before,
                lp_solves: 0,
                expand: Some(outside),
                scope,
            });
        }
        let out_of_time = limits
            .deadline
            .is_some_and(|(start, limit)| start.elapsed().as_secs_f64() >= limit);
        if diving.is_none() && (out_of_time || expanded >= limits.nodes) {
            // Give up the proof but not the allocation: the cheapest open
            // node's value stays a valid bound, and a dive (always the
            // cheapest child) reaches a clash-free allocation in at most one
            // step per clash.
            diving = Some(key);
        }
        // Each child bars all but one of the clash's referrals from the day;
        // their re-solves run together, on every thread.
        let mut children = Vec::new();
        let mut jobs = Vec::new();
        for keep in 0..referrals.len() {
            let mut bars = nodes[id].bars.clone();
            let mut changed = BTreeSet::new();
            for (k, add) in branch_bars(&home, day, &referrals, keep) {
                let entry = bars.entry(k).or_default();
                let before = entry.len();
                entry.extend(add);
                if entry.len() > before {
                    changed.insert(k);
                }
            }
            if changed.is_empty() {
                continue;
            }
            for &k in &changed {
                jobs.push(Job {
                    k,
                    bars: bars[&k].clone(),
                    from: solution_of(resolver, &nodes[id], k).unwrap_or_else(|| base[k].clone()),
                });
            }
            children.push((bars, changed));
        }
        resolver.run(jobs);
        for (bars, changed) in children {
            let mut child_value = value;
            for &k in &changed {
                let previous =
                    solution_of(resolver, &nodes[id], k).unwrap_or_else(|| base[k].clone());
                let Some(solution) = resolver.get(k, &bars[&k]) else {
                    continue;
                };
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
            // Keep only the cheapest child (ties: the first made). The heap
            // holds `Reverse` entries, so compare the keys themselves.
            let best = open
                .iter()
                .map(|Reverse(entry)| *entry)
                .filter(|&(_, n)| n > id)
                .min();
            open.clear();
            open.extend(best.map(Reverse));
        }
    }
    // Unreachable in practice: some branch of every clash is clash-free.
    Ok(BranchOutcome {
        assignment: current.clone(),
        proven: false,
        certified: resolver.proven,
        bound: i64::MIN / 4,
        nodes: expanded,
        solves: resolver.solves - solves_before,
        lp_solves: 0,
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
