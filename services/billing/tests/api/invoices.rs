//! Invoices through the API: drafts, gap-free numbers, payments, credit
//! notes, voids, shortfalls, lists, the aged-debt report and refusals.

use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, violated_fields};
use medsec_proto::billing::v1 as pb;
use tonic::Code;

use crate::helpers::{
    assert_invoice_invariants, assert_wrong_state, insurer, new_id, nhs, self_pay, spawn_app,
};

both_backends!(
    drafts_gather_unbilled_charges_and_issue_gap_free_numbers,
    payments_balance_an_invoice_and_overpayment_is_refused,
    credit_notes_and_voids_correct_without_editing,
    a_shortfall_moves_to_the_patient_as_a_new_invoice,
    lists_invoices_by_status_payer_and_overdue,
    refuses_bad_invoice_requests,
);

async fn drafts_gather_unbilled_charges_and_issue_gap_free_numbers(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 20_000, 0, "2026-01-01").await;
    app.price("DRESS", 1_234, 2000, "2026-01-01").await;
    let patient = new_id();
    let consult = app.charge(&patient, "CONS", 1, self_pay()).await;
    let dressing = app.charge(&patient, "DRESS", 3, self_pay()).await;
    let insured = app.charge(&patient, "CONS", 1, insurer("PA-9")).await;
    app.charge(&patient, "CONS", 1, nhs()).await;
    app.charge(&new_id(), "CONS", 1, self_pay()).await;

    let draft = app.draft(&patient, self_pay()).await;
    assert_eq!(draft.status(), pb::InvoiceStatus::Draft);
    assert_eq!(draft.number, "");
    let charged: Vec<_> = draft.lines.iter().map(|l| l.charge_id.clone()).collect();
    assert_eq!(charged, [consult.id.clone(), dressing.id.clone()]);
    // 3 x 12.34 = 37.02, VAT 7.404 -> 7.40
    assert_eq!(draft.net_pence, 23_702);
    assert_eq!(draft.vat_pence, 740);
    assert_eq!(draft.total_pence, 24_442);
    assert_invoice_invariants(&draft);

    // The same charge cannot be billed twice.
    let status = app
        .client
        .add_invoice_line(pb::AddInvoiceLineRequest {
            invoice_id: draft.id.clone(),
            charge_id: consult.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    // An insurer's charge does not belong on a self-pay invoice.
    let status = app
        .client
        .add_invoice_line(pb::AddInvoiceLineRequest {
            invoice_id: draft.id.clone(),
            charge_id: insured.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["charge_id"]);

    let removed = app
        .client
        .remove_invoice_line(pb::RemoveInvoiceLineRequest {
            invoice_id: draft.id.clone(),
            charge_id: dressing.id.clone(),
            etag: draft.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(removed.lines.len(), 1);
    assert_eq!(removed.total_pence, 20_000);
    // A stale etag changes nothing.
    let status = app
        .client
        .add_invoice_line(pb::AddInvoiceLineRequest {
            invoice_id: draft.id.clone(),
            charge_id: dressing.id.clone(),
            etag: draft.etag.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    let added = app
        .client
        .add_invoice_line(pb::AddInvoiceLineRequest {
            invoice_id: draft.id.clone(),
            charge_id: dressing.id.clone(),
            etag: removed.etag.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.total_pence, 24_442);

    // An empty draft cannot be issued, and its failed issue uses no number.
    let empty = app.draft(&new_id(), self_pay()).await;
    let status = app.try_issue(&empty.id, "2026-05-06").await.unwrap_err();
    assert_wrong_state(&status, "no lines");

    let issued = app.issue(&draft.id, "2026-05-06").await;
    assert_eq!(issued.number, "INV-2026-000001");
    assert_eq!(issued.status(), pb::InvoiceStatus::Issued);
    assert_eq!(issued.issue_date, "2026-05-06");
    assert_eq!(issued.due_date, "2026-06-05");
    assert_invoice_invariants(&issued);

    // Immutable once issued.
    let status = app
        .client
        .remove_invoice_line(pb::RemoveInvoiceLineRequest {
            invoice_id: issued.id.clone(),
            charge_id: consult.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_wrong_state(&status, "issued");
    assert_wrong_state(
        &app.try_issue(&issued.id, "2026-05-06").await.unwrap_err(),
        "issued",
    );

    let second = app.draft(&patient, insurer("")).await;
    assert_eq!(second.lines.len(), 1);
    assert_eq!(second.lines[0].preauthorisation_code, "PA-9");
    let second = app.issue(&second.id, "2026-05-07").await;
    assert_eq!(second.number, "INV-2026-000002");
    // Each year has its own sequence.
    let next_year = app.charge(&patient, "CONS", 1, self_pay()).await;
    let draft = app.draft(&patient, self_pay()).await;
    assert_eq!(draft.lines[0].charge_id, next_year.id);
    assert_eq!(
        app.issue(&draft.id, "2025-12-30").await.number,
        "INV-2025-000001"
    );
}

async fn payments_balance_an_invoice_and_overpayment_is_refused(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let patient = new_id();
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let draft = app.draft(&patient, self_pay()).await;
    // A draft takes no payments.
    assert_wrong_state(
        &app.try_pay(&draft.id, 100, "early").await.unwrap_err(),
        "draft",
    );
    let invoice = app.issue(&draft.id, "2026-05-06").await;

    let paid = app.try_pay(&invoice.id, 4_000, "pay-1").await.unwrap();
    assert_eq!(paid.balance_pence, 6_000);
    assert_eq!(paid.status(), pb::InvoiceStatus::Issued);
    // A retry records nothing new.
    let again = app.try_pay(&invoice.id, 4_000, "pay-1").await.unwrap();
    assert_eq!(again.payments.len(), 1);
    assert_eq!(again.balance_pence, 6_000);
    // The same key for another payment is refused.
    let status = app.try_pay(&invoice.id, 5_000, "pay-1").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["request_id"]);

    let status = app.try_pay(&invoice.id, 6_001, "pay-2").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["amount_pence"]);
    assert!(status.message().contains("6000"), "{}", status.message());
    assert_eq!(
        app.get(&invoice.id).await.payments.len(),
        1,
        "nothing recorded"
    );

    let balanced = app.try_pay(&invoice.id, 6_000, "pay-2").await.unwrap();
    assert_eq!(balanced.status(), pb::InvoiceStatus::Balanced);
    assert_eq!(balanced.balance_pence, 0);
    assert_invoice_invariants(&balanced);
    assert_wrong_state(
        &app.try_pay(&invoice.id, 1, "pay-3").await.unwrap_err(),
        "balanced",
    );

    let status = app
        .client
        .record_payment(pb::RecordPaymentRequest {
            invoice_id: invoice.id.clone(),
            amount_pence: 0,
            method: 0,
            paid_on: "yesterday".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["amount_pence", "method", "paid_on", "request_id"]
    );
    let status = app.try_pay(&new_id(), 1, "ghost").await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn credit_notes_and_voids_correct_without_editing(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let patient = new_id();
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let invoice = app.draft(&patient, self_pay()).await;
    let invoice = app.issue(&invoice.id, "2026-05-06").await;
    app.pay(&invoice.id, 2_000).await;

    let credit = |amount: i64, request_id: &str| pb::IssueCreditNoteRequest {
        invoice_id: invoice.id.clone(),
        amount_pence: amount,
        reason: "goodwill: clinic ran late".into(),
        request_id: request_id.into(),
    };
    // Money leaving a balance needs a key, as a payment does.
    let keyless = app
        .client
        .issue_credit_note(credit(1_500, ""))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&keyless), ["request_id"]);
    let credited = app
        .client
        .issue_credit_note(credit(1_500, "cn-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(credited.credited_pence, 1_500);
    assert_eq!(credited.balance_pence, 6_500);
    assert_eq!(
        credited.credit_notes[0].number,
        format!("CN-{}-000001", chrono_year())
    );
    let again = app
        .client
        .issue_credit_note(credit(1_500, "cn-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        again.credit_notes.len(),
        1,
        "a retried credit note is made once"
    );
    let status = app
        .client
        .issue_credit_note(credit(6_501, "cn-2"))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["amount_pence"]);

    // Paid or credited: no void, only credit notes.
    let status = app
        .client
        .void_invoice(pb::VoidInvoiceRequest {
            id: invoice.id.clone(),
            reason: "wrong patient".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_wrong_state(&status, "issued");
    let balanced = app
        .client
        .issue_credit_note(credit(6_500, "cn-3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(balanced.status(), pb::InvoiceStatus::Balanced);
    assert_invoice_invariants(&balanced);

    // An issued invoice nobody paid is voided; its number stays used and its
    // charges can be billed again.
    let other = new_id();
    let charge = app.charge(&other, "CONS", 1, self_pay()).await;
    let wrong = app.draft(&other, self_pay()).await;
    let wrong = app.issue(&wrong.id, "2026-05-06").await;
    assert_eq!(wrong.number, "INV-2026-000002");
    let void = |id: &str, reason: &str| pb::VoidInvoiceRequest {
        id: id.into(),
        reason: reason.into(),
        etag: String::new(),
    };
    let status = app
        .client
        .void_invoice(void(&wrong.id, " "))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["reason"]);
    let voided = app
        .client
        .void_invoice(void(&wrong.id, "issued to the wrong payer"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(voided.status(), pb::InvoiceStatus::Cancelled);
    assert_eq!(voided.number, "INV-2026-000002");
    assert_eq!(voided.void_reason, "issued to the wrong payer");
    assert_eq!(voided.total_pence, wrong.total_pence, "lines are kept");
    assert_wrong_state(
        &app.client
            .void_invoice(void(&wrong.id, "again"))
            .await
            .unwrap_err(),
        "cancelled",
    );
    let rebilled = app.draft(&other, self_pay()).await;
    assert_eq!(rebilled.lines[0].charge_id, charge.id);
    let rebilled = app.issue(&rebilled.id, "2026-05-07").await;
    assert_eq!(rebilled.number, "INV-2026-000003");

    // A draft can be voided too.
    app.charge(&other, "CONS", 1, self_pay()).await;
    let draft = app.draft(&other, self_pay()).await;
    let voided = app
        .client
        .void_invoice(void(&draft.id, "duplicate"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(voided.status(), pb::InvoiceStatus::Cancelled);
    assert_eq!(voided.number, "");
}

fn chrono_year() -> i32 {
    use chrono::Datelike as _;
    medsec_platform::time::today_in_london().year()
}

async fn a_shortfall_moves_to_the_patient_as_a_new_invoice(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("SURG", 250_000, 0, "2026-01-01").await;
    let patient = new_id();
    app.charge(&patient, "SURG", 1, insurer("PA-77")).await;
    let claim = app.draft(&patient, insurer("")).await;
    let claim = app.issue(&claim.id, "2026-05-06").await;

    let shortfall = |id: &str, request_id: &str| pb::BillShortfallRequest {
        invoice_id: id.into(),
        request_id: request_id.into(),
    };
    // A self-pay invoice has no shortfall to move.
    app.price("CONS", 100, 0, "2026-01-01").await;
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let own = app.draft(&patient, self_pay()).await;
    let own = app.issue(&own.id, "2026-05-06").await;
    let status = app
        .client
        .bill_shortfall(shortfall(&own.id, ""))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["invoice_id"]);

    app.client
        .record_payment(pb::RecordPaymentRequest {
            invoice_id: claim.id.clone(),
            amount_pence: 200_000,
            method: pb::PaymentMethod::InsurerRemittance as i32,
            paid_on: "2026-05-30".into(),
            request_id: "remit-1".into(),
        })
        .await
        .unwrap();
    let patient_invoice = app
        .client
        .bill_shortfall(shortfall(&claim.id, "sf-1"))
        .await
        .unwrap()
        .into_inner();
    let retried = app
        .client
        .bill_shortfall(shortfall(&claim.id, "sf-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retried.id, patient_invoice.id);
    assert_eq!(patient_invoice.status(), pb::InvoiceStatus::Draft);
    assert_eq!(
        patient_invoice.payer.as_ref().unwrap().kind(),
        pb::PayerKind::SelfPay
    );
    assert_eq!(patient_invoice.patient_id, patient);
    assert_eq!(patient_invoice.shortfall_of_invoice_id, claim.id);
    assert_eq!(patient_invoice.total_pence, 50_000);
    assert!(patient_invoice.lines[0].description.contains(&claim.number));
    assert_invoice_invariants(&patient_invoice);

    let claim = app.get(&claim.id).await;
    assert_eq!(claim.status(), pb::InvoiceStatus::Balanced);
    assert_eq!(claim.credited_pence, 50_000);
    assert!(claim.credit_notes[0].reason.contains(&patient_invoice.id));
    assert_invoice_invariants(&claim);
    assert_wrong_state(
        &app.client
            .bill_shortfall(shortfall(&claim.id, "sf-2"))
            .await
            .unwrap_err(),
        "balanced",
    );
    // The shortfall cannot be voided away, as a draft or once issued: a
    // write-off must be a numbered credit note.
    let void = |id: &str| pb::VoidInvoiceRequest {
        id: id.into(),
        reason: "patient disputes it".into(),
        ..Default::default()
    };
    let refused = app
        .client
        .void_invoice(void(&patient_invoice.id))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("shortfall"),
        "{}",
        refused.message()
    );
    let billed = app.issue(&patient_invoice.id, "2026-06-01").await;
    assert_eq!(billed.balance_pence, 50_000);
    let refused = app.client.void_invoice(void(&billed.id)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert_eq!(app.get(&billed.id).await.balance_pence, 50_000);
}

async fn lists_invoices_by_status_payer_and_overdue(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let patient = new_id();
        let payer = if n % 2 == 0 { self_pay() } else { insurer("") };
        app.charge(&patient, "CONS", 1, payer.clone()).await;
        let draft = app.draft(&patient, payer).await;
        if n < 4 {
            // Due dates 2026-01-31, 2026-03-02, 2026-04-01, 2026-05-01.
            let issue_date = ["2026-01-01", "2026-01-31", "2026-03-02", "2026-04-01"][n];
            app.issue(&draft.id, issue_date).await;
        }
        ids.push(draft.id);
    }
    let list = |change: fn(&mut pb::ListInvoicesRequest)| {
        let mut request = pb::ListInvoicesRequest {
            as_of: "2026-04-15".into(),
            ..Default::default()
        };
        change(&mut request);
        request
    };
    let mut client = app.client.clone();
    let mut ids_of = async |request: pb::ListInvoicesRequest| -> Vec<String> {
        client
            .list_invoices(request)
            .await
            .unwrap()
            .into_inner()
            .invoices
            .into_iter()
            .map(|i| i.id)
            .collect()
    };
    assert_eq!(ids_of(list(|_| {})).await, ids);
    assert_eq!(
        ids_of(list(|r| r.status = pb::InvoiceStatus::Draft as i32)).await,
        [ids[4].clone()]
    );
    assert_eq!(
        ids_of(list(|r| r.payer_kind = pb::PayerKind::Insurer as i32)).await,
        [ids[1].clone(), ids[3].clone()]
    );
    assert_eq!(
        ids_of(list(|r| r.insurer_name = "Bupa".into())).await,
        [ids[1].clone(), ids[3].clone()]
    );
    assert_eq!(ids_of(list(|r| r.overdue = true)).await, ids[..3].to_vec());
    assert_eq!(
        ids_of(list(|r| {
            r.overdue = true;
            r.payer_kind = pb::PayerKind::SelfPay as i32;
        }))
        .await,
        [ids[0].clone(), ids[2].clone()]
    );

    let report = app.aged_debt("2026-05-01").await;
    // Days past due on 2026-05-01: 90, 60, 30, 0.
    assert_eq!(report.days_0_30_pence, 20_000);
    assert_eq!(report.days_31_60_pence, 10_000);
    assert_eq!(report.days_61_90_pence, 10_000);
    assert_eq!(report.days_over_90_pence, 0);
    assert_eq!(report.total_pence, 40_000);
    assert_eq!(report.invoice_count, 4);
    let later = app.aged_debt("2026-05-02").await;
    assert_eq!(
        (
            later.days_0_30_pence,
            later.days_31_60_pence,
            later.days_61_90_pence,
            later.days_over_90_pence
        ),
        (10_000, 10_000, 10_000, 10_000)
    );
    let early = app.aged_debt("2026-01-15").await;
    assert_eq!(
        (early.not_due_pence, early.total_pence, early.invoice_count),
        (10_000, 10_000, 1)
    );

    // Pages of two walk every invoice once.
    let seen = app.every_invoice(2).await;
    assert_eq!(seen.into_iter().map(|i| i.id).collect::<Vec<_>>(), ids);
    let status = app
        .client
        .list_invoices(list(|r| r.as_of = "15/04/2026".into()))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["as_of"]);
    let status = app.try_aged_debt("2026-13-01").await.unwrap_err();
    assert_eq!(violated_fields(&status), ["as_of"]);
}

async fn refuses_bad_invoice_requests(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let status = app
        .client
        .create_invoice(pb::CreateInvoiceRequest {
            patient_id: new_id(),
            payer: Some(nhs()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["payer.kind"]);
    let status = app
        .client
        .create_invoice(pb::CreateInvoiceRequest {
            patient_id: "nope".into(),
            payer: None,
            request_id: "a b".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["request_id", "patient_id", "payer"]
    );
    let listed = app
        .client
        .list_invoices(pb::ListInvoicesRequest::default())
        .await
        .unwrap();
    assert!(listed.into_inner().invoices.is_empty(), "nothing stored");

    let status = app
        .client
        .get_invoice(pb::GetInvoiceRequest { id: new_id() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = app
        .client
        .get_invoice(pb::GetInvoiceRequest { id: "x".into() })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["id"]);

    let draft = app.draft(&new_id(), self_pay()).await;
    let status = app
        .client
        .issue_invoice(pb::IssueInvoiceRequest {
            id: draft.id.clone(),
            etag: "v1".into(),
            issue_date: "2026-02-30".into(),
            payment_terms_days: 400,
        })
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["etag", "issue_date", "payment_terms_days"]
    );
    // Invoices are numbered by the year of their date: no dates ahead, none
    // without a four-digit year.
    for date in ["2999-01-01", "1999-12-31"] {
        let status = app.try_issue(&draft.id, date).await.unwrap_err();
        assert_eq!(violated_fields(&status), ["issue_date"], "{date}");
    }

    // The same request_id returns the same draft.
    let request = pb::CreateInvoiceRequest {
        patient_id: new_id(),
        payer: Some(self_pay()),
        request_id: "inv-1".into(),
    };
    let first = app
        .client
        .create_invoice(request.clone())
        .await
        .unwrap()
        .into_inner();
    let again = app
        .client
        .create_invoice(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, again.id);
}
