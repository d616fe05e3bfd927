//! The time limit bounds the whole solve, stage 1 included: whatever it
//! cuts, the answer is a valid allocation no dearer than greedy, with a bound
//! never above the optimum. No assertion depends on how fast the machine is.

use medsec_scheduler::{GenerateOptions, SolveOptions, Status};

use crate::common::{independent_objective, solved_out_of_time};

#[test]
fn a_limit_cutting_the_relaxations_still_gives_a_valid_allocation_and_bound() {
    let instance = medsec_scheduler::generate(GenerateOptions {
        referrals: 3000,
        specialties: 6,
        weeks: 12,
        seed: 3,
    });
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let greedy = medsec_scheduler::greedy_solution(&problem).objective;
    let optimum = medsec_scheduler::solve(&problem, &SolveOptions::default()).unwrap();
    assert_eq!(optimum.status, Status::Optimal);

    // Over before the first relaxation starts: none is solved, and the
    // answer is the greedy baseline with the per-referral bound.
    let none = solved_out_of_time(&problem);
    let stats = none.stats.solver.as_ref().unwrap();
    assert_eq!(stats.relaxations_cut_short, stats.subproblems);
    assert_eq!(stats.branch_nodes, 0);
    assert_eq!(none.status, Status::Feasible);
    assert_eq!(none.objective, greedy);

    // Limits that may stop the flows part way (how far they get depends on
    // the machine; what is returned must be sound either way).
    for limit in [1e-9, 1e-3, 1e-2, 5e-2] {
        let options = SolveOptions {
            time_limit: Some(limit),
            ..SolveOptions::default()
        };
        let limited = medsec_scheduler::solve(&problem, &options).unwrap();
        assert_eq!(
            independent_objective(&instance, &limited),
            limited.objective,
            "limit {limit}"
        );
        assert!(limited.objective <= greedy, "limit {limit}");
        assert!(limited.objective >= optimum.objective, "limit {limit}");
        let bound = limited.stats.bound.unwrap();
        assert!(bound <= optimum.objective, "limit {limit}: bound {bound}");
        if limited.status == Status::Optimal {
            assert_eq!(limited.objective, optimum.objective, "limit {limit}");
        }
    }
}
