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
