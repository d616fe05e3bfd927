#!/usr/bin/env python3
"""Renders scripts/bench/run.sh results (JSON lines) as docs/BENCHMARKS.md."""

import json
import os
import platform
import subprocess
import sys


def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(path, runs, dense_path=None):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    dense = [json.loads(line) for line in open(dense_path) if line.strip()] if dense_path else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = []
    out.append("# medsec benchmarks\n")
    out.append("The optimiser alone (`medsec-scheduler`, first sections) and the waiting list optimised through SchedulingService (last section).\n")
    out.append("Produced by `scripts/bench/run.sh` (command: `scripts/bench/run.sh`, defaults "
               f"`SIZES=\"2000:4:12 10000:10:12 50000:20:12\" DENSE=\"300:1:0.8 350:1:0.9 400:1:0.8 600:1:0.8 1000:1:0.8 600:2:0.7 1000:2:0.9\" RUNS={runs}`) at commit `{commit}` on "
               f"{os.cpu_count()} cores ({cpu()}), load average (1/5/15 min) before / after: {os.environ.get('LOAD', 'unknown')}. Instances come from "
               "`medsec-scheduler generate --referrals N --specialties K --weeks W --seed 1`.\n")
    out.append("Time is the wall time of the whole `medsec-scheduler solve INSTANCE.json` process "
               f"(read and parse JSON, validate, greedy baseline, solve, prove, write JSON), median of {runs} runs; "
               "CPU is user plus system time over all threads (median), so CPU above 'time' means both cores worked, "
               "and 'time' far above CPU / 2 means other processes held a core; "
               "memory is the peak resident set size (`/usr/bin/time -v`). Targets on 2 cores: "
               "10k/10/12 <= 0.3 s; 50k/20/12 <= 1.5 s and <= 1 GiB; clash-dense lists of 300-1,000 referrals <= 2 s, proven optimal.\n")
    out.append("Stage 1 is the relaxation (greedy, network build, one certified min-cost flow per (specialty, kind)); stage 2 "
               "resolves patient-per-day clashes by branch and bound (re-solves on both threads), or, for a clash-dense component, "
               "by the LP with every patient-day row (HiGHS) proven by its Lagrangian bound in exact integers. "
               "'clashes' counts them in the relaxation's allocation.\n")
    out.append("## Solver\n")
    out.append("| size (referrals/specialties/weeks) | slots | feasible pairs | time (s) | best run (s) | CPU (s) | peak memory (MiB) | status | objective | proven bound | stage 1 (s) | stage 2 (s) | clashes | B&B nodes |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s = r["stats"]
        solver = s.get("solver", {})
        out.append(
            f"| {r['referrals']}/{r['specialties']}/{r['weeks']} | {s['slots']} | {s.get('feasible_pairs', 0):,} | "
            f"{r['wall_median']:.2f} | {min(r['walls']):.2f} | {r.get('cpu_median', 0):.2f} | {r['peak_rss_kb'] / 1024:.0f} | {r['status']} | {r['objective']:,} | {s.get('bound', 0):,} | "
            f"{solver.get('stage1_seconds', 0):.2f} | {solver.get('stage2_seconds', 0):.2f} | "
            f"{solver.get('patient_day_conflicts', 0)} | {solver.get('branch_nodes', 0)} |")
    out.append("\n## Solver versus greedy baseline\n")
    out.append("Greedy: by priority, then due date, then clock start, each referral takes the earliest feasible free slot. "
               "Breaches count referrals seen after their due date, including unallocated ones past due at the horizon's end "
               "(as the objective does); waits are over allocated referrals.\n")
    out.append("| size | objective (solver) | objective (greedy) | improvement | breaches (solver / greedy) | mean wait days (solver / greedy) | max wait days (solver / greedy) | unallocated (solver / greedy) |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        m, g = r["stats"]["summary"], r["stats"]["greedy"]
        improvement = 100.0 * (g["objective"] - m["objective"]) / g["objective"] if g["objective"] else 0.0
        out.append(
            f"| {r['referrals']}/{r['specialties']}/{r['weeks']} | {m['objective']:,} | {g['objective']:,} | {improvement:.1f}% | "
            f"{m['breaches']} / {g['breaches']} | {m['mean_wait_days']} / {g['mean_wait_days']} | "
            f"{m['max_wait_days']} / {g['max_wait_days']} | {m['unallocated']} / {g['unallocated']} |")
    out.append("\n## OR-Tools min-cost flow on the same instance\n")
    out.append("`scripts/bench/ortools_mcf.py` builds the same aggregated network from the instance JSON (one node per referral, "
               "no class aggregation) and solves it with OR-Tools `SimpleMinCostFlow` (Python, from PyPI). Min-cost flow cannot express "
               "the patient-per-day rule, so its objective is the relaxation's: equal to ours when no clash had to be resolved, "
               "otherwise a lower bound a little below it. 'solve' is OR-Tools' solve call only; 'total' includes Python reading the "
               "JSON and building the network.\n")
    out.append("| size | OR-Tools objective (relaxation) | medsec objective | difference | OR-Tools arcs | OR-Tools solve (s) | OR-Tools total (s) | medsec whole process (s) |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in rows:
        o = r["ortools"]
        if "error" in o:
            out.append(f"| {r['referrals']}/{r['specialties']}/{r['weeks']} | {o['error']} | {r['objective']:,} | | | | | {r['wall_median']:.2f} |")
            continue
        out.append(
            f"| {r['referrals']}/{r['specialties']}/{r['weeks']} | {o['objective']:,} | {r['objective']:,} | {r['objective'] - o['objective']:,} | "
            f"{o['arcs']:,} | {o['seconds']:.2f} | {o['total_seconds']:.2f} | {r['wall_median']:.2f} |")
    out.append("\n## Reading these figures\n")
    out.append("- The machine is shared: other cargo builds may run during the measurement (see the load average "
               "above), so wall times are inflated and noisy; 'best run' is the least disturbed. Peak memory and CPU work are "
               "not affected.\n"
               "- Against the targets (10k/10/12: 0.3 s; 50k/20/12: 1.5 s and 1 GiB):")
    targets = {(10000, 10, 12): (0.3, None), (50000, 20, 12): (1.5, 1024)}
    for r in rows:
        target = targets.get((r["referrals"], r["specialties"], r["weeks"]))
        if not target:
            continue
        seconds, mib = target
        solver = r["stats"].get("solver", {})
        verdict = "met" if r["wall_median"] <= seconds else "missed"
        memory = f", peak memory {r['peak_rss_kb'] / 1024:.0f} MiB (target {mib} MiB)" if mib else ""
        out.append(f"  - {r['referrals']}/{r['specialties']}/{r['weeks']}: {r['wall_median']:.2f} s, target {seconds} s: {verdict}{memory}; "
                   f"status {r['status']}; stage 1 {solver.get('stage1_seconds', 0):.2f} s, stage 2 {solver.get('stage2_seconds', 0):.2f} s "
                   f"({solver.get('patient_day_conflicts', 0)} clashes, {solver.get('branch_nodes', 0)} branch-and-bound nodes, "
                   f"{solver.get('flow_resolves', 0)} flow re-solves on both threads).")
    out.append(
               "- The OR-Tools column solves only the relaxation (no patient-per-day rule), without class aggregation; its "
               "objective matching ours exactly where there were no clashes, and sitting just below where there were, is an "
               "independent check of both the model and the optimum.\n")
    if dense:
        dense_section(out, dense, runs)
    out.append("\n## Raw wall times (s)\n")
    for r in rows + dense:
        out.append(f"- {r['name']}: {', '.join(f'{w:.2f}' for w in r['walls'])}")
    print("\n".join(out))


def dense_section(out, dense, runs):
    limit = os.environ.get("CPSAT_LIMIT", "60")
    out.append("\n## Clash-dense lists\n")
    out.append("Lists where most patients hold two referrals, referred the same day with the same priority, in one or two "
               "specialties: `medsec-scheduler generate --referrals N --specialties K --weeks 12 --seed 1 "
               "--multi-referral-share S`. The relaxation puts many pairs on one day ('clashes'), all inside one or a few "
               f"sub-problems. Time is the whole `solve` process, median of {runs} runs; target: proven optimal within 2 s, "
               "never worse than greedy.\n")
    out.append("| referrals/specialties | patients with two referrals | clashes | status | objective | greedy objective | "
               "better than greedy | proven bound | objective - bound | time (s) | best run (s) | B&B nodes | LP solves |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in dense:
        s = r["stats"]
        solver = s.get("solver", {})
        greedy = s["greedy"]["objective"]
        better = 100.0 * (greedy - r["objective"]) / greedy if greedy else 0.0
        out.append(
            f"| {r['referrals']}/{r['specialties']} | {r['patients_several']} of {r['patients']} "
            f"({100.0 * r['patients_several'] / r['patients']:.0f}%) | {solver.get('patient_day_conflicts', 0)} | "
            f"{r['status']} | {r['objective']:,} | {greedy:,} | {better:.1f}% | {s.get('bound', 0):,} | "
            f"{r['objective'] - s.get('bound', 0):,} | {r['wall_median']:.2f} | {min(r['walls']):.2f} | "
            f"{solver.get('branch_nodes', 0)} | {solver.get('clash_lp_solves', 0)} |")
    optimal = sum(1 for r in dense if r["status"] == "optimal")
    slowest = max(r["wall_median"] for r in dense)
    never_worse = all(r["objective"] <= r["stats"]["greedy"]["objective"] for r in dense)
    out.append(f"\nAgainst the target: {optimal} of {len(dense)} lists proven optimal, the slowest in {slowest:.2f} s "
               f"(median; target 2 s: {'met' if optimal == len(dense) and slowest <= 2.0 else 'missed'}); objective "
               f"{'no worse than greedy on every list' if never_worse else 'WORSE THAN GREEDY on some list'}.")
    out.append("\n### Independent exact check: OR-Tools SCIP and CP-SAT\n")
    out.append("`scripts/bench/ortools_exact.py` builds the whole model from the instance JSON (a Boolean per referral and "
               "date or clinician's bin, capacity rows per date and bin, one row per patient and date) with no code shared "
               f"with the scheduler and solves it with SCIP (the MIP solver bundled with OR-Tools from PyPI, at most "
               f"{os.environ.get('SCIP_LIMIT', '300')} s) and with CP-SAT (hinted with our allocation, 2 workers, at most "
               f"{limit} s). A solver's bound is its proven lower bound: it can never find an allocation cheaper than a "
               "proven optimum, and 'optimal' with our objective confirms it. CP-SAT gets within a small gap of these "
               "optima but rarely closes it in that time. 'LP' is the same model's LP relaxation (GLOP, floating point): "
               "equal to our objective, the patient-day rows' LP is tight, which is why the scheduler's Lagrangian bound "
               "closes the gap.\n")
    out.append("| referrals/specialties | medsec objective | SCIP status | SCIP objective | SCIP bound | SCIP time (s) | "
               "CP-SAT status | CP-SAT objective | CP-SAT bound | CP-SAT time (s) | LP (GLOP) | agrees |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:,.0f}"
    for r in dense:
        c = r["cpsat"]
        if "error" in c:
            out.append(f"| {r['referrals']}/{r['specialties']} | {r['objective']:,} | {c['error']} | | | | | | | | | |")
            continue
        ours = r["objective"]
        agrees = True
        for status, objective, bound in ((c.get("scip_status"), c.get("scip_objective"), c.get("scip_bound")),
                                         (c.get("status"), c.get("objective"), c.get("bound"))):
            if objective is not None and objective < ours:
                agrees = False
            if bound is not None and bound > ours:
                agrees = False
            if status == "optimal" and objective != ours:
                agrees = False
        out.append(
            f"| {r['referrals']}/{r['specialties']} | {ours:,} | {c.get('scip_status', '-')} | {fmt(c.get('scip_objective'))} | "
            f"{fmt(c.get('scip_bound'))} | {c.get('scip_seconds', 0):.1f} | {c.get('status', '-')} | {fmt(c.get('objective'))} | "
            f"{fmt(c.get('bound'))} | {c.get('seconds', 0):.1f} | {fmt(c.get('lp_value'))} | {'yes' if agrees else 'NO'} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "3", sys.argv[3] if len(sys.argv) > 3 else None)
