//! Patient enquiries: routed to someone on duty, listed and resolved.

use chrono::Utc;
use medsec_platform::audit::Actor;
use medsec_platform::pagination::keys;
use medsec_platform::request::read_id;
use medsec_platform::time::to_timestamp;
use medsec_platform::{ApiError, Reader};
use medsec_proto::scheduling::v1 as pb;
use tonic::Request;

use super::SchedulingApi;
use crate::domain::enquiry::NewEnquiry;
use crate::domain::text::MAX_TEXT_CHARS;
use crate::domain::{Category, EnquiryStatus, Urgency};
use crate::store::enquiries::{self, EnquiryFilter};
use crate::store::entities::enquiry;

pub(super) async fn route(
    api: &SchedulingApi,
    request: Request<pb::RouteEnquiryRequest>,
) -> Result<pb::Enquiry, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let key = r.request_key(&request.request_id, &request, |q| q.request_id.clear());
    let category = r.enumerated::<Category>("category", request.category);
    let urgency = r.enumerated::<Urgency>("urgency", request.urgency);
    let patient_id = r.optional_id("patient_id", &request.patient_id);
    let summary = r.required_text("summary", &request.summary, MAX_TEXT_CHARS);
    let at = r.optional_instant("as_of", request.as_of.as_ref());
    let (category, urgency, summary) = r.finish((category, urgency, summary))?;
    let new = NewEnquiry {
        category,
        urgency,
        patient_id,
        summary,
    };
    let at = at.unwrap_or_else(Utc::now);
    let routed = enquiries::route(&api.db, key.as_ref(), new, at, &actor).await?;
    Ok(enquiry_to_proto(&routed))
}

fn enquiry_to_proto(row: &enquiry::Model) -> pb::Enquiry {
    pb::Enquiry {
        id: row.id.to_string(),
        category: Category::stored_to_proto(&row.category),
        urgency: Urgency::stored_to_proto(&row.urgency),
        patient_id: row.patient_id.map(|id| id.to_string()).unwrap_or_default(),
        summary: row.summary.clone(),
        assigned_staff_member_id: row.assigned_staff_id.to_string(),
        routing_reason: row.routing_reason.clone(),
        status: EnquiryStatus::stored_to_proto(&row.status),
        notes: row.notes.clone(),
        create_time: Some(to_timestamp(row.create_time)),
        resolve_time: row.resolve_time.map(to_timestamp),
    }
}

pub(super) async fn get(
    api: &SchedulingApi,
    request: Request<pb::GetEnquiryRequest>,
) -> Result<pb::Enquiry, ApiError> {
    let actor = Actor::of(&request);
    let id = read_id("id", &request.get_ref().id)?;
    Ok(enquiry_to_proto(
        &enquiries::read(&api.db, id, &actor).await?,
    ))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListEnquiriesRequest>,
) -> Result<pb::ListEnquiriesResponse, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let filter = EnquiryFilter {
        staff_id: r.optional_id(
            "assigned_staff_member_id",
            &request.assigned_staff_member_id,
        ),
        status: r.optional_enum::<EnquiryStatus>("status", request.status),
    };
    let (size, token) = (request.page_size, &request.page_token);
    let page = r.finish_page("enquiries", &filter, size, token)?;
    let rows = enquiries::list(&api.db, &filter, &page, &actor).await?;
    let (enquiries, next_page_token) = page.tail(rows, |row| keys::id(row.id), enquiry_to_proto);
    Ok(pb::ListEnquiriesResponse {
        enquiries,
        next_page_token,
    })
}

pub(super) async fn resolve(
    api: &SchedulingApi,
    request: Request<pb::ResolveEnquiryRequest>,
) -> Result<pb::Enquiry, ApiError> {
    let actor = Actor::of(&request);
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let notes = r.required_text("notes", &request.notes, MAX_TEXT_CHARS);
    let (id, notes) = r.finish((id, notes))?;
    let resolved = enquiries::resolve(&api.db, id, &notes, Utc::now(), &actor).await?;
    Ok(enquiry_to_proto(&resolved))
}
