//! Every string, bytes and repeated field a request can carry says its cap
//! in its proto comment (issue 12, "bounded input, everywhere"), checked on
//! the compiled descriptor set with its source info (protox keeps comments):
//! the walk starts at every RPC's request message and follows every message
//! field, except well-known types and fields the server never reads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::collections::{BTreeSet, HashMap};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The phrases that state a cap, one of which each such field's comment
/// holds besides `At most N …` (a number and its unit: characters, items,
/// paths, MiB). These name a form of fixed length (a UUID, a civil date)
/// or one whose parse refuses anything long unread (an etag is a number).
const CAP_PHRASES: &[&str] = &[
    "An id (a UUID)",
    "\"YYYY-MM-DD\"",
    "An etag this API issued.",
];

/// A field the server never reads: neither capped nor walked into.
const OUTPUT_ONLY: &str = "Output only.";

/// What the comment of a field with a cap must say, or `None` when it does.
fn missing_cap(comment: &str) -> Option<&'static str> {
    let comment = comment.split_whitespace().collect::<Vec<_>>().join(" ");
    let at_most = comment.match_indices("At most ").any(|(at, phrase)| {
        comment[at + phrase.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    });
    if at_most || CAP_PHRASES.iter().any(|phrase| comment.contains(phrase)) {
        None
    } else {
        Some(
            "no documented cap (\"At most N …\", \"An id (a UUID)\", \"YYYY-MM-DD\" or \"An etag this API issued.\")",
        )
    }
}

/// A message and the file it is declared in, with its path in that file's
/// source info (`[4, i]`, `[4, i, 3, j]`, …).
struct Declared<'a> {
    message: &'a DescriptorProto,
    file: &'a FileDescriptorProto,
    path: Vec<i32>,
}

/// Every message of `set`, by full name (`.pkg.Outer.Inner`).
fn declared(set: &FileDescriptorSet) -> HashMap<String, Declared<'_>> {
    fn add<'a>(
        prefix: &str,
        message: &'a DescriptorProto,
        file: &'a FileDescriptorProto,
        path: Vec<i32>,
        found: &mut HashMap<String, Declared<'a>>,
    ) {
        let name = format!("{prefix}.{}", message.name());
        for (j, nested) in message.nested_type.iter().enumerate() {
            let mut nested_path = path.clone();
            nested_path.extend([3, i32::try_from(j).unwrap()]);
            add(&name, nested, file, nested_path, found);
        }
        found.insert(
            name,
            Declared {
                message,
                file,
                path,
            },
        );
    }
    let mut found = HashMap::new();
    for file in &set.file {
        for (i, message) in file.message_type.iter().enumerate() {
            let path = vec![4, i32::try_from(i).unwrap()];
            add(
                &format!(".{}", file.package()),
                message,
                file,
                path,
                &mut found,
            );
        }
    }
    found
}

/// The comments (leading and trailing) of the element at `path` of `file`.
fn comment(file: &FileDescriptorProto, path: &[i32]) -> String {
    let info = file
        .source_code_info
        .as_ref()
        .expect("the descriptor set keeps source info");
    info.location
        .iter()
        .filter(|location| location.path == path)
        .flat_map(|location| [location.leading_comments(), location.trailing_comments()])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every request message of every RPC, by full name.
fn request_types(set: &FileDescriptorSet) -> BTreeSet<String> {
    set.file
        .iter()
        .flat_map(|file| &file.service)
        .flat_map(|service| &service.method)
        .map(|method| method.input_type().to_owned())
        .collect()
}

/// `message.field` for every field reachable from a request that holds a
/// string, bytes, a repeated value or a field mask without a documented
/// cap, with what is missing.
fn undocumented(set: &FileDescriptorSet) -> Vec<String> {
    let all = declared(set);
    let mut to_walk: Vec<String> = request_types(set).into_iter().collect();
    let mut walked = BTreeSet::new();
    let mut failures = Vec::new();
    while let Some(name) = to_walk.pop() {
        if !walked.insert(name.clone()) {
            continue;
        }
        let declared = &all[&name];
        for (k, field) in declared.message.field.iter().enumerate() {
            let mut path = declared.path.clone();
            path.extend([2, i32::try_from(k).unwrap()]);
            let comment = comment(declared.file, &path);
            if comment.contains(OUTPUT_ONLY) {
                continue;
            }
            let well_known = field.type_name().starts_with(".google.");
            let capped = matches!(field.r#type(), Type::String | Type::Bytes)
                || field.label() == Label::Repeated
                || field.type_name() == ".google.protobuf.FieldMask";
            if capped && let Some(why) = missing_cap(&comment) {
                failures.push(format!("{}.{}: {why}", &name[1..], field.name()));
            }
            if field.r#type() == Type::Message && !well_known {
                to_walk.push(field.type_name().to_owned());
            }
        }
    }
    failures.sort();
    failures
}

#[test]
fn every_string_and_repeated_field_of_a_request_documents_its_cap() {
    let set = FileDescriptorSet::decode(medsec_proto::FILE_DESCRIPTOR_SET).unwrap();
    let failures = undocumented(&set);
    assert!(
        failures.is_empty(),
        "{} fields of request messages say no cap in their comment:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_walk_sees_request_fields_and_their_nested_messages() {
    let set = FileDescriptorSet::decode(medsec_proto::FILE_DESCRIPTOR_SET).unwrap();
    let all = declared(&set);
    let requests = request_types(&set);
    assert!(requests.contains(".medsec.records.v1.CreatePatientRequest"));
    // Comments are in the descriptor set, so the check reads real text.
    let patient = &all[".medsec.records.v1.Patient"];
    let given_name = patient
        .message
        .field
        .iter()
        .position(|field| field.name() == "given_name")
        .unwrap();
    let mut path = patient.path.clone();
    path.extend([2, i32::try_from(given_name).unwrap()]);
    assert!(comment(patient.file, &path).contains("Given"));
    assert_eq!(missing_cap("At most 100 characters."), None);
    assert_eq!(
        missing_cap("Lines, most specific first.\nAt most 4 items."),
        None
    );
    assert!(missing_cap("At most a few.").is_some());
    assert!(missing_cap("The patient's name.").is_some());
}
