//! Session templates, slots (generated and ad hoc), absences and the diary
//! view. A clinician's diary changes under a lock on their staff row, so the
//! "no overlapping slots" rule holds under concurrency; the unique index on
//! (clinician, start) makes slot generation idempotent.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{
    ActiveModelTrait as _, ColumnTrait as _, Condition, ConnectionTrait, DatabaseConnection,
    EntityTrait as _, IntoActiveModel as _, QueryFilter as _, QueryOrder as _, QuerySelect as _,
    TransactionTrait as _,
};
use uuid::Uuid;

use super::entities::{absence, appointment, session_template, slot};
use super::{RequestKey, after_id, after_start, claim, create_once, db_error, lock_clinician};
use crate::domain::appointment::HOLDING;
use crate::domain::{AppointmentStatus, london};

pub async fn create_template(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: session_template::Model,
) -> Result<session_template::Model, ApiError> {
    let created = create_once(db, "CreateSessionTemplate", key, row.id, async |txn| {
        session_template::Entity::insert(row.into_active_model().reset_all())
            .exec_without_returning(txn)
            .await
            .map_err(db_error)?;
        Ok(())
    })
    .await?;
    session_template::Entity::find_by_id(created.id())
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("session template", created.id().to_string()))
}

pub async fn list_templates(
    db: &impl ConnectionTrait,
    clinician_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Vec<session_template::Model>, ApiError> {
    let mut query = session_template::Entity::find();
    if let Some(clinician_id) = clinician_id {
        query = query.filter(session_template::Column::ClinicianId.eq(clinician_id));
    }
    if let Some(after) = after_id(page)? {
        query = query.filter(session_template::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(session_template::Column::Id)
        .limit(page.fetch_limit())
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

    let mut clinicians: Vec<Uuid> = templates.iter().map(|t| t.clinician_id).collect();
    clinicians.dedup();
    let mut total = Generated::default();
    for clinician in clinicians {
        let mine: Vec<_> = templates
            .iter()
            .filter(|t| t.clinician_id == clinician)
            .collect();
        let txn = db.begin().await?;
        lock_clinician(&txn, clinician).await?;
        let window_start =
            london::start_of_day(from - Duration::days(1)).map_or(i64::MIN, |at| at.timestamp());
        let window_end =
            london::start_of_day(to + Duration::days(2)).map_or(i64::MAX, |at| at.timestamp());
        let mut taken: Vec<(i64, i64)> = slot::Entity::find()
            .filter(slot::Column::ClinicianId.eq(clinician))
            .filter(slot::Column::EndAt.gt(window_start))
            .filter(slot::Column::StartAt.lt(window_end))
            .all(&txn)
            .await?
            .into_iter()
            .map(|s| (s.start_at, s.end_at))
            .collect();
        let absences = absences_of(&txn, clinician).await?;
        let now = Utc::now();
        for template in mine {
            let (Some(start), Some(end)) = (
                london::parse_time(&template.start_time),
                london::parse_time(&template.end_time),
            ) else {
                return Err(ApiError::internal(format!(
                    "session template {} has bad times",
                    template.id
                )));
            };
            let first = Ord::max(from, template.valid_from);
            let last = template
                .valid_to
                .map_or(to, |valid_to| Ord::min(valid_to, to));
            for date in first.iter_days().take_while(|date| *date <= last) {
                if i64::from(london::iso_weekday(date)) != i64::from(template.weekday) {
                    continue;
                }
                for (start_at, end_at) in
                    london::session_slots(date, start, end, minutes(template.slot_minutes))
                {
                    let (s, e) = (start_at.timestamp(), end_at.timestamp());
                    if taken.iter().any(|(ts, te)| *ts == s && *te == e) {
                        total.existing += 1;
                        continue;
                    }
                    if taken.iter().any(|(ts, te)| *ts < e && *te > s) {
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
                        unavailable: absences.iter().any(|(a, b)| *a < e && *b > s),
                        create_time: now,
                        held_for_referral: None,
                        held_until: None,
                    };
                    // The unique index is what makes a repeat run harmless,
                    // whatever the checks above saw.
                    let inserted = slot::Entity::insert(row.into_active_model().reset_all())
                        .on_conflict(
                            OnConflict::columns([slot::Column::ClinicianId, slot::Column::StartAt])
                                .do_nothing()
                                .to_owned(),
                        )
                        .exec_without_returning(&txn)
                        .await
                        .map_err(db_error)?;
                    if inserted == 1 {
                        total.created += 1;
                    } else {
                        total.existing += 1;
                    }
                    taken.push((s, e));
                }
            }
        }
        txn.commit().await.map_err(db_error)?;
    }
    Ok(total)
}

fn minutes(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(1)
}

async fn absences_of(
    conn: &impl ConnectionTrait,
    clinician: Uuid,
) -> Result<Vec<(i64, i64)>, ApiError> {
    Ok(absence::Entity::find()
        .filter(absence::Column::ClinicianId.eq(clinician))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.start_at, a.end_at))
        .collect())
}

pub async fn get_slot(db: &impl ConnectionTrait, id: Uuid) -> Result<slot::Model, ApiError> {
    slot::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("slot", id.to_string()))
}

/// Adds one ad-hoc slot; FAILED_PRECONDITION when it overlaps another of the
/// clinician's slots.
pub async fn create_slot(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: slot::Model,
) -> Result<slot::Model, ApiError> {
    let txn = db.begin().await?;
    if let Some(created) = claim(&txn, "CreateSlot", key, row.id).await? {
        txn.rollback().await?;
        return get_slot(db, created.id()).await;
    }
    lock_clinician(&txn, row.clinician_id).await?;
    let clash = slot::Entity::find()
        .filter(slot::Column::ClinicianId.eq(row.clinician_id))
        .filter(slot::Column::StartAt.lt(row.end_at))
        .filter(slot::Column::EndAt.gt(row.start_at))
        .one(&txn)
        .await?;
    if let Some(clash) = clash {
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "the clinician already has slot {} at an overlapping time",
                clash.id
            ),
            kind: medsec_platform::PreconditionKind::Overlap,
            subject: format!("slots/{}", clash.id),
        });
    }
    let absent = absences_of(&txn, row.clinician_id)
        .await?
        .iter()
        .any(|(a, b)| *a < row.end_at && *b > row.start_at);
    let id = row.id;
    let mut active = row.into_active_model().reset_all();
    active.unavailable = sea_orm::Set(absent);
    slot::Entity::insert(active)
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
    txn.commit().await.map_err(db_error)?;
    get_slot(db, id).await
}

/// Filters of ListSlots.
#[derive(Debug, Default)]
pub struct SlotFilter {
    pub clinician_id: Option<Uuid>,
    pub specialty: Option<String>,
    pub kind: Option<String>,
    pub start_after: Option<i64>,
    pub start_before: Option<i64>,
    pub free_only: bool,
}

pub async fn list_slots(
    db: &impl ConnectionTrait,
    filter: &SlotFilter,
    page: &PageRequest,
) -> Result<Vec<slot::Model>, ApiError> {
    let mut condition = Condition::all();
    if let Some(id) = filter.clinician_id {
        condition = condition.add(slot::Column::ClinicianId.eq(id));
    }
    if let Some(specialty) = &filter.specialty {
        condition = condition.add(slot::Column::Specialty.eq(specialty.as_str()));
    }
    if let Some(kind) = &filter.kind {
        condition = condition.add(slot::Column::Kind.eq(kind.as_str()));
    }
    if let Some(at) = filter.start_after {
        condition = condition.add(slot::Column::StartAt.gte(at));
    }
    if let Some(at) = filter.start_before {
        condition = condition.add(slot::Column::StartAt.lt(at));
    }
    if filter.free_only {
        condition = condition
            .add(slot::Column::Unavailable.eq(false))
            .add(Expr::col(slot::Column::Booked).lt(Expr::col(slot::Column::Capacity)))
            .add(not_held(Utc::now().timestamp()));
    }
    if let Some(after) = after_start(page, slot::Column::StartAt, slot::Column::Id)? {
        condition = condition.add(after);
    }
    Ok(slot::Entity::find()
        .filter(condition)
        .order_by_asc(slot::Column::StartAt)
        .order_by_asc(slot::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// Records an absence, marks the clinician's slots in it busy-unavailable,
/// and returns it with the booked appointments it displaces.
pub async fn create_absence(
    db: &DatabaseConnection,
    key: Option<&RequestKey>,
    row: absence::Model,
) -> Result<(absence::Model, Vec<appointment::Model>), ApiError> {
    let txn = db.begin().await?;
    if let Some(created) = claim(&txn, "CreateAbsence", key, row.id).await? {
        txn.rollback().await?;
        let absence = get_absence(db, created.id()).await?;
        let displaced = displaced(db, &absence).await?;
        return Ok((absence, displaced));
    }
    lock_clinician(&txn, row.clinician_id).await?;
    slot::Entity::update_many()
        .col_expr(slot::Column::Unavailable, Expr::value(true))
        .filter(slot::Column::ClinicianId.eq(row.clinician_id))
        .filter(slot::Column::StartAt.lt(row.end_at))
        .filter(slot::Column::EndAt.gt(row.start_at))
        .exec(&txn)
        .await
        .map_err(db_error)?;
    let id = row.id;
    absence::Entity::insert(row.into_active_model().reset_all())
        .exec_without_returning(&txn)
        .await
        .map_err(db_error)?;
    txn.commit().await.map_err(db_error)?;
    let absence = get_absence(db, id).await?;
    let displaced = displaced(db, &absence).await?;
    Ok((absence, displaced))
}

async fn get_absence(db: &impl ConnectionTrait, id: Uuid) -> Result<absence::Model, ApiError> {
    absence::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| ApiError::not_found("absence", id.to_string()))
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

pub async fn list_absences(
    db: &impl ConnectionTrait,
    clinician_id: Option<Uuid>,
    page: &PageRequest,
) -> Result<Vec<absence::Model>, ApiError> {
    let mut query = absence::Entity::find();
    if let Some(clinician_id) = clinician_id {
        query = query.filter(absence::Column::ClinicianId.eq(clinician_id));
    }
    if let Some(after) = after_id(page)? {
        query = query.filter(absence::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(absence::Column::Id)
        .limit(page.fetch_limit())
        .all(db)
        .await?)
}

/// A clinician's slots on the civil dates `from..=to`, in start order, each
/// with its appointments other than cancelled ones.
pub async fn diary(
    db: &impl ConnectionTrait,
    clinician_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(slot::Model, Vec<appointment::Model>)>, ApiError> {
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
    Ok(slots
        .into_iter()
        .map(|slot| {
            let booked = appointments
                .iter()
                .filter(|a| a.slot_id == slot.id)
                .cloned()
                .collect();
            (slot, booked)
        })
        .collect())
}

/// Instants to epoch seconds, for the `*_at` columns.
pub fn epoch(instant: DateTime<Utc>) -> i64 {
    instant.timestamp()
}

/// A wall-clock time parsed from stored text (validated when stored).
pub fn stored_time(text: &str) -> Option<NaiveTime> {
    london::parse_time(text)
}

/// The referral a slot is held for and until when, while the hold lasts.
pub fn active_hold(slot: &slot::Model, now: i64) -> Option<(Uuid, i64)> {
    match (slot.held_for_referral, slot.held_until) {
        (Some(referral), Some(until)) if until > now => Some((referral, until)),
        _ => None,
    }
}

/// Slots not under a tentative hold at `now` (none, or lapsed).
pub fn not_held(now: i64) -> Condition {
    Condition::any()
        .add(slot::Column::HeldUntil.is_null())
        .add(slot::Column::HeldUntil.lte(now))
}
