//! Unit tests of the request reader.

use super::*;

fn fields(error: ApiError) -> Vec<(String, String)> {
    match error {
        ApiError::InvalidArgument(violations) => violations
            .iter()
            .map(|(field, why)| (field.to_owned(), why.to_owned()))
            .collect(),
        other => panic!("expected invalid argument, got {other:?}"),
    }
}

#[test]
fn collects_every_bad_field_and_hands_back_values_once_all_are_good() {
    let mut r = Reader::new();
    let id = r.id("id", "not-a-uuid");
    let day = r.date("day", "31/01/1970");
    let name = r.required_line("name", "  ", 10);
    let missing = r.id("other_id", "");
    assert!(id.is_none() && day.is_none() && name.is_none() && missing.is_none());
    assert_eq!(
        fields(r.finish((id, day, name, missing)).unwrap_err()),
        [
            ("id".to_owned(), message::NOT_AN_ID.to_owned()),
            ("day".to_owned(), message::NOT_A_DATE.to_owned()),
            ("name".to_owned(), message::REQUIRED.to_owned()),
            ("other_id".to_owned(), message::REQUIRED.to_owned()),
        ]
    );

    let mut r = Reader::new();
    let id = r.id("id", " 0190a5b2-7c1e-7000-8000-000000000001 ");
    let day = r.date("day", "1970-01-31");
    let note = r.optional_text("note", " two\nlines ", 20);
    let (id, day) = r.finish((id, day)).unwrap();
    assert_eq!(id.to_string(), "0190a5b2-7c1e-7000-8000-000000000001");
    assert_eq!(day, NaiveDate::from_ymd_opt(1970, 1, 31).unwrap());
    assert_eq!(note, "two\nlines");
}

#[test]
fn optional_fields_are_absent_when_empty_and_bad_when_malformed() {
    let mut r = Reader::new();
    assert_eq!(r.optional_id("a", ""), None);
    assert_eq!(r.optional_date("b", ""), None);
    assert_eq!(r.etag("c", ""), None);
    assert_eq!(r.optional_instant("d", None), None);
    assert!(r.finish(()).is_ok());

    let mut r = Reader::new();
    r.optional_id("a", "x");
    r.etag("c", "W/\"1\"");
    r.optional_instant(
        "d",
        Some(&prost_types::Timestamp {
            seconds: 0,
            nanos: -1,
        }),
    );
    let names: Vec<_> = fields(r.finish(()).unwrap_err())
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(names, ["a", "c", "d"]);
}

#[test]
fn filters_are_absent_when_empty_and_refuse_control_characters() {
    let mut r = Reader::new();
    assert_eq!(r.filter("a", "  ", 10), None);
    assert_eq!(r.filter("b", " Love ", 10).as_deref(), Some("Love"));
    assert_eq!(r.filter("c", "Lo\0ve", 10), None);
    let names: Vec<_> = fields(r.finish(()).unwrap_err())
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(names, ["c"]);
}

#[test]
fn a_deadline_is_the_sooner_of_the_clients_and_the_servers() {
    use std::time::Duration;
    let server = Duration::from_secs(30);
    let mut request = tonic::Request::new(());
    assert_eq!(time_left(&request, server), server);
    request
        .metadata_mut()
        .insert("grpc-timeout", "1500m".parse().unwrap());
    assert_eq!(time_left(&request, server), Duration::from_millis(1500));
    request
        .metadata_mut()
        .insert("grpc-timeout", "2M".parse().unwrap());
    assert_eq!(time_left(&request, server), server);
    request
        .metadata_mut()
        .insert("grpc-timeout", "123456789S".parse().unwrap());
    assert_eq!(
        time_left(&request, server),
        server,
        "nine digits are refused"
    );
}

#[test]
fn a_missing_message_fails_at_once_with_what_came_before() {
    let mut r = Reader::new();
    r.add("request_id", "bad");
    let missing: Option<&u8> = None;
    let error = r.message("patient", missing).unwrap_err();
    let names: Vec<_> = fields(error).into_iter().map(|(f, _)| f).collect();
    assert_eq!(names, ["request_id", "patient"]);
}

#[test]
fn repeated_items_are_read_by_index_and_deduplicated() {
    let mut r = Reader::new();
    let items = ["a", "b", "a", "", "c"];
    let read = r.each("tags", &items, 10, |r, field, item| {
        r.required_line(field, item, 5)
    });
    assert_eq!(read, ["a", "b", "c"]);
    assert_eq!(
        fields(r.finish(()).unwrap_err()),
        [("tags[3]".to_owned(), message::REQUIRED.to_owned())]
    );
}

#[test]
fn an_overlong_list_is_refused_before_any_item_is_read() {
    let mut r = Reader::new();
    let items = vec![""; 1_000_000];
    let mut reads = 0;
    let read = r.each("tags", &items, 100, |_, _, _| {
        reads += 1;
        Some(())
    });
    assert!(read.is_empty());
    assert_eq!(reads, 0);
    assert_eq!(
        fields(r.finish(()).unwrap_err()),
        [("tags".to_owned(), "must have at most 100 items".to_owned())]
    );
}

#[test]
fn request_keys_are_checked_and_blank_their_id() {
    let request = prost_types::Duration {
        seconds: 5,
        nanos: 0,
    };
    let mut r = Reader::new();
    assert!(r.request_key("", &request, |d| d.nanos = 0).is_none());
    let key = r.request_key("abc", &request, |d| d.seconds = 0).unwrap();
    assert_eq!(key.request_id, "abc");
    assert!(r.request_key("has space", &request, |_| ()).is_none());
    assert!(
        r.required_request_key("", &request, |_| (), "a retry would pay twice")
            .is_none()
    );
    let failures = fields(r.finish(()).unwrap_err());
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[1].1, "is required: a retry would pay twice");
}

#[test]
fn a_value_missing_without_a_violation_is_our_fault() {
    let r = Reader::new();
    let error = r.finish(None::<u8>).unwrap_err();
    assert!(matches!(error, ApiError::Internal(_)));
}

#[test]
fn dates_are_bounded_so_arithmetic_on_them_cannot_overflow() {
    let mut r = Reader::new();
    assert!(r.date("a", "1880-01-01").is_some());
    assert!(r.date("b", "2199-12-31").is_some());
    assert_eq!(r.date("c", "1879-12-31"), None);
    assert_eq!(r.optional_date("d", "9999-12-31"), None);
    let violations = fields(r.finish(()).unwrap_err());
    assert_eq!(
        violations,
        [
            ("c".to_owned(), message::DATE_OUT_OF_RANGE.to_owned()),
            ("d".to_owned(), message::DATE_OUT_OF_RANGE.to_owned())
        ]
    );
}

#[test]
fn an_update_mask_of_too_many_or_too_long_paths_is_refused_unread() {
    let mask = |paths: Vec<String>| prost_types::FieldMask { paths };
    let mut r = Reader::new();
    assert_eq!(r.mask_paths(None), Some(&[][..]));
    let fine = mask(vec!["given_name".into(), "*".into()]);
    assert_eq!(r.mask_paths(Some(&fine)).map(<[String]>::len), Some(2));
    assert!(r.finish(()).is_ok());

    let mut r = Reader::new();
    let many = mask(vec!["x".into(); MAX_MASK_PATHS + 1]);
    assert_eq!(r.mask_paths(Some(&many)), None);
    let long = mask(vec!["x".repeat(MAX_MASK_PATH_CHARS + 1)]);
    assert_eq!(r.mask_paths(Some(&long)), None);
    assert_eq!(
        fields(r.finish(()).unwrap_err()),
        [
            (
                "update_mask".to_owned(),
                "must have at most 32 paths".to_owned()
            ),
            (
                "update_mask".to_owned(),
                "must name paths of at most 100 characters".to_owned()
            ),
        ]
    );
}
