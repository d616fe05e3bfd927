//! Places in slots and the patient's turn: the guarded write that takes a
//! place (and the tentative holds it honours), freeing a place, the
//! patient's lock row, and the no-overlap check it guards.

use chrono::Utc;
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::sea_query::{Expr, ExprTrait as _, IntoCondition, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, ConnectionTrait, DatabaseTransaction,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _,
};
use uuid::Uuid;

use crate::domain::AppointmentStatus;
use crate::domain::appointment::HOLDING;
use crate::store::diary::{active_hold, get_slot, not_held};
use crate::store::entities::{appointment, patient_lock, slot};

/// Takes one place in a slot (the guarded write), or says why it cannot. A
/// slot under a tentative hold only admits the referral it is held for,
/// whose booking ends the hold.
pub(super) async fn take_place(
    txn: &DatabaseTransaction,
    slot_id: Uuid,
    action: &str,
    referral_id: Option<Uuid>,
) -> Result<slot::Model, ApiError> {
    let now = Utc::now().timestamp();
    let mut admitted = not_held(now);
    if let Some(referral_id) = referral_id {
        admitted = admitted.add(slot::Column::HeldForReferral.eq(referral_id));
    }
    let taken = slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).add(1))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Unavailable.eq(false))
        .filter(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
        .filter(admitted)
        .exec(txn)
        .await?
        .rows_affected;
    let slot = get_slot(txn, slot_id).await?;
    if taken == 0 {
        let state = if slot.unavailable {
            "busy-unavailable (the clinician is absent)".to_owned()
        } else if slot.booked >= slot.capacity {
            "full".to_owned()
        } else if let Some((holder, until)) = active_hold(&slot, now) {
            format!("busy-tentative (held for referral {holder} until {until} epoch seconds)")
        } else {
            "changed meanwhile".to_owned()
        };
        return Err(ApiError::wrong_state(
            format!("slots/{slot_id}"),
            &state,
            action,
        ));
    }
    if let Some(referral_id) = referral_id
        && slot.held_for_referral == Some(referral_id)
    {
        release_hold(txn, slot_id).await?;
    }
    Ok(slot)
}

/// Ends every tentative hold for a referral: once it is booked (anywhere)
/// or removed, no slot is kept for it any longer. Called in the transaction
/// that books or removes it.
pub async fn release_holds_for(
    txn: &impl ConnectionTrait,
    referral_id: Uuid,
) -> Result<(), ApiError> {
    clear_holds(txn, slot::Column::HeldForReferral.eq(referral_id)).await
}

/// Ends a slot's tentative hold.
pub async fn release_hold(txn: &impl ConnectionTrait, slot_id: Uuid) -> Result<(), ApiError> {
    clear_holds(txn, slot::Column::Id.eq(slot_id)).await
}

async fn clear_holds(
    txn: &impl ConnectionTrait,
    which: impl IntoCondition,
) -> Result<(), ApiError> {
    slot::Entity::update_many()
        .col_expr(
            slot::Column::HeldForReferral,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(slot::Column::HeldUntil, Expr::value(Option::<i64>::None))
        .filter(which)
        .exec(txn)
        .await?;
    Ok(())
}

pub(super) async fn free_place(txn: &DatabaseTransaction, slot_id: Uuid) -> Result<(), ApiError> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).sub(1))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Booked.gt(0))
        .exec(txn)
        .await?;
    Ok(())
}

/// Writes the patient's lock row, creating it on first use; the write holds
/// until commit, so the patient's bookings are checked one at a time.
pub(super) async fn lock_patient(
    txn: &DatabaseTransaction,
    patient_id: Uuid,
) -> Result<(), ApiError> {
    patient_lock::Entity::insert(
        patient_lock::Model {
            patient_id,
            changes: 0,
        }
        .into_active_model()
        .reset_all(),
    )
    .on_conflict(
        OnConflict::column(patient_lock::Column::PatientId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    patient_lock::Entity::update_many()
        .col_expr(
            patient_lock::Column::Changes,
            Expr::col(patient_lock::Column::Changes).add(1),
        )
        .filter(patient_lock::Column::PatientId.eq(patient_id))
        .exec(txn)
        .await?;
    Ok(())
}

/// Refuses a second appointment of the patient at an overlapping time
/// (`except` is the appointment being moved).
pub(super) async fn ensure_no_overlap(
    txn: &DatabaseTransaction,
    patient_id: Uuid,
    slot: &slot::Model,
    except: Option<Uuid>,
) -> Result<(), ApiError> {
    let mut query = appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(patient_id))
        .filter(appointment::Column::Status.is_in(HOLDING.map(AppointmentStatus::as_str)))
        .filter(appointment::Column::StartAt.lt(slot.end_at))
        .filter(appointment::Column::EndAt.gt(slot.start_at));
    if let Some(except) = except {
        query = query.filter(appointment::Column::Id.ne(except));
    }
    if let Some(other) = query.one(txn).await? {
        return Err(ApiError::precondition(
            PreconditionKind::Overlap,
            format!("appointments/{}", other.id),
            format!(
                "patient {patient_id} already holds appointment {} at an overlapping time",
                other.id
            ),
        ));
    }
    Ok(())
}
