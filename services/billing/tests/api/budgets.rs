//! Budgets through the API: the allocation rule and its override, financial
//! years, refusals, and lists page by page.

use medsec_platform::auth::Role;
use medsec_platform::both_backends;
use medsec_platform::testing::{Backend, Caller, precondition_type, violated_fields};
use medsec_proto::billing::v1 as pb;
use medsec_proto::billing::v1::billing_service_client::BillingServiceClient;
use tonic::Code;

use crate::helpers::{TestApp, assert_wrong_state, every_page, new_id, spawn_app};

both_backends!(
    a_budget_warns_at_ninety_percent_and_refuses_overspend_unless_overridden,
    refuses_bad_budgets_and_entries,
    lists_budgets_and_entries_page_by_page,
);

fn entry(kind: pb::BudgetEntryKind, amount: i64, date: &str) -> pb::BudgetEntry {
    pb::BudgetEntry {
        kind: kind as i32,
        amount_pence: amount,
        reference: "PO-1001 dressings".into(),
        entry_date: date.into(),
        ..Default::default()
    }
}

async fn record(
    app: &mut TestApp,
    budget: &str,
    entry: pb::BudgetEntry,
    override_reason: &str,
    request_id: &str,
) -> Result<pb::Budget, tonic::Status> {
    app.client
        .record_budget_entry(pb::RecordBudgetEntryRequest {
            budget_id: budget.into(),
            entry: Some(entry),
            override_reason: override_reason.into(),
            request_id: request_id.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn a_budget_warns_at_ninety_percent_and_refuses_overspend_unless_overridden(
    backend: Backend,
) {
    use pb::BudgetEntryKind::{Commitment, Spend};
    let mut app = spawn_app(backend).await;
    let budget = app
        .try_budget("Dermatology", 2026, 1_000_000, "")
        .await
        .unwrap();
    assert_eq!(budget.financial_year_label, "2026-27");
    assert_eq!(budget.remaining_pence, 1_000_000);
    assert!(!budget.warning);

    let status = app
        .try_budget("Dermatology", 2026, 5, "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(status.message().contains(&budget.id));
    assert!(
        app.try_budget("Dermatology", 2027, 5, "").await.is_ok(),
        "another year is another budget"
    );

    let after_po = record(
        &mut app,
        &budget.id,
        entry(Commitment, 600_000, "2026-04-01"),
        "",
        "po-1",
    )
    .await
    .unwrap();
    assert_eq!(
        (after_po.committed_pence, after_po.remaining_pence),
        (600_000, 400_000)
    );
    let retried = record(
        &mut app,
        &budget.id,
        entry(Commitment, 600_000, "2026-04-01"),
        "",
        "po-1",
    )
    .await
    .unwrap();
    assert_eq!(
        retried.committed_pence, 600_000,
        "a retry records nothing new"
    );

    let spent = record(
        &mut app,
        &budget.id,
        entry(Spend, 299_999, "2027-03-31"),
        "",
        "",
    )
    .await
    .unwrap();
    assert_eq!(spent.spent_pence, 299_999);
    assert!(!spent.warning, "899999 of 1000000 is below 90%");
    let spent = record(&mut app, &budget.id, entry(Spend, 1, "2026-09-30"), "", "")
        .await
        .unwrap();
    assert!(spent.warning, "90% used");
    assert_eq!(spent.remaining_pence, 100_000);

    // Past the allocation: refused, nothing recorded.
    let status = record(
        &mut app,
        &budget.id,
        entry(Spend, 100_001, "2026-10-01"),
        "",
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(precondition_type(&status), "BUDGET");
    assert!(status.message().contains("100000"), "{}", status.message());
    let unchanged = app
        .client
        .get_budget(pb::GetBudgetRequest {
            id: budget.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged.spent_pence, 300_000);

    // Settling the purchase order releases its commitment, so the invoice for it fits.
    let entries = app
        .client
        .list_budget_entries(pb::ListBudgetEntriesRequest {
            budget_id: budget.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let po = entries[0].clone();
    let settle = pb::BudgetEntry {
        settles_commitment_id: po.id.clone(),
        ..entry(Spend, 700_001, "2026-11-01")
    };
    let status = record(&mut app, &budget.id, settle.clone(), "", "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    let still_open = app
        .client
        .list_budget_entries(pb::ListBudgetEntriesRequest {
            budget_id: budget.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !still_open.entries[0].settled,
        "a refused spend settles nothing"
    );
    let settle = pb::BudgetEntry {
        amount_pence: 700_000,
        ..settle
    };
    let after = record(&mut app, &budget.id, settle.clone(), "", "")
        .await
        .unwrap();
    assert_eq!(
        (
            after.committed_pence,
            after.spent_pence,
            after.remaining_pence
        ),
        (0, 1_000_000, 0)
    );
    assert_wrong_state(
        &record(&mut app, &budget.id, settle, "", "")
            .await
            .unwrap_err(),
        "settled",
    );

    // Only a finance approver may override.
    let clerk = Caller::staff("b.clerk", &[Role::BillingClerk]);
    let status = BillingServiceClient::new(app.running.channel_as(&clerk))
        .record_budget_entry(pb::RecordBudgetEntryRequest {
            budget_id: budget.id.clone(),
            entry: Some(entry(Spend, 25_000, "2026-12-01")),
            override_reason: "the clerk thinks it is fine".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("finance_approver"), "{status:?}");

    // An override with a reason lets it through, and the reason is kept.
    let over = record(
        &mut app,
        &budget.id,
        entry(Spend, 25_000, "2026-12-01"),
        "urgent laser repair approved by the clinical director",
        "",
    )
    .await
    .unwrap();
    assert_eq!(over.remaining_pence, -25_000);
    assert!(over.warning);
    let entries = app
        .client
        .list_budget_entries(pb::ListBudgetEntriesRequest {
            budget_id: budget.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(entries[0].settled);
    let last = entries.last().unwrap();
    assert_eq!(
        last.override_reason,
        "urgent laser repair approved by the clinical director"
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| !e.override_reason.is_empty())
            .count(),
        1
    );
}

async fn refuses_bad_budgets_and_entries(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let status = app.try_budget(" ", 1999, -1, "").await.unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "budget.department",
            "budget.financial_year",
            "budget.allocation_pence"
        ]
    );
    let budget = app.try_budget("Cardiology", 2026, 100, "").await.unwrap();
    let status = record(&mut app, &budget.id, pb::BudgetEntry::default(), "", "a b")
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        [
            "request_id",
            "entry.kind",
            "entry.amount_pence",
            "entry.reference",
            "entry.entry_date"
        ]
    );
    // Outside the financial year 2026-27.
    let status = record(
        &mut app,
        &budget.id,
        entry(pb::BudgetEntryKind::Spend, 1, "2026-03-31"),
        "",
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&status), ["entry.entry_date"]);
    let status = record(
        &mut app,
        &new_id(),
        entry(pb::BudgetEntryKind::Spend, 1, "2026-04-01"),
        "",
        "",
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let settle_unknown = pb::BudgetEntry {
        settles_commitment_id: new_id(),
        ..entry(pb::BudgetEntryKind::Spend, 1, "2026-04-01")
    };
    let status = record(&mut app, &budget.id, settle_unknown, "", "")
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["entry.settles_commitment_id"]);
    let unchanged = app
        .client
        .get_budget(pb::GetBudgetRequest {
            id: budget.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((unchanged.committed_pence, unchanged.spent_pence), (0, 0));
    let status = app
        .client
        .get_budget(pb::GetBudgetRequest { id: new_id() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

async fn lists_budgets_and_entries_page_by_page(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let mut radiology = Vec::new();
    for year in 2024..2029 {
        radiology.push(
            app.try_budget("Radiology", year, 1_000, "")
                .await
                .unwrap()
                .id,
        );
        app.try_budget("Pharmacy", year, 1_000, "").await.unwrap();
    }
    let seen = every_page(async |page_token| {
        let request = pb::ListBudgetsRequest {
            page_size: 2,
            page_token,
            department: "Radiology".into(),
            financial_year: 0,
        };
        let page = app.client.list_budgets(request).await.unwrap().into_inner();
        (page.budgets, page.next_page_token)
    })
    .await;
    assert_eq!(
        seen.into_iter().map(|b| b.id).collect::<Vec<_>>(),
        radiology
    );
    let by_year = app
        .client
        .list_budgets(pb::ListBudgetsRequest {
            financial_year: 2026,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_year.budgets.len(), 2);

    let budget = &radiology[2];
    for n in 0..5 {
        record(
            &mut app,
            budget,
            entry(pb::BudgetEntryKind::Commitment, 10 + n, "2026-05-01"),
            "",
            "",
        )
        .await
        .unwrap();
    }
    let first = app
        .client
        .list_budget_entries(pb::ListBudgetEntriesRequest {
            budget_id: budget.clone(),
            page_size: 3,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entries.len(), 3);
    let rest = app
        .client
        .list_budget_entries(pb::ListBudgetEntriesRequest {
            budget_id: budget.clone(),
            page_size: 3,
            page_token: first.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        rest.entries
            .iter()
            .map(|e| e.amount_pence)
            .collect::<Vec<_>>(),
        [13, 14]
    );
    assert!(rest.next_page_token.is_empty());
    let status = app
        .client
        .list_budget_entries(pb::ListBudgetEntriesRequest {
            budget_id: radiology[0].clone(),
            page_size: 3,
            page_token: first.next_page_token,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
}
