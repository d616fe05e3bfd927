//! May 2026 at a small private dermatology clinic, driven through the API
//! the way the secretary and the scheduling service would drive it.

use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::billing::v1 as pb;
use tonic::Code;

use crate::helpers::{assert_invoice_invariants, insurer, new_id, nhs, self_pay, spawn_app};

both_backends!(a_month_of_private_clinic_billing);

async fn a_month_of_private_clinic_billing(backend: Backend) {
    let mut app = spawn_app(backend).await;
    // The price list: consultations are VAT-exempt care, the cosmetic
    // treatment carries 20% VAT.
    app.price("CONS-NEW", 25_000, 0, "2026-04-01").await;
    app.price("CONS-FU", 15_000, 0, "2026-04-01").await;
    app.price("BIOPSY", 32_500, 0, "2026-04-01").await;
    app.price("COSMETIC", 18_750, 2000, "2026-04-01").await;

    let (ada, ben, cat, dan) = (new_id(), new_id(), new_id(), new_id());
    // Appointments fulfilled in the scheduling service become charges; a
    // retry from that service charges nothing twice.
    let ada_visit = new_id();
    app.try_charge(&ada_visit, &ada, "CONS-NEW", 1, self_pay())
        .await
        .unwrap();
    app.try_charge(&ada_visit, &ada, "CONS-NEW", 1, self_pay())
        .await
        .unwrap();
    app.try_charge(&ada_visit, &ada, "COSMETIC", 2, self_pay())
        .await
        .unwrap();
    app.charge(&ben, "CONS-NEW", 1, insurer("AXA-PA-5521"))
        .await;
    app.charge(&ben, "BIOPSY", 1, insurer("AXA-PA-5521")).await;
    app.charge(&cat, "CONS-FU", 1, self_pay()).await;
    app.charge(&dan, "CONS-NEW", 1, nhs()).await;

    // Invoices to the patients and the insurer.
    let ada_invoice = app.draft(&ada, self_pay()).await;
    assert_eq!(ada_invoice.total_pence, 25_000 + 37_500 + 7_500);
    let ada_invoice = app.issue(&ada_invoice.id, "2026-05-01").await;
    let ben_claim = app.draft(&ben, insurer("")).await;
    let ben_claim = app.issue(&ben_claim.id, "2026-05-02").await;
    let cat_invoice = app.draft(&cat, self_pay()).await;
    let cat_invoice = app.issue(&cat_invoice.id, "2026-05-03").await;
    assert_eq!(
        [&ada_invoice.number, &ben_claim.number, &cat_invoice.number],
        ["INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    );
    // NHS-funded care is never invoiced.
    let status = app
        .client
        .create_invoice(pb::CreateInvoiceRequest {
            patient_id: dan.clone(),
            payer: Some(nhs()),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    // Part payments; Ada pays the rest after a goodwill credit note.
    app.pay(&ada_invoice.id, 30_000).await;
    let ada_credit = app
        .client
        .issue_credit_note(pb::IssueCreditNoteRequest {
            invoice_id: ada_invoice.id.clone(),
            amount_pence: 5_000,
            reason: "goodwill: appointment ran 40 minutes late".into(),
            request_id: "cn-ada".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ada_credit.balance_pence, 35_000);
    let ada_done = app.pay(&ada_invoice.id, 35_000).await;
    assert_eq!(ada_done.status(), pb::InvoiceStatus::Balanced);
    app.pay(&cat_invoice.id, 5_000).await;

    // The insurer pays its scheme rate; the shortfall moves to Ben.
    app.client
        .record_payment(pb::RecordPaymentRequest {
            invoice_id: ben_claim.id.clone(),
            amount_pence: 45_000,
            method: pb::PaymentMethod::InsurerRemittance as i32,
            paid_on: "2026-05-20".into(),
            request_id: "axa-remit-9981".into(),
        })
        .await
        .unwrap();
    let ben_bill = app
        .client
        .bill_shortfall(pb::BillShortfallRequest {
            invoice_id: ben_claim.id.clone(),
            request_id: "shortfall-ben".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ben_bill.total_pence, 57_500 - 45_000);
    let ben_bill = app.issue(&ben_bill.id, "2026-05-21").await;
    assert_eq!(ben_bill.number, "INV-2026-000004");

    // The aged-debt report at the end of June.
    let report = app.aged_debt("2026-06-30").await;
    // Cat: due 2026-06-02, 28 days past due, 10000 left. Ben: due
    // 2026-06-20, 10 days past due, 12500 left.
    assert_eq!(report.days_0_30_pence, 22_500);
    assert_eq!(report.total_pence, 22_500);
    assert_eq!(report.invoice_count, 2);
    let overdue = app
        .client
        .list_invoices(pb::ListInvoicesRequest {
            overdue: true,
            as_of: "2026-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let overdue: Vec<_> = overdue.invoices.into_iter().map(|i| i.id).collect();
    assert_eq!(overdue, [cat_invoice.id.clone(), ben_bill.id.clone()]);

    for id in [
        &ada_invoice.id,
        &ben_claim.id,
        &cat_invoice.id,
        &ben_bill.id,
    ] {
        assert_invoice_invariants(&app.get(id).await);
    }

    // The department's consumables budget warns, then refuses.
    let budget = app
        .try_budget("Dermatology", 2026, 500_000, "budget-derm-2026")
        .await
        .unwrap();
    let entry =
        |kind: pb::BudgetEntryKind, amount: i64, reference: &str| pb::RecordBudgetEntryRequest {
            budget_id: budget.id.clone(),
            entry: Some(pb::BudgetEntry {
                kind: kind as i32,
                amount_pence: amount,
                reference: reference.into(),
                entry_date: "2026-05-15".into(),
                ..Default::default()
            }),
            override_reason: String::new(),
            request_id: String::new(),
        };
    let after = app
        .client
        .record_budget_entry(entry(
            pb::BudgetEntryKind::Commitment,
            300_000,
            "PO-2026-0417 biopsy kits",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!after.warning);
    let after = app
        .client
        .record_budget_entry(entry(
            pb::BudgetEntryKind::Spend,
            160_000,
            "dermatoscope service",
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(after.warning, "92% used");
    assert_eq!(after.remaining_pence, 40_000);
    let refused = app
        .client
        .record_budget_entry(entry(
            pb::BudgetEntryKind::Spend,
            40_001,
            "cryotherapy canisters",
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let overridden = app
        .client
        .record_budget_entry(pb::RecordBudgetEntryRequest {
            override_reason: "patient safety: stock ran out, approved by the service manager"
                .into(),
            ..entry(pb::BudgetEntryKind::Spend, 40_001, "cryotherapy canisters")
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overridden.remaining_pence, -1);
}
