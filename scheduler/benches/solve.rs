//! Criterion benchmarks of the solver stages on small generated instances
//! (kept small so `cargo bench` stays quick; the trust-size figures come from
//! scripts/bench/run.sh, which times whole processes).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use criterion::{Criterion, criterion_group, criterion_main};
use medsec_scheduler::{Engine, GenerateOptions, SolveOptions};

fn instance(referrals: usize, specialties: usize) -> medsec_scheduler::Problem {
    let instance = medsec_scheduler::generate(GenerateOptions {
        referrals,
        specialties,
        weeks: 12,
        seed: 1,
    });
    medsec_scheduler::validate(&instance).expect("generated instances are valid")
}

fn benches(c: &mut Criterion) {
    let problem = instance(2000, 4);
    let mut group = c.benchmark_group("2k-referrals-4-specialties");
    group.sample_size(10);
    group.bench_function("greedy", |b| b.iter(|| medsec_scheduler::greedy(&problem)));
    group.bench_function("solve-flow", |b| {
        b.iter(|| medsec_scheduler::solve(&problem, &SolveOptions::default()))
    });
    group.bench_function("solve-lp", |b| {
        b.iter(|| {
            medsec_scheduler::solve(
                &problem,
                &SolveOptions {
                    engine: Engine::Lp,
                    ..SolveOptions::default()
                },
            )
        })
    });
    group.finish();
}

criterion_group!(solve, benches);
criterion_main!(solve);
