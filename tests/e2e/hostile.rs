//! Hostile input to every RPC, generated from the compiled descriptor set:
//! each request message is built with every string field (nested messages
//! included) set to one hostile value — empty, a megabyte, NUL bytes, emoji
//! and bidi controls, ids that are not ids or that name nothing, forged page
//! tokens — and every answer must be a documented refusal or a success,
//! within seconds, never `INTERNAL` or `UNKNOWN`; the server answers health
//! afterwards.

use std::collections::HashMap;
use std::time::Duration;

use medsec_platform::both_backends;
use medsec_platform::testing::{AuthChannel, Backend, TestDatabase, call_raw, violation};
use prost_types::DescriptorProto;
use prost_types::field_descriptor_proto::{Label, Type};
use tonic::Code;

use crate::descriptors::{descriptor_set, length_delimited, messages, rpcs, varint};
use crate::harness::start;

both_backends!(
    every_rpc_answers_hostile_strings_with_a_documented_code,
    a_million_items_are_refused_before_any_is_read,
);

/// A patient call given up on after this long is a hang.
const HANG: Duration = Duration::from_secs(10);

/// The values every string field is set to, one request each.
fn hostile_values() -> Vec<(&'static str, String)> {
    vec![
        ("empty", String::new()),
        ("a megabyte", "a".repeat(1 << 20)),
        ("a NUL byte", "\0".to_owned()),
        ("NUL inside", "Lo\0ve".to_owned()),
        ("emoji", "👩‍⚕️🩺".to_owned()),
        ("bidi controls", "\u{202E}evol\u{202C}".to_owned()),
        ("not a UUID", "not-a-uuid".to_owned()),
        (
            "a UUID that names nothing",
            uuid::Uuid::now_v7().to_string(),
        ),
        (
            "a forged page token",
            "eyJrIjoiMDE5MGE1YjItN2MxZS03MDAwLTgwMDAtMDAwMDAwMDAwMDAxIiwiZiI6IngifQ".to_owned(),
        ),
    ]
}

/// Which string fields get the hostile value.
#[derive(Clone, Copy)]
enum Target {
    /// Every string field.
    All,
    /// Only the `n`th string field met in a depth-first walk.
    Only(usize),
}

/// `message` encoded with the targeted string fields set to `value` (one
/// element of a repeated field), nested messages filled the same way down to
/// `depth`. Well-known types (timestamps, field masks) are left out. `seen`
/// counts the string fields walked.
fn encode(
    message: &DescriptorProto,
    all: &HashMap<String, DescriptorProto>,
    value: &str,
    target: Target,
    seen: &mut usize,
    depth: usize,
) -> Vec<u8> {
    let mut out = Vec::new();
    for field in &message.field {
        let number = field.number();
        match field.r#type() {
            Type::String => {
                let hit = match target {
                    Target::All => true,
                    Target::Only(n) => n == *seen,
                };
                *seen += 1;
                if hit {
                    length_delimited(number, value.as_bytes(), &mut out);
                }
            }
            Type::Message if depth > 0 && !field.type_name().starts_with(".google.") => {
                if let Some(nested) = all.get(field.type_name()) {
                    let bytes = encode(nested, all, value, target, seen, depth - 1);
                    length_delimited(number, &bytes, &mut out);
                }
            }
            // Enums and integers keep their defaults, except a repeated
            // integer, which gets one element.
            Type::Int32 | Type::Enum if field.label() == Label::Repeated => {
                varint(u64::from(number.unsigned_abs()) << 3, &mut out);
                varint(1, &mut out);
            }
            _ => {}
        }
    }
    out
}

/// The code a raw call to `path` was answered with, or what makes the answer
/// a failure: none within [`HANG`], or `INTERNAL`/`UNKNOWN`.
pub(crate) async fn judged(
    channel: &AuthChannel,
    path: &str,
    body: Vec<u8>,
) -> Result<Code, String> {
    match tokio::time::timeout(HANG, call_raw(channel.clone(), path, body)).await {
        Err(_) => Err("no answer".to_owned()),
        Ok(Err(status)) if matches!(status.code(), Code::Internal | Code::Unknown) => {
            Err(format!("{status:?}"))
        }
        Ok(Err(status)) => Ok(status.code()),
        Ok(Ok(_)) => Ok(Code::Ok),
    }
}

async fn every_rpc_answers_hostile_strings_with_a_documented_code(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let set = descriptor_set();
    let all = messages(&set);
    let mut failures = Vec::new();
    for (path, method) in rpcs(&set) {
        let input = &all[method.input_type()];
        let mut strings = 0;
        encode(input, &all, "", Target::All, &mut strings, 2);
        // Every field at once, then each string field alone (so an
        // earlier refusal cannot hide a later field's fault).
        let targets = std::iter::once(Target::All).chain((0..strings).map(Target::Only));
        for target in targets {
            for (what, value) in hostile_values() {
                if value.len() > 1024 && !matches!(target, Target::All) {
                    continue;
                }
                let body = encode(input, &all, &value, target, &mut 0, 2);
                if let Err(failure) = judged(&suite.channel, &path, body).await {
                    failures.push(format!("{path} given {what}: {failure}"));
                }
            }
        }
    }
    assert!(suite.health("").await.is_ok(), "the server still answers");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    suite.stop().await;
}

async fn a_million_items_are_refused_before_any_is_read(backend: Backend) {
    use medsec_proto::scheduling::v1 as pb;
    use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
    let database = TestDatabase::create(backend).await;
    // Room for a million items, to reach the reader's cap; at the default
    // limit (1 MiB) the message itself is refused first.
    let mut settings = database.settings();
    settings.scheduling.max_message_bytes = 16 << 20;
    let suite = start(&settings, &[]).await;
    let mut scheduling = SchedulingServiceClient::new(suite.channel.clone());
    let status = scheduling
        .create_staff_member(pb::CreateStaffMemberRequest {
            staff_member: Some(pb::StaffMember {
                name: "Dr Many".into(),
                role: pb::StaffRole::Clinician as i32,
                grade: "consultant".into(),
                specialties: vec![String::new(); 1_000_000],
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    let refusal = violation(&status, "staff_member.specialties");
    assert!(refusal.contains("must have at most 20 items"), "{status:?}");
    let status = scheduling
        .rebook_displaced(pb::RebookDisplacedRequest {
            appointment_ids: vec!["x".into(); 200_000],
            ..Default::default()
        })
        .await
        .unwrap_err();
    let refusal = violation(&status, "appointment_ids");
    assert!(
        refusal.contains("must have at most 500 items"),
        "{status:?}"
    );
    suite.stop().await;
}
