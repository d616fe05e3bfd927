//! The events BillingService raises of invoices, read back from its outbox:
//! each one written with the change that raised it, none for a retry or a
//! refusal.

use medsec_platform::both_backends;
use medsec_platform::events::pb::{self as events, envelope::Data};
use medsec_platform::testing::Backend;
use medsec_proto::billing::v1 as pb;
use tonic::Code;

use crate::helpers::{TestApp, assert_wrong_state, insurer, new_id, self_pay, spawn_app};

both_backends!(
    an_invoice_raises_issued_then_paid_once,
    a_credit_note_that_settles_raises_paid,
    a_void_raises_voided_with_its_reason,
);

/// The events raised since `seen` were, and checks what every envelope says.
async fn raised_since(app: &TestApp, seen: &mut usize) -> Vec<(String, String, Data)> {
    let all = app.raised().await;
    let new = all[*seen..]
        .iter()
        .map(|envelope| {
            assert_eq!(envelope.source, "/medsec/billing");
            assert_eq!(envelope.spec_version, "1.0");
            assert!(envelope.time.is_some());
            (
                envelope.r#type.clone(),
                envelope.subject.clone(),
                envelope.data.clone().expect("data"),
            )
        })
        .collect();
    *seen = all.len();
    new
}

fn issued(invoice: &pb::Invoice) -> (String, String, Data) {
    (
        "medsec.billing.invoice.issued".into(),
        format!("invoices/{}", invoice.id),
        Data::InvoiceIssued(events::InvoiceIssued {
            invoice_id: invoice.id.clone(),
            patient_id: invoice.patient_id.clone(),
            number: invoice.number.clone(),
            total_pence: invoice.total_pence,
            due_date: invoice.due_date.clone(),
        }),
    )
}

fn paid(invoice: &pb::Invoice) -> (String, String, Data) {
    (
        "medsec.billing.invoice.paid".into(),
        format!("invoices/{}", invoice.id),
        Data::InvoicePaid(events::InvoicePaid {
            invoice_id: invoice.id.clone(),
            patient_id: invoice.patient_id.clone(),
            total_pence: invoice.total_pence,
        }),
    )
}

/// An issued invoice of one 100-pound consultation for a new patient.
async fn issued_invoice(app: &mut TestApp, payer: pb::Payer) -> pb::Invoice {
    let patient = new_id();
    app.charge(&patient, "CONS", 1, payer.clone()).await;
    let draft = app.draft(&patient, payer).await;
    app.issue(&draft.id, "2026-05-06").await
}

async fn an_invoice_raises_issued_then_paid_once(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let mut seen = 0;
    let patient = new_id();
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let draft = app.draft(&patient, self_pay()).await;
    assert!(
        raised_since(&app, &mut seen).await.is_empty(),
        "drafts raise nothing"
    );

    let invoice = app.issue(&draft.id, "2026-05-06").await;
    assert_eq!(invoice.number, "INV-2026-000001");
    assert_eq!(invoice.due_date, "2026-06-05");
    let issued_event = raised_since(&app, &mut seen).await;
    assert_eq!(issued_event, [issued(&invoice)]);
    let Data::InvoiceIssued(event) = &issued_event[0].2 else {
        unreachable!()
    };
    assert_eq!(
        (event.patient_id.as_str(), event.total_pence),
        (patient.as_str(), 10_000)
    );
    // Issuing again is refused and raises nothing.
    assert_wrong_state(
        &app.try_issue(&draft.id, "2026-05-06").await.unwrap_err(),
        "issued",
    );
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // A part payment, its retry and an overpayment raise nothing.
    app.try_pay(&invoice.id, 4_000, "pay-1").await.unwrap();
    app.try_pay(&invoice.id, 4_000, "pay-1").await.unwrap();
    let status = app.try_pay(&invoice.id, 6_001, "pay-2").await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(raised_since(&app, &mut seen).await.is_empty());

    // The payment that settles it raises InvoicePaid, once.
    let balanced = app.try_pay(&invoice.id, 6_000, "pay-2").await.unwrap();
    assert_eq!(balanced.status(), pb::InvoiceStatus::Balanced);
    assert_eq!(raised_since(&app, &mut seen).await, [paid(&invoice)]);
    app.try_pay(&invoice.id, 6_000, "pay-2").await.unwrap();
    assert_wrong_state(
        &app.try_pay(&invoice.id, 1, "pay-3").await.unwrap_err(),
        "balanced",
    );
    assert!(raised_since(&app, &mut seen).await.is_empty());
}

async fn a_credit_note_that_settles_raises_paid(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let invoice = issued_invoice(&mut app, self_pay()).await;
    let mut seen = 0;
    assert_eq!(raised_since(&app, &mut seen).await, [issued(&invoice)]);

    let credit = |amount: i64, request_id: &str| pb::IssueCreditNoteRequest {
        invoice_id: invoice.id.clone(),
        amount_pence: amount,
        reason: "goodwill: clinic ran late".into(),
        request_id: request_id.into(),
    };
    app.pay(&invoice.id, 2_000).await;
    app.client
        .issue_credit_note(credit(1_500, "cn-1"))
        .await
        .unwrap();
    assert!(raised_since(&app, &mut seen).await.is_empty());
    let balanced = app
        .client
        .issue_credit_note(credit(6_500, "cn-2"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balanced.status(), pb::InvoiceStatus::Balanced);
    assert_eq!(raised_since(&app, &mut seen).await, [paid(&invoice)]);
    app.client
        .issue_credit_note(credit(6_500, "cn-2"))
        .await
        .unwrap();
    assert!(raised_since(&app, &mut seen).await.is_empty(), "a retry");

    // Moving an insurer's shortfall to the patient settles the insurer's
    // invoice by a credit note: paid as well.
    let claim = issued_invoice(&mut app, insurer("PA-1")).await;
    app.try_pay(&claim.id, 7_000, "remit-1").await.unwrap();
    assert_eq!(raised_since(&app, &mut seen).await, [issued(&claim)]);
    app.client
        .bill_shortfall(pb::BillShortfallRequest {
            invoice_id: claim.id.clone(),
            request_id: "sf-1".into(),
        })
        .await
        .unwrap();
    assert_eq!(raised_since(&app, &mut seen).await, [paid(&claim)]);
}

async fn a_void_raises_voided_with_its_reason(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let invoice = issued_invoice(&mut app, self_pay()).await;
    let mut seen = 0;
    raised_since(&app, &mut seen).await;
    let void = |id: &str, reason: &str| pb::VoidInvoiceRequest {
        id: id.into(),
        reason: reason.into(),
        etag: String::new(),
    };

    app.client
        .void_invoice(void(&invoice.id, "issued to the wrong payer"))
        .await
        .unwrap();
    assert_eq!(
        raised_since(&app, &mut seen).await,
        [(
            "medsec.billing.invoice.voided".to_owned(),
            format!("invoices/{}", invoice.id),
            Data::InvoiceVoided(events::InvoiceVoided {
                invoice_id: invoice.id.clone(),
                patient_id: invoice.patient_id.clone(),
                reason: "issued to the wrong payer".into(),
            }),
        )]
    );

    // Refused voids raise nothing: again, unknown, paid.
    let status = app
        .client
        .void_invoice(void(&invoice.id, "again"))
        .await
        .unwrap_err();
    assert_wrong_state(&status, "cancelled");
    let status = app
        .client
        .void_invoice(void(&new_id(), "ghost"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let paid_on = issued_invoice(&mut app, self_pay()).await;
    app.pay(&paid_on.id, 100).await;
    assert_eq!(raised_since(&app, &mut seen).await, [issued(&paid_on)]);
    let status = app
        .client
        .void_invoice(void(&paid_on.id, "too late"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(raised_since(&app, &mut seen).await.is_empty());
}
