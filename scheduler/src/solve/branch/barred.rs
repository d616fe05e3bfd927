//! A sub-problem's relaxation with some (class, day) pairs barred: re-solved
//! warm by the min-cost flow and certified over the arcs left, cached per set of
//! bars, and the clash penalty that strengthens a node's bound.

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

/// Barred (class, day) pairs of one sub-problem.
pub(crate) type Bars = BTreeSet<(usize, i32)>;

/// Re-solved relaxations, by sub-problem and bars: branches share many.
pub(crate) type Cache = HashMap<(usize, Bars), Rc<SubSolution>>;

/// The cheapest way to resolve one clash among sub-problems still at their
/// base solution: the least increase in relaxation value over its branches.
/// Any allocation resolving it pays at least this on those sub-problems, as
/// barring only ever raises a flow's optimum. Returns (penalty, all
/// certificates held, re-solves done).
#[allow(clippy::too_many_arguments)]
pub(crate) fn penalty(
    problem: &Problem,
    subs: &[Subproblem],
    base: &[Rc<SubSolution>],
    home: &HashMap<usize, (usize, usize)>,
    cache: &mut Cache,
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
    let outcome = flow::min_cost_flow(sub, &offered, (!warm.is_empty()).then_some(warm));
    // The certificate must hold for the barred network: check it over the
    // offered arcs only (barred arcs are absent from this branch's problem).
    let (bound, _) = certify_arcs(sub, &offered, &outcome.duals);
    let proven = bound >= flow_value(&outcome.flows);
    SubSolution::new(outcome.flows, outcome.prices, proven)
}
