//! The LP engine's model: building and solving the flow model on HiGHS through
//! good_lp.
//!
//! One function serves both stages: the LP of a single sub-problem (continuous,
//! duals wanted, rounded to integers and checked by the certificate) and the MIP
//! of several coupled sub-problems (integer arcs for multi-referral patients,
//! patient-day rows).

use good_lp::solvers::highs::{HighsParallelType, HighsSolverType, highs};
use good_lp::{
    Expression, ProblemVariables, Solution, SolutionStatus, SolutionWithDual, SolverModel,
    Variable, constraint::ConstraintReference, solvers::DualValues, variable,
};

use super::certificate::Duals;
use super::network::{Arc, Hub, Subproblem};
use crate::error::SolveError;
use crate::validate::Problem;

/// The arcs offered to the model: `arcs[k][c]` for class `c` of sub-problem `k`.
pub(crate) type ArcSets = Vec<Vec<Vec<Arc>>>;

/// Integral flow on the arcs of each class: `(arc, units)`, positive units only.
pub(crate) type Flows = Vec<Vec<Vec<(Arc, i64)>>>;

#[derive(Debug)]
pub(crate) struct ModelOutcome {
    pub flows: Flows,
    /// Per sub-problem; only for LP solves.
    pub duals: Vec<Duals>,
    /// Row duals of `patient_days`, in request order (0 for a row with fewer
    /// than two terms); only for LP solves. Non-positive, as for `<=` rows,
    /// up to HiGHS's tolerances: the caller rounds them and proves its bound
    /// itself.
    pub patient_day_duals: Vec<f64>,
    /// False when HiGHS stopped on the time limit or left a fractional value.
    pub proven: bool,
    pub columns: usize,
}

/// A patient-per-day row: at most one unit over these (sub-problem, class) pairs
/// on this day.
#[derive(Debug, Clone)]
pub(crate) struct PatientDay {
    pub day: i32,
    pub classes: Vec<(usize, usize)>,
}

pub(crate) struct ModelRequest<'a> {
    pub problem: &'a Problem,
    pub subs: Vec<&'a Subproblem>,
    pub arcs: &'a ArcSets,
    pub patient_days: &'a [PatientDay],
    /// Integer variables for individual classes (the MIP stage).
    pub integer: bool,
    /// Integer variables for every arc: the fallback when a MIP returns a
    /// fractional continuous part.
    pub all_integer: bool,
    pub time_limit: Option<f64>,
}

/// Builds the model, solves it, and reads back flows (and duals for an LP).
pub(crate) fn solve_model(request: &ModelRequest<'_>) -> Result<ModelOutcome, SolveError> {
    let fail = |message: String| SolveError::Lp {
        subproblem: request
            .subs
            .iter()
            .map(|s| s.name(request.problem))
            .collect::<Vec<_>>()
            .join("+"),
        message,
    };
    let mip = request.integer || request.all_integer;
    let mut vars = ProblemVariables::new();
    let mut columns: Vec<Vec<Vec<Variable>>> = Vec::with_capacity(request.subs.len());
    let mut objective = Expression::with_capacity(0);
    let mut count = 0;
    for (k, sub) in request.subs.iter().enumerate() {
        let mut per_class = Vec::with_capacity(sub.classes.len());
        for (c, class) in sub.classes.iter().enumerate() {
            let integer = request.all_integer || (request.integer && class.individual);
            let mut vs = Vec::with_capacity(request.arcs[k][c].len());
            for arc in &request.arcs[k][c] {
                let definition = variable().min(0.0);
                let v = vars.add(if integer {
                    definition.integer()
                } else {
                    definition
                });
                objective.add_mul(arc.cost as f64, v);
                vs.push(v);
                count += 1;
            }
            per_class.push(vs);
        }
        columns.push(per_class);
    }

    if count == 0 {
        // HiGHS rejects a model without columns; nothing can be allocated.
        return Ok(ModelOutcome {
            flows: request
                .subs
                .iter()
                .map(|s| vec![Vec::new(); s.classes.len()])
                .collect(),
            duals: request
                .subs
                .iter()
                .map(|s| Duals {
                    class: vec![0; s.classes.len()],
                    date: vec![0; s.dates.len()],
                    bin: vec![0; s.bins.len()],
                })
                .collect(),
            patient_day_duals: vec![0.0; request.patient_days.len()],
            proven: true,
            columns: 0,
        });
    }
    let mut model = vars
        .minimise(objective)
        .using(highs)
        .set_solver(HighsSolverType::Simplex)
        .set_parallel(HighsParallelType::Off)
        .set_threads(1)
        .set_option("random_seed", 0);
    if mip {
        // Objectives are integers, so any gap below one proves optimality; the
        // default relative gap (1e-4) would stop early on large objectives.
        model = model
            .set_option("mip_rel_gap", 0.0)
            .set_option("mip_abs_gap", 0.5);
    }
    if let Some(limit) = request.time_limit {
        model = model.set_time_limit(limit.max(0.01));
    }

    let mut class_rows: Vec<Vec<Option<ConstraintReference>>> = Vec::new();
    let mut date_rows: Vec<Vec<Option<ConstraintReference>>> = Vec::new();
    let mut bin_rows: Vec<Vec<Option<ConstraintReference>>> = Vec::new();
    for (k, sub) in request.subs.iter().enumerate() {
        let mut date_expr: Vec<Expression> = vec![Expression::with_capacity(0); sub.dates.len()];
        let mut bin_expr: Vec<Expression> = vec![Expression::with_capacity(0); sub.bins.len()];
        let mut date_terms = vec![0_usize; sub.dates.len()];
        let mut bin_terms = vec![0_usize; sub.bins.len()];
        let mut rows = Vec::with_capacity(sub.classes.len());
        for (c, class) in sub.classes.iter().enumerate() {
            let mut expr = Expression::with_capacity(columns[k][c].len());
            for (arc, &v) in request.arcs[k][c].iter().zip(&columns[k][c]) {
                expr.add_mul(1.0, v);
                date_expr[arc.date as usize].add_mul(1.0, v);
                date_terms[arc.date as usize] += 1;
                if let Hub::Bin(b) = arc.hub {
                    bin_expr[b as usize].add_mul(1.0, v);
                    bin_terms[b as usize] += 1;
                }
            }
            let size = class.members.len() as f64;
            rows.push((!columns[k][c].is_empty()).then(|| model.add_constraint(expr.leq(size))));
        }
        class_rows.push(rows);
        date_rows.push(
            date_expr
                .into_iter()
                .zip(&sub.date_capacity)
                .zip(date_terms)
                .map(|((e, &cap), terms)| {
                    (terms > 0).then(|| model.add_constraint(e.leq(cap as f64)))
                })
                .collect(),
        );
        bin_rows.push(
            bin_expr
                .into_iter()
                .zip(&sub.bins)
                .zip(bin_terms)
                .map(|((e, bin), terms)| {
                    (terms > 0).then(|| model.add_constraint(e.leq(bin.capacity as f64)))
                })
                .collect(),
        );
    }
    let mut patient_day_rows: Vec<Option<ConstraintReference>> =
        Vec::with_capacity(request.patient_days.len());
    for row in request.patient_days {
        let mut expr = Expression::with_capacity(row.classes.len());
        let mut terms = 0;
        for &(k, c) in &row.classes {
            for (arc, &v) in request.arcs[k][c].iter().zip(&columns[k][c]) {
                if request.subs[k].dates[arc.date as usize] == row.day {
                    expr.add_mul(1.0, v);
                    terms += 1;
                }
            }
        }
        patient_day_rows.push((terms > 1).then(|| model.add_constraint(expr.leq(1.0))));
    }

    if !mip {
        // Primal simplex measured twice as fast as dual on these network LPs.
        model = model.set_option("simplex_strategy", 4);
    }
    let mut solution = model.solve().map_err(|e| fail(e.to_string()))?;
    let mut proven = matches!(solution.status(), SolutionStatus::Optimal);

    let mut flows: Flows = Vec::with_capacity(request.subs.len());
    for (k, sub) in request.subs.iter().enumerate() {
        let mut per_class = Vec::with_capacity(sub.classes.len());
        for (arcs, vars) in request.arcs[k]
            .iter()
            .zip(&columns[k])
            .take(sub.classes.len())
        {
            let mut used = Vec::new();
            for (arc, &v) in arcs.iter().zip(vars) {
                let value = solution.value(v);
                let units = value.round();
                if (value - units).abs() > 1e-6 {
                    // A vertex of a totally unimodular system is integral; a
                    // fractional value means a non-vertex answer, not a proof.
                    proven = false;
                }
                if units >= 1.0 {
                    used.push((*arc, units as i64));
                }
            }
            per_class.push(used);
        }
        flows.push(per_class);
    }

    let mut duals = Vec::new();
    let mut patient_day_duals = vec![0.0; request.patient_days.len()];
    if !mip {
        let dual = solution.compute_dual();
        let read = |row: &Option<ConstraintReference>| {
            // Row duals of `<=` rows are <= 0 when minimising; clamp noise.
            row.as_ref()
                .map_or(0, |r| (dual.dual(r.clone()).round() as i64).min(0))
        };
        for k in 0..request.subs.len() {
            duals.push(Duals {
                class: class_rows[k].iter().map(read).collect(),
                date: date_rows[k].iter().map(read).collect(),
                bin: bin_rows[k].iter().map(read).collect(),
            });
        }
        for (value, row) in patient_day_duals.iter_mut().zip(&patient_day_rows) {
            if let Some(row) = row {
                *value = dual.dual(row.clone());
            }
        }
    }

    Ok(ModelOutcome {
        flows,
        duals,
        patient_day_duals,
        proven,
        columns: count,
    })
}
