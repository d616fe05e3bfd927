#!/usr/bin/env bash
# Benchmarks medsec-scheduler at NHS-trust sizes and writes docs/BENCHMARKS.md.
#
#   scripts/bench/run.sh            # default sizes
#   SIZES="10000:10:12" RUNS=5 scripts/bench/run.sh
#   DENSE="400:1:0.8" CPSAT_LIMIT=60 scripts/bench/run.sh
#   SIZES="" DENSE="" ...   # either part alone (empty list: skip it)
#
# For each size: generate an instance (seed 1), time the whole `solve` process
# RUNS times with /usr/bin/time -v (median wall time, peak RSS), read objective,
# breaches and waits of the solver and of the greedy baseline from the
# solution's stats, and solve the same instance's relaxation with OR-Tools min
# cost flow (Python, installed into a venv by this script) for comparison.
#
# Then the clash-dense lists (DENSE: referrals:specialties:share, 12 weeks,
# seed 1, `generate --multi-referral-share SHARE`): most patients referred
# twice the same day. Each is timed the same way and checked independently on
# the full model, patient-per-day rule included, built from the JSON by
# scripts/bench/ortools_exact.py: OR-Tools' SCIP (MIP, SCIP_LIMIT seconds),
# CP-SAT (hinted with our allocation, CPSAT_LIMIT seconds on 2 workers), and
# the LP relaxation with every patient-day row (GLOP).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/medsec-bench}"
SIZES="${SIZES-2000:4:12 10000:10:12 50000:20:12}"
DENSE="${DENSE-300:1:0.8 350:1:0.9 400:1:0.8 600:1:0.8 1000:1:0.8 600:2:0.7 1000:2:0.9}"
CPSAT_LIMIT="${CPSAT_LIMIT:-30}"
SCIP_LIMIT="${SCIP_LIMIT:-300}"
RUNS="${RUNS:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/medsec-target-sched}"
mkdir -p "$WORK"

(cd "$ROOT" && cargo build --release -p medsec-scheduler --bin medsec-scheduler)
BIN="$CARGO_TARGET_DIR/release/medsec-scheduler"

ORTOOLS="$WORK/venv/bin/python"
if [ ! -x "$ORTOOLS" ] || ! "$ORTOOLS" -c 'import ortools' 2>/dev/null; then
  python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install -q ortools numpy \
    || echo "pip could not install ortools; the OR-Tools column will say so" >&2
fi
if ! "$ORTOOLS" -c 'import ortools' 2>/dev/null; then ORTOOLS=""; fi

# Other work on the machine slows every figure; record the load to read them by.
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
for size in $SIZES; do
  IFS=: read -r referrals specialties weeks <<< "$size"
  name="r${referrals}-s${specialties}-w${weeks}"
  instance="$WORK/$name.json"
  "$BIN" generate --referrals "$referrals" --specialties "$specialties" --weeks "$weeks" --seed 1 > "$instance"
  for run in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$WORK/$name.time.$run" "$BIN" solve "$instance" > "$WORK/$name.solution.$run.json" 2> "$WORK/$name.stderr"
  done
  cp "$WORK/$name.solution.$RUNS.json" "$WORK/$name.solution.json"
  ortools='{"error": "ortools unavailable (pip install failed)"}'
  if [ -n "$ORTOOLS" ]; then
    ortools="$("$ORTOOLS" "$ROOT/scripts/bench/ortools_mcf.py" "$instance" || echo '{"error": "ortools run failed"}')"
  fi
  python3 - "$name" "$referrals" "$specialties" "$weeks" "$WORK" "$RUNS" "$ortools" >> "$RESULTS" <<'PY'
import json, re, statistics, sys
name, referrals, specialties, weeks, work, runs, ortools = sys.argv[1:8]
walls, rss, cpus = [], [], []
for run in range(1, int(runs) + 1):
    text = open(f"{work}/{name}.time.{run}").read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    walls.append(int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
    rss.append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)))
    cpus.append(float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
                + float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1)))
# Stage times and the like from the run of median wall time (the last
# run's may be the one another process disturbed).
median_run = sorted(range(len(walls)), key=lambda i: walls[i])[len(walls) // 2] + 1
solution = json.load(open(f"{work}/{name}.solution.{median_run}.json"))
print(json.dumps({
    "name": name, "referrals": int(referrals), "specialties": int(specialties), "weeks": int(weeks),
    "wall_median": statistics.median(walls), "walls": walls, "peak_rss_kb": max(rss),
    "cpu_median": statistics.median(cpus),
    "status": solution["status"], "objective": solution["objective"], "stats": solution["stats"],
    "ortools": json.loads(ortools),
}))
PY
  echo "done $name" >&2
done

DENSE_RESULTS="$WORK/dense.jsonl"
: > "$DENSE_RESULTS"
for size in $DENSE; do
  IFS=: read -r referrals specialties share <<< "$size"
  name="dense-r${referrals}-s${specialties}-m${share}"
  instance="$WORK/$name.json"
  "$BIN" generate --referrals "$referrals" --specialties "$specialties" --weeks 12 --seed 1 \
    --multi-referral-share "$share" > "$instance"
  for run in $(seq "$RUNS"); do
    /usr/bin/time -v -o "$WORK/$name.time.$run" "$BIN" solve "$instance" > "$WORK/$name.solution.$run.json" 2> "$WORK/$name.stderr"
  done
  cp "$WORK/$name.solution.$RUNS.json" "$WORK/$name.solution.json"
  cpsat='{"error": "ortools unavailable (pip install failed)"}'
  if [ -n "$ORTOOLS" ]; then
    cpsat="$("$ORTOOLS" "$ROOT/scripts/bench/ortools_exact.py" "$instance" --hint "$WORK/$name.solution.json" \
      --time-limit "$CPSAT_LIMIT" --workers 2 --lp --scip-limit "$SCIP_LIMIT" || echo '{"error": "or-tools run failed"}')"
  fi
  python3 - "$name" "$referrals" "$specialties" "$share" "$WORK" "$RUNS" "$cpsat" "$instance" >> "$DENSE_RESULTS" <<'PY'
import json, re, statistics, sys
name, referrals, specialties, share, work, runs, cpsat, instance = sys.argv[1:9]
walls = []
for run in range(1, int(runs) + 1):
    text = open(f"{work}/{name}.time.{run}").read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    walls.append(int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
# Stage times and the like from the run of median wall time (the last
# run's may be the one another process disturbed).
median_run = sorted(range(len(walls)), key=lambda i: walls[i])[len(walls) // 2] + 1
solution = json.load(open(f"{work}/{name}.solution.{median_run}.json"))
inst = json.load(open(instance))
per_patient = {}
for r in inst["referrals"]:
    per_patient[r["patient"]] = per_patient.get(r["patient"], 0) + 1
several = sum(1 for n in per_patient.values() if n > 1)
print(json.dumps({
    "name": name, "referrals": int(referrals), "specialties": int(specialties), "share": float(share),
    "patients": len(per_patient), "patients_several": several,
    "wall_median": statistics.median(walls), "walls": walls,
    "status": solution["status"], "objective": solution["objective"], "stats": solution["stats"],
    "cpsat": json.loads(cpsat),
}))
PY
  echo "done $name" >&2
done

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
# The SchedulingService section is written by its own bench
# (cargo bench -p medsec-scheduling --bench propose): keep it.
SERVICE_SECTION=$(awk '/^## SchedulingService/{found=1} found' "$ROOT/docs/BENCHMARKS.md" 2>/dev/null || true)
LOAD="$LOAD_BEFORE / $LOAD_AFTER" CPSAT_LIMIT="$CPSAT_LIMIT" SCIP_LIMIT="$SCIP_LIMIT" python3 "$ROOT/scripts/bench/report.py" "$RESULTS" "$RUNS" "$DENSE_RESULTS" > "$ROOT/docs/BENCHMARKS.md.new"
if [ -n "$SERVICE_SECTION" ]; then
  printf '\n%s\n' "$SERVICE_SECTION" >> "$ROOT/docs/BENCHMARKS.md.new"
fi
mv "$ROOT/docs/BENCHMARKS.md.new" "$ROOT/docs/BENCHMARKS.md"
echo "wrote docs/BENCHMARKS.md" >&2
