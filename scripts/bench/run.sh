#!/usr/bin/env bash
# Benchmarks medsec-scheduler at NHS-trust sizes and writes docs/BENCHMARKS.md.
#
#   scripts/bench/run.sh            # default sizes
#   SIZES="10000:10:12" RUNS=5 scripts/bench/run.sh
#
# For each size: generate an instance (seed 1), time the whole `solve` process
# RUNS times with /usr/bin/time -v (median wall time, peak RSS), read objective,
# breaches and waits of the solver and of the greedy baseline from the
# solution's stats, and solve the same instance's relaxation with OR-Tools min
# cost flow (Python, installed into a venv by this script) for comparison.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/medsec-bench}"
SIZES="${SIZES:-2000:4:12 10000:10:12 50000:20:12}"
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
    /usr/bin/time -v -o "$WORK/$name.time.$run" "$BIN" solve "$instance" > "$WORK/$name.solution.json" 2> "$WORK/$name.stderr"
  done
  ortools='{"error": "ortools unavailable (pip install failed)"}'
  if [ -n "$ORTOOLS" ]; then
    ortools="$("$ORTOOLS" "$ROOT/scripts/bench/ortools_mcf.py" "$instance" || echo '{"error": "ortools run failed"}')"
  fi
  python3 - "$name" "$referrals" "$specialties" "$weeks" "$WORK" "$RUNS" "$ortools" >> "$RESULTS" <<'PY'
import json, re, statistics, sys
name, referrals, specialties, weeks, work, runs, ortools = sys.argv[1:8]
walls, rss = [], []
for run in range(1, int(runs) + 1):
    text = open(f"{work}/{name}.time.{run}").read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
    walls.append(int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
    rss.append(int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1)))
solution = json.load(open(f"{work}/{name}.solution.json"))
print(json.dumps({
    "name": name, "referrals": int(referrals), "specialties": int(specialties), "weeks": int(weeks),
    "wall_median": statistics.median(walls), "walls": walls, "peak_rss_kb": max(rss),
    "status": solution["status"], "objective": solution["objective"], "stats": solution["stats"],
    "ortools": json.loads(ortools),
}))
PY
  echo "done $name" >&2
done

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
# The SchedulingService section is written by its own bench
# (cargo bench -p medsec-scheduling --bench propose): keep it.
SERVICE_SECTION=$(awk '/^## SchedulingService/{found=1} found' "$ROOT/docs/BENCHMARKS.md" 2>/dev/null || true)
LOAD="$LOAD_BEFORE / $LOAD_AFTER" python3 "$ROOT/scripts/bench/report.py" "$RESULTS" "$RUNS" > "$ROOT/docs/BENCHMARKS.md.new"
if [ -n "$SERVICE_SECTION" ]; then
  printf '\n%s\n' "$SERVICE_SECTION" >> "$ROOT/docs/BENCHMARKS.md.new"
fi
mv "$ROOT/docs/BENCHMARKS.md.new" "$ROOT/docs/BENCHMARKS.md"
echo "wrote docs/BENCHMARKS.md" >&2
