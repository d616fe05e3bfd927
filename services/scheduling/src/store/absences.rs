//! Absences of clinicians: recording one marks their slots in it
//! busy-unavailable and names the appointments it displaces (raising
//! `AbsenceRecorded`); listing shows each with what it displaces now.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::audit::{self, Access, Actor, Audited as _};
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection, EntityTrait as _,
    QueryFilter as _, QueryOrder as _, QueryTrait as _,
};
use uuid::Uuid;

use super::diary::lock_clinician;
use super::entities::{absence, appointment, slot};
use super::{IDEMPOTENCY_KEYS, get_row, insert};
use crate::domain::AppointmentStatus;
use crate::domain::appointment::HOLDING;
use crate::domain::diary::NewAbsence;

/// An absence with the booked appointments it displaces.
pub type WithDisplaced = (absence::Model, Vec<appointment::Model>);

/// Records an absence of a clinician, marks their slots in it
/// busy-unavailable, and returns it with the appointments it displaces.
pub async fn create_absence(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewAbsence,
    actor: &Actor,
) -> Result<WithDisplaced, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreateAbsence", key, async |txn, claimed| {
            if let Claimed::New(id) = claimed {
                let (start_at, end_at) = (new.start.timestamp(), new.end.timestamp());
                lock_clinician(txn, new.clinician_id).await?;
                slot::Entity::update_many()
                    .col_expr(slot::Column::Unavailable, Expr::value(true))
                    .filter(slot::Column::ClinicianId.eq(new.clinician_id))
                    .filter(slot::Column::StartAt.lt(end_at))
                    .filter(slot::Column::EndAt.gt(start_at))
                    .exec(txn)
                    .await?;
                let row = absence::Model {
                    id,
                    clinician_id: new.clinician_id,
                    start_at,
                    end_at,
                    reason: new.reason.as_str().to_owned(),
                    note: new.note,
                    create_time: Utc::now(),
                };
                insert(txn, row).await?;
            }
            let absence = get_row::<absence::Entity>(txn, "absence", claimed.id()).await?;
            let displaced = displaced(txn, &absence).await?;
            if matches!(claimed, Claimed::New(_)) {
                super::events::raise(txn, [absence_recorded(&absence, &displaced)]).await?;
            }
            audit::record(txn, actor, absence_accesses(&absence, &displaced)).await?;
            Ok((absence, displaced))
        })
        .await
}

/// The event of a new absence, naming the appointments it displaces.
fn absence_recorded(
    absence: &absence::Model,
    displaced: &[appointment::Model],
) -> medsec_platform::events::Event {
    use medsec_platform::events::{Event, pb};
    let at =
        |epoch| chrono::DateTime::from_timestamp(epoch, 0).map(medsec_platform::time::to_timestamp);
    Event::new(
        format!("absences/{}", absence.id),
        pb::envelope::Data::AbsenceRecorded(pb::AbsenceRecorded {
            absence_id: absence.id.to_string(),
            staff_id: absence.clinician_id.to_string(),
            start_time: at(absence.start_at),
            end_time: at(absence.end_at),
            displaced_appointment_ids: displaced.iter().map(|a| a.id.to_string()).collect(),
        }),
    )
}

/// Appointments still holding a place in the clinician's slots during the
/// absence.
pub async fn displaced(
    db: &impl ConnectionTrait,
    absence: &absence::Model,
) -> Result<Vec<appointment::Model>, ApiError> {
    Ok(appointment::Entity::find()
        .filter(appointment::Column::ClinicianId.eq(absence.clinician_id))
        .filter(appointment::Column::StartAt.lt(absence.end_at))
        .filter(appointment::Column::EndAt.gt(absence.start_at))
        .filter(appointment::Column::Status.is_in(HOLDING.map(AppointmentStatus::as_str)))
        .order_by_asc(appointment::Column::StartAt)
        .order_by_asc(appointment::Column::Id)
        .all(db)
        .await?)
}

/// One page of absences with the appointments each displaces now, found in
/// one query for the page; the read is audited, one event per displaced
/// appointment shown (the appointments are patients'), or one for the
/// search when it shows none.
pub async fn list_absences(
    db: &DatabaseConnection,
    clinician_id: Option<Uuid>,
    page: &PageRequest,
    actor: &Actor,
) -> Result<Vec<WithDisplaced>, ApiError> {
    let query = absence::Entity::find().apply_if(clinician_id, |query, id| {
        query.filter(absence::Column::ClinicianId.eq(id))
    });
    audit::read(db, actor, async |txn| {
        let absences = page.by_id(query, absence::Column::Id)?.all(txn).await?;
        let displacing = displaced_by_each(txn, &absences).await?;
        let shown = page.served(absences.len());
        let accesses: Vec<Access> = displacing[..shown]
            .iter()
            .flatten()
            .map(|a| a.access().filtered(page.filter_hash()))
            .collect();
        let accesses = if accesses.is_empty() {
            vec![Access::other("absences").filtered(page.filter_hash())]
        } else {
            accesses
        };
        let listed = absences.into_iter().zip(displacing).collect();
        Ok((listed, accesses))
    })
    .await
}

/// What each of `absences` displaces now ([`displaced`]), in one query.
async fn displaced_by_each(
    db: &impl ConnectionTrait,
    absences: &[absence::Model],
) -> Result<Vec<Vec<appointment::Model>>, ApiError> {
    if absences.is_empty() {
        return Ok(Vec::new());
    }
    let overlapping = absences.iter().fold(Condition::any(), |any, absence| {
        any.add(
            Condition::all()
                .add(appointment::Column::ClinicianId.eq(absence.clinician_id))
                .add(appointment::Column::StartAt.lt(absence.end_at))
                .add(appointment::Column::EndAt.gt(absence.start_at)),
        )
    });
    let appointments = appointment::Entity::find()
        .filter(overlapping)
        .filter(appointment::Column::Status.is_in(HOLDING.map(AppointmentStatus::as_str)))
        .order_by_asc(appointment::Column::StartAt)
        .order_by_asc(appointment::Column::Id)
        .all(db)
        .await?;
    Ok(absences
        .iter()
        .map(|absence| {
            appointments
                .iter()
                .filter(|a| {
                    a.clinician_id == absence.clinician_id
                        && a.start_at < absence.end_at
                        && a.end_at > absence.start_at
                })
                .cloned()
                .collect()
        })
        .collect())
}

/// What recording an absence touches: the appointments it displaces, or
/// the absence alone when it displaces none.
fn absence_accesses(absence: &absence::Model, displaced: &[appointment::Model]) -> Vec<Access> {
    if displaced.is_empty() {
        return vec![Access::other(format!("absences/{}", absence.id))];
    }
    displaced
        .iter()
        .map(|appointment| appointment.access())
        .collect()
}
