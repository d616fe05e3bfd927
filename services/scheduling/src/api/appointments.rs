//! Booking, moving and marking appointments.

use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::to_timestamp;
use medsec_proto::scheduling::v1 as pb;

use super::SchedulingApi;
use prost::Message as _;
use sea_orm::DatabaseConnection;
use tonic::Request;
use uuid::Uuid;

use super::convert::{Reader, present, request_key};
use super::staff::epoch_to_proto;
use crate::domain::appointment::Action;
use crate::domain::{AppointmentStatus, CancelledBy, text};
use crate::store::appointments::{self, AppointmentFilter, Booking};
use crate::store::entities::appointment;
use crate::store::start_key;

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
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let slot_id = r.id("slot_id", &request.slot_id);
    let patient_id = r.id("patient_id", &request.patient_id);
    let referral_id = r.optional_id("referral_id", &request.referral_id);
    let reason = r.check("reason", text::free_text(&request.reason));
    r.finish()?;
    let key = request_key(
        &request.request_id,
        pb::BookAppointmentRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    let booking = Booking {
        slot_id: present(slot_id, "slot_id")?,
        patient_id: present(patient_id, "patient_id")?,
        referral_id,
        reason: reason.unwrap_or_default(),
    };
    let booked = appointments::book(db, key.as_ref(), booking).await?;
    Ok(appointment_to_proto(&booked))
}

fn one_id(text: &str) -> Result<Uuid, ApiError> {
    let mut r = Reader::new();
    let id = r.id("id", text);
    r.finish()?;
    present(id, "id")
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let id = one_id(&request.id)?;
    Ok(appointment_to_proto(&appointments::get(db, id).await?))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListAppointmentsRequest>,
) -> Result<pb::ListAppointmentsResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = AppointmentFilter {
        patient_id: r.optional_id("patient_id", &request.patient_id),
        clinician_id: r.optional_id("clinician_id", &request.clinician_id),
        referral_id: r.optional_id("referral_id", &request.referral_id),
        status: r
            .check(
                "status",
                AppointmentStatus::from_proto_optional(request.status),
            )
            .flatten()
            .map(|s| s.as_str().to_owned()),
    };
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("{filter:?}"),
    )?;
    let mut rows = appointments::list(db, &filter, &page).await?;
    let next_page_token = page.finish(&mut rows, |row| start_key(row.start_at, row.id));
    Ok(pb::ListAppointmentsResponse {
        appointments: rows.iter().map(appointment_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn cancel(
    api: &SchedulingApi,
    request: Request<pb::CancelAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let by = r.check(
        "cancelled_by",
        CancelledBy::from_proto(request.cancelled_by),
    );
    let reason = r.check("reason", text::required_text(&request.reason));
    r.finish()?;
    let cancelled = appointments::cancel(
        db,
        present(id, "id")?,
        present(by, "cancelled_by")?,
        &present(reason, "reason")?,
    )
    .await?;
    Ok(appointment_to_proto(&cancelled))
}

pub(super) async fn reschedule(
    api: &SchedulingApi,
    request: Request<pb::RescheduleAppointmentRequest>,
) -> Result<pb::Appointment, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let new_slot_id = r.id("new_slot_id", &request.new_slot_id);
    r.finish()?;
    let moved =
        appointments::reschedule(db, present(id, "id")?, present(new_slot_id, "new_slot_id")?)
            .await?;
    Ok(appointment_to_proto(&moved))
}

pub(super) async fn mark_arrived(
    api: &SchedulingApi,
    request: Request<pb::MarkArrivedRequest>,
) -> Result<pb::Appointment, ApiError> {
    mark(&api.db, &request.get_ref().id, Action::Arrive).await
}

pub(super) async fn mark_fulfilled(
    api: &SchedulingApi,
    request: Request<pb::MarkFulfilledRequest>,
) -> Result<pb::Appointment, ApiError> {
    mark(&api.db, &request.get_ref().id, Action::Fulfil).await
}

pub(super) async fn mark_did_not_attend(
    api: &SchedulingApi,
    request: Request<pb::MarkDidNotAttendRequest>,
) -> Result<pb::Appointment, ApiError> {
    mark(&api.db, &request.get_ref().id, Action::DidNotAttend).await
}

async fn mark(
    db: &DatabaseConnection,
    id: &str,
    action: Action,
) -> Result<pb::Appointment, ApiError> {
    let id = one_id(id)?;
    let marked = match action {
        Action::DidNotAttend => appointments::did_not_attend(db, id).await?,
        _ => appointments::mark(db, id, action).await?,
    };
    Ok(appointment_to_proto(&marked))
}
