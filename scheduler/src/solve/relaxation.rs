//! Stage 1: each sub-problem's relaxation (no patient-per-day rule) solved to
//! a certified optimum, by the min-cost flow or by HiGHS's simplex, with column
//! generation priced by the certificate's reduced costs.

use std::collections::HashSet;
use std::time::Instant;

use super::certificate::{self, Duals, certify, certify_arcs, reduced_cost};
use super::flow;
use super::lp::{self, ArcSets, ModelRequest};
use super::network::{Arc, Hub, Subproblem};
use crate::error::SolveError;
use crate::evaluate::Assignment;
use crate::validate::Problem;

/// Everything stage 1 learned about one sub-problem.
#[derive(Debug)]
pub(crate) struct SubResult {
    pub flows: Vec<Vec<(Arc, i64)>>,
    /// Final cost-scaling prices (flow engine only), to warm-start re-solves.
    pub prices: Vec<i64>,
    pub duals: Duals,
    /// Completed class duals (see [`certify`]).
    pub class_dual: Vec<i64>,
    /// Proven lower bound on `sum(cost - unallocated)` over this sub-problem.
    pub bound: i64,
    pub proven: bool,
    /// Relaxation solves, column-generation rounds included.
    pub lp_solves: usize,
    /// Most arcs (LP columns) offered in one solve.
    pub max_columns: usize,
    /// Whether the deadline stopped the solve before its optimum: `flows` is
    /// then a feasible flow (empty, everyone unallocated, if nothing ran) and
    /// `bound` a valid bound from whatever duals there were, proving nothing.
    pub cut_short: bool,
    /// Referral-slot pairs satisfying every rule (for `stats`).
    pub feasible_pairs: u64,
}

impl SubResult {
    /// The result of a sub-problem the deadline left unsolved, over every
    /// class's arcs `all`: nobody allocated, and [`per_referral_bound`].
    fn unsolved<A: AsRef<[Arc]>>(problem: &Problem, sub: &Subproblem, all: &[A]) -> Self {
        let (duals, bound, class_dual) = per_referral_bound(sub, all);
        SubResult {
            flows: vec![Vec::new(); sub.classes.len()],
            prices: Vec::new(),
            duals,
            class_dual,
            bound,
            proven: false,
            lp_solves: 0,
            max_columns: 0,
            cut_short: true,
            feasible_pairs: sub.feasible_pairs_over(problem, all),
        }
    }
}

/// The bound of all-zero row duals over every class's arcs `all`: each
/// referral's cheapest arc, or staying unallocated if that is cheaper. Valid
/// whatever the flow (the duals are feasible), if weak; what a deadline leaves
/// when no better duals were found.
fn per_referral_bound<A: AsRef<[Arc]>>(sub: &Subproblem, all: &[A]) -> (Duals, i64, Vec<i64>) {
    let duals = Duals {
        class: vec![0; sub.classes.len()],
        date: vec![0; sub.dates.len()],
        bin: vec![0; sub.bins.len()],
    };
    let (bound, class_dual) = certify_arcs(sub, all, &duals);
    (duals, bound, class_dual)
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

/// Stage 1 on HiGHS's simplex, with column generation: start from the arcs near
/// the greedy dates, price every arc against the LP's own duals, add the
/// improving ones, and repeat until the certificate meets the LP's value.
pub(crate) fn solve_lp(
    problem: &Problem,
    sub: &Subproblem,
    greedy_assignment: &Assignment,
    deadline: Option<(Instant, f64)>,
) -> Result<SubResult, SolveError> {
    if super::expired(deadline) {
        let all: Vec<Vec<Arc>> = sub
            .classes
            .iter()
            .map(|class| sub.arcs(problem, class))
            .collect();
        return Ok(SubResult::unsolved(problem, sub, &all));
    }
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

        let value = certificate::flow_value(&flows);
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
                cut_short: false,
                feasible_pairs: sub.feasible_pairs(problem),
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
        let cut_short = super::expired(deadline);
        if added == 0 || lp_solves >= 50 || cut_short {
            // No improving column yet no certificate: HiGHS's answer was not a
            // clean vertex. Keep the allocation, but claim no proof. (Out of
            // time, the restricted LP's optimum is still a feasible flow, and
            // `certify` priced every arc, so its bound is valid.)
            return Ok(SubResult {
                prices: Vec::new(),
                flows,
                duals,
                class_dual,
                bound,
                proven: false,
                lp_solves,
                max_columns,
                cut_short,
                feasible_pairs: sub.feasible_pairs(problem),
            });
        }
    }
}

/// Stage 1 with the specialised flow, with column generation: start from the
/// arcs near the greedy dates, certify over all arcs, add the arcs the
/// certificate's duals price as improving, and repeat until the bound meets the
/// flow's value. Fewer arcs make each flow several times cheaper, and the
/// certificate, not the restriction, is what proves optimality.
///
/// Once `deadline` (start, seconds) has passed, the flow stops after its
/// current refine phase (or does not start) and the result is cut short:
/// a feasible flow and a valid, unproven bound.
pub(crate) fn solve_flow(
    problem: &Problem,
    sub: &Subproblem,
    deadline: Option<(Instant, f64)>,
) -> SubResult {
    // Measured: starting from the greedy neighbourhood (as the LP engine does)
    // costs more rounds than it saves, so the flow starts with every arc and
    // the loop below normally runs once.
    let mut offered: Vec<Vec<Arc>> = sub
        .classes
        .iter()
        .map(|class| sub.arcs(problem, class))
        .collect();
    if super::expired(deadline) {
        return SubResult::unsolved(problem, sub, &offered);
    }
    let feasible_pairs = sub.feasible_pairs_over(problem, &offered);
    let mut rounds = 0;
    loop {
        rounds += 1;
        let outcome = flow::min_cost_flow_until(sub, &offered, deadline);
        let value = certificate::flow_value(&outcome.flows);
        // `offered` holds every arc of every class (it starts with all of
        // them), so certifying over it is certifying over the network,
        // without generating the arcs again.
        let (mut bound, mut class_dual) = certify_arcs(sub, &offered, &outcome.duals);
        let mut duals = outcome.duals;
        if outcome.cut_short {
            // Prices from a coarse refine can bound worse than no prices.
            let (zero, trivial, trivial_class) = per_referral_bound(sub, &offered);
            if trivial > bound {
                (duals, bound, class_dual) = (zero, trivial, trivial_class);
            }
        }
        let mut added = 0;
        if bound < value && !outcome.cut_short {
            for (c, class) in sub.classes.iter().enumerate() {
                let have: HashSet<Hub> = offered[c].iter().map(|a| a.hub).collect();
                let flow_dual = flow_class_dual(&offered[c], &duals);
                for arc in sub.arcs(problem, class) {
                    if !have.contains(&arc.hub) && reduced_cost(&arc, flow_dual, &duals) < 0 {
                        offered[c].push(arc);
                        added += 1;
                    }
                }
                offered[c].sort_by_key(|a| (a.date, a.hub));
            }
        }
        // A certificate proves the flow optimal however it was reached, even
        // cut short; short of one, running out of time ends the rounds.
        let cut_short = bound < value && (outcome.cut_short || super::expired(deadline));
        if bound >= value || added == 0 || rounds >= 20 || cut_short {
            return SubResult {
                prices: outcome.prices,
                flows: outcome.flows,
                duals,
                class_dual,
                bound,
                proven: bound >= value,
                lp_solves: rounds,
                max_columns: offered.iter().map(Vec::len).sum(),
                cut_short,
                feasible_pairs,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::greedy::greedy;
    use crate::model::Priority;
    use crate::solve::network;
    use crate::solve::testkit::{brute_force, problem, problem_until, referral, slot};

    #[test]
    fn both_engines_prove_the_same_relaxation_optimum() {
        // Five places over two days for four referrals of different
        // priorities, one preferring a clinician: distinct patients, so the
        // relaxation is the whole problem and enumeration gives its optimum.
        let mut preferring = referral("r2", "p2", "cardiology", Priority::Routine, 50);
        preferring.preferred_clinician = Some("c2".to_owned());
        let problem = problem(
            vec![
                slot("s1", "cardiology", "c1", 1, 1),
                slot("s2", "cardiology", "c2", 1, 1),
                slot("s3", "cardiology", "c1", 2, 2),
                slot("s4", "cardiology", "c2", 5, 1),
            ],
            vec![
                referral("r1", "p1", "cardiology", Priority::Urgent, 20),
                preferring,
                referral("r3", "p3", "cardiology", Priority::Routine, 50),
                referral("r4", "p4", "cardiology", Priority::TwoWeekWait, 5),
                referral("r5", "p5", "cardiology", Priority::Routine, 400),
            ],
        );
        let subs = network::build(&problem, 1);
        assert_eq!(subs.len(), 1);
        let unallocated: i64 = (0..5).map(|r| problem.unallocated_cost(r)).sum();
        let optimum = brute_force(&problem) - unallocated;

        let flow = solve_flow(&problem, &subs[0], None);
        assert!(flow.proven);
        assert_eq!(certificate::flow_value(&flow.flows), optimum);
        assert_eq!(flow.bound, optimum);
        // Offered every arc from the start, the flow needs a single round.
        assert_eq!(flow.lp_solves, 1);

        let lp = solve_lp(&problem, &subs[0], &greedy(&problem), None).unwrap();
        assert!(lp.proven);
        assert_eq!(certificate::flow_value(&lp.flows), optimum);
        assert_eq!(lp.bound, optimum);
    }

    #[test]
    fn lp_column_generation_adds_the_arcs_the_greedy_neighbourhood_left_out() {
        // Eight identical urgent referrals and one routine one, one place a day
        // on days 0 to 9. Told that every referral was placed on day 0, the LP
        // starts with arcs up to day 7 only: eight places for nine referrals.
        // The certificate finds the later arcs improving, and the LP must add
        // them to reach the flow's optimum.
        let slots = (0..10).map(|d| slot(&format!("s{d}"), "cardiology", "c1", d, 1));
        let mut referrals: Vec<_> = (1..=8)
            .map(|i| {
                referral(
                    &format!("u{i}"),
                    &format!("p{i}"),
                    "cardiology",
                    Priority::Urgent,
                    20,
                )
            })
            .collect();
        referrals.push(referral("b", "p9", "cardiology", Priority::Routine, 20));
        let problem = problem_until(9, slots.collect(), referrals);
        let subs = network::build(&problem, 1);
        let sub = &subs[0];
        // Classes in id order: the routine referral "b", then the eight "u"s.
        assert_eq!(sub.classes.len(), 2);
        let routine = &sub.classes[0];
        assert_eq!(problem.referrals[routine.members[0]].id, "b");
        let day_zero = vec![Some(0); 9];
        let first = initial_arcs(
            &problem,
            sub,
            sub.arcs(&problem, routine),
            &routine.members,
            &day_zero,
        );
        assert_eq!(first.len(), 8);

        let flow = solve_flow(&problem, &subs[0], None);
        let lp = solve_lp(&problem, &subs[0], &day_zero, None).unwrap();
        assert!(flow.proven && lp.proven);
        assert!(lp.lp_solves > 1, "no column was generated");
        assert_eq!(
            certificate::flow_value(&lp.flows),
            certificate::flow_value(&flow.flows)
        );
        // Every referral is seen, the routine one (the cheapest wait) on day 8.
        assert_eq!(lp.flows[0].len(), 1);
        assert_eq!((lp.flows[0][0].0.date, lp.flows[0][0].1), (8, 1));
        let placed: i64 = lp.flows[1].iter().map(|(_, units)| units).sum();
        assert_eq!(placed, 8);
    }
}
