//! Department budgets per financial year, and the commitments and spend
//! recorded against them.

use chrono::{NaiveDate, Utc};
use medsec_platform::idempotency::Claimed;
use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryTrait as _, Set,
};
use uuid::Uuid;

use super::entities::budget::{ActiveModel, Column, Entity as Budgets, Model};
use super::entities::budget_entry;
use super::{IDEMPOTENCY_KEYS, RequestKey};
use crate::domain::budget::admit;
use crate::domain::{EntryKind, FinancialYear};

const RESOURCE: &str = "budget";

/// Filters of ListBudgets; its `Debug` form, naming every value, is the
/// fingerprint of its page tokens.
#[derive(Debug, Default, Clone)]
pub struct BudgetFilter {
    pub department: Option<String>,
    pub financial_year: Option<i32>,
}

/// A validated entry.
#[derive(Debug, Clone)]
pub struct NewEntry {
    pub kind: EntryKind,
    pub amount_pence: i64,
    pub reference: String,
    pub entry_date: NaiveDate,
    pub settles_commitment_id: Option<Uuid>,
    pub override_reason: Option<String>,
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    super::row::<Budgets>(db, RESOURCE, id).await
}

/// Opens a budget; one per department and year.
pub async fn create(
    db: &DatabaseConnection,
    department: String,
    year: FinancialYear,
    allocation_pence: i64,
    key: Option<&RequestKey>,
) -> Result<Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreateBudget", key, async |txn, claimed| {
            let id = match claimed {
                Claimed::Replay(id) => return get(txn, id).await,
                Claimed::New(id) => id,
            };
            let now = Utc::now();
            let row = ActiveModel {
                id: Set(id),
                department: Set(department.clone()),
                financial_year: Set(year.start_year()),
                allocation_pence: Set(allocation_pence),
                committed_pence: Set(0),
                spent_pence: Set(0),
                create_time: Set(now),
                update_time: Set(now),
                revision: Set(1),
            };
            // The unique index decides between racing creates; the loser
            // waits for the winner and is told which budget holds the year.
            let inserted = Budgets::insert(row)
                .on_conflict(
                    OnConflict::columns([Column::Department, Column::FinancialYear])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
            if inserted == 0 {
                return Err(already_held(txn, &department, year).await);
            }
            get(txn, id).await
        })
        .await
}

/// ALREADY_EXISTS naming the budget that holds `department`'s `year`.
async fn already_held(
    txn: &DatabaseTransaction,
    department: &str,
    year: FinancialYear,
) -> ApiError {
    let existing = Budgets::find()
        .filter(Column::Department.eq(department))
        .filter(Column::FinancialYear.eq(year.start_year()))
        .one(txn)
        .await;
    match existing {
        Ok(Some(existing)) => ApiError::AlreadyExists {
            message: format!(
                "{department} already has budget {} for {}",
                existing.id,
                year.label()
            ),
            resource: RESOURCE,
            existing_id: existing.id.to_string(),
        },
        Ok(None) => ApiError::lost_race(),
        Err(error) => error.into(),
    }
}

/// Records a commitment or a spend, refusing one past the allocation unless
/// it carries an override reason.
pub async fn record_entry(
    db: &DatabaseConnection,
    budget_id: Uuid,
    entry: NewEntry,
    key: Option<&RequestKey>,
) -> Result<Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "RecordBudgetEntry", key, async |txn, claimed| {
            let entry_id = match claimed {
                Claimed::Replay(_) => return get(txn, budget_id).await,
                Claimed::New(id) => id,
            };
            let budget = take(txn, budget_id).await?;
            let year = FinancialYear::new(budget.financial_year).map_err(ApiError::internal)?;
            if !year.contains(entry.entry_date) {
                return Err(ApiError::invalid(
                    "entry.entry_date",
                    format!("must fall within the financial year {}", year.label()),
                ));
            }
            let released = match entry.settles_commitment_id {
                Some(commitment_id) => settle(txn, budget_id, commitment_id).await?,
                None => 0,
            };
            let override_reason = admit(
                budget.allocation_pence,
                budget.committed_pence,
                budget.spent_pence,
                entry.amount_pence,
                released,
                entry.override_reason,
            )
            .map_err(|remaining| over_allocation(budget_id, remaining, entry.amount_pence))?;
            let (committed_delta, spent_delta) = entry.kind.deltas(entry.amount_pence, released);
            Budgets::update_many()
                .col_expr(
                    Column::CommittedPence,
                    Expr::col(Column::CommittedPence).add(committed_delta),
                )
                .col_expr(
                    Column::SpentPence,
                    Expr::col(Column::SpentPence).add(spent_delta),
                )
                .filter(Column::Id.eq(budget_id))
                .exec(txn)
                .await?;
            budget_entry::ActiveModel {
                id: Set(entry_id),
                budget_id: Set(budget_id),
                kind: Set(entry.kind.as_str().to_owned()),
                amount_pence: Set(entry.amount_pence),
                reference: Set(entry.reference),
                entry_date: Set(entry.entry_date),
                settles_commitment_id: Set(entry.settles_commitment_id),
                settled: Set(false),
                override_reason: Set(override_reason),
                create_time: Set(Utc::now()),
            }
            .insert(txn)
            .await?;
            get(txn, budget_id).await
        })
        .await
}

/// Takes the budget row (a write, so racing entries queue on it), then
/// reads it.
async fn take(txn: &DatabaseTransaction, budget_id: Uuid) -> Result<Model, ApiError> {
    let taken = Budgets::update_many()
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdateTime, Expr::value(Utc::now()))
        .filter(Column::Id.eq(budget_id))
        .exec(txn)
        .await?;
    if taken.rows_affected == 0 {
        return Err(ApiError::not_found(RESOURCE, budget_id.to_string()));
    }
    get(txn, budget_id).await
}

fn over_allocation(budget_id: Uuid, remaining: i64, amount: i64) -> ApiError {
    ApiError::precondition(
        PreconditionKind::Budget,
        format!("budgets/{budget_id}"),
        format!(
            "budget {budget_id} has {remaining} pence remaining: an entry of {amount} pence would exceed the allocation; give override_reason to allow it"
        ),
    )
}

/// Marks an open commitment of the budget settled; returns its amount.
async fn settle(
    txn: &impl ConnectionTrait,
    budget_id: Uuid,
    commitment_id: Uuid,
) -> Result<i64, ApiError> {
    let settled = budget_entry::Entity::update_many()
        .col_expr(budget_entry::Column::Settled, Expr::value(true))
        .filter(budget_entry::Column::Id.eq(commitment_id))
        .filter(budget_entry::Column::BudgetId.eq(budget_id))
        .filter(budget_entry::Column::Kind.eq(EntryKind::Commitment.as_str()))
        .filter(budget_entry::Column::Settled.eq(false))
        .exec(txn)
        .await?;
    let commitment = budget_entry::Entity::find_by_id(commitment_id)
        .filter(budget_entry::Column::BudgetId.eq(budget_id))
        .filter(budget_entry::Column::Kind.eq(EntryKind::Commitment.as_str()))
        .one(txn)
        .await?;
    match commitment {
        None => Err(ApiError::invalid(
            "entry.settles_commitment_id",
            "is not a commitment of this budget",
        )),
        Some(_) if settled.rows_affected == 0 => Err(ApiError::wrong_state(
            format!("budget_entries/{commitment_id}"),
            "settled",
            "settle it again",
        )),
        Some(commitment) => Ok(commitment.amount_pence),
    }
}

/// One page of budgets by id (creation) order.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &BudgetFilter,
    page: &PageRequest,
) -> Result<Vec<Model>, ApiError> {
    let query = Budgets::find()
        .apply_if(filter.department.as_deref(), |q, department| {
            q.filter(Column::Department.eq(department))
        })
        .apply_if(filter.financial_year, |q, year| {
            q.filter(Column::FinancialYear.eq(year))
        });
    Ok(page.by_id(query, Column::Id)?.all(db).await?)
}

/// One page of a budget's entries in the order recorded.
pub async fn list_entries(
    db: &impl ConnectionTrait,
    budget_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<budget_entry::Model>, ApiError> {
    get(db, budget_id).await?;
    let query = budget_entry::Entity::find().filter(budget_entry::Column::BudgetId.eq(budget_id));
    Ok(page.by_id(query, budget_entry::Column::Id)?.all(db).await?)
}
