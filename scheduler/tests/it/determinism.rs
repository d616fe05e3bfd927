//! The same input gives the same output, byte for byte (apart from `stats`).

use medsec_scheduler::{GenerateOptions, SolveOptions};

fn without_stats(json: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    value.as_object_mut().unwrap().remove("stats");
    value
}

#[test]
fn generator_is_deterministic_for_a_seed() {
    let options = GenerateOptions {
        referrals: 300,
        specialties: 3,
        weeks: 4,
        seed: 42,
    };
    let a = serde_json::to_string(&medsec_scheduler::generate(options)).unwrap();
    let b = serde_json::to_string(&medsec_scheduler::generate(options)).unwrap();
    assert_eq!(a, b);
    let c = serde_json::to_string(&medsec_scheduler::generate(GenerateOptions {
        seed: 43,
        ..options
    }))
    .unwrap();
    assert_ne!(a, c);
}

#[test]
fn solving_twice_gives_identical_solutions() {
    let instance = medsec_scheduler::generate(GenerateOptions {
        referrals: 600,
        specialties: 4,
        weeks: 6,
        seed: 3,
    });
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let runs: Vec<String> = [1, 2, 2]
        .into_iter()
        .map(|threads| {
            let solution = medsec_scheduler::solve(
                &problem,
                &SolveOptions {
                    threads,
                    ..SolveOptions::default()
                },
            )
            .unwrap();
            let mut text = solution.to_json();
            // Compare the bytes of everything before "stats".
            let cut = text.find("\"stats\"").unwrap();
            text.truncate(cut);
            text
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
    assert_eq!(
        without_stats(&medsec_scheduler::greedy_solution(&problem).to_json()),
        without_stats(&medsec_scheduler::greedy_solution(&problem).to_json())
    );
}

#[test]
fn a_clash_dense_list_solves_to_the_same_bytes_whatever_the_threads() {
    let instance = medsec_scheduler::generate_with(
        GenerateOptions {
            referrals: 300,
            specialties: 2,
            weeks: 12,
            seed: 5,
        },
        medsec_scheduler::Shape {
            multi_referral_share: Some(0.85),
        },
    );
    let problem = medsec_scheduler::validate(&instance).unwrap();
    let runs: Vec<serde_json::Value> = [1, 2, 2]
        .into_iter()
        .map(|threads| {
            let solution = medsec_scheduler::solve(
                &problem,
                &SolveOptions {
                    threads,
                    ..SolveOptions::default()
                },
            )
            .unwrap();
            without_stats(&solution.to_json())
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
}
