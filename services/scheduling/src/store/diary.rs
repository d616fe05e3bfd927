//! Session templates, slots (generated and ad hoc), absences and the diary
//! view. A clinician's diary changes under a lock on their staff row, so the
//! "no overlapping slots" rule holds under concurrency; the unique index on
//! (clinician, start) makes slot generation idempotent.

use std::collections::HashMap;

use chrono::{Duration, NaiveDate, Utc};
use medsec_platform::ApiError;
use medsec_platform::PreconditionKind;
use medsec_platform::audit::{self, Access, Actor, Audited as _};
use medsec_platform::db;
use medsec_platform::idempotency::{Claimed, RequestKey};
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QueryTrait as _,
};
use uuid::Uuid;

use super::entities::{absence, appointment, session_template, slot, staff};
use super::staff::{get_location, get_room, get_staff};
use super::{IDEMPOTENCY_KEYS, create_row, get_row, insert};
use crate::domain::diary::{self, NewSessionTemplate, NewSlot, Session, Spans};
use crate::domain::staff::{ClinicianMisfit, clinician_of};
use crate::domain::{AppointmentStatus, Kind, Role, london};

/// Checks, in the creating transaction, that `clinician_id` is a clinician
/// with `specialty`, that the location exists, and that the room (if any)
/// is at it; a misfit is named under `prefix`.
async fn check_references(
    txn: &impl ConnectionTrait,
    prefix: &str,
    clinician_id: Uuid,
    specialty: &str,
    location_id: Uuid,
    room_id: Option<Uuid>,
) -> Result<(), ApiError> {
    let clinician = get_staff(txn, clinician_id).await?;
    clinician_of(
        Role::from_stored(&clinician.role),
        &clinician.specialty_list(),
        specialty,
    )
    .map_err(|misfit| match misfit {
        ClinicianMisfit::NotAClinician => {
            ApiError::invalid(format!("{prefix}.clinician_id"), "is not a clinician")
        }
        ClinicianMisfit::OtherSpecialty => ApiError::invalid(
            format!("{prefix}.specialty"),
            "is not one of the clinician's specialties",
        ),
    })?;
    get_location(txn, location_id).await?;
    if let Some(room_id) = room_id
        && get_room(txn, room_id).await?.location_id != location_id
    {
        return Err(ApiError::invalid(
            format!("{prefix}.room_id"),
            "is not at the location",
        ));
    }
    Ok(())
}

/// Serialises every change to a clinician's diary (slots, absences) by
/// bumping their staff row first: two concurrent changes cannot both pass
/// the overlap check. NOT_FOUND when `id` is not a clinician.
pub(super) async fn lock_clinician(txn: &impl ConnectionTrait, id: Uuid) -> Result<(), ApiError> {
    let locked = staff::Entity::update_many()
        .col_expr(
            staff::Column::Revision,
            Expr::col(staff::Column::Revision).add(1),
        )
        .filter(staff::Column::Id.eq(id))
        .filter(staff::Column::Role.eq(Role::Clinician.as_str()))
        .exec(txn)
        .await?
        .rows_affected;
    if locked == 0 {
        return Err(ApiError::not_found("clinician", id.to_string()));
    }
    Ok(())
}

pub async fn create_template(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewSessionTemplate,
) -> Result<session_template::Model, ApiError> {
    let references = async |txn: &_| {
        check_references(
            txn,
            "session_template",
            new.clinician_id,
            &new.specialty,
            new.location_id,
            new.room_id,
        )
        .await
    };
    let scope = "CreateSessionTemplate";
    create_row::<session_template::Entity>(db, scope, key, "session template", references, |id| {
        session_template::Model {
            id,
            clinician_id: new.clinician_id,
            specialty: new.specialty.clone(),
            location_id: new.location_id,
            room_id: new.room_id,
            weekday: new.weekday,
            start_time: london::format_time(new.start_time),
            end_time: london::format_time(new.end_time),
            slot_minutes: new.slot_minutes,
            kind: new.kind.as_str().to_owned(),
            mode: new.mode.as_str().to_owned(),
            capacity: new.capacity,
            valid_from: new.valid_from,
            valid_to: new.valid_to,
            create_time: Utc::now(),
        }
    })
    .await
}

pub async fn list_templates(
    db: &impl ConnectionTrait,
    clinician_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Vec<session_template::Model>, ApiError> {
    let query = session_template::Entity::find().apply_if(clinician_id, |query, id| {
        query.filter(session_template::Column::ClinicianId.eq(id))
    });
    Ok(page
        .by_id(query, session_template::Column::Id)?
        .all(db)
        .await?)
}

/// What one GenerateSlots run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    pub created: u32,
    pub existing: u32,
    pub conflicts: u32,
}

/// Turns the templates valid in `from..=to` into slots, one transaction per
/// clinician. A slot already there (same clinician and start) is counted,
/// not made again; one overlapping another slot is skipped as a conflict.
pub async fn generate_slots(
    db: &DatabaseConnection,
    from: NaiveDate,
    to: NaiveDate,
    clinician_id: Option<Uuid>,
) -> Result<Generated, ApiError> {
    if let Some(id) = clinician_id {
        get_staff(db, id).await?;
    }
    let mut query = session_template::Entity::find()
        .filter(session_template::Column::ValidFrom.lte(to))
        .filter(
            Condition::any()
                .add(session_template::Column::ValidTo.is_null())
                .add(session_template::Column::ValidTo.gte(from)),
        );
    if let Some(clinician_id) = clinician_id {
        query = query.filter(session_template::Column::ClinicianId.eq(clinician_id));
    }
    let templates = query
        .order_by_asc(session_template::Column::ClinicianId)
        .order_by_asc(session_template::Column::Id)
        .all(db)
        .await?;

    let mut total = Generated::default();
    // Ordered by clinician: each run of templates is one clinician's.
    for mine in templates.chunk_by(|a, b| a.clinician_id == b.clinician_id) {
        let clinician = mine[0].clinician_id;
        let mine: Vec<_> = mine.iter().collect();
        let generated = db::write(db, async |txn| {
            generate_for(txn, clinician, &mine, from, to).await
        })
        .await?;
        total.created += generated.created;
        total.existing += generated.existing;
        total.conflicts += generated.conflicts;
    }
    Ok(total)
}

/// Generates one clinician's slots from `templates`, under their lock.
async fn generate_for(
    txn: &impl ConnectionTrait,
    clinician: Uuid,
    templates: &[&session_template::Model],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Generated, ApiError> {
    lock_clinician(txn, clinician).await?;
    // A day either side: a session's slots can fall on the neighbouring
    // UTC day.
    let window_start =
        london::start_of_day(from - Duration::days(1)).map_or(i64::MIN, |at| at.timestamp());
    let window_end =
        london::start_of_day(to + Duration::days(2)).map_or(i64::MAX, |at| at.timestamp());
    let mut taken: Spans = slot::Entity::find()
        .filter(slot::Column::ClinicianId.eq(clinician))
        .filter(slot::Column::EndAt.gt(window_start))
        .filter(slot::Column::StartAt.lt(window_end))
        .all(txn)
        .await?
        .into_iter()
        .map(|s| (s.start_at, s.end_at))
        .collect();
    let absences = absences_of(txn, clinician).await?;
    let now = Utc::now();
    let mut total = Generated::default();
    for template in templates {
        for (date, start, end) in session(template)?.slots(from, to) {
            let (s, e) = (start.timestamp(), end.timestamp());
            if taken.contains(s, e) {
                total.existing += 1;
                continue;
            }
            if taken.overlaps(s, e) {
                total.conflicts += 1;
                continue;
            }
            let row = slot::Model {
                id: Uuid::now_v7(),
                clinician_id: clinician,
                specialty: template.specialty.clone(),
                location_id: template.location_id,
                room_id: template.room_id,
                template_id: Some(template.id),
                date,
                start_at: s,
                end_at: e,
                kind: template.kind.clone(),
                mode: template.mode.clone(),
                capacity: template.capacity,
                booked: 0,
                unavailable: absences.overlaps(s, e),
                create_time: now,
                held_for_referral: None,
                held_until: None,
            };
            // The unique index is what makes a repeat run harmless, whatever
            // the checks above saw.
            let inserted = slot::Entity::insert(row.into_active_model().reset_all())
                .on_conflict(
                    OnConflict::columns([slot::Column::ClinicianId, slot::Column::StartAt])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(txn)
                .await?;
            if inserted == 1 {
                total.created += 1;
            } else {
                total.existing += 1;
            }
            taken.insert(s, e);
        }
    }
    Ok(total)
}

/// The weekly session a stored template describes.
fn session(template: &session_template::Model) -> Result<Session, ApiError> {
    let (Some(start), Some(end)) = (
        london::parse_time(&template.start_time),
        london::parse_time(&template.end_time),
    ) else {
        return Err(ApiError::internal(format!(
            "session template {} has bad times",
            template.id
        )));
    };
    Ok(Session {
        weekday: template.weekday,
        start,
        end,
        slot_minutes: template.slot_minutes,
        valid_from: template.valid_from,
        valid_to: template.valid_to,
    })
}

async fn absences_of(conn: &impl ConnectionTrait, clinician: Uuid) -> Result<Spans, ApiError> {
    Ok(absence::Entity::find()
        .filter(absence::Column::ClinicianId.eq(clinician))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.start_at, a.end_at))
        .collect())
}

pub async fn get_slot(db: &impl ConnectionTrait, id: Uuid) -> Result<slot::Model, ApiError> {
    get_row::<slot::Entity>(db, "slot", id).await
}

/// Adds one ad-hoc slot; FAILED_PRECONDITION when it overlaps another of the
/// clinician's slots.
pub async fn create_slot(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    new: NewSlot,
) -> Result<slot::Model, ApiError> {
    IDEMPOTENCY_KEYS
        .create(db, "CreateSlot", key, async |txn, claimed| {
            let id = match claimed {
                Claimed::Replay(id) => return get_slot(txn, id).await,
                Claimed::New(id) => id,
            };
            let (start_at, end_at) = (new.start.timestamp(), new.end.timestamp());
            check_references(
                txn,
                "slot",
                new.clinician_id,
                &new.specialty,
                new.location_id,
                new.room_id,
            )
            .await?;
            lock_clinician(txn, new.clinician_id).await?;
            let clash = slot::Entity::find()
                .filter(slot::Column::ClinicianId.eq(new.clinician_id))
                .filter(slot::Column::StartAt.lt(end_at))
                .filter(slot::Column::EndAt.gt(start_at))
                .one(txn)
                .await?;
            if let Some(clash) = clash {
                return Err(ApiError::precondition(
                    PreconditionKind::Overlap,
                    format!("slots/{}", clash.id),
                    format!(
                        "the clinician already has slot {} at an overlapping time",
                        clash.id
                    ),
                ));
            }
            let absences = absences_of(txn, new.clinician_id).await?;
            let row = slot::Model {
                id,
                clinician_id: new.clinician_id,
                date: new.date(),
                specialty: new.specialty,
                location_id: new.location_id,
                room_id: new.room_id,
                template_id: None,
                start_at,
                end_at,
                kind: new.kind.as_str().to_owned(),
                mode: new.mode.as_str().to_owned(),
                capacity: new.capacity,
                booked: 0,
                unavailable: absences.overlaps(start_at, end_at),
                create_time: Utc::now(),
                held_for_referral: None,
                held_until: None,
            };
            insert(txn, row).await?;
            get_slot(txn, id).await
        })
        .await
}

/// Filters of ListSlots.
#[derive(Debug, Default)]
pub struct SlotFilter {
    pub clinician_id: Option<Uuid>,
    pub specialty: Option<String>,
    pub kind: Option<Kind>,
    pub start_after: Option<i64>,
    pub start_before: Option<i64>,
    pub free_only: bool,
}

pub async fn list_slots(
    db: &impl ConnectionTrait,
    filter: &SlotFilter,
    page: &PageRequest,
) -> Result<Vec<slot::Model>, ApiError> {
    use slot::Column;
    let free = Condition::all()
        .add(Column::Unavailable.eq(false))
        .add(Expr::col(Column::Booked).lt(Expr::col(Column::Capacity)))
        .add(not_held(Utc::now().timestamp()));
    let condition = Condition::all()
        .add_option(filter.clinician_id.map(|id| Column::ClinicianId.eq(id)))
        .add_option(filter.specialty.as_deref().map(|s| Column::Specialty.eq(s)))
        .add_option(filter.kind.map(|kind| Column::Kind.eq(kind.as_str())))
        .add_option(filter.start_after.map(|at| Column::StartAt.gte(at)))
        .add_option(filter.start_before.map(|at| Column::StartAt.lt(at)))
        .add_option(filter.free_only.then_some(free));
    let query = slot::Entity::find().filter(condition);
    Ok(page
        .by_then_id::<_, _, _, i64>(query, slot::Column::StartAt, slot::Column::Id)?
        .all(db)
        .await?)
}

/// A staff member's slots on the civil dates `from..=to`, in start order,
/// each with its appointments other than cancelled ones; the read is
/// audited, one event per appointment shown (or one for the diary when it
/// shows none).
pub async fn read_diary(
    db: &DatabaseConnection,
    clinician_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
    actor: &Actor,
) -> Result<Vec<(slot::Model, Vec<appointment::Model>)>, ApiError> {
    audit::read(db, actor, async |txn| {
        let entries = diary(txn, clinician_id, from, to).await?;
        let mut accesses: Vec<Access> = entries
            .iter()
            .flat_map(|(_, appointments)| appointments.iter().map(|a| a.access()))
            .collect();
        if accesses.is_empty() {
            accesses.push(Access::other(format!("diaries/{clinician_id}/{from}")));
        }
        Ok((entries, accesses))
    })
    .await
}

/// As [`read_diary`], unaudited.
async fn diary(
    db: &impl ConnectionTrait,
    clinician_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(slot::Model, Vec<appointment::Model>)>, ApiError> {
    get_staff(db, clinician_id).await?;
    let slots = slot::Entity::find()
        .filter(slot::Column::ClinicianId.eq(clinician_id))
        .filter(slot::Column::Date.gte(from))
        .filter(slot::Column::Date.lte(to))
        .order_by_asc(slot::Column::StartAt)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = slots.iter().map(|s| s.id).collect();
    let appointments = if ids.is_empty() {
        Vec::new()
    } else {
        appointment::Entity::find()
            .filter(appointment::Column::SlotId.is_in(ids))
            .filter(appointment::Column::Status.ne(AppointmentStatus::Cancelled.as_str()))
            .order_by_asc(appointment::Column::Id)
            .all(db)
            .await?
    };
    let mut booked: HashMap<Uuid, Vec<appointment::Model>> = HashMap::new();
    for appointment in appointments {
        booked
            .entry(appointment.slot_id)
            .or_default()
            .push(appointment);
    }
    Ok(slots
        .into_iter()
        .map(|slot| {
            let appointments = booked.remove(&slot.id).unwrap_or_default();
            (slot, appointments)
        })
        .collect())
}

/// The referral a slot is held for and until when, while the hold lasts.
pub fn active_hold(slot: &slot::Model, now: i64) -> Option<(Uuid, i64)> {
    diary::active_hold(slot.held_for_referral, slot.held_until, now)
}

/// Slots not under a tentative hold at `now` (none, or lapsed).
pub fn not_held(now: i64) -> Condition {
    Condition::any()
        .add(slot::Column::HeldUntil.is_null())
        .add(slot::Column::HeldUntil.lte(now))
}
