//! A sub-problem's relaxation with some (class, day) pairs barred: re-solved
//! warm by the min-cost flow and certified over the arcs left, cached per set of
//! bars, and the clash penalty that strengthens a node's bound.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

use crate::error::SolveError;
use crate::solve::certificate::{Duals, certify_arcs, flow_value};
use crate::solve::network::{Arc, Subproblem};
use crate::solve::{flow, split};
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
    /// The certificate's row duals and completed class duals, when kept
    /// (stage 1's solutions): they price arcs for the LP of a dense component.
    pub duals: Option<(Duals, Vec<i64>)>,
}

impl SubSolution {
    /// A relaxation's flow with its value; `proven` says whether its
    /// certificate held.
    pub(crate) fn new(flows: Vec<Vec<(Arc, i64)>>, prices: Vec<i64>, proven: bool) -> Self {
        SubSolution {
            value: flow_value(&flows),
            flows,
            prices,
            proven,
            placed: std::cell::OnceCell::new(),
            duals: None,
        }
    }

    /// The same solution, keeping its certificate's duals.
    pub(crate) fn with_duals(mut self, duals: Duals, class_dual: Vec<i64>) -> Self {
        self.duals = Some((duals, class_dual));
        self
    }

    pub(crate) fn placements(
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

/// One sub-problem's flow: `(arc, units)` per class.
type Flows = Vec<Vec<(Arc, i64)>>;

/// Barred (class, day) pairs of one sub-problem.
pub(crate) type Bars = BTreeSet<(usize, i32)>;

/// Re-solved relaxations, by sub-problem, then bars: branches share many
/// (nested so a look-up borrows the bars instead of cloning them).
pub(crate) type Cache = HashMap<usize, HashMap<Bars, Rc<SubSolution>>>;

/// One re-solve to do: sub-problem, its bars, and the solution to warm-start
/// from (a solution of the same sub-problem under a subset of the bars).
pub(crate) struct Job {
    pub k: usize,
    pub bars: Bars,
    pub from: Rc<SubSolution>,
}

/// Re-solves under bars for every search of a solve: one cache of re-solved
/// relaxations and one of each sub-problem's arcs, shared by all components
/// (a component searched again after growing finds its re-solves done), and
/// batches of re-solves run on the worker threads.
pub(crate) struct Resolver<'a> {
    problem: &'a Problem,
    subs: &'a [Subproblem],
    threads: usize,
    pub cache: Cache,
    arcs: Vec<std::sync::OnceLock<Vec<Vec<Arc>>>>,
    /// Re-solves done.
    pub solves: usize,
    /// Whether every re-solve's certificate held.
    pub proven: bool,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(problem: &'a Problem, subs: &'a [Subproblem], threads: usize) -> Self {
        Resolver {
            problem,
            subs,
            threads,
            cache: HashMap::new(),
            arcs: subs.iter().map(|_| std::sync::OnceLock::new()).collect(),
            solves: 0,
            proven: true,
        }
    }

    fn arcs(&self, k: usize) -> &[Vec<Arc>] {
        self.arcs[k].get_or_init(|| {
            let sub = &self.subs[k];
            sub.classes
                .iter()
                .map(|class| sub.arcs(self.problem, class))
                .collect()
        })
    }

    /// Solves every job not cached yet, in parallel; results are cached in
    /// job order, so which thread did what never shows.
    pub(crate) fn run(&mut self, jobs: Vec<Job>) {
        let mut todo: Vec<Job> = Vec::new();
        for job in jobs {
            let cached = self
                .cache
                .get(&job.k)
                .is_some_and(|m| m.contains_key(&job.bars));
            if !cached && !todo.iter().any(|t| t.k == job.k && t.bars == job.bars) {
                todo.push(job);
            }
        }
        for job in &todo {
            let _ = self.arcs(job.k);
        }
        let arcs: Vec<&[Vec<Arc>]> = todo
            .iter()
            .map(|job| self.arcs[job.k].get().map_or(&[][..], Vec::as_slice))
            .collect();
        // Only plain data crosses threads (a `SubSolution` caches its split
        // in a cell, so it is not `Sync`).
        let warm: Vec<(&[i64], &Flows)> = todo
            .iter()
            .map(|job| (job.from.prices.as_slice(), &job.from.flows))
            .collect();
        let what: Vec<(&Subproblem, &Bars)> = todo
            .iter()
            .map(|job| (&self.subs[job.k], &job.bars))
            .collect();
        let solved = crate::solve::parallel_map(todo.len(), self.threads, |i| {
            let (prices, flows) = warm[i];
            resolve(what[i].0, arcs[i], what[i].1, prices, flows)
        });
        for (job, solution) in todo.into_iter().zip(solved) {
            self.solves += 1;
            self.proven &= solution.proven;
            self.cache
                .entry(job.k)
                .or_default()
                .insert(job.bars, Rc::new(solution));
        }
    }

    /// The cached re-solve of sub-problem `k` under `bars` (run it first).
    pub(crate) fn get(&self, k: usize, bars: &Bars) -> Option<Rc<SubSolution>> {
        self.cache.get(&k).and_then(|m| m.get(bars)).cloned()
    }
}

/// The bars of each branch of a clash on `day` among `referrals`: branch
/// `keep` bars every referral but the kept one from the day.
pub(crate) fn branch_bars(
    home: &HashMap<usize, (usize, usize)>,
    day: i32,
    referrals: &[usize],
    keep: usize,
) -> BTreeMap<usize, Bars> {
    let mut bars: BTreeMap<usize, Bars> = BTreeMap::new();
    for (j, r) in referrals.iter().enumerate() {
        if j != keep
            && let Some(&(k, c)) = home.get(r)
        {
            bars.entry(k).or_default().insert((c, day));
        }
    }
    bars
}

/// The re-solves [`penalty`] needs for one clash among sub-problems still at
/// their base solution.
pub(crate) fn penalty_jobs(
    base: &[Rc<SubSolution>],
    home: &HashMap<usize, (usize, usize)>,
    day: i32,
    referrals: &[usize],
) -> Vec<Job> {
    (0..referrals.len())
        .flat_map(|keep| branch_bars(home, day, referrals, keep))
        .map(|(k, bars)| Job {
            k,
            bars,
            from: base[k].clone(),
        })
        .collect()
}

/// The cheapest way to resolve one clash among sub-problems still at their
/// base solution: the least increase in relaxation value over its branches.
/// Any allocation resolving it pays at least this on those sub-problems, as
/// barring only ever raises a flow's optimum. Its re-solves
/// ([`penalty_jobs`]) must have been run.
pub(crate) fn penalty(
    resolver: &Resolver<'_>,
    base: &[Rc<SubSolution>],
    home: &HashMap<usize, (usize, usize)>,
    day: i32,
    referrals: &[usize],
) -> i64 {
    let mut best = i64::MAX;
    for keep in 0..referrals.len() {
        let mut delta = 0;
        for (k, bars) in branch_bars(home, day, referrals, keep) {
            match resolver.get(k, &bars) {
                Some(solution) => delta += solution.value - base[k].value,
                // Not solved: claim nothing for this clash.
                None => return 0,
            }
        }
        best = best.min(delta);
    }
    best.max(0)
}

/// Solves a sub-problem's relaxation with some (class, day) pairs barred,
/// over its arcs `all`, warm from a solution of the same sub-problem under a
/// subset of these bars: its final `prices` and its `flows` (restored first;
/// see [`flow::min_cost_flow_from`]).
pub(crate) fn resolve(
    sub: &Subproblem,
    all: &[Vec<Arc>],
    bars: &Bars,
    prices: &[i64],
    flows: &[Vec<(Arc, i64)>],
) -> SubSolution {
    // Only barred classes need their own arc list; the rest borrow theirs.
    let offered: Vec<Cow<'_, [Arc]>> = all
        .iter()
        .enumerate()
        .map(|(c, arcs)| {
            if bars.range((c, i32::MIN)..=(c, i32::MAX)).next().is_none() {
                Cow::Borrowed(arcs.as_slice())
            } else {
                Cow::Owned(
                    arcs.iter()
                        .filter(|a| !bars.contains(&(c, sub.dates[a.date as usize])))
                        .copied()
                        .collect(),
                )
            }
        })
        .collect();
    let outcome = if prices.is_empty() {
        flow::min_cost_flow(sub, &offered, None)
    } else {
        flow::min_cost_flow_from(sub, &offered, prices, flows)
    };
    // The certificate must hold for the barred network: check it over the
    // offered arcs only (barred arcs are absent from this branch's problem).
    let (bound, _) = certify_arcs(sub, &offered, &outcome.duals);
    let proven = bound >= flow_value(&outcome.flows);
    SubSolution::new(outcome.flows, outcome.prices, proven)
}
