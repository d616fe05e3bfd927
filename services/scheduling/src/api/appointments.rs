//! Booking, moving and marking appointments.

use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use tonic::Request;

use super::SchedulingApi;
use super::staff::epoch_to_proto;
use crate::domain::appointment::{Action, Booking};
use crate::domain::text::MAX_TEXT_CHARS;
use crate::domain::{AppointmentStatus, CancelledBy};
use crate::store::appointments::{self, AppointmentFilter};
use crate::store::entities::appointment;

pub(crate) fn appointment_to_proto(row: &appointment::Model) -> pb::Appointment {
    pb::Appointment {
        id: row.id.to_string(),
        slot_id: row.slot_id.to_string(),
        patient_id: row.patient_id.to_string(),
        referral_id: row.referral_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: row.reason.clone(),
        status: AppointmentStatus::stored_to_proto(&row.status),
        clinician_id: row.clinician_id.to_string(),
        start_time: epoch_to_proto(row.start_at),
        end_time: epoch_to_proto(row.end_at),
        cancelled_by: row
            .cancelled_by
            .as_deref()
            .map_or(0, CancelledBy::stored_to_proto),
        cancellation_reason: row.cancellation_reason.clone().unwrap_or_default(),
        create_time: Some(to_timestamp(row.create_time)),
        update_time: Some(to_timestamp(row.update_time)),
    }
}

pub(super) async fn book(
    api: &SchedulingApi,
    request: Request<pb::BookAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let slot_id = r.id("slot_id", &request.slot_id);
    let patient_id = r.id("patient_id", &request.patient_id);
    let referral_id = r.optional_id("referral_id", &request.referral_id);
    let reason = r.optional_text("reason", &request.reason, MAX_TEXT_CHARS);
    let (slot_id, patient_id) = r.finish((slot_id, patient_id))?;
    api.patients.ensure_active("patient_id", patient_id).await?;
    let booking = Booking {
        slot_id,
        patient_id,
        referral_id,
        reason,
    };
    let booked = appointments::book(&api.db, key.as_ref(), booking, &actor).await?;
    Ok(appointment_to_proto(&booked))
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(appointment_to_proto(
        &appointments::read(&api.db, id, &actor).await?,
    ))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListAppointmentsRequest>,
) -> Result<pb::ListAppointmentsResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = AppointmentFilter {
        patient_id: r.optional_id("patient_id", &request.patient_id),
        clinician_id: r.optional_id("clinician_id", &request.clinician_id),
        referral_id: r.optional_id("referral_id", &request.referral_id),
        status: r.optional_enum::<AppointmentStatus>("status", request.status),
    };
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("appointments", &filter, size, token)?;
    let rows = appointments::list(&api.db, &filter, &page, &actor).await?;
    let (appointments, next_page_token) = page.tail(
        rows,
        |row| keys::then_id(&row.start_at, row.id),
        appointment_to_proto,
    );
    Ok(pb::ListAppointmentsResponse {
        appointments,
        next_page_token,
    })
}

pub(super) async fn cancel(
    api: &SchedulingApi,
    request: Request<pb::CancelAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let by = r.enumerated::<CancelledBy>("cancelled_by", request.cancelled_by);
    let reason = r.required_text("reason", &request.reason, MAX_TEXT_CHARS);
    let (id, by, reason) = r.finish((id, by, reason))?;
    let cancelled = appointments::cancel(&api.db, id, by, &reason, &actor).await?;
    Ok(appointment_to_proto(&cancelled))
}

pub(super) async fn reschedule(
    api: &SchedulingApi,
    request: Request<pb::RescheduleAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let new_slot_id = r.id("new_slot_id", &request.new_slot_id);
    let (id, new_slot_id) = r.finish((id, new_slot_id))?;
    let moved = appointments::reschedule(&api.db, id, new_slot_id, &actor).await?;
    Ok(appointment_to_proto(&moved))
}

pub(super) async fn mark_arrived(
    api: &SchedulingApi,
    request: Request<pb::MarkArrivedRequest>,
) -> Result<pb::Appointment, ApiError> {
    mark(api, &request, &request.get_ref().id, Action::Arrive).await
}

pub(super) async fn mark_fulfilled(
    api: &SchedulingApi,
    request: Request<pb::MarkFulfilledRequest>,
) -> Result<pb::Appointment, ApiError> {
    mark(api, &request, &request.get_ref().id, Action::Fulfil).await
}

pub(super) async fn mark_did_not_attend(
    api: &SchedulingApi,
    request: Request<pb::MarkDidNotAttendRequest>,
) -> Result<pb::Appointment, ApiError> {
    mark(api, &request, &request.get_ref().id, Action::DidNotAttend).await
}

/// The three marks read one id and move the appointment on.
async fn mark<T>(
    api: &SchedulingApi,
    request: &Request<T>,
    id: &str,
    action: Action,
) -> Result<pb::Appointment, ApiError> {
    let actor = Actor::of(request);
    let id = read_id("id", id)?;
    let marked = match action {
        Action::DidNotAttend => appointments::did_not_attend(&api.db, id, &actor).await?,
        _ => appointments::mark(&api.db, id, action, &actor).await?,
    };
    Ok(appointment_to_proto(&marked))
}
