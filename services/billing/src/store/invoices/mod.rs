//! Invoices, their lines, payments and credit notes.
//!
//! Every change opens with a guarded UPDATE of the invoice row (state, etag,
//! and for money the balance), so it is the database that orders racing
//! callers and refuses a move the state does not allow; totals are rewritten
//! from the lines in the same transaction as any line change; numbers come
//! from `counters` inside the issuing transaction. This module reads
//! invoices and holds the guard every change opens with.

mod aged_debt;
mod credit_notes;
mod events;
mod issue;
mod lines;
mod payments;

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor, Audited};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QueryTrait as _,
};
use uuid::Uuid;

use super::entities::{credit_note, invoice, invoice_line, payment};
use crate::domain::{InvoiceStatus, PayerKind};

use invoice::{Column, Entity as Invoices, Model};

pub use aged_debt::aged_debt;
pub use credit_notes::{bill_shortfall, credit};
pub use issue::{issue, void};
pub use lines::{LineChange, change_line, create};
pub use payments::{NewPayment, record_payment};

const RESOURCE: &str = "invoice";

/// An invoice with everything shown on it.
#[derive(Debug, Clone)]
pub struct InvoiceView {
    pub invoice: Model,
    pub lines: Vec<invoice_line::Model>,
    pub payments: Vec<payment::Model>,
    pub credit_notes: Vec<credit_note::Model>,
}

/// Filters of ListInvoices; its `Debug` form, naming every value, is the
/// fingerprint of its page tokens.
#[derive(Debug, Default, Clone)]
pub struct InvoiceFilter {
    pub status: Option<InvoiceStatus>,
    pub patient_id: Option<Uuid>,
    pub payer_kind: Option<PayerKind>,
    pub insurer_name: Option<String>,
    /// Only issued invoices due before this date.
    pub overdue_on: Option<NaiveDate>,
}

fn subject(id: Uuid) -> String {
    format!("invoices/{id}")
}

fn status_of(row: &Model) -> Result<InvoiceStatus, ApiError> {
    InvoiceStatus::from_stored(&row.status)
        .ok_or_else(|| ApiError::internal(format!("invoice {} has a bad status", row.id)))
}

pub async fn get_row(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    crate::store::row::<Invoices>(db, RESOURCE, id).await
}

/// An invoice is its patient's.
impl Audited for InvoiceView {
    fn access(&self) -> Access {
        Access::patient(subject(self.invoice.id), self.invoice.patient_id)
    }
}

/// Reads one invoice as shown, auditing the read.
pub async fn read(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    audit::read_one(db, actor, async |txn| get(txn, id).await).await
}

/// The invoice `id` as shown, its access recorded by `actor`: the tail of
/// every transaction that changes an invoice.
async fn shown(
    txn: &DatabaseTransaction,
    id: Uuid,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    audit::recorded(txn, actor, get(txn, id).await?).await
}

/// One invoice with its lines, payments and credit notes.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<InvoiceView, ApiError> {
    let invoice = get_row(db, id).await?;
    let mut views = attach(db, vec![invoice]).await?;
    views
        .pop()
        .ok_or_else(|| ApiError::internal("invoice view went missing"))
}

/// Loads the lines, payments and credit notes of `invoices` in three queries.
async fn attach(
    db: &impl ConnectionTrait,
    invoices: Vec<Model>,
) -> Result<Vec<InvoiceView>, ApiError> {
    let ids: Vec<Uuid> = invoices.iter().map(|invoice| invoice.id).collect();
    let mut lines = by_invoice(
        invoice_line::Entity::find()
            .filter(invoice_line::Column::InvoiceId.is_in(ids.clone()))
            .order_by_asc(invoice_line::Column::Id)
            .all(db)
            .await?,
        |line| line.invoice_id,
    );
    let mut payments = by_invoice(
        payment::Entity::find()
            .filter(payment::Column::InvoiceId.is_in(ids.clone()))
            .order_by_asc(payment::Column::Id)
            .all(db)
            .await?,
        |payment| payment.invoice_id,
    );
    let mut credits = by_invoice(
        credit_note::Entity::find()
            .filter(credit_note::Column::InvoiceId.is_in(ids))
            .order_by_asc(credit_note::Column::Id)
            .all(db)
            .await?,
        |note| note.invoice_id,
    );
    Ok(invoices
        .into_iter()
        .map(|invoice| InvoiceView {
            lines: lines.remove(&invoice.id).unwrap_or_default(),
            payments: payments.remove(&invoice.id).unwrap_or_default(),
            credit_notes: credits.remove(&invoice.id).unwrap_or_default(),
            invoice,
        })
        .collect())
}

/// `rows` grouped by the invoice each belongs to, in their order.
fn by_invoice<T>(rows: Vec<T>, invoice_of: impl Fn(&T) -> Uuid) -> HashMap<Uuid, Vec<T>> {
    let mut grouped: HashMap<Uuid, Vec<T>> = HashMap::new();
    for row in rows {
        grouped.entry(invoice_of(&row)).or_default().push(row);
    }
    grouped
}

/// Bumps the revision of an invoice in one of `states` (and at `revision`
/// when given), returning whether it matched. The first write of most
/// changes: it takes the row (and SQLite's write lock) before anything is read.
async fn claim_row(
    txn: &DatabaseTransaction,
    id: Uuid,
    states: &[InvoiceStatus],
    revision: Option<i64>,
    extra: Vec<(Column, SimpleExpr)>,
    guard: Option<SimpleExpr>,
) -> Result<bool, ApiError> {
    let mut update = Invoices::update_many()
        .col_expr(Column::Revision, Expr::col(Column::Revision).add(1))
        .col_expr(Column::UpdateTime, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in(states.iter().map(|s| s.as_str())));
    for (column, value) in extra {
        update = update.col_expr(column, value);
    }
    if let Some(revision) = revision {
        update = update.filter(Column::Revision.eq(revision));
    }
    if let Some(guard) = guard {
        update = update.filter(guard);
    }
    Ok(update.exec(txn).await?.rows_affected == 1)
}

/// Why a guarded change matched nothing: no such invoice, a state that does
/// not allow `action`, or a stale etag.
async fn explain(
    db: &impl ConnectionTrait,
    id: Uuid,
    states: &[InvoiceStatus],
    action: &str,
) -> ApiError {
    match get_row(db, id).await {
        Err(error) => error,
        Ok(row) => match status_of(&row) {
            Err(error) => error,
            Ok(status) if !states.contains(&status) => {
                ApiError::wrong_state(subject(id), status.as_str(), action)
            }
            Ok(_) => ApiError::stale_etag(subject(id)),
        },
    }
}

/// One page of invoices by id (creation) order; every invoice served is
/// audited, with the filters' hash.
pub async fn list(
    db: &DatabaseConnection,
    filter: &InvoiceFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<InvoiceView>, ApiError> {
    let query = Invoices::find()
        .apply_if(filter.status, |q, status| {
            q.filter(Column::Status.eq(status.as_str()))
        })
        .apply_if(filter.patient_id, |q, id| {
            q.filter(Column::PatientId.eq(id))
        })
        .apply_if(filter.payer_kind, |q, kind| {
            q.filter(Column::PayerKind.eq(kind.as_str()))
        })
        .apply_if(filter.insurer_name.as_deref(), |q, name| {
            q.filter(Column::InsurerName.eq(name))
        })
        .apply_if(filter.overdue_on, |q, as_of| {
            q.filter(Column::Status.eq(InvoiceStatus::Issued.as_str()))
                .filter(Column::DueDate.lt(as_of))
        });
    audit::audited(db, actor, async |txn| {
        let rows = page.by_id(query, Column::Id)?.all(txn).await?;
        let views = attach(txn, rows).await?;
        let served = audit::served(page, &views, "invoices");
        Ok((views, served))
    })
    .await
}
