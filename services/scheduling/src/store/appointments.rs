//! Booking, moving and the life of appointments. The rules hold under
//! concurrency because the database orders the writers:
//!
//! - capacity: a guarded `UPDATE slots SET booked = booked + 1 WHERE id = ?
//!   AND booked < capacity` is the first write of a booking (0 rows: full),
//!   backed by a CHECK constraint;
//! - one patient, no overlapping appointments: each booking then writes the
//!   patient's lock row, so a patient's bookings run one at a time, and only
//!   then checks for an overlap;
//! - locks are taken in one order (appointment, slots by id, patient, referral)
//!   so concurrent moves cannot deadlock each other.

use chrono::{DateTime, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait as _, IntoActiveModel as _, PaginatorTrait as _,
    QueryFilter as _, QueryOrder as _, QuerySelect as _, TransactionTrait as _,
};
use serde::Deserialize;
use uuid::Uuid;

use super::diary::{active_hold, not_held};
use super::entities::{appointment, patient_lock, referral, slot};
use super::{RequestKey, after_start, claim, db_error};
use crate::domain::appointment::{Action, HOLDING};
use crate::domain::{AppointmentStatus, CancelledBy, ReferralStatus, london};

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<appointment::Model, ApiError> {
    appointment::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("appointment", id.to_string()))
}

/// A validated booking.
#[derive(Debug, Clone)]
pub struct Booking {
    pub slot_id: Uuid,
    pub patient_id: Uuid,
    pub referral_id: Option<Uuid>,
    pub reason: String,
}

pub async fn book(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    booking: Booking,
) -> Result<appointment::Model, ApiError> {
    let id = Uuid::now_v7();
    let txn = db.begin().await?;
    if let Some(created) = claim(&txn, "BookAppointment", key, id).await? {
        txn.rollback().await?;
        return get(db, created.id()).await;
    }
    book_in(&txn, id, booking).await?;
    txn.commit().await.map_err(db_error)?;
    get(db, id).await
}

/// The one booking path (BookAppointment, CommitProposal, BookBestSlot,
/// RebookDisplaced): takes the place with the guarded write, serialises the
/// patient, checks overlaps and the referral, and inserts appointment `id`,
/// all in `txn` (a transaction or a savepoint).
pub async fn book_in(
    txn: &DatabaseTransaction,
    id: Uuid,
    booking: Booking,
) -> Result<(), ApiError> {
    let slot = take_place(txn, booking.slot_id, "book", booking.referral_id).await?;
    lock_patient(txn, booking.patient_id).await?;
    ensure_no_overlap(txn, booking.patient_id, &slot, None).await?;
    if let Some(referral_id) = booking.referral_id {
        book_referral(txn, referral_id, booking.patient_id, &slot).await?;
    }
    let now = Utc::now();
    let row = appointment::Model {
        id,
        slot_id: slot.id,
        patient_id: booking.patient_id,
        referral_id: booking.referral_id,
        reason: booking.reason,
        status: AppointmentStatus::Booked.as_str().to_owned(),
        clinician_id: slot.clinician_id,
        start_at: slot.start_at,
        end_at: slot.end_at,
        cancelled_by: None,
        cancellation_reason: None,
        create_time: now,
        update_time: now,
        revision: 1,
    };
    appointment::Entity::insert(row.into_active_model().reset_all())
        .exec_without_returning(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Takes one place in a slot (the guarded write), or says why it cannot. A
/// slot under a tentative hold only admits the referral it is held for,
/// whose booking ends the hold.
async fn take_place(
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
        .await
        .map_err(db_error)?
        .rows_affected;
    let slot = super::diary::get_slot(txn, slot_id).await?;
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
    slot::Entity::update_many()
        .col_expr(
            slot::Column::HeldForReferral,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(slot::Column::HeldUntil, Expr::value(Option::<i64>::None))
        .filter(slot::Column::HeldForReferral.eq(referral_id))
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Ends a slot's tentative hold.
pub async fn release_hold(txn: &impl ConnectionTrait, slot_id: Uuid) -> Result<(), ApiError> {
    slot::Entity::update_many()
        .col_expr(
            slot::Column::HeldForReferral,
            Expr::value(Option::<Uuid>::None),
        )
        .col_expr(slot::Column::HeldUntil, Expr::value(Option::<i64>::None))
        .filter(slot::Column::Id.eq(slot_id))
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn free_place(txn: &DatabaseTransaction, slot_id: Uuid) -> Result<(), ApiError> {
    slot::Entity::update_many()
        .col_expr(slot::Column::Booked, Expr::col(slot::Column::Booked).sub(1))
        .filter(slot::Column::Id.eq(slot_id))
        .filter(slot::Column::Booked.gt(0))
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Writes the patient's lock row, creating it on first use; the write holds
/// until commit, so the patient's bookings are checked one at a time.
async fn lock_patient(txn: &DatabaseTransaction, patient_id: Uuid) -> Result<(), ApiError> {
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
    .await
    .map_err(db_error)?;
    patient_lock::Entity::update_many()
        .col_expr(
            patient_lock::Column::Changes,
            Expr::col(patient_lock::Column::Changes).add(1),
        )
        .filter(patient_lock::Column::PatientId.eq(patient_id))
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn ensure_no_overlap(
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
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "patient {patient_id} already holds appointment {} at an overlapping time",
                other.id
            ),
            kind: medsec_platform::PreconditionKind::Overlap,
            subject: format!("appointments/{}", other.id),
        });
    }
    Ok(())
}

/// Marks a waiting referral booked, checking it fits the slot.
async fn book_referral(
    txn: &DatabaseTransaction,
    referral_id: Uuid,
    patient_id: Uuid,
    slot: &slot::Model,
) -> Result<(), ApiError> {
    let changed = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Booked.as_str()),
        )
        .col_expr(referral::Column::UpdateTime, Expr::value(Utc::now()))
        .col_expr(
            referral::Column::Revision,
            Expr::col(referral::Column::Revision).add(1),
        )
        .filter(referral::Column::Id.eq(referral_id))
        .filter(referral::Column::Status.eq(ReferralStatus::Waiting.as_str()))
        .exec(txn)
        .await
        .map_err(db_error)?
        .rows_affected;
    let referral = referral::Entity::find_by_id(referral_id)
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("referral", referral_id.to_string()))?;
    if changed == 0 {
        return Err(ApiError::wrong_state(
            format!("referrals/{referral_id}"),
            &referral.status,
            "book",
        ));
    }
    // Booked here, the referral needs no slot kept for it elsewhere.
    release_holds_for(txn, referral_id).await?;
    if referral.patient_id != patient_id {
        return Err(ApiError::invalid(
            "referral_id",
            "is a referral of another patient",
        ));
    }
    check_fit(&referral, slot, "referral_id")
}

/// One stored unavailable period, as `referrals.unavailable` holds it.
#[derive(Debug, Deserialize)]
struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

/// Whether a slot fits a referral as the allocation model requires (same
/// specialty and kind, not before the clock start or the earliest date, not
/// in an unavailable period, the required clinician's): checked whenever a
/// referral is booked or moved, so a booking never breaks a rule a proposal
/// would have kept. A mismatch the referral can never fit is
/// INVALID_ARGUMENT on `field`; one its current details rule out is
/// FAILED_PRECONDITION.
fn check_fit(referral: &referral::Model, slot: &slot::Model, field: &str) -> Result<(), ApiError> {
    let (r, s) = (referral.id, slot.id);
    if referral.specialty != slot.specialty {
        return Err(ApiError::invalid(
            field,
            format!(
                "slots/{s} is {} but referrals/{r} is for {}",
                slot.specialty, referral.specialty
            ),
        ));
    }
    if referral.kind != slot.kind {
        return Err(ApiError::invalid(
            field,
            format!(
                "slots/{s} is a {} slot but referrals/{r} needs a {} one",
                slot.kind, referral.kind
            ),
        ));
    }
    let unfit = |why: String| ApiError::FailedPrecondition {
        message: format!(
            "slots/{s} on {} does not fit referrals/{r}: {why}",
            slot.date
        ),
        kind: medsec_platform::PreconditionKind::Fit,
        subject: format!("referrals/{r}"),
    };
    if slot.date < referral.clock_start {
        return Err(unfit(format!(
            "it is before the clock start {}",
            referral.clock_start
        )));
    }
    if let Some(earliest) = referral.earliest
        && slot.date < earliest
    {
        return Err(unfit(format!("it is before the earliest date {earliest}")));
    }
    let periods: Vec<Period> = serde_json::from_str(&referral.unavailable).unwrap_or_default();
    if let Some(period) = periods
        .iter()
        .find(|p| p.from <= slot.date && slot.date <= p.to)
    {
        return Err(unfit(format!(
            "the patient is unavailable from {} to {}",
            period.from, period.to
        )));
    }
    if let Some(required) = referral.required_clinician
        && required != slot.clinician_id
    {
        return Err(unfit(format!(
            "it requires clinician {required}, the slot is {}'s",
            slot.clinician_id
        )));
    }
    Ok(())
}

/// Moves a referral back to the waiting list; with `restart`, its RTT
/// clock starts again on that date.
async fn return_referral(
    txn: &DatabaseTransaction,
    referral_id: Uuid,
    restart: Option<chrono::NaiveDate>,
) -> Result<(), ApiError> {
    let mut update = referral::Entity::update_many()
        .col_expr(
            referral::Column::Status,
            Expr::value(ReferralStatus::Waiting.as_str()),
        )
        .col_expr(referral::Column::UpdateTime, Expr::value(Utc::now()))
        .col_expr(
            referral::Column::Revision,
            Expr::col(referral::Column::Revision).add(1),
        )
        .filter(referral::Column::Id.eq(referral_id))
        .filter(referral::Column::Status.eq(ReferralStatus::Booked.as_str()));
    if let Some(date) = restart {
        update = update.col_expr(referral::Column::ClockStart, Expr::value(date));
    }
    update.exec(txn).await.map_err(db_error)?;
    Ok(())
}

/// Locks a held appointment by moving it to the action's state (the guarded
/// write), or says which state forbids the action.
async fn advance(
    txn: &DatabaseTransaction,
    id: Uuid,
    action: Action,
    cancellation: Option<(CancelledBy, &str)>,
) -> Result<appointment::Model, ApiError> {
    let mut update = appointment::Entity::update_many()
        .col_expr(
            appointment::Column::Status,
            Expr::value(action.to_state().as_str()),
        )
        .col_expr(appointment::Column::UpdateTime, Expr::value(Utc::now()))
        .col_expr(
            appointment::Column::Revision,
            Expr::col(appointment::Column::Revision).add(1),
        )
        .filter(appointment::Column::Id.eq(id))
        .filter(
            appointment::Column::Status
                .is_in(action.from_states().iter().map(|state| state.as_str())),
        );
    if let Some((by, reason)) = cancellation {
        update = update
            .col_expr(appointment::Column::CancelledBy, Expr::value(by.as_str()))
            .col_expr(
                appointment::Column::CancellationReason,
                Expr::value(reason.to_owned()),
            );
    }
    let changed = update.exec(txn).await.map_err(db_error)?.rows_affected;
    let current = get(txn, id).await?;
    if changed == 0 {
        return Err(ApiError::wrong_state(
            format!("appointments/{id}"),
            &current.status,
            action.verb(),
        ));
    }
    Ok(current)
}

/// Cancels a booked appointment: frees its place, and a referral goes back
/// to waiting with its clock still running (a cancellation, by either side,
/// does not stop or restart an RTT clock).
pub async fn cancel(
    db: &DatabaseConnection,
    id: Uuid,
    by: CancelledBy,
    reason: &str,
) -> Result<appointment::Model, ApiError> {
    let txn = db.begin().await?;
    let appointment = advance(&txn, id, Action::Cancel, Some((by, reason))).await?;
    free_place(&txn, appointment.slot_id).await?;
    if let Some(referral_id) = appointment.referral_id {
        return_referral(&txn, referral_id, None).await?;
    }
    txn.commit().await.map_err(db_error)?;
    get(db, id).await
}

/// booked -> arrived, or booked/arrived -> fulfilled.
pub async fn mark(
    db: &DatabaseConnection,
    id: Uuid,
    action: Action,
) -> Result<appointment::Model, ApiError> {
    let txn = db.begin().await?;
    advance(&txn, id, action, None).await?;
    txn.commit().await.map_err(db_error)?;
    get(db, id).await
}

/// booked -> noshow, once the appointment has started. The place stays used. A referral goes back to waiting;
/// a DNA at its first appointment nullifies the clock, which restarts on the
/// day of the missed appointment.
pub async fn did_not_attend(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<appointment::Model, ApiError> {
    let txn = db.begin().await?;
    let appointment = advance(&txn, id, Action::DidNotAttend, None).await?;
    // Nobody misses an appointment that has not started: a DNA recorded
    // early would restart the clock on a future date.
    if Utc::now().timestamp() < appointment.start_at {
        txn.rollback().await?;
        let start = DateTime::from_timestamp(appointment.start_at, 0).unwrap_or_default();
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "appointments/{id} starts at {}: cannot mark did not attend before it starts",
                start.format("%Y-%m-%dT%H:%M:%SZ")
            ),
            kind: medsec_platform::PreconditionKind::State,
            subject: format!("appointments/{id}"),
        });
    }
    if let Some(referral_id) = appointment.referral_id {
        let earlier = appointment::Entity::find()
            .filter(appointment::Column::ReferralId.eq(referral_id))
            .filter(appointment::Column::Id.ne(id))
            .filter(appointment::Column::Status.is_in([
                AppointmentStatus::Arrived.as_str(),
                AppointmentStatus::Fulfilled.as_str(),
                AppointmentStatus::Noshow.as_str(),
            ]))
            .count(&txn)
            .await?;
        let restart = (earlier == 0).then(|| {
            let start = DateTime::from_timestamp(appointment.start_at, 0).unwrap_or_default();
            london::local_date(start)
        });
        return_referral(&txn, referral_id, restart).await?;
    }
    txn.commit().await.map_err(db_error)?;
    get(db, id).await
}

/// Moves a booked appointment to another slot in one transaction.
pub async fn reschedule(
    db: &DatabaseConnection,
    id: Uuid,
    new_slot_id: Uuid,
) -> Result<appointment::Model, ApiError> {
    let txn = db.begin().await?;
    reschedule_in(&txn, id, new_slot_id, None).await?;
    txn.commit().await.map_err(db_error)?;
    get(db, id).await
}

/// The one moving path (RescheduleAppointment, RebookDisplaced), in `txn`.
/// With `from_slot`, only an appointment still in that slot is moved (a
/// planned move is not applied to one moved meanwhile).
pub async fn reschedule_in(
    txn: &DatabaseTransaction,
    id: Uuid,
    new_slot_id: Uuid,
    from_slot: Option<Uuid>,
) -> Result<(), ApiError> {
    let appointment = advance(txn, id, Action::Reschedule, None).await?;
    if let Some(expected) = from_slot
        && appointment.slot_id != expected
    {
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "appointments/{id} was moved meanwhile (from slots/{expected} to slots/{}): not moved again",
                appointment.slot_id
            ),
            kind: medsec_platform::PreconditionKind::State,
            subject: format!("appointments/{id}"),
        });
    }
    if appointment.slot_id == new_slot_id {
        return Err(ApiError::invalid(
            "new_slot_id",
            "is the slot the appointment is already in",
        ));
    }
    let referral_id = appointment.referral_id;
    // Slots in id order, so two moves between the same slots cannot deadlock.
    let new_slot = if appointment.slot_id < new_slot_id {
        free_place(txn, appointment.slot_id).await?;
        take_place(txn, new_slot_id, "reschedule into it", referral_id).await?
    } else {
        let slot = take_place(txn, new_slot_id, "reschedule into it", referral_id).await?;
        free_place(txn, appointment.slot_id).await?;
        slot
    };
    lock_patient(txn, appointment.patient_id).await?;
    ensure_no_overlap(txn, appointment.patient_id, &new_slot, Some(id)).await?;
    if let Some(referral_id) = referral_id
        && let Some(referral) = referral::Entity::find_by_id(referral_id).one(txn).await?
    {
        check_fit(&referral, &new_slot, "new_slot_id")?;
    }
    appointment::Entity::update_many()
        .col_expr(appointment::Column::SlotId, Expr::value(new_slot.id))
        .col_expr(
            appointment::Column::ClinicianId,
            Expr::value(new_slot.clinician_id),
        )
        .col_expr(appointment::Column::StartAt, Expr::value(new_slot.start_at))
        .col_expr(appointment::Column::EndAt, Expr::value(new_slot.end_at))
        .filter(appointment::Column::Id.eq(id))
        .exec(txn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Filters of ListAppointments.
#[derive(Debug, Default)]
pub struct AppointmentFilter {
    pub patient_id: Option<Uuid>,
    pub clinician_id: Option<Uuid>,
    pub referral_id: Option<Uuid>,
    pub status: Option<String>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AppointmentFilter,
    page: &PageRequest,
) -> Result<Vec<appointment::Model>, ApiError> {
    let mut condition = Condition::all();
    if let Some(id) = filter.patient_id {
        condition = condition.add(appointment::Column::PatientId.eq(id));
    }
    if let Some(id) = filter.clinician_id {
        condition = condition.add(appointment::Column::ClinicianId.eq(id));
    }
    if let Some(id) = filter.referral_id {
        condition = condition.add(appointment::Column::ReferralId.eq(id));
    }
    if let Some(status) = &filter.status {
        condition = condition.add(appointment::Column::Status.eq(status.as_str()));
    }
    if let Some(after) = after_start(page, appointment::Column::StartAt, appointment::Column::Id)? {
        condition = condition.add(after);
    }
    Ok(appointment::Entity::find()
        .filter(condition)
        .order_by_asc(appointment::Column::StartAt)
        .order_by_asc(appointment::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}
