//! RebookDisplaced's reads and writes: the displaced appointments with their
//! slots and referrals, and the planned moves applied through the booking
//! and rescheduling paths.

use std::collections::HashMap;

use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor, Audited as _};
use medsec_platform::db::{begin_write, savepoint};
use sea_orm::{
    ColumnTrait as _, ConnectionTrait, DatabaseConnection, EntityTrait as _, QueryFilter as _,
    QuerySelect as _,
};
use uuid::Uuid;

use super::refusal;
use crate::domain::appointment::Booking;
use crate::domain::displacement::{Appointment, Displacement, Move, PlannedMove, Referral};
use crate::domain::{AppointmentStatus, CancelledBy, ReferralStatus};
use crate::store::appointments::{book_in, reschedule_in};
use crate::store::entities::{absence, appointment, referral, slot};

/// The appointments of `displacement` as they stand: an absence's booked or
/// arrived appointments in start order (NOT_FOUND for an unknown absence),
/// or those named that exist; each with its slot's availability and its
/// referral. The read is audited, one event per appointment found.
pub async fn find(
    db: &DatabaseConnection,
    displacement: &Displacement,
    actor: &Actor,
) -> Result<Vec<Appointment>, ApiError> {
    audit::read(db, actor, async |txn| find_in(txn, displacement).await).await
}

async fn find_in(
    db: &impl ConnectionTrait,
    displacement: &Displacement,
) -> Result<(Vec<Appointment>, Vec<Access>), ApiError> {
    let rows = match displacement {
        Displacement::Absence(id) => {
            let absence = absence::Entity::find_by_id(*id)
                .one(db)
                .await?
                .ok_or_else(|| ApiError::not_found("absence", id.to_string()))?;
            crate::store::absences::displaced(db, &absence).await?
        }
        Displacement::Appointments(ids) => {
            appointment::Entity::find()
                .filter(appointment::Column::Id.is_in(ids.iter().copied()))
                .all(db)
                .await?
        }
    };
    let unavailable: HashMap<Uuid, bool> = slot::Entity::find()
        .select_only()
        .columns([slot::Column::Id, slot::Column::Unavailable])
        .filter(slot::Column::Id.is_in(rows.iter().map(|a| a.slot_id)))
        .into_tuple::<(Uuid, bool)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let referrals: HashMap<Uuid, referral::Model> = referral::Entity::find()
        .filter(referral::Column::Id.is_in(rows.iter().filter_map(|a| a.referral_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.id, r))
        .collect();
    let accesses = rows.iter().map(|row| row.access()).collect();
    let found = rows
        .into_iter()
        .map(|row| displaced(row, &unavailable, &referrals))
        .collect::<Result<_, _>>()?;
    Ok((found, accesses))
}

fn displaced(
    row: appointment::Model,
    unavailable: &HashMap<Uuid, bool>,
    referrals: &HashMap<Uuid, referral::Model>,
) -> Result<Appointment, ApiError> {
    let stored = |what: &str, text: &str| {
        ApiError::internal(format!(
            "appointment {} has an unknown {what} {text:?}",
            row.id
        ))
    };
    let referral = match row.referral_id {
        None => None,
        Some(id) => {
            let referral = referrals
                .get(&id)
                .ok_or_else(|| ApiError::not_found("referral", id.to_string()))?;
            Some(Referral {
                id,
                status: ReferralStatus::from_stored(&referral.status)
                    .ok_or_else(|| stored("referral status", &referral.status))?,
                specialty: referral.specialty.clone(),
            })
        }
    };
    Ok(Appointment {
        id: row.id,
        patient_id: row.patient_id,
        slot_id: row.slot_id,
        status: AppointmentStatus::from_stored(&row.status)
            .ok_or_else(|| stored("status", &row.status))?,
        cancelled_by: row
            .cancelled_by
            .as_deref()
            .and_then(CancelledBy::from_stored),
        slot_unavailable: *unavailable
            .get(&row.slot_id)
            .ok_or_else(|| ApiError::not_found("slot", row.slot_id.to_string()))?,
        reason: row.reason,
        referral,
    })
}

/// Applies moves in one transaction, each in a savepoint: a booked
/// appointment still booked in the slot it was displaced from is moved
/// (RescheduleAppointment's path), a cancelled one's referral is booked anew
/// (BookAppointment's path). Each result, in the order of `moves`, is the
/// appointment now holding the referral, or why the move failed. Every
/// appointment moved or booked is audited in the transaction.
pub async fn apply_moves(
    db: &DatabaseConnection,
    moves: &[PlannedMove],
    actor: &Actor,
) -> Result<Vec<Result<Uuid, String>>, ApiError> {
    let mut accesses = Vec::new();
    let mut ordered: Vec<(usize, &PlannedMove)> = moves.iter().enumerate().collect();
    // Target slots in id order, as every booking path orders its slot locks.
    ordered.sort_by_key(|(_, planned)| planned.to_slot);
    let mut results = vec![Err(String::new()); moves.len()];
    let txn = begin_write(db).await?;
    for (i, planned) in ordered {
        let attempt = savepoint(&txn).await?;
        let from = &planned.from;
        let outcome = match from.how_to_move() {
            Move::Reschedule { from_slot } => {
                reschedule_in(&attempt, from.id, planned.to_slot, Some(from_slot))
                    .await
                    .map(|()| from.id)
            }
            Move::BookAnew => {
                let id = Uuid::now_v7();
                let booking = Booking {
                    slot_id: planned.to_slot,
                    patient_id: from.patient_id,
                    referral_id: from.referral.as_ref().map(|r| r.id),
                    reason: from.reason.clone(),
                };
                book_in(&attempt, id, booking).await.map(|()| id)
            }
        };
        results[i] = match outcome {
            Ok(id) => {
                attempt.commit().await?;
                accesses.push(Access::patient(
                    format!("appointments/{id}"),
                    from.patient_id,
                ));
                Ok(id)
            }
            Err(error) => {
                attempt.rollback().await?;
                Err(refusal(&error).ok_or(error)?)
            }
        };
    }
    audit::record(&txn, actor, accesses).await?;
    txn.commit().await?;
    Ok(results)
}
