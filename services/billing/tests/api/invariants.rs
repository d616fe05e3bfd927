//! The invariants under concurrency and under random sequences of
//! operations: integer pence, total = lines plus VAT, balance = total -
//! payments - credits and never negative, gap-free numbers, one payment per
//! request_id.

use std::collections::{BTreeMap, HashSet};

use medsec_platform::both_backends;
use medsec_platform::testing::Backend;
use medsec_proto::billing::v1 as pb;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::TestRunner;
use tonic::Code;

use crate::helpers::{TestApp, assert_invoice_invariants, insurer, new_id, self_pay, spawn_app};

both_backends!(
    twenty_concurrent_payments_with_one_request_id_record_one,
    concurrent_issues_number_without_gaps_even_when_some_fail,
    random_operation_sequences_hold_every_invariant,
    racing_spends_never_pass_the_allocation,
);

async fn racing_spends_never_pass_the_allocation(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut create = async || {
        app.try_budget("Theatres", 2026, 100_000, "theatres-2026")
            .await
            .unwrap()
    };
    let budget = create().await;
    let again = create().await;
    assert_eq!(again.id, budget.id, "a retried create makes one budget");

    let calls = (0..10).map(|n| {
        let mut client = app.client.clone();
        let request = pb::RecordBudgetEntryRequest {
            budget_id: budget.id.clone(),
            entry: Some(pb::BudgetEntry {
                kind: pb::BudgetEntryKind::Spend as i32,
                amount_pence: 20_000,
                reference: format!("invoice {n}"),
                entry_date: "2026-07-01".into(),
                ..Default::default()
            }),
            override_reason: String::new(),
            request_id: format!("spend-{n}"),
        };
        tokio::spawn(async move { client.record_budget_entry(request).await })
    });
    let mut accepted = 0;
    for result in futures::future::join_all(calls).await {
        match result.unwrap() {
            Ok(_) => accepted += 1,
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    assert_eq!(accepted, 5);
    let budget = app
        .client
        .get_budget(pb::GetBudgetRequest { id: budget.id })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((budget.spent_pence, budget.remaining_pence), (100_000, 0));
    assert!(budget.warning);
}

async fn twenty_concurrent_payments_with_one_request_id_record_one(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 0, "2026-01-01").await;
    let patient = new_id();
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let draft = app.draft(&patient, self_pay()).await;
    let invoice = app.issue(&draft.id, "2026-05-06").await;

    let calls = (0..20).map(|_| {
        let mut client = app.client.clone();
        let request = pb::RecordPaymentRequest {
            invoice_id: invoice.id.clone(),
            amount_pence: 2_500,
            method: pb::PaymentMethod::Card as i32,
            paid_on: "2026-05-07".into(),
            request_id: "till-7-receipt-0042".into(),
        };
        tokio::spawn(async move { client.record_payment(request).await })
    });
    for result in futures::future::join_all(calls).await {
        let invoice = result.unwrap().expect("every retry succeeds").into_inner();
        assert_eq!(invoice.payments.len(), 1);
    }
    let invoice = app.get(&invoice.id).await;
    assert_eq!(invoice.payments.len(), 1);
    assert_eq!(invoice.balance_pence, 7_500);
    assert_invoice_invariants(&invoice);

    // Twenty different payments of a quarter each race for the balance:
    // exactly three fit, the rest are refused, and none overpays.
    let calls = (0..20).map(|n| {
        let mut client = app.client.clone();
        let request = pb::RecordPaymentRequest {
            invoice_id: invoice.id.clone(),
            amount_pence: 2_500,
            method: pb::PaymentMethod::Cash as i32,
            paid_on: "2026-05-08".into(),
            request_id: format!("race-{n}"),
        };
        tokio::spawn(async move { client.record_payment(request).await })
    });
    let mut accepted = 0;
    for result in futures::future::join_all(calls).await {
        match result.unwrap() {
            Ok(_) => accepted += 1,
            Err(status) => assert!(
                matches!(
                    status.code(),
                    Code::InvalidArgument | Code::FailedPrecondition
                ),
                "{status:?}"
            ),
        }
    }
    assert_eq!(accepted, 3);
    let invoice = app.get(&invoice.id).await;
    assert_eq!(invoice.status(), pb::InvoiceStatus::Balanced);
    assert_invoice_invariants(&invoice);
}

async fn concurrent_issues_number_without_gaps_even_when_some_fail(backend: Backend) {
    let mut app = spawn_app(backend).await;
    app.price("CONS", 10_000, 2000, "2026-01-01").await;
    let mut drafts = Vec::new();
    for n in 0..12 {
        let patient = new_id();
        // Every third draft is empty: its issue fails after taking a number.
        if n % 3 != 0 {
            app.charge(&patient, "CONS", 1, self_pay()).await;
        }
        drafts.push(app.draft(&patient, self_pay()).await.id);
    }
    let calls = drafts.iter().map(|id| {
        let mut client = app.client.clone();
        let request = pb::IssueInvoiceRequest {
            id: id.clone(),
            issue_date: "2026-06-01".into(),
            ..Default::default()
        };
        tokio::spawn(async move { client.issue_invoice(request).await })
    });
    let mut numbers = Vec::new();
    for result in futures::future::join_all(calls).await {
        match result.unwrap() {
            Ok(invoice) => numbers.push(invoice.into_inner().number),
            Err(status) => assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}"),
        }
    }
    numbers.sort();
    let expected: Vec<String> = (1..=8).map(|n| format!("INV-2026-{n:06}")).collect();
    assert_eq!(numbers, expected);

    // The next issue continues the sequence.
    let patient = new_id();
    app.charge(&patient, "CONS", 1, self_pay()).await;
    let draft = app.draft(&patient, self_pay()).await;
    assert_eq!(
        app.issue(&draft.id, "2026-06-02").await.number,
        "INV-2026-000009"
    );
}

/// One step of a random billing session.
#[derive(Debug, Clone)]
enum Op {
    Charge {
        patient: usize,
        code: usize,
        quantity: i32,
        insured: bool,
    },
    Draft {
        patient: usize,
        insured: bool,
    },
    RemoveLine {
        invoice: usize,
        line: usize,
    },
    Issue {
        invoice: usize,
        year: i32,
    },
    Pay {
        invoice: usize,
        amount: i64,
        reuse_key: bool,
    },
    Credit {
        invoice: usize,
        amount: i64,
    },
    Void {
        invoice: usize,
    },
    Shortfall {
        invoice: usize,
    },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Self::Charge { .. } => "charge",
            Self::Draft { .. } => "draft",
            Self::RemoveLine { .. } => "remove line",
            Self::Issue { .. } => "issue",
            Self::Pay { .. } => "pay",
            Self::Credit { .. } => "credit",
            Self::Void { .. } => "void",
            Self::Shortfall { .. } => "shortfall",
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 1..5i32, any::<bool>())
            .prop_map(|(patient, code, quantity, insured)| Op::Charge { patient, code, quantity, insured }),
        2 => (0..3usize, any::<bool>()).prop_map(|(patient, insured)| Op::Draft { patient, insured }),
        1 => (0..8usize, 0..3usize).prop_map(|(invoice, line)| Op::RemoveLine { invoice, line }),
        3 => (0..8usize, 2026..2028i32).prop_map(|(invoice, year)| Op::Issue { invoice, year }),
        4 => (0..8usize, 1..40_000i64, any::<bool>())
            .prop_map(|(invoice, amount, reuse_key)| Op::Pay { invoice, amount, reuse_key }),
        2 => (0..8usize, 1..20_000i64).prop_map(|(invoice, amount)| Op::Credit { invoice, amount }),
        1 => (0..8usize).prop_map(|invoice| Op::Void { invoice }),
        1 => (0..8usize).prop_map(|invoice| Op::Shortfall { invoice }),
    ]
}

async fn random_operation_sequences_hold_every_invariant(backend: Backend) {
    let mut app = spawn_app(backend).await;
    // Prices chosen so VAT rounds every way: 12345p at 20%, 999p at 5%, 10001p exempt.
    let codes = ["CONS", "DRESS", "SCAN"];
    app.price("CONS", 12_345, 2000, "2026-01-01").await;
    app.price("DRESS", 999, 500, "2026-01-01").await;
    app.price("SCAN", 10_001, 0, "2026-01-01").await;
    let patients: Vec<String> = (0..3).map(|_| new_id()).collect();

    let mut succeeded: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut runner = TestRunner::deterministic();
    let sequences = proptest::collection::vec(op(), 10..30);
    for case in 0..6 {
        let ops = sequences
            .new_tree(&mut runner)
            .expect("generate a sequence")
            .current();
        let mut invoices: Vec<String> = Vec::new();
        let mut last_key = String::new();
        for op in &ops {
            let pick = |index: usize| invoices.get(index % invoices.len().max(1)).cloned();
            let outcome = match op.clone() {
                Op::Charge {
                    patient,
                    code,
                    quantity,
                    insured,
                } => {
                    let payer = if insured { insurer("PA-1") } else { self_pay() };
                    app.try_charge(&new_id(), &patients[patient], codes[code], quantity, payer)
                        .await
                        .map(|_| ())
                }
                Op::Draft { patient, insured } => {
                    let payer = if insured { insurer("") } else { self_pay() };
                    let draft = app.draft(&patients[patient], payer).await;
                    invoices.push(draft.id);
                    Ok(())
                }
                Op::RemoveLine { invoice, line } => match pick(invoice) {
                    None => Ok(()),
                    Some(id) => {
                        let current = app.get(&id).await;
                        match current.lines.get(line % current.lines.len().max(1)) {
                            None => Ok(()),
                            Some(line) => app
                                .client
                                .remove_invoice_line(pb::RemoveInvoiceLineRequest {
                                    invoice_id: id,
                                    charge_id: line.charge_id.clone(),
                                    etag: String::new(),
                                })
                                .await
                                .map(|_| ()),
                        }
                    }
                },
                Op::Issue { invoice, year } => match pick(invoice) {
                    None => Ok(()),
                    Some(id) => app
                        .try_issue(&id, &format!("{year}-06-01"))
                        .await
                        .map(|_| ()),
                },
                Op::Pay {
                    invoice,
                    amount,
                    reuse_key,
                } => match pick(invoice) {
                    None => Ok(()),
                    Some(id) => {
                        let before = app.get(&id).await;
                        let key = if reuse_key && !last_key.is_empty() {
                            last_key.clone()
                        } else {
                            new_id()
                        };
                        last_key = key.clone();
                        let result = app.try_pay(&id, amount, &key).await;
                        if let Ok(after) = &result {
                            // Either a new payment of `amount`, or a replay that changed nothing.
                            let grew = after.payments.len() - before.payments.len();
                            assert!(grew <= 1);
                            if grew == 1 {
                                assert_eq!(after.paid_pence, before.paid_pence + amount);
                            } else {
                                assert_eq!(after.paid_pence, before.paid_pence);
                            }
                        }
                        result.map(|_| ())
                    }
                },
                Op::Credit { invoice, amount } => match pick(invoice) {
                    None => Ok(()),
                    Some(id) => app
                        .client
                        .issue_credit_note(pb::IssueCreditNoteRequest {
                            invoice_id: id,
                            amount_pence: amount,
                            reason: "correction".into(),
                            request_id: new_id(),
                        })
                        .await
                        .map(|_| ()),
                },
                Op::Void { invoice } => match pick(invoice) {
                    None => Ok(()),
                    Some(id) => app
                        .client
                        .void_invoice(pb::VoidInvoiceRequest {
                            id,
                            reason: "random void".into(),
                            etag: String::new(),
                        })
                        .await
                        .map(|_| ()),
                },
                Op::Shortfall { invoice } => match pick(invoice) {
                    None => Ok(()),
                    Some(id) => match app
                        .client
                        .bill_shortfall(pb::BillShortfallRequest {
                            invoice_id: id,
                            request_id: String::new(),
                        })
                        .await
                    {
                        Ok(new) => {
                            invoices.push(new.into_inner().id);
                            Ok(())
                        }
                        Err(status) => Err(status),
                    },
                },
            };
            if outcome.is_ok() {
                *succeeded.entry(op.name()).or_default() += 1;
            }
            if let Err(status) = outcome {
                // Refusals are expected; faults are not.
                assert!(
                    matches!(
                        status.code(),
                        Code::InvalidArgument | Code::FailedPrecondition
                    ),
                    "case {case}, {op:?}: {status:?}"
                );
            }
        }
        assert_every_invariant(&mut app).await;
    }
    // The sequences reached every kind of change, not only refusals.
    for name in [
        "charge",
        "draft",
        "issue",
        "pay",
        "credit",
        "void",
        "shortfall",
    ] {
        assert!(
            succeeded.get(name).copied().unwrap_or(0) > 0,
            "no {name} succeeded: {succeeded:?}"
        );
    }
}

/// Walks every invoice and charge and checks what must always hold.
async fn assert_every_invariant(app: &mut TestApp) {
    let invoices = app.every_invoice(100).await;
    let mut numbers: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut billed = HashSet::new();
    for invoice in &invoices {
        assert_invoice_invariants(invoice);
        if let Some((year, sequence)) = invoice
            .number
            .strip_prefix("INV-")
            .and_then(|rest| rest.split_once('-'))
        {
            numbers
                .entry(year.to_owned())
                .or_default()
                .push(sequence.parse().unwrap());
        }
        if invoice.status() != pb::InvoiceStatus::Cancelled {
            for line in invoice.lines.iter().filter(|l| !l.charge_id.is_empty()) {
                assert!(
                    billed.insert(line.charge_id.clone()),
                    "a charge billed twice"
                );
            }
        }
    }
    for (year, mut sequence) in numbers {
        sequence.sort_unstable();
        let expected: Vec<u32> = (1..=u32::try_from(sequence.len()).unwrap()).collect();
        assert_eq!(sequence, expected, "numbers of {year} have gaps or repeats");
    }
    let charges = app
        .client
        .list_charges(pb::ListChargesRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .charges;
    for charge in charges {
        assert_eq!(
            charge.invoice_id.is_empty(),
            !billed.contains(&charge.id),
            "charge {} and its invoice disagree",
            charge.id
        );
    }
}
