//! Session templates, slot generation, slots, absences and the diary view.

use chrono::{Duration, Utc};
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::format_civil_date;
use medsec_proto::scheduling::v1 as pb;

use super::SchedulingApi;
use prost::Message as _;
use sea_orm::DatabaseConnection;
use tonic::Request;
use uuid::Uuid;

use super::appointments::appointment_to_proto;
use super::convert::{Reader, present, request_key};
use super::staff::epoch_to_proto;
use crate::domain::{AbsenceReason, Kind, Mode, Role, london, text};
use crate::store::entities::{absence, session_template, slot};
use crate::store::{diary, split_list, staff, start_key};

const MAX_GENERATE_DAYS: i64 = 366;

/// Checks that `clinician_id` is a clinician with `specialty`, and that the
/// room (if any) is at the location.
async fn check_references(
    db: &DatabaseConnection,
    prefix: &str,
    clinician_id: Uuid,
    specialty: &str,
    location_id: Uuid,
    room_id: Option<Uuid>,
) -> Result<(), ApiError> {
    let clinician = staff::get_staff(db, clinician_id).await?;
    if clinician.role != Role::Clinician.as_str() {
        return Err(ApiError::invalid(
            format!("{prefix}.clinician_id"),
            "is not a clinician",
        ));
    }
    if !split_list(&clinician.specialties)
        .iter()
        .any(|s| s == specialty)
    {
        return Err(ApiError::invalid(
            format!("{prefix}.specialty"),
            "is not one of the clinician's specialties",
        ));
    }
    staff::get_location(db, location_id).await?;
    if let Some(room_id) = room_id {
        let room = staff::get_room(db, room_id).await?;
        if room.location_id != location_id {
            return Err(ApiError::invalid(
                format!("{prefix}.room_id"),
                "is not at the location",
            ));
        }
    }
    Ok(())
}

pub(super) async fn create_template(
    api: &SchedulingApi,
    request: Request<pb::CreateSessionTemplateRequest>,
) -> Result<pb::SessionTemplate, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let Some(input) = request.session_template.clone() else {
        return Err(ApiError::invalid("session_template", "is required"));
    };
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let f = |name: &str| format!("session_template.{name}");
    let clinician_id = r.id(&f("clinician_id"), &input.clinician_id);
    let specialty = r.check(&f("specialty"), text::specialty(&input.specialty));
    let location_id = r.id(&f("location_id"), &input.location_id);
    let room_id = r.optional_id(&f("room_id"), &input.room_id);
    if !(1..=7).contains(&input.weekday) {
        r.add(&f("weekday"), "must be 1 (Monday) to 7 (Sunday)");
    }
    let start = r.check(
        &f("start_time"),
        london::parse_time(&input.start_time).ok_or("must be a time HH:MM"),
    );
    let end = r.check(
        &f("end_time"),
        london::parse_time(&input.end_time).ok_or("must be a time HH:MM"),
    );
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        r.add(&f("end_time"), "must be after start_time");
    }
    if !(5..=480).contains(&input.slot_minutes) {
        r.add(&f("slot_minutes"), "must be 5 to 480");
    }
    let kind = r.check(&f("kind"), Kind::from_proto(input.kind));
    let mode = r.check(&f("mode"), Mode::from_proto(input.mode));
    if !(1..=50).contains(&input.capacity) {
        r.add(&f("capacity"), "must be 1 to 50");
    }
    let valid_from = r.date(&f("valid_from"), &input.valid_from);
    let valid_to = r.optional_date(&f("valid_to"), &input.valid_to);
    if let (Some(from), Some(to)) = (valid_from, valid_to)
        && to < from
    {
        r.add(&f("valid_to"), "must not be before valid_from");
    }
    r.finish()?;
    let (clinician_id, specialty, location_id) = (
        present(clinician_id, "session_template.clinician_id")?,
        present(specialty, "session_template.specialty")?,
        present(location_id, "session_template.location_id")?,
    );
    check_references(
        db,
        "session_template",
        clinician_id,
        &specialty,
        location_id,
        room_id,
    )
    .await?;
    let key = request_key(
        &request.request_id,
        pb::CreateSessionTemplateRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = session_template::Model {
        id: Uuid::now_v7(),
        clinician_id,
        specialty,
        location_id,
        room_id,
        weekday: input.weekday,
        start_time: london::format_time(present(start, "session_template.start_time")?),
        end_time: london::format_time(present(end, "session_template.end_time")?),
        slot_minutes: input.slot_minutes,
        kind: present(kind, "session_template.kind")?.as_str().to_owned(),
        mode: present(mode, "session_template.mode")?.as_str().to_owned(),
        capacity: input.capacity,
        valid_from: present(valid_from, "session_template.valid_from")?,
        valid_to,
        create_time: Utc::now(),
    };
    let created = diary::create_template(db, key.as_ref(), row).await?;
    Ok(template_to_proto(&created))
}

fn template_to_proto(row: &session_template::Model) -> pb::SessionTemplate {
    pb::SessionTemplate {
        id: row.id.to_string(),
        clinician_id: row.clinician_id.to_string(),
        specialty: row.specialty.clone(),
        location_id: row.location_id.to_string(),
        room_id: row.room_id.map(|id| id.to_string()).unwrap_or_default(),
        weekday: row.weekday,
        start_time: row.start_time.clone(),
        end_time: row.end_time.clone(),
        slot_minutes: row.slot_minutes,
        kind: Kind::stored_to_proto(&row.kind),
        mode: Mode::stored_to_proto(&row.mode),
        capacity: row.capacity,
        valid_from: format_civil_date(row.valid_from),
        valid_to: row.valid_to.map(format_civil_date).unwrap_or_default(),
    }
}

pub(super) async fn list_templates(
    api: &SchedulingApi,
    request: Request<pb::ListSessionTemplatesRequest>,
) -> Result<pb::ListSessionTemplatesResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("templates;clinician={clinician_id:?}"),
    )?;
    let mut rows = diary::list_templates(db, clinician_id, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListSessionTemplatesResponse {
        session_templates: rows.iter().map(template_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn generate_slots(
    api: &SchedulingApi,
    request: Request<pb::GenerateSlotsRequest>,
) -> Result<pb::GenerateSlotsResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let from = r.date("from_date", &request.from_date);
    let to = r.date("to_date", &request.to_date);
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    if let (Some(from), Some(to)) = (from, to) {
        if to < from {
            r.add("to_date", "must not be before from_date");
        } else if to - from > Duration::days(MAX_GENERATE_DAYS) {
            r.add("to_date", "must be at most 366 days after from_date");
        }
    }
    r.finish()?;
    if let Some(id) = clinician_id {
        staff::get_staff(db, id).await?;
    }
    let generated = diary::generate_slots(
        db,
        present(from, "from_date")?,
        present(to, "to_date")?,
        clinician_id,
    )
    .await?;
    let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    Ok(pb::GenerateSlotsResponse {
        created: count(generated.created),
        existing: count(generated.existing),
        conflicts: count(generated.conflicts),
    })
}

pub(super) async fn create_slot(
    api: &SchedulingApi,
    request: Request<pb::CreateSlotRequest>,
) -> Result<pb::Slot, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let Some(input) = request.slot.clone() else {
        return Err(ApiError::invalid("slot", "is required"));
    };
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let clinician_id = r.id("slot.clinician_id", &input.clinician_id);
    let specialty = r.check("slot.specialty", text::specialty(&input.specialty));
    let location_id = r.id("slot.location_id", &input.location_id);
    let room_id = r.optional_id("slot.room_id", &input.room_id);
    let start = r.instant("slot.start_time", input.start_time.as_ref());
    let end = r.instant("slot.end_time", input.end_time.as_ref());
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            r.add("slot.end_time", "must be after start_time");
        } else if end - start > Duration::hours(8) {
            r.add("slot.end_time", "a slot lasts at most 8 hours");
        }
    }
    let kind = r.check("slot.kind", Kind::from_proto(input.kind));
    let mode = r.check("slot.mode", Mode::from_proto(input.mode));
    if !(1..=50).contains(&input.capacity) {
        r.add("slot.capacity", "must be 1 to 50");
    }
    r.finish()?;
    let (clinician_id, specialty, location_id, start, end) = (
        present(clinician_id, "slot.clinician_id")?,
        present(specialty, "slot.specialty")?,
        present(location_id, "slot.location_id")?,
        present(start, "slot.start_time")?,
        present(end, "slot.end_time")?,
    );
    check_references(db, "slot", clinician_id, &specialty, location_id, room_id).await?;
    let key = request_key(
        &request.request_id,
        pb::CreateSlotRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = slot::Model {
        id: Uuid::now_v7(),
        clinician_id,
        specialty,
        location_id,
        room_id,
        template_id: None,
        date: london::local_date(start),
        start_at: start.timestamp(),
        end_at: end.timestamp(),
        kind: present(kind, "slot.kind")?.as_str().to_owned(),
        mode: present(mode, "slot.mode")?.as_str().to_owned(),
        capacity: input.capacity,
        booked: 0,
        unavailable: false,
        create_time: Utc::now(),
        held_for_referral: None,
        held_until: None,
    };
    let created = diary::create_slot(db, key.as_ref(), row).await?;
    Ok(slot_to_proto(&created))
}

pub(crate) fn slot_to_proto(row: &slot::Model) -> pb::Slot {
    let hold = diary::active_hold(row, Utc::now().timestamp());
    let state = if row.unavailable {
        pb::SlotState::BusyUnavailable
    } else if row.booked >= row.capacity {
        pb::SlotState::Busy
    } else if hold.is_some() {
        pb::SlotState::BusyTentative
    } else {
        pb::SlotState::Free
    };
    pb::Slot {
        id: row.id.to_string(),
        clinician_id: row.clinician_id.to_string(),
        specialty: row.specialty.clone(),
        location_id: row.location_id.to_string(),
        room_id: row.room_id.map(|id| id.to_string()).unwrap_or_default(),
        session_template_id: row.template_id.map(|id| id.to_string()).unwrap_or_default(),
        date: format_civil_date(row.date),
        start_time: epoch_to_proto(row.start_at),
        end_time: epoch_to_proto(row.end_at),
        kind: Kind::stored_to_proto(&row.kind),
        mode: Mode::stored_to_proto(&row.mode),
        capacity: row.capacity,
        booked: row.booked,
        state: state as i32,
        held_for_referral_id: hold
            .map(|(referral, _)| referral.to_string())
            .unwrap_or_default(),
        hold_until: hold.and_then(|(_, until)| epoch_to_proto(until)),
    }
}

pub(super) async fn get_slot(
    api: &SchedulingApi,
    request: Request<pb::GetSlotRequest>,
) -> Result<pb::Slot, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    r.finish()?;
    Ok(slot_to_proto(
        &diary::get_slot(db, present(id, "id")?).await?,
    ))
}

pub(super) async fn list_slots(
    api: &SchedulingApi,
    request: Request<pb::ListSlotsRequest>,
) -> Result<pb::ListSlotsResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    let specialty = if request.specialty.is_empty() {
        None
    } else {
        r.check("specialty", text::specialty(&request.specialty))
    };
    let kind = r
        .check("kind", Kind::from_proto_optional(request.kind))
        .flatten();
    let after = r.optional_instant("start_after", request.start_after.as_ref());
    let before = r.optional_instant("start_before", request.start_before.as_ref());
    r.finish()?;
    let filter = diary::SlotFilter {
        clinician_id,
        specialty,
        kind: kind.map(|k| k.as_str().to_owned()),
        start_after: after.map(|at| at.timestamp()),
        start_before: before.map(|at| at.timestamp()),
        free_only: request.free_only,
    };
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    )?;
    let mut rows = diary::list_slots(db, &filter, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| start_key(row.start_at, row.id));
    Ok(pb::ListSlotsResponse {
        slots: rows.iter().map(slot_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn create_absence(
    api: &SchedulingApi,
    request: Request<pb::CreateAbsenceRequest>,
) -> Result<pb::Absence, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let Some(input) = request.absence.clone() else {
        return Err(ApiError::invalid("absence", "is required"));
    };
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let clinician_id = r.id("absence.clinician_id", &input.clinician_id);
    let start = r.instant("absence.start_time", input.start_time.as_ref());
    let end = r.instant("absence.end_time", input.end_time.as_ref());
    if let (Some(start), Some(end)) = (start, end)
        && end <= start
    {
        r.add("absence.end_time", "must be after start_time");
    }
    let reason = r.check("absence.reason", AbsenceReason::from_proto(input.reason));
    let note = r.check("absence.note", text::free_text(&input.note));
    r.finish()?;
    let key = request_key(
        &request.request_id,
        pb::CreateAbsenceRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let row = absence::Model {
        id: Uuid::now_v7(),
        clinician_id: present(clinician_id, "absence.clinician_id")?,
        start_at: present(start, "absence.start_time")?.timestamp(),
        end_at: present(end, "absence.end_time")?.timestamp(),
        reason: present(reason, "absence.reason")?.as_str().to_owned(),
        note: note.unwrap_or_default(),
        create_time: Utc::now(),
    };
    let (created, displaced) = diary::create_absence(db, key.as_ref(), row).await?;
    Ok(absence_to_proto(&created, &displaced))
}

fn absence_to_proto(
    row: &absence::Model,
    displaced: &[crate::store::entities::appointment::Model],
) -> pb::Absence {
    pb::Absence {
        id: row.id.to_string(),
        clinician_id: row.clinician_id.to_string(),
        start_time: epoch_to_proto(row.start_at),
        end_time: epoch_to_proto(row.end_at),
        reason: AbsenceReason::stored_to_proto(&row.reason),
        note: row.note.clone(),
        displaced_appointments: displaced.iter().map(appointment_to_proto).collect(),
    }
}

pub(super) async fn list_absences(
    api: &SchedulingApi,
    request: Request<pb::ListAbsencesRequest>,
) -> Result<pb::ListAbsencesResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("absences;clinician={clinician_id:?}"),
    )?;
    let mut rows = diary::list_absences(db, clinician_id, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    let mut absences = Vec::with_capacity(rows.len());
    for row in &rows {
        let displaced = diary::displaced(db, row).await?;
        absences.push(absence_to_proto(row, &displaced));
    }
    Ok(pb::ListAbsencesResponse {
        absences,
        next_page_token,
    })
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetDiaryRequest>,
) -> Result<pb::Diary, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.id("clinician_id", &request.clinician_id);
    let date = r.date("date", &request.date);
    let days = match pb::DiarySpan::try_from(request.span) {
        Ok(pb::DiarySpan::Unspecified | pb::DiarySpan::Day) => 1,
        Ok(pb::DiarySpan::Week) => 7,
        Err(_) => {
            r.add("span", "is not a known value");
            1
        }
    };
    r.finish()?;
    let (clinician_id, from) = (
        present(clinician_id, "clinician_id")?,
        present(date, "date")?,
    );
    staff::get_staff(db, clinician_id).await?;
    let to = from + Duration::days(days - 1);
    let entries = diary::diary(db, clinician_id, from, to).await?;
    Ok(pb::Diary {
        clinician_id: clinician_id.to_string(),
        from_date: format_civil_date(from),
        to_date: format_civil_date(to),
        entries: entries
            .iter()
            .map(|(slot, appointments)| pb::DiaryEntry {
                slot: Some(slot_to_proto(slot)),
                appointments: appointments.iter().map(appointment_to_proto).collect(),
            })
            .collect(),
    })
}
