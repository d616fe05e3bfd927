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

mod places;
mod referral;

use chrono::{DateTime, Utc};
use medsec_platform::audit::{self, Actor};
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use medsec_platform::{ApiError, PreconditionKind};
use sea_orm::sea_query::{Expr, ExprTrait as _};
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait as _, PaginatorTrait as _, QueryFilter as _,
};
use uuid::Uuid;

pub use crate::domain::appointment::Booking;
pub use places::{release_hold, release_holds_for};

use self::places::{ensure_no_overlap, free_place, lock_patient, take_place};
use self::referral::{book_referral, check_fit, return_referral};
use super::entities::{appointment, referral as referral_row};
use super::events::{appointment_event, facts, funding_of, raise, slot_freed};
use super::{IDEMPOTENCY_KEYS, get_row, insert};
use crate::domain::appointment::Action;
use crate::domain::{AppointmentStatus, CancelledBy, london};
use medsec_platform::events::{Event, pb};
use pb::envelope::Data;

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<appointment::Model, ApiError> {
    get_row::<appointment::Entity>(db, "appointment", id).await
}

/// Reads an appointment, auditing the read.
pub async fn read(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<appointment::Model, ApiError> {
    audit::read_one(db, actor, async |txn| get(txn, id).await).await
}

/// Books a place, idempotently on `key`.
pub async fn book(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    booking: Booking,
    actor: &Actor,
) -> Result<appointment::Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "BookAppointment", key, async |txn, claimed| {
            if let Claimed::New(id) = claimed {
                book_in(txn, id, booking).await?;
            }
            audit::recorded(txn, actor, get(txn, claimed.id()).await?).await
        })
        .await
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
    let funding = funding_of(txn, &row).await?;
    let booked = Event::new(
        format!("appointments/{id}"),
        Data::AppointmentBooked(pb::AppointmentBooked {
            appointment: Some(facts(&row, &slot, &funding)),
        }),
    );
    insert(txn, row).await?;
    raise(txn, [booked]).await
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
    let changed = update.exec(txn).await?.rows_affected;
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
    actor: &Actor,
) -> Result<appointment::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| cancel_in(txn, id, by, reason).await).await
}

/// The one cancelling path (CancelAppointment, a patient's archiving), in
/// `txn`: the appointment, its place, its referral and their events.
pub async fn cancel_in(
    txn: &DatabaseTransaction,
    id: Uuid,
    by: CancelledBy,
    reason: &str,
) -> Result<appointment::Model, ApiError> {
    let appointment = advance(txn, id, Action::Cancel, Some((by, reason))).await?;
    free_place(txn, appointment.slot_id).await?;
    if let Some(referral_id) = appointment.referral_id {
        return_referral(txn, referral_id, None).await?;
    }
    let cancelled = appointment_event(txn, &appointment, |facts| {
        Data::AppointmentCancelled(pb::AppointmentCancelled {
            appointment: Some(facts),
            cancelled_by: by.as_str().to_owned(),
            reason: reason.to_owned(),
        })
    })
    .await?;
    let freed = slot_freed(txn, appointment.slot_id, id).await?;
    raise(txn, [cancelled, freed]).await?;
    Ok(appointment)
}

/// booked -> arrived, or booked/arrived -> fulfilled.
pub async fn mark(
    db: &DatabaseConnection,
    id: Uuid,
    action: Action,
    actor: &Actor,
) -> Result<appointment::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        let appointment = advance(txn, id, action, None).await?;
        let event = appointment_event(txn, &appointment, |facts| {
            let appointment = Some(facts);
            if action == Action::Arrive {
                Data::AppointmentArrived(pb::AppointmentArrived { appointment })
            } else {
                Data::AppointmentFulfilled(pb::AppointmentFulfilled { appointment })
            }
        })
        .await?;
        raise(txn, [event]).await?;
        Ok(appointment)
    })
    .await
}

/// booked -> noshow, once the appointment has started. The place stays
/// used. A referral goes back to waiting; a DNA at its first appointment
/// nullifies the clock, which restarts on the day of the missed
/// appointment.
pub async fn did_not_attend(
    db: &DatabaseConnection,
    id: Uuid,
    actor: &Actor,
) -> Result<appointment::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        let appointment = advance(txn, id, Action::DidNotAttend, None).await?;
        let start = DateTime::from_timestamp(appointment.start_at, 0).unwrap_or_default();
        // Nobody misses an appointment that has not started: a DNA recorded
        // early would restart the clock on a future date.
        if Utc::now() < start {
            return Err(ApiError::precondition(
                PreconditionKind::State,
                format!("appointments/{id}"),
                format!(
                    "appointments/{id} starts at {}: cannot mark did not attend before it starts",
                    start.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            ));
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
                .count(txn)
                .await?;
            let restart = (earlier == 0).then(|| london::local_date(start));
            return_referral(txn, referral_id, restart).await?;
        }
        let missed = appointment_event(txn, &appointment, |facts| {
            Data::AppointmentDidNotAttend(pb::AppointmentDidNotAttend {
                appointment: Some(facts),
            })
        })
        .await?;
        raise(txn, [missed]).await?;
        get(txn, id).await
    })
    .await
}

/// Moves a booked appointment to another slot in one transaction.
pub async fn reschedule(
    db: &DatabaseConnection,
    id: Uuid,
    new_slot_id: Uuid,
    actor: &Actor,
) -> Result<appointment::Model, ApiError> {
    audit::audited_one(db, actor, async |txn| {
        reschedule_in(txn, id, new_slot_id, None).await?;
        get(txn, id).await
    })
    .await
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
        return Err(ApiError::precondition(
            PreconditionKind::State,
            format!("appointments/{id}"),
            format!(
                "appointments/{id} was moved meanwhile (from slots/{expected} to slots/{}): not moved again",
                appointment.slot_id
            ),
        ));
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
        && let Some(referral) = referral_row::Entity::find_by_id(referral_id)
            .one(txn)
            .await?
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
        .await?;
    let moved = get(txn, id).await?;
    let funding = funding_of(txn, &moved).await?;
    let rescheduled = Event::new(
        format!("appointments/{id}"),
        Data::AppointmentRescheduled(pb::AppointmentRescheduled {
            appointment: Some(facts(&moved, &new_slot, &funding)),
            from_slot_id: appointment.slot_id.to_string(),
            from_start_time: DateTime::from_timestamp(appointment.start_at, 0)
                .map(medsec_platform::time::to_timestamp),
        }),
    );
    let freed = slot_freed(txn, appointment.slot_id, id).await?;
    raise(txn, [rescheduled, freed]).await
}

/// Filters of ListAppointments.
#[derive(Debug, Default)]
pub struct AppointmentFilter {
    pub patient_id: Option<Uuid>,
    pub clinician_id: Option<Uuid>,
    pub referral_id: Option<Uuid>,
    pub status: Option<AppointmentStatus>,
}

/// A page of appointments in start order; every appointment served is
/// audited, with the filters' hash.
pub async fn list(
    db: &DatabaseConnection,
    filter: &AppointmentFilter,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<appointment::Model>, ApiError> {
    use appointment::Column;
    let query = appointment::Entity::find().filter(
        Condition::all()
            .add_option(filter.patient_id.map(|id| Column::PatientId.eq(id)))
            .add_option(filter.clinician_id.map(|id| Column::ClinicianId.eq(id)))
            .add_option(filter.referral_id.map(|id| Column::ReferralId.eq(id)))
            .add_option(filter.status.map(|s| Column::Status.eq(s.as_str()))),
    );
    audit::read(db, actor, async |txn| {
        let rows = page
            .by_then_id::<_, _, _, i64>(query, Column::StartAt, Column::Id)?
            .all(txn)
            .await?;
        let served = audit::served(page, &rows, "appointments");
        Ok((rows, served))
    })
    .await
}
