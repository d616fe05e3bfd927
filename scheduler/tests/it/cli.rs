//! The command line end to end: generate, solve, explain, and errors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_medsec-scheduler"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("medsec-scheduler-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn generate_then_solve_then_explain() {
    let generated = run(bin().args([
        "generate",
        "--referrals",
        "300",
        "--specialties",
        "3",
        "--weeks",
        "4",
        "--seed",
        "5",
    ]));
    let instance_path = scratch("instance.json");
    std::fs::write(&instance_path, &generated.stdout).unwrap();
    let instance: medsec_scheduler::Instance = serde_json::from_slice(&generated.stdout).unwrap();

    let solved = run(bin().arg("solve").arg(&instance_path));
    let solution: medsec_scheduler::Solution = serde_json::from_slice(&solved.stdout).unwrap();
    assert_eq!(solution.status, medsec_scheduler::Status::Optimal);
    assert_eq!(
        crate::common::independent_objective(&instance, &solution),
        solution.objective
    );
    let summary = String::from_utf8_lossy(&solved.stderr);
    assert!(summary.contains("greedy"), "stderr summary: {summary}");

    let greedy = run(bin().arg("solve").arg(&instance_path).arg("--greedy"));
    let greedy: medsec_scheduler::Solution = serde_json::from_slice(&greedy.stdout).unwrap();
    assert!(greedy.objective >= solution.objective);

    let limited = run(bin()
        .arg("solve")
        .arg(&instance_path)
        .args(["--time-limit", "30"]));
    let limited: medsec_scheduler::Solution = serde_json::from_slice(&limited.stdout).unwrap();
    assert_eq!(limited.objective, solution.objective);

    let solution_path = scratch("solution.json");
    std::fs::write(&solution_path, &solved.stdout).unwrap();
    let referral = &solution.allocations[0].referral;
    let explained = run(bin()
        .arg("explain")
        .arg(&instance_path)
        .arg(&solution_path)
        .arg(referral));
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        text.contains(referral.as_str()) && text.contains("cost"),
        "{text}"
    );
}

#[test]
fn errors_go_to_stderr_with_a_failing_exit() {
    let path = scratch("bad.json");
    std::fs::write(
        &path,
        r#"{"horizon":{"start":"2026-01-05","end":"2026-01-30"},"slots":[],
        "referrals":[{"id":"r9","patient":"p","specialty":"x","priority":"someday",
        "clock_start":"2026-01-01","kind":"new"}]}"#,
    )
    .unwrap();
    let output = bin().arg("solve").arg(&path).output().unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("r9") && stderr.contains("someday"),
        "{stderr}"
    );

    let missing = bin()
        .args(["solve", "/nonexistent/instance.json"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
    let unknown = bin()
        .args([
            "explain",
            path.to_str().unwrap(),
            path.to_str().unwrap(),
            "r1",
        ])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
}

#[test]
fn a_tiny_time_limit_on_a_big_list_exits_cleanly_with_an_unproven_allocation() {
    let generated = run(bin().args([
        "generate",
        "--referrals",
        "5000",
        "--specialties",
        "5",
        "--weeks",
        "12",
    ]));
    let instance_path = scratch("big.json");
    std::fs::write(&instance_path, &generated.stdout).unwrap();
    let instance: medsec_scheduler::Instance = serde_json::from_slice(&generated.stdout).unwrap();

    // A millisecond is over long before the relaxations of 5,000 referrals
    // are built, let alone solved.
    let limited = run(bin()
        .arg("solve")
        .arg(&instance_path)
        .args(["--time-limit", "0.001"]));
    let solution: medsec_scheduler::Solution = serde_json::from_slice(&limited.stdout).unwrap();
    assert_eq!(solution.status, medsec_scheduler::Status::Feasible);
    assert_eq!(
        crate::common::independent_objective(&instance, &solution),
        solution.objective
    );
    let greedy = solution.stats.greedy.as_ref().unwrap().objective;
    assert!(solution.objective <= greedy);
    assert!(solution.stats.bound.unwrap() < solution.objective);
    let summary = String::from_utf8_lossy(&limited.stderr);
    assert!(summary.contains("Feasible"), "stderr summary: {summary}");
}
