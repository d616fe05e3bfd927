//! Tentative holds for an offer: a freed slot held for one waiting referral
//! until a given instant.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Actor};
use medsec_platform::db::begin_write;
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait as _,
    QueryFilter as _,
};
use uuid::Uuid;

use crate::domain::diary::{SlotState, slot_state as state_of};
use crate::domain::offer::spelled;
use crate::domain::{AppointmentStatus, ReferralStatus};
use crate::store::diary::{active_hold, get_slot, not_held};
use crate::store::entities::{appointment, referral, slot};

/// A slot's state at `now` (epoch seconds).
pub fn slot_state(slot: &slot::Model, now: i64) -> SlotState {
    let held = active_hold(slot, now).is_some();
    state_of(slot.unavailable, slot.booked, slot.capacity, held)
}

/// Holds a slot for one referral until `until`, if it still has a free,
/// unheld place and the referral is still waiting (checked in the same
/// transaction, after the slot, as every booking path orders its locks: a
/// booking of the referral that commits first is seen, and one that
/// commits later ends the hold). Answers the slot held and the referral it
/// is held for, whose hold is audited in the transaction.
pub async fn hold(
    db: &DatabaseConnection,
    slot_id: Uuid,
    referral_id: Uuid,
    until: i64,
    actor: &Actor,
) -> Result<(slot::Model, referral::Model), ApiError> {
    let txn = begin_write(db).await?;
    let held = hold_in(&txn, slot_id, referral_id, until, actor).await?;
    txn.commit().await?;
    Ok(held)
}

/// As [`hold`], in `txn`; a refusal leaves `txn` to be rolled back.
pub async fn hold_in(
    txn: &DatabaseTransaction,
    slot_id: Uuid,
    referral_id: Uuid,
    until: i64,
    actor: &Actor,
) -> Result<(slot::Model, referral::Model), ApiError> {
    let now = Utc::now().timestamp();
    let held = slot::Entity::update_many()
        .col_expr(
            slot::Column::HeldForReferral,
            Expr::value(Some(referral_id)),
        )
        .col_expr(slot::Column::HeldUntil, Expr::value(Some(until)))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Unavailable.eq(false))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .filter(not_held(now))
        .exec(txn)
        .await?
        .rows_affected;
    if held == 0 {
        let slot = get_slot(txn, slot_id).await?;
        return Err(ApiError::wrong_state(
            format!("slots/{slot_id}"),
            spelled(slot_state(&slot, now)),
            "offer it",
        ));
    }
    // A write, so the referral row is locked (PostgreSQL) until commit.
    let waiting = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::col(referral::Column::Status),
        )
        .filter(referral::Column::Id.eq(referral_id))
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .exec(txn)
        .await?
        .rows_affected;
    if waiting == 0 {
        let status = referral::Entity::find_by_id(referral_id)
            .one(txn)
            .await?
            .map(|r| r.status)
            .unwrap_or_else(|| "missing".to_owned());
        return Err(ApiError::wrong_state(
            format!("referrals/{referral_id}"),
            &status,
            "hold a slot for it",
        ));
    }
    let referral = crate::store::referrals::get(txn, referral_id).await?;
    let referral = audit::recorded(txn, actor, referral).await?;
    let slot = get_slot(txn, slot_id).await?;
    Ok((slot, referral))
}

/// Referrals whose appointment in the slot was cancelled: the patients who
/// gave it up.
pub async fn cancelled_from(
    db: &impl ConnectionTrait,
    slot_id: Uuid,
) -> Result<Vec<Uuid>, ApiError> {
    Ok(appointment::Entity::find()
        .filter(appointment::Column::SlotId.eq(slot_id))
        .filter(appointment::Column::Status.eq(AppointmentStatus::Cancelled.as_str()))
        .all(db)
        .await?
        .into_iter()
        .filter_map(|a| a.referral_id)
        .collect())
}
