//! The aged-debt report: today's balances of issued invoices, by days past
//! due on a date (the buckets are `domain::AgedDebt`'s).

use chrono::NaiveDate;
use medsec_platform::ApiError;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::{Column, Invoices};
use crate::domain::{AgedDebt, InvoiceStatus};

/// Outstanding balances of issued invoices issued by `as_of`, by days past due.
pub async fn aged_debt(db: &impl ConnectionTrait, as_of: NaiveDate) -> Result<AgedDebt, ApiError> {
    let rows = Invoices::find()
        .filter(Column::Status.eq(InvoiceStatus::Issued.as_str()))
        .filter(Column::IssueDate.lte(as_of))
        .all(db)
        .await?;
    let mut report = AgedDebt::default();
    for row in rows {
        if let Some(due) = row.due_date {
            report.add(row.balance_pence(), due, as_of);
        }
    }
    Ok(report)
}
