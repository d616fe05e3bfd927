//! Department budgets per financial year, and the commitments and spend
//! recorded against them.

use medsec_platform::auth::{Principal, Role};
use medsec_platform::pagination::keys;
use medsec_platform::time::{format_civil_date, to_timestamp};
use medsec_platform::{ApiError, Reader};
use medsec_proto::billing::v1 as pb;
use tonic::Request;

use super::BillingApi;
use crate::domain::budget::{remaining, warning};
use crate::domain::money::{allocation, positive_amount};
use crate::domain::{EntryKind, FinancialYear};
use crate::store::budgets::{self, BudgetFilter, NewEntry};
use crate::store::entities::{budget, budget_entry};

pub(super) async fn create(
    api: &BillingApi,
    request: Request<pb::CreateBudgetRequest>,
) -> Result<pb::Budget, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let budget = r.message("budget", request.budget.as_ref())?;
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let department = r.required_line("budget.department", &budget.department, 100);
    let year = r.check(
        "budget.financial_year",
        FinancialYear::new(budget.financial_year),
    );
    let allocation_pence = r.check(
        "budget.allocation_pence",
        allocation(budget.allocation_pence),
    );
    let (department, year, allocation_pence) = r.finish((department, year, allocation_pence))?;
    let created =
        budgets::create(&api.db, department, year, allocation_pence, key.as_ref()).await?;
    Ok(to_proto(&created))
}

pub(super) async fn get(
    api: &BillingApi,
    request: Request<pb::GetBudgetRequest>,
) -> Result<pb::Budget, ApiError> {
    let mut r = Reader::new();
    let id = r.id("id", &request.get_ref().id);
    let id = r.finish(id)?;
    Ok(to_proto(&budgets::get(&api.db, id).await?))
}

pub(super) async fn list(
    api: &BillingApi,
    request: Request<pb::ListBudgetsRequest>,
) -> Result<pb::ListBudgetsResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let department = r.filter("department", &request.department, 200);
    let financial_year = match request.financial_year {
        0 => None,
        year => r
            .check("financial_year", FinancialYear::new(year))
            .map(FinancialYear::start_year),
    };
    let filter = BudgetFilter {
        department,
        financial_year,
    };
    let page = r.page(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    );
    let page = r.finish(page)?;
    let rows = budgets::list(&api.db, &filter, &page).await?;
    let (budgets, next_page_token) = page.tail(rows, |row| keys::id(row.id), to_proto);
    Ok(pb::ListBudgetsResponse {
        budgets,
        next_page_token,
    })
}

pub(super) async fn record_entry(
    api: &BillingApi,
    request: Request<pb::RecordBudgetEntryRequest>,
) -> Result<pb::Budget, ApiError> {
    if !request.get_ref().override_reason.trim().is_empty() {
        Principal::require(&request, Role::FinanceApprover, "overriding a budget")?;
    }
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let budget_id = r.id("budget_id", &request.budget_id);
    let override_reason = r.optional_line("override_reason", &request.override_reason, 500);
    let entry = r.message("entry", request.entry.as_ref())?;
    let entry = read_entry(
        &mut r,
        entry,
        Some(override_reason).filter(|s| !s.is_empty()),
    );
    let (budget_id, entry) = r.finish((budget_id, entry))?;
    let budget = budgets::record_entry(&api.db, budget_id, entry, key.as_ref()).await?;
    Ok(to_proto(&budget))
}

fn read_entry(
    r: &mut Reader,
    entry: &pb::BudgetEntry,
    override_reason: Option<String>,
) -> Option<NewEntry> {
    let kind = r.enumerated::<EntryKind>("entry.kind", entry.kind);
    let amount_pence = r.check("entry.amount_pence", positive_amount(entry.amount_pence));
    let reference = r.required_line("entry.reference", &entry.reference, 200);
    let entry_date = r.date("entry.entry_date", &entry.entry_date);
    let settles = r.optional_id("entry.settles_commitment_id", &entry.settles_commitment_id);
    if let Some(kind) = kind {
        r.check("entry.settles_commitment_id", kind.may_settle(settles));
    }
    Some(NewEntry {
        kind: kind?,
        amount_pence: amount_pence?,
        reference: reference?,
        entry_date: entry_date?,
        settles_commitment_id: settles,
        override_reason,
    })
}

pub(super) async fn list_entries(
    api: &BillingApi,
    request: Request<pb::ListBudgetEntriesRequest>,
) -> Result<pb::ListBudgetEntriesResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let budget_id = r.id("budget_id", &request.budget_id);
    let page = r.page(request.page_size, &request.page_token, &request.budget_id);
    let (budget_id, page) = r.finish((budget_id, page))?;
    let rows = budgets::list_entries(&api.db, budget_id, &page).await?;
    let (entries, next_page_token) = page.tail(rows, |row| keys::id(row.id), entry_to_proto);
    Ok(pb::ListBudgetEntriesResponse {
        entries,
        next_page_token,
    })
}

fn to_proto(row: &budget::Model) -> pb::Budget {
    pb::Budget {
        id: row.id.to_string(),
        department: row.department.clone(),
        financial_year: row.financial_year,
        financial_year_label: FinancialYear::new(row.financial_year)
            .map(FinancialYear::label)
            .unwrap_or_default(),
        allocation_pence: row.allocation_pence,
        committed_pence: row.committed_pence,
        spent_pence: row.spent_pence,
        remaining_pence: remaining(row.allocation_pence, row.committed_pence, row.spent_pence),
        warning: warning(row.allocation_pence, row.committed_pence, row.spent_pence),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
        etag: row.revision.to_string(),
    }
}

fn entry_to_proto(row: &budget_entry::Model) -> pb::BudgetEntry {
    pb::BudgetEntry {
        id: row.id.to_string(),
        kind: EntryKind::stored_to_proto(&row.kind),
        amount_pence: row.amount_pence,
        reference: row.reference.clone(),
        entry_date: format_civil_date(row.entry_date),
        settles_commitment_id: row
            .settles_commitment_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        settled: row.settled,
        override_reason: row.override_reason.clone().unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
    }
}
