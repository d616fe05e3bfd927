#!/usr/bin/env python3
"""Writes the "Capacity: medsec load" section of docs/BENCHMARKS.md from the
JSON reports scripts/bench/load.sh left in its work folder."""

import argparse
import json
import os
import platform
import re

BEGIN = "<!-- load:begin (scripts/bench/load.sh writes this section) -->"
END = "<!-- load:end -->"
WORKLOADS = ["booking", "records", "billing", "mixed", "diary-read"]


def load(folder, name):
    path = os.path.join(folder, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def ms(value):
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def pct(value):
    return "" if value is None else f"{100 * value:.0f}%"


def errors(rpc):
    return sum(rpc["errors"].values())


def codes(counts):
    return ", ".join(f"{code} {n}" for code, n in sorted(counts.items())) or "none"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def section(folder, databases, commit, load_avg):
    cores = os.cpu_count()
    out = [
        "## Capacity: medsec load (issue 16)",
        "",
        f"Produced by `scripts/bench/load.sh` (`make bench`) at commit `{commit}` on "
        f"{cores} cores ({cpu_model()}), release build, load average {load_avg}. "
        "`medsec load` seeds a clinic through the API and drives each workload "
        "against `medsec serve` on the same machine (generator and server share "
        "the cores); the ceiling is the same server's `CeilingService` driven the "
        "same way in the same run: `Ping` (the shell alone) and `Insert` (the shell "
        "and one single-row write transaction). A step is one action of a member "
        "of staff (a booking is a free-slot search and a book, sometimes a "
        "cancellation or a reschedule); latencies are per step unless an RPC is "
        "named. Expected contention (a slot taken by another worker: "
        "`FAILED_PRECONDITION`) is counted apart from errors. See docs/CAPACITY.md "
        "for what these figures mean for a deployment.",
        "",
    ]
    for db in databases:
        sat = load(folder, f"{db}-saturation")
        if sat is None:
            continue
        ceiling = sat.get("ceiling") or {}
        ping, insert = ceiling.get("ping"), ceiling.get("insert")
        conc = sat["options"].get("concurrency")
        out += [
            f"### {'PostgreSQL' if db == 'postgres' else 'SQLite'}",
            "",
            f"Saturation: closed loop, {conc} workers, {sat['options']['duration_secs']:.0f} s a workload.",
            "",
            "| workload | steps/s | RPCs/s | of Ping | of Insert | step p50 (ms) | p99 | p99.9 | max | RPC errors |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for phase in ([ping, insert] if ping and insert else []) + sat["workloads"]:
            s = phase["steps"]["latency"]
            out.append(
                f"| {phase['workload']} | {phase['steps']['per_second']:.0f} | {phase['rpcs_per_second']:.0f} "
                f"| {pct(phase.get('fraction_of_ping'))} | {pct(phase.get('fraction_of_insert'))} "
                f"| {ms(s['p50_ms'])} | {ms(s['p99_ms'])} | {ms(s['p999_ms'])} | {ms(s['max_ms'])} "
                f"| {phase['rpc_errors']} |"
            )
        out += [
            "",
            "Half saturation: open loop at half each workload's saturated step rate "
            "(each step timed from its scheduled start).",
            "",
            "| workload | target steps/s | achieved | step p50 (ms) | p90 | p99 | p99.9 | max | RPC errors | expected contention |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for workload in WORKLOADS:
            half = load(folder, f"{db}-half-{workload}")
            if half is None:
                continue
            phase = half["workloads"][0]
            s = phase["steps"]["latency"]
            contention = {}
            for rpc in phase["by_rpc"]:
                for code, n in rpc["contention"].items():
                    contention[code] = contention.get(code, 0) + n
            out.append(
                f"| {workload} | {half['options']['rate_per_second']:.0f} | {phase['steps']['per_second']:.0f} "
                f"| {ms(s['p50_ms'])} | {ms(s['p90_ms'])} | {ms(s['p99_ms'])} | {ms(s['p999_ms'])} "
                f"| {ms(s['max_ms'])} | {phase['rpc_errors']} | {codes(contention)} |"
            )
        wide = load(folder, f"{db}-records-128")
        if wide is not None:
            phase = wide["workloads"][0]
            out += ["", f"Audited reads at 128 concurrent streams on one connection (records workload, closed loop):", ""]
            out += ["| RPC | per second | p50 (ms) | p99 | max | errors |", "|---|---|---|---|---|---|"]
            for rpc in phase["by_rpc"]:
                l = rpc["latency"]
                out.append(
                    f"| {rpc['name']} | {rpc['per_second']:.0f} | {ms(l['p50_ms'])} | {ms(l['p99_ms'])} "
                    f"| {ms(l['max_ms'])} | {codes(rpc['errors'])} |"
                )
        out += ["", "Per RPC at saturation:", "", "| workload | RPC | per second | p50 (ms) | p99 | p99.9 | max | errors | contention |", "|---|---|---|---|---|---|---|---|---|"]
        for phase in sat["workloads"]:
            for rpc in phase["by_rpc"]:
                l = rpc["latency"]
                out.append(
                    f"| {phase['workload']} | {rpc['name']} | {rpc['per_second']:.0f} | {ms(l['p50_ms'])} "
                    f"| {ms(l['p99_ms'])} | {ms(l['p999_ms'])} | {ms(l['max_ms'])} | {codes(rpc['errors'])} "
                    f"| {codes(rpc['contention'])} |"
                )
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def targets(folder):
    """The issue's targets, each with the figure this run measured."""
    rows = []

    def check(label, value, goal, ok, unit=""):
        rows.append(f"| {label} | {value}{unit} | {goal} | {'met' if ok else 'not met'} |")

    pg = load(folder, "postgres-saturation")
    if pg and pg.get("ceiling"):
        insert = pg["ceiling"]["insert"]["steps"]["per_second"]
        booking = next(w for w in pg["workloads"] if w["workload"] == "booking")
        share = booking["steps"]["per_second"] / insert
        check("PostgreSQL: booking steps/s at saturation, of the Insert ceiling", f"{100 * share:.0f}", "≥ 50%", share >= 0.5, "%")
        records = next(w for w in pg["workloads"] if w["workload"] == "records")
        share = records["fraction_of_ping"] or 0
        check("PostgreSQL: records RPCs/s at saturation, of the Ping ceiling", f"{100 * share:.1f}", "≥ 25%", share >= 0.25, "%")
    for db, name in (("postgres", "PostgreSQL"), ("sqlite", "SQLite")):
        for workload, goal in (("booking", 10), ("records", 10), ("diary-read", 5)):
            half = load(folder, f"{db}-half-{workload}")
            if half is None or (db == "sqlite" and workload != "diary-read"):
                continue
            phase = half["workloads"][0]
            p99 = phase["steps"]["latency"]["p99_ms"]
            check(f"{name}: {workload} step p99 at half saturation", f"{p99:.1f}", f"≤ {goal} ms",
                  p99 <= goal and phase["rpc_errors"] == 0, " ms")
    wide = load(folder, "sqlite-records-128")
    if wide:
        longest = max(r["latency"]["max_ms"] for r in wide["workloads"][0]["by_rpc"])
        check("SQLite: longest call at 128 concurrent streams (records)", f"{longest:.0f}", "≤ 100 ms", longest <= 100, " ms")
    if not rows:
        return ""
    return "\n".join(["### Against the targets of issue 16", "",
                      "| target | measured | goal | |", "|---|---|---|---|", *rows, ""]) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--commit", required=True)
    parser.add_argument("--load", default="unknown")
    parser.add_argument("--databases", default="sqlite postgres")
    parser.add_argument("--benchmarks", required=True)
    args = parser.parse_args()
    text = section(args.folder, args.databases.split(), args.commit, args.load)
    text += "\n" + targets(args.folder)
    with open(args.benchmarks) as f:
        doc = f.read()
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in doc:
        doc = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip() + "\n\n" + block + "\n"
    with open(args.benchmarks, "w") as f:
        f.write(doc)
    print(text)


if __name__ == "__main__":
    main()
