//! Clash-dense lists: most patients referred twice the same day, so the
//! relaxation puts many pairs on one day. Proven optimal, never worse than
//! greedy, equal to the second engine and to enumeration on tiny ones.

use chrono::Days;
use medsec_scheduler::model::{Horizon, Instance, Kind, Priority, Referral, Slot};
use medsec_scheduler::{Engine, GenerateOptions, Shape, SolveOptions, Status};
use proptest::prelude::*;

use crate::brute_force::both_engines_prove_the_enumerated_optimum;
use crate::common::{day, independent_objective, solved_by, solved_out_of_time};

fn dense(referrals: usize, specialties: usize, share: f64, seed: u64) -> Instance {
    medsec_scheduler::generate_with(
        GenerateOptions {
            referrals,
            specialties,
            weeks: 12,
            seed,
        },
        Shape {
            multi_referral_share: Some(share),
        },
    )
}

#[test]
fn the_generator_pairs_the_requested_share_of_patients() {
    let instance = dense(1000, 1, 0.8, 1);
    let mut per_patient = std::collections::HashMap::<&str, Vec<&Referral>>::new();
    for r in &instance.referrals {
        per_patient.entry(r.patient.as_str()).or_default().push(r);
    }
    let pairs: Vec<&Vec<&Referral>> = per_patient.values().filter(|v| v.len() == 2).collect();
    assert!(per_patient.values().all(|v| v.len() <= 2));
    let share = pairs.len() as f64 / per_patient.len() as f64;
    assert!((0.75..0.85).contains(&share), "share {share}");
    // Referred together: same priority and clock start.
    assert!(
        pairs
            .iter()
            .all(|v| { v[0].priority == v[1].priority && v[0].clock_start == v[1].clock_start })
    );
    // Without a shape, the realistic list is unchanged.
    let plain = GenerateOptions {
        referrals: 300,
        specialties: 2,
        weeks: 4,
        seed: 9,
    };
    assert_eq!(
        serde_json::to_string(&medsec_scheduler::generate(plain)).unwrap(),
        serde_json::to_string(&medsec_scheduler::generate_with(plain, Shape::default())).unwrap()
    );
}

#[test]
fn clash_dense_lists_are_proven_optimal_and_never_worse_than_greedy() {
    for (referrals, specialties, share, seed) in [(300, 1, 0.8, 1), (240, 2, 0.9, 2)] {
        let instance = dense(referrals, specialties, share, seed);
        let problem = medsec_scheduler::validate(&instance).unwrap();
        let solution = medsec_scheduler::solve(&problem, &SolveOptions::default()).unwrap();
        let stats = &solution.stats;
        let solver = stats.solver.as_ref().unwrap();
        assert!(solver.patient_day_conflicts >= 8, "not clash-dense");
        assert_eq!(
            solution.status,
            Status::Optimal,
            "{referrals}/{specialties}"
        );
        assert_eq!(stats.bound, Some(solution.objective));
        assert!(solution.objective <= stats.greedy.as_ref().unwrap().objective);
        assert_eq!(
            independent_objective(&instance, &solution),
            solution.objective
        );
    }
}

#[test]
fn both_engines_agree_on_a_clash_dense_list() {
    let instance = dense(150, 1, 0.9, 4);
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let objectives: Vec<i64> = [Engine::Flow, Engine::Lp]
        .into_iter()
        .map(|engine| {
            let solution = solved_by(&problem, engine);
            assert_eq!(solution.status, Status::Optimal, "{engine:?}");
            assert_eq!(
                independent_objective(&instance, &solution),
                solution.objective
            );
            solution.objective
        })
        .collect();
    assert_eq!(objectives[0], objectives[1]);
}

#[test]
fn whatever_stops_the_search_the_answer_is_never_worse_than_greedy() {
    // A limit already over when stage 2 starts (not timing-dependent: any
    // run takes longer than a nanosecond), on a list where the relaxation
    // leaves dozens of clashes.
    let instance = dense(300, 1, 0.9, 3);
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let greedy = medsec_scheduler::greedy_solution(&problem).objective;
    let solution = solved_out_of_time(&problem);
    assert!(solution.objective <= greedy);
    assert_eq!(
        independent_objective(&instance, &solution),
        solution.objective
    );
    let bound = solution.stats.bound.unwrap();
    assert!(bound <= solution.objective);
    let optimum = medsec_scheduler::solve(&problem, &SolveOptions::default()).unwrap();
    assert_eq!(optimum.status, Status::Optimal);
    assert!(bound <= optimum.objective && optimum.objective <= solution.objective);
}

prop_compose! {
    /// Two or three patients each referred twice the same day (same
    /// priority and clock start) in one or two specialties, a place or two a
    /// day over three days: nearly every pair clashes in the relaxation.
    fn twins()(pairs in proptest::collection::vec(
                   (0..3_u8, 0..120_u64, 0..2_u8, 0..2_u8,
                    proptest::option::weighted(0.3, 0..2_u8)), 2..4),
               slots in proptest::collection::vec((0..2_u8, 0..2_u8, 0..3_u64, 1..3_i64), 2..5))
               -> Instance {
        let mut referrals = Vec::new();
        for (p, &(priority, waited, first, second, preferred)) in pairs.iter().enumerate() {
            for (t, specialty) in [first, second].into_iter().enumerate() {
                let priority =
                    [Priority::TwoWeekWait, Priority::Urgent, Priority::Routine][priority as usize];
                let (id, patient) = (format!("r{p}{t}"), format!("p{p}"));
                let clock_start = day(0) - Days::new(waited);
                let referral =
                    Referral::new(id, patient, format!("sp{specialty}"), priority, clock_start, Kind::New);
                referrals.push(Referral {
                    preferred_clinician: preferred.filter(|_| t == 0).map(|c| format!("c{c}")),
                    ..referral
                });
            }
        }
        let slots = slots
            .into_iter()
            .enumerate()
            .map(|(i, (specialty, clinician, date, capacity))| Slot {
                id: format!("s{i}"),
                specialty: format!("sp{specialty}"),
                clinician: format!("c{clinician}"),
                date: day(date),
                start: None,
                kind: Kind::New,
                capacity,
            })
            .collect();
        Instance {
            horizon: Horizon { start: day(0), end: day(4) },
            weights: Default::default(),
            slots,
            referrals,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, ..ProptestConfig::default() })]

    #[test]
    fn tiny_dense_lists_match_brute_force_with_both_engines(instance in twins()) {
        let problem = medsec_scheduler::validate(&instance).unwrap();
        let optimum = both_engines_prove_the_enumerated_optimum(&instance, &problem)?;
        let greedy = medsec_scheduler::greedy_solution(&problem).objective;
        prop_assert!(optimum <= greedy);
    }
}
