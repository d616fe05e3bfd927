//! Tiny random instances solved exactly and cross-checked against brute-force
//! enumeration of every allocation.

use chrono::Days;
use medsec_scheduler::model::{DateRange, Horizon, Instance, Kind, Priority, Referral, Slot};
use medsec_scheduler::{Engine, SolveOptions, Status};
use proptest::prelude::*;

use crate::common::{day, independent_objective, solved_by, solved_out_of_time};

prop_compose! {
    fn slot()(specialty in 0..2_u8, clinician in 0..2_u8, date in 0..6_u64,
              follow_up in proptest::bool::weighted(0.25), capacity in 1..3_i64) -> Slot {
        Slot {
            id: String::new(),
            specialty: format!("sp{specialty}"),
            clinician: format!("c{clinician}"),
            date: day(date),
            start: None,
            kind: if follow_up { Kind::FollowUp } else { Kind::New },
            capacity,
        }
    }
}

prop_compose! {
    fn referral()(patient in 0..3_u8, specialty in 0..2_u8, priority in 0..3_u8,
                  clock in 0..40_u64, follow_up in proptest::bool::weighted(0.25),
                  earliest in proptest::option::weighted(0.3, 0..6_u64),
                  unavailable in proptest::option::weighted(0.3, (0..6_u64, 0..3_u64)),
                  required in proptest::option::weighted(0.2, 0..2_u8),
                  preferred in proptest::option::weighted(0.3, 0..2_u8),
                  due in proptest::option::weighted(0.2, 0..10_u64)) -> Referral {
        let clock_start = day(0) - Days::new(clock) + Days::new(2);
        Referral {
            id: String::new(),
            patient: format!("p{patient}"),
            specialty: format!("sp{specialty}"),
            priority: [Priority::TwoWeekWait, Priority::Urgent, Priority::Routine][priority as usize],
            clock_start,
            kind: if follow_up { Kind::FollowUp } else { Kind::New },
            earliest: earliest.map(day),
            unavailable: unavailable
                .map(|(from, len)| vec![DateRange { from: day(from), to: day(from + len) }])
                .unwrap_or_default(),
            required_clinician: required.map(|c| format!("c{c}")),
            preferred_clinician: preferred.map(|c| format!("c{c}")),
            due: due.map(|d| clock_start + Days::new(d)),
        }
    }
}

prop_compose! {
    fn instance()(slots in proptest::collection::vec(slot(), 0..6),
                  referrals in proptest::collection::vec(referral(), 0..6)) -> Instance {
        let mut instance = Instance {
            horizon: Horizon { start: day(0), end: day(4) },
            weights: Default::default(),
            slots,
            referrals,
        };
        for (i, s) in instance.slots.iter_mut().enumerate() {
            s.id = format!("s{i}");
        }
        for (i, r) in instance.referrals.iter_mut().enumerate() {
            r.id = format!("r{i}");
        }
        instance
    }
}

/// The optimum by enumeration: every referral takes any slot or none.
pub(crate) fn brute_force(problem: &medsec_scheduler::Problem) -> i64 {
    fn go(
        problem: &medsec_scheduler::Problem,
        r: usize,
        assignment: &mut Vec<Option<usize>>,
        best: &mut i64,
    ) {
        if r == problem.referrals.len() {
            if let Ok(cost) = medsec_scheduler::evaluate::check(problem, assignment) {
                *best = (*best).min(cost);
            }
            return;
        }
        assignment.push(None);
        go(problem, r + 1, assignment, best);
        for s in 0..problem.slots.len() {
            if problem.feasible(r, s) {
                *assignment.last_mut().unwrap() = Some(s);
                go(problem, r + 1, assignment, best);
            }
        }
        assignment.pop();
    }
    let mut best = i64::MAX;
    go(problem, 0, &mut Vec::new(), &mut best);
    best
}

/// Each engine, on one thread, proves the optimum that enumeration finds,
/// and its allocation costs that when recomputed independently. Answers the
/// optimum.
pub(crate) fn both_engines_prove_the_enumerated_optimum(
    instance: &Instance,
    problem: &medsec_scheduler::Problem,
) -> Result<i64, TestCaseError> {
    let optimum = brute_force(problem);
    for engine in [Engine::Flow, Engine::Lp] {
        let options = SolveOptions {
            engine,
            threads: 1,
            ..SolveOptions::default()
        };
        let solution = medsec_scheduler::solve(problem, &options).unwrap();
        prop_assert_eq!(solution.status, Status::Optimal, "{:?}", engine);
        prop_assert_eq!(solution.objective, optimum, "{:?}", engine);
        prop_assert_eq!(solution.stats.bound, Some(optimum), "{:?}", engine);
        prop_assert_eq!(independent_objective(instance, &solution), optimum);
    }
    Ok(optimum)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn solver_matches_brute_force(instance in instance()) {
        let problem = medsec_scheduler::validate(&instance).unwrap();
        let optimum = both_engines_prove_the_enumerated_optimum(&instance, &problem)?;
        let greedy = medsec_scheduler::greedy_solution(&problem);
        prop_assert!(greedy.objective >= optimum);
        prop_assert_eq!(independent_objective(&instance, &greedy), greedy.objective);
    }
}

#[test]
fn generated_instance_objective_is_recomputed_independently() {
    let instance = medsec_scheduler::generate(medsec_scheduler::GenerateOptions {
        referrals: 400,
        specialties: 3,
        weeks: 6,
        seed: 7,
    });
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let flow = medsec_scheduler::solve(&problem, &SolveOptions::default()).unwrap();
    let lp = solved_by(&problem, Engine::Lp);
    assert_eq!(flow.status, Status::Optimal);
    assert_eq!(lp.status, Status::Optimal);
    assert_eq!(flow.objective, lp.objective);
    assert_eq!(independent_objective(&instance, &flow), flow.objective);
    let greedy = flow.stats.greedy.as_ref().unwrap();
    assert!(greedy.objective >= flow.objective);
}

/// One patient, two specialties, one slot each on the same day: only one of the
/// two referrals can be seen, so stage 2 must resolve a clash.
fn clashing_instance() -> Instance {
    let slot = |id: &str, specialty: &str| Slot {
        id: id.to_owned(),
        specialty: specialty.to_owned(),
        clinician: "c1".to_owned(),
        date: day(1),
        start: None,
        kind: Kind::New,
        capacity: 1,
    };
    let referral = |id: &str, specialty: &str, priority| {
        let clock_start = day(0) - Days::new(30);
        Referral::new(
            id.into(),
            "p1".into(),
            specialty.into(),
            priority,
            clock_start,
            Kind::New,
        )
    };
    Instance {
        horizon: Horizon {
            start: day(0),
            end: day(4),
        },
        weights: Default::default(),
        slots: vec![slot("s1", "cardiology"), slot("s2", "dermatology")],
        referrals: vec![
            referral("r1", "cardiology", Priority::Routine),
            referral("r2", "dermatology", Priority::Urgent),
        ],
    }
}

#[test]
fn a_patient_day_clash_is_resolved_optimally() {
    let instance = clashing_instance();
    let problem = medsec_scheduler::validate(&instance).unwrap();
    for engine in [Engine::Flow, Engine::Lp] {
        let solution = solved_by(&problem, engine);
        assert_eq!(solution.status, Status::Optimal);
        assert_eq!(solution.objective, brute_force(&problem));
        // The urgent referral has the dearer wait, so it keeps the day.
        assert_eq!(solution.allocations.len(), 1);
        assert_eq!(solution.allocations[0].referral, "r2");
        assert_eq!(
            solution
                .stats
                .solver
                .as_ref()
                .unwrap()
                .patient_day_conflicts,
            1
        );
    }
}

#[test]
fn an_exhausted_time_limit_still_returns_a_valid_allocation_with_a_bound() {
    let instance = clashing_instance();
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let solution = solved_out_of_time(&problem);
    assert_eq!(solution.status, Status::Feasible);
    let bound = solution.stats.bound.unwrap();
    assert!(bound <= brute_force(&problem) && brute_force(&problem) <= solution.objective);
    assert_eq!(
        independent_objective(&instance, &solution),
        solution.objective
    );
}
