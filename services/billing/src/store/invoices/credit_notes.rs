//! Credit notes: numbered reductions of an issued invoice's balance, and the
//! shortfall an insurer leaves, credited to its invoice and billed to the
//! patient on a new draft.

use chrono::{Datelike as _, Utc};
use medsec_platform::ApiError;
use medsec_platform::audit::Actor;
use medsec_platform::idempotency::Claimed;
use medsec_platform::time::today_in_london;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, Set};
use uuid::Uuid;

use super::lines::{Line, insert_draft, insert_line, rewrite_totals};
use super::payments::take_off_balance;
use super::{Column, InvoiceView, claim_row, explain, get_row, shown};
use crate::domain::money::LineAmounts;
use crate::domain::status::document_number;
use crate::domain::{InvoiceStatus, Payer, PayerKind};
use crate::store::counters::next_number;
use crate::store::entities::credit_note;
use crate::store::{IDEMPOTENCY_KEYS, RequestKey};

/// Credits an issued invoice by a numbered credit note, once per `key`; a
/// credit that settles it raises `InvoicePaid`.
pub async fn credit(
    db: &DatabaseConnection,
    id: Uuid,
    amount: i64,
    reason: String,
    key: &RequestKey,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "IssueCreditNote", Some(key), async |txn, claimed| {
            let note_id = match claimed {
                Claimed::Replay(note_id) => {
                    let note = credit_note::Entity::find_by_id(note_id)
                        .one(txn)
                        .await?
                        .ok_or_else(|| ApiError::internal("replayed credit note is missing"))?;
                    return shown(txn, note.invoice_id, actor).await;
                }
                Claimed::New(note_id) => note_id,
            };
            take_off_balance(txn, id, amount, Column::CreditedPence, "credit it").await?;
            insert_credit_note(txn, note_id, id, amount, reason).await?;
            shown(txn, id, actor).await
        })
        .await
}

async fn insert_credit_note(
    txn: &DatabaseTransaction,
    note_id: Uuid,
    invoice_id: Uuid,
    amount: i64,
    reason: String,
) -> Result<(), ApiError> {
    // A credit note is dated the day it is made, so it takes that year's number.
    let year = today_in_london().year();
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

/// Moves an insurer invoice's balance to the patient: a credit note balances
/// the insurer invoice and a self-pay draft bills the shortfall. Returns the
/// new draft.
pub async fn bill_shortfall(
    db: &DatabaseConnection,
    id: Uuid,
    key: Option<&RequestKey>,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "BillShortfall", key, async |txn, claimed| {
            let new_id = match claimed {
                Claimed::Replay(new_id) => return shown(txn, new_id, actor).await,
                Claimed::New(new_id) => new_id,
            };
            // Take the row first, then read the balance it holds.
            let issued = [InvoiceStatus::Issued];
            if !claim_row(txn, id, &issued, None, vec![], None).await? {
                return Err(explain(txn, id, &issued, "bill a shortfall").await);
            }
            let insurer_invoice = get_row(txn, id).await?;
            if insurer_invoice.payer_kind != PayerKind::Insurer.as_str() {
                return Err(ApiError::invalid(
                    "invoice_id",
                    "is not an invoice to an insurer",
                ));
            }
            let shortfall = insurer_invoice.balance_pence();
            let number = insurer_invoice.number.clone().unwrap_or_default();
            take_off_balance(
                txn,
                id,
                shortfall,
                Column::CreditedPence,
                "bill a shortfall",
            )
            .await?;
            insert_credit_note(
                txn,
                Uuid::now_v7(),
                id,
                shortfall,
                format!("shortfall moved to the patient on invoice {new_id}"),
            )
            .await?;
            insert_draft(
                txn,
                new_id,
                insurer_invoice.patient_id,
                &Payer::SelfPay,
                Some(id),
            )
            .await?;
            // The shortfall is a share of a gross amount whose VAT the
            // insurer invoice already carried, so it is billed as a gross
            // line at 0%.
            let line = Line {
                charge_id: None,
                code: "SHORTFALL".to_owned(),
                description: format!("shortfall on insurer invoice {number}"),
                quantity: 1,
                unit_price_pence: shortfall,
                vat_rate_basis_points: 0,
                amounts: LineAmounts {
                    net_pence: shortfall,
                    vat_pence: 0,
                },
                preauthorisation_code: None,
            };
            insert_line(txn, new_id, line).await?;
            rewrite_totals(txn, new_id).await?;
            shown(txn, new_id, actor).await
        })
        .await
}
