//! A day at the clinic through every service of one running suite: the
//! patient is registered, referred, booked, seen, charged, invoiced and paid,
//! and the clinic letter is filed.

use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, TestDatabase};
use medsec_platform::time::{format_civil_date, today_in_london};
use medsec_proto::billing::v1 as billing;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use medsec_proto::records::v1 as records;
use medsec_proto::records::v1::records_service_client::RecordsServiceClient;
use medsec_proto::scheduling::v1 as scheduling;
use medsec_proto::scheduling::v1::scheduling_service_client::SchedulingServiceClient;

use crate::fixtures::{Sessions, ada, charge, clinic_sitting, price, referral, self_pay};
use crate::harness::start;

both_backends!(a_patient_is_referred_seen_billed_and_written_to);

async fn a_patient_is_referred_seen_billed_and_written_to(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let suite = start(&database.settings(), &[]).await;
    let mut records = RecordsServiceClient::new(suite.channel.clone());
    let mut scheduling = SchedulingServiceClient::new(suite.channel.clone());
    let mut billing = BillingServiceClient::new(suite.channel.clone());

    // Registration.
    let patient = records.create_patient(ada()).await.unwrap().into_inner();

    // A cardiology clinic next week.
    let clinic_day = today_in_london() + chrono::Duration::days(7);
    use chrono::Datelike as _;
    let clinic = clinic_sitting(
        &mut scheduling,
        Sessions {
            weekdays: vec![clinic_day.weekday().number_from_monday() as i32],
            from: clinic_day,
            to: clinic_day,
            until: "12:00",
            capacity: 1,
        },
    )
    .await;
    assert_eq!(clinic.generated, 6);

    // The GP's referral waits, then takes the first free slot.
    let referral = scheduling
        .create_referral(referral(&patient.id, chrono::Duration::weeks(10)))
        .await
        .unwrap()
        .into_inner();
    let slots = scheduling
        .list_slots(scheduling::ListSlotsRequest {
            clinician_id: clinic.clinician.id.clone(),
            free_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .slots;
    assert_eq!(slots.len(), 6);
    let appointment = scheduling
        .book_appointment(scheduling::BookAppointmentRequest {
            slot_id: slots[0].id.clone(),
            patient_id: patient.id.clone(),
            referral_id: referral.id.clone(),
            reason: "chest pain on exertion".into(),
            request_id: "book-ada".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let booked = scheduling
        .get_referral(scheduling::GetReferralRequest {
            id: referral.id.clone(),
            as_of: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(booked.status(), scheduling::ReferralStatus::Booked);

    // Seen.
    scheduling
        .mark_arrived(scheduling::MarkArrivedRequest {
            id: appointment.id.clone(),
        })
        .await
        .unwrap();
    let seen = scheduling
        .mark_fulfilled(scheduling::MarkFulfilledRequest {
            id: appointment.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.status(), scheduling::AppointmentStatus::Fulfilled);

    // Charged, invoiced and paid in two parts.
    billing
        .create_price_item(price("CARD-NEW", "New cardiology consultation", 25_000))
        .await
        .unwrap();
    let service_date = format_civil_date(clinic_day);
    let charge = charge(&appointment.id, &patient.id, "CARD-NEW", &service_date);
    let first = billing
        .create_charge(charge.clone())
        .await
        .unwrap()
        .into_inner();
    let retried = billing.create_charge(charge).await.unwrap().into_inner();
    assert_eq!(
        first.id, retried.id,
        "a retried charge is not charged twice"
    );

    let draft = billing
        .create_invoice(billing::CreateInvoiceRequest {
            patient_id: patient.id.clone(),
            payer: Some(self_pay()),
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
    assert!(issued.number.starts_with("INV-"), "{}", issued.number);
    for (amount, key) in [(10_000, "pay-1"), (15_000, "pay-2")] {
        billing
            .record_payment(billing::RecordPaymentRequest {
                invoice_id: issued.id.clone(),
                amount_pence: amount,
                method: billing::PaymentMethod::Card as i32,
                paid_on: String::new(),
                request_id: key.into(),
            })
            .await
            .unwrap();
    }
    let paid = billing
        .get_invoice(billing::GetInvoiceRequest {
            id: issued.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.status(), billing::InvoiceStatus::Balanced);
    assert_eq!(paid.balance_pence, 0);

    // The clinic letter goes on the record, and the record shows who touched it.
    records
        .create_document(records::CreateDocumentRequest {
            document: Some(records::Document {
                patient_id: patient.id.clone(),
                title: "Cardiology clinic letter".into(),
                kind: records::DocumentKind::Letter as i32,
                content_type: "text/plain".into(),
                author: clinic.clinician.name.clone(),
                ..Default::default()
            }),
            content: b"Dear Dr Smith, I saw Ada today...".to_vec(),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let trail = records
        .list_audit_events(records::ListAuditEventsRequest {
            patient_id: patient.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    // The suite's one trail: every service's accesses to the patient's data.
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "CreatePatient",
            // Scheduling asks records whether Ada may be referred, and booked.
            "GetPatient",
            "CreateReferral",
            "GetPatient",
            "BookAppointment",
            "GetReferral",
            "MarkArrived",
            "MarkFulfilled",
            "CreateCharge",
            "CreateCharge",
            "CreateInvoice",
            "IssueInvoice",
            "RecordPayment",
            "RecordPayment",
            "GetInvoice",
            "CreateDocument",
        ]
    );

    suite.stop().await;
}
