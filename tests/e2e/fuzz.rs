//! Seeded random requests to every RPC, generated from the compiled
//! descriptor set: every field of the request (nested messages, timestamps
//! and field masks included) is present or not at random, strings drawn from
//! ids, dates, names, etags, tokens and junk of every script, integers and
//! enums from their extremes, repeated fields of random length, now and then
//! a field of a number the message does not have. Each answer must be a
//! documented code, within seconds — never `INTERNAL`, `UNKNOWN` or a hang —
//! so every request's decoding into domain values is exercised far beyond
//! the hand-written tests. `make test` runs a few cases per RPC on both
//! databases; `MEDSEC_FUZZ_CASES` runs more (and `MEDSEC_FUZZ_SEED` another
//! sequence).

use std::collections::HashMap;

use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, TestDatabase};
use prost_types::DescriptorProto;
use prost_types::field_descriptor_proto::{Label, Type};
use tonic::Code;

use crate::descriptors::{descriptor_set, length_delimited, messages, rpcs, varint};
use crate::dice::Dice;
use crate::harness::start;
use crate::hostile::judged;

both_backends!(random_requests_to_every_rpc_get_documented_answers);

/// Cases per RPC unless `MEDSEC_FUZZ_CASES` says otherwise.
const DEFAULT_CASES: usize = 12;
/// Nested messages are filled down to this depth.
const DEPTH: usize = 3;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Strings a client might send, well-formed or not.
fn a_string(dice: &mut Dice) -> String {
    const FIXED: &[&str] = &[
        "",
        "   ",
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "2026-06-01",
        "1880-01-01",
        "2199-12-31",
        "0000-01-01",
        "9999-12-31",
        "2026-02-30",
        "+2026-01-01",
        "Ada",
        "O'Brien-Smith",
        "👩‍⚕️🩺",
        "\u{202E}evol\u{202C}",
        "Lo\0ve",
        "\u{FEFF}",
        "943 476 5919",
        "9434765918",
        "SW1A 1AA",
        "sw1a1aa",
        "W/\"1\"",
        "\"3\"",
        "\"-1\"",
        "\"99999999999999999999\"",
        "*",
        "given_name",
        "patient.given_name",
        "cardiology",
        "consultant",
        "application/pdf",
        "text/plain; charset=\"utf\0-8\"",
        "eyJrIjoiMDE5MGE1YjItN2MxZS03MDAwLTgwMDAtMDAwMDAwMDAwMDAxIiwiZiI6IngifQ",
    ];
    match dice.below(6) {
        0 => uuid::Uuid::from_u64_pair(dice.next(), dice.next()).to_string(),
        1 => uuid::Uuid::now_v7().to_string(),
        2 => {
            // Any characters at all, of any script, controls included.
            let length = dice.below(40);
            (0..length)
                .map(|_| {
                    let code = match dice.below(4) {
                        0 => dice.below(0x80),
                        1 => dice.below(0x800),
                        2 => dice.below(0x1_0000),
                        _ => dice.below(0x11_0000),
                    };
                    char::from_u32(u32::try_from(code).unwrap_or(0)).unwrap_or('\u{FFFD}')
                })
                .collect()
        }
        3 => "x".repeat(dice.below(400)),
        _ => (*dice.pick(FIXED)).to_owned(),
    }
}

fn an_integer(dice: &mut Dice) -> u64 {
    const FIXED: &[i64] = &[
        0,
        1,
        -1,
        7,
        100,
        1000,
        i32::MAX as i64,
        i32::MIN as i64,
        i64::MAX,
        i64::MIN,
    ];
    if dice.below(4) == 0 {
        dice.next()
    } else {
        *dice.pick(FIXED) as u64
    }
}

/// A random encoding of `message`.
fn encode(
    message: &DescriptorProto,
    all: &HashMap<String, DescriptorProto>,
    dice: &mut Dice,
    depth: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    for field in &message.field {
        if dice.below(4) == 0 {
            continue;
        }
        let repeats = if field.label() == Label::Repeated {
            [0, 1, 2, 3, 30][dice.below(5)]
        } else {
            1
        };
        for _ in 0..repeats {
            value(
                field.number(),
                field.r#type(),
                field.type_name(),
                all,
                dice,
                depth,
                &mut out,
            );
        }
    }
    if dice.below(16) == 0 {
        // A field this version does not know: skipped by the decoder.
        value(999, Type::String, "", all, dice, depth, &mut out);
    }
    out
}

fn value(
    number: i32,
    kind: Type,
    type_name: &str,
    all: &HashMap<String, DescriptorProto>,
    dice: &mut Dice,
    depth: usize,
    out: &mut Vec<u8>,
) {
    let tag = u64::from(number.unsigned_abs()) << 3;
    match kind {
        Type::String | Type::Bytes => length_delimited(number, a_string(dice).as_bytes(), out),
        Type::Message if type_name == ".google.protobuf.Timestamp" => {
            let mut timestamp = Vec::new();
            let seconds: &[i64] = &[0, -1, 1_780_000_000, 253_402_300_800, i64::MIN, i64::MAX];
            let nanos: &[i64] = &[0, 999_999_999, 1_000_000_000, -1];
            varint(1 << 3, &mut timestamp);
            varint(*dice.pick(seconds) as u64, &mut timestamp);
            varint(2 << 3, &mut timestamp);
            varint(*dice.pick(nanos) as u64, &mut timestamp);
            length_delimited(number, &timestamp, out);
        }
        Type::Message if type_name == ".google.protobuf.FieldMask" => {
            let mut mask = Vec::new();
            for _ in 0..dice.below(4) {
                length_delimited(1, a_string(dice).as_bytes(), &mut mask);
            }
            length_delimited(number, &mask, out);
        }
        Type::Message if depth > 0 => {
            if let Some(nested) = all.get(type_name) {
                let bytes = encode(nested, all, dice, depth - 1);
                length_delimited(number, &bytes, out);
            }
        }
        Type::Enum => {
            varint(tag, out);
            let enums: &[i64] = &[0, 1, 2, 3, 4, 5, 8, -1, 1000];
            varint(*dice.pick(enums) as u64, out);
        }
        Type::Bool => {
            varint(tag, out);
            varint(dice.next() & 1, out);
        }
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => {
            varint(tag, out);
            varint(an_integer(dice), out);
        }
        Type::Double | Type::Fixed64 | Type::Sfixed64 => {
            varint(tag | 1, out);
            out.extend_from_slice(&dice.next().to_le_bytes());
        }
        Type::Float | Type::Fixed32 | Type::Sfixed32 => {
            varint(tag | 5, out);
            out.extend_from_slice(&dice.next().to_le_bytes()[..4]);
        }
        _ => {}
    }
}

async fn random_requests_to_every_rpc_get_documented_answers(backend: Backend) {
    let cases = env_number("MEDSEC_FUZZ_CASES", DEFAULT_CASES as u64);
    let seed = env_number("MEDSEC_FUZZ_SEED", 20_261_201);
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let set = descriptor_set();
    let all = messages(&set);
    let mut dice = Dice::new(seed);
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut answered: HashMap<Code, usize> = HashMap::new();
    for (path, method) in rpcs(&set) {
        let input = &all[method.input_type()];
        for case in 0..cases {
            let body = encode(input, &all, &mut dice, DEPTH);
            calls += 1;
            match judged(&suite.channel, &path, body.clone()).await {
                Ok(code) => *answered.entry(code).or_default() += 1,
                Err(failure) => failures.push(format!("{path} case {case} ({body:?}): {failure}")),
            }
        }
    }
    assert!(suite.health("").await.is_ok(), "the server still answers");
    // The requests reach the handlers: the caller holds every role, and some
    // requests get past decoding to the store.
    for code in [Code::Unauthenticated, Code::PermissionDenied] {
        assert_eq!(answered.get(&code), None, "{answered:?}");
    }
    for code in [Code::Ok, Code::InvalidArgument, Code::NotFound] {
        assert!(answered.get(&code).is_some_and(|n| *n > 0), "{answered:?}");
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed (seed {seed}):\n{}",
        failures.len(),
        failures.join("\n")
    );
    suite.stop().await;
}
