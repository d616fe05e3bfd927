#!/usr/bin/env bash
# Capacity of the suite (docs/CAPACITY.md): `medsec load` against a release
# `medsec serve` with CeilingService on, on SQLite and on PostgreSQL, and the
# figures written into docs/BENCHMARKS.md ("Capacity: medsec load").
#
#   scripts/bench/load.sh                       # both databases, 10 s a phase
#   LOAD_DATABASES=postgres LOAD_DURATION=30 scripts/bench/load.sh
#
# For each database, on a fresh database and server:
#   1. saturation: every workload and the ceiling (Ping, one-row Insert),
#      closed loop at LOAD_CONCURRENCY (32) workers;
#   2. half saturation: each workload open loop at half the step rate it
#      reached in 1 (latency timed from each step's scheduled start);
#   3. audited reads at 128 concurrent streams (the records workload), for
#      the longest wait.
# The generator and the server share this machine's cores: every figure is
# what both together do, the ceiling included, so the fractions compare
# like with like.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${BENCH_DIR:-/var/tmp/medsec-bench}/load"
DATABASES="${LOAD_DATABASES-sqlite postgres}"
DURATION="${LOAD_DURATION:-10}"
WARMUP="${LOAD_WARMUP:-2}"
CONCURRENCY="${LOAD_CONCURRENCY:-32}"
WORKLOADS="booking,records,billing,mixed,diary-read"
PG_ADMIN="${MEDSEC_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/medsec-target-bench}"
mkdir -p "$WORK"
rm -f "$WORK"/*.json "$WORK"/*.md

(cd "$ROOT" && cargo build --release -p medsec --bin medsec)
BIN="$CARGO_TARGET_DIR/release/medsec"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

step_rate() { # the step rate of workload $2 in report $1
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(next(w["steps"]["per_second"] for w in r["workloads"] if w["workload"]==sys.argv[2]))' "$1" "$2"
}

SERVER=""
stop_server() { if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; SERVER=""; fi; }
trap stop_server EXIT

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for db in $DATABASES; do
  case "$db" in
    sqlite)
      rm -f "$WORK"/load.db "$WORK"/load.db-wal "$WORK"/load.db-shm
      url="sqlite://$WORK/load.db?mode=rwc" ;;
    postgres)
      psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS medsec_load" -c "CREATE DATABASE medsec_load"
      url="${PG_ADMIN%/*}/medsec_load" ;;
    *) echo "unknown database $db (sqlite or postgres)" >&2; exit 2 ;;
  esac
  addr="127.0.0.1:$(free_port)"
  MEDSEC__SERVER__CEILING=true MEDSEC__SERVER__LISTEN="$addr" MEDSEC__DATABASE__URL="$url" \
    "$BIN" serve > "$WORK/$db.server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do "$BIN" health --addr "$addr" >/dev/null 2>&1 && break; sleep 0.2; done
  "$BIN" health --addr "$addr" >/dev/null

  common=(--addr "$addr" --database "$url" --duration "$DURATION" --warmup "$WARMUP")
  echo "== $db: saturation, $CONCURRENCY workers"
  "$BIN" load "${common[@]}" --workload "$WORKLOADS" --concurrency "$CONCURRENCY" --ceiling \
    --report "$WORK/$db-saturation" > /dev/null
  for workload in ${WORKLOADS//,/ }; do
    rate=$(python3 -c "print(max(1.0, $(step_rate "$WORK/$db-saturation.json" "$workload") / 2))")
    echo "== $db: $workload at half saturation, $rate steps/s"
    "$BIN" load "${common[@]}" --workload "$workload" --rate "$rate" \
      --report "$WORK/$db-half-$workload" > /dev/null
  done
  echo "== $db: audited reads at 128 streams"
  "$BIN" load "${common[@]}" --workload records --concurrency 128 --connections 1 \
    --report "$WORK/$db-records-128" > /dev/null
  stop_server
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$ROOT/scripts/bench/load_report.py" "$WORK" \
  --commit "$(cd "$ROOT" && git rev-parse --short HEAD)" \
  --load "$LOAD_BEFORE / $LOAD_AFTER" \
  --databases "$DATABASES" \
  --benchmarks "$ROOT/docs/BENCHMARKS.md"
