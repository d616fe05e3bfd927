//! The integral dual certificate: row duals, reduced costs, and the exact lower
//! bound that proves a sub-problem's relaxation optimal.
//!
//! The relaxation is the LP `min sum(cost * x)` over the arcs, `x >= 0`, with one
//! row per class (`<=` its size), per date (`<=` its capacity, every arc into
//! the date) and per bin (`<=` its capacity, direct arcs only). Its matrix is
//! totally unimodular, so optimal duals can be taken integral. Given date and
//! bin duals `<= 0`, [`certify`] completes them into a dual-feasible solution,
//! so its objective, computed in `i64`, is a lower bound by weak duality; a
//! flow is proven optimal exactly when its value reaches that bound.

use super::network::{Arc, Hub, Subproblem};
use crate::validate::Problem;

/// Integral row duals: from the flow's potentials, or HiGHS's duals rounded (a
/// totally unimodular basis has integral duals). Date and bin duals are `<= 0`,
/// as `<=` rows require when minimising.
#[derive(Debug, Clone, Default)]
pub(crate) struct Duals {
    pub class: Vec<i64>,
    pub date: Vec<i64>,
    pub bin: Vec<i64>,
}

/// The relaxation's objective, `sum(cost - unallocated)`, of a flow.
pub(crate) fn flow_value(flows: &[Vec<(Arc, i64)>]) -> i64 {
    flows
        .iter()
        .flatten()
        .map(|(arc, units)| arc.cost * units)
        .sum()
}

/// An arc's cost less the duals of the rows it enters: its class's, its
/// date's, and its bin's for a direct arc.
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
pub(crate) fn certify(problem: &Problem, sub: &Subproblem, duals: &Duals) -> (i64, Vec<i64>) {
    let arcs: Vec<Vec<Arc>> = sub
        .classes
        .iter()
        .map(|class| sub.arcs(problem, class))
        .collect();
    certify_arcs(sub, &arcs, duals)
}

/// [`certify`] over an explicit arc set per class.
pub(crate) fn certify_arcs<A: AsRef<[Arc]>>(
    sub: &Subproblem,
    arcs: &[A],
    duals: &Duals,
) -> (i64, Vec<i64>) {
    let mut bound: i64 = 0;
    let mut class_dual = Vec::with_capacity(sub.classes.len());
    for (class, arcs) in sub.classes.iter().zip(arcs) {
        let u = arcs
            .as_ref()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Priority;
    use crate::solve::testkit::{self, network, referral, slot, to_bin, to_date};
    use crate::solve::{flow, network};

    /// One place and two single referrals gaining 10 and 7: the optimum gives
    /// the place to the first, value -10.
    fn one_place_two_bidders() -> (Subproblem, Vec<Vec<Arc>>) {
        let sub = network(1, &[(0, 1)], &[1, 1]);
        (sub, vec![vec![to_date(0, -10)], vec![to_date(0, -7)]])
    }

    fn date_dual(alpha: i64) -> Duals {
        Duals {
            class: vec![0, 0],
            date: vec![alpha],
            bin: vec![0],
        }
    }

    #[test]
    fn reduced_cost_subtracts_the_duals_of_the_rows_an_arc_enters() {
        let sub = network(2, &[(0, 1), (1, 1)], &[1]);
        let duals = Duals {
            class: vec![0],
            date: vec![-3, -5],
            bin: vec![-7, -11],
        };
        // A date-hub arc enters its class and date rows: -20 + 2 + 5.
        assert_eq!(reduced_cost(&to_date(1, -20), -2, &duals), -13);
        // A direct arc also enters its bin's row (bin 1 is on date 1): -13 + 11.
        assert_eq!(reduced_cost(&to_bin(&sub, 1, -20), -2, &duals), -2);
    }

    #[test]
    fn a_correct_dual_certifies_the_optimum_exactly() {
        let (sub, arcs) = one_place_two_bidders();
        // The place is worth -8: class duals min(0, -10 + 8) = -2 and
        // min(0, -7 + 8) = 0, so the bound is -2 + 0 - 8 = -10, the optimum.
        assert_eq!(
            certify_arcs(&sub, &arcs, &date_dual(-8)),
            (-10, vec![-2, 0])
        );
        // Any price between the two gains is an optimal dual.
        for alpha in -10..=-7 {
            assert_eq!(certify_arcs(&sub, &arcs, &date_dual(alpha)).0, -10);
        }
    }

    #[test]
    fn a_wrong_dual_bounds_strictly_below_the_optimum() {
        let (sub, arcs) = one_place_two_bidders();
        // Free place: both classes keep their whole gain, -10 - 7 + 0.
        assert_eq!(certify_arcs(&sub, &arcs, &date_dual(0)).0, -17);
        // Too cheap: -5 - 2 - 5. Too dear: 0 + 0 - 12.
        assert_eq!(certify_arcs(&sub, &arcs, &date_dual(-5)).0, -12);
        assert_eq!(certify_arcs(&sub, &arcs, &date_dual(-12)).0, -12);
        // A bin dual with no direct arc to offset it only lowers the bound.
        let mut duals = date_dual(-8);
        duals.bin[0] = -3;
        assert_eq!(certify_arcs(&sub, &arcs, &duals).0, -13);
        // Every dual is a lower bound (weak duality); only the right ones reach
        // the optimum, and none reaches the -7 of giving the place to the
        // second referral, so that allocation can never be certified.
        for alpha in -30..=0 {
            let bound = certify_arcs(&sub, &arcs, &date_dual(alpha)).0;
            assert!(bound <= -10, "alpha {alpha}: {bound}");
            assert_eq!(bound == -10, (-10..=-7).contains(&alpha), "alpha {alpha}");
        }
    }

    #[test]
    fn duals_of_a_restricted_flow_do_not_certify_arcs_it_never_saw() {
        let (sub, all) = one_place_two_bidders();
        // Withhold the first referral's arc: the flow gives the place to the
        // second, optimal for what it saw but not for the network.
        let offered = vec![Vec::new(), all[1].clone()];
        let outcome = flow::min_cost_flow(&sub, &offered, None);
        let value = flow_value(&outcome.flows);
        assert_eq!(value, -7);
        assert_eq!(certify_arcs(&sub, &offered, &outcome.duals).0, -7);
        let (bound, _) = certify_arcs(&sub, &all, &outcome.duals);
        assert!(bound <= -10, "{bound}");
    }

    #[test]
    fn certify_prices_every_arc_of_the_problem_not_only_the_offered_ones() {
        // One routine referral that has waited 10 days at day 0; places on
        // days 1 and 3. Arc costs are 1·w² minus the unallocated cost
        // 1·17² + 1000 (seen the day after the horizon, day 7).
        let problem = testkit::problem(
            vec![
                slot("s1", "cardiology", "c1", 1, 1),
                slot("s3", "cardiology", "c1", 3, 1),
            ],
            vec![referral("r1", "p1", "cardiology", Priority::Routine, 10)],
        );
        let subs = network::build(&problem, 1);
        let sub = &subs[0];
        let all = sub.arcs(&problem, &sub.classes[0]);
        assert_eq!(
            all.iter().map(|a| a.cost).collect::<Vec<_>>(),
            vec![121 - 1289, 169 - 1289]
        );
        let offered = vec![vec![all[1]]];
        let outcome = flow::min_cost_flow(sub, &offered, None);
        let value = flow_value(&outcome.flows);
        assert_eq!(value, 169 - 1289);
        assert_eq!(certify_arcs(sub, &offered, &outcome.duals).0, value);
        let (bound, class_dual) = certify(&problem, sub, &outcome.duals);
        assert!(bound <= 121 - 1289, "{bound}");
        assert!(class_dual[0] <= 121 - 1289);
    }
}
