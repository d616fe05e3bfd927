//! Money taken off an invoice's balance: payments, and the one guarded
//! UPDATE that payments and credits share, which refuses an amount above the
//! balance and balances the invoice at zero.

use chrono::{NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::audit::Actor;
use medsec_platform::idempotency::Claimed;
use sea_orm::sea_query::{Expr, ExprTrait as _, SimpleExpr};
use sea_orm::{ActiveModelTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, Set};
use uuid::Uuid;

use super::{Column, InvoiceView, claim_row, events, get_row, shown, status_of, subject};
use crate::domain::{InvoiceStatus, PaymentMethod};
use crate::store::entities::payment;
use crate::store::{IDEMPOTENCY_KEYS, RequestKey};

/// A validated payment.
#[derive(Debug, Clone)]
pub struct NewPayment {
    pub amount_pence: i64,
    pub method: PaymentMethod,
    pub paid_on: NaiveDate,
}

/// Records a payment of an issued invoice, once per `key`; the payment that
/// settles it raises `InvoicePaid`.
pub async fn record_payment(
    db: &DatabaseConnection,
    id: Uuid,
    new: NewPayment,
    key: &RequestKey,
    actor: &Actor,
) -> Result<InvoiceView, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "RecordPayment", Some(key), async |txn, claimed| {
            let payment_id = match claimed {
                Claimed::Replay(payment_id) => {
                    let payment = payment::Entity::find_by_id(payment_id)
                        .one(txn)
                        .await?
                        .ok_or_else(|| ApiError::internal("replayed payment is missing"))?;
                    return shown(txn, payment.invoice_id, actor).await;
                }
                Claimed::New(payment_id) => payment_id,
            };
            take_off_balance(
                txn,
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
                method: Set(new.method.as_str().to_owned()),
                paid_on: Set(new.paid_on),
                create_time: Set(Utc::now()),
            }
            .insert(txn)
            .await?;
            shown(txn, id, actor).await
        })
        .await
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

/// Adds `amount` to `column` (paid or credited) of an issued invoice whose
/// balance covers it, balancing it at zero, which raises `InvoicePaid` (once:
/// a balanced invoice takes nothing more). Refuses an amount above the
/// balance, naming `amount_pence`.
pub(super) async fn take_off_balance(
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
        let row = get_row(txn, id).await?;
        if status_of(&row)? == InvoiceStatus::Balanced {
            events::raise(txn, events::paid(&row)).await?;
        }
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
