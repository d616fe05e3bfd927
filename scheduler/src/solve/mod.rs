//! The exact solver: aggregated flow LPs per sub-problem on HiGHS, an integral
//! dual certificate, and a MIP only where patients' referrals clash.
//!
//! Stage 1 solves each (specialty, kind) sub-problem as a continuous LP over the
//! aggregated network of [`network`], without the patient-per-day rule. Columns
//! are generated: the LP starts with each class's arcs up to a little past the
//! date the greedy baseline found, and arcs are added while any has a negative
//! reduced cost. Optimality is then proven in exact integer arithmetic: the
//! matrix is totally unimodular, so HiGHS's basic duals are integers; we round
//! them, complete them into a dual-feasible solution over *all* arcs, and
//! compare its objective with the allocation's. Equal means optimal, whatever
//! floating-point noise HiGHS had.
//!
//! Stage 2 checks the patient-per-day rule, which stage 1 relaxed. If no patient
//! got two slots on one day, the relaxation's optimum is feasible and so optimal.
//! Otherwise the sub-problems touched by clashes are merged into components and
//! each is solved as a MIP (integer arcs only for multi-referral patients) with
//! patient-day rows added lazily. Arcs are fixed by reduced cost against an
//! upper bound from a repaired allocation, so the MIP stays small.

mod branch;
mod flow;
mod lp;
mod network;
mod split;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Instant;

use crate::error::SolveError;
use crate::evaluate::{self, Assignment};
use crate::greedy;
use crate::model::{Solution, SolverStats, Stats, Status};
use crate::validate::Problem;
use lp::{ArcSets, Duals, ModelRequest, PatientDay};
use network::{Arc, Hub, Subproblem};

/// Options of one solve.
#[derive(Debug, Clone, Default)]
pub struct SolveOptions {
    /// Stop after about this many seconds and return the best allocation found.
    pub time_limit: Option<f64>,
    /// Worker threads for independent sub-problems (0: available parallelism).
    pub threads: usize,
    /// How stage 1 solves each sub-problem's relaxation.
    pub engine: Engine,
}

/// Stage-1 algorithm. Both end with the same integral dual certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// The specialised min-cost flow of [`flow`] (fast; the default).
    #[default]
    Flow,
    /// HiGHS's simplex through good_lp, with column generation.
    Lp,
}

/// Everything stage 1 learned about one sub-problem.
#[derive(Debug)]
struct SubResult {
    flows: Vec<Vec<(Arc, i64)>>,
    /// Final cost-scaling prices (flow engine only), to warm-start re-solves.
    prices: Vec<i64>,
    duals: Duals,
    /// Completed class duals (see [`certify`]).
    class_dual: Vec<i64>,
    /// Proven lower bound on `sum(cost - unallocated)` over this sub-problem.
    bound: i64,
    proven: bool,
    lp_solves: usize,
    max_columns: usize,
}

/// Solves a validated problem exactly (or to the time limit).
pub fn solve(problem: &Problem, options: &SolveOptions) -> Result<Solution, SolveError> {
    let started = Instant::now();
    let deadline = options.time_limit.map(|limit| (started, limit));
    let greedy_assignment = greedy::greedy(problem);

    let subs = network::build(problem);
    // Cost scaling multiplies costs by the node count and moves prices by up to
    // node-count multiples of that; fall back to HiGHS where that could leave i64.
    let engine =
        if options.engine == Engine::Flow && subs.iter().all(|sub| flow::fits(problem, sub)) {
            Engine::Flow
        } else {
            Engine::Lp
        };
    let options = &SolveOptions {
        engine,
        ..options.clone()
    };
    let results = solve_all(problem, &subs, &greedy_assignment, options)?;
    let stage1_done = started.elapsed().as_secs_f64();

    let mut assignment: Assignment = vec![None; problem.referrals.len()];
    for (sub, result) in subs.iter().zip(&results) {
        split::place(problem, sub, &result.flows, &mut assignment)?;
    }

    let mut stats = SolverStats {
        subproblems: subs.len(),
        referral_classes: subs.iter().map(|s| s.classes.len()).sum(),
        slot_groups: subs.iter().map(|s| s.bins.len()).sum(),
        lp_solves: results.iter().map(|r| r.lp_solves).sum(),
        max_lp_columns: results.iter().map(|r| r.max_columns).max().unwrap_or(0),
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

    let clashes = conflicts(problem, &assignment);
    if !clashes.is_empty() && options.engine == Engine::Flow {
        stats.patient_day_conflicts = clashes.len();
        let base = results
            .iter()
            .map(|r| branch::SubSolution {
                placed: std::cell::OnceCell::new(),
                flows: r.flows.clone(),
                value: r
                    .flows
                    .iter()
                    .flatten()
                    .map(|(arc, units)| arc.cost * units)
                    .sum(),
                prices: r.prices.clone(),
                proven: r.proven,
            })
            .collect();
        let outcome = branch::resolve_clashes(problem, &subs, base, &assignment, deadline)?;
        assignment = outcome.assignment;
        proven &= outcome.proven;
        stats.branch_nodes = outcome.nodes;
        stats.flow_resolves = outcome.solves;
        // The search's bound covers every sub-problem at once.
        sub_bound = vec![0; subs.len()];
        if let Some(first) = sub_bound.first_mut() {
            *first = outcome.bound + unallocated_total.iter().sum::<i64>();
        }
    } else if !clashes.is_empty() {
        stats.patient_day_conflicts = clashes.len();
        let outcome = resolve_conflicts(
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
            // A component's bound replaces the sum of its members' LP bounds.
            for &k in &members {
                sub_bound[k] = 0;
            }
            if let Some(&first) = members.first() {
                sub_bound[first] = bound;
            }
        }
    }
    stats.stage1_seconds = stage1_done;
    stats.stage2_seconds = started.elapsed().as_secs_f64() - stage1_done;
    let objective = evaluate::check(problem, &assignment).map_err(SolveError::Solution)?;
    let bound = fixed_cost + sub_bound.iter().sum::<i64>();
    let status = if proven && objective <= bound {
        Status::Optimal
    } else {
        Status::Feasible
    };

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
            feasible_pairs: Some(subs.iter().map(|s| s.feasible_pairs(problem)).sum()),
            solver: Some(stats),
            summary: Some(summary),
            greedy: Some(greedy_summary),
        },
    })
}

/// Solves every sub-problem's LP, in parallel; results keep sub-problem order so
/// the outcome does not depend on scheduling.
fn solve_all(
    problem: &Problem,
    subs: &[Subproblem],
    greedy_assignment: &Assignment,
    options: &SolveOptions,
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
                            Engine::Flow => {
                                Ok(solve_sub_flow(problem, &subs[k], greedy_assignment))
                            }
                            Engine::Lp => solve_sub(problem, &subs[k], greedy_assignment),
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

/// Columns a class starts with: its arcs up to a week past the latest date the
/// greedy baseline gave any member (all arcs if greedy left one unallocated).
fn initial_arcs(
    problem: &Problem,
    sub: &Subproblem,
    mut all: Vec<Arc>,
    members: &[usize],
    greedy_assignment: &Assignment,
) -> Vec<Arc> {
    let mut latest = i32::MIN;
    for &r in members {
        match greedy_assignment[r] {
            Some(s) => latest = latest.max(problem.slots[s].day),
            None => return all,
        }
    }
    let limit = latest + 7;
    let within = all.partition_point(|a| sub.dates[a.date as usize] <= limit);
    all.truncate(within.max(6));
    all
}

fn solve_sub(
    problem: &Problem,
    sub: &Subproblem,
    greedy_assignment: &Assignment,
) -> Result<SubResult, SolveError> {
    let mut arcs: Vec<Vec<Arc>> = sub
        .classes
        .iter()
        .map(|class| {
            initial_arcs(
                problem,
                sub,
                sub.arcs(problem, class),
                &class.members,
                greedy_assignment,
            )
        })
        .collect();
    let mut lp_solves = 0;
    let mut max_columns = 0;
    loop {
        let arc_sets: ArcSets = vec![arcs];
        let outcome = lp::solve_model(&ModelRequest {
            problem,
            subs: vec![sub],
            arcs: &arc_sets,
            patient_days: &[],
            integer: false,
            all_integer: false,
            time_limit: None,
        })?;
        let [offered]: [Vec<Vec<Arc>>; 1] = arc_sets.try_into().unwrap_or_else(|_| [Vec::new()]);
        arcs = offered;
        lp_solves += 1;
        max_columns = max_columns.max(outcome.columns);
        let flows = outcome.flows.into_iter().next().unwrap_or_default();
        let duals = outcome.duals.into_iter().next().unwrap_or_default();

        let value: i64 = flows
            .iter()
            .flatten()
            .map(|(arc, units)| arc.cost * units)
            .sum();
        let (bound, class_dual) = certify(problem, sub, &duals);
        if bound >= value && outcome.proven {
            return Ok(SubResult {
                prices: Vec::new(),
                flows,
                duals,
                class_dual,
                bound,
                proven: true,
                lp_solves,
                max_columns,
            });
        }
        // Price every arc against the LP's own duals; add the improving ones.
        let mut added = 0;
        for (c, class) in sub.classes.iter().enumerate() {
            let offered: HashSet<Hub> = arcs[c].iter().map(|a| a.hub).collect();
            for arc in sub.arcs(problem, class) {
                if !offered.contains(&arc.hub) && reduced_cost(&arc, duals.class[c], &duals) < 0 {
                    arcs[c].push(arc);
                    added += 1;
                }
            }
            arcs[c].sort_by_key(|a| (a.date, a.hub));
        }
        if added == 0 || lp_solves >= 50 {
            // No improving column yet no certificate: HiGHS's answer was not a
            // clean vertex. Keep the allocation, but claim no proof.
            return Ok(SubResult {
                prices: Vec::new(),
                flows,
                duals,
                class_dual,
                bound,
                proven: false,
                lp_solves,
                max_columns,
            });
        }
    }
}

/// Stage 1 with the specialised flow, with column generation: start from the
/// arcs near the greedy dates, certify over all arcs, add the arcs the
/// certificate's duals price as improving, and repeat until the bound meets the
/// flow's value. Fewer arcs make each flow several times cheaper, and the
/// certificate, not the restriction, is what proves optimality.
fn solve_sub_flow(
    problem: &Problem,
    sub: &Subproblem,
    greedy_assignment: &Assignment,
) -> SubResult {
    // Measured: starting from the greedy neighbourhood (as the LP engine does)
    // costs more rounds than it saves, so the flow starts with every arc and
    // the loop below normally runs once.
    let _ = greedy_assignment;
    let mut offered: Vec<Vec<Arc>> = sub
        .classes
        .iter()
        .map(|class| sub.arcs(problem, class))
        .collect();
    let mut rounds = 0;
    loop {
        rounds += 1;
        let outcome = flow::min_cost_flow(problem, sub, &offered, None);
        let value: i64 = outcome
            .flows
            .iter()
            .flatten()
            .map(|(arc, units)| arc.cost * units)
            .sum();
        let (bound, class_dual) = certify(problem, sub, &outcome.duals);
        let mut added = 0;
        if bound < value {
            for (c, class) in sub.classes.iter().enumerate() {
                let have: HashSet<Hub> = offered[c].iter().map(|a| a.hub).collect();
                let flow_dual = flow_class_dual(&offered[c], &outcome.duals);
                for arc in sub.arcs(problem, class) {
                    if !have.contains(&arc.hub) && reduced_cost(&arc, flow_dual, &outcome.duals) < 0
                    {
                        offered[c].push(arc);
                        added += 1;
                    }
                }
                offered[c].sort_by_key(|a| (a.date, a.hub));
            }
        }
        if bound >= value || added == 0 || rounds >= 20 {
            return SubResult {
                prices: outcome.prices,
                flows: outcome.flows,
                duals: outcome.duals,
                class_dual,
                bound,
                proven: bound >= value,
                lp_solves: rounds,
                max_columns: offered.iter().map(Vec::len).sum(),
            };
        }
    }
}

/// The class dual the restricted flow implies: the cheapest reduced cost over
/// the offered arcs (capped at 0, the unallocated arc).
fn flow_class_dual(offered: &[Arc], duals: &Duals) -> i64 {
    offered
        .iter()
        .map(|a| reduced_cost(a, 0, duals))
        .min()
        .unwrap_or(0)
        .min(0)
}

pub(crate) fn reduced_cost(arc: &Arc, class_dual: i64, duals: &Duals) -> i64 {
    let mut rc = arc.cost - class_dual - duals.date[arc.date as usize];
    if let Hub::Bin(b) = arc.hub {
        rc -= duals.bin[b as usize];
    }
    rc
}

/// Turns rounded row duals into an exact lower bound. Date and bin duals are
/// kept (they are <= 0, as `<=` rows require); each class dual is set to the
/// largest value keeping every arc's reduced cost non-negative, capped at 0.
/// That is dual feasible by construction over all arcs, generated or not, so
/// its objective bounds the LP, and with it the integer problem, from below.
fn certify(problem: &Problem, sub: &Subproblem, duals: &Duals) -> (i64, Vec<i64>) {
    let arcs: Vec<Vec<Arc>> = sub
        .classes
        .iter()
        .map(|class| sub.arcs(problem, class))
        .collect();
    certify_arcs(sub, &arcs, duals)
}

/// [`certify`] over an explicit arc set per class.
pub(crate) fn certify_arcs(sub: &Subproblem, arcs: &[Vec<Arc>], duals: &Duals) -> (i64, Vec<i64>) {
    let mut bound: i64 = 0;
    let mut class_dual = Vec::with_capacity(sub.classes.len());
    for (class, arcs) in sub.classes.iter().zip(arcs) {
        let u = arcs
            .iter()
            .map(|a| reduced_cost(a, 0, duals))
            .min()
            .unwrap_or(0)
            .min(0);
        class_dual.push(u);
        bound += u * class.members.len() as i64;
    }
    bound += sub
        .date_capacity
        .iter()
        .zip(&duals.date)
        .map(|(c, d)| c * d)
        .sum::<i64>();
    bound += sub
        .bins
        .iter()
        .zip(&duals.bin)
        .map(|(b, d)| b.capacity * d)
        .sum::<i64>();
    (bound, class_dual)
}

/// Patient-days holding more than one referral: (patient, day) -> referrals.
pub(crate) fn conflicts(
    problem: &Problem,
    assignment: &Assignment,
) -> BTreeMap<(u32, i32), Vec<usize>> {
    let mut seen: HashMap<(u32, i32), Vec<usize>> = HashMap::new();
    for (r, slot) in assignment.iter().enumerate() {
        if let Some(s) = *slot {
            seen.entry((problem.referrals[r].patient, problem.slots[s].day))
                .or_default()
                .push(r);
        }
    }
    seen.into_iter().filter(|(_, rs)| rs.len() > 1).collect()
}

#[derive(Debug)]
struct ConflictOutcome {
    proven: bool,
    mip_solves: usize,
    /// (sub-problems of a component, proven lower bound on its total cost).
    component_bounds: Vec<(Vec<usize>, i64)>,
}

#[allow(clippy::too_many_arguments)]
fn resolve_conflicts(
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
            let outcome = flow::min_cost_flow(problem, sub, &offered, None);
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

/// A feasible allocation for a component, for its upper bound: each clash keeps
/// its lowest referral index; the others take the cheapest free slot that breaks
/// no rule, or stay unallocated.
pub(crate) fn repair(
    problem: &Problem,
    subs: &[Subproblem],
    members: &[usize],
    assignment: &Assignment,
) -> Assignment {
    let mut repaired = assignment.clone();
    let mut used = vec![0_i64; problem.slots.len()];
    let mut patient_days: HashSet<(u32, i32)> = HashSet::new();
    let mut bumped = Vec::new();
    for (r, slot) in repaired.iter_mut().enumerate() {
        if let Some(s) = *slot {
            if patient_days.insert((problem.referrals[r].patient, problem.slots[s].day)) {
                used[s] += 1;
            } else {
                *slot = None;
                bumped.push(r);
            }
        }
    }
    let index: HashMap<(u32, crate::model::Kind), usize> = members
        .iter()
        .map(|&k| ((subs[k].specialty, subs[k].kind), k))
        .collect();
    for r in bumped {
        let referral = &problem.referrals[r];
        let Some(&k) = index.get(&(referral.specialty, referral.kind)) else {
            continue;
        };
        let mut best: Option<(i64, usize)> = None;
        for bin in &subs[k].bins {
            for &s in &bin.slots {
                let day = problem.slots[s].day;
                if used[s] < problem.slots[s].capacity
                    && problem.feasible(r, s)
                    && !patient_days.contains(&(referral.patient, day))
                {
                    let cost = problem.cost(r, day, problem.slots[s].clinician);
                    if best.is_none_or(|(c, _)| cost < c) {
                        best = Some((cost, s));
                    }
                }
            }
        }
        if let Some((cost, s)) = best.filter(|&(cost, _)| cost < problem.unallocated_cost(r)) {
            let _ = cost;
            used[s] += 1;
            patient_days.insert((referral.patient, problem.slots[s].day));
            repaired[r] = Some(s);
        }
    }
    repaired
}
