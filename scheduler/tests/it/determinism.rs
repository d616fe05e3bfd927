//! The same input gives the same output, byte for byte (apart from `stats`).

use medsec_scheduler::{GenerateOptions, Problem, SolveOptions};

fn without_stats(json: &str) -> serde_json::Value {
    let mut value: serde_json::Value = serde_json::from_str(json).unwrap();
    value.as_object_mut().unwrap().remove("stats");
    value
}

/// Solves `problem` with one thread, then twice with two: the solutions'
/// bytes before `stats` are the same each time.
fn assert_same_bytes_whatever_the_threads(problem: &Problem) {
    let runs: Vec<String> = [1, 2, 2]
        .into_iter()
        .map(|threads| {
            let options = SolveOptions {
                threads,
                ..SolveOptions::default()
            };
            let mut text = medsec_scheduler::solve(problem, &options)
                .unwrap()
                .to_json();
            let cut = text.find("\"stats\"").unwrap();
            text.truncate(cut);
            text
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert_eq!(runs[1], runs[2]);
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
    assert_same_bytes_whatever_the_threads(&problem);
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
    assert_same_bytes_whatever_the_threads(&problem);
}
