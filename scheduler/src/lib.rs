//! medsec-scheduler: the optimising waiting-list scheduler (allocation model v1).
//!
//! [`model`] holds the JSON wire types, [`mod@validate`] turns an instance into
//! a checked [`validate::Problem`], [`solve()`] finds a proven-optimal
//! allocation (a purpose-built min-cost flow with an exact integer dual
//! certificate, and branch and bound for patients' same-day clashes; good_lp on
//! HiGHS is the second engine that cross-checks it), [`greedy()`] is the
//! clerk-style baseline, [`generate()`] makes realistic instances and
//! [`explain()`] says why a referral got its slot.

pub mod error;
pub mod evaluate;
pub mod explain;
pub mod generate;
pub mod greedy;
pub mod model;
pub mod solve;
pub mod validate;

pub use error::{InstanceError, SolveError};
pub use explain::explain;
pub use generate::{GenerateOptions, Shape, generate, generate_with};
pub use greedy::greedy;
pub use model::{Instance, Solution, Status};
pub use solve::{Engine, SolveOptions, solve};
pub use validate::{Problem, validate};

/// Parses and validates an instance document in one step.
pub fn load(text: &str) -> Result<Problem, InstanceError> {
    validate(&Instance::from_json(text)?)
}

/// The greedy baseline as a solution document (status `feasible`, since
/// nothing is proven about it).
pub fn greedy_solution(problem: &Problem) -> Solution {
    let started = std::time::Instant::now();
    let assignment = greedy(problem);
    let summary = evaluate::summarise(problem, &assignment);
    let (allocations, unallocated) = evaluate::allocation_lists(problem, &assignment);
    Solution {
        status: Status::Feasible,
        objective: summary.objective,
        allocations,
        unallocated,
        stats: model::Stats {
            solve_seconds: started.elapsed().as_secs_f64(),
            referrals: problem.referrals.len(),
            slots: problem.slots.len(),
            bound: None,
            feasible_pairs: None,
            solver: None,
            summary: Some(summary.clone()),
            greedy: Some(summary),
        },
    }
}
