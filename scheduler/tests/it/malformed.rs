//! Every kind of malformed instance is rejected with an error naming the item.

use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "horizon": { "start": "2026-01-05", "end": "2026-03-29" },
        "slots": [
            { "id": "s1", "specialty": "cardiology", "clinician": "c1",
              "date": "2026-01-05", "start": "09:00", "kind": "new", "capacity": 1 },
            { "id": "s2", "specialty": "cardiology", "clinician": "c1",
              "date": "2026-01-06", "kind": "new" }
        ],
        "referrals": [
            { "id": "r1", "patient": "p1", "specialty": "cardiology",
              "priority": "routine", "clock_start": "2025-11-01", "kind": "new",
              "unavailable": [ { "from": "2026-02-01", "to": "2026-02-14" } ] },
            { "id": "r2", "patient": "p2", "specialty": "cardiology",
              "priority": "urgent", "clock_start": "2025-12-01", "kind": "new" }
        ]
    })
}

fn rejected(edit: impl FnOnce(&mut Value), expect: &[&str]) {
    let mut instance = valid();
    edit(&mut instance);
    let error = medsec_scheduler::load(&instance.to_string())
        .expect_err("instance must be rejected")
        .to_string();
    for part in expect {
        assert!(
            error.contains(part),
            "error {error:?} should mention {part:?}"
        );
    }
}

#[test]
fn the_valid_base_instance_is_accepted() {
    medsec_scheduler::load(&valid().to_string()).unwrap();
}

#[test]
fn unknown_priority() {
    rejected(
        |v| v["referrals"][1]["priority"] = json!("soon"),
        &["referral \"r2\"", "soon"],
    );
}

#[test]
fn unknown_kind() {
    rejected(
        |v| v["slots"][0]["kind"] = json!("walk_in"),
        &["slot \"s1\""],
    );
}

#[test]
fn duplicate_slot_id() {
    rejected(
        |v| v["slots"][1]["id"] = json!("s1"),
        &["slot \"s1\"", "slots[1]", "duplicate"],
    );
}

#[test]
fn duplicate_referral_id() {
    rejected(
        |v| v["referrals"][1]["id"] = json!("r1"),
        &["referral \"r1\"", "duplicate"],
    );
}

#[test]
fn capacity_below_one() {
    rejected(
        |v| v["slots"][1]["capacity"] = json!(0),
        &["slot \"s2\"", "capacity 0"],
    );
    rejected(
        |v| v["slots"][1]["capacity"] = json!(-3),
        &["slot \"s2\"", "capacity -3"],
    );
}

#[test]
fn unavailable_from_after_to() {
    rejected(
        |v| v["referrals"][0]["unavailable"][0]["from"] = json!("2026-02-20"),
        &["referral \"r1\"", "2026-02-20"],
    );
}

#[test]
fn unparsable_dates() {
    rejected(
        |v| v["slots"][0]["date"] = json!("2026-02-30"),
        &["slot \"s1\""],
    );
    rejected(
        |v| v["referrals"][1]["clock_start"] = json!("yesterday"),
        &["referral \"r2\""],
    );
    rejected(
        |v| v["referrals"][0]["earliest"] = json!(20260101),
        &["referral \"r1\""],
    );
    rejected(|v| v["horizon"]["end"] = json!("2026-13-01"), &["horizon"]);
}

#[test]
fn horizon_reversed() {
    rejected(
        |v| v["horizon"]["end"] = json!("2026-01-01"),
        &["horizon", "2026-01-05"],
    );
}

#[test]
fn weights_unknown_or_negative() {
    rejected(
        |v| v["weights"] = json!({ "priority": { "rutine": 2 } }),
        &["weights", "rutine"],
    );
    rejected(
        |v| v["weights"] = json!({ "breach": { "urgent": -1 } }),
        &["weights.breach.urgent"],
    );
    rejected(
        |v| v["weights"] = json!({ "unallocated": -5 }),
        &["weights.unallocated"],
    );
}

#[test]
fn missing_fields_and_empty_ids() {
    rejected(
        |v| {
            v["referrals"][0].as_object_mut().unwrap().remove("patient");
        },
        &["referral \"r1\"", "patient"],
    );
    rejected(
        |v| v["slots"][0]["clinician"] = json!(""),
        &["slot \"s1\"", "clinician"],
    );
    rejected(
        |v| {
            v.as_object_mut().unwrap().remove("slots");
        },
        &["instance", "slots"],
    );
}

#[test]
fn costs_too_large_to_be_exact() {
    rejected(
        |v| v["weights"] = json!({ "priority": { "routine": 4_000_000_000_000_i64 } }),
        &["referral \"r1\"", "too large"],
    );
}
