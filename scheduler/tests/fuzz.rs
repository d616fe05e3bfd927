//! Instance JSON from outside, fuzzed: any text, and valid instances with
//! any field replaced by any JSON value, are either rejected with an
//! `InstanceError` or accepted and then solved to an allocation the
//! evaluator accepts — never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use medsec_scheduler::{SolveOptions, greedy_solution, load, solve};
use proptest::prelude::*;
use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "horizon": { "start": "2026-01-05", "end": "2026-02-01" },
        "slots": [
            { "id": "s1", "specialty": "cardiology", "clinician": "c1",
              "date": "2026-01-05", "start": "09:00", "kind": "new", "capacity": 2 },
            { "id": "s2", "specialty": "cardiology", "clinician": "c2",
              "date": "2026-01-06", "kind": "follow_up" },
            { "id": "s3", "specialty": "cardiology", "clinician": "c1",
              "date": "2026-01-06", "kind": "new" }
        ],
        "referrals": [
            { "id": "r1", "patient": "p1", "specialty": "cardiology",
              "priority": "routine", "clock_start": "2025-11-01", "kind": "new",
              "unavailable": [ { "from": "2026-01-10", "to": "2026-01-14" } ] },
            { "id": "r2", "patient": "p1", "specialty": "cardiology",
              "priority": "urgent", "clock_start": "2025-12-01", "kind": "new",
              "earliest": "2026-01-06", "required_clinician": "c1" },
            { "id": "r3", "patient": "p2", "specialty": "cardiology",
              "priority": "two_week_wait", "clock_start": "2025-12-20",
              "kind": "follow_up", "preferred_clinician": "c2" }
        ]
    })
}

/// Any JSON value, from the awkward ends of each kind.
fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            "2026-01-05",
            "2026-02-30",
            "0000-01-01",
            "9999-12-31",
            "+275760-01-01",
            "-0001-01-01",
            "25:00",
            "09:00",
            "new",
            "follow_up",
            "routine",
            "urgent",
            "two_week_wait",
            "s1",
            "r1",
            "p1",
            "c1",
            "cardiology",
            "\u{0}",
            "👩‍⚕️",
        ])
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// The places a value can go: a top-level field, or a field of one slot or
/// referral (known fields and others).
fn any_place() -> impl Strategy<Value = (String, usize, String)> {
    let fields = prop::sample::select(vec![
        "id",
        "patient",
        "specialty",
        "clinician",
        "date",
        "start",
        "kind",
        "capacity",
        "priority",
        "clock_start",
        "earliest",
        "unavailable",
        "required_clinician",
        "preferred_clinician",
        "due",
        "surprise",
    ]);
    (
        prop::sample::select(vec!["horizon", "slots", "referrals", "weights", "top"]),
        0_usize..4,
        fields.prop_map(str::to_owned),
    )
        .prop_map(|(part, index, field)| (part.to_owned(), index, field))
}

fn put(instance: &mut Value, (part, index, field): &(String, usize, String), value: Value) {
    match part.as_str() {
        "top" => instance[field.as_str()] = value,
        "horizon" | "weights" => {
            if !instance[part.as_str()].is_object() {
                instance[part.as_str()] = json!({});
            }
            let name = if *index % 2 == 0 {
                "start"
            } else {
                field.as_str()
            };
            instance[part.as_str()][name] = value;
        }
        list => {
            let items = instance[list].as_array_mut().expect("a list");
            match items.get_mut(*index) {
                Some(item) => item[field.as_str()] = value,
                // One past the end: a copy of the first with the value.
                None => {
                    let mut copy = items[0].clone();
                    copy[field.as_str()] = value;
                    items.push(copy);
                }
            }
        }
    }
}

/// Loads `text`; when accepted, solves it and checks the allocation.
fn load_and_solve(text: &str) {
    let Ok(problem) = load(text) else { return };
    let options = SolveOptions {
        time_limit: Some(5.0),
        threads: 1,
        ..SolveOptions::default()
    };
    let solution = solve(&problem, &options).expect("an accepted instance solves");
    let greedy = greedy_solution(&problem);
    assert!(
        solution.objective <= greedy.objective,
        "never worse than greedy"
    );
}

#[test]
fn the_base_instance_is_accepted_and_solved() {
    let problem = load(&valid().to_string()).expect("valid");
    assert!(solve(&problem, &SolveOptions::default()).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_is_rejected_or_solved(text in ".{0,200}") {
        load_and_solve(&text);
    }

    #[test]
    fn any_value_anywhere_is_rejected_or_solved(
        edits in prop::collection::vec((any_place(), any_value()), 1..4)
    ) {
        let mut instance = valid();
        for (place, value) in edits {
            put(&mut instance, &place, value);
        }
        load_and_solve(&instance.to_string());
    }

    #[test]
    fn truncated_instances_are_rejected_or_solved(cut in 0_usize..2000) {
        let text = valid().to_string();
        let cut = text.char_indices().map(|(i, _)| i).find(|&i| i >= cut).unwrap_or(text.len());
        load_and_solve(&text[..cut]);
    }
}
