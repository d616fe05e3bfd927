//! Session templates, slot generation, slots, absences and the diary view.

use chrono::{Duration, Utc};
use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::message;
use medsec_platform::request::read_id;
use medsec_platform::time::format_civil_date;
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use tonic::Request;

use super::SchedulingApi;
use super::appointments::appointment_to_proto;
use super::staff::epoch_to_proto;
use crate::domain::diary::{
    self, LONGEST_GENERATION, LONGEST_SLOT, NewAbsence, NewSessionTemplate, NewSlot, SlotState,
    capacity, session_time, slot_minutes, weekday,
};
use crate::domain::text::{MAX_TEXT_CHARS, optional_specialty, read_specialty};
use crate::domain::{AbsenceReason, Kind, Mode, span};
use crate::store::absences::{self, WithDisplaced};
use crate::store::diary::{self as store, SlotFilter};
use crate::store::entities::{session_template, slot};

pub(super) async fn create_template(
    api: &SchedulingApi,
    request: Request<pb::CreateSessionTemplateRequest>,
) -> Result<pb::SessionTemplate, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("session_template", request.session_template.as_ref())?;
    let f = |name: &str| format!("session_template.{name}");
    let clinician_id = r.id(&f("clinician_id"), &input.clinician_id);
    let specialty = read_specialty(&mut r, &f("specialty"), &input.specialty);
    let location_id = r.id(&f("location_id"), &input.location_id);
    let room_id = r.optional_id(&f("room_id"), &input.room_id);
    let weekday = weekday(&mut r, &f("weekday"), input.weekday);
    let start_time = session_time(&mut r, &f("start_time"), &input.start_time);
    let end_time = session_time(&mut r, &f("end_time"), &input.end_time);
    span::ends_after(&mut r, &f("end_time"), start_time, end_time, None);
    let slot_minutes = slot_minutes(&mut r, &f("slot_minutes"), input.slot_minutes);
    let kind = r.enumerated::<Kind>(&f("kind"), input.kind);
    let mode = r.enumerated::<Mode>(&f("mode"), input.mode);
    let capacity = capacity(&mut r, &f("capacity"), input.capacity);
    let valid_from = r.date(&f("valid_from"), &input.valid_from);
    let valid_to = r.optional_date(&f("valid_to"), &input.valid_to);
    span::not_before(
        &mut r,
        &f("valid_to"),
        "valid_from",
        valid_from,
        valid_to,
        None,
    );
    // Every required value read, or `None` when one was bad.
    let new = (|| {
        Some(NewSessionTemplate {
            clinician_id: clinician_id?,
            specialty: specialty?,
            location_id: location_id?,
            room_id,
            weekday: weekday?,
            start_time: start_time?,
            end_time: end_time?,
            slot_minutes: slot_minutes?,
            kind: kind?,
            mode: mode?,
            capacity: capacity?,
            valid_from: valid_from?,
            valid_to,
        })
    })();
    let new = r.finish(new)?;
    let created = store::create_template(&api.db, key.as_ref(), new).await?;
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
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("templates", &clinician_id, size, token)?;
    let rows = store::list_templates(&api.db, clinician_id, &page).await?;
    let (session_templates, next_page_token) =
        page.tail(rows, |row| keys::id(row.id), template_to_proto);
    Ok(pb::ListSessionTemplatesResponse {
        session_templates,
        next_page_token,
    })
}

pub(super) async fn generate_slots(
    api: &SchedulingApi,
    request: Request<pb::GenerateSlotsRequest>,
) -> Result<pb::GenerateSlotsResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let from = r.date("from_date", &request.from_date);
    let to = r.date("to_date", &request.to_date);
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    span::not_before(
        &mut r,
        "to_date",
        "from_date",
        from,
        to,
        Some(LONGEST_GENERATION),
    );
    let (from, to) = r.finish((from, to))?;
    let generated = store::generate_slots(&api.db, from, to, clinician_id).await?;
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
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("slot", request.slot.as_ref())?;
    let clinician_id = r.id("slot.clinician_id", &input.clinician_id);
    let specialty = read_specialty(&mut r, "slot.specialty", &input.specialty);
    let location_id = r.id("slot.location_id", &input.location_id);
    let room_id = r.optional_id("slot.room_id", &input.room_id);
    let start = r.instant("slot.start_time", input.start_time.as_ref());
    let end = r.instant("slot.end_time", input.end_time.as_ref());
    span::ends_after(&mut r, "slot.end_time", start, end, Some(LONGEST_SLOT));
    let kind = r.enumerated::<Kind>("slot.kind", input.kind);
    let mode = r.enumerated::<Mode>("slot.mode", input.mode);
    let capacity = capacity(&mut r, "slot.capacity", input.capacity);
    let new = (|| {
        Some(NewSlot {
            clinician_id: clinician_id?,
            specialty: specialty?,
            location_id: location_id?,
            room_id,
            start: start?,
            end: end?,
            kind: kind?,
            mode: mode?,
            capacity: capacity?,
        })
    })();
    let new = r.finish(new)?;
    let created = store::create_slot(&api.db, key.as_ref(), new).await?;
    Ok(slot_to_proto(&created))
}

pub(crate) fn slot_to_proto(row: &slot::Model) -> pb::Slot {
    let hold = store::active_hold(row, Utc::now().timestamp());
    let state = match diary::slot_state(row.unavailable, row.booked, row.capacity, hold.is_some()) {
        SlotState::Free => pb::SlotState::Free,
        SlotState::Busy => pb::SlotState::Busy,
        SlotState::BusyUnavailable => pb::SlotState::BusyUnavailable,
        SlotState::BusyTentative => pb::SlotState::BusyTentative,
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
    let id = read_id("id", &request.get_ref().id)?;
    Ok(slot_to_proto(&store::get_slot(&api.db, id).await?))
}

pub(super) async fn list_slots(
    api: &SchedulingApi,
    request: Request<pb::ListSlotsRequest>,
) -> Result<pb::ListSlotsResponse, ApiError> {
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = SlotFilter {
        clinician_id: r.optional_id("clinician_id", &request.clinician_id),
        specialty: optional_specialty(&mut r, "specialty", &request.specialty),
        kind: r.optional_enum::<Kind>("kind", request.kind),
        start_after: r
            .optional_instant("start_after", request.start_after.as_ref())
            .map(|at| at.timestamp()),
        start_before: r
            .optional_instant("start_before", request.start_before.as_ref())
            .map(|at| at.timestamp()),
        free_only: request.free_only,
    };
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("slots", &filter, size, token)?;
    let rows = store::list_slots(&api.db, &filter, &page).await?;
    let (slots, next_page_token) = page.tail(
        rows,
        |row| keys::then_id(&row.start_at, row.id),
        slot_to_proto,
    );
    Ok(pb::ListSlotsResponse {
        slots,
        next_page_token,
    })
}

pub(super) async fn create_absence(
    api: &SchedulingApi,
    request: Request<pb::CreateAbsenceRequest>,
) -> Result<pb::Absence, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let input = r.message("absence", request.absence.as_ref())?;
    let clinician_id = r.id("absence.clinician_id", &input.clinician_id);
    let start = r.instant("absence.start_time", input.start_time.as_ref());
    let end = r.instant("absence.end_time", input.end_time.as_ref());
    span::ends_after(&mut r, "absence.end_time", start, end, None);
    let reason = r.enumerated::<AbsenceReason>("absence.reason", input.reason);
    let note = r.optional_text("absence.note", &input.note, MAX_TEXT_CHARS);
    let (clinician_id, start, end, reason) = r.finish((clinician_id, start, end, reason))?;
    let new = NewAbsence {
        clinician_id,
        start,
        end,
        reason,
        note,
    };
    let created = absences::create_absence(&api.db, key.as_ref(), new, &actor).await?;
    Ok(absence_to_proto(&created))
}

fn absence_to_proto((row, displaced): &WithDisplaced) -> pb::Absence {
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
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.optional_id("clinician_id", &request.clinician_id);
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("absences", &clinician_id, size, token)?;
    let rows = absences::list_absences(&api.db, clinician_id, &page, &actor).await?;
    let (absences, next_page_token) =
        page.tail(rows, |(row, _)| keys::id(row.id), absence_to_proto);
    Ok(pb::ListAbsencesResponse {
        absences,
        next_page_token,
    })
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetDiaryRequest>,
) -> Result<pb::Diary, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let clinician_id = r.id("clinician_id", &request.clinician_id);
    let from = r.date("date", &request.date);
    let days = r.check(
        "span",
        match pb::DiarySpan::try_from(request.span) {
            Ok(pb::DiarySpan::Unspecified | pb::DiarySpan::Day) => Ok(1),
            Ok(pb::DiarySpan::Week) => Ok(7),
            Err(_) => Err(message::UNKNOWN_VALUE),
        },
    );
    let (clinician_id, from, days) = r.finish((clinician_id, from, days))?;
    let to = from + Duration::days(days - 1);
    let entries = store::read_diary(&api.db, clinician_id, from, to, &actor).await?;
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
