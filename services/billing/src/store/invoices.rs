//! Invoices, their lines, payments and credit notes.
//!
//! Every change opens with a guarded UPDATE of the invoice row (state, etag,
//! and for money the balance), so it is the database that orders racing
//! callers and refuses a move the state does not allow; totals are rewritten
//! from the lines in the same transaction as any line change; numbers come
//! from `counters` inside the issuing transaction.

use std::collections::HashMap;

use chrono::{Datelike as _, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::idempotency::Claim;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

use super::counters::next_number;
use super::entities::{charge, credit_note, invoice, invoice_line, payment};
use super::{IDEMPOTENCY_KEYS, RequestKey};
use crate::domain::money::{LineAmounts, invoice_totals};
use crate::domain::status::document_number;
use crate::domain::{InvoiceStatus, Payer};

use invoice::{Column, Entity as Invoices, Model};

const RESOURCE: &str = "invoice";

/// An invoice with everything shown on it.
#[derive(Debug, Clone)]
pub struct InvoiceView {
    pub invoice: Model,
    pub lines: Vec<invoice_line::Model>,
    pub payments: Vec<payment::Model>,
    pub credit_notes: Vec<credit_note::Model>,
}

/// Filters of ListInvoices, validated.
#[derive(Debug, Default, Clone)]
pub struct InvoiceFilter {
    pub status: Option<InvoiceStatus>,
    pub patient_id: Option<Uuid>,
    pub payer_kind: Option<&'static str>,
    pub insurer_name: Option<String>,
    /// Only issued invoices due before this date.
    pub overdue_on: Option<NaiveDate>,
}

impl InvoiceFilter {
    pub fn fingerprint(&self) -> String {
        format!(
            "status={:?};patient={:?};payer={:?};insurer={:?};overdue={:?}",
            self.status, self.patient_id, self.payer_kind, self.insurer_name, self.overdue_on
        )
    }
}

/// A validated payment.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub amount_pence: i64,
    pub method: &'static str,
    pub paid_on: NaiveDate,
}

/// Outstanding debt by days past due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgedDebt {
    pub not_due: i64,
    pub days_0_30: i64,
    pub days_31_60: i64,
    pub days_61_90: i64,
    pub days_over_90: i64,
    pub invoices: i32,
}

impl AgedDebt {
    pub fn total(&self) -> i64 {
        self.not_due + self.days_0_30 + self.days_31_60 + self.days_61_90 + self.days_over_90
    }
}

fn subject(id: Uuid) -> String {
    format!("invoices/{id}")
}

fn status_of(row: &Model) -> Result<InvoiceStatus, ApiError> {
    InvoiceStatus::from_stored(&row.status)
        .ok_or_else(|| ApiError::internal(format!("invoice {} has a bad status", row.id)))
}

pub async fn get_row(db: &impl ConnectionTrait, id: Uuid) -> Result<Model, ApiError> {
    Invoices::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found(RESOURCE, id.to_string()))
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
    let mut lines: HashMap<Uuid, Vec<_>> = HashMap::new();
    for line in invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.is_in(ids.clone()))
        .order_by_asc(invoice_line::Column::Id)
        .all(db)
        .await?
    {
        lines.entry(line.invoice_id).or_default().push(line);
    }
    let mut payments: HashMap<Uuid, Vec<_>> = HashMap::new();
    for payment in payment::Entity::find()
        .filter(payment::Column::InvoiceId.is_in(ids.clone()))
        .order_by_asc(payment::Column::Id)
        .all(db)
        .await?
    {
        payments
            .entry(payment.invoice_id)
            .or_default()
            .push(payment);
    }
    let mut credits: HashMap<Uuid, Vec<_>> = HashMap::new();
    for note in credit_note::Entity::find()
        .filter(credit_note::Column::InvoiceId.is_in(ids))
        .order_by_asc(credit_note::Column::Id)
        .all(db)
        .await?
    {
        credits.entry(note.invoice_id).or_default().push(note);
    }
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

/// Claims `key` in `scope` for a resource about to be made; on a replay,
/// returns the id the first call made.
async fn claim(
    txn: &DatabaseTransaction,
    scope: &str,
    key: Option<&RequestKey>,
    resource_id: Uuid,
) -> Result<Option<Uuid>, ApiError> {
    let Some(key) = key else {
        return Ok(None);
    };
    match IDEMPOTENCY_KEYS
        .claim(
            txn,
            scope,
            &key.request_id,
            &key.request,
            &resource_id.to_string(),
        )
        .await?
    {
        Claim::New => Ok(None),
        Claim::Replay { resource_id } => Uuid::parse_str(&resource_id)
            .map(Some)
            .map_err(ApiError::internal),
    }
}

/// Opens a draft for `patient_id` and `payer`, gathering their unbilled
/// charges.
pub async fn create(
    db: &DatabaseConnection,
    patient_id: Uuid,
    payer: &Payer,
    key: Option<RequestKey>,
) -> Result<InvoiceView, ApiError> {
    let id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(existing) = claim(&txn, "CreateInvoice", key.as_ref(), id).await? {
        txn.rollback().await?;
        return get(db, existing).await;
    }
    let (insurer_name, policy_number) = match payer {
        Payer::Insurer {
            name,
            policy_number,
            ..
        } => (Some(name.clone()), Some(policy_number.clone())),
        Payer::SelfPay | Payer::Nhs => (None, None),
    };
    insert_draft(
        &txn,
        id,
        patient_id,
        payer.kind(),
        payer.key(),
        insurer_name,
        policy_number,
        None,
    )
    .await?;
    let claimed = charge::Entity::update_many()
        .col_expr(charge::Column::InvoiceId, Expr::value(id))
        .filter(charge::Column::PatientId.eq(patient_id))
        .filter(charge::Column::PayerKey.eq(payer.key()))
        .filter(charge::Column::PayerKind.ne("nhs"))
        .filter(charge::Column::InvoiceId.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected > 0 {
        let charges = charge::Entity::find()
            .filter(charge::Column::InvoiceId.eq(id))
            .order_by_asc(charge::Column::Id)
            .all(&txn)
            .await?;
        for charge in &charges {
            insert_charge_line(&txn, id, charge).await?;
        }
        rewrite_totals(&txn, id).await?;
    }
    txn.commit().await?;
    get(db, id).await
}

#[allow(clippy::too_many_arguments)] // one row's columns, named at the call
async fn insert_draft(
    txn: &DatabaseTransaction,
    id: Uuid,
    patient_id: Uuid,
    payer_kind: &str,
    payer_key: String,
    insurer_name: Option<String>,
    policy_number: Option<String>,
    shortfall_of: Option<Uuid>,
) -> Result<(), ApiError> {
    let now = Utc::now();
    invoice::ActiveModel {
        id: Set(id),
        number: Set(None),
        status: Set(InvoiceStatus::Draft.as_str().to_owned()),
        patient_id: Set(patient_id),
        payer_kind: Set(payer_kind.to_owned()),
        payer_key: Set(payer_key),
        insurer_name: Set(insurer_name),
        policy_number: Set(policy_number),
        net_pence: Set(0),
        vat_pence: Set(0),
        total_pence: Set(0),
        paid_pence: Set(0),
        credited_pence: Set(0),
        issue_date: Set(None),
        due_date: Set(None),
        shortfall_of_invoice_id: Set(shortfall_of),
        void_reason: Set(None),
        create_time: Set(now),
        update_time: Set(now),
        revision: Set(1),
    }
    .insert(txn)
    .await?;
    Ok(())
}

async fn insert_charge_line(
    txn: &DatabaseTransaction,
    invoice_id: Uuid,
    charge: &charge::Model,
) -> Result<(), ApiError> {
    invoice_line::ActiveModel {
        id: Set(Uuid::now_v7()),
        invoice_id: Set(invoice_id),
        charge_id: Set(Some(charge.id)),
        code: Set(charge.code.clone()),
        description: Set(charge.description.clone()),
        quantity: Set(charge.quantity),
        unit_price_pence: Set(charge.unit_price_pence),
        vat_rate_basis_points: Set(charge.vat_rate_basis_points),
        net_pence: Set(charge.net_pence),
        vat_pence: Set(charge.vat_pence),
        preauthorisation_code: Set(charge.preauthorisation_code.clone()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Sets an invoice's totals to the sums of its lines. The only writer of
/// totals, called in every transaction that changes lines.
async fn rewrite_totals(txn: &DatabaseTransaction, id: Uuid) -> Result<(), ApiError> {
    let lines = invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.eq(id))
        .all(txn)
        .await?;
    let totals = invoice_totals(lines.iter().map(|line| LineAmounts {
        net_pence: line.net_pence,
        vat_pence: line.vat_pence,
    }));
    Invoices::update_many()
        .col_expr(Column::NetPence, Expr::value(totals.net_pence))
        .col_expr(Column::VatPence, Expr::value(totals.vat_pence))
        .col_expr(Column::TotalPence, Expr::value(totals.gross_pence()))
        .filter(Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
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

/// Adds an unbilled charge of the invoice's patient and payer to a draft.
pub async fn add_line(
    db: &DatabaseConnection,
    id: Uuid,
    charge_id: Uuid,
    revision: Option<i64>,
) -> Result<InvoiceView, ApiError> {
    let txn = db.begin().await?;
    if !claim_row(&txn, id, &[InvoiceStatus::Draft], revision, vec![], None).await? {
        return Err(explain(&txn, id, &[InvoiceStatus::Draft], "add a line").await);
    }
    let invoice = get_row(&txn, id).await?;
    let taken = charge::Entity::update_many()
        .col_expr(charge::Column::InvoiceId, Expr::value(id))
        .filter(charge::Column::Id.eq(charge_id))
        .filter(charge::Column::InvoiceId.is_null())
        .filter(charge::Column::PatientId.eq(invoice.patient_id))
        .filter(charge::Column::PayerKey.eq(invoice.payer_key.as_str()))
        .exec(&txn)
        .await?;
    if taken.rows_affected == 0 {
        let charge = super::charges::get(&txn, charge_id).await?;
        return Err(match charge.invoice_id {
            Some(holder) => ApiError::FailedPrecondition {
                message: format!("charge {charge_id} is already billed on invoice {holder}"),
                kind: medsec_platform::PreconditionKind::State,
                subject: format!("charges/{charge_id}"),
            },
            None => ApiError::invalid(
                "charge_id",
                "belongs to another patient or payer than the invoice",
            ),
        });
    }
    let charge = super::charges::get(&txn, charge_id).await?;
    insert_charge_line(&txn, id, &charge).await?;
    rewrite_totals(&txn, id).await?;
    txn.commit().await?;
    get(db, id).await
}

/// Removes a charge's line from a draft; the charge is unbilled again.
pub async fn remove_line(
    db: &DatabaseConnection,
    id: Uuid,
    charge_id: Uuid,
    revision: Option<i64>,
) -> Result<InvoiceView, ApiError> {
    let txn = db.begin().await?;
    if !claim_row(&txn, id, &[InvoiceStatus::Draft], revision, vec![], None).await? {
        return Err(explain(&txn, id, &[InvoiceStatus::Draft], "remove a line").await);
    }
    let released = charge::Entity::update_many()
        .col_expr(charge::Column::InvoiceId, Expr::value(Option::<Uuid>::None))
        .filter(charge::Column::Id.eq(charge_id))
        .filter(charge::Column::InvoiceId.eq(id))
        .exec(&txn)
        .await?;
    if released.rows_affected == 0 {
        return Err(ApiError::invalid("charge_id", "is not on this invoice"));
    }
    // A draft is not yet a document anyone has seen, so its line goes.
    invoice_line::Entity::delete_many()
        .filter(invoice_line::Column::InvoiceId.eq(id))
        .filter(invoice_line::Column::ChargeId.eq(charge_id))
        .exec(&txn)
        .await?;
    rewrite_totals(&txn, id).await?;
    txn.commit().await?;
    get(db, id).await
}

/// Issues a draft: the next number of the issue year, taken in this
/// transaction (a failure below returns it), and the due date.
pub async fn issue(
    db: &DatabaseConnection,
    id: Uuid,
    revision: Option<i64>,
    issue_date: NaiveDate,
    payment_terms_days: i32,
) -> Result<InvoiceView, ApiError> {
    let txn = db.begin().await?;
    let issued = vec![(Column::Status, Expr::value(InvoiceStatus::Issued.as_str()))];
    if !claim_row(&txn, id, &[InvoiceStatus::Draft], revision, issued, None).await? {
        return Err(explain(&txn, id, &[InvoiceStatus::Draft], "issue it").await);
    }
    let sequence = next_number(&txn, "INV", issue_date.year()).await?;
    let invoice = get_row(&txn, id).await?;
    let lines = invoice_line::Entity::find()
        .filter(invoice_line::Column::InvoiceId.eq(id))
        .count(&txn)
        .await?;
    if lines == 0 {
        // Dropping the transaction rolls the number back: no gap.
        txn.rollback().await?;
        return Err(ApiError::FailedPrecondition {
            message: format!("{} is a draft with no lines: cannot issue it", subject(id)),
            kind: medsec_platform::PreconditionKind::State,
            subject: subject(id),
        });
    }
    // An invoice for nothing is settled the moment it exists.
    let status = if invoice.total_pence == 0 {
        InvoiceStatus::Balanced
    } else {
        InvoiceStatus::Issued
    };
    let due_date = issue_date + chrono::Days::new(u64::from(payment_terms_days.unsigned_abs()));
    Invoices::update_many()
        .col_expr(
            Column::Number,
            Expr::value(document_number("INV", issue_date.year(), sequence)),
        )
        .col_expr(Column::IssueDate, Expr::value(issue_date))
        .col_expr(Column::DueDate, Expr::value(due_date))
        .col_expr(Column::Status, Expr::value(status.as_str()))
        .filter(Column::Id.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    get(db, id).await
}

/// The balance of the row being updated, as SQL.
fn balance_expr() -> SimpleExpr {
    Expr::col(Column::TotalPence)
        .sub(Expr::col(Column::PaidPence))
        .sub(Expr::col(Column::CreditedPence))
}

/// `status` after taking `amount` off the balance: balanced at zero.
fn status_after(amount: i64) -> SimpleExpr {
    Expr::case(
        balance_expr().eq(amount),
        Expr::value(InvoiceStatus::Balanced.as_str()),
    )
    .finally(Expr::value(InvoiceStatus::Issued.as_str()))
    .into()
}

/// Records a payment of an issued invoice, once per `key`.
pub async fn record_payment(
    db: &DatabaseConnection,
    id: Uuid,
    new: NewPayment,
    key: RequestKey,
) -> Result<InvoiceView, ApiError> {
    let payment_id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(existing) = claim(&txn, "RecordPayment", Some(&key), payment_id).await? {
        txn.rollback().await?;
        let payment = payment::Entity::find_by_id(existing)
            .one(db)
            .await?
            .ok_or_else(|| ApiError::internal("replayed payment is missing"))?;
        return get(db, payment.invoice_id).await;
    }
    take_off_balance(
        &txn,
        id,
        new.amount_pence,
        Column::PaidPence,
        "record a payment",
    )
    .await?;
    payment::ActiveModel {
        id: Set(payment_id),
        invoice_id: Set(id),
        amount_pence: Set(new.amount_pence),
        method: Set(new.method.to_owned()),
        paid_on: Set(new.paid_on),
        create_time: Set(Utc::now()),
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    get(db, id).await
}

/// Adds `amount` to `column` (paid or credited) of an issued invoice whose
/// balance covers it, balancing it at zero. Refuses an amount above the
/// balance, naming `amount_pence`.
async fn take_off_balance(
    txn: &DatabaseTransaction,
    id: Uuid,
    amount: i64,
    column: Column,
    action: &str,
) -> Result<(), ApiError> {
    let changes = vec![
        (Column::Status, status_after(amount)),
        (column, Expr::col(column).add(amount)),
    ];
    let covers = balance_expr().gte(amount);
    if claim_row(
        txn,
        id,
        &[InvoiceStatus::Issued],
        None,
        changes,
        Some(covers),
    )
    .await?
    {
        return Ok(());
    }
    let row = get_row(txn, id).await?;
    match status_of(&row)? {
        InvoiceStatus::Issued => Err(ApiError::invalid(
            "amount_pence",
            format!(
                "{amount} is more than the balance of {} pence",
                row.balance_pence()
            ),
        )),
        status => Err(ApiError::wrong_state(subject(id), status.as_str(), action)),
    }
}

/// Credits an issued invoice by a numbered credit note.
pub async fn credit(
    db: &DatabaseConnection,
    id: Uuid,
    amount: i64,
    reason: String,
    key: Option<RequestKey>,
) -> Result<InvoiceView, ApiError> {
    let note_id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(existing) = claim(&txn, "IssueCreditNote", key.as_ref(), note_id).await? {
        txn.rollback().await?;
        let note = credit_note::Entity::find_by_id(existing)
            .one(db)
            .await?
            .ok_or_else(|| ApiError::internal("replayed credit note is missing"))?;
        return get(db, note.invoice_id).await;
    }
    take_off_balance(&txn, id, amount, Column::CreditedPence, "credit it").await?;
    insert_credit_note(&txn, note_id, id, amount, reason).await?;
    txn.commit().await?;
    get(db, id).await
}

async fn insert_credit_note(
    txn: &DatabaseTransaction,
    note_id: Uuid,
    invoice_id: Uuid,
    amount: i64,
    reason: String,
) -> Result<(), ApiError> {
    // A credit note is dated the day it is made, so it takes that year's number.
    let year = medsec_platform::time::today_in_london().year();
    let sequence = next_number(txn, "CN", year).await?;
    credit_note::ActiveModel {
        id: Set(note_id),
        number: Set(document_number("CN", year, sequence)),
        invoice_id: Set(invoice_id),
        amount_pence: Set(amount),
        reason: Set(reason),
        create_time: Set(Utc::now()),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Voids a draft, or an issued invoice nothing was paid or credited on; its
/// charges are unbilled again.
pub async fn void(
    db: &DatabaseConnection,
    id: Uuid,
    reason: String,
    revision: Option<i64>,
) -> Result<InvoiceView, ApiError> {
    let states = [InvoiceStatus::Draft, InvoiceStatus::Issued];
    let txn = db.begin().await?;
    let changes = vec![
        (
            Column::Status,
            Expr::value(InvoiceStatus::Cancelled.as_str()),
        ),
        (Column::VoidReason, Expr::value(reason)),
    ];
    // A shortfall invoice carries what an insurer's credit note moved to the
    // patient: voiding it would write that money off unrecorded.
    let untouched = Expr::col(Column::PaidPence)
        .eq(0)
        .and(Expr::col(Column::CreditedPence).eq(0))
        .and(Expr::col(Column::ShortfallOfInvoiceId).is_null());
    if !claim_row(&txn, id, &states, revision, changes, Some(untouched)).await? {
        let row = get_row(&txn, id).await?;
        if row.shortfall_of_invoice_id.is_some() {
            return Err(ApiError::FailedPrecondition {
                message: format!(
                    "{} bills an insurer's shortfall: cannot void it; issue a credit note to write it off",
                    subject(id)
                ),
                kind: medsec_platform::PreconditionKind::State,
                subject: subject(id),
            });
        }
        if status_of(&row)? == InvoiceStatus::Issued
            && (row.paid_pence > 0 || row.credited_pence > 0)
        {
            return Err(ApiError::FailedPrecondition {
                message: format!(
                    "{} is issued with payments or credits: cannot void it; issue a credit note instead",
                    subject(id)
                ),
                kind: medsec_platform::PreconditionKind::State,
                subject: subject(id),
            });
        }
        return Err(explain(&txn, id, &states, "void it").await);
    }
    charge::Entity::update_many()
        .col_expr(charge::Column::InvoiceId, Expr::value(Option::<Uuid>::None))
        .filter(charge::Column::InvoiceId.eq(id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    get(db, id).await
}

/// Moves an insurer invoice's balance to the patient: a credit note balances
/// the insurer invoice and a self-pay draft bills the shortfall. Returns the
/// new draft.
pub async fn bill_shortfall(
    db: &DatabaseConnection,
    id: Uuid,
    key: Option<RequestKey>,
) -> Result<InvoiceView, ApiError> {
    let new_id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(existing) = claim(&txn, "BillShortfall", key.as_ref(), new_id).await? {
        txn.rollback().await?;
        return get(db, existing).await;
    }
    // Take the row first, then read the balance it holds.
    if !claim_row(&txn, id, &[InvoiceStatus::Issued], None, vec![], None).await? {
        return Err(explain(&txn, id, &[InvoiceStatus::Issued], "bill a shortfall").await);
    }
    let insurer_invoice = get_row(&txn, id).await?;
    if insurer_invoice.payer_kind != "insurer" {
        return Err(ApiError::invalid(
            "invoice_id",
            "is not an invoice to an insurer",
        ));
    }
    let shortfall = insurer_invoice.balance_pence();
    let number = insurer_invoice.number.clone().unwrap_or_default();
    take_off_balance(
        &txn,
        id,
        shortfall,
        Column::CreditedPence,
        "bill a shortfall",
    )
    .await?;
    insert_credit_note(
        &txn,
        Uuid::now_v7(),
        id,
        shortfall,
        format!("shortfall moved to the patient on invoice {new_id}"),
    )
    .await?;
    insert_draft(
        &txn,
        new_id,
        insurer_invoice.patient_id,
        Payer::SelfPay.kind(),
        Payer::SelfPay.key(),
        None,
        None,
        Some(id),
    )
    .await?;
    // The shortfall is a share of a gross amount whose VAT the insurer
    // invoice already carried, so it is billed as a gross line at 0%.
    invoice_line::ActiveModel {
        id: Set(Uuid::now_v7()),
        invoice_id: Set(new_id),
        charge_id: Set(None),
        code: Set("SHORTFALL".to_owned()),
        description: Set(format!("shortfall on insurer invoice {number}")),
        quantity: Set(1),
        unit_price_pence: Set(shortfall),
        vat_rate_basis_points: Set(0),
        net_pence: Set(shortfall),
        vat_pence: Set(0),
        preauthorisation_code: Set(None),
    }
    .insert(&txn)
    .await?;
    rewrite_totals(&txn, new_id).await?;
    txn.commit().await?;
    get(db, new_id).await
}

/// One page of invoices by id (creation) order.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &InvoiceFilter,
    page: &PageRequest,
) -> Result<Vec<InvoiceView>, ApiError> {
    let mut condition = Condition::all();
    if let Some(status) = filter.status {
        condition = condition.add(Column::Status.eq(status.as_str()));
    }
    if let Some(patient_id) = filter.patient_id {
        condition = condition.add(Column::PatientId.eq(patient_id));
    }
    if let Some(kind) = filter.payer_kind {
        condition = condition.add(Column::PayerKind.eq(kind));
    }
    if let Some(name) = &filter.insurer_name {
        condition = condition.add(Column::InsurerName.eq(name.as_str()));
    }
    if let Some(as_of) = filter.overdue_on {
        condition = condition
            .add(Column::Status.eq(InvoiceStatus::Issued.as_str()))
            .add(Column::DueDate.lt(as_of));
    }
    if let Some(after) = super::page_after(page)? {
        condition = condition.add(Column::Id.gt(after));
    }
    let rows = Invoices::find()
        .filter(condition)
        .order_by_asc(Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?;
    attach(db, rows).await
}

/// Outstanding balances of issued invoices issued by `as_of`, by days past due.
pub async fn aged_debt(db: &impl ConnectionTrait, as_of: NaiveDate) -> Result<AgedDebt, ApiError> {
    let rows = Invoices::find()
        .filter(Column::Status.eq(InvoiceStatus::Issued.as_str()))
        .filter(Column::IssueDate.lte(as_of))
        .all(db)
        .await?;
    let mut report = AgedDebt::default();
    for row in rows {
        let Some(due) = row.due_date else { continue };
        let balance = row.balance_pence();
        let days = (as_of - due).num_days();
        let bucket = match days {
            ..0 => &mut report.not_due,
            0..=30 => &mut report.days_0_30,
            31..=60 => &mut report.days_31_60,
            61..=90 => &mut report.days_61_90,
            _ => &mut report.days_over_90,
        };
        *bucket += balance;
        report.invoices += 1;
    }
    Ok(report)
}
