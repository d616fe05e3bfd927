//! The `medsec-scheduler` command line: solve, generate and explain instances.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use medsec_scheduler::{Engine, GenerateOptions, Shape, Solution, SolveOptions};

#[derive(Debug, Parser)]
#[command(
    name = "medsec-scheduler",
    version,
    about = "Optimising waiting-list scheduler (allocation model v1)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Solve an instance and print the solution JSON on stdout.
    Solve {
        instance: PathBuf,
        /// Run only the greedy baseline.
        #[arg(long)]
        greedy: bool,
        /// Stop the whole solve (relaxations and clash resolution alike) after
        /// about this many seconds and print the best allocation found: never
        /// dearer than the greedy baseline, status "feasible" unless proven
        /// anyway, with a proven lower bound in stats.bound. Building the
        /// network, the greedy baseline and the final checks always run.
        #[arg(long, value_name = "SECONDS")]
        time_limit: Option<f64>,
        /// Worker threads for independent sub-problems (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Use the second engine, good_lp on HiGHS (simplex for each relaxation,
        /// a MIP for clashes), instead of the min-cost flow and branch and bound
        /// (slower; for cross-checking).
        #[arg(long)]
        lp: bool,
    },
    /// Write a realistic instance to stdout.
    Generate {
        #[arg(long)]
        referrals: usize,
        #[arg(long)]
        specialties: usize,
        #[arg(long)]
        weeks: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Share of patients holding two referrals (0 to 1), for clash-dense
        /// lists; by default about one referral in 25 joins a patient already
        /// on the list. Use with --specialties 1 or 2 to stress the
        /// patient-per-day rule.
        #[arg(long, value_name = "SHARE")]
        multi_referral_share: Option<f64>,
    },
    /// Say why a referral got its slot.
    Explain {
        instance: PathBuf,
        solution: PathBuf,
        referral: String,
    },
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn load(path: &Path) -> anyhow::Result<medsec_scheduler::Problem> {
    medsec_scheduler::load(&read(path)?)
        .with_context(|| format!("invalid instance {}", path.display()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Solve {
            instance,
            greedy,
            time_limit,
            threads,
            lp,
        } => {
            if time_limit.is_some_and(|t| !t.is_finite() || t <= 0.0) {
                anyhow::bail!("--time-limit must be a positive number of seconds");
            }
            let problem = load(&instance)?;
            let solution = if greedy {
                medsec_scheduler::greedy_solution(&problem)
            } else {
                medsec_scheduler::solve(
                    &problem,
                    &SolveOptions {
                        time_limit,
                        threads,
                        engine: if lp { Engine::Lp } else { Engine::Flow },
                    },
                )?
            };
            println!("{}", solution.to_json());
            report(&solution);
        }
        Command::Generate {
            referrals,
            specialties,
            weeks,
            seed,
            multi_referral_share,
        } => {
            if specialties == 0 || weeks == 0 {
                anyhow::bail!("--specialties and --weeks must be at least 1");
            }
            if multi_referral_share.is_some_and(|s| !(0.0..=1.0).contains(&s)) {
                anyhow::bail!("--multi-referral-share must be between 0 and 1");
            }
            let instance = medsec_scheduler::generate_with(
                GenerateOptions {
                    referrals,
                    specialties,
                    weeks,
                    seed,
                },
                Shape {
                    multi_referral_share,
                },
            );
            println!("{}", serde_json::to_string(&instance)?);
        }
        Command::Explain {
            instance,
            solution,
            referral,
        } => {
            let problem = load(&instance)?;
            let solution: Solution = serde_json::from_str(&read(&solution)?)
                .with_context(|| format!("invalid solution {}", solution.display()))?;
            let text = medsec_scheduler::explain(&problem, &solution, &referral)
                .map_err(anyhow::Error::msg)?;
            print!("{text}");
        }
    }
    Ok(())
}

/// One-line comparison with the greedy baseline on stderr, for humans.
fn report(solution: &Solution) {
    let stats = &solution.stats;
    if let (Some(mine), Some(greedy)) = (&stats.summary, &stats.greedy) {
        eprintln!(
            "status {:?} objective {} bound {} in {:.3}s | breaches {} (greedy {}) | mean wait {} (greedy {}) | max wait {} (greedy {}) | greedy objective {}",
            solution.status,
            solution.objective,
            stats.bound.map_or("-".to_owned(), |b| b.to_string()),
            stats.solve_seconds,
            mine.breaches,
            greedy.breaches,
            mine.mean_wait_days,
            greedy.mean_wait_days,
            mine.max_wait_days,
            greedy.max_wait_days,
            greedy.objective,
        );
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
