//! Department budgets per financial year, and the commitments and spend
//! recorded against them.

use chrono::{NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::idempotency::Claim;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use super::entities::budget::{ActiveModel, Column, Entity as Budgets, Model};
use super::entities::budget_entry;
use super::{IDEMPOTENCY_KEYS, RequestKey};
use crate::domain::FinancialYear;
use crate::domain::budget::fits;

const RESOURCE: &str = "budget";

/// Filters of ListBudgets.
#[derive(Debug, Default, Clone)]
pub struct BudgetFilter {
    pub department: Option<String>,
    pub financial_year: Option<i32>,
}

impl BudgetFilter {
    pub fn fingerprint(&self) -> String {
        format!(
            "department={:?};year={:?}",
            self.department, self.financial_year
        )
    }
}

/// Commitment or spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Commitment,
    Spend,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Commitment => "commitment",
            Self::Spend => "spend",
        }
    }
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
    Budgets::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id.to_string()))
}

/// Opens a budget; one per department and year.
pub async fn create(
    db: &DatabaseConnection,
    department: String,
    year: FinancialYear,
    allocation_pence: i64,
    key: Option<RequestKey>,
) -> Result<Model, ApiError> {
    let id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(key) = &key {
        let claim = IDEMPOTENCY_KEYS
            .claim(
                &txn,
                "CreateBudget",
                &key.request_id,
                &key.request,
                &id.to_string(),
            )
            .await?;
        if let Claim::Replay { resource_id } = claim {
            txn.rollback().await?;
            return get(
                db,
                Uuid::parse_str(&resource_id).map_err(ApiError::internal)?,
            )
            .await;
        }
    }
    let now = Utc::now();
    let inserted = ActiveModel {
        id: Set(id),
        department: Set(department.clone()),
        financial_year: Set(year.start_year()),
        allocation_pence: Set(allocation_pence),
        committed_pence: Set(0),
        spent_pence: Set(0),
        create_time: Set(now),
        update_time: Set(now),
        revision: Set(1),
    }
    .insert(&txn)
    .await;
    match inserted {
        Ok(row) => {
            txn.commit().await?;
            Ok(row)
        }
        Err(error) if matches!(error.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            txn.rollback().await?;
            let existing = Budgets::find()
                .filter(Column::Department.eq(department.as_str()))
                .filter(Column::FinancialYear.eq(year.start_year()))
                .one(db)
                .await?;
            Err(match existing {
                Some(existing) => ApiError::AlreadyExists {
                    message: format!(
                        "{department} already has budget {} for {}",
                        existing.id,
                        year.label()
                    ),
                    resource: RESOURCE,
                    existing_id: existing.id.to_string(),
                },
                None => ApiError::Aborted("a concurrent change raced this budget; retry".into()),
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// Records a commitment or a spend, refusing one past the allocation unless
/// it carries an override reason.
pub async fn record_entry(
    db: &DatabaseConnection,
    budget_id: Uuid,
    entry: NewEntry,
    key: Option<RequestKey>,
) -> Result<Model, ApiError> {
    let entry_id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(key) = &key {
        let claim = IDEMPOTENCY_KEYS
            .claim(
                &txn,
                "RecordBudgetEntry",
                &key.request_id,
                &key.request,
                &entry_id.to_string(),
            )
            .await?;
        if let Claim::Replay { .. } = claim {
            txn.rollback().await?;
            return get(db, budget_id).await;
        }
    }
    // Take the budget row before reading it.
    let taken = Budgets::update_many()
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdateTime, Expr::value(Utc::now()))
        .filter(Column::Id.eq(budget_id))
        .exec(&txn)
        .await?;
    if taken.rows_affected == 0 {
        return Err(ApiError::not_found(RESOURCE, budget_id.to_string()));
    }
    let budget = get(&txn, budget_id).await?;
    let year = FinancialYear::new(budget.financial_year).map_err(ApiError::internal)?;
    if !year.contains(entry.entry_date) {
        return Err(ApiError::invalid(
            "entry.entry_date",
            format!("must fall within the financial year {}", year.label()),
        ));
    }
    let mut released = 0;
    if let Some(commitment_id) = entry.settles_commitment_id {
        released = settle(&txn, budget_id, commitment_id).await?;
    }
    let (committed_delta, spent_delta) = match entry.kind {
        EntryKind::Commitment => (entry.amount_pence, 0),
        EntryKind::Spend => (-released, entry.amount_pence),
    };
    let fits = fits(
        budget.allocation_pence,
        budget.committed_pence,
        budget.spent_pence,
        entry.amount_pence,
        released,
    );
    // A reason is recorded only for an entry that needed the override.
    let override_reason = if fits {
        None
    } else {
        entry.override_reason.clone()
    };
    if !fits && override_reason.is_none() {
        let remaining = budget.allocation_pence - budget.committed_pence - budget.spent_pence;
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "budget {budget_id} has {remaining} pence remaining: an entry of {} pence would exceed the allocation; give override_reason to allow it",
                entry.amount_pence
            ),
            kind: medsec_platform::PreconditionKind::Budget,
            subject: format!("budgets/{budget_id}"),
        });
    }
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
        .exec(&txn)
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
    .insert(&txn)
    .await?;
    txn.commit().await?;
    get(db, budget_id).await
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
    let mut condition = Condition::all();
    if let Some(department) = &filter.department {
        condition = condition.add(Column::Department.eq(department.as_str()));
    }
    if let Some(year) = filter.financial_year {
        condition = condition.add(Column::FinancialYear.eq(year));
    }
    if let Some(after) = super::page_after(page)? {
        condition = condition.add(Column::Id.gt(after));
    }
    Ok(Budgets::find()
        .filter(condition)
        .order_by_asc(Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// One page of a budget's entries in the order recorded.
pub async fn list_entries(
    db: &impl ConnectionTrait,
    budget_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<budget_entry::Model>, ApiError> {
    get(db, budget_id).await?;
    let mut query =
        budget_entry::Entity::find().filter(budget_entry::Column::BudgetId.eq(budget_id));
    if let Some(after) = super::page_after(page)? {
        query = query.filter(budget_entry::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(budget_entry::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}
