//! What an operator and a client's developer see of a call to the real
//! `medsec serve`, on SQLite and on PostgreSQL: one BookAppointment is one
//! trace in the collector, its RPC span holding a client span per database
//! statement (the statement's kind and SQL with its values bound, never
//! shown), and the JSON log line of the call carries the same trace id.
//! Every error names its service in a `google.rpc.ErrorInfo`, whether a
//! handler or the server's own layers raised it, and reflection serves the
//! `google.rpc` types so tools decode the details.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Site, clinic, free_port, hex, referral, register_patient, wait_for};
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::testing::collector::Collector;
use medsec_platform::testing::{AuthChannel, Backend, Caller, TestDatabase};
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::Code;
use tonic_types::StatusExt as _;

/// The whole test, however it goes.
const TEST_LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_is_one_trace_with_its_statements_on_sqlite() {
    tokio::time::timeout(TEST_LIMIT, scenario(Backend::Sqlite))
        .await
        .expect("the test finished in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_is_one_trace_with_its_statements_on_postgres() {
    tokio::time::timeout(TEST_LIMIT, scenario(Backend::Postgres))
        .await
        .expect("the test finished in time");
}

async fn scenario(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let collector = Collector::default();
    let otlp = collector.start(None).await;
    let stream = format!("MEDSEC_TELEMETRY_{}", uuid::Uuid::now_v7().simple());
    let site = Site::new("suite", &database, otlp, &stream, free_port());
    let _process = site.serve();
    let channel = site.ready().await;
    let db = database.connect().await;
    let issuer = DevIssuer::open(&db).await.unwrap();
    let staff: AuthChannel = Caller::everyone().channel(&issuer, "medsec", channel.clone());
    let mut records = RecordsServiceClient::new(staff.clone());
    let mut scheduling = SchedulingServiceClient::new(staff.clone());

    let patient = register_patient(&mut records).await;
    let slots = clinic(&mut scheduling).await;
    let referral = scheduling
        .create_referral(referral(&patient.id))
        .await
        .unwrap()
        .into_inner();

    // One booking, in a trace of the caller's own.
    let trace_id = hex(&uuid::Uuid::now_v7().into_bytes());
    let mut book = tonic::Request::new(scheduling::BookAppointmentRequest {
        slot_id: slots[0].id.clone(),
        patient_id: patient.id.clone(),
        referral_id: referral.id.clone(),
        ..Default::default()
    });
    book.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    scheduling.book_appointment(book).await.unwrap();

    // The RPC span, and the statements beneath it.
    let rpc_name = "medsec.scheduling.v1.SchedulingService/BookAppointment";
    let (rpc, statements) = wait_for(Duration::from_secs(20), async || {
        let spans: Vec<Span> = collector
            .spans()
            .into_iter()
            .filter(|span| hex(&span.trace_id) == trace_id)
            .collect();
        let rpc = spans.iter().find(|span| span.name == rpc_name)?.clone();
        let statements: Vec<Span> = spans
            .iter()
            .filter(|span| attribute(span, "db.system").is_some() && beneath(&spans, span, &rpc))
            .cloned()
            .collect();
        // The booking writes the appointment: its INSERT is exported.
        statements
            .iter()
            .any(|span| attribute(span, "db.operation").as_deref() == Some("INSERT"))
            .then_some((rpc, statements))
    })
    .await;
    assert_eq!(
        attribute(&rpc, "rpc.grpc.status_code").as_deref(),
        Some("0"),
        "{rpc:?}"
    );
    let system = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    let mut operations: Vec<String> = statements
        .iter()
        .filter_map(|span| attribute(span, "db.operation"))
        .collect();
    operations.sort();
    operations.dedup();
    assert!(
        operations.iter().any(|op| op == "SELECT") && operations.iter().any(|op| op == "INSERT"),
        "{operations:?}"
    );
    for span in &statements {
        assert_eq!(attribute(span, "db.system").as_deref(), Some(system));
        let sql = attribute(span, "db.statement").unwrap_or_default();
        // Values are bound, never written into the statement.
        for value in [&patient.id, &referral.id, &slots[0].id] {
            assert!(!sql.contains(value.as_str()), "a value in {sql}");
        }
        assert!(!sql.contains("Lovelace"), "a value in {sql}");
    }
    assert!(
        statements
            .iter()
            .any(|span| attribute(span, "db.statement")
                .is_some_and(|sql| sql.contains("appointments"))),
        "no statement names the appointments table"
    );

    // The JSON log line of the call carries the same trace id.
    wait_for(Duration::from_secs(5), async || {
        let logged = std::fs::read_to_string(site.log.with_extension("json")).ok()?;
        logged
            .lines()
            .any(|line| {
                line.contains("BookAppointment")
                    && line.contains(&format!("\"trace_id\":\"{trace_id}\""))
            })
            .then_some(())
    })
    .await;

    // A handler's error names its service, the reason and the fields.
    let refused = scheduling
        .book_appointment(scheduling::BookAppointmentRequest {
            slot_id: "not-a-slot".into(),
            patient_id: patient.id.clone(),
            referral_id: referral.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let info = error_info(&refused);
    assert_eq!(info.domain, "scheduling.medsec");
    assert_eq!(info.reason, "INVALID_FIELDS");
    assert_eq!(
        info.metadata.get("fields").map(String::as_str),
        Some("slot_id")
    );
    let missing = records
        .get_patient(records::GetPatientRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let info = error_info(&missing);
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("records.medsec", "RESOURCE_NOT_FOUND")
    );
    assert_eq!(
        info.metadata.get("resource").map(String::as_str),
        Some("patient")
    );

    // So does one the server raises before any handler: no credentials.
    let refused = SchedulingServiceClient::new(channel.clone())
        .get_appointment(scheduling::GetAppointmentRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let info = error_info(&refused);
    assert_eq!(
        (info.domain.as_str(), info.reason.as_str()),
        ("scheduling.medsec", "NOT_AUTHENTICATED")
    );

    // Reflection serves google.rpc's types, so grpcurl decodes the details.
    for symbol in ["ErrorInfo", "BadRequest", "RetryInfo"] {
        let file = reflected_file(&staff, &format!("google.rpc.{symbol}")).await;
        assert_eq!(file.package(), "google.rpc");
        assert!(
            file.message_type
                .iter()
                .any(|message| message.name() == symbol),
            "{symbol} in {}",
            file.name()
        );
    }

    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client)
        .delete_stream(&stream)
        .await;
}

/// Whether `span` lies beneath `ancestor` in `spans`.
fn beneath(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let parents: HashMap<&[u8], &[u8]> = spans
        .iter()
        .map(|span| (span.span_id.as_slice(), span.parent_span_id.as_slice()))
        .collect();
    let mut parent = span.parent_span_id.as_slice();
    for _ in 0..spans.len() {
        if parent == ancestor.span_id.as_slice() {
            return true;
        }
        match parents.get(parent) {
            Some(next) => parent = next,
            None => return false,
        }
    }
    false
}

/// A span's attribute, as text.
fn attribute(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(text) => text.clone(),
        Value::IntValue(number) => number.to_string(),
        Value::BoolValue(flag) => flag.to_string(),
        Value::DoubleValue(number) => number.to_string(),
        other => format!("{other:?}"),
    })
}

fn error_info(status: &tonic::Status) -> tonic_types::ErrorInfo {
    status
        .get_details_error_info()
        .unwrap_or_else(|| panic!("no ErrorInfo in {status:?}"))
}

/// The file reflection gives for `symbol`.
async fn reflected_file(channel: &AuthChannel, symbol: &str) -> prost_types::FileDescriptorProto {
    use prost::Message as _;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.to_owned())),
    };
    let mut responses = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection call")
        .into_inner();
    let answer = responses
        .message()
        .await
        .expect("reflection answer")
        .and_then(|response| response.message_response);
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer else {
        panic!("no descriptor for {symbol}: {answer:?}");
    };
    prost_types::FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice())
        .expect("a file descriptor")
}
