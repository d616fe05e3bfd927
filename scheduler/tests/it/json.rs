//! The wire format matches allocation-model.md exactly.

use medsec_scheduler::model::{Instance, Solution};
use serde_json::{Value, json};

fn documented_instance() -> Value {
    json!({
      "horizon": { "start": "2026-01-05", "end": "2026-03-29" },
      "weights": { "priority": { "routine": 1 } },
      "slots": [
        { "id": "s1", "specialty": "cardiology", "clinician": "c1",
          "date": "2026-01-05", "start": "09:00", "kind": "new", "capacity": 1 }
      ],
      "referrals": [
        { "id": "r1", "patient": "p1", "specialty": "cardiology",
          "priority": "routine", "clock_start": "2025-11-01", "kind": "new",
          "earliest": "2026-01-10",
          "unavailable": [ { "from": "2026-02-01", "to": "2026-02-14" } ],
          "required_clinician": null, "preferred_clinician": "c2" }
      ]
    })
}

#[test]
fn documented_instance_round_trips_exactly() {
    let text = documented_instance().to_string();
    let instance = Instance::from_json(&text).unwrap();
    assert_eq!(
        serde_json::to_value(&instance).unwrap(),
        documented_instance()
    );
    medsec_scheduler::validate(&instance).unwrap();
}

#[test]
fn documented_solution_round_trips_exactly() {
    let documented = json!({ "status": "optimal", "objective": 1234567,
      "allocations": [ { "referral": "r1", "slot": "s1" } ],
      "unallocated": [ "r7" ],
      "stats": { "solve_seconds": 0.42, "referrals": 1, "slots": 1 } });
    let solution: Solution = serde_json::from_value(documented.clone()).unwrap();
    assert_eq!(serde_json::to_value(&solution).unwrap(), documented);
}

#[test]
fn solving_the_documented_instance_gives_the_documented_shape() {
    let problem = medsec_scheduler::load(&documented_instance().to_string()).unwrap();
    let solution = medsec_scheduler::solve(&problem, &Default::default()).unwrap();
    let value: Value = serde_json::from_str(&solution.to_json()).unwrap();
    // r1 may not be seen before 2026-01-10 and s1 is on 2026-01-05.
    assert_eq!(value["status"], "optimal");
    assert_eq!(value["allocations"], json!([]));
    assert_eq!(value["unallocated"], json!(["r1"]));
    // Unallocated: w' = 2026-03-30 - 2025-11-01 = 149 days, routine P = 1,
    // due 2025-11-01 + 126 = 2026-03-07 < 2026-03-30 so breach 20000, plus U.
    assert_eq!(value["objective"], 149 * 149 + 20_000 + 1000);
    for key in ["solve_seconds", "referrals", "slots"] {
        assert!(value["stats"].get(key).is_some(), "stats.{key}");
    }
}
