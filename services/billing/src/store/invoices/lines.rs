//! Drafts and their lines: opening a draft that gathers a payer's unbilled
//! charges, adding and removing a charge's line, and the one writer of an
//! invoice's totals.

use chrono::Utc;
use medsec_platform::audit::Actor;
use medsec_platform::idempotency::Claimed;
use medsec_platform::{ApiError, PreconditionKind, db};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::{Column, InvoiceView, Invoices, claim_row, explain, get_row, shown};
use crate::domain::money::{LineAmounts, invoice_totals};
use crate::domain::{InvoiceStatus, Payer, PayerKind};
use crate::store::entities::{charge, invoice, invoice_line};
use crate::store::{IDEMPOTENCY_KEYS, RequestKey, charges};

/// Opens a draft for `patient_id` and `payer`, gathering their unbilled
/// charges.
pub async fn create(
    db: &DatabaseConnection,
    patient_id: Uuid,
    payer: &Payer,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreateInvoice", key, async |txn, claimed| {
            let id = match claimed {
                Claimed::Replay(id) => return shown(txn, id, actor).await,
                Claimed::New(id) => id,
            };
            insert_draft(txn, id, patient_id, payer, None).await?;
            let claimed = charge::Entity::update_many()
                .col_expr(charge::Column::InvoiceId, Expr::value(id))
                .filter(charge::Column::PatientId.eq(patient_id))
                .filter(charge::Column::PayerKey.eq(payer.key()))
                .filter(charge::Column::PayerKind.ne(PayerKind::Nhs.as_str()))
                .filter(charge::Column::InvoiceId.is_null())
                .exec(txn)
                .await?;
            if claimed.rows_affected > 0 {
                let charges = charge::Entity::find()
                    .filter(charge::Column::InvoiceId.eq(id))
                    .order_by_asc(charge::Column::Id)
                    .all(txn)
                    .await?;
                for charge in &charges {
                    insert_line(txn, id, Line::of_charge(charge)).await?;
                }
                rewrite_totals(txn, id).await?;
            }
            shown(txn, id, actor).await
        })
        .await
}

/// Inserts an empty draft to `payer`; `shortfall_of` names the insurer
/// invoice whose shortfall it bills.
pub(super) async fn insert_draft(
    txn: &DatabaseTransaction,
    id: Uuid,
    patient_id: Uuid,
    payer: &Payer,
    shortfall_of: Option<Uuid>,
) -> Result<(), ApiError> {
    let now = Utc::now();
    let (insurer_name, policy_number) = payer.insurer();
    invoice::ActiveModel {
        id: Set(id),
        number: Set(None),
        status: Set(InvoiceStatus::Draft.as_str().to_owned()),
        patient_id: Set(patient_id),
        payer_kind: Set(payer.kind().as_str().to_owned()),
        payer_key: Set(payer.key()),
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

/// What an invoice line says: a charge's, or a line of its own (a shortfall).
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) charge_id: Option<Uuid>,
    pub(super) code: String,
    pub(super) description: String,
    pub(super) quantity: i32,
    pub(super) unit_price_pence: i64,
    pub(super) vat_rate_basis_points: i32,
    pub(super) amounts: LineAmounts,
    pub(super) preauthorisation_code: Option<String>,
}

impl Line {
    /// The line billing `charge`, at the price the charge copied.
    fn of_charge(charge: &charge::Model) -> Self {
        Self {
            charge_id: Some(charge.id),
            code: charge.code.clone(),
            description: charge.description.clone(),
            quantity: charge.quantity,
            unit_price_pence: charge.unit_price_pence,
            vat_rate_basis_points: charge.vat_rate_basis_points,
            amounts: LineAmounts {
                net_pence: charge.net_pence,
                vat_pence: charge.vat_pence,
            },
            preauthorisation_code: charge.preauthorisation_code.clone(),
        }
    }
}

pub(super) async fn insert_line(
    txn: &DatabaseTransaction,
    invoice_id: Uuid,
    line: Line,
) -> Result<(), ApiError> {
    invoice_line::ActiveModel {
        id: Set(Uuid::now_v7()),
        invoice_id: Set(invoice_id),
        charge_id: Set(line.charge_id),
        code: Set(line.code),
        description: Set(line.description),
        quantity: Set(line.quantity),
        unit_price_pence: Set(line.unit_price_pence),
        vat_rate_basis_points: Set(line.vat_rate_basis_points),
        net_pence: Set(line.amounts.net_pence),
        vat_pence: Set(line.amounts.vat_pence),
        preauthorisation_code: Set(line.preauthorisation_code),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Sets an invoice's totals to the sums of its lines. The only writer of
/// totals, called in every transaction that changes lines.
pub(super) async fn rewrite_totals(txn: &DatabaseTransaction, id: Uuid) -> Result<(), ApiError> {
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

/// A change of a draft's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineChange {
    /// Adds an unbilled charge of the invoice's patient and payer.
    Add,
    /// Removes a charge's line; the charge is unbilled again.
    Remove,
}

/// Changes the lines of a draft at `revision` (when given) by `charge_id`,
/// and its totals with them.
pub async fn change_line(
    db: &DatabaseConnection,
    id: Uuid,
    charge_id: Uuid,
    revision: Option<i64>,
    change: LineChange,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    let draft = [InvoiceStatus::Draft];
    let action = match change {
        LineChange::Add => "add a line",
        LineChange::Remove => "remove a line",
    };
    db::write(db, async |txn| {
        if !claim_row(txn, id, &draft, revision, vec![], None).await? {
            return Err(explain(txn, id, &draft, action).await);
        }
        match change {
            LineChange::Add => add_charge(txn, id, charge_id).await?,
            LineChange::Remove => remove_charge(txn, id, charge_id).await?,
        }
        rewrite_totals(txn, id).await?;
        shown(txn, id, actor).await
    })
    .await
}

/// Bills an unbilled charge of the invoice's patient and payer on it.
async fn add_charge(txn: &DatabaseTransaction, id: Uuid, charge_id: Uuid) -> Result<(), ApiError> {
    let invoice = get_row(txn, id).await?;
    let taken = charge::Entity::update_many()
        .col_expr(charge::Column::InvoiceId, Expr::value(id))
        .filter(charge::Column::Id.eq(charge_id))
        .filter(charge::Column::InvoiceId.is_null())
        .filter(charge::Column::PatientId.eq(invoice.patient_id))
        .filter(charge::Column::PayerKey.eq(invoice.payer_key.as_str()))
        .exec(txn)
        .await?;
    let charge = charges::get(txn, charge_id).await?;
    if taken.rows_affected == 0 {
        return Err(match charge.invoice_id {
            Some(holder) => ApiError::precondition(
                PreconditionKind::State,
                format!("charges/{charge_id}"),
                format!("charge {charge_id} is already billed on invoice {holder}"),
            ),
            None => ApiError::invalid(
                "charge_id",
                "belongs to another patient or payer than the invoice",
            ),
        });
    }
    insert_line(txn, id, Line::of_charge(&charge)).await
}

/// Takes a charge's line off the invoice; the charge is unbilled again.
async fn remove_charge(
    txn: &DatabaseTransaction,
    id: Uuid,
    charge_id: Uuid,
) -> Result<(), ApiError> {
    let released = charge::Entity::update_many()
        .col_expr(charge::Column::InvoiceId, Expr::value(Option::<Uuid>::None))
        .filter(charge::Column::Id.eq(charge_id))
        .filter(charge::Column::InvoiceId.eq(id))
        .exec(txn)
        .await?;
    if released.rows_affected == 0 {
        return Err(ApiError::invalid("charge_id", "is not on this invoice"));
    }
    // A draft is not yet a document anyone has seen, so its line goes.
    invoice_line::Entity::delete_many()
        .filter(invoice_line::Column::InvoiceId.eq(id))
        .filter(invoice_line::Column::ChargeId.eq(charge_id))
        .exec(txn)
        .await?;
    Ok(())
}
