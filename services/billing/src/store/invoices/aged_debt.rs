//! The aged-debt report: today's balances of issued invoices, by days past
//! due on a date (the buckets are `domain::AgedDebt`'s).

use chrono::NaiveDate;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::{Column, Invoices};
use crate::domain::{AgedDebt, InvoiceStatus};

/// Outstanding balances of issued invoices issued by `as_of`, by days past
/// due. The report names no patient; its read is audited as one event.
pub async fn aged_debt(
    db: &DatabaseConnection,
    as_of: NaiveDate,
    actor: &Actor,
) -> Result<AgedDebt, ApiError> {
    audit::audited(db, actor, async |txn| {
        let report = report(txn, as_of).await?;
        Ok((report, [Access::other(format!("agedDebtReports/{as_of}"))]))
    })
    .await
}

async fn report(db: &impl ConnectionTrait, as_of: NaiveDate) -> Result<AgedDebt, ApiError> {
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
