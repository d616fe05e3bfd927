//! An invoice leaving draft: issued (numbered gap-free, dated, due on its
//! terms) or voided.

use chrono::Datelike as _;
use medsec_platform::audit::Actor;
use medsec_platform::{ApiError, PreconditionKind, db};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use super::{
    Column, InvoiceView, Invoices, claim_row, events, explain, get_row, shown, status_of, subject,
};
use crate::domain::status::document_number;
use crate::domain::{InvoiceStatus, PaymentTerms};
use crate::store::counters::next_number;
use crate::store::entities::{charge, invoice_line};

/// Issues a draft: the next number of the issue year, taken in this
/// transaction (a failure below returns it), and the due date; raises
/// `InvoiceIssued`.
pub async fn issue(
    db: &DatabaseConnection,
    id: Uuid,
    revision: Option<i64>,
    issue_date: chrono::NaiveDate,
    terms: PaymentTerms,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    db::write(db, async |txn| {
        let draft = [InvoiceStatus::Draft];
        let issued = vec![(Column::Status, Expr::value(InvoiceStatus::Issued.as_str()))];
        if !claim_row(txn, id, &draft, revision, issued, None).await? {
            return Err(explain(txn, id, &draft, "issue it").await);
        }
        let sequence = next_number(txn, "INV", issue_date.year()).await?;
        let invoice = get_row(txn, id).await?;
        let lines = invoice_line::Entity::find()
            .filter(invoice_line::Column::InvoiceId.eq(id))
            .count(txn)
            .await?;
        if lines == 0 {
            // Failing rolls the transaction back, and the number with it: no gap.
            return Err(ApiError::precondition(
                PreconditionKind::State,
                subject(id),
                format!("{} is a draft with no lines: cannot issue it", subject(id)),
            ));
        }
        Invoices::update_many()
            .col_expr(
                Column::Number,
                Expr::value(document_number("INV", issue_date.year(), sequence)),
            )
            .col_expr(Column::IssueDate, Expr::value(issue_date))
            .col_expr(Column::DueDate, Expr::value(terms.due_date(issue_date)))
            .col_expr(
                Column::Status,
                Expr::value(InvoiceStatus::on_issue(invoice.total_pence).as_str()),
            )
            .filter(Column::Id.eq(id))
            .exec(txn)
            .await?;
        events::raise(txn, events::issued(&get_row(txn, id).await?)).await?;
        shown(txn, id, actor).await
    })
    .await
}

/// Voids a draft, or an issued invoice nothing was paid or credited on; its
/// charges are unbilled again. Raises `InvoiceVoided`.
pub async fn void(
    db: &DatabaseConnection,
    id: Uuid,
    reason: String,
    revision: Option<i64>,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    let states = [InvoiceStatus::Draft, InvoiceStatus::Issued];
    db::write(db, async |txn| {
        let changes = vec![
            (
                Column::Status,
                Expr::value(InvoiceStatus::Cancelled.as_str()),
            ),
            (Column::VoidReason, Expr::value(reason)),
        ];
        // A shortfall invoice carries what an insurer's credit note moved to
        // the patient: voiding it would write that money off unrecorded.
        let untouched = Expr::col(Column::PaidPence)
            .eq(0)
            .and(Expr::col(Column::CreditedPence).eq(0))
            .and(Expr::col(Column::ShortfallOfInvoiceId).is_null());
        if !claim_row(txn, id, &states, revision, changes, Some(untouched)).await? {
            let row = get_row(txn, id).await?;
            let refusal = if row.shortfall_of_invoice_id.is_some() {
                "bills an insurer's shortfall: cannot void it; issue a credit note to write it off"
            } else if status_of(&row)? == InvoiceStatus::Issued
                && (row.paid_pence > 0 || row.credited_pence > 0)
            {
                "is issued with payments or credits: cannot void it; issue a credit note instead"
            } else {
                return Err(explain(txn, id, &states, "void it").await);
            };
            return Err(ApiError::precondition(
                PreconditionKind::State,
                subject(id),
                format!("{} {refusal}", subject(id)),
            ));
        }
        charge::Entity::update_many()
            .col_expr(charge::Column::InvoiceId, Expr::value(Option::<Uuid>::None))
            .filter(charge::Column::InvoiceId.eq(id))
            .exec(txn)
            .await?;
        events::raise(txn, events::voided(&get_row(txn, id).await?)).await?;
        shown(txn, id, actor).await
    })
    .await
}
