//! The exact solver: owns the entry point [`solve()`], its options, the choice
//! of engine and the order of the stages; the stages live in the submodules.
//!
//! The default engine, [`Engine::Flow`], is purpose-built. Stage 1 solves each
//! (specialty, kind) sub-problem's relaxation (the model without the
//! patient-per-day rule, over the aggregated network of `network.rs`) as a
//! min-cost flow by cost scaling (`flow.rs`, driven by `relaxation.rs`). Its
//! optimality is proven in exact integer arithmetic by an integral dual
//! certificate (`certificate.rs`): the flow's potentials give row duals, which
//! are completed into a dual-feasible solution over *every* arc and whose
//! objective is compared with the flow's value. Equal means optimal; nothing
//! rests on a solver's say-so or on floating-point tolerances.
//!
//! Stage 2 checks the patient-per-day rule, which stage 1 relaxed
//! (`clashes.rs`). If no patient got two slots on one day, the relaxation's
//! optimum is feasible and so optimal. Otherwise best-first branch and bound
//! (`branch/`) resolves the clashes exactly; every node is again one certified
//! flow per sub-problem.
//!
//! The second engine, [`Engine::Lp`] (`--lp`), cross-checks the first with
//! good_lp on HiGHS (`lp.rs`): stage 1 by the simplex with column generation,
//! certified the same way from HiGHS's rounded row duals, and stage 2 as a MIP
//! per component of clashing sub-problems (`mip.rs`). It is also the fallback
//! where cost scaling could overflow `i64` (see `flow::fits`).
//!
//! Either way the flows are split back into referral-to-slot allocations in a
//! fixed order (`split.rs`), and the final objective is recomputed
//! independently by [`crate::evaluate`] before `optimal` is claimed.

mod branch;
mod certificate;
mod clashes;
mod flow;
mod lp;
mod mip;
mod network;
mod relaxation;
mod split;
#[cfg(test)]
mod testkit;

use std::time::Instant;

use crate::error::SolveError;
use crate::evaluate::{self, Assignment};
use crate::greedy;
use crate::model::{Solution, SolverStats, Stats, Status};
use crate::validate::Problem;
use network::Subproblem;
use relaxation::SubResult;

/// Options of one solve.
#[derive(Debug, Clone, Default)]
pub struct SolveOptions {
    /// Stop after about this many seconds and return the best allocation found.
    ///
    /// The limit covers the whole solve: stage 1 stops each sub-problem's
    /// flow at the end of its current refine phase (or does not start it),
    /// and stage 2 is skipped once the limit has passed (or, already under
    /// way, dives to an allocation). The answer is then a valid allocation,
    /// never dearer than the greedy baseline, with status `feasible` unless
    /// proven anyway, and `stats.bound` a proven lower bound. The network
    /// build, the greedy baseline and the final checks always run, so a tiny
    /// limit still takes about as long as they do.
    pub time_limit: Option<f64>,
    /// Worker threads for independent sub-problems (0: available parallelism).
    pub threads: usize,
    /// Which algorithms solve the relaxations and resolve the clashes.
    pub engine: Engine,
}

/// The algorithms behind both stages. Both prove their answers with the same
/// integral dual certificate, so either cross-checks the other.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// The default: a purpose-built min-cost flow (cost scaling) per
    /// sub-problem, and best-first branch and bound on patient-per-day clashes,
    /// each node again a flow.
    #[default]
    Flow,
    /// The cross-check: good_lp on HiGHS, its simplex with column generation
    /// per sub-problem, and a MIP per component of clashing sub-problems.
    Lp,
}

/// Solves a validated problem exactly (or to the time limit).
pub fn solve(problem: &Problem, options: &SolveOptions) -> Result<Solution, SolveError> {
    // The solve and its stages as spans (for whoever subscribes: a service
    // exports them under its RPC's trace; the CLI has no subscriber).
    let span = tracing::info_span!(
        "optimiser.solve",
        referrals = problem.referrals.len(),
        slots = problem.slots.len(),
        status = tracing::field::Empty,
        objective = tracing::field::Empty,
        bound = tracing::field::Empty,
    );
    let _entered = span.enter();
    let started = Instant::now();
    let deadline = options.time_limit.map(|limit| (started, limit));
    let threads = thread_count(options.threads);
    let stage1 = tracing::info_span!(
        "optimiser.relaxation",
        subproblems = tracing::field::Empty,
        cut_short = tracing::field::Empty,
    );
    let stage1_entered = stage1.enter();
    let (greedy_assignment, subs, options, results) = std::thread::scope(|scope| {
        // The greedy baseline is needed only at the end (and by the LP
        // engine's first columns): with the flow engine it runs beside
        // stage 1 on a thread of its own.
        let greedy = (threads > 1).then(|| scope.spawn(|| greedy::greedy(problem)));
        let joined = |greedy: Option<std::thread::ScopedJoinHandle<'_, Assignment>>| {
            greedy
                .and_then(|handle| handle.join().ok())
                .unwrap_or_else(|| greedy::greedy(problem))
        };
        let subs = network::build(problem, threads);
        // Cost scaling multiplies costs by the node count and moves prices by
        // up to node-count multiples of that; fall back to HiGHS where that
        // could leave i64.
        let engine =
            if options.engine == Engine::Flow && subs.iter().all(|sub| flow::fits(problem, sub)) {
                Engine::Flow
            } else {
                Engine::Lp
            };
        let options = SolveOptions {
            engine,
            ..options.clone()
        };
        if engine == Engine::Lp {
            let greedy_assignment = joined(greedy);
            let results = solve_all(problem, &subs, Some(&greedy_assignment), &options, deadline);
            (greedy_assignment, subs, options, results)
        } else {
            let results = solve_all(problem, &subs, None, &options, deadline);
            (joined(greedy), subs, options, results)
        }
    });
    let options = &options;
    stage1.record("subproblems", subs.len());
    let results = results?;
    stage1.record("cut_short", results.iter().filter(|r| r.cut_short).count());
    drop(stage1_entered);
    let stage1_done = started.elapsed().as_secs_f64();

    let mut assignment: Assignment = vec![None; problem.referrals.len()];
    for (sub, result) in subs.iter().zip(&results) {
        split::place(problem, sub, &result.flows, &mut assignment)?;
    }
    // Where the deadline cut a relaxation short, its flow may be dearer than
    // booking in turn: take whichever is cheaper, sub-problem by
    // sub-problem (slots never cross sub-problems, so the mix keeps every
    // capacity; patient-day clashes across them are repaired below).
    let cut_short = results.iter().filter(|r| r.cut_short).count();
    for (sub, result) in subs.iter().zip(&results) {
        if result.cut_short
            && sub_value(problem, sub, &greedy_assignment) < sub_value(problem, sub, &assignment)
        {
            for &r in sub.classes.iter().flat_map(|c| &c.members) {
                assignment[r] = greedy_assignment[r];
            }
        }
    }

    let mut stats = SolverStats {
        subproblems: subs.len(),
        referral_classes: subs.iter().map(|s| s.classes.len()).sum(),
        slot_groups: subs.iter().map(|s| s.bins.len()).sum(),
        lp_solves: results.iter().map(|r| r.lp_solves).sum(),
        max_lp_columns: results.iter().map(|r| r.max_columns).max().unwrap_or(0),
        relaxations_cut_short: cut_short,
        ..SolverStats::default()
    };

    let unallocated_total: Vec<i64> = subs
        .iter()
        .map(|sub| {
            sub.classes
                .iter()
                .flat_map(|c| &c.members)
                .map(|&r| problem.unallocated_cost(r))
                .sum()
        })
        .collect();
    // Referrals outside every sub-problem cannot be seen at all.
    let mut fixed_cost = 0;
    let mut in_sub = vec![false; problem.referrals.len()];
    for sub in &subs {
        for &r in sub.classes.iter().flat_map(|c| &c.members) {
            in_sub[r] = true;
        }
    }
    for (r, &inside) in in_sub.iter().enumerate() {
        if !inside {
            fixed_cost += problem.unallocated_cost(r);
        }
    }

    let mut sub_bound: Vec<i64> = results
        .iter()
        .zip(&unallocated_total)
        .map(|(r, u)| r.bound + u)
        .collect();
    let mut proven = results.iter().all(|r| r.proven);

    let clashes = clashes::conflicts(problem, &assignment);
    let stage2 = tracing::info_span!(
        "optimiser.clashes",
        clashes = clashes.len(),
        branch_nodes = tracing::field::Empty,
        proven = tracing::field::Empty,
    );
    let stage2_entered = stage2.enter();
    if !clashes.is_empty() && (cut_short > 0 || expired(deadline)) {
        // Out of time: no search, just the quick repair. The relaxations'
        // bounds stand, since dropping the patient-day rule only lowers the
        // optimum.
        stats.patient_day_conflicts = clashes.len();
        let all: Vec<usize> = (0..subs.len()).collect();
        assignment = clashes::repair(problem, &subs, &all, &assignment);
        proven = false;
    } else if !clashes.is_empty() && options.engine == Engine::Flow {
        stats.patient_day_conflicts = clashes.len();
        let base = results
            .iter()
            .map(|r| {
                branch::SubSolution::new(r.flows.clone(), r.prices.clone(), r.proven)
                    .with_duals(r.duals.clone(), r.class_dual.clone())
            })
            .collect();
        let limits = branch::Limits {
            deadline,
            nodes: branch::NODE_LIMIT,
            threads: thread_count(options.threads),
            lp: true,
        };
        let outcome = branch::resolve_clashes(problem, &subs, base, &assignment, limits)?;
        assignment = outcome.assignment;
        proven &= outcome.proven;
        stats.branch_nodes = outcome.nodes;
        stats.flow_resolves = outcome.solves;
        stats.clash_lp_solves = outcome.lp_solves;
        // The search's bound covers every sub-problem at once.
        sub_bound = vec![0; subs.len()];
        if let Some(first) = sub_bound.first_mut() {
            *first = outcome.bound + unallocated_total.iter().sum::<i64>();
        }
    } else if !clashes.is_empty() {
        stats.patient_day_conflicts = clashes.len();
        let outcome = mip::resolve_conflicts(
            problem,
            &subs,
            &results,
            &unallocated_total,
            &mut assignment,
            clashes,
            deadline,
        )?;
        stats.mip_solves = outcome.mip_solves;
        proven &= outcome.proven;
        for (members, bound) in outcome.component_bounds {
            // A MIP's optimality is HiGHS's floating-point claim: its
            // component counts only with an exact bound, the Lagrangian of its
            // patient-day rows computed by the certified flow (where the flow
            // fits; otherwise the members' relaxation bounds stand).
            let lower: i64 = members.iter().map(|&k| sub_bound[k]).sum();
            let exact = if members.iter().all(|&k| flow::fits(problem, &subs[k])) {
                branch::exact_bound(problem, &subs, &results, &members, &assignment, deadline)?
                    .map(|b| b + members.iter().map(|&k| unallocated_total[k]).sum::<i64>())
            } else {
                None
            };
            let bound = exact.map_or(lower, |exact| exact.max(lower)).min(bound);
            for &k in &members {
                sub_bound[k] = 0;
            }
            if let Some(&first) = members.first() {
                sub_bound[first] = bound;
            }
        }
    }
    stage2.record("branch_nodes", stats.branch_nodes);
    stage2.record("proven", proven);
    drop(stage2_entered);
    stats.stage1_seconds = stage1_done;
    stats.stage2_seconds = started.elapsed().as_secs_f64() - stage1_done;
    let mut objective = evaluate::check(problem, &assignment).map_err(SolveError::Solution)?;
    // Never worse than booking in turn: whatever stopped the search, the
    // answer is the best allocation found, the greedy baseline included.
    if let Ok(greedy_objective) = evaluate::check(problem, &greedy_assignment)
        && greedy_objective < objective
    {
        assignment = greedy_assignment.clone();
        objective = greedy_objective;
        stats.greedy_kept = true;
    }
    let bound = fixed_cost + sub_bound.iter().sum::<i64>();
    let status = if proven && objective <= bound {
        Status::Optimal
    } else {
        Status::Feasible
    };

    span.record("status", status.as_str());
    span.record("objective", objective);
    span.record("bound", bound.min(objective));
    let summary = evaluate::summarise(problem, &assignment);
    let greedy_summary = evaluate::summarise(problem, &greedy_assignment);
    let (allocations, unallocated) = evaluate::allocation_lists(problem, &assignment);
    Ok(Solution {
        status,
        objective,
        allocations,
        unallocated,
        stats: Stats {
            solve_seconds: started.elapsed().as_secs_f64(),
            referrals: problem.referrals.len(),
            slots: problem.slots.len(),
            bound: Some(bound.min(objective)),
            feasible_pairs: Some(results.iter().map(|r| r.feasible_pairs).sum()),
            solver: Some(stats),
            summary: Some(summary),
            greedy: Some(greedy_summary),
        },
    })
}

/// Whether the deadline (start of the solve, seconds allowed) has passed.
pub(crate) fn expired(deadline: Option<(Instant, f64)>) -> bool {
    deadline.is_some_and(|(start, limit)| start.elapsed().as_secs_f64() >= limit)
}

/// `sum(cost - unallocated)` of an allocation over one sub-problem's
/// referrals: what it adds to the objective beyond leaving them all unseen.
fn sub_value(problem: &Problem, sub: &Subproblem, assignment: &Assignment) -> i64 {
    sub.classes
        .iter()
        .flat_map(|c| &c.members)
        .filter_map(|&r| {
            let slot = &problem.slots[assignment[r]?];
            Some(problem.cost(r, slot.day, slot.clinician) - problem.unallocated_cost(r))
        })
        .sum()
}

/// The worker threads `threads` asks for (0: one per core).
pub(crate) fn thread_count(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// `f(0)`, ..., `f(n - 1)` on up to `threads` scoped threads, returned in
/// index order, so the outcome never depends on scheduling. An item whose
/// worker panicked is computed again on the calling thread.
pub(crate) fn parallel_map<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(usize) -> T + Sync,
) -> Vec<T> {
    let threads = threads.min(n);
    if threads <= 1 {
        return (0..n).map(f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<T>> = (0..n).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        done.push((i, f(i)));
                    }
                    done
                })
            })
            .collect();
        for worker in workers {
            if let Ok(done) = worker.join() {
                for (i, result) in done {
                    results[i] = Some(result);
                }
            }
        }
    });
    results
        .into_iter()
        .enumerate()
        .map(|(i, result)| result.unwrap_or_else(|| f(i)))
        .collect()
}

/// Solves every sub-problem's LP, in parallel; results keep sub-problem order so
/// the outcome does not depend on scheduling. Once `deadline` has passed, a
/// sub-problem not yet started is not solved and one under way stops at its
/// next safe point (see [`SubResult::cut_short`]).
fn solve_all(
    problem: &Problem,
    subs: &[Subproblem],
    greedy_assignment: Option<&Assignment>,
    options: &SolveOptions,
    deadline: Option<(Instant, f64)>,
) -> Result<Vec<SubResult>, SolveError> {
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(subs.len())
    .max(1);
    // Largest first, so one big sub-problem does not start last.
    let mut order: Vec<usize> = (0..subs.len()).collect();
    order.sort_by_key(|&k| std::cmp::Reverse(subs[k].classes.len()));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut slots: Vec<Option<Result<SubResult, SolveError>>> =
        (0..subs.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&k) = order.get(i) else { break };
                        let result = match options.engine {
                            Engine::Flow => Ok(relaxation::solve_flow(problem, &subs[k], deadline)),
                            Engine::Lp => match greedy_assignment {
                                Some(greedy) => {
                                    relaxation::solve_lp(problem, &subs[k], greedy, deadline)
                                }
                                None => relaxation::solve_lp(
                                    problem,
                                    &subs[k],
                                    &vec![None; problem.referrals.len()],
                                    deadline,
                                ),
                            },
                        };
                        done.push((k, result));
                    }
                    done
                })
            })
            .collect();
        for worker in workers {
            match worker.join() {
                Ok(done) => {
                    for (k, result) in done {
                        slots[k] = Some(result);
                    }
                }
                Err(_) => {
                    // A panic in a worker is a bug; report it as a solver failure
                    // for the sub-problems that have no result below.
                }
            }
        }
    });
    slots
        .into_iter()
        .enumerate()
        .map(|(k, slot)| {
            slot.unwrap_or_else(|| {
                Err(SolveError::Lp {
                    subproblem: subs[k].name(problem),
                    message: "worker thread panicked".to_owned(),
                })
            })
        })
        .collect()
}
