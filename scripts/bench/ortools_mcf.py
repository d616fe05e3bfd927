#!/usr/bin/env python3
"""Solve an allocation-model-v1 instance's relaxation with OR-Tools min-cost flow.

Run by scripts/bench/run.sh only. The network is the one medsec-scheduler's
flow engine solves (referral -> date hub or (date, clinician) bin -> date ->
sink, plus referral -> sink for "unallocated"), built here independently from
the instance JSON, one node per referral (no class aggregation). OR-Tools' min
cost flow cannot express the patient-per-day rule, so its objective is that of
the relaxation: it equals the scheduler's optimum when no patient-day clash
needed resolving, and is a lower bound otherwise.

Prints one JSON line: objective, seconds (solver only), total_seconds, arcs.
"""

import datetime
import json
import sys
import time

import numpy as np
from ortools.graph.python import min_cost_flow

DEFAULT = {
    "target_days": {"two_week_wait": 14, "urgent": 28, "routine": 126},
    "priority": {"two_week_wait": 20, "urgent": 5, "routine": 1},
    "breach": {"two_week_wait": 200000, "urgent": 50000, "routine": 20000},
    "preference": 20,
    "unallocated": 1000,
}


def day(text):
    return datetime.date.fromisoformat(text).toordinal()


def main(path):
    started = time.perf_counter()
    with open(path) as f:
        inst = json.load(f)
    w = json.loads(json.dumps(DEFAULT))
    for table in ("target_days", "priority", "breach"):
        w[table].update(inst.get("weights", {}).get(table, {}))
    for key in ("preference", "unallocated"):
        if key in inst.get("weights", {}):
            w[key] = inst["weights"][key]
    h0, h1 = day(inst["horizon"]["start"]), day(inst["horizon"]["end"])

    # Hubs: (specialty, kind, date) and (specialty, kind, date, clinician).
    date_cap, bin_cap = {}, {}
    for s in inst["slots"]:
        d = day(s["date"])
        if d < h0 or d > h1:
            continue
        key = (s["specialty"], s["kind"], d)
        date_cap[key] = date_cap.get(key, 0) + s.get("capacity", 1)
        bkey = key + (s["clinician"],)
        bin_cap[bkey] = bin_cap.get(bkey, 0) + s.get("capacity", 1)
    dates_of = {}
    for (sp, kind, d) in date_cap:
        dates_of.setdefault((sp, kind), []).append(d)
    for v in dates_of.values():
        v.sort()

    n_ref = len(inst["referrals"])
    date_index = {k: n_ref + i for i, k in enumerate(sorted(date_cap))}
    bin_index = {k: n_ref + len(date_index) + i for i, k in enumerate(sorted(bin_cap))}
    sink = n_ref + len(date_index) + len(bin_index)
    tails, heads, caps, costs = [], [], [], []
    constant = 0
    for r_i, r in enumerate(inst["referrals"]):
        p = r["priority"]
        cs = day(r["clock_start"])
        due = day(r["due"]) if r.get("due") else cs + w["target_days"][p]
        first = max(cs, h0, day(r["earliest"]) if r.get("earliest") else cs)
        unavailable = [(day(u["from"]), day(u["to"])) for u in r.get("unavailable", [])]
        wl = max(0, h1 + 1 - cs)
        unalloc = w["priority"][p] * wl * wl + w["unallocated"] + (w["breach"][p] if h1 + 1 > due else 0)
        constant += unalloc
        req, pref = r.get("required_clinician"), r.get("preferred_clinician")
        for d in dates_of.get((r["specialty"], r["kind"]), []):
            if d < first or any(a <= d <= b for a, b in unavailable):
                continue
            base = w["priority"][p] * (d - cs) ** 2 + (w["breach"][p] if d > due else 0) - unalloc
            key = (r["specialty"], r["kind"], d)
            if req is not None:
                b = bin_index.get(key + (req,))
                if b is not None:
                    miss = w["preference"] if pref is not None and pref != req else 0
                    tails.append(r_i); heads.append(b); caps.append(1); costs.append(base + miss)
                continue
            miss = w["preference"] if pref is not None else 0
            tails.append(r_i); heads.append(date_index[key]); caps.append(1); costs.append(base + miss)
            if pref is not None and key + (pref,) in bin_index:
                tails.append(r_i); heads.append(bin_index[key + (pref,)]); caps.append(1); costs.append(base)
        tails.append(r_i); heads.append(sink); caps.append(1); costs.append(0)
    for key, b in bin_index.items():
        tails.append(b); heads.append(date_index[key[:3]]); caps.append(bin_cap[key]); costs.append(0)
    for key, d in date_index.items():
        tails.append(d); heads.append(sink); caps.append(date_cap[key]); costs.append(0)

    mcf = min_cost_flow.SimpleMinCostFlow()
    mcf.add_arcs_with_capacity_and_unit_cost(
        np.array(tails, dtype=np.int64), np.array(heads, dtype=np.int64),
        np.array(caps, dtype=np.int64), np.array(costs, dtype=np.int64))
    supplies = np.zeros(sink + 1, dtype=np.int64)
    supplies[:n_ref] = 1
    supplies[sink] = -n_ref
    mcf.set_nodes_supplies(np.arange(sink + 1, dtype=np.int64), supplies)
    t = time.perf_counter()
    status = mcf.solve()
    solve_seconds = time.perf_counter() - t
    if status != mcf.OPTIMAL:
        print(json.dumps({"error": f"status {status}"}))
        return 1
    print(json.dumps({
        "objective": int(mcf.optimal_cost()) + constant,
        "seconds": round(solve_seconds, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "arcs": len(tails),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
