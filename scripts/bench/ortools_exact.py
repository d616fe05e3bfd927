#!/usr/bin/env python3
"""Solve an allocation-model-v1 instance exactly with OR-Tools: SCIP (MIP,
bundled with OR-Tools) and CP-SAT.

Run by scripts/bench/run.sh on the clash-dense lists only: an independent exact
check of medsec-scheduler's proven optimum, patient-per-day rule included.
SCIP's branch and cut proves these optima in seconds (its LP with the
patient-day rows is tight, as the scheduler's is); CP-SAT, run with our
allocation as a hint, gets within a small gap but rarely closes it in a
minute, so its figures are reported as its proven bound.

The model is built here from the instance JSON alone, with no code shared with
the scheduler: one Boolean per (referral, date) for a referral with no
clinician wish, per (referral, date, bin of its required clinician) for one
with a requirement, and both kinds for one with a preference (the direct one
without the preference charge); a referral takes at most one; each date and
each (date, clinician) bin holds at most its slots' capacity; each patient
takes at most one per date. A referral that takes none pays its unallocated
cost. Date-level variables are enough because every slot of a (date,
clinician) costs the same and a feasible split into slots always exists
(counting argument, as in the scheduler's split).

Usage: ortools_exact.py INSTANCE.json [--hint SOLUTION.json] [--time-limit S]
       [--workers N] [--lp] [--below OBJECTIVE] [--scip-limit S]
Prints one JSON line: status, objective, bound, seconds, variables, and with
--lp the LP relaxation's value (GLOP) for comparison. With --below N it does
not optimise but asks whether any allocation costs less than N: "infeasible"
is CP-SAT's proof that N is a lower bound, so with an allocation of cost N in
hand, that N is the optimum. --scip-limit S (default 0: skip) also solves
the model with SCIP and adds scip_status, scip_objective, scip_bound and
scip_seconds. --time-limit 0 skips CP-SAT.
"""

import argparse
import datetime
import json
import sys
import time

from ortools.sat.python import cp_model

DEFAULT = {
    "target_days": {"two_week_wait": 14, "urgent": 28, "routine": 126},
    "priority": {"two_week_wait": 20, "urgent": 5, "routine": 1},
    "breach": {"two_week_wait": 200000, "urgent": 50000, "routine": 20000},
    "preference": 20,
    "unallocated": 1000,
}


def day(text):
    return datetime.date.fromisoformat(text).toordinal()


def build(inst):
    w = json.loads(json.dumps(DEFAULT))
    for table in ("target_days", "priority", "breach"):
        w[table].update(inst.get("weights", {}).get(table, {}))
    for key in ("preference", "unallocated"):
        if key in inst.get("weights", {}):
            w[key] = inst["weights"][key]
    h0, h1 = day(inst["horizon"]["start"]), day(inst["horizon"]["end"])
    date_cap, bin_cap, slot_of = {}, {}, {}
    for s in inst["slots"]:
        d = day(s["date"])
        if d < h0 or d > h1:
            continue
        key = (s["specialty"], s["kind"], d)
        date_cap[key] = date_cap.get(key, 0) + s.get("capacity", 1)
        bkey = key + (s["clinician"],)
        bin_cap[bkey] = bin_cap.get(bkey, 0) + s.get("capacity", 1)
        slot_of.setdefault(bkey, []).append(s)
    dates_of = {}
    for (sp, kind, d) in date_cap:
        dates_of.setdefault((sp, kind), []).append(d)
    for v in dates_of.values():
        v.sort()
    # arcs: (referral index, date key, bin key or None, cost)
    arcs, constant = [], 0
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
                if key + (req,) in bin_cap:
                    miss = w["preference"] if pref is not None and pref != req else 0
                    arcs.append((r_i, key, key + (req,), base + miss))
                continue
            arcs.append((r_i, key, None, base + (w["preference"] if pref is not None else 0)))
            if pref is not None and key + (pref,) in bin_cap:
                arcs.append((r_i, key, key + (pref,), base))
    return arcs, constant, date_cap, bin_cap


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("instance")
    parser.add_argument("--hint")
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--lp", action="store_true")
    parser.add_argument("--scip-limit", type=float, default=0.0)
    parser.add_argument("--below", type=int,
                        help="instead of optimising, prove that no allocation costs less than this")
    args = parser.parse_args()
    started = time.perf_counter()
    with open(args.instance) as f:
        inst = json.load(f)
    arcs, constant, date_cap, bin_cap = build(inst)
    refs = inst["referrals"]

    result = {}
    if args.lp:
        from ortools.linear_solver import pywraplp
        lp = pywraplp.Solver.CreateSolver("GLOP")
        xs = [lp.NumVar(0, 1, "") for _ in arcs]
        add_rows(lp, xs, arcs, refs, date_cap, bin_cap, lambda e, ub: lp.Add(e <= ub), lp.Sum)
        lp.Minimize(lp.Sum(c * x for x, (_, _, _, c) in zip(xs, arcs)))
        t = time.perf_counter()
        lp.Solve()
        result["lp_value"] = lp.Objective().Value() + constant
        result["lp_seconds"] = round(time.perf_counter() - t, 3)

    if args.scip_limit > 0:
        from ortools.linear_solver import pywraplp
        mip = pywraplp.Solver.CreateSolver("SCIP")
        ys = [mip.BoolVar("") for _ in arcs]
        add_rows(mip, ys, arcs, refs, date_cap, bin_cap, lambda e, ub: mip.Add(e <= ub), mip.Sum)
        mip.Minimize(mip.Sum(c * y for y, (_, _, _, c) in zip(ys, arcs)))
        mip.SetTimeLimit(int(args.scip_limit * 1000))
        t = time.perf_counter()
        status = mip.Solve()
        names = {pywraplp.Solver.OPTIMAL: "optimal", pywraplp.Solver.FEASIBLE: "feasible"}
        found = status in names
        result.update({
            "scip_status": names.get(status, "unknown"),
            "scip_objective": int(round(mip.Objective().Value())) + constant if found else None,
            "scip_bound": int(round(mip.Objective().BestBound())) + constant if found else None,
            "scip_seconds": round(time.perf_counter() - t, 3),
        })
    if args.time_limit <= 0:
        result.update({"variables": len(arcs), "total_seconds": round(time.perf_counter() - started, 3)})
        print(json.dumps(result))
        return 0

    model = cp_model.CpModel()
    xs = [model.NewBoolVar("") for _ in arcs]
    add_rows(model, xs, arcs, refs, date_cap, bin_cap, lambda e, ub: model.Add(e <= ub), sum)
    cost = sum(c * x for x, (_, _, _, c) in zip(xs, arcs))
    if args.below is not None:
        # Any allocation cheaper than `below`? INFEASIBLE proves `below` is
        # a lower bound (with a solution of that cost, the optimum).
        model.Add(cost <= args.below - 1 - constant)
    else:
        model.Minimize(cost)
    if args.hint and args.below is None:
        with open(args.hint) as f:
            solution = json.load(f)
        slot_index = {s["id"]: s for s in inst["slots"]}
        ref_index = {r["id"]: i for i, r in enumerate(refs)}
        chosen = {}
        for a in solution["allocations"]:
            s = slot_index[a["slot"]]
            chosen[ref_index[a["referral"]]] = (s["specialty"], s["kind"], day(s["date"]), s["clinician"])
        taken = set()
        for i, (r_i, key, bkey, _) in enumerate(arcs):
            c = chosen.get(r_i)
            hit = c is not None and c[:3] == key and r_i not in taken and (
                bkey is None and refs[r_i].get("preferred_clinician") != c[3] or bkey == c)
            if hit:
                taken.add(r_i)
            model.AddHint(xs[i], 1 if hit else 0)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = args.time_limit
    solver.parameters.num_workers = args.workers
    # The LP relaxation with the patient-day rows is what proves these
    # optima; level 2 keeps the full LP (with cuts) in every LP worker.
    solver.parameters.linearization_level = 2
    t = time.perf_counter()
    status = solver.Solve(model)
    if args.below is not None:
        result.update({
            "status": solver.StatusName(status).lower(),
            "below": args.below,
            "seconds": round(time.perf_counter() - t, 3),
            "total_seconds": round(time.perf_counter() - started, 3),
            "variables": len(arcs),
        })
        print(json.dumps(result))
        return 0
    result.update({
        "status": solver.StatusName(status).lower(),
        "objective": int(round(solver.ObjectiveValue())) + constant if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None,
        "bound": int(round(solver.BestObjectiveBound())) + constant,
        "seconds": round(time.perf_counter() - t, 3),
        "total_seconds": round(time.perf_counter() - started, 3),
        "variables": len(arcs),
    })
    print(json.dumps(result))
    return 0


def add_rows(model, xs, arcs, refs, date_cap, bin_cap, add, total):
    per_ref, per_date, per_bin, per_patient_day = {}, {}, {}, {}
    for x, (r_i, key, bkey, _) in zip(xs, arcs):
        per_ref.setdefault(r_i, []).append(x)
        per_date.setdefault(key, []).append(x)
        if bkey is not None:
            per_bin.setdefault(bkey, []).append(x)
        per_patient_day.setdefault((refs[r_i]["patient"], key[2]), set()).add(r_i)
    for v in per_ref.values():
        if len(v) > 1:
            add(total(v), 1)
    for key, v in per_date.items():
        add(total(v), date_cap[key])
    for key, v in per_bin.items():
        add(total(v), bin_cap[key])
    by_patient_day = {}
    for x, (r_i, key, _, _) in zip(xs, arcs):
        pd = (refs[r_i]["patient"], key[2])
        if len(per_patient_day[pd]) > 1:
            by_patient_day.setdefault(pd, []).append(x)
    for v in by_patient_day.values():
        add(total(v), 1)


if __name__ == "__main__":
    sys.exit(main())
