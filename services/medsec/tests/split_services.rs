//! The suite split as a trust runs it: `medsec serve --service records`,
//! `--service scheduling` and `--service billing`, three processes of the
//! real binary over one PostgreSQL database and NATS JetStream
//! (127.0.0.1:4222), each exporting traces to a collector. A clinic day
//! crosses them: the patient registered in records is referred, booked and
//! seen in scheduling, and billing charges the visit from scheduling's
//! event; one trace holds the MarkFulfilled call in scheduling and the
//! charge made in billing. Archiving the patient in records clears their
//! diary in scheduling. Scheduling asks records, over mutual TLS as the
//! scheduling service, whether a patient may be booked or referred, and
//! stops asking for a while when records is down (its circuit breaker).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

mod common;

use std::time::Duration;

use common::{Site, clinic, free_port, hex, referral, register_patient, wait_for};
use medsec_platform::auth::dev_issuer::DevIssuer;
use medsec_platform::testing::collector::Collector;
use medsec_platform::testing::tls::{TestCa, client_tls};
use medsec_platform::testing::{Backend, Caller, TestDatabase, violated_fields};
use medsec_proto::billing::v1 as billing;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;
use tonic::transport::Channel;

/// The whole test, however it goes.
const TEST_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinic_day_crosses_three_processes_in_one_trace() {
    tokio::time::timeout(TEST_LIMIT, scenario())
        .await
        .expect("the test finished in time");
}

async fn scenario() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let collector = Collector::default();
    let otlp = collector.start(None).await;
    let stream = format!("MEDSEC_SPLIT_{}", uuid::Uuid::now_v7().simple());
    let ca = TestCa::new("medsec split test CA");
    let records_cert = ca.server_cert();
    let scheduling_cert = ca.service_cert("scheduling.medsec.internal");
    let records_port = free_port();
    let records_site = Site::new("records", &database, otlp, &stream, records_port)
        .with(&format!(
            "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\n",
            records_cert.cert_file, records_cert.key_file, ca.cert_file
        ))
        .over_tls(client_tls(&ca, None));
    let scheduling_site =
        Site::new("scheduling", &database, otlp, &stream, free_port()).with(&format!(
            "[peers]\nrecords_url = \"https://127.0.0.1:{records_port}\"\nca_file = {:?}\n\
         cert_file = {:?}\nkey_file = {:?}\ntimeout_millis = 500\nretries = 1\n\
         breaker_failures = 2\nbreaker_open_secs = 60\n",
            ca.cert_file, scheduling_cert.cert_file, scheduling_cert.key_file
        ));
    let billing_site = Site::new("billing", &database, otlp, &stream, free_port());
    // Records first: it makes the schema the others share, and the
    // development issuer's key.
    let mut records_process = records_site.serve();
    let records_channel = records_site.ready().await;
    let _scheduling_process = scheduling_site.serve();
    let _billing_process = billing_site.serve();
    let scheduling_channel = scheduling_site.ready().await;
    let billing_channel = billing_site.ready().await;

    let db = database.connect().await;
    let issuer = DevIssuer::open(&db).await.unwrap();
    let caller = Caller::everyone();
    let as_staff = |channel: &Channel| caller.channel(&issuer, "medsec", channel.clone());
    let mut records = RecordsServiceClient::new(as_staff(&records_channel));
    let mut scheduling = SchedulingServiceClient::new(as_staff(&scheduling_channel));
    let mut billing = BillingServiceClient::new(as_staff(&billing_channel));

    billing
        .create_price_item(billing::CreatePriceItemRequest {
            price_item: Some(billing::PriceItem {
                code: "CARDIOLOGY-NEW".into(),
                description: "New cardiology consultation".into(),
                unit_price_pence: 25_000,
                valid_from: "2026-01-01".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let patient = register_patient(&mut records).await;
    let slots = clinic(&mut scheduling).await;
    let mut booked = Vec::new();
    for slot in &slots[..2] {
        // A private patient, paying for herself.
        let mut request = referral(&patient.id);
        if let Some(referral) = request.referral.as_mut() {
            referral.funding = Some(scheduling::Funding {
                kind: scheduling::FundingKind::SelfPay as i32,
                ..Default::default()
            });
        }
        let referral = scheduling
            .create_referral(request)
            .await
            .unwrap()
            .into_inner();
        booked.push(
            scheduling
                .book_appointment(scheduling::BookAppointmentRequest {
                    slot_id: slot.id.clone(),
                    patient_id: patient.id.clone(),
                    referral_id: referral.id,
                    reason: "palpitations".into(),
                    request_id: String::new(),
                })
                .await
                .unwrap()
                .into_inner(),
        );
    }

    // Seen, in a trace of the caller's own.
    let seen = &booked[0];
    scheduling
        .mark_arrived(scheduling::MarkArrivedRequest {
            id: seen.id.clone(),
        })
        .await
        .unwrap();
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut fulfil = tonic::Request::new(scheduling::MarkFulfilledRequest {
        id: seen.id.clone(),
    });
    fulfil.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    scheduling.mark_fulfilled(fulfil).await.unwrap();

    // Billing, in its own process, charges the visit once.
    let charge = wait_for(Duration::from_secs(2), async || {
        let charges = billing
            .list_charges(billing::ListChargesRequest {
                appointment_id: seen.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .charges;
        assert!(charges.len() <= 1, "{charges:?}");
        charges.into_iter().next()
    })
    .await;
    assert_eq!(charge.code, "CARDIOLOGY-NEW");
    assert_eq!(charge.net_pence, 25_000);

    // Scheduling's JSON log line of the call carries the trace id.
    let logged = std::fs::read_to_string(scheduling_site.log.with_extension("json")).unwrap();
    assert!(
        logged.lines().any(|line| line.contains("MarkFulfilled")
            && line.contains(&format!("\"trace_id\":\"{trace_id}\""))),
        "no log line of MarkFulfilled with its trace id in:\n{logged}"
    );

    // Invoiced, paid, and the clinic letter filed in records.
    let draft = billing
        .create_invoice(billing::CreateInvoiceRequest {
            patient_id: patient.id.clone(),
            payer: Some(billing::Payer {
                kind: billing::PayerKind::SelfPay as i32,
                insurer: None,
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(draft.total_pence, 25_000);
    let issued = billing
        .issue_invoice(billing::IssueInvoiceRequest {
            id: draft.id.clone(),
            etag: draft.etag.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let paid = billing
        .record_payment(billing::RecordPaymentRequest {
            invoice_id: issued.id.clone(),
            amount_pence: 25_000,
            method: billing::PaymentMethod::Card as i32,
            paid_on: String::new(),
            request_id: "pay-ada".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.status(), billing::InvoiceStatus::Balanced);
    records
        .create_document(records::CreateDocumentRequest {
            document: Some(records::Document {
                patient_id: patient.id.clone(),
                title: "Cardiology clinic letter".into(),
                kind: records::DocumentKind::Letter as i32,
                content_type: "text/plain".into(),
                author: "Dr Faye Ult".into(),
                ..Default::default()
            }),
            content: b"Dear Dr Smith, I saw Ada today...".to_vec(),
            request_id: String::new(),
        })
        .await
        .unwrap();

    // One trace: the call in scheduling, and the charge in billing.
    let services = wait_for(Duration::from_secs(15), async || {
        let mut services: Vec<String> = collector
            .exported()
            .into_iter()
            .filter(|(_, span)| hex(&span.trace_id) == trace_id)
            .map(|(service, span)| format!("{service}: {}", span.name))
            .collect();
        services.sort();
        services.dedup();
        let from = |name: &str| services.iter().any(|s| s.starts_with(name));
        (from("medsec-scheduling: ") && from("medsec-billing: ")).then_some(services)
    })
    .await;
    assert!(
        services.contains(
            &"medsec-scheduling: medsec.scheduling.v1.SchedulingService/MarkFulfilled".to_owned()
        ),
        "{services:?}"
    );
    assert!(
        services.contains(
            &"medsec-billing: medsec.scheduling.appointment.fulfilled process".to_owned()
        ),
        "{services:?}"
    );
    // The relay's publish, in scheduling, joins it once exported.
    wait_for(Duration::from_secs(15), async || {
        collector
            .exported()
            .iter()
            .any(|(service, span)| {
                hex(&span.trace_id) == trace_id
                    && service == "medsec-scheduling"
                    && span.name == "medsec.scheduling.appointment.fulfilled publish"
            })
            .then_some(())
    })
    .await;

    // Archived in records: the other appointment is cancelled in scheduling.
    records
        .archive_patient(records::ArchivePatientRequest {
            id: patient.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let cancelled = wait_for(Duration::from_secs(2), async || {
        let other = scheduling
            .get_appointment(scheduling::GetAppointmentRequest {
                id: booked[1].id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        (other.status() == scheduling::AppointmentStatus::Cancelled).then_some(other)
    })
    .await;
    assert_eq!(cancelled.cancellation_reason, "patient archived");

    // Scheduling asked records: an archived patient is not referred again,
    // and a patient records never registered is not booked.
    let refused = scheduling
        .create_referral(referral(&patient.id))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("archived"), "{refused:?}");
    let stranger = uuid::Uuid::now_v7().to_string();
    let refused = scheduling
        .create_referral(referral(&stranger))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert_eq!(violated_fields(&refused), ["referral.patient_id"]);

    // Records goes down: scheduling says UNAVAILABLE, and after two failed
    // calls stops asking for a while, failing at once.
    records_process.kill();
    for _ in 0..2 {
        let refused = scheduling
            .create_referral(referral(&stranger))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    }
    let started = std::time::Instant::now();
    let refused = scheduling
        .create_referral(referral(&stranger))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "the breaker answers without waiting for records: {:?}",
        started.elapsed()
    );

    let client = async_nats::connect("nats://127.0.0.1:4222").await.unwrap();
    let _ = async_nats::jetstream::new(client)
        .delete_stream(&stream)
        .await;
}
