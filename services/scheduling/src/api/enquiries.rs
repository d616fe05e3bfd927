//! Enquiry routing: who on duty now should answer this call.

use chrono::Utc;
use medsec_platform::ApiError;
use medsec_platform::pagination::PageRequest;
use medsec_platform::time::to_timestamp;
use medsec_proto::scheduling::v1 as pb;

use super::SchedulingApi;
use prost::Message as _;
use tonic::Request;
use uuid::Uuid;

use super::convert::{Reader, present, request_key};
use crate::domain::{Category, EnquiryStatus, Urgency, text};
use crate::store::entities::enquiry;
use crate::store::{enquiries, split_list, staff};

pub(super) async fn route(
    api: &SchedulingApi,
    request: Request<pb::RouteEnquiryRequest>,
) -> Result<pb::Enquiry, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    r.request_id(&request.request_id);
    let category = r.check("category", Category::from_proto(request.category));
    let urgency = r.check("urgency", Urgency::from_proto(request.urgency));
    let patient_id = r.optional_id("patient_id", &request.patient_id);
    let summary = r.check("summary", text::required_text(&request.summary));
    let as_of = r.optional_instant("as_of", request.as_of.as_ref());
    r.finish()?;
    let (category, urgency) = (present(category, "category")?, present(urgency, "urgency")?);
    let at = as_of.unwrap_or_else(Utc::now);
    let key = request_key(
        &request.request_id,
        pb::RouteEnquiryRequest {
            request_id: String::new(),
            ..request.clone()
        }
        .encode_to_vec(),
    );
    // A retry replays the first routing: whoever was on duty then, even if
    // the shift has since ended.
    if let Some(key) = &key
        && let Some(id) = crate::store::IDEMPOTENCY_KEYS
            .lookup(db, "RouteEnquiry", &key.request_id, &key.request)
            .await?
    {
        let id = Uuid::parse_str(&id).map_err(ApiError::internal)?;
        return Ok(enquiry_to_proto(&enquiries::get(db, id).await?));
    }

    // Who: on duty with the skill, fewest open enquiries (ties by name, then
    // id, so the choice is repeatable); else a duty manager on duty.
    let on_duty = staff::on_duty(db, at.timestamp()).await?;
    let mut skilled = Vec::new();
    let mut managers = Vec::new();
    for member in &on_duty {
        let open = enquiries::open_count(db, member.id).await?;
        if split_list(&member.skills)
            .iter()
            .any(|s| s == category.as_str())
        {
            skilled.push((open, member));
        } else if member.duty_manager {
            managers.push((open, member));
        }
    }
    let by_load = |a: &(u64, &crate::store::entities::staff::Model),
                   b: &(u64, &crate::store::entities::staff::Model)| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.name.cmp(&b.1.name))
            .then_with(|| a.1.id.cmp(&b.1.id))
    };
    skilled.sort_by(by_load);
    managers.sort_by(by_load);
    let (assignee, reason) = if let Some((open, member)) = skilled.first() {
        (
            member.id,
            format!(
                "{} is on duty with skill {category} and has the fewest open enquiries ({open}) of {} so skilled",
                member.name,
                skilled.len()
            ),
        )
    } else if let Some((open, member)) = managers.first() {
        (
            member.id,
            format!(
                "nobody on duty has skill {category}; {} is the duty manager on duty ({open} open enquiries)",
                member.name
            ),
        )
    } else {
        return Err(ApiError::FailedPrecondition {
            message: format!(
                "nobody on duty can take a {category} enquiry and no duty manager is on duty"
            ),
            kind: medsec_platform::PreconditionKind::Rota,
            subject: "duty_shifts".to_owned(),
        });
    };
    let row = enquiry::Model {
        id: Uuid::now_v7(),
        category: category.as_str().to_owned(),
        urgency: urgency.as_str().to_owned(),
        patient_id,
        summary: present(summary, "summary")?,
        assigned_staff_id: assignee,
        routing_reason: if urgency == Urgency::Urgent {
            format!("urgent: {reason}")
        } else {
            reason
        },
        status: EnquiryStatus::Open.as_str().to_owned(),
        notes: String::new(),
        create_time: Utc::now(),
        resolve_time: None,
    };
    let created = enquiries::create(db, key.as_ref(), row).await?;
    Ok(enquiry_to_proto(&created))
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
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    r.finish()?;
    Ok(enquiry_to_proto(
        &enquiries::get(db, present(id, "id")?).await?,
    ))
}

pub(super) async fn list(
    api: &SchedulingApi,
    request: Request<pb::ListEnquiriesRequest>,
) -> Result<pb::ListEnquiriesResponse, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let staff_id = r.optional_id(
        "assigned_staff_member_id",
        &request.assigned_staff_member_id,
    );
    let status = r
        .check("status", EnquiryStatus::from_proto_optional(request.status))
        .flatten();
    r.finish()?;
    let page = PageRequest::parse(
        request.page_size,
        &request.page_token,
        &format!("staff={staff_id:?};status={status:?}"),
    )?;
    let mut rows = enquiries::list(db, staff_id, status.map(EnquiryStatus::as_str), &page).await?;
    let next_page_token = page.finish(&mut rows, |row| row.id.to_string());
    Ok(pb::ListEnquiriesResponse {
        enquiries: rows.iter().map(enquiry_to_proto).collect(),
        next_page_token,
    })
}

pub(super) async fn resolve(
    api: &SchedulingApi,
    request: Request<pb::ResolveEnquiryRequest>,
) -> Result<pb::Enquiry, ApiError> {
    let db = &api.db;
    let request = request.into_inner();
    let mut r = Reader::new();
    let id = r.id("id", &request.id);
    let notes = r.check("notes", text::required_text(&request.notes));
    r.finish()?;
    let resolved = enquiries::resolve(
        db,
        present(id, "id")?,
        &present(notes, "notes")?,
        Utc::now(),
    )
    .await?;
    Ok(enquiry_to_proto(&resolved))
}
